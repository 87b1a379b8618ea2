// What running a query on a driver and two workers costs against the embedded run, all on this machine
// over 127.0.0.1 (docs/deployment.md, "Measured"). The workers are this program started again with
// --flow.role=worker; every driver and embedded run is a forked child (its own actor system); the modes
// take turns round by round and the best round counts. Prints one JSON line per figure:
//  * retail: the retail_by_day aggregation (CustomerID x 1-hour window sum, complete mode, memory sink,
//    one file per epoch, available-now) over the daily files, embedded and on the cluster: rows/s, ratio;
//  * keys: a shuffle-heavy query, sum(v) by k where every row has a key of its own (KEYS rows in 10 files,
//    one per epoch, update mode, noop sink): the partial sums that cross to the workers are as many as the
//    rows; rows/s each way and the ratio;
//  * shuffle: 1000-byte lines of text (the text format: no parsing) rebalanced between the workers, which
//    drop them (a topology: the file source, whose instances read the files on the workers, then a filter
//    vertex behind rebalance(); each source instance deals its batches over the filter's instances on both
//    workers, so about half of the rows cross between the nodes): the bytes of libflow's encoding of those
//    rows per second, against a plain TCP copy of as many bytes over 127.0.0.1 measured in the same run
//    (target: at least 0.5x), and against the same query embedded (no network: what the source and the
//    filter cost alone).
//  * wire: the shuffle itself, without reading or decoding files: one source instance (on the first worker)
//    turns each of WIRE_BATCHES one-line ticket files into a batch generated in memory (WIRE_ROWS rows of an
//    int64 and a 1000-byte string, built once and handed on by reference: no generation cost), rebalanced
//    to one filter instance on the other worker that drops them on the int64 (parallelism 1: placement
//    deals the source's instance to the first worker and the filter's to the second, so every batch
//    crosses; the default epochs in flight): libflow's encoding of the crossing batches per second
//    against a plain TCP copy of as many bytes in the same run (the issue's "cross-node shuffle
//    throughput against the loopback limit").
//  The run's time is from start() to the query's end; the join (the session's construction) is not in it.
// Exits 1 when the cluster computes another result than the embedded run, 2 on input it cannot use.
// Usage: cluster_bench [DATA_DIR [REPEATS [KEYS [QUERY]]]] (default: the shared data's retail-by-day/, 3 repeats,
// 1000000 keys, every query; QUERY: retail, keys, shuffle or wire alone). Generated files go to a directory under the system temp dir.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_input.hpp"
#include "child_run.hpp"
#include "flow/function_registry.hpp"
#include "flow/session.hpp"
#include "flow/topology.hpp"

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using flow::col;

const std::string usage = "cluster_bench [DATA_DIR [REPEATS [KEYS [QUERY]]]]";

// The wire query: batches of wire_rows rows (about 1 MB encoded, as the shuffle query's 1 MiB chunks),
// one per ticket file, ten files an epoch.
constexpr std::size_t wire_rows = 1000, wire_batches = 100;
const std::string wire_function = "cluster_bench.generate";

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Starts a query and waits for its end: the query, and in seconds the time from start() to its end; its
// failure thrown.
template <class Start>
flow::streaming_query run_timed(Start&& start, double& seconds) {
  const auto started = clock_type::now();
  auto running = start();
  running.await_termination();
  seconds = seconds_since(started);
  if (auto failure = running.exception()) throw flow::error(*failure);
  return running;
}

// ---------------------------------------------------------------- the workers

// This program as a worker on 127.0.0.1 (a free port), its stdout on a pipe; stopped with SIGTERM.
class worker_process {
 public:
  explicit worker_process(const std::string& secret_file) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      bench::die_with_parent(parent);
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      execl("/proc/self/exe", "cluster_bench", "--flow.role=worker", "--flow.listen=127.0.0.1:0", "--flow.secret-file",
            secret_file.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    output_ = fdopen(fds[0], "r");
    const std::regex listening("worker (\\S+): listening .*");
    for (std::string line; (line = next_line()).size();) {
      std::smatch m;
      if (std::regex_match(line, m, listening)) {
        address_ = m[1];
        return;
      }
    }
    throw std::runtime_error("a worker did not start (no \"listening\" line)");
  }
  ~worker_process() {
    if (output_) fclose(output_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;

  const std::string& address() const { return address_; }
  // SIGTERM; its last line ("worker ADDRESS: processed R rows in E epochs").
  std::string stop() {
    kill(pid_, SIGTERM);
    std::string last;
    for (std::string line; (line = next_line()).size();) last = line;
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return last;
  }

 private:
  std::string next_line() {
    char buffer[1024];
    if (!fgets(buffer, sizeof buffer, output_)) return {};
    std::string line(buffer);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    return line.empty() ? " " : line;
  }
  pid_t pid_ = -1;
  FILE* output_ = nullptr;
  std::string address_;
};

// ---------------------------------------------------------------- the queries

struct run_figures {
  double seconds = 0;
  std::size_t rows = 0;         // of the result (retail, keys) or crossing (shuffle)
  std::size_t digest = 0;       // a hash of the result's rows, sorted (sums to the cent)
  bool placed_as_planned = true;  // wire: both workers joined throughout (no instance moved)
};

std::string serialize(const run_figures& fig) {
  std::ostringstream out;
  out.precision(17);
  out << fig.seconds << ' ' << fig.rows << ' ' << fig.digest << ' ' << fig.placed_as_planned;
  return out.str();
}

run_figures deserialize(const std::string& text) {
  std::istringstream in(text);
  run_figures fig;
  in >> fig.seconds >> fig.rows >> fig.digest >> fig.placed_as_planned;
  return fig;
}

std::size_t digest_of(std::vector<std::string> rows) {
  std::sort(rows.begin(), rows.end());
  std::string all;
  for (const auto& r : rows) all += r + '\n';
  return std::hash<std::string>{}(all);
}

// The session: embedded, or a driver of workers. wire: parallelism 1 (one instance on each worker).
flow::session_config config_for(const std::vector<std::string>& workers, const std::string& secret_file, bool wire) {
  flow::session_config config;
  if (wire) config.parallelism = 1;
  config.workers = workers;
  if (!workers.empty()) config.secret_file = secret_file;
  return config;
}

run_figures run_retail(flow::session& session, const fs::path& dir) {
  auto schema = session.read().format("csv").option("header", true).option("inferSchema", true)
                    .load(bench::csv_files(dir, "").front().string()).schema();
  auto query = session.read_stream().format("csv").option("header", true).schema(schema).option("maxFilesPerTrigger", 1)
                   .load((dir / "*.csv").string())
                   .select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"), col("InvoiceDate")})
                   .group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")})
                   .sum("total_cost")
                   .write_stream().format("memory").query_name("per_hour").output_mode("complete")
                   .trigger(flow::available_now());
  run_figures fig;
  run_timed([&] { return query.start(); }, fig.seconds);
  auto table = session.sql("SELECT * FROM per_hour").collect_batch();
  const auto& customer = table.col("CustomerID");
  const auto& window = table.col("window");
  const auto& sums = table.col("sum(total_cost)");
  std::vector<std::string> rows;
  char row[128];
  for (std::size_t i = 0; i < table.num_rows(); ++i) {
    std::snprintf(row, sizeof row, "%.17g %lld %.2f", customer.valid(i) ? customer.doubles()[i] : -1.0,
                  static_cast<long long>(window.window(i).start.micros), sums.doubles()[i]);
    rows.emplace_back(row);
  }
  fig.rows = table.num_rows();
  fig.digest = digest_of(std::move(rows));
  return fig;
}

run_figures run_keys(flow::session& session, const fs::path& dir) {
  auto schema = flow::make_schema({{"k", flow::type_id::int64, false}, {"v", flow::type_id::int64, false}});
  auto query = session.read_stream().format("csv").option("header", true).schema(schema).option("maxFilesPerTrigger", 1)
                   .load((dir / "*.csv").string())
                   .group_by({col("k")}).sum("v")
                   .write_stream().format("memory").query_name("sums").output_mode("update")
                   .trigger(flow::available_now());
  run_figures fig;
  run_timed([&] { return query.start(); }, fig.seconds);
  auto table = session.sql("SELECT k, `sum(v)` FROM sums").collect_batch();
  std::vector<std::string> rows;
  for (std::size_t i = 0; i < table.num_rows(); ++i)
    rows.push_back(std::to_string(std::get<std::int64_t>(table.at(i, 0))) + " " +
                   std::to_string(std::get<std::int64_t>(table.at(i, 1))));
  fig.rows = table.num_rows();
  fig.digest = digest_of(std::move(rows));
  return fig;
}

// Lines of text (the text format: one string column, no parsing) through a filter vertex that drops
// them all (no line is empty): on a cluster the source's and the filter's instances run on the workers, and
// the rebalance sends about half of the rows across.
// rows: those the source read.
run_figures run_shuffle(flow::session& session, const fs::path& dir) {
  flow::topology t(session.context());
  auto lines = t.source("lines", session.read_stream().format("text").option("maxFilesPerTrigger", 1).load((dir / "*.txt").string()));
  lines.rebalance().where(flow::length(col("value")) == flow::lit(0)).sink("dropped").format("noop").output_mode("append");
  run_figures fig;
  auto running = run_timed([&] { return t.start({"shuffle", flow::available_now()}); }, fig.seconds);
  for (const auto& p : running.recent_progress()) fig.rows += static_cast<std::size_t>(bench::json_number(p, "numInputRows"));
  return fig;
}

flow::schema_ptr wire_schema() {
  return flow::make_schema({{"n", flow::type_id::int64, false}, {"value", flow::type_id::string, false}});
}

// The wire query's batch, built once per process: rows n = 0..wire_rows-1 with a line of 1000 letters.
const flow::batch& wire_batch() {
  static const flow::batch generated = [] {
    flow::column_builder n(flow::type_id::int64, wire_rows), value(flow::type_id::string, wire_rows);
    std::string line(1000, ' ');
    for (std::size_t i = 0; i < line.size(); ++i) line[i] = static_cast<char>('a' + i * 7 % 26);
    for (std::size_t r = 0; r < wire_rows; ++r) {
      n.append_int(static_cast<std::int64_t>(r));
      value.append_string(line);
    }
    return flow::batch(wire_schema(), {n.finish(), value.finish()});
  }();
  return generated;
}

// Registered on every process (the workers are this program): a ticket batch becomes the generated batch.
void register_wire_function() {
  flow::register_batch_function(wire_function, [](const flow::batch&) { return wire_batch(); });
}

// Ticket files, each turned into one generated batch in the source's vertex, rebalanced to a filter
// vertex that drops every row (n < 0 holds for none). Run with parallelism 1.
// rows: the generated rows (the source's input rows, its tickets, times wire_rows).
run_figures run_wire(flow::session& session, const fs::path& dir) {
  flow::topology t(session.context());
  auto generated = t.source("generated", session.read_stream().format("text").option("maxFilesPerTrigger", 10)
                                             .load((dir / "*.txt").string())
                                             .map_batches(flow::find_batch_function(wire_function), wire_schema(), wire_function));
  generated.rebalance().where(col("n") < flow::lit(0)).sink("dropped").format("noop").output_mode("append");
  // A worker not joined at the start, or taken for lost during the run (joins and heartbeats time out on a
  // loaded machine), places or moves the instances elsewhere: the source and the filter may then share a
  // worker, and the run does not measure the crossing.
  const auto& cluster = session.cluster();
  run_figures fig;
  fig.placed_as_planned = cluster.joined_count() == cluster.members().size();
  auto running = run_timed([&] { return t.start({"wire", flow::available_now()}); }, fig.seconds);
  for (const auto& p : running.recent_progress()) {
    fig.rows += static_cast<std::size_t>(bench::json_number(p, "numInputRows")) * wire_rows;
    if (bench::json_number(p, "numRestarts") > 0) fig.placed_as_planned = false;
  }
  return fig;
}

// ---------------------------------------------------------------- generated input

// Dated a minute back: the file source would wait fileStableMs (1 s) for a file written just now.
void write_dated(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + bench::shown(path));
  fs::last_write_time(path, fs::last_write_time(path) - std::chrono::minutes(1));
}

// keys rows "k,1" with k = 0..keys-1 (every key once), in 10 files.
void write_distinct_keys(const fs::path& dir, std::size_t keys) {
  fs::create_directories(dir);
  for (std::size_t f = 0; f < 10; ++f) {
    std::string text = "k,v\n";
    for (std::size_t k = f * (keys / 10); k < (f + 1) * (keys / 10); ++k) text += std::to_string(k) + ",1\n";
    write_dated(dir / ("keys-" + std::to_string(f) + ".csv"), text);
  }
}

// 10 files of lines_per_file lines of 1000 bytes; returns the bytes of libflow's encoding of their rows as
// the batch reader reads them.
std::size_t write_lines(flow::session& session, const fs::path& dir, std::size_t lines_per_file) {
  fs::create_directories(dir);
  std::string line(1000, ' ');
  for (std::size_t i = 0; i < line.size(); ++i) line[i] = static_cast<char>('a' + i * 7 % 26);
  for (std::size_t f = 0; f < 10; ++f) {
    std::string text;
    for (std::size_t r = 0; r < lines_per_file; ++r) text += line + "\n";
    write_dated(dir / ("lines-" + std::to_string(f) + ".txt"), text);
  }
  std::size_t bytes = 0;
  for (const auto& b : session.read().format("text").load(dir.string()).collect()) bytes += flow::encode(b).size();
  return bytes;
}

// The wire query's tickets: one one-line file per batch.
void write_tickets(const fs::path& dir) {
  fs::create_directories(dir);
  for (std::size_t f = 0; f < wire_batches; ++f) write_dated(dir / ("ticket-" + std::to_string(f) + ".txt"), "x\n");
}

// ---------------------------------------------------------------- plain TCP over 127.0.0.1

// Seconds to send `bytes` bytes over a TCP connection on 127.0.0.1 (256 KiB writes) until the receiver
// has read them all.
double tcp_copy_seconds(std::size_t bytes) {
  const int server = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (server < 0 || bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(server, 1) != 0 ||
      getsockname(server, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    throw std::runtime_error(std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
  std::thread receiver([&] {
    const int peer = accept(server, nullptr, nullptr);
    std::vector<char> buffer(256 * 1024);
    for (std::size_t got = 0; got < bytes;) {
      const auto n = read(peer, buffer.data(), buffer.size());
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    close(peer);
  });
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  const std::vector<char> chunk(256 * 1024, 'x');
  const auto started = clock_type::now();
  if (connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error(std::string("cannot connect on 127.0.0.1: ") + std::strerror(errno));
  for (std::size_t sent = 0; sent < bytes;) {
    const auto n = write(client, chunk.data(), std::min(chunk.size(), bytes - sent));
    if (n <= 0) throw std::runtime_error("the loopback copy broke off");
    sent += static_cast<std::size_t>(n);
  }
  receiver.join();
  const double seconds = seconds_since(started);
  close(client);
  close(server);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  register_wire_function();
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--flow.role=worker") {
      flow::session worker(argc, argv);  // serves until SIGTERM, then ends the process
    }
  return bench::run("cluster_bench", [&] {
    const auto input = bench::read_retail_arguments(argc, argv, bench::retail_data_hint(usage));
    const std::size_t keys = argc > 3 ? bench::count_argument(argv[3], "the key count (third argument)") : 1000000;
    const fs::path work = fs::temp_directory_path() / ("cluster_bench-" + std::to_string(getpid()));
    fs::create_directories(work);
    struct remove_at_end {
      fs::path dir;
      ~remove_at_end() { fs::remove_all(dir); }
    } cleanup{work};
    const std::string secret_file = (work / "secret").string();
    write_dated(secret_file, "cluster-bench-secret-0123456789\n");
    fs::permissions(secret_file, fs::perms::owner_read | fs::perms::owner_write);
    write_distinct_keys(work / "keys", keys);
    write_tickets(work / "tickets");
    // In a child, as every session here: this process forks the runs' children.
    const auto text = bench::run_in_child("cluster_bench", [&] {
      flow::session here;
      return std::to_string(write_lines(here, work / "lines", 10000));
    });
    if (!text.ok()) throw std::runtime_error("writing the text files failed");
    const std::size_t text_bytes = std::stoull(text.text);
    worker_process a(secret_file), b(secret_file);
    const std::vector<std::string> cluster{a.address(), b.address()};

    using query_fn = std::function<run_figures(flow::session&, const fs::path&)>;
    std::vector<std::tuple<std::string, query_fn, fs::path>> queries{
        {"retail", run_retail, input.dir}, {"keys", run_keys, work / "keys"}, {"shuffle", run_shuffle, work / "lines"},
        {"wire", run_wire, work / "tickets"}};
    if (argc > 4) {
      const std::string only = argv[4];
      std::erase_if(queries, [&](const auto& q) { return std::get<0>(q) != only; });
      if (queries.empty()) throw bench::input_error("unknown query '" + only + "' (fourth argument): retail, keys, shuffle or wire; " + usage);
    }
    std::map<std::pair<std::string, bool>, run_figures> best;
    for (std::size_t round = 0; round < input.repeats; ++round)
      for (const auto& [name, run, dir] : queries)
        for (bool on_cluster : {false, true}) {
          const auto child = bench::run_in_child("cluster_bench", [&, run = run, dir = dir] {
            flow::session session(config_for(on_cluster ? cluster : std::vector<std::string>{}, secret_file, name == "wire"));
            return serialize(run(session, dir));
          });
          if (!child.ok()) throw std::runtime_error("a " + name + " run's process failed");
          const auto fig = deserialize(child.text);
          auto [it, first] = best.try_emplace({name, on_cluster}, fig);
          const auto rank = [](const run_figures& f) { return std::make_pair(!f.placed_as_planned, f.seconds); };
          if (!first && rank(fig) < rank(it->second)) it->second = fig;
        }

    int status = 0;
    for (const auto& [name, run, dir] : queries) {
      const auto& embedded = best.at({name, false});
      const auto& on_cluster = best.at({name, true});
      const bool same = embedded.rows == on_cluster.rows && embedded.digest == on_cluster.digest;
      if (!same) status = 1;
      std::size_t input_rows = embedded.rows;
      if (name == "retail") {
        input_rows = 0;
        for (const auto& file : input.files) {
          const auto text = bench::read_file(file, "");
          input_rows += static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) - 1;
        }
      }
      std::printf("{\"bench\":\"cluster\",\"query\":\"%s\",\"input_rows\":%zu,\"embedded_seconds\":%.4f,"
                  "\"cluster_seconds\":%.4f,\"embedded_rows_per_s\":%.0f,\"cluster_rows_per_s\":%.0f,"
                  "\"cluster_over_embedded\":%.3f,\"same_result\":%s}\n",
                  name.c_str(), input_rows, embedded.seconds, on_cluster.seconds, input_rows / embedded.seconds,
                  input_rows / on_cluster.seconds, embedded.seconds / on_cluster.seconds, same ? "true" : "false");
    }
    // A query's bytes per second on the cluster against a plain TCP copy of as many bytes (the best of
    // REPEATS copies, measured now) and against the query embedded.
    auto against_tcp = [&](const std::string& name, const std::string& measures, std::size_t bytes) {
      if (!best.count({name, true})) return;
      double tcp_seconds = 1e9;
      for (std::size_t round = 0; round < input.repeats; ++round) tcp_seconds = std::min(tcp_seconds, tcp_copy_seconds(bytes));
      const double cluster_rate = bytes / best.at({name, true}).seconds, embedded_rate = bytes / best.at({name, false}).seconds,
                   tcp_rate = bytes / tcp_seconds;
      std::printf("{\"bench\":\"cluster\",\"run\":\"%s_vs_tcp\",\"measures\":\"%s\",\"bytes\":%zu,"
                  "\"cluster_mb_per_s\":%.1f,\"embedded_mb_per_s\":%.1f,\"tcp_loopback_mb_per_s\":%.1f,\"ratio\":%.3f,"
                  "\"target\":0.5,\"placed_as_planned\":%s}\n",
                  name.c_str(), measures.c_str(), bytes, cluster_rate / 1e6, embedded_rate / 1e6, tcp_rate / 1e6,
                  cluster_rate / tcp_rate, best.at({name, true}).placed_as_planned ? "true" : "false");
    };
    against_tcp("shuffle",
                "end to end: 1000-byte lines read and decoded from files on both workers, rebalanced (about half "
                "cross), dropped; bytes: their encoding",
                text_bytes);
    against_tcp("wire",
                "the crossing alone: batches generated in memory on one worker, every one sent over the "
                "rebalance edge to the filter on the other worker (CAF's network layer), dropped there; bytes: "
                "their encoding",
                wire_batches * flow::encode(wire_batch()).size());
    for (auto* w : {&a, &b}) std::printf("{\"bench\":\"cluster\",\"worker_last_line\":\"%s\"}\n", w->stop().c_str());
    std::fflush(stdout);
    return status;
  });
}
