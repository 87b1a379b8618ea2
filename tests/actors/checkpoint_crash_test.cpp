// A query on a durable checkpoint killed with SIGKILL at random moments and started again with the same
// flags, many times: the run that finishes writes the same result as a run that was never killed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint_log.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> retail_args(const fs::path& data, const fs::path& output) {
  return {"--data", data.string(), "--trigger", "available-now", "--refreshes", "1", "--output", output.string()};
}

}  // namespace

TEST_CASE("checkpoint: retail_by_day killed with SIGKILL at random moments and restarted on its checkpoint "
          "ends with the result of a run that was never killed",
          "[checkpoint][crash]") {
  flow::test::temp_dir dir;
  const fs::path data = flow::test::retail_days(dir, 305);
  const fs::path expected = dir / "expected.csv";
  {
    flow::test::child_process reference(FLOW_RETAIL_EXAMPLE, retail_args(data, expected), dir / "reference.log");
    REQUIRE(reference.wait_exit(120s) == 0);
  }

  auto args = retail_args(data, dir / "output.csv");
  args.insert(args.end(), {"--checkpoint", (dir / "checkpoint").string()});
  std::mt19937 random(Catch::rngSeed());
  std::uniform_int_distribution<int> delay_ms(5, 120);  // a whole uninterrupted run takes about 0.4 s
  int kills = 0, exit_status = -1;
  for (int run = 0; run < 40 && exit_status != 0; ++run) {
    const fs::path log = dir / ("run-" + std::to_string(run) + ".log");
    flow::test::child_process example(FLOW_RETAIL_EXAMPLE, args, log);
    if (kills < 12) {
      // Every other run is killed only after it committed something, so that the runs surely continue one
      // another even where start-up takes longer than any fixed delay (a loaded machine, the sanitizers);
      // the others at a moment that may fall in start-up or recovery.
      if (kills % 2 == 0) {
        const auto before = flow::test::newest_commit(dir / "checkpoint");
        REQUIRE(flow::test::eventually([&] { return flow::test::newest_commit(dir / "checkpoint") > before; }, 120s, 2ms));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
      // Not exited by now: SIGKILL (wait_exit's timeout).
      exit_status = example.wait_exit(0ms);
      INFO("run " << run << " failed:\n" << flow::test::read_file(log));
      REQUIRE(exit_status <= 0);
      if (exit_status < 0) ++kills;
      continue;
    }
    exit_status = example.wait_exit(120s);
    INFO("the last run's output:\n" << example.output());
    REQUIRE(exit_status == 0);
  }
  // The runs continued one another: the last one read only the files its predecessors had not committed
  // (its file source's numFilesRead counts this process's reads).
  const std::string final_log = flow::test::read_file(dir / ("run-" + std::to_string(kills) + ".log"));
  const auto files_read = flow::test::json_int(final_log.substr(final_log.find("last progress:")), "numFilesRead");
  REQUIRE(files_read);
  CHECK(*files_read < 305);
  REQUIRE(exit_status == 0);
  INFO(kills << " runs killed before the one that finished");
  CHECK(kills > 0);
  flow::test::check_same_sums(flow::test::read_customer_hour_sums(dir / "output.csv", 3),
                              flow::test::read_customer_hour_sums(expected, 3));
}
