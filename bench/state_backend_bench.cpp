// Keyed state in memory versus RocksDB: a keyed sum over N keys (default 10 M, --keys N), each backend in
// its own process. Prints one JSON line per run: load seconds, peak RSS, and for RocksDB the time and new
// bytes of a snapshot after 1% of the keys changed. Then both backends under an address-space limit
// (--limit-mb, default 1024) that the memory backend cannot meet: it reports bad_alloc, RocksDB finishes.
// With --query the same sum runs as a checkpointed query instead (the keys input of bench_input.hpp: 10
// epochs of N/10 new keys, 10 epochs changing 1% each; a snapshot every 2 epochs), both backends under
// the limit: seconds, peak RSS, and per snapshot epoch the bytes the snapshot wrote (progress snapshotBytes).
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <new>
#include <optional>
#include <set>
#include <string>

#include "bench_input.hpp"
#include "child_run.hpp"
#include "flow/connectors/rocksdb_store.hpp"
#include "flow/graph.hpp"
#include "flow/keyed_operator.hpp"
#include "flow/session.hpp"

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// Sums v per k (the keys input's columns), emitting nothing (the state is what is measured).
class sum_by_id final : public flow::keyed_operator<std::int64_t> {
 public:
  static flow::schema_ptr input() {
    return flow::make_schema({{"k", flow::type_id::int64, false}, {"v", flow::type_id::int64, false}});
  }
  sum_by_id()
      : keyed_operator({.name = "sum_by_id",
                        .input = input(),
                        .keys = {"k"},
                        .output = {{"sum", flow::type_id::int64}},
                        .state = {{"sum", flow::type_id::int64}}}) {}
  void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<std::int64_t>& state,
               flow::operator_context&) const override {
    const auto* amount = rows.col(1).ints();
    for (std::size_t i = 0; i < rows.num_rows(); ++i) state.get(keys[i]) += amount[i];
  }
  void save(const std::int64_t& sum, flow::row_writer& out) const override { out.add(sum); }
  std::int64_t load(const flow::batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }
};

class no_output final : public flow::operator_context {
 public:
  void emit(flow::batch) override {}
  std::int64_t epoch() const override { return 0; }
  std::size_t instance() const override { return 0; }
  std::size_t parallelism() const override { return 1; }
};

// Ids first, first + stride, ... (count rows), amount 1.
flow::batch rows(std::int64_t first, std::int64_t count, std::int64_t stride) {
  flow::column_builder ids(flow::type_id::int64), amounts(flow::type_id::int64);
  for (std::int64_t i = 0; i < count; ++i) {
    ids.append_int(first + i * stride);
    amounts.append_int(1);
  }
  return flow::batch(sum_by_id::input(), {ids.finish(), amounts.finish()});
}

void run_epoch(const sum_by_id& op, flow::operator_state& state, const flow::batch& input) {
  no_output ctx;
  const flow::stream_operator& as_operator = op;
  as_operator.process(input, 0, &state, ctx);
  as_operator.end_epoch(&state, ctx);
  state.take_changes();
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

std::size_t new_bytes(const fs::path& dir, const fs::path& previous) {
  std::set<ino_t> old_inodes;
  struct stat st {};
  for (const auto& entry : fs::directory_iterator(previous))
    if (stat(entry.path().c_str(), &st) == 0) old_inodes.insert(st.st_ino);
  std::size_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (stat(entry.path().c_str(), &st) == 0 && !old_inodes.count(st.st_ino)) total += entry.file_size();
  return total;
}

// One run: loads `keys` keys in epochs of 100,000, then (RocksDB) snapshots, changes 1%, snapshots again.
std::string run(const std::string& backend, std::int64_t keys, const fs::path& work, long limit_mb) {
  const sum_by_id op;
  auto state = op.make_state();
  state->use_backend(flow::state_backend_config{.kind = backend}, (work / "store").string());
  const auto start = clock_type::now();
  constexpr std::int64_t per_epoch = 100'000;
  for (std::int64_t first = 0; first < keys; first += per_epoch)
    run_epoch(op, *state, rows(first, std::min(per_epoch, keys - first), 1));
  const double load = seconds_since(start);
  std::string line = "{\"bench\":\"state_backend\",\"backend\":\"" + backend + "\",\"keys\":" + std::to_string(keys) +
                     ",\"limit_mb\":" + std::to_string(limit_mb) + ",\"result\":\"ok\",\"load_seconds\":" +
                     std::to_string(load);
  if (state->snapshots_to_directory()) {
    state->snapshot_to((work / "s1").string());
    run_epoch(op, *state, rows(0, keys / 100, 100));  // 1% of the keys, spread over all of them
    const auto snap = clock_type::now();
    state->snapshot_to((work / "s2").string());
    line += ",\"snapshot_seconds\":" + std::to_string(seconds_since(snap)) +
            ",\"snapshot_new_bytes\":" + std::to_string(new_bytes(work / "s2", work / "s1"));
  }
  line += ",\"rows\":" + std::to_string(state->num_rows()) + ",\"peak_rss_kb\":" + std::to_string(peak_rss_kb()) + "}";
  return line;
}

// The keys input (written to work first, not timed) through sum_by_id into the noop sink, available-now, on
// a checkpoint in work.
std::string run_query(const std::string& backend, std::int64_t keys, const fs::path& work, long limit_mb) {
  bench::write_keys_input(work / "input", static_cast<std::size_t>(keys));
  flow::session_config config{2, 1};
  config.state_backend = backend;
  config.state_snapshot_interval = 2;
  flow::session session(config);
  flow::dataflow_graph graph;
  auto frame = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                   .schema(sum_by_id::input()).load((work / "input").string());
  auto source = graph.add_source("files", flow::scan_of(*frame.plan()));
  const auto op = std::make_shared<sum_by_id>();
  auto sum = graph.add_operators("sum", sum_by_id::input(), {op});
  graph.connect(source, sum, flow::partitioning::hash, {"k"});
  flow::sink_spec noop;
  noop.format = "noop";
  noop.mode = flow::output_mode::update;
  graph.connect(sum, graph.add_sink("out", op->output_schema(), noop), flow::partitioning::forward);
  const auto start = clock_type::now();
  flow::streaming_query query(session.context()->start_graph(
      std::move(graph), flow::query_options{"sum_by_id", flow::available_now(), (work / "checkpoint").string(), {}}));
  std::optional<std::string> failure;
  try {
    query.await_termination();  // throws the query's failure
  } catch (const std::exception& e) {
    failure = e.what();
  }
  const double seconds = seconds_since(start);
  std::string line = "{\"bench\":\"state_backend\",\"run\":\"checkpointed_query\",\"backend\":\"" + backend +
                     "\",\"keys\":" + std::to_string(keys) + ",\"limit_mb\":" + std::to_string(limit_mb);
  if (failure) {
    const bool out_of_memory = failure->find("bad_alloc") != std::string::npos;
    return line + ",\"result\":\"" + (out_of_memory ? "bad_alloc" : "error") + "\",\"message\":\"" +
           failure->substr(0, 200) + "\"}";
  }
  line += ",\"result\":\"ok\",\"seconds\":" + std::to_string(seconds) + ",\"snapshots\":[";
  bool first = true;
  for (const auto& progress : query.recent_progress()) {
    const double bytes = bench::json_number(progress, "snapshotBytes");
    if (bytes == 0) continue;
    line += std::string(first ? "" : ",") + "{\"epoch\":" + std::to_string(std::llround(bench::json_number(progress, "batchId"))) +
            ",\"rows\":" + std::to_string(std::llround(bench::json_number(progress, "numRowsTotal"))) +
            ",\"snapshot_bytes\":" + std::to_string(std::llround(bytes)) +
            ",\"commit_ms\":" + std::to_string(std::llround(bench::json_number(progress, "commitTimeMs"))) + "}";
    first = false;
  }
  return line + "],\"peak_rss_kb\":" + std::to_string(peak_rss_kb()) + "}";
}

// Runs `run` in a child process (under an address-space limit when limit_mb > 0) and prints its line.
using run_function = std::string (*)(const std::string& backend, std::int64_t keys, const fs::path& work, long limit_mb);
void in_child(const std::string& backend, std::int64_t keys, const fs::path& work, long limit_mb, run_function body) {
  auto child = bench::run_in_child("state_backend_bench", [&] {
    if (limit_mb > 0) {
      mallopt(M_ARENA_MAX, 2);  // glibc reserves 64 MiB of address space per arena otherwise
      const rlimit limit{static_cast<rlim_t>(limit_mb) << 20, static_cast<rlim_t>(limit_mb) << 20};
      setrlimit(RLIMIT_AS, &limit);
    }
    std::string line;
    try {
      line = body(backend, keys, work, limit_mb);
    } catch (const std::bad_alloc&) {
      line = "{\"bench\":\"state_backend\",\"backend\":\"" + backend + "\",\"keys\":" + std::to_string(keys) +
             ",\"limit_mb\":" + std::to_string(limit_mb) + ",\"result\":\"bad_alloc\"}";
    } catch (const std::exception& e) {
      line = "{\"bench\":\"state_backend\",\"backend\":\"" + backend + "\",\"limit_mb\":" + std::to_string(limit_mb) +
             ",\"result\":\"error\",\"message\":\"" + std::string(e.what()).substr(0, 200) + "\"}";
    }
    return line + "\n";
  });
  std::string text = child.text;
  if (text.empty())
    text = "{\"bench\":\"state_backend\",\"backend\":\"" + backend + "\",\"limit_mb\":" + std::to_string(limit_mb) +
           ",\"result\":\"killed\",\"status\":" + std::to_string(child.status) + "}\n";
  std::cout << text << std::flush;
  fs::remove_all(work);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t keys = 10'000'000;
  long limit_mb = 1024;
  bool query = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--keys") == 0 && has_value) keys = std::stoll(argv[++i]);
    else if (std::strcmp(argv[i], "--limit-mb") == 0 && has_value) limit_mb = std::stol(argv[++i]);
    else if (std::strcmp(argv[i], "--query") == 0) query = true;
    else {
      std::cerr << "usage: state_backend_bench [--keys N] [--limit-mb MB] [--query]\n";
      return 2;
    }
  }
  flow::connectors::register_state_backends();  // no query runs here: the runtime does not register it
  const fs::path work = fs::temp_directory_path() / ("state_backend_bench." + std::to_string(getpid()));
  if (query) {
    for (const char* backend : {"memory", "rocksdb"}) in_child(backend, keys, work, limit_mb, run_query);
    return 0;
  }
  for (const char* backend : {"memory", "rocksdb"}) in_child(backend, keys, work, 0, run);
  for (const char* backend : {"memory", "rocksdb"}) in_child(backend, keys, work, limit_mb, run);
  return 0;
}
