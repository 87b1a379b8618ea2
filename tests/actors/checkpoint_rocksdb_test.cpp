// RocksDB-backed states in the checkpoint: the periodic snapshot is a directory (a RocksDB checkpoint of hard
// links, made durable with a sealed manifest), whose written bytes follow the changed keys; recovery verifies
// the manifest and falls back past a damaged snapshot; restarted instances restore from directories, never
// through rows. Real RocksDB in temp dirs; every result is compared with sums computed here.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "flow/connectors/rocksdb_store.hpp"
#include "flow/graph.hpp"
#include "flow/keyed_operator.hpp"
#include "flow/runtime/checkpoint_store.hpp"
#include "flow/session.hpp"
#include "collecting_context.hpp"
#include "key_sum_files.hpp"
#include "checkpoint_log.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::test;
namespace fs = std::filesystem;

namespace {

using totals = key_totals;

schema_ptr kv_schema() { return make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}}); }

// sum(v) by k in a keyed state; emits the changed keys' (k, v). Throws once in epoch *fail_at when set.
class keyed_sum final : public keyed_operator<std::int64_t> {
 public:
  explicit keyed_sum(std::atomic<std::int64_t>* fail_at = nullptr)
      : keyed_operator({.name = "keyed-sum", .input = kv_schema(), .keys = {"k"},
                        .output = {{"v", type_id::int64}}, .state = {{"v", type_id::int64}}}),
        fail_at_(fail_at) {}
  void process(const batch& rows, const row_keys& keys, keyed_state<std::int64_t>& state,
               operator_context& ctx) const override {
    std::int64_t epoch = ctx.epoch();
    if (fail_at_ && fail_at_->compare_exchange_strong(epoch, -1)) throw error("injected failure in keyed-sum");
    const column& v = rows.col(1);
    for (std::size_t i = 0; i < rows.num_rows(); ++i) state.get(keys[i]) += v.ints()[i];
  }
  void end_epoch(keyed_state<std::int64_t>& state, operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](key_ref key, const std::int64_t& v) { out.add(key).add(v); });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const std::int64_t& v, row_writer& out) const override { out.add(v); }
  std::int64_t load(const batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }

 private:
  std::atomic<std::int64_t>* fail_at_;
};

// The newest total per key from update-mode output.
struct latest_totals {
  std::mutex mutex;
  totals values;
  sink_spec sink() {
    sink_spec spec;
    spec.format = "foreachBatch";
    spec.mode = output_mode::update;
    spec.foreach_batch = [this](const batch& rows, std::int64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      for (std::size_t i = 0; i < rows.num_rows(); ++i) values[rows.col(0).ints()[i]] = rows.col(1).ints()[i];
    };
    return spec;
  }
  totals get() {
    std::lock_guard<std::mutex> lock(mutex);
    return values;
  }
};

// Runs input -> keyed_sum (2 instances) -> out to its end (available-now) on checkpoint (none when empty),
// with a full snapshot every 2 epochs; returns its progress reports.
std::vector<std::string> run_query(const fs::path& input, const std::string& checkpoint, const std::string& backend, latest_totals& out,
               std::atomic<std::int64_t>* fail_at = nullptr) {
  session_config config{2, 2};
  config.state_backend = backend;
  config.state_snapshot_interval = 2;
  session s(config);
  dataflow_graph g;
  auto frame = s.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                   .schema(kv_schema()).load(input.string());
  auto source = g.add_source("files", scan_of(*frame.plan()));
  auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>(fail_at)});
  g.connect(source, sum, partitioning::hash, {"k"});
  g.connect(sum, g.add_sink("out", kv_schema(), out.sink()), partitioning::forward);
  streaming_query query(s.context()->start_graph(std::move(g), query_options{"sums", available_now(), checkpoint, {}}));
  REQUIRE(query.await_termination(std::chrono::seconds(120)));
  REQUIRE_FALSE(query.exception());
  return query.recent_progress();
}

// One keyed_sum state driven by hand, checkpointed epoch by epoch with a snapshot every interval epochs.
struct checkpointed_state {
  keyed_sum op;
  std::unique_ptr<operator_state> state;
  totals expected;

  checkpointed_state(const fs::path& working, const std::string& backend = "rocksdb") : state(op.make_state()) {
    connectors::register_state_backends();
    state->use_backend(state_backend_config{.kind = backend}, working.string());
  }
  // Adds 1 to each of keys keys, first, first + stride, ..., then commits the epoch.
  void run(runtime::checkpoint_store& store, std::int64_t epoch, std::int64_t first, std::int64_t keys,
           std::int64_t stride = 1) {
    column_builder k(type_id::int64), v(type_id::int64);
    for (std::int64_t i = 0; i < keys; ++i) {
      k.append_int(first + i * stride);
      v.append_int(1);
      expected[first + i * stride] += 1;
    }
    collecting_context ctx(epoch);
    std::vector<column> columns;
    columns.push_back(k.finish());
    columns.push_back(v.finish());
    static_cast<const stream_operator&>(op).process(batch(kv_schema(), std::move(columns)), 0, state.get(), ctx);
    store.write_offsets({epoch, {"0"}, {"1"}});
    store.write_commit(epoch, {state->take_changes()},
                       [&](std::size_t slot) { return store.stage_snapshot(slot, epoch, *state); });
  }
};

totals totals_of(const operator_state& state) {
  totals out;
  const batch rows = state.snapshot();
  for (std::size_t i = 0; i < rows.num_rows(); ++i) out[rows.col(0).ints()[i]] = rows.col(2).ints()[i];
  return out;
}

// A recovery of the checkpoint in directory into a fresh RocksDB state: its notes, and the state's totals.
std::pair<runtime::recovered_checkpoint, totals> recover(const fs::path& directory, const fs::path& working,
                                                         std::int64_t interval) {
  runtime::checkpoint_store store(directory.string(), {100, interval});
  checkpointed_state fresh(working);
  auto recovered = store.recover({fresh.state.get()});
  return {recovered, totals_of(*fresh.state)};
}

// The bytes of the files in snapshot that are not hard links to a file of previous.
std::uintmax_t new_bytes(const fs::path& snapshot, const fs::path& previous) {
  std::set<std::pair<dev_t, ino_t>> old;
  struct stat st {};
  for (const auto& entry : fs::directory_iterator(previous))
    if (::stat(entry.path().c_str(), &st) == 0) old.insert({st.st_dev, st.st_ino});
  std::uintmax_t total = 0;
  for (const auto& entry : fs::directory_iterator(snapshot))
    if (::stat(entry.path().c_str(), &st) == 0 && !old.count({st.st_dev, st.st_ino})) total += entry.file_size();
  return total;
}

std::string joined(const std::vector<std::string>& notes) {
  std::string out;
  for (const auto& n : notes) out += n + "\n";
  return out;
}

// Counts, per store directory, the calls that tell a restore from a directory (restore_from) from one
// through rows (keyed state's restore() empties the store with clear()).
struct restore_calls {
  int from_directory = 0, clears = 0;
};
std::mutex calls_mutex;
std::map<std::string, restore_calls> calls_by_directory;

class counting_store final : public key_value_store {
 public:
  counting_store(std::unique_ptr<key_value_store> inner, std::string directory)
      : inner_(std::move(inner)), directory_(std::move(directory)) {}
  bool get(std::string_view key, std::string& value) const override { return inner_->get(key, value); }
  void apply(const key_value_batch& writes) override { inner_->apply(writes); }
  void for_each(const std::function<void(std::string_view, std::string_view)>& f) const override { inner_->for_each(f); }
  void clear() override {
    count([](restore_calls& c) { ++c.clears; });
    inner_->clear();
  }
  std::size_t memory_bytes() const override { return inner_->memory_bytes(); }
  std::size_t disk_bytes() const override { return inner_->disk_bytes(); }
  void snapshot_to(const std::string& directory) const override { inner_->snapshot_to(directory); }
  void restore_from(const std::string& directory) override {
    count([](restore_calls& c) { ++c.from_directory; });
    inner_->restore_from(directory);
  }

 private:
  template <class F>
  void count(F f) {
    std::lock_guard<std::mutex> lock(calls_mutex);
    f(calls_by_directory[directory_]);
  }
  std::unique_ptr<key_value_store> inner_;
  std::string directory_;
};

}  // namespace

TEST_CASE("rocksdb checkpoint: a keyed query stopped and resumed ends with the memory backend's result, and its "
          "snapshots are directories",
          "[checkpoint][rocksdb]") {
  std::map<std::string, totals> results;
  for (std::string backend : {"memory", "rocksdb"}) {
    INFO("state backend " << backend);
    temp_dir input, checkpoint;
    totals expected;
    latest_totals out;
    write_key_sum_files(input.path(), 5, 0, 400, 500, expected);
    const auto progress = run_query(input.path(), checkpoint.path().string(), backend, out);
    CHECK(out.get() == expected);
    // Epochs 0-4, a snapshot every 2 epochs: directories at epochs 1 and 3, per slot. Row snapshots go by
    // size after the first (at epoch 1): whether epoch 3 has one depends on when epoch 1's was written.
    const fs::path slot = checkpoint / "state" / "0";
    CHECK(fs::exists(slot / "3.snapshot.d" / "flow-manifest") == (backend == "rocksdb"));
    CHECK(fs::exists(slot / "1.snapshot") == (backend == "memory"));
    if (backend == "rocksdb") {
      // The progress of epoch 3 counts the snapshot's new files (and its manifest), not the linked ones.
      std::uintmax_t written = 0;
      for (const char* s : {"0", "1"})
        written += new_bytes(checkpoint / "state" / s / "3.snapshot.d", checkpoint / "state" / s / "1.snapshot.d");
      REQUIRE(progress.size() == 5);
      CHECK(json_int(progress[3], "snapshotBytes") == static_cast<std::int64_t>(written));
    }
    // Files that arrive later are summed on top of the restored state.
    write_key_sum_files(input.path(), 3, 2000, 400, 700, expected);
    run_query(input.path(), checkpoint.path().string(), backend, out);
    results[backend] = out.get();
    CHECK(results[backend] == expected);
  }
  CHECK(results["rocksdb"] == results["memory"]);
}

TEST_CASE("rocksdb checkpoint: a snapshot after 1% of many keys changed writes few new bytes, and recovery "
          "restores it exactly",
          "[checkpoint][rocksdb]") {
  temp_dir dir;
  const std::int64_t keys = 200000;
  totals expected;
  std::size_t full = 0, after_one_percent = 0;
  {
    runtime::checkpoint_store store((dir / "checkpoint").string(), {100, 1});
    checkpointed_state live(dir / "working");
    live.run(store, 0, 0, keys);
    full = store.last_commit().snapshot_bytes.at(0);
    live.run(store, 1, 7, keys / 100, 100);
    after_one_percent = store.last_commit().snapshot_bytes.at(0);
    expected = live.expected;
    CHECK(totals_of(*live.state) == expected);
  }
  INFO("first snapshot " << full << " bytes, after 1% changed " << after_one_percent << " bytes");
  CHECK(full > 500000);  // the state is large: 200,000 keys
  CHECK(after_one_percent * 10 < full);
  CHECK(fs::exists(dir / "checkpoint" / "state" / "0" / "1.snapshot.d" / "flow-manifest"));
  CHECK_FALSE(fs::exists(dir / "checkpoint" / "state" / "0" / "1.snapshot"));
  auto [recovered, restored] = recover(dir / "checkpoint", dir / "restored", 1);
  CHECK(recovered.last_committed == 1);
  CHECK(recovered.notes.empty());
  CHECK(restored == expected);
}

TEST_CASE("rocksdb checkpoint: retention removes old snapshot directories by the rule of snapshot files, and what "
          "it keeps recovers exactly",
          "[checkpoint][rocksdb]") {
  temp_dir dir;
  const fs::path slot = dir / "checkpoint" / "state" / "0";
  totals expected;
  {
    // minBatchesToRetain 3, a snapshot every 2 epochs: at 1, 3, 5, 7, 9.
    runtime::checkpoint_store store((dir / "checkpoint").string(), {3, 2});
    checkpointed_state live(dir / "working");
    for (std::int64_t epoch = 0; epoch < 10; ++epoch) live.run(store, epoch, epoch * 500, 1000);
    expected = live.expected;
  }
  // After epoch 9 epochs 7-9 stay recoverable: the snapshot of 7 is their base, older ones go (the deltas
  // are records of the log, whose retention checkpoint_store_test covers).
  std::vector<std::string> kept;
  for (const auto& entry : fs::directory_iterator(slot)) kept.push_back(entry.path().filename().string());
  std::sort(kept.begin(), kept.end());
  CHECK(kept == std::vector<std::string>{"7.snapshot.d", "9.snapshot.d"});
  CHECK(flow::test::logged(dir / "checkpoint", "state/0/8.delta"));
  auto [recovered, restored] = recover(dir / "checkpoint", dir / "restored", 2);
  CHECK(recovered.last_committed == 9);
  CHECK(restored == expected);
}

TEST_CASE("rocksdb checkpoint: a damaged directory snapshot (an altered or missing file, a damaged manifest) is "
          "detected and recovery falls back to an older snapshot and the deltas, exactly",
          "[checkpoint][rocksdb]") {
  enum class damage { altered_sst, missing_sst, damaged_manifest };
  for (auto kind : {damage::altered_sst, damage::missing_sst, damage::damaged_manifest}) {
    INFO("damage " << static_cast<int>(kind));
    temp_dir dir;
    totals expected;
    {
      runtime::checkpoint_store store((dir / "checkpoint").string(), {100, 2});
      checkpointed_state live(dir / "working");
      // Snapshots at epochs 1 and 3, each epoch new keys and changes to earlier ones.
      for (std::int64_t epoch = 0; epoch < 5; ++epoch) live.run(store, epoch, epoch * 5000, 10000);
      expected = live.expected;
    }
    const fs::path newest = dir / "checkpoint" / "state" / "0" / "3.snapshot.d";
    REQUIRE(fs::exists(newest / "flow-manifest"));
    std::string sst;  // the newest table file: the one the snapshot of epoch 3 added
    for (const auto& entry : fs::directory_iterator(newest))
      if (entry.path().extension() == ".sst" && entry.path().filename().string() > sst) sst = entry.path().filename().string();
    REQUIRE_FALSE(sst.empty());
    const fs::path target = kind == damage::damaged_manifest ? newest / "flow-manifest" : newest / sst;
    if (kind == damage::missing_sst) {
      fs::remove(target);
    } else {
      std::fstream file(target, std::ios::in | std::ios::out | std::ios::binary);
      file.seekp(static_cast<std::streamoff>(fs::file_size(target) / 2));
      file.put('\x5a');
      file.put('\xa5');
    }
    auto [recovered, restored] = recover(dir / "checkpoint", dir / "restored", 2);
    CHECK(recovered.last_committed == 4);
    CHECK_THAT(joined(recovered.notes), Catch::Contains("state/0/3.snapshot.d is") &&
                                            Catch::Contains(kind == damage::damaged_manifest ? "flow-manifest" : sst));
    CHECK(restored == expected);
    CHECK_FALSE(fs::exists(newest));  // a damaged snapshot is removed
  }
}

// The restore calls of the stores whose directory contains part, summed.
restore_calls calls_under(const std::string& part) {
  std::lock_guard<std::mutex> lock(calls_mutex);
  restore_calls sum;
  for (const auto& [directory, calls] : calls_by_directory) {
    if (directory.find(part) == std::string::npos) continue;
    sum.from_directory += calls.from_directory;
    sum.clears += calls.clears;
  }
  return sum;
}

void forget_calls() {
  std::lock_guard<std::mutex> lock(calls_mutex);
  calls_by_directory.clear();
}

TEST_CASE("rocksdb checkpoint: instances restarted in the run or resumed from the checkpoint restore from a directory "
          "copy, never through rows",
          "[checkpoint][rocksdb][recovery]") {
  static std::once_flag registered;
  std::call_once(registered, [] {
    register_state_backend("counting-rocksdb", [](const state_backend_config& config, const std::string& directory) {
      return std::make_unique<counting_store>(connectors::make_rocksdb_store(config, directory), directory);
    });
  });
  temp_dir input;
  totals expected;
  write_key_sum_files(input.path(), 6, 0, 300, 400, expected);
  SECTION("a failure in the run") {
    std::atomic<std::int64_t> fail_at{3};  // epochs 0-2 committed: the restarted instances have state to restore
    latest_totals out;
    forget_calls();
    run_query(input.path(), "", "counting-rocksdb", out, &fail_at);
    CHECK(fail_at.load() == -1);  // the failure happened
    CHECK(out.get() == expected);
    // The second generation's two instances: each restored from a directory, none emptied for rows.
    const auto second_generation = calls_under("/generation-2/");
    CHECK(second_generation.from_directory == 2);
    CHECK(second_generation.clears == 0);
  }
  SECTION("a query resumed on its checkpoint") {
    temp_dir checkpoint;
    latest_totals out;
    run_query(input.path(), checkpoint.path().string(), "counting-rocksdb", out);
    write_key_sum_files(input.path(), 2, 5000, 300, 400, expected);
    forget_calls();
    run_query(input.path(), checkpoint.path().string(), "counting-rocksdb", out);
    CHECK(out.get() == expected);
    const auto first_generation = calls_under("/generation-1/");
    CHECK(first_generation.from_directory == 2);
    CHECK(first_generation.clears == 0);
  }
}

TEST_CASE("rocksdb checkpoint: a snapshot that cannot be staged fails the query with the store's error, as a "
          "failed write does",
          "[checkpoint][rocksdb]") {
  for (std::string backend : {"memory", "rocksdb"}) {
    INFO("state backend " << backend);
    temp_dir input, checkpoint;
    totals expected;
    latest_totals out;
    write_key_sum_files(input.path(), 3, 0, 100, 50, expected);
    // Slot 0's state directory is a file: the first epoch's snapshot (interval 1) cannot be made there. A
    // RocksDB state stages it on the coordinator's thread, a memory state's rows fail on the store's
    // snapshot thread, after the commit (which needs the epoch's delta only).
    fs::create_directories(checkpoint / "state");
    write_file(checkpoint / "state" / "0", "not a directory");
    session_config config{2, 2};
    config.state_backend = backend;
    config.state_snapshot_interval = 1;
    session s(config);
    dataflow_graph g;
    auto frame = s.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                     .schema(kv_schema()).load(input.path().string());
    auto source = g.add_source("files", scan_of(*frame.plan()));
    auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>()});
    g.connect(source, sum, partitioning::hash, {"k"});
    g.connect(sum, g.add_sink("out", kv_schema(), out.sink()), partitioning::forward);
    streaming_query query(s.context()->start_graph(std::move(g), query_options{"sums", available_now(),
                                                                               checkpoint.path().string(), {}}));
    CHECK_THROWS_WITH(query.await_termination(std::chrono::seconds(60)), Catch::Contains("terminated with exception"));
    REQUIRE(query.exception());
    const std::string failure = *query.exception();
    CHECK(failure.find("state/0") != std::string::npos);
    CHECK_FALSE(failure.starts_with("coordinator"));  // the coordinator's crash path would not close the sinks
    CHECK(flow::test::logged(checkpoint.path(), "commits/0") == (backend == "memory"));
  }
}
