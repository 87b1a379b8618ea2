// What the ingest benches (tcp, zmq, http) share: reading the text, command-line numbers, timing a mode
// by wall clock and by the process's CPU time, running a query until its sink has every row, and one
// JSON line per mode.
#pragma once

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_input.hpp"
#include "flow/session.hpp"
#include "flow/types.hpp"

namespace ingest {

using clock_type = std::chrono::steady_clock;

// A TCP socket listening on 127.0.0.1 on a free port, which is stored in port (flow::error if it cannot).
inline int listen_on_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 1) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw flow::error(std::string("producer: cannot listen on 127.0.0.1: ") + std::strerror(errno));
  port = ntohs(addr.sin_port);
  return fd;
}

// A TCP connection to 127.0.0.1:port (flow::error if it cannot).
inline int connect_to_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw flow::error("plain loop: cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  return fd;
}

// Don Quijote, the text the tcp and zmq benches send (not empty).
inline std::string read_quijote() {
  const auto path = bench::shared_data_dir() / "text" / "quijote.txt";
  std::string text = bench::read_file(path, bench::shared_data_hint());
  if (text.empty())
    throw bench::input_error("the file " + bench::shown(path) + " is empty; " + bench::shared_data_hint());
  return text;
}

// The value after --name on the command line, or fallback.
inline std::size_t number_flag(int argc, char** argv, const std::string& name, std::size_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return bench::count_argument(argv[i + 1], "--" + name);
  return fallback;
}

struct result {
  std::size_t rows = 0;
  std::size_t bytes = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // of the process while the mode ran: a figure less at the mercy of other load
};

// Starts the clocks of one mode; stop() fills in seconds and cpu_seconds.
class stopwatch {
 public:
  stopwatch() : wall_(clock_type::now()), cpu_(bench::process_cpu_seconds()) {}
  void stop(result& r) const {
    r.seconds = std::chrono::duration<double>(clock_type::now() - wall_).count();
    r.cpu_seconds = bench::process_cpu_seconds() - cpu_;
  }

 private:
  clock_type::time_point wall_;
  double cpu_;
};

// The rows a query delivered (foreachBatch adds them); the bench's thread sleeps until they are all
// there instead of polling, so it takes no CPU from the mode it measures.
class row_counter {
 public:
  void add(std::size_t rows) {
    std::lock_guard<std::mutex> lock(mutex_);
    rows_ += rows;
    if (rows_ >= expected_) reached_.notify_all();
  }
  // Waits until expected rows arrived or the timeout passed; returns the count.
  std::size_t wait_for(std::size_t expected, std::chrono::milliseconds timeout = std::chrono::seconds(300)) {
    std::unique_lock<std::mutex> lock(mutex_);
    expected_ = expected;
    reached_.wait_for(lock, timeout, [&] { return rows_ >= expected_; });
    return rows_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable reached_;
  std::size_t rows_ = 0;
  std::size_t expected_ = static_cast<std::size_t>(-1);
};

// Where a libflow mode's rows go: the noop sink (the ingest figure: source and runtime, no sink work, as
// Spark's format("noop") benchmarks a source) or foreachBatch (adds that sink's concatenation of each
// epoch's rows into one batch).
enum class sink_kind { noop, foreach_batch };

inline const char* sink_name(sink_kind sink) { return sink == sink_kind::noop ? "noop" : "foreach_batch"; }

// The noop sink's cumulative row count in a progress report, or 0.
inline std::size_t noop_rows(const std::string& progress) {
  auto sink = progress.find("\"NoopSink\"");
  if (sink == std::string::npos) return 0;
  constexpr std::string_view key = "\"metrics\":{\"numEpochs\":";
  auto metrics = progress.find("\"numOutputRows\":", progress.find(key, sink));
  if (metrics == std::string::npos) return 0;
  return std::stoul(progress.substr(metrics + 16));
}

struct delivery {
  flow::streaming_query query;
  std::size_t rows = 0;
};

// Starts rows into the sink and returns once the sink has expected rows, the query ended, or the
// timeout passed. The noop sink is watched through the query's progress every millisecond.
inline delivery deliver(const flow::data_frame& rows, sink_kind sink, std::size_t expected,
                        std::chrono::milliseconds timeout = std::chrono::seconds(300)) {
  auto deadline = clock_type::now() + timeout;
  if (sink == sink_kind::foreach_batch) {
    auto counted = std::make_shared<row_counter>();
    delivery d{rows.write_stream()
                   .foreach_batch([counted](const flow::batch& b, std::int64_t) { counted->add(b.num_rows()); })
                   .start()};
    while ((d.rows = counted->wait_for(expected, std::chrono::milliseconds(100))) < expected && d.query.is_active() &&
           clock_type::now() < deadline) {
    }
    return d;
  }
  delivery d{rows.write_stream().format("noop").start()};
  while ((d.rows = noop_rows(d.query.last_progress().value_or(""))) < expected && d.query.is_active() &&
         clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return d;
}

// A libflow mode from its started clocks to the end: runs rows into the sink until the expected rows are
// in, stops the clocks and the query, and throws the query's failure or a shortfall of rows.
inline result measure(const flow::data_frame& rows, sink_kind sink, std::size_t expected, std::size_t bytes,
                      const stopwatch& clocks) {
  auto delivered = deliver(rows, sink, expected);
  result r;
  clocks.stop(r);
  r.rows = delivered.rows;
  r.bytes = bytes;
  delivered.query.stop();
  if (auto failure = delivered.query.exception()) throw flow::error(*failure);
  if (r.rows != expected)
    throw flow::error("libflow counted " + std::to_string(r.rows) + " rows, expected " + std::to_string(expected));
  return r;
}

// One JSON line: rows/s, MB/s, and the ratio to the plain loop of the same round (by wall clock).
inline void print(const char* bench, const std::string& mode, const result& r, std::size_t run, const result& plain) {
  std::cout << "{\"bench\":\"" << bench << "\",\"mode\":\"" << mode << "\",\"run\":" << run << ",\"rows\":" << r.rows
            << ",\"bytes\":" << r.bytes << ",\"seconds\":" << r.seconds << ",\"cpu_seconds\":" << r.cpu_seconds
            << ",\"rows_per_s\":" << static_cast<std::int64_t>(static_cast<double>(r.rows) / r.seconds)
            << ",\"MB_per_s\":" << static_cast<double>(r.bytes) / r.seconds / 1e6
            << ",\"ratio_to_plain\":" << plain.seconds / r.seconds << "}" << std::endl;
}

}  // namespace ingest

namespace ingest {

// Medians over the runs, one JSON line per mode: a single run of a fraction of a second on a small,
// shared machine swings either way, so the ratio of the medians is the figure to quote.
class summary {
 public:
  void add(const std::string& mode, const result& r) {
    if (order_.end() == std::find(order_.begin(), order_.end(), mode)) order_.push_back(mode);
    seconds_[mode].push_back(r.seconds);
    cpu_[mode].push_back(r.cpu_seconds);
    bytes_[mode] = r.bytes;
  }
  void print(const char* bench, const std::string& baseline_mode) {
    const double baseline = bench::median(seconds_[baseline_mode]);
    for (const auto& mode : order_) {
      const double seconds = bench::median(seconds_[mode]);
      std::cout << "{\"bench\":\"" << bench << "\",\"mode\":\"" << mode << "\",\"summary\":\"median\",\"runs\":"
                << seconds_[mode].size() << ",\"seconds\":" << seconds << ",\"cpu_seconds\":" << bench::median(cpu_[mode])
                << ",\"MB_per_s\":" << static_cast<double>(bytes_[mode]) / seconds / 1e6
                << ",\"ratio_to_plain\":" << baseline / seconds << "}" << std::endl;
    }
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, std::vector<double>> seconds_, cpu_;
  std::map<std::string, std::size_t> bytes_;
};

}  // namespace ingest
