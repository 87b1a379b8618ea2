// What every bench reads (the shared data, files, numbers on its command line) and how it stops on input it
// cannot use: one line on stderr saying what is wrong, where, and what to do, and exit code 2, never an
// uncaught exception. Any other failure prints its message and exits 1.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace bench {

namespace fs = std::filesystem;

// User + system CPU seconds the whole process has used so far (every thread: producers, receivers, actors).
inline double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The median of values (the mean of the middle two for an even count; 0 for none).
inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Input a bench cannot use (a missing file or directory, a malformed number): exit code 2.
struct input_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs a bench's main body: returns its exit code, or reports what it threw as the header says.
template <class Body>
int run(const char* bench, Body&& body) {
  try {
    return body();
  } catch (const input_error& e) {
    std::cerr << bench << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << bench << ": failed: " << e.what() << "\n";
    return 1;
  }
}

// The shared data directory: $FLOW_SHARED_DATA when set (as for the tests), else the one next to the
// project that the build recorded (an absolute path, so the working directory does not matter).
inline fs::path shared_data_dir() {
  if (const char* env = std::getenv("FLOW_SHARED_DATA")) return env;
  return FLOW_SHARED_DATA_DIR;
}

// A path as an error shows it: absolute, so the working directory it was relative to does not matter.
inline std::string shown(const fs::path& path) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  std::string text = "'";  // appended, not "'" + ...: GCC 12 warns (-Wrestrict) on that falsely
  text += (ec ? path : absolute).string();
  text += '\'';
  return text;
}

// What to do when the shared data is not where a bench looked.
inline std::string shared_data_hint() {
  return "set FLOW_SHARED_DATA to the shared data directory (it holds retail-by-day/ and text/)";
}

// What to do when a bench that reads the retail CSV files (usage: its command line) did not find them.
inline std::string retail_data_hint(const std::string& usage) {
  return "name the directory of the retail CSV files (usage: " + usage + "), or " + shared_data_hint();
}

// The sorted .csv files of dir. `what_to_do` says how to name another directory.
inline std::vector<fs::path> csv_files(const fs::path& dir, const std::string& what_to_do) {
  std::error_code ec;
  fs::directory_iterator entries(dir, ec);
  if (ec)
    throw input_error("cannot read the data directory " + shown(dir) + " (" + ec.message() + "); " +
                      what_to_do);
  std::vector<fs::path> files;
  for (const auto& entry : entries)
    if (entry.path().extension() == ".csv") files.push_back(entry.path());
  if (files.empty())
    throw input_error("no .csv files in the data directory " + shown(dir) + "; " + what_to_do);
  std::sort(files.begin(), files.end());
  return files;
}

// The whole content of a file. `what_to_do` says how to point the bench at it.
inline std::string read_file(const fs::path& path, const std::string& what_to_do) {
  std::error_code ec;
  std::ifstream in(path, std::ios::binary);
  if (!fs::is_regular_file(path, ec) || !in)
    throw input_error("cannot read the file " + shown(path) + "; " + what_to_do);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// text as a count (a positive whole number); `what` names it in the error.
inline std::size_t count_argument(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  std::size_t value = 0;
  try {
    value = std::stoul(text, &used);
  } catch (const std::logic_error&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || text.front() == '-' || value == 0)
    throw input_error(what + " must be a positive whole number, got '" + text + "'");
  return value;
}

// The command line the retail benches share: [DATA_DIR [REPEATS]] (default: the shared data's
// retail-by-day/, 3 repeats), and the sorted CSV files of DATA_DIR.
struct retail_input {
  fs::path dir;
  std::size_t repeats = 3;
  std::vector<fs::path> files;
};

inline retail_input read_retail_arguments(int argc, char** argv, const std::string& what_to_do) {
  retail_input in;
  in.dir = argc > 1 ? fs::path(argv[1]) : shared_data_dir() / "retail-by-day";
  if (argc > 2) in.repeats = count_argument(argv[2], "the repeat count (second argument)");
  in.files = csv_files(in.dir, what_to_do);
  return in;
}

// The number after the first "field": in a progress report's JSON text (0 when absent).
inline double json_number(const std::string& json, const std::string& field) {
  const auto at = json.find("\"" + field + "\":");
  return at == std::string::npos ? 0.0 : std::strtod(json.c_str() + at + field.size() + 3, nullptr);
}

// The keys input of the checkpoint and state backend benches, CSV files "k,v" with v = 1, one per epoch:
// load-NN.csv: 10 files of keys/10 new keys each; update-NN.csv: 1% of the keys each, spread over all of them.
inline std::vector<fs::path> write_keys_input(const fs::path& dir, std::size_t keys) {
  fs::create_directories(dir);
  std::vector<fs::path> files;
  auto write = [&](const std::string& name, std::size_t first, std::size_t count, std::size_t stride) {
    files.push_back(dir / name);
    std::ofstream out(files.back());
    out << "k,v\n";
    for (std::size_t i = 0; i < count; ++i) out << (first + i * stride) % keys << ",1\n";
    out.close();
    if (!out) throw std::runtime_error("cannot write " + shown(files.back()));
    // Dated a minute back: the file source would wait fileStableMs (1 s) for a file written just now.
    fs::last_write_time(files.back(), fs::last_write_time(files.back()) - std::chrono::minutes(1));
  };
  for (std::size_t i = 0; i < 10; ++i) write("load-" + std::to_string(i) + ".csv", i * (keys / 10), keys / 10, 1);
  for (std::size_t i = 0; i < 10; ++i) write("update-" + std::to_string(i) + ".csv", i, keys / 100, 100);
  return files;
}

}  // namespace bench
