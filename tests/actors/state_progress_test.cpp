// The progress report's stateOperators: one entry per stateful operator of a graph (two keyed operators in a
// row, one of which removes keys), with Spark's field names, the row counts of a model computed here from the
// rows the test wrote, and the checkpoint's figures (commitTimeMs, deltaBytes) when the query has one.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "flow/graph.hpp"
#include "flow/keyed_operator.hpp"
#include "flow/runtime/checkpoint_store.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;

namespace {

schema_ptr kv_schema() { return make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}}); }

constexpr auto slow_batch = 15ms;

// sum(v) by k; a row with a negative v removes its key. Emits the changed keys' (k, v) at the epoch's end.
// Sleeps slow_batch in each process call, so that its allUpdatesTimeMs has a known lower bound.
class closing_sums final : public keyed_operator<std::int64_t> {
 public:
  closing_sums()
      : keyed_operator({.name = "closing-sums", .input = kv_schema(), .keys = {"k"},
                        .output = {{"v", type_id::int64}}, .state = {{"v", type_id::int64}}}) {}
  void process(const batch& rows, const row_keys& keys, keyed_state<std::int64_t>& state, operator_context&) const override {
    std::this_thread::sleep_for(slow_batch);
    const column& v = rows.col(1);
    for (std::size_t i = 0; i < rows.num_rows(); ++i)
      if (v.ints()[i] < 0) state.remove(keys[i]);
      else state.get(keys[i]) += v.ints()[i];
  }
  void end_epoch(keyed_state<std::int64_t>& state, operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](key_ref key, const std::int64_t& v) { out.add(key).add(v); });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const std::int64_t& v, row_writer& out) const override { out.add(v); }
  std::int64_t load(const batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }
};

// How many rows each key received; emits the changed keys' counts as (k, v).
class rows_per_key final : public keyed_operator<std::int64_t> {
 public:
  rows_per_key()
      : keyed_operator({.name = "rows-per-key", .input = kv_schema(), .keys = {"k"},
                        .output = {{"v", type_id::int64}}, .state = {{"v", type_id::int64}}}) {}
  void process(const batch& rows, const row_keys& keys, keyed_state<std::int64_t>& state, operator_context&) const override {
    for (std::size_t i = 0; i < rows.num_rows(); ++i) ++state.get(keys[i]);
  }
  void end_epoch(keyed_state<std::int64_t>& state, operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](key_ref key, const std::int64_t& n) { out.add(key).add(n); });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const std::int64_t& n, row_writer& out) const override { out.add(n); }
  std::int64_t load(const batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }
};

using rows = std::vector<std::pair<std::int64_t, std::int64_t>>;

// A slot's first snapshot is due snapshot_interval epochs after "none" (-1).
const std::int64_t first_snapshot_epoch = runtime::checkpoint_options{}.snapshot_interval - 1;

// One file per epoch: keys added, removed (v = -1), re-added; then one new key per epoch until the epoch
// in which the checkpoint writes its first full snapshots.
std::vector<rows> make_epochs() {
  std::vector<rows> out = {
      {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}, {9, 10}},
      {{0, -1}, {1, -1}, {2, -1}, {3, -1}, {4, -1}, {10, 5}, {11, 5}, {12, 5}, {7, 2}},
      {{5, -1}, {6, -1}, {12, 1}},
      {{0, 3}},
  };
  while (static_cast<std::int64_t>(out.size()) < first_snapshot_epoch + 1)
    out.push_back({{100 + static_cast<std::int64_t>(out.size()), 1}});
  return out;
}

struct operator_figures {
  std::int64_t total = 0, updated = 0, removed = 0;
};

// Both operators' figures per epoch, computed from the rows alone.
std::vector<std::pair<operator_figures, operator_figures>> model(const std::vector<rows>& epochs) {
  std::map<std::int64_t, std::int64_t> sums;
  std::set<std::int64_t> counted;  // keys rows-per-key has seen
  std::vector<std::pair<operator_figures, operator_figures>> out;
  for (const auto& epoch : epochs) {
    std::set<std::int64_t> touched;
    for (auto [k, v] : epoch) {
      touched.insert(k);
      if (v < 0) sums.erase(k);
      else sums[k] += v;
    }
    operator_figures sum_figures, count_figures;
    sum_figures.updated = static_cast<std::int64_t>(touched.size());
    for (auto k : touched) {
      if (sums.count(k)) {
        counted.insert(k);  // closing-sums emits the live changed keys to rows-per-key
        ++count_figures.updated;
      } else {
        ++sum_figures.removed;
      }
    }
    sum_figures.total = static_cast<std::int64_t>(sums.size());
    count_figures.total = static_cast<std::int64_t>(counted.size());
    out.emplace_back(sum_figures, count_figures);
  }
  return out;
}

// The stateOperators entries of a progress report, each from its "{" to its closing "}}" (customMetrics).
std::vector<std::string> state_operators(const std::string& json) {
  std::vector<std::string> out;
  const auto begin = json.find("\"stateOperators\":[");
  const auto end = json.find("],\"sources\"", begin);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  for (auto at = json.find("{\"operatorName\"", begin); at < end; at = json.find("{\"operatorName\"", at + 1))
    out.push_back(json.substr(at, json.find("}}", at) + 2 - at));
  return out;
}

std::int64_t figure(const std::string& entry, const std::string& name) {
  auto value = json_int(entry, name);
  INFO(entry);
  REQUIRE(value);
  return *value;
}

// Runs closing-sums (parallelism 2) then rows-per-key (parallelism 3) over the epochs' files; returns the
// progress reports. With late epochs the query runs on a 10 ms trigger, and their files are written once the
// checkpoint's first snapshots are on disk.
std::vector<std::string> run(const temp_dir& dir, const std::vector<rows>& epochs, const std::string& checkpoint,
                             const std::vector<rows>& late = {}) {
  std::filesystem::create_directories(dir / "in");
  auto write_epoch = [&](std::size_t e, const rows& kv) {
    std::string text = "k,v\n";
    for (auto [k, v] : kv) text += std::to_string(k) + "," + std::to_string(v) + "\n";
    write_file(dir / "in" / ("part-" + std::to_string(100 + e) + ".csv"), text);
  };
  for (std::size_t e = 0; e < epochs.size(); ++e) write_epoch(e, epochs[e]);
  session s(session_config{2, 1});
  auto frame = s.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                   .schema(kv_schema()).load((dir / "in").string());
  dataflow_graph g;
  auto source = g.add_source("files", scan_of(*frame.plan()));
  auto sums = g.add_operators("sums", kv_schema(), {std::make_shared<closing_sums>()}, 2);
  g.connect(source, sums, partitioning::hash, {"k"});
  auto counts = g.add_operators("counts", kv_schema(), {std::make_shared<rows_per_key>()}, 3);
  g.connect(sums, counts, partitioning::hash, {"k"});
  sink_spec discard;
  discard.format = "foreachBatch";
  discard.mode = output_mode::update;
  discard.foreach_batch = [](const batch&, std::int64_t) {};
  auto sink = g.add_sink("out", kv_schema(), discard);
  g.connect(counts, sink, partitioning::forward);
  const trigger when = late.empty() ? available_now() : processing_time(10ms);
  streaming_query query(s.context()->start_graph(std::move(g), query_options{"", when, checkpoint}));
  if (!late.empty()) {
    auto snapshots_on_disk = [&] {
      for (int slot = 0; slot < 5; ++slot) {
        const auto name = std::to_string(first_snapshot_epoch) + ".snapshot";
        if (!std::filesystem::exists(std::filesystem::path(checkpoint) / "state" / std::to_string(slot) / name))
          return false;
      }
      return true;
    };
    for (int i = 0; i < 3000 && !snapshots_on_disk(); ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(snapshots_on_disk());
    std::this_thread::sleep_for(200ms);  // renamed into place; then its directory synced and the bytes noted
    for (std::size_t e = 0; e < late.size(); ++e) write_epoch(epochs.size() + e, late[e]);
    const auto last = static_cast<std::int64_t>(epochs.size() + late.size()) - 1;
    auto done = [&] {
      const auto progress = query.last_progress();
      return progress && json_int(*progress, "batchId") == last;
    };
    for (int i = 0; i < 3000 && !done(); ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(done());
    query.stop();
  }
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  return query.recent_progress();
}

// The bytes of the slots' snapshot files of epoch.
std::int64_t snapshot_file_bytes(const std::filesystem::path& checkpoint, std::int64_t epoch) {
  std::int64_t bytes = 0;
  for (const auto& slot : std::filesystem::directory_iterator(checkpoint / "state"))
    bytes += static_cast<std::int64_t>(std::filesystem::file_size(slot.path() / (std::to_string(epoch) + ".snapshot")));
  return bytes;
}

}  // namespace

TEST_CASE("progress: one stateOperators entry per stateful operator, with rows updated, total and removed", "[progress][graph]") {
  temp_dir dir;
  const auto epochs = make_epochs();
  const auto progress = run(dir, epochs, "");
  const auto expected = model(epochs);
  REQUIRE(progress.size() == expected.size());
  for (std::size_t e = 0; e < expected.size(); ++e) {
    INFO("epoch " << e << ": " << progress[e]);
    CHECK(json_int(progress[e], "batchId") == static_cast<std::int64_t>(e));
    auto entries = state_operators(progress[e]);
    REQUIRE(entries.size() == 2);
    CHECK_THAT(entries[0], Catch::StartsWith("{\"operatorName\":\"closing-sums\","));
    CHECK_THAT(entries[1], Catch::StartsWith("{\"operatorName\":\"rows-per-key\","));
    const auto& [sums, counts] = expected[e];
    CHECK(figure(entries[0], "numRowsTotal") == sums.total);
    CHECK(figure(entries[0], "numRowsUpdated") == sums.updated);
    CHECK(figure(entries[0], "numRowsRemoved") == sums.removed);
    CHECK(figure(entries[1], "numRowsTotal") == counts.total);
    CHECK(figure(entries[1], "numRowsUpdated") == counts.updated);
    CHECK(figure(entries[1], "numRowsRemoved") == 0);
    CHECK(figure(entries[0], "numShufflePartitions") == 2);
    CHECK(figure(entries[0], "numStateStoreInstances") == 2);
    CHECK(figure(entries[1], "numShufflePartitions") == 3);
    CHECK(figure(entries[0], "allUpdatesTimeMs") >= std::chrono::milliseconds(slow_batch).count());
    CHECK(figure(entries[0], "memoryUsedBytes") > 0);
    // Without a checkpoint nothing is written.
    CHECK(figure(entries[0], "commitTimeMs") == 0);
    CHECK(figure(entries[0], "deltaBytes") == 0);
    CHECK(figure(entries[1], "snapshotBytes") == 0);
  }
  // The removals happened: the model is not trivially zero.
  CHECK(expected[1].first.removed == 5);
}

TEST_CASE("progress: with a checkpoint each stateful operator reports the bytes and time of its state's write", "[progress][graph]") {
  temp_dir dir;
  const auto epochs = make_epochs();
  const auto progress = run(dir, epochs, (dir / "checkpoint").string());
  REQUIRE(progress.size() == epochs.size());
  const auto expected = model(epochs);
  for (std::size_t e = 0; e < progress.size(); ++e) {
    INFO("epoch " << e << ": " << progress[e]);
    auto entries = state_operators(progress[e]);
    REQUIRE(entries.size() == 2);
    CHECK(figure(entries[0], "numRowsTotal") == expected[e].first.total);
    CHECK(figure(entries[1], "numRowsTotal") == expected[e].second.total);
    for (const auto& entry : entries) {
      CHECK_THAT(entry, Catch::Contains("\"commitTimeMs\":") &&
                            Catch::Contains("\"customMetrics\":{\"deltaBytes\":"));
      // Full snapshots only when due; deltas every epoch that changed the state (each one changes both:
      // rows-per-key gets closing-sums' changed live keys).
      CHECK(figure(entry, "deltaBytes") > 0);
      // The first snapshots, due at the last epoch, are written after its commit (on the checkpoint's own
      // thread): no epoch reports their bytes (the next test: a later epoch does).
      CHECK(figure(entry, "snapshotBytes") == 0);
    }
  }
  CHECK(snapshot_file_bytes(dir / "checkpoint", first_snapshot_epoch) > 0);
}

TEST_CASE("progress: a row snapshot written in the background after its epoch's commit is reported by the first "
          "epoch committed after it",
          "[progress][graph]") {
  temp_dir dir;
  const auto epochs = make_epochs();
  const std::vector<rows> late = {{{200, 1}}, {{201, 1}}};
  const auto progress = run(dir, epochs, (dir / "checkpoint").string(), late);
  const auto snapshots = snapshot_file_bytes(dir / "checkpoint", first_snapshot_epoch);
  REQUIRE(snapshots > 0);
  std::map<std::int64_t, std::int64_t> reported;  // per epoch, over both operators
  for (const auto& report : progress) {
    INFO(report);
    if (json_int(report, "numInputRows").value_or(0) == 0) continue;  // an idle report
    for (const auto& entry : state_operators(report)) reported[*json_int(report, "batchId")] += figure(entry, "snapshotBytes");
  }
  REQUIRE(reported.size() == epochs.size() + late.size());
  const auto after = static_cast<std::int64_t>(epochs.size());
  for (const auto& [epoch, bytes] : reported) {
    INFO("epoch " << epoch);
    CHECK(bytes == (epoch == after ? snapshots : 0));
  }
}
