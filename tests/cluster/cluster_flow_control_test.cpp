// Flow control across nodes: an instance sends at most remote_edge_bytes (plus what one input makes) to an
// instance on another node before that one acks, whatever the sender is; here a file source's instance
// reading its share of the epochs on one worker, rebalanced to a slow instance on the other.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <string>

#include "../../actors/src/dataflow.hpp"
#include "cluster_support.hpp"
#include "flow/plan.hpp"
#include "flow/topology.hpp"
#include "slow_function.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE("a slow receiving worker: the sending worker's unacked bytes stay under the bound, every row arrives",
          "[cluster][flow_control]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  // 40 files of about 1 MB (one chunk each), 10 an epoch: 4 epochs of 10 MB, all in flight at once by the
  // default window, against a receiver that takes 50 ms a batch.
  constexpr int files = 40, lines_per_file = 10000;
  const std::string line(99, 'x');
  std::string text;
  for (int i = 0; i < lines_per_file; ++i) text += line + "\n";
  fs::create_directories(dir / "lines");
  for (int f = 0; f < files; ++f) write_file(dir / "lines" / ("part-" + std::to_string(100 + f) + ".txt"), text);
  const std::int64_t total_rows = std::int64_t{files} * lines_per_file;
  const std::int64_t total_bytes = std::int64_t{files} * static_cast<std::int64_t>(text.size());

  register_slow_function();
  worker_process a(dir, secret, {"--slow-function"}), b(dir, secret, {"--slow-function"});
  std::int64_t input_rows = 0, restarts = 0;
  {
    auto config = driver_config({a.address, b.address}, secret);
    config.parallelism = 1;  // the source's instance on one worker, the slow one on the other
    session driver(config);
    topology t(driver.context());
    auto lines = t.source("lines", driver.read_stream().format("text").option("maxFilesPerTrigger", 10)
                                       .load((dir / "lines" / "*.txt").string()));
    lines.rebalance()
        .apply("slow", make_function_operator(find_batch_function(slow_function), lines.schema(), slow_function))
        .sink("dropped").format("noop").output_mode("append");
    auto query = t.start({"flow_control", available_now()});
    REQUIRE(query.await_termination(240s));
    for (const auto& p : query.recent_progress()) {
      input_rows += json_int(p, "numInputRows").value_or(0);
      restarts = std::max(restarts, json_int(p, "numRestarts").value_or(0));
    }
    CHECK(driver.cluster().joined_count() == 2);  // no worker was taken for lost
  }
  CHECK(input_rows == total_rows);
  CHECK(restarts == 0);
  const auto fa = last_figures(a), fb = last_figures(b);
  const auto& sender = fa.file_bytes > 0 ? fa : fb;
  const auto& receiver = fa.file_bytes > 0 ? fb : fa;
  INFO("sender: " << sender.file_bytes << " file bytes, at most " << sender.most_unacked_bytes << " bytes unacked");
  CHECK(sender.file_bytes == total_bytes);  // every file read on one worker: every batch crossed
  CHECK(receiver.file_bytes == 0);
  CHECK(receiver.rows == total_rows);
  // The receiver was slow enough for the sender to reach the bound, and the bound held (one input's batch
  // of about 1 MB may pass it); without it the sender would have had up to 4 epochs' 40 MB out at once.
  CHECK(sender.most_unacked_bytes >= static_cast<std::int64_t>(runtime::remote_edge_bytes));
  CHECK(sender.most_unacked_bytes <= static_cast<std::int64_t>(runtime::remote_edge_bytes + (std::size_t{2} << 20)));
}
