// Dataflow graphs built by hand and run by the runtime: fan-out to two sinks, two keyed operators in a
// row, a union of two sources, parallelism per vertex, and a keyed operator's state surviving an injected
// failure. The operators are written here against flow/stream_operator.hpp alone, as a user would; every
// result is compared with the same sums computed directly from the rows the test wrote.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "flow/graph.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::test;

namespace {

using totals = std::map<std::int64_t, std::int64_t>;

schema_ptr kv_schema() { return make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}}); }

// A key -> total table that records which keys changed since take_changes.
class totals_state final : public operator_state {
 public:
  totals table;
  std::set<std::int64_t> changed;  // since the last end_epoch's emit
  std::set<std::int64_t> unreported;  // since the last take_changes

  void add(std::int64_t k, std::int64_t v) {
    table[k] += v;
    changed.insert(k);
    unreported.insert(k);
  }
  static batch rows_of(const totals& t, const std::set<std::int64_t>& keys) {
    std::vector<std::vector<value>> rows;
    for (auto k : keys) rows.push_back({k, t.at(k)});
    return make_batch(kv_schema(), rows);
  }
  batch snapshot() const override {
    std::set<std::int64_t> keys;
    for (auto& [k, v] : table) keys.insert(k);
    return rows_of(table, keys);
  }
  void restore(const batch& rows) override {
    table.clear();
    apply_changes(rows);
  }
  batch take_changes() override {
    batch out = rows_of(table, unreported);
    unreported.clear();
    return out;
  }
  void apply_changes(const batch& rows) override {
    for (std::size_t i = 0; i < rows.num_rows(); ++i) table[rows.col(0).ints()[i]] = rows.col(1).ints()[i];
  }
  std::size_t num_rows() const override { return table.size(); }
  std::size_t memory_bytes() const override { return table.size() * 48; }
};

// sum(v) by k; emits the changed keys' totals (k, v) at each epoch's end. Throws once in the epoch
// fail_at_epoch when it is set (a failure injected for the recovery test).
class keyed_sum final : public stream_operator {
 public:
  explicit keyed_sum(std::string name, std::atomic<std::int64_t>* fail_at_epoch = nullptr)
      : name_(std::move(name)), fail_at_epoch_(fail_at_epoch) {}
  std::string name() const override { return name_; }
  const schema_ptr& output_schema() const override { return schema_; }
  std::vector<std::string> key_columns() const override { return {"k"}; }
  std::unique_ptr<operator_state> make_state() const override { return std::make_unique<totals_state>(); }
  void process(const batch& input, std::size_t, operator_state* state, operator_context& ctx) const override {
    if (fail_at_epoch_ && ctx.epoch() == fail_at_epoch_->load()) {
      fail_at_epoch_->store(-1);
      throw error("injected failure in " + name_);
    }
    auto& s = static_cast<totals_state&>(*state);
    const auto& k = input.col("k");
    const auto& v = input.col("v");
    for (std::size_t i = 0; i < input.num_rows(); ++i) s.add(k.ints()[i], v.ints()[i]);
  }
  void end_epoch(operator_state* state, operator_context& ctx) const override {
    auto& s = static_cast<totals_state&>(*state);
    if (s.changed.empty()) return;
    ctx.emit(totals_state::rows_of(s.table, s.changed));
    s.changed.clear();
  }

 private:
  std::string name_;
  schema_ptr schema_ = kv_schema();
  std::atomic<std::int64_t>* fail_at_epoch_;
};

// Keeps the newest total per key from update-mode output.
struct latest_totals {
  std::mutex mutex;
  totals values;
  foreach_batch_function sink() {
    return [this](const batch& rows, std::int64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      for (std::size_t i = 0; i < rows.num_rows(); ++i) values[rows.col(0).ints()[i]] = rows.col(1).ints()[i];
    };
  }
  totals get() {
    std::lock_guard<std::mutex> lock(mutex);
    return values;
  }
};

sink_spec foreach_batch(latest_totals& out) {
  sink_spec spec;
  spec.format = "foreachBatch";
  spec.mode = output_mode::update;
  spec.foreach_batch = out.sink();
  return spec;
}

// files csv files of rows k = i % 7, v = i (i counting on from first); returns sum(v) by k.
totals write_files(const temp_dir& dir, int files, std::int64_t first, std::int64_t rows_per_file) {
  totals expected;
  std::int64_t i = first;
  for (int f = 0; f < files; ++f) {
    std::string text = "k,v\n";
    for (std::int64_t r = 0; r < rows_per_file; ++r, ++i) {
      text += std::to_string(i % 7) + "," + std::to_string(i) + "\n";
      expected[i % 7] += i;
    }
    write_file(dir / ("part-" + std::to_string(1000000 + i - rows_per_file) + ".csv"), text);
  }
  return expected;
}

scan_spec file_scan(session& s, const temp_dir& dir) {
  auto frame = s.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                   .schema(kv_schema()).load(dir.path().string());
  return scan_of(*frame.plan());
}

totals add(totals a, const totals& b) {
  for (auto& [k, v] : b) a[k] += v;
  return a;
}

// Runs graph to its end (available-now) and requires that it succeeded.
streaming_query run_to_end(session& s, dataflow_graph graph) {
  streaming_query query(s.context()->start_graph(std::move(graph), query_options{"", available_now()}));
  REQUIRE(query.await_termination(std::chrono::seconds(60)));
  REQUIRE_FALSE(query.exception());
  return query;
}

}  // namespace

TEST_CASE("graph: one keyed operator feeds two sinks, and a second keyed operator in a row", "[graph]") {
  temp_dir dir;
  auto expected = write_files(dir, 6, 0, 500);
  for (std::size_t parallelism : {1, 2, 4}) {
    session s(session_config{2, parallelism});
    dataflow_graph g;
    auto source = g.add_source("files", file_scan(s, dir));
    auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>("sum")});
    g.connect(source, sum, partitioning::hash, {"k"});
    latest_totals direct, summed_again;
    auto sink_a = g.add_sink("direct", kv_schema(), foreach_batch(direct));
    g.connect(sum, sink_a, partitioning::forward);
    // The second keyed operator sums the running totals it receives: one per key and epoch that changed it.
    auto again = g.add_operators("sum-of-totals", kv_schema(), {std::make_shared<keyed_sum>("sum-of-totals")}, 3);
    g.connect(sum, again, partitioning::hash, {"k"});
    auto sink_b = g.add_sink("again", kv_schema(), foreach_batch(summed_again));
    g.connect(again, sink_b, partitioning::rebalance);
    auto query = run_to_end(s, std::move(g));
    INFO("parallelism " << parallelism);
    // Two sinks: each one's metrics under its vertex name, both descriptions.
    CHECK_THAT(*query.last_progress(), Catch::Contains("\"direct.numEpochs\":6") && Catch::Contains("\"again.numEpochs\":6") &&
                                           Catch::Contains("ForeachBatchSink, ForeachBatchSink"));
    CHECK(direct.get() == expected);
    // Independently: each epoch (one file) changes every key; the second operator adds up the totals.
    totals running, sum_of_totals;
    for (int f = 0; f < 6; ++f) {
      for (std::int64_t i = f * 500; i < (f + 1) * 500; ++i) running[i % 7] += i;
      sum_of_totals = add(sum_of_totals, running);
    }
    CHECK(summed_again.get() == sum_of_totals);
  }
}

TEST_CASE("graph: a union of two sources reaches one keyed operator", "[graph]") {
  temp_dir left, right;
  auto expected = add(write_files(left, 3, 0, 400), write_files(right, 5, 100000, 300));
  session s(session_config{2, 2});
  dataflow_graph g;
  auto a = g.add_source("left", file_scan(s, left));
  auto b = g.add_source("right", file_scan(s, right), {}, 1);
  auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>("sum")});
  g.connect(a, sum, partitioning::hash, {"k"});
  g.connect(b, sum, partitioning::hash, {"k"});
  latest_totals out;
  auto sink = g.add_sink("out", kv_schema(), foreach_batch(out));
  g.connect(sum, sink, partitioning::forward);
  auto query = run_to_end(s, std::move(g));
  CHECK(out.get() == expected);
  // Each source reports its own offsets and rows; the right one has more files than the left.
  auto progress = query.recent_progress();
  REQUIRE(progress.size() == 5);
  CHECK_THAT(progress.back(), Catch::Contains("\"numInputRows\":300"));
  CHECK_THAT(progress.front(), Catch::Contains("\"numInputRows\":700"));
  // Each source under its own entry: the left one, done, reads an empty range (no rows) and still reports
  // its 3 files read; the right one its fifth file.
  CHECK_THAT(progress.back(), Catch::Contains("\"startOffset\":{\"logOffset\":3},\"endOffset\":{\"logOffset\":3},"
                                              "\"numInputRows\":0,") &&
                                  Catch::Contains("\"numFilesRead\":3,") && Catch::Contains("\"numFilesRead\":5,"));
}

TEST_CASE("graph: a keyed operator's state survives an injected failure and nothing is counted twice", "[graph]") {
  for (std::string backend : {"memory", "rocksdb"}) {
    INFO("state backend " << backend);
    temp_dir dir;
    auto expected = write_files(dir, 8, 0, 250);
    std::atomic<std::int64_t> fail_at{5};
    session_config config{2, 2};
    config.state_backend = backend;
    session s(config);
    dataflow_graph g;
    auto source = g.add_source("files", file_scan(s, dir));
    auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>("sum", &fail_at)});
    g.connect(source, sum, partitioning::hash, {"k"});
    latest_totals out;
    auto sink = g.add_sink("out", kv_schema(), foreach_batch(out));
    g.connect(sum, sink, partitioning::forward);
    auto query = run_to_end(s, std::move(g));
    CHECK(fail_at.load() == -1);  // the failure happened
    CHECK(out.get() == expected);
    bool restarted = false;
    for (const auto& p : query.recent_progress()) restarted |= json_int(p, "numRestarts").value_or(0) > 0;
    CHECK(restarted);
  }
}

TEST_CASE("graph: a keyed operator's state continues from its checkpoint in a new session, in memory and in RocksDB",
          "[graph][checkpoint]") {
  for (std::string backend : {"memory", "rocksdb"}) {
    INFO("state backend " << backend);
    temp_dir dir, checkpoint;
    latest_totals out;
    auto run = [&](std::size_t parallelism) {
      session_config config{2, parallelism};
      config.state_backend = backend;
      session s(config);
      dataflow_graph g;
      auto source = g.add_source("files", file_scan(s, dir));
      auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>("sum")});
      g.connect(source, sum, partitioning::hash, {"k"});
      auto sink = g.add_sink("out", kv_schema(), foreach_batch(out));
      g.connect(sum, sink, partitioning::forward);
      streaming_query query(s.context()->start_graph(
          std::move(g), query_options{"sums", available_now(), (checkpoint / "sums").string(), {}}));
      REQUIRE(query.await_termination(std::chrono::seconds(60)));
      REQUIRE_FALSE(query.exception());
      return *query.last_progress();
    };
    auto expected = write_files(dir, 3, 0, 200);
    CHECK(json_int(run(2), "batchId") == 2);
    CHECK(out.get() == expected);
    // Files that arrive later are summed on top of the restored state; the files read before are not read again.
    // The session's parallelism changed: the sum vertex, which sets none, keeps the checkpoint's.
    expected = add(expected, write_files(dir, 2, 600, 200));
    auto last = run(3);
    CHECK(json_int(last, "batchId") == 4);
    CHECK(out.get() == expected);
    // The backend's working files went with the query; the checkpoint holds what must last.
    const auto working = checkpoint / "sums" / "working";
    CHECK((!std::filesystem::exists(working) || std::filesystem::is_empty(working)));
  }
}

TEST_CASE("graph: mistakes are refused when the query starts", "[graph]") {
  temp_dir dir;
  write_files(dir, 1, 0, 10);
  session s(session_config{2, 2});
  dataflow_graph g;
  auto source = g.add_source("files", file_scan(s, dir));
  auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>("sum")});
  g.connect(source, sum, partitioning::rebalance);
  latest_totals out;
  g.connect(sum, g.add_sink("out", kv_schema(), foreach_batch(out)), partitioning::forward);
  CHECK_THAT(error_of([&] { s.context()->start_graph(g, query_options{}); }),
             Catch::Contains("partition it by hash of [k]"));
}

TEST_CASE("graph: two queries started from one data frame with an aggregation then where and select run at once", "[graph]") {
  temp_dir dir;
  auto expected = write_files(dir, 4, 0, 300);
  session s(session_config{2, 2});
  auto frame = s.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                   .schema(kv_schema()).load(dir.path().string());
  const std::int64_t threshold = 102700;  // keys 0, 1, 2 and 6 end above it, 3, 4 and 5 below
  auto big = frame.group_by({col("k")}).sum("v").where(col("sum(v)") > lit(threshold)).select({col("k"), col("sum(v)").as("v")});
  auto in_memory = big.write_stream().format("memory").query_name("big").output_mode("complete")
                       .trigger(available_now()).start();
  latest_totals updates;
  auto upserted = big.write_stream().output_mode("update").trigger(available_now()).foreach_batch(updates.sink()).start();
  REQUIRE(in_memory.await_termination(std::chrono::seconds(60)));
  REQUIRE(upserted.await_termination(std::chrono::seconds(60)));
  REQUIRE_FALSE(in_memory.exception());
  REQUIRE_FALSE(upserted.exception());
  totals wanted;
  for (auto [k, v] : expected)
    if (v > threshold) wanted[k] = v;
  REQUIRE(wanted.size() > 1);
  REQUIRE(wanted.size() < expected.size());
  totals from_memory;
  auto table = s.sql("SELECT k, v FROM big").collect_batch();
  for (std::size_t i = 0; i < table.num_rows(); ++i) from_memory[table.col(0).ints()[i]] = table.col(1).ints()[i];
  CHECK(from_memory == wanted);
  // Update mode passes a group whenever it changed and passed the filter: its newest total is the final one.
  CHECK(updates.get() == wanted);
}

namespace {

// Passes its input on and records which instance of its vertex processed rows in which epoch.
class instance_recorder final : public stream_operator {
 public:
  std::string name() const override { return "record-instance"; }
  const schema_ptr& output_schema() const override { return schema_; }
  void process(const batch& input, std::size_t, operator_state*, operator_context& ctx) const override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      instances_by_epoch_[ctx.epoch()].insert(ctx.instance());
    }
    ctx.emit(input);
  }
  std::map<std::int64_t, std::set<std::size_t>> instances_by_epoch() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return instances_by_epoch_;
  }

 private:
  schema_ptr schema_ = kv_schema();
  mutable std::mutex mutex_;
  mutable std::map<std::int64_t, std::set<std::size_t>> instances_by_epoch_;
};

}  // namespace

TEST_CASE("graph: epochs of one small file each are decoded by every source instance in turn", "[graph]") {
  temp_dir dir;
  auto expected = write_files(dir, 6, 0, 200);
  session s(session_config{2, 2});
  dataflow_graph g;
  auto recorder = std::make_shared<instance_recorder>();
  auto source = g.add_source("files", file_scan(s, dir), {recorder});
  auto sum = g.add_operators("sum", kv_schema(), {std::make_shared<keyed_sum>("sum")});
  g.connect(source, sum, partitioning::hash, {"k"});
  latest_totals out;
  g.connect(sum, g.add_sink("out", kv_schema(), foreach_batch(out)), partitioning::forward);
  run_to_end(s, std::move(g));
  CHECK(out.get() == expected);
  // Each file is one unit: the epochs' units go to the two instances alternately (all went to instance 0,
  // which then decoded every file while the other instance of the source vertex idled).
  const auto seen = recorder->instances_by_epoch();
  REQUIRE(seen.size() == 6);
  std::set<std::size_t> decoding;
  for (const auto& [epoch, instances] : seen) {
    CHECK(instances.size() == 1);
    decoding.insert(instances.begin(), instances.end());
  }
  CHECK(decoding == std::set<std::size_t>{0, 1});
}
