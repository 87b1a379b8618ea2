// The examples as a user runs them: the retail --output table against the reference, a clean stop on
// SIGTERM, on a signal that comes while they start, output that reaches a file while they run, and the
// refusal of a bad command line.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Runs the example with args; returns its exit status (-1 when it did not end within 60 s). kill_after:
// send SIGTERM after that long.
int run_example(std::vector<std::string> args, const fs::path& log, std::optional<std::chrono::milliseconds> kill_after) {
  flow::test::child_process example(FLOW_RETAIL_EXAMPLE, std::move(args), log);
  if (!kill_after) return example.wait_exit(60s);
  std::this_thread::sleep_for(*kill_after);
  return example.stop(60s);
}

// Whether the main thread of process pid blocks signal_number (SigBlk in /proc/PID/status).
bool main_thread_blocks(pid_t pid, int signal_number) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("SigBlk:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (signal_number - 1)) & 1;
  return false;
}

// Signals during start-up: SIGINT alone, or SIGINT and SIGTERM 10 ms later, the first `delay` after main()
// took signals over (blocked them to wait for them); the query starts a few to some 30 ms later.
const std::vector<std::vector<int>> start_up_signals{{SIGINT}, {SIGINT, SIGTERM}};
const std::vector<std::chrono::milliseconds> start_up_delays{0ms, 1ms, 2ms, 3ms, 5ms, 8ms, 12ms, 20ms, 30ms};

// Starts program, sends it signals as above and requires it to exit 0 within 10 s.
void check_stops_on_start_up_signals(const std::string& program, const std::vector<std::string>& args,
                                     std::chrono::milliseconds delay, const std::vector<int>& signals,
                                     const fs::path& log) {
  flow::test::child_process example(program, args, log);
  REQUIRE(flow::test::eventually([&] { return main_thread_blocks(example.pid(), SIGINT); }, 10s, 1ms));
  std::this_thread::sleep_for(delay);
  for (int signal_number : signals) {
    example.signal(signal_number);
    std::this_thread::sleep_for(10ms);
  }
  const int status = example.wait_exit(10s);
  INFO(fs::path(program).filename().string() << ", " << signals.size() << " signal(s) from " << delay.count()
                                             << " ms after main() took them over, output:\n"
                                             << example.output());
  REQUIRE(status == 0);
}

}  // namespace

TEST_CASE("retail_by_day --output writes the reference result for 2010-12-01", "[example]") {
  flow::test::temp_dir dir;
  auto out = dir / "result.csv";
  REQUIRE(run_example({"--data", flow::test::retail_day_dir(dir).string(), "--trigger", "available-now", "--output", out.string(),
                       "--refreshes", "1"},
                      dir / "log.txt", std::nullopt) == 0);
  CHECK(flow::test::read_file(out).rfind("CustomerID,window_start,window_end,sum(total_cost)\n", 0) == 0);
  flow::test::check_same_sums(
      flow::test::read_customer_hour_sums(out, 3),
      flow::test::read_customer_hour_sums(flow::test::shared_data_dir() / "expected" / "result_2010-12-01.csv", 4));
}

TEST_CASE("retail_by_day stops cleanly on SIGTERM and still writes its output", "[example]") {
  flow::test::temp_dir dir;
  auto out = dir / "result.csv";
  CHECK(run_example({"--trigger", "1s", "--output", out.string()}, dir / "log.txt", 1500ms) == 0);
  REQUIRE(fs::exists(out));
  CHECK(flow::test::read_customer_hour_sums(out, 3).size() > 100);
}

TEST_CASE("retail_by_day stops on a signal that comes while it starts", "[example][signal]") {
  flow::test::temp_dir dir;
  for (const auto& signals : start_up_signals)
    for (auto delay : start_up_delays)
      check_stops_on_start_up_signals(FLOW_RETAIL_EXAMPLE, {"--trigger", "1s"}, delay, signals, dir / "log.txt");
}

TEST_CASE("network_wordcount stops on a signal that comes while it starts", "[example][signal][socket]") {
  flow::test::temp_dir dir;
  for (const auto& signals : start_up_signals) {
    for (auto delay : start_up_delays) {
      flow::test::listener server;  // a fresh peer each run: its backlog never fills
      check_stops_on_start_up_signals(FLOW_NETWORK_WORDCOUNT_EXAMPLE,
                                      {"--host", "127.0.0.1", "--port", std::to_string(server.port())}, delay, signals,
                                      dir / "log.txt");
    }
  }
}

TEST_CASE("retail_by_day prints to a file as it runs and not only at its end", "[example]") {
  flow::test::temp_dir dir;
  flow::test::child_process example(FLOW_RETAIL_EXAMPLE, {"--trigger", "1s"}, dir / "log.txt");
  // The static read's table comes first; the memory table's first refresh follows a second after the
  // stream started, so it must not be there yet when the first table shows up.
  const std::string first_table =
      example.await_output("rows: \\d+, partitions: \\d+\n(\\+[-+]+\n[\\s\\S]*?only showing top 5 rows\n)");
  REQUIRE_FALSE(first_table.empty());
  CHECK_THAT(example.output(), !Catch::Contains("|CustomerID|window"));
  example.signal(SIGKILL);
  CHECK(example.wait_exit(10s) == -1);
  CHECK_THAT(example.output(), Catch::StartsWith("root\n |-- InvoiceNo: string") && Catch::Contains(first_table));
}

TEST_CASE("the examples and the feed server refuse a bad command line with the reason and the usage", "[example]") {
  struct bad_command_line {
    const char* program;
    std::vector<std::string> args;
    std::string reason;
  };
  const std::vector<bad_command_line> cases{
      {FLOW_RETAIL_EXAMPLE, {"--bogus"}, "unknown flag --bogus"},
      {FLOW_RETAIL_EXAMPLE, {"--trigger", "sometimes"}, "invalid trigger 'sometimes'"},
      {FLOW_RETAIL_EXAMPLE, {"--refreshes", "0"}, "--refreshes needs a positive whole number, got '0'"},
      {FLOW_RETAIL_EXAMPLE, {"stray"}, "unexpected argument 'stray'"},
      {FLOW_NETWORK_WORDCOUNT_EXAMPLE, {"--host", "127.0.0.1"}, "--port is required"},
      {FLOW_NETWORK_WORDCOUNT_EXAMPLE, {"--port", "70000"}, "--port needs a whole number 0..65535, got '70000'"},
      {FLOW_TRENDING_EXAMPLE, {"--output"}, "missing value after --output"},
      {FLOW_ZMQ_PIPELINE_EXAMPLE, {"--trigger", "1s"}, "name a command, produce or consume"},
      {FLOW_ZMQ_PIPELINE_EXAMPLE, {"produce"}, "produce needs --data DIR"},
      {FLOW_FEED_SERVER, {"--rate", "-1"}, "--rate needs a non-negative whole number, got '-1'"},
      {FLOW_FEED_SERVER, {"--status", "42"}, "--status must be an HTTP status, got 42"},
  };
  flow::test::temp_dir dir;
  for (const auto& [program, args, reason] : cases) {
    INFO(program << " " << (args.empty() ? "" : args[0]));
    flow::test::child_process run(program, args, dir / "stdout.txt", dir / "stderr.txt");
    CHECK(run.wait_exit(30s) == 1);
    CHECK_THAT(flow::test::read_file(dir / "stderr.txt"), Catch::Contains(": " + reason) && Catch::Contains("usage: "));
  }
  flow::test::child_process help(FLOW_ZMQ_PIPELINE_EXAMPLE, {"--help"}, dir / "stdout.txt", dir / "stderr.txt");
  CHECK(help.wait_exit(30s) == 0);
  CHECK(flow::test::read_file(dir / "stdout.txt").rfind("usage: zmq_pipeline consume", 0) == 0);
}
