// What the ingest benches (tcp, zmq, http) share: reading the text, command-line numbers, timing a mode
// by wall clock and by the process's CPU time, counting a query's rows, and one JSON line per mode.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>

#include "flow/types.hpp"

namespace ingest {

using clock_type = std::chrono::steady_clock;

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw flow::error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The value after --name on the command line, or fallback.
inline std::size_t number_flag(int argc, char** argv, const std::string& name, std::size_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return std::stoul(argv[i + 1]);
  return fallback;
}

// User + system CPU time of the whole process (every thread: producer, receiver, actors), in seconds.
inline double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
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
  stopwatch() : wall_(clock_type::now()), cpu_(process_cpu_seconds()) {}
  void stop(result& r) const {
    r.seconds = std::chrono::duration<double>(clock_type::now() - wall_).count();
    r.cpu_seconds = process_cpu_seconds() - cpu_;
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

// One JSON line: rows/s, MB/s, and the ratio to the plain loop of the same round (by wall clock).
inline void print(const char* bench, const char* mode, const result& r, std::size_t run, const result& plain) {
  std::cout << "{\"bench\":\"" << bench << "\",\"mode\":\"" << mode << "\",\"run\":" << run << ",\"rows\":" << r.rows
            << ",\"bytes\":" << r.bytes << ",\"seconds\":" << r.seconds << ",\"cpu_seconds\":" << r.cpu_seconds
            << ",\"rows_per_s\":" << static_cast<std::int64_t>(static_cast<double>(r.rows) / r.seconds)
            << ",\"MB_per_s\":" << static_cast<double>(r.bytes) / r.seconds / 1e6
            << ",\"ratio_to_plain\":" << plain.seconds / r.seconds << "}" << std::endl;
}

}  // namespace ingest
