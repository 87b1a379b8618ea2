// The retail example as a user runs it: its --output table against the reference, and a clean stop
// on SIGTERM.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::map<std::pair<std::string, std::string>, double> read_result(const fs::path& csv, std::size_t sum_column) {
  std::istringstream in(flow::test::read_file(csv));
  std::string line;
  std::getline(in, line);
  std::map<std::pair<std::string, std::string>, double> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    REQUIRE(f.size() > sum_column);
    rows[{f[0], f[1]}] = std::stod(f[sum_column]);
  }
  return rows;
}

// Runs the example with args; returns its exit status. kill_after: send SIGTERM after that long.
int run_example(std::vector<std::string> args, const fs::path& log, std::optional<std::chrono::milliseconds> kill_after) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (!out) _exit(126);
    std::vector<char*> argv{const_cast<char*>(FLOW_RETAIL_EXAMPLE)};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(FLOW_RETAIL_EXAMPLE, argv.data());
    _exit(127);
  }
  if (kill_after) {
    std::this_thread::sleep_for(*kill_after);
    kill(pid, SIGTERM);
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL("the example did not end within 60 s");
    }
    std::this_thread::sleep_for(10ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("retail_by_day --output writes the reference result for 2010-12-01", "[example]") {
  flow::test::temp_dir dir;
  fs::create_directory(dir / "data");
  fs::copy_file(flow::test::shared_data_dir() / "retail-by-day" / "2010-12-01.csv", dir / "data" / "2010-12-01.csv");
  auto out = dir / "result.csv";
  REQUIRE(run_example({"--data", (dir / "data").string(), "--trigger", "available-now", "--output", out.string(),
                       "--refreshes", "1"},
                      dir / "log.txt", std::nullopt) == 0);
  CHECK(flow::test::read_file(out).rfind("CustomerID,window_start,window_end,sum(total_cost)\n", 0) == 0);
  auto actual = read_result(out, 3);
  auto expected = read_result(flow::test::shared_data_dir() / "expected" / "result_2010-12-01.csv", 4);
  REQUIRE(actual.size() == expected.size());
  for (const auto& [key, sum] : expected) {
    INFO(key.first << " " << key.second);
    REQUIRE(actual.count(key));
    CHECK(std::round(actual.at(key) * 100) == std::round(sum * 100));
  }
}

TEST_CASE("retail_by_day stops cleanly on SIGTERM and still writes its output", "[example]") {
  flow::test::temp_dir dir;
  auto out = dir / "result.csv";
  CHECK(run_example({"--trigger", "1s", "--output", out.string()}, dir / "log.txt", 1500ms) == 0);
  REQUIRE(fs::exists(out));
  CHECK(read_result(out, 3).size() > 100);
}
