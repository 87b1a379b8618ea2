// The retail example as a user runs it: its --output table against the reference, and a clean stop
// on SIGTERM.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

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
