// What a durable checkpoint costs a query, measured from outside the runtime (docs/fault-tolerance.md,
// "Measurements"). Every run is a forked child (its own actor system and memory), the modes take
// turns round by round (without, then with a checkpoint) and the medians count. Prints one JSON line per figure:
//  * retail: the retail_by_day aggregation (CustomerID x 1-hour window sum, complete mode, memory sink, file
//    source, available-now) with maxFilesPerTrigger 1 and 10, without and with a checkpoint;
//  * keys: a group_by sum over KEYS keys (CSV files generated in the work directory: 10 files of KEYS/10 new
//    keys, then 10 files changing 1% of the keys each; one file per epoch, update mode, noop sink), without
//    and with a checkpoint; per epoch its duration both ways (progress durationMs.triggerExecution) and the
//    bytes the checkpoint holds for it (the state files state/*/<epoch>.delta and .snapshot, and of a
//    .snapshot.d directory the files no earlier snapshot directory links); keys_rocksdb: the same query with
//    the RocksDB state backend (--flow.state-backend=rocksdb), whose result must equal the memory backend's;
//  * recovery: a process runs the keys query on a checkpoint with a 100 ms trigger, is killed with SIGKILL once
//    its last epoch is committed, one more 1%-update file arrives, and a new process starts the query on that
//    checkpoint: the time from start() to the progress of its first epoch, against a process without a
//    checkpoint that runs the same file;
//  * atomic_write: the median time of one small atomic file write (durable_file.hpp: write, fsync, rename,
//    directory fsync) in the work directory, the floor of every checkpoint file.
//  * append_fdatasync: the mean time of one 100-byte append and fdatasync to a log file (durable_file.hpp's
//    sealed_log, 200 appends), what a file source's log entry costs.
// Exits 1 when a run with a checkpoint computes another result than the run without, 2 on input it cannot use.
// Usage: checkpoint_bench [DATA_DIR [REPEATS [KEYS [RUNS]]]] (default: the shared data's retail-by-day/, 3
// repeats, 1000000 keys, every run; RUNS: some of retail_files_per_trigger_1, retail_files_per_trigger_10,
// keys, keys_rocksdb, recovery, separated by commas). The checkpoints and generated files go to a directory
// under the system temp dir.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_input.hpp"
#include "child_run.hpp"
#include "flow/connectors/durable_file.hpp"
#include "flow/runtime/checkpoint_store.hpp"
#include "flow/session.hpp"

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

const std::string data_hint = bench::retail_data_hint("checkpoint_bench [DATA_DIR [REPEATS [KEYS [RUNS]]]]");

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

// ---------------------------------------------------------------- child processes

// Runs body in a forked child and returns what it returned; throws when the child failed.
std::string in_child(const std::function<std::string()>& body) {
  auto result = bench::run_in_child("checkpoint_bench", body);
  if (!result.ok()) throw std::runtime_error("a benchmark run's process failed");
  return result.text;
}

// ---------------------------------------------------------------- one run of a query

struct epoch_figures {
  double trigger_ms = 0;
  double state_rows = 0;
  double state_rows_updated = 0;
};

struct run_figures {
  double seconds = 0;
  std::vector<epoch_figures> epochs;  // by batchId
  std::size_t result_rows = 0;        // retail: rows of the memory table
  std::size_t result_digest = 0;      // retail: a hash of its rows, sorted, sums to the cent
};

std::string serialize(const run_figures& fig) {
  std::ostringstream out;
  out.precision(17);
  out << fig.seconds << ' ' << fig.result_rows << ' ' << fig.result_digest << ' ' << fig.epochs.size() << '\n';
  for (const auto& e : fig.epochs) out << e.trigger_ms << ' ' << e.state_rows << ' ' << e.state_rows_updated << '\n';
  return out.str();
}

run_figures deserialize(const std::string& text) {
  std::istringstream in(text);
  run_figures fig;
  std::size_t epochs = 0;
  in >> fig.seconds >> fig.result_rows >> fig.result_digest >> epochs;
  fig.epochs.resize(epochs);
  for (auto& e : fig.epochs) in >> e.trigger_ms >> e.state_rows >> e.state_rows_updated;
  return fig;
}

void read_progress(const flow::streaming_query& query, run_figures& fig) {
  for (const auto& p : query.recent_progress()) {
    const auto batch = static_cast<std::size_t>(bench::json_number(p, "batchId"));
    if (fig.epochs.size() <= batch) fig.epochs.resize(batch + 1);
    fig.epochs[batch] = {bench::json_number(p, "triggerExecution"), bench::json_number(p, "numRowsTotal"),
                         bench::json_number(p, "numRowsUpdated")};
  }
}

flow::session_config bench_config(const std::string& state_backend = "memory") {
  flow::session_config config;
  config.progress_history = 1000;
  config.state_backend = state_backend;
  return config;
}

// The retail query; checkpoint empty: none.
run_figures run_retail(const std::vector<fs::path>& files, long long max_files_per_trigger, const fs::path& checkpoint) {
  using flow::col;
  flow::session session(bench_config());
  auto schema = session.read().format("csv").option("header", true).option("inferSchema", true)
                    .load(files.front().string()).schema();
  auto per_hour = session.read_stream().format("csv").option("header", true).schema(schema)
                      .option("maxFilesPerTrigger", max_files_per_trigger)
                      .load((files.front().parent_path() / "*.csv").string())
                      .select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"),
                               col("InvoiceDate")})
                      .group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")})
                      .sum("total_cost");
  auto writer = per_hour.write_stream().format("memory").query_name("compras_por_hora").output_mode("complete")
                    .trigger(flow::available_now());
  if (!checkpoint.empty()) writer.option("checkpointLocation", checkpoint.string());
  run_figures fig;
  const auto started = clock_type::now();
  auto query = writer.start();
  query.await_termination();
  fig.seconds = ms_since(started) / 1000.0;
  read_progress(query, fig);
  auto table = session.sql("SELECT * FROM compras_por_hora").collect_batch();
  fig.result_rows = table.num_rows();
  const auto& customer = table.col("CustomerID");
  const auto& window = table.col("window");
  const auto& sums = table.col("sum(total_cost)");
  std::vector<std::string> rows;
  char row[128];
  for (std::size_t i = 0; i < table.num_rows(); ++i) {
    std::snprintf(row, sizeof row, "%s %.17g %lld %.2f", customer.valid(i) ? "" : "null",
                  customer.valid(i) ? customer.doubles()[i] : 0.0, static_cast<long long>(window.window(i).start.micros),
                  sums.doubles()[i]);
    rows.emplace_back(row);
  }
  std::sort(rows.begin(), rows.end());
  std::string all;
  for (const auto& r : rows) all += r + '\n';
  fig.result_digest = std::hash<std::string>{}(all);
  return fig;
}

flow::schema_ptr keys_schema() {
  return flow::make_schema({{"k", flow::type_id::int64, false}, {"v", flow::type_id::int64, false}});
}

// sum(v) per k over the CSV files of input_dir, one file per epoch, into the noop sink.
flow::streaming_query start_keys_query(flow::session& session, const fs::path& input_dir, const fs::path& checkpoint,
                                       const flow::trigger& when) {
  auto writer = session.read_stream().format("csv").option("header", true).schema(keys_schema())
                    .option("maxFilesPerTrigger", 1).load((input_dir / "*.csv").string())
                    .group_by({flow::col("k")}).sum("v")
                    .write_stream().format("noop").query_name("sum_by_key").output_mode("update").trigger(when);
  if (!checkpoint.empty()) writer.option("checkpointLocation", checkpoint.string());
  return writer.start();
}

run_figures run_keys(const fs::path& input_dir, const fs::path& checkpoint, const std::string& state_backend) {
  flow::session session(bench_config(state_backend));
  run_figures fig;
  const auto started = clock_type::now();
  auto query = start_keys_query(session, input_dir, checkpoint, flow::available_now());
  query.await_termination();
  fig.seconds = ms_since(started) / 1000.0;
  read_progress(query, fig);
  return fig;
}

// Starts the keys query (on checkpoint when not empty) and returns the milliseconds from start() to the
// progress of its first epoch, and that epoch's figures.
std::string time_first_epoch(const fs::path& input_dir, const fs::path& checkpoint) {
  flow::session session(bench_config());
  const auto started = clock_type::now();
  auto query = start_keys_query(session, input_dir, checkpoint, flow::processing_time(std::chrono::milliseconds(10)));
  const double start_returned_ms = ms_since(started);
  std::optional<std::string> progress;
  while (!(progress = query.last_progress()) && query.is_active())
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  const double first_epoch_ms = ms_since(started);
  query.stop();
  if (auto failure = query.exception()) throw flow::error(*failure);
  if (!progress) throw std::runtime_error("the query ended without a progress report");
  std::ostringstream out;
  out.precision(17);
  out << start_returned_ms << ' ' << first_epoch_ms << ' ' << bench::json_number(*progress, "batchId") << ' '
      << bench::json_number(*progress, "numRowsTotal") << '\n';
  return out.str();
}

// ---------------------------------------------------------------- the generated input and the checkpoint

std::uintmax_t size_of(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// Bytes of the state files the checkpoint holds for epoch: its deltas and snapshots over every slot.
struct state_bytes {
  std::uintmax_t delta = 0;
  std::uintmax_t snapshot = 0;
};

// The inodes of the files in the slot's directory snapshots of epochs before `epoch`.
std::set<ino_t> earlier_snapshot_inodes(const fs::path& slot, std::size_t epoch) {
  std::set<ino_t> inodes;
  struct stat st {};
  for (std::size_t e = 0; e < epoch; ++e) {
    std::error_code ec;
    for (const auto& file : fs::directory_iterator(slot / (std::to_string(e) + ".snapshot.d"), ec))
      if (::stat(file.path().c_str(), &st) == 0) inodes.insert(st.st_ino);
  }
  return inodes;
}

// log: the checkpoint's log records (checkpoint_store::read_log), which hold the deltas.
state_bytes state_bytes_of(const fs::path& checkpoint, const std::map<std::string, std::string>& log, std::size_t epoch) {
  state_bytes bytes;
  std::error_code ec;
  for (const auto& [name, content] : log)
    if (name.starts_with("state/") && name.ends_with("/" + std::to_string(epoch) + ".delta")) bytes.delta += content.size();
  for (const auto& slot : fs::directory_iterator(checkpoint / "state", ec)) {
    bytes.snapshot += size_of(slot.path() / (std::to_string(epoch) + ".snapshot"));
    const fs::path directory = slot.path() / (std::to_string(epoch) + ".snapshot.d");
    if (!fs::is_directory(directory, ec)) continue;
    const auto earlier = earlier_snapshot_inodes(slot.path(), epoch);  // hard links: written before
    struct stat st {};
    for (const auto& file : fs::directory_iterator(directory, ec))
      if (::stat(file.path().c_str(), &st) == 0 && !earlier.count(st.st_ino)) bytes.snapshot += size_of(file.path());
  }
  return bytes;
}

std::uintmax_t directory_bytes(const fs::path& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec))
    if (entry.is_regular_file(ec)) total += size_of(entry.path());
  return total;
}

bool same_device(const fs::path& a, const fs::path& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev;
}

// ---------------------------------------------------------------- recovery after SIGKILL

struct recovery_figures {
  double restart_ms = 0;        // start() to the progress of the first epoch, on the checkpoint
  double start_returned_ms = 0;
  double fresh_ms = 0;          // the same without a checkpoint (the new file only)
  double restored_rows = 0;
  double first_batch = 0;
};

// Forks a process that runs the keys query over load_files on checkpoint, waits for the commit of its last
// epoch and kills it with SIGKILL.
void run_and_kill(const fs::path& input_dir, const fs::path& checkpoint, std::size_t epochs) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    bench::die_with_parent(parent);
    try {
      flow::session session(bench_config());
      auto query = start_keys_query(session, input_dir, checkpoint, flow::processing_time(std::chrono::milliseconds(100)));
      query.await_termination();
    } catch (const std::exception& e) {
      std::cerr << "checkpoint_bench: the run to be killed failed: " << e.what() << std::endl;
    }
    _exit(1);
  }
  const std::string last_commit = "commits/" + std::to_string(epochs - 1);
  auto committed = [&] {
    try {
      return flow::runtime::checkpoint_store::read_log(checkpoint.string()).contains(last_commit);
    } catch (const std::exception&) {
      return false;  // a segment not created yet
    }
  };
  const auto started = clock_type::now();
  int status = 0;
  while (!committed()) {
    if (waitpid(pid, &status, WNOHANG) == pid) throw std::runtime_error("the run to be killed ended by itself");
    if (ms_since(started) > 600000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      throw std::runtime_error("the run to be killed did not commit epoch " + std::to_string(epochs - 1) + " in 10 min");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}

recovery_figures measure_recovery(const fs::path& root, const std::vector<fs::path>& keys_files) {
  const fs::path input = root / "recovery-input", checkpoint = root / "recovery-checkpoint";
  const fs::path fresh_input = root / "recovery-fresh-input";
  fs::remove_all(input);
  fs::remove_all(checkpoint);
  fs::remove_all(fresh_input);
  fs::create_directories(input);
  fs::create_directories(fresh_input);
  const std::size_t loads = 10;
  // Hard links: the files keep their modification times (see write_keys_input).
  for (std::size_t i = 0; i < loads; ++i) fs::create_hard_link(keys_files[i], input / keys_files[i].filename());
  run_and_kill(input, checkpoint, loads);
  const fs::path update = keys_files[loads];
  fs::create_hard_link(update, input / update.filename());
  fs::create_hard_link(update, fresh_input / update.filename());

  recovery_figures fig;
  std::istringstream restarted(in_child([&] { return time_first_epoch(input, checkpoint); }));
  restarted >> fig.start_returned_ms >> fig.restart_ms >> fig.first_batch >> fig.restored_rows;
  std::istringstream fresh(in_child([&] { return time_first_epoch(fresh_input, {}); }));
  double ignored = 0;
  fresh >> ignored >> fig.fresh_ms;
  fs::remove_all(input);
  fs::remove_all(checkpoint);
  fs::remove_all(fresh_input);
  return fig;
}

// The median milliseconds of one atomic write of a 100-byte file into dir.
double atomic_write_ms(const fs::path& dir) {
  fs::create_directories(dir);
  std::vector<double> times;
  for (int i = 0; i < 51; ++i) {
    const auto started = clock_type::now();
    flow::connectors::write_file_atomically("checkpoint_bench", dir.string(), std::to_string(i), std::string(100, 'x'));
    times.push_back(ms_since(started));
  }
  fs::remove_all(dir);
  std::nth_element(times.begin(), times.begin() + 25, times.end());
  return times[25];
}

// ---------------------------------------------------------------- the bench


// The runs of one mode over the rounds: the figures printed are their medians.
struct runs_of_mode {
  std::vector<run_figures> runs;
  double seconds() const {
    std::vector<double> all;
    for (const auto& r : runs) all.push_back(r.seconds);
    return bench::median(all);
  }
  double epoch_ms(std::size_t epoch) const {
    std::vector<double> all;
    for (const auto& r : runs)
      if (epoch < r.epochs.size()) all.push_back(r.epochs[epoch].trigger_ms);
    return bench::median(all);
  }
  const run_figures& last() const { return runs.back(); }
};

// The mean milliseconds of one append of a 100-byte record to a sealed_log in dir: the mean, as an epoch
// pays it; a median hides the appends that wait for the filesystem's journal.
double append_ms(const fs::path& dir) {
  fs::create_directories(dir);
  constexpr int appends = 200;
  flow::connectors::sealed_log log("checkpoint_bench", dir.string(), "log");
  const auto started = clock_type::now();
  for (int i = 0; i < appends; ++i) log.append(std::string(100, 'x'));
  const double mean = ms_since(started) / appends;
  fs::remove_all(dir);
  return mean;
}

int run_bench(int argc, char** argv) {
  const auto [dir, repeats, files] = bench::read_retail_arguments(argc, argv, data_hint);
  const std::size_t keys = argc > 3 ? bench::count_argument(argv[3], "the key count (third argument)") : 1000000;
  const std::string only = argc > 4 ? "," + std::string(argv[4]) + "," : "";
  auto wanted = [&](const std::string& run) { return only.empty() || only.find("," + run + ",") != std::string::npos; };
  if (keys < 100) throw bench::input_error("the key count (third argument) must be at least 100, got " + std::to_string(keys));
  const fs::path root = fs::temp_directory_path() / ("checkpoint-bench-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  struct remove_on_exit {
    fs::path dir;
    ~remove_on_exit() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } work_dir{root};
  for (const auto& f : files) bench::read_file(f, data_hint);  // warm the page cache for every run alike
  const auto keys_files = bench::write_keys_input(root / "keys-input", keys);
  const fs::path checkpoint = root / "checkpoint";

  struct mode {
    mode(std::string n, std::function<run_figures(const fs::path&)> r) : name(std::move(n)), run(std::move(r)) {}
    std::string name;
    std::function<run_figures(const fs::path&)> run;  // the checkpoint, or empty
    runs_of_mode off, on;
    std::vector<state_bytes> bytes;                   // per epoch, from the last run with a checkpoint
    std::uintmax_t checkpoint_bytes = 0;
  };
  std::vector<mode> modes;
  if (wanted("retail_files_per_trigger_1"))
    modes.emplace_back("retail_files_per_trigger_1", [&](const fs::path& c) { return run_retail(files, 1, c); });
  if (wanted("retail_files_per_trigger_10"))
    modes.emplace_back("retail_files_per_trigger_10", [&](const fs::path& c) { return run_retail(files, 10, c); });
  if (wanted("keys"))
    modes.emplace_back("keys", [&](const fs::path& c) { return run_keys(root / "keys-input", c, "memory"); });
  if (wanted("keys_rocksdb"))
    modes.emplace_back("keys_rocksdb", [&](const fs::path& c) { return run_keys(root / "keys-input", c, "rocksdb"); });

  std::vector<recovery_figures> recoveries;
  std::vector<double> atomic_writes, appends;
  // Without and with a checkpoint take turns, so that both see the same load on the machine.
  for (std::size_t round = 0; round < repeats; ++round) {
    for (auto& m : modes) {
      m.off.runs.push_back(deserialize(in_child([&] { return serialize(m.run({})); })));
      fs::remove_all(checkpoint);
      m.on.runs.push_back(deserialize(in_child([&] { return serialize(m.run(checkpoint)); })));
      m.bytes.clear();
      const auto log = flow::runtime::checkpoint_store::read_log(checkpoint.string());
      for (std::size_t e = 0; e < m.on.last().epochs.size(); ++e) m.bytes.push_back(state_bytes_of(checkpoint, log, e));
      m.checkpoint_bytes = directory_bytes(checkpoint);
      fs::remove_all(checkpoint);
    }
    if (wanted("recovery")) recoveries.push_back(measure_recovery(root, keys_files));
    atomic_writes.push_back(atomic_write_ms(root / "atomic-writes"));
    appends.push_back(append_ms(root / "appends"));
  }

  bool ok = true;
  const bool same_disk = same_device(root, dir);
  for (const auto& m : modes) {
    // Every run computes the same result: the first without a checkpoint is the reference.
    const run_figures& reference = m.off.runs.front();
    const double state_rows = reference.epochs.empty() ? 0 : reference.epochs.back().state_rows;
    bool matches = true;
    for (const auto* runs : {&m.off, &m.on})
      for (const auto& run : runs->runs)
        matches = matches && run.epochs.size() == reference.epochs.size() && run.result_rows == reference.result_rows &&
                  run.result_digest == reference.result_digest &&
                  (run.epochs.empty() ? 0 : run.epochs.back().state_rows) == state_rows;
    ok = ok && matches;
    const double off = m.off.seconds(), on = m.on.seconds();
    std::printf("{\"bench\":\"checkpoint\",\"run\":\"%s\",\"epochs\":%zu,\"state_rows\":%.0f,\"seconds_off\":%.4f,"
                "\"seconds_on\":%.4f,\"ratio_on_to_off\":%.3f,\"per_epoch_cost_ms\":%.3f,\"checkpoint_bytes\":%ju,"
                "\"checkpoint_on_data_disk\":%s,\"repeats\":%zu,\"results_match\":%s}\n",
                m.name.c_str(), reference.epochs.size(), state_rows, off, on, on / off,
                (on - off) * 1000.0 / static_cast<double>(std::max<std::size_t>(1, reference.epochs.size())),
                m.checkpoint_bytes, same_disk ? "true" : "false", repeats, matches ? "true" : "false");
  }
  const mode* in_memory = nullptr;
  const mode* on_rocksdb = nullptr;
  for (const auto& m : modes) {
    if (m.name == "keys") in_memory = &m;
    if (m.name == "keys_rocksdb") on_rocksdb = &m;
  }
  if (in_memory && on_rocksdb) {
    const bool same_as_memory = in_memory->on.last().result_rows == on_rocksdb->on.last().result_rows &&
                                in_memory->on.last().result_digest == on_rocksdb->on.last().result_digest;
    ok = ok && same_as_memory;
    std::printf("{\"bench\":\"checkpoint\",\"run\":\"keys_rocksdb_vs_memory\",\"seconds_on_memory\":%.4f,"
                "\"seconds_on_rocksdb\":%.4f,\"results_match\":%s}\n",
                in_memory->on.seconds(), on_rocksdb->on.seconds(), same_as_memory ? "true" : "false");
  }
  for (const mode* keyed : {in_memory, on_rocksdb}) {
    if (!keyed) continue;
    for (std::size_t e = 0; e < keyed->bytes.size(); ++e)
      std::printf("{\"bench\":\"checkpoint\",\"run\":\"%s_epoch\",\"epoch\":%zu,\"state_rows\":%.0f,"
                  "\"rows_updated\":%.0f,\"ms_off\":%.1f,\"ms_on\":%.1f,\"delta_bytes\":%ju,\"snapshot_bytes\":%ju}\n",
                  keyed->name.c_str(), e, keyed->on.last().epochs[e].state_rows,
                  keyed->on.last().epochs[e].state_rows_updated, keyed->off.epoch_ms(e), keyed->on.epoch_ms(e),
                  keyed->bytes[e].delta, keyed->bytes[e].snapshot);
  }
  if (!recoveries.empty()) {
    bool restored = true;
    std::vector<double> restart, start_returned, fresh;
    for (const auto& r : recoveries) {
      restored = restored && r.restored_rows == static_cast<double>(keys) && r.first_batch == 10;
      restart.push_back(r.restart_ms);
      start_returned.push_back(r.start_returned_ms);
      fresh.push_back(r.fresh_ms);
    }
    ok = ok && restored;
    std::printf("{\"bench\":\"checkpoint\",\"run\":\"recovery_after_sigkill\",\"keys\":%zu,\"start_returned_ms\":%.1f,"
                "\"restart_to_first_epoch_ms\":%.1f,\"fresh_to_first_epoch_ms\":%.1f,\"restored\":%s}\n",
                keys, bench::median(start_returned), bench::median(restart), bench::median(fresh), restored ? "true" : "false");
  }
  std::printf("{\"bench\":\"checkpoint\",\"run\":\"atomic_write\",\"bytes\":100,\"median_ms\":%.3f}\n",
              bench::median(atomic_writes));
  std::printf("{\"bench\":\"checkpoint\",\"run\":\"append_fdatasync\",\"bytes\":100,\"mean_ms\":%.3f}\n",
              bench::median(appends));
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("checkpoint_bench", [&] { return run_bench(argc, argv); });
}
