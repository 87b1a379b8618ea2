// What the ingest benches (tcp, zmq, http) share: reading the text, command-line numbers, timing a mode
// by wall clock and by the process's CPU time, waiting for a query's count, and one JSON line per mode.
#pragma once

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

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

// Polls a query's row count until it reaches expected (or 300 s pass).
inline void wait_for_rows(const std::atomic<std::int64_t>& counted, std::size_t expected) {
  using namespace std::chrono_literals;
  auto deadline = clock_type::now() + 300s;
  while (counted.load() < static_cast<std::int64_t>(expected) && clock_type::now() < deadline)
    std::this_thread::sleep_for(200us);
}

// One JSON line: rows/s, MB/s, and the ratio to the plain loop of the same round (by wall clock).
inline void print(const char* bench, const char* mode, const result& r, std::size_t run, const result& plain) {
  std::cout << "{\"bench\":\"" << bench << "\",\"mode\":\"" << mode << "\",\"run\":" << run << ",\"rows\":" << r.rows
            << ",\"bytes\":" << r.bytes << ",\"seconds\":" << r.seconds << ",\"cpu_seconds\":" << r.cpu_seconds
            << ",\"rows_per_s\":" << static_cast<std::int64_t>(static_cast<double>(r.rows) / r.seconds)
            << ",\"MB_per_s\":" << static_cast<double>(r.bytes) / r.seconds / 1e6
            << ",\"ratio_to_plain\":" << plain.seconds / r.seconds << "}" << std::endl;
}

}  // namespace ingest
