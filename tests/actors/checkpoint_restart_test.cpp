// A query on a durable checkpoint through the runtime (an in-process session), restarted after what goes
// wrong in practice: the query changed, the checkpoint directory is read-only or fills up, a checkpoint
// file is damaged, the checkpoint was written by another format version, foreachBatch was interrupted.
// Results are compared with counts of the input computed independently.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "flow/connectors/durable_file.hpp"
#include "flow/session.hpp"
#include "checkpoint_log.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using flow::col;
using namespace flow::test;

namespace {

constexpr int rows_per_file = 30;

// prefix followed by n (appended: "k" + std::to_string(n) trips GCC 12's -Wrestrict false positive).
std::string numbered(const char* prefix, int n) {
  std::string name = prefix;
  name += std::to_string(n);
  return name;
}

// Input file `number` in dir: rows (key, other) with key k<row % 5> and other o<row % 3>.
void write_input_file(const fs::path& dir, int number) {
  fs::create_directories(dir);
  std::string rows;
  for (int r = 0; r < rows_per_file; ++r) rows += numbered("k", (r + number) % 5) + numbered(",o", r % 3) + "\n";
  write_file(dir / (numbered("input-", 100 + number) + ".csv"), rows);
}

// The rows per key of input files [0, files), counted here.
std::map<std::string, std::int64_t> expected_counts(int files) {
  std::map<std::string, std::int64_t> counts;
  for (int number = 0; number < files; ++number)
    for (int r = 0; r < rows_per_file; ++r) ++counts[numbered("k", (r + number) % 5)];
  return counts;
}

flow::schema_ptr input_schema() {
  return flow::make_schema({{"key", flow::type_id::string, true}, {"other", flow::type_id::string, true}});
}

// count(*) per `group` of the csv files in `in`, one file per epoch, into the memory table "counts"
// (complete mode) on the checkpoint.
flow::streaming_query start_counts(flow::session& session, const fs::path& in, const fs::path& checkpoint,
                                   flow::trigger when = flow::available_now(), const std::string& group = "key") {
  return session.read_stream().format("csv").schema(input_schema()).option("maxFilesPerTrigger", 1LL)
      .load(in.string())
      .group_by({col(group)})
      .count()
      .write_stream().format("memory").query_name("counts").output_mode("complete")
      .option("checkpointLocation", checkpoint.string()).trigger(when).start();
}

std::map<std::string, std::int64_t> counts_table(flow::session& session) {
  return counts_of(session.sql("SELECT key, count FROM counts").collect_batch());
}

// Runs the counting query on the checkpoint until no file is left (a new session: a restarted process).
std::map<std::string, std::int64_t> run_to_end(const fs::path& in, const fs::path& checkpoint) {
  flow::session session;
  auto query = start_counts(session, in, checkpoint);
  REQUIRE(query.await_termination(30s));
  return counts_table(session);
}

// The error of a query's start, or else of its run: what the user sees first.
std::string start_or_run_error(const std::function<flow::streaming_query()>& start) {
  std::optional<flow::streaming_query> query;
  const std::string at_start = error_of([&] { query = start(); });
  if (!query) return at_start;
  if (!query->await_termination(30s)) return "<still running>";
  return query->exception().value_or("<no error>");
}

// Replaces a checkpoint file's sealed content, as a writer of another version or a bug would.
void rewrite_sealed(const fs::path& file, const std::function<std::string(std::string)>& change) {
  std::string why;
  auto payload = flow::connectors::unseal(read_file(file), why);
  REQUIRE(payload);
  write_file(file, flow::connectors::seal(change(*payload)));
}

// The name of the log's newest record named prefix<epoch>suffix ("commits/7").
std::string newest_record(const fs::path& checkpoint, const std::string& prefix, const std::string& suffix = "") {
  std::int64_t newest = -1;
  for (const auto& [name, content] : flow::runtime::checkpoint_store::read_log(checkpoint.string())) {
    if (!name.starts_with(prefix) || !name.ends_with(suffix)) continue;
    newest = std::max<std::int64_t>(newest, std::stoll(name.substr(prefix.size(), name.size() - prefix.size() - suffix.size())));
  }
  REQUIRE(newest >= 0);
  return prefix + std::to_string(newest) + suffix;
}

// Flips the last byte of the log's record named name, or cuts it to its first `keep` bytes.
void damage_record(const fs::path& checkpoint, const std::string& name, std::optional<std::size_t> keep = {}) {
  const auto place = flow::test::find_record(checkpoint, name);
  REQUIRE(place);
  std::string bytes = read_file(place->segment).substr(place->at, place->end - place->at);
  if (keep) bytes.resize(*keep);
  else bytes.back() = static_cast<char>(bytes.back() ^ 0x20);
  flow::test::rewrite_record(*place, bytes);
}

}  // namespace

TEST_CASE("restart: a query started on the checkpoint of a different query fails at start naming both sides",
          "[checkpoint][restart]") {
  temp_dir dir;
  for (int f = 0; f < 3; ++f) write_input_file(dir / "in", f);
  const fs::path checkpoint = dir / "checkpoint";
  {
    flow::session session(flow::session_config{.parallelism = 2});
    auto query = start_counts(session, dir / "in", checkpoint);
    REQUIRE(query.await_termination(30s));
  }
  const std::string in = fs::weakly_canonical(dir / "in").string(), other_in = fs::weakly_canonical(dir / "other").string();
  write_input_file(dir / "other", 0);

  SECTION("another source path") {
    flow::session session(flow::session_config{.parallelism = 2});
    const std::string message = error_of([&] { start_counts(session, dir / "other", checkpoint); });
    CHECK_THAT(message, Catch::Contains("was written by a different query") && Catch::Contains("identity") &&
                            Catch::Contains(in) && Catch::Contains(other_in) &&
                            Catch::Contains("Start the query with a new checkpointLocation, or change it back."));
  }
  SECTION("other grouping keys") {
    flow::session session(flow::session_config{.parallelism = 2});
    const std::string message =
        error_of([&] { start_counts(session, dir / "in", checkpoint, flow::available_now(), "other"); });
    CHECK_THAT(message, Catch::Contains("was written by a different query") &&
                            Catch::Contains("key columns            checkpoint: [key]") &&
                            Catch::Contains("query: [other]"));
  }
  SECTION("another session parallelism: the aggregation, which sets none, keeps the checkpoint's") {
    flow::session session(flow::session_config{.parallelism = 3});
    auto query = start_counts(session, dir / "in", checkpoint);
    REQUIRE(query.await_termination(30s));
    CHECK_FALSE(query.exception());
    CHECK_THAT(*query.last_progress(), Catch::Contains("\"numShufflePartitions\":2"));
  }
}

TEST_CASE("restart: the file source's batches are in the offsets log, so a batches.log that lost its entries (a "
          "power loss before the kernel wrote it back) restarts with every file counted once",
          "[checkpoint][restart]") {
  temp_dir dir;
  for (int f = 0; f < 4; ++f) write_input_file(dir / "in", f);
  const fs::path checkpoint = dir / "checkpoint";
  CHECK(run_to_end(dir / "in", checkpoint) == expected_counts(4));
  const auto log = flow::runtime::checkpoint_store::read_log(checkpoint.string());
  CHECK_THAT(log.at("offsets/3"), Catch::Contains("\"plans\":[") && Catch::Contains("input-103.csv"));

  write_file(checkpoint / "sources" / "0" / "batches.log", "");  // written, never synced: lost
  for (int f = 4; f < 6; ++f) write_input_file(dir / "in", f);
  CHECK(run_to_end(dir / "in", checkpoint) == expected_counts(6));
}

TEST_CASE("restart: a checkpoint directory on a read-only file system fails the start naming the path",
          "[checkpoint][restart][disk]") {
  temp_dir dir;
  write_input_file(dir / "in", 0);
  small_tmpfs disk(dir / "disk", "1m");
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs for the read-only test (" + disk.reason + ")");
    return;
  }
  REQUIRE(disk.remount_read_only());
  const fs::path checkpoint = dir / "disk" / "checkpoint";
  flow::session session;
  const std::string message = start_or_run_error([&] { return start_counts(session, dir / "in", checkpoint); });
  CHECK_THAT(message, Catch::Contains(checkpoint.string()) && Catch::Contains("Read-only file system"));
}

TEST_CASE("restart: a checkpoint disk that fills up fails the query with a clear error, and after space is freed "
          "the restarted query ends with the exact result",
          "[checkpoint][restart][disk]") {
  temp_dir dir;
  small_tmpfs disk(dir / "disk", "1m");
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs for the full-disk test (" + disk.reason + ")");
    return;
  }
  const fs::path in = dir / "in", checkpoint = dir / "disk" / "checkpoint";
  int files = 3;
  for (int f = 0; f < files; ++f) write_input_file(in, f);
  {
    flow::session session;
    auto query = start_counts(session, in, checkpoint, flow::processing_time(10ms));
    REQUIRE(eventually([&] { return counts_table(session) == expected_counts(files); }, 30s));
    fill_up(dir / "disk" / "filler");
    // The checkpoint's log may take a few more small records into its last page: epochs follow, one file
    // each, until one needs a new page.
    while (files < 200 && query.is_active()) {
      write_input_file(in, files++);
      eventually([&] { return !query.is_active() || counts_table(session) == expected_counts(files); }, 30s);
    }
    INFO("the query must fail rather than hang");
    REQUIRE(eventually([&] { return !query.is_active(); }, 30s));
    CHECK_THAT(query.exception().value_or("<no error>"), Catch::Contains("No space left on device"));
  }
  fs::remove(dir / "disk" / "filler");
  CHECK(run_to_end(in, checkpoint) == expected_counts(files));
}

TEST_CASE("restart: a state snapshot that fails after the last commit fails the query, and the restarted query "
          "ends with the exact result",
          "[checkpoint][restart]") {
  temp_dir dir;
  const fs::path in = dir / "in", checkpoint = dir / "checkpoint";
  // A directory holding the name of epoch 0's snapshot of slot 0 (interval 1): the snapshot cannot be renamed
  // into place. A row snapshot is written in the background after its commit, and here no later commit is
  // there to report its failure.
  const fs::path taken = checkpoint / "state" / "0" / "0.snapshot";
  // The counts per key of the last batch, in complete mode: the whole result.
  auto run = [&](bool take_snapshot_name, std::map<std::string, std::int64_t>& counts) {
    flow::session session(flow::session_config{.state_snapshot_interval = 1});
    auto query = session.read_stream().format("csv").schema(input_schema()).option("maxFilesPerTrigger", 1LL)
                     .load(in.string())
                     .group_by({col("key")})
                     .count()
                     .write_stream().output_mode("complete")
                     .foreach_batch([&](const flow::batch& rows, std::int64_t) {
                       // Planted here, after the start: the start's recovery removes state files of epochs
                       // not committed yet.
                       if (take_snapshot_name) fs::create_directories(taken / "taken");
                       counts = counts_of(rows);
                     })
                     .option("checkpointLocation", checkpoint.string())
                     .trigger(flow::available_now())
                     .start();
    bool ended = false;
    const std::string thrown = error_of([&] { ended = query.await_termination(30s); });
    if (thrown.empty() && !ended) return std::string("<still running>");
    return query.exception().value_or("<no error>");
  };
  std::map<std::string, std::int64_t> first, second;
  write_input_file(in, 0);
  CHECK_THAT(run(true, first),
             Catch::StartsWith("checkpoint: writing a state snapshot failed: ") && Catch::Contains("0.snapshot"));
  CHECK(flow::test::logged(checkpoint, "commits/0"));  // the commit itself is durable
  CHECK(first == expected_counts(1));
  fs::remove_all(taken);
  write_input_file(in, 1);
  CHECK(run(false, second) == "<no error>");
  CHECK(second == expected_counts(2));
}

TEST_CASE("restart: a damaged checkpoint file falls back as documented and the restarted query ends with the "
          "exact result",
          "[checkpoint][restart]") {
  temp_dir dir;
  const fs::path in = dir / "in", checkpoint = dir / "checkpoint";
  for (int f = 0; f < 4; ++f) write_input_file(in, f);
  REQUIRE(run_to_end(in, checkpoint) == expected_counts(4));
  for (int f = 4; f < 6; ++f) write_input_file(in, f);

  SECTION("the newest commit: its epoch is re-run") {
    damage_record(checkpoint, newest_record(checkpoint, "commits/"));
    CHECK(run_to_end(in, checkpoint) == expected_counts(6));
  }
  SECTION("the newest delta: its epoch is re-run") {
    damage_record(checkpoint, newest_record(checkpoint, "state/0/", ".delta"));
    CHECK(run_to_end(in, checkpoint) == expected_counts(6));
  }
  SECTION("the offsets of an older epoch: not needed") {
    damage_record(checkpoint, "offsets/1", 5);
    CHECK(run_to_end(in, checkpoint) == expected_counts(6));
  }
  SECTION("the offsets of the newest committed epoch, which the fall-back must re-run: the documented error") {
    const std::string offsets = newest_record(checkpoint, "offsets/");
    damage_record(checkpoint, offsets);
    flow::session session;
    const std::string message = start_or_run_error([&] { return start_counts(session, in, checkpoint); });
    CHECK_THAT(message, Catch::Contains(offsets + " is damaged") &&
                            Catch::Contains("delete the checkpoint directory to start over, or restore it from a backup"));
  }
  SECTION("the metadata: the documented error") {
    fs::resize_file(checkpoint / "metadata", fs::file_size(checkpoint / "metadata") - 3);
    flow::session session;
    const std::string message = start_or_run_error([&] { return start_counts(session, in, checkpoint); });
    CHECK_THAT(message, Catch::Contains("metadata is damaged (truncated") &&
                            Catch::Contains("delete the checkpoint directory to start over, or restore it from a backup"));
  }
  SECTION("metadata of format version 4") {
    rewrite_sealed(checkpoint / "metadata", [](std::string json) {
      const auto at = json.find("\"version\":3");
      REQUIRE(at != std::string::npos);
      return json.substr(0, at) + "\"version\":4" + json.substr(at + 11);
    });
    flow::session session;
    const std::string message = start_or_run_error([&] { return start_counts(session, in, checkpoint); });
    CHECK_THAT(message, Catch::Contains("was written by checkpoint format version 4; this build of libflow reads "
                                        "versions 2 to 3"));
  }
}

TEST_CASE("restart: foreachBatch receives again, with the same ids and rows, the epochs it had not finished",
          "[checkpoint][restart][foreachBatch]") {
  temp_dir dir;
  const fs::path in = dir / "in", checkpoint = dir / "checkpoint";
  constexpr int files = 6, failing_epoch = 2;
  for (int f = 0; f < files; ++f) write_input_file(in, f);

  // Epoch id -> the rows ("key,other", sorted) of every call that received it, per run.
  using calls = std::map<std::int64_t, std::vector<std::vector<std::string>>>;
  auto run = [&](calls& received, bool fail) {
    flow::session session(flow::session_config{.max_failures = 0});
    std::mutex mutex;
    auto query = session.read_stream().format("csv").schema(input_schema()).option("maxFilesPerTrigger", 1LL)
                     .load(in.string())
                     .write_stream()
                     .foreach_batch([&](const flow::batch& rows, std::int64_t epoch) {
                       std::vector<std::string> lines;
                       for (std::size_t r = 0; r < rows.num_rows(); ++r)
                         lines.push_back(flow::to_string(rows.at(r, 0)) + "," + flow::to_string(rows.at(r, 1)));
                       std::sort(lines.begin(), lines.end());
                       {
                         std::lock_guard<std::mutex> lock(mutex);
                         received[epoch].push_back(std::move(lines));
                       }
                       if (fail && epoch == failing_epoch) throw flow::error("the batch function broke at epoch 2");
                     })
                     .option("checkpointLocation", checkpoint.string())
                     .trigger(flow::available_now())
                     .start();
    if (fail) {
      CHECK_THROWS_WITH(query.await_termination(30s), Catch::Contains("broke at epoch 2"));
    } else {
      REQUIRE(query.await_termination(30s));
      CHECK_FALSE(query.exception());
    }
  };
  calls first, second;
  run(first, true);
  run(second, false);

  auto ids_of = [](const calls& c) {
    std::vector<std::int64_t> ids;
    for (const auto& [id, batches] : c) ids.push_back(id);
    return ids;
  };
  CHECK(ids_of(first) == std::vector<std::int64_t>{0, 1, 2});
  CHECK(ids_of(second) == std::vector<std::int64_t>{2, 3, 4, 5});
  for (const auto& [id, batches] : second) {
    INFO("epoch " << id);
    CHECK(batches.size() == 1);  // once per run
  }
  // The re-run epoch has the rows it had when it failed.
  CHECK(first[failing_epoch].front() == second[failing_epoch].front());
  // Every epoch read one input file, in order: together, every file exactly once.
  for (int epoch = 0; epoch < files; ++epoch) {
    std::vector<std::string> file_rows;
    for (int r = 0; r < rows_per_file; ++r) file_rows.push_back(numbered("k", (r + epoch) % 5) + numbered(",o", r % 3));
    std::sort(file_rows.begin(), file_rows.end());
    const calls& delivered = epoch < failing_epoch ? first : second;
    INFO("epoch " << epoch);
    REQUIRE(delivered.count(epoch));
    CHECK(delivered.at(epoch).front() == file_rows);
  }
}
