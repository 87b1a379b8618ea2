// The checkpoint writer without actors: jobs queued while a round runs share the next round; files become
// durable stage by stage; a failed write renames nothing and fails its job and every later one. The tests
// synchronize on the writer's reports and on a job that waits for the test, never on time.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
#include <mutex>

#include "flow/connectors/durable_file.hpp"
#include "flow/runtime/checkpoint_writer.hpp"
#include "flow/types.hpp"
#include "test_support.hpp"

using namespace flow;
using connectors::file_write;
using runtime::checkpoint_writer;
using runtime::write_job;
using runtime::write_stages;
using flow::test::error_of;
using flow::test::read_file;
using flow::test::temp_dir;
namespace fs = std::filesystem;

namespace {

// Collects the writer's round reports.
class reports {
 public:
  void operator()(const checkpoint_writer::round_report& report) {
    std::lock_guard lock(mutex_);
    rounds_.push_back(report);
    changed_.notify_all();
  }
  // The first n reports; fails the test if they do not come (a stuck writer) instead of hanging.
  std::vector<checkpoint_writer::round_report> first(std::size_t n) {
    std::unique_lock lock(mutex_);
    REQUIRE(changed_.wait_for(lock, std::chrono::seconds(60), [&] { return rounds_.size() >= n; }));
    return {rounds_.begin(), rounds_.begin() + static_cast<std::ptrdiff_t>(n)};
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<checkpoint_writer::round_report> rounds_;
};

write_job file_job(const fs::path& directory, const std::string& name, const std::string& content, int stage = 0) {
  return {[=] {
            write_stages stages(static_cast<std::size_t>(stage) + 1);
            stages.back().push_back({directory.string(), name, content});
            return stages;
          },
          {}};
}

std::vector<std::string> names_in(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("checkpoint writer: jobs queued while a round runs are written together in the next round, in order",
          "[checkpoint][writer]") {
  temp_dir dir;
  reports seen;
  std::promise<void> first_started, release_first;
  auto released = release_first.get_future().share();
  std::vector<double> durable_round_ms;
  {
    checkpoint_writer writer("checkpoint", std::ref(seen));
    write_job first = file_job(dir.path(), "a", "1");
    first.prepare = [&, prepare = first.prepare] {
      first_started.set_value();
      released.wait();  // the test queues the next jobs meanwhile
      return prepare();
    };
    CHECK(writer.submit(first) == 1);
    first_started.get_future().wait();
    write_job second = file_job(dir.path(), "b", "2");
    second.durable = [&](double round_ms) { durable_round_ms.push_back(round_ms); };
    CHECK(writer.submit(second) == 2);
    CHECK(writer.submit(file_job(dir.path(), "c", "3", 1)) == 3);
    release_first.set_value();

    const auto rounds = seen.first(2);
    CHECK(rounds[0].durable_through == 1);
    CHECK(rounds[0].jobs == 1);
    CHECK(rounds[1].durable_through == 3);
    CHECK(rounds[1].jobs == 2);  // one round: one sync per file and per directory and stage
    CHECK_FALSE(rounds[0].failure);
    CHECK_FALSE(rounds[1].failure);
  }
  CHECK(names_in(dir.path()) == std::vector<std::string>{"a", "b", "c"});  // no temporary file left
  CHECK(read_file(dir / "c") == "3");
  CHECK(durable_round_ms.size() == 1);  // called once the round was durable
}

TEST_CASE("checkpoint writer: a failed write fails its job and every later one", "[checkpoint][writer]") {
  temp_dir dir;
  reports seen;
  checkpoint_writer writer("checkpoint", std::ref(seen));
  writer.submit(file_job(dir.path(), "ok", "1"));
  seen.first(1);
  bool durable_called = false;
  write_job broken = file_job(dir / "missing", "x", "2");  // its directory does not exist
  broken.durable = [&](double) { durable_called = true; };
  writer.submit(broken);
  const auto failed = seen.first(2)[1];
  REQUIRE(failed.failure);
  CHECK_THAT(*failed.failure, Catch::StartsWith("checkpoint: cannot create '") && Catch::Contains("/missing/.x.tmp"));
  CHECK(failed.durable_through == 1);
  CHECK_FALSE(durable_called);

  writer.submit(file_job(dir.path(), "later", "3"));  // refused: after a failure no write can be trusted
  const auto later = seen.first(3)[2];
  CHECK(later.failure == failed.failure);
  CHECK(later.durable_through == 1);
  CHECK(names_in(dir.path()) == std::vector<std::string>{"ok"});
}

TEST_CASE("group write: a failed temporary file renames nothing, and stages are renamed in order",
          "[checkpoint][writer]") {
  temp_dir dir;
  fs::create_directories(dir / "logs");
  fs::create_directories(dir / "commits");
  const std::string logs = (dir / "logs").string(), commits = (dir / "commits").string();

  // The last temporary file cannot be created: no file of any stage appears, no temporary file stays.
  CHECK_THAT(error_of([&] {
               connectors::write_files_atomically(
                   "checkpoint", {{{logs, "0", "offsets"}, {logs, "1", "offsets"}}, {{(dir / "gone").string(), "0", "c"}}});
             }),
             Catch::StartsWith("checkpoint: cannot create"));
  CHECK(names_in(dir / "logs").empty());
  CHECK(names_in(dir / "commits").empty());

  // The stage-1 file cannot be renamed into place (a directory holds its name): stage 0 was renamed first.
  fs::create_directories(dir / "commits" / "0" / "taken");
  CHECK_THAT(error_of([&] {
               connectors::write_files_atomically("checkpoint", {{{logs, "0", "offsets"}}, {{commits, "0", "commit"}}});
             }),
             Catch::Contains("cannot rename"));
  CHECK(read_file(dir / "logs" / "0") == "offsets");
  CHECK(names_in(dir / "commits") == std::vector<std::string>{"0"});  // the directory, no temporary file
}

TEST_CASE("checkpoint writer: finish waits until every job submitted so far is durable or failed", "[checkpoint]") {
  temp_dir dir;
  reports seen;
  checkpoint_writer writer("checkpoint", std::ref(seen));
  std::promise<void> release;
  auto released = release.get_future().share();
  // The first round waits for the test, so that the second job is queued behind it.
  writer.submit({[released, directory = dir.path().string()] {
                   released.wait();
                   return write_stages{{{directory, "first", "1"}}};
                 },
                 {}});
  writer.submit(file_job(dir.path(), "second", "2"));
  auto finished = std::async(std::launch::async, [&] { writer.finish(); });
  CHECK(finished.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  release.set_value();
  finished.get();
  CHECK(names_in(dir.path()) == std::vector<std::string>{"first", "second"});
}

TEST_CASE("checkpoint writer: finish returns the failure of a job, which the caller may not have seen reported yet",
          "[checkpoint][writer]") {
  temp_dir dir;
  checkpoint_writer writer("checkpoint", [](const checkpoint_writer::round_report&) {});
  writer.submit(file_job(dir.path(), "ok", "1"));
  CHECK_FALSE(writer.finish());
  writer.submit(file_job(dir / "missing", "x", "2"));  // its directory does not exist
  const auto failure = writer.finish();
  REQUIRE(failure);
  CHECK_THAT(*failure, Catch::StartsWith("checkpoint: cannot create '") && Catch::Contains("/missing/.x.tmp"));
}
