// Several queries of one session at once. A query whose sink blocks (a slow foreachBatch function, a
// flush) or whose source blocks (a broker's metadata call) must not hold the scheduler threads that the
// session's other queries need; stopping one query leaves the others running.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flow/registry.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"
#include "user_connectors.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Holds every caller of pass() until release(), or at most until 45 s after the gate was made, so that
// a starved scheduler fails the test instead of hanging it.
class gate {
 public:
  void pass() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++arrivals_;
    changed_.notify_all();
    changed_.wait_until(lock, opens_at_latest_, [&] { return open_; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  bool await_arrivals(std::size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, 30s, [&] { return arrivals_ >= count; });
  }
  std::size_t arrivals() {
    std::lock_guard<std::mutex> lock(mutex_);
    return arrivals_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t arrivals_ = 0;
  bool open_ = false;
  const std::chrono::steady_clock::time_point opens_at_latest_ = std::chrono::steady_clock::now() + 45s;
};

// Opens the gate when the test ends, pass or fail, so the session's destructor can stop the held queries.
// Declared after the session, it runs before the session's destructor.
struct release_at_exit {
  std::shared_ptr<gate> held;
  ~release_at_exit() { held->release(); }
};

// The gate that the stalled source's planning waits at (the registry holds factories, not test state).
std::mutex stalled_source_mutex;
std::shared_ptr<gate> stalled_source_gate;

// A sequence source whose every plan waits at stalled_source_gate, as a source waiting for its broker does.
class stalled_source final : public flow::source_reader {
 public:
  stalled_source(std::shared_ptr<gate> held, std::int64_t rows)
      : held_(std::move(held)), sequence_(rows, 10) {}
  std::string description() const override { return "StalledSource"; }
  flow::schema_ptr output_schema() const override { return sequence_.output_schema(); }
  std::string initial_offset() override { return sequence_.initial_offset(); }
  std::optional<std::string> latest_offset(const std::string& start) override {
    held_->pass();
    return sequence_.latest_offset(start);
  }
  void begin_read(const std::string& start, const std::string& end) override { sequence_.begin_read(start, end); }
  std::optional<flow::source_unit> next() override { return sequence_.next(); }

 private:
  std::shared_ptr<gate> held_;
  flow::test::sequence_source sequence_;
};

void register_test_sources() {
  static const bool registered = [] {
    flow::register_source_format("test-queries-sequence", flow::test::sequence_format());
    flow::source_format stalled;
    stalled.resolve = [](flow::scan_spec& scan) { scan.schema = flow::test::sequence_source::fixed_schema(); };
    stalled.make = [](const flow::scan_spec& scan) -> std::unique_ptr<flow::source_reader> {
      std::lock_guard<std::mutex> lock(stalled_source_mutex);
      return std::make_unique<stalled_source>(stalled_source_gate, scan.opts.get_int("rows", 0));
    };
    flow::register_source_format("test-queries-stalled", stalled);
    return true;
  }();
  (void)registered;
}

// A stream of 0 .. rows-1, ten rows an epoch.
flow::data_frame numbers(flow::session& session, std::int64_t rows) {
  return session.read_stream().format("test-queries-sequence").option("rows", rows).option("rowsPerEpoch", 10).load();
}

// Each epoch's foreachBatch call waits at the gate.
// As many queries as the session has scheduler threads, each held by `held` in its sink's first epoch.
std::vector<flow::streaming_query> start_blocked_sink_queries(flow::session& session, const std::shared_ptr<gate>& held) {
  std::vector<flow::streaming_query> blocked;
  for (std::size_t i = 0; i < session.config().threads; ++i)
    blocked.push_back(
        numbers(session, 1000).write_stream().foreach_batch([held](const flow::batch&, std::int64_t) { held->pass(); }).start());
  return blocked;
}

// A text stream of dir, one file an epoch; files are moved in whole, so they need no stability wait.
flow::data_frame lines(flow::session& session, const fs::path& dir) {
  return session.read_stream().format("text").option("maxFilesPerTrigger", 1).option("fileStableMs", 0).load(dir.string());
}

// Moves files first .. last-1 into dir, one line each ("line <n>").
void add_line_files(const fs::path& dir, int first, int last) {
  for (int n = first; n < last; ++n) {
    auto name = "part-" + std::to_string(n) + ".txt";
    flow::test::write_file(dir.parent_path() / name, "line " + std::to_string(n) + "\n");
    fs::rename(dir.parent_path() / name, dir / name);
  }
}

std::int64_t table_rows(flow::session& session, const std::string& table) {
  auto result = session.sql("SELECT COUNT(*) FROM " + table).collect_batch();
  return result.col(0).ints()[0];
}

std::int64_t committed_epochs(const flow::streaming_query& query) {
  auto progress = query.last_progress();
  return progress ? *flow::test::json_int(*progress, "batchId") + 1 : 0;
}

// The two fast queries of the tests: a sequence of 2000 numbers (200 epochs) and a file stream of 50
// files (50 epochs), both available-now into memory tables.
void check_fast_queries_complete(flow::session& session, const flow::test::temp_dir& dir) {
  auto numbers_query = numbers(session, 2000).write_stream().format("memory").query_name("numbers")
                           .trigger(flow::available_now()).start();
  fs::create_directories(dir / "in");
  add_line_files(dir / "in", 0, 50);
  auto lines_query = lines(session, dir / "in").write_stream().format("memory").query_name("lines")
                         .trigger(flow::available_now()).start();
  REQUIRE(numbers_query.await_termination(30s));
  REQUIRE(lines_query.await_termination(30s));
  CHECK_FALSE(numbers_query.exception());
  CHECK_FALSE(lines_query.exception());
  CHECK(committed_epochs(numbers_query) == 200);
  CHECK(committed_epochs(lines_query) == 50);
  CHECK(table_rows(session, "numbers") == 2000);
  CHECK(table_rows(session, "lines") == 50);
}

}  // namespace

TEST_CASE("queries run to the end while as many other queries as scheduler threads block in their sinks",
          "[actors][concurrent]") {
  register_test_sources();
  // The default session (as many scheduler threads as cores), and a session with one thread.
  const std::size_t threads = GENERATE(std::size_t{0}, std::size_t{1});
  flow::session_config config;
  config.threads = threads;
  flow::session session(config);
  flow::test::temp_dir dir;
  auto held = std::make_shared<gate>();
  release_at_exit release{held};

  // Were the sinks' calls made on the scheduler, these queries would take every one of its threads.
  auto blocked = start_blocked_sink_queries(session, held);
  REQUIRE(held->await_arrivals(blocked.size()));

  check_fast_queries_complete(session, dir);
  for (auto& query : blocked) {
    CHECK(query.is_active());
    CHECK(committed_epochs(query) == 0);  // still held at its first epoch
  }
}

TEST_CASE("queries run to the end while as many other queries as scheduler threads wait in their sources' plans",
          "[actors][concurrent]") {
  register_test_sources();
  flow::session session;
  flow::test::temp_dir dir;
  auto held = std::make_shared<gate>();
  release_at_exit release{held};
  {
    std::lock_guard<std::mutex> lock(stalled_source_mutex);
    stalled_source_gate = held;
  }

  std::vector<flow::streaming_query> stalled;
  for (std::size_t i = 0; i < session.config().threads; ++i)
    stalled.push_back(session.read_stream().format("test-queries-stalled").option("rows", 100).load()
                          .write_stream().format("noop").start());
  REQUIRE(held->await_arrivals(stalled.size()));

  check_fast_queries_complete(session, dir);
  for (auto& query : stalled) CHECK(query.is_active());
}

TEST_CASE("stopping one query of a session leaves the others running, blocked ones included", "[actors][concurrent]") {
  register_test_sources();
  flow::session session;
  flow::test::temp_dir dir;
  auto held = std::make_shared<gate>();
  release_at_exit release{held};

  auto blocked = start_blocked_sink_queries(session, held);
  REQUIRE(held->await_arrivals(blocked.size()));

  fs::create_directories(dir / "first");
  fs::create_directories(dir / "second");
  auto first = lines(session, dir / "first").write_stream().format("memory").query_name("first").start();
  auto second = lines(session, dir / "second").write_stream().format("memory").query_name("second").start();
  add_line_files(dir / "first", 0, 5);
  add_line_files(dir / "second", 0, 5);
  REQUIRE(flow::test::eventually([&] { return table_rows(session, "first") == 5 && table_rows(session, "second") == 5; }));

  auto stop_started = std::chrono::steady_clock::now();
  first.stop();
  CHECK(std::chrono::steady_clock::now() - stop_started < 10s);
  CHECK_FALSE(first.is_active());
  CHECK_FALSE(first.exception());

  // The second query keeps taking new files; the stopped one takes none.
  add_line_files(dir / "first", 5, 10);
  add_line_files(dir / "second", 5, 25);
  REQUIRE(flow::test::eventually([&] { return table_rows(session, "second") == 25; }));
  CHECK(committed_epochs(second) == 25);
  CHECK(second.is_active());
  CHECK(table_rows(session, "first") == 5);

  // The blocked queries were held all along; released, they go on and stop cleanly.
  CHECK(held->arrivals() == blocked.size());
  held->release();
  for (auto& query : blocked) {
    REQUIRE(flow::test::eventually([&] { return committed_epochs(query) > 0; }));
    query.stop();
    CHECK_FALSE(query.exception());
  }
  second.stop();
  CHECK_FALSE(second.exception());
}
