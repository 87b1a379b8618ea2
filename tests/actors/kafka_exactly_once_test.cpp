// The Kafka sink's exactly-once mode end to end: a query on a checkpoint (tests/programs/kafka_exactly_once_query)
// is killed with SIGKILL right after Kafka committed an epoch's transaction and before the checkpoint's commit
// of it, at random epochs, and started again; the topic must then hold what a run that was never killed wrote.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kafka_support.hpp"
#include "checkpoint_log.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace flow::test;

namespace {

// Each partition's records in offset order.
std::map<std::int32_t, std::vector<kafka_record>> by_partition(const std::vector<kafka_record>& records) {
  std::map<std::int32_t, std::vector<kafka_record>> out;
  for (const auto& r : records) out[r.partition].push_back(r);
  return out;
}

}  // namespace

TEST_CASE("kafka sink exactly-once: killed between Kafka's commit and the checkpoint's, the restarted query writes "
          "every row once",
          "[actors][kafka][transactions][e2e]") {
  mock_kafka kafka;
  kafka.create_topic("reference", 2);
  kafka.create_topic("out", 2);
  kafka.create_topic("libflow-sink-epochs", 1);
  temp_dir dir;
  const fs::path in = dir / "in";
  fs::create_directories(in);
  constexpr int files = 12;
  constexpr int rows_per_file = 5;
  const auto an_hour_ago = fs::file_time_type::clock::now() - 1h;
  std::multiset<std::string> expected;
  for (int f = 0; f < files; ++f) {
    std::string rows;
    for (int r = 0; r < rows_per_file; ++r) {
      const int id = f * rows_per_file + r;
      rows += std::to_string(id) + ",p" + std::to_string(id) + "\n";
      expected.insert(std::to_string(id) + "=p" + std::to_string(id));
    }
    char name[32];
    std::snprintf(name, sizeof name, "input-%03d.csv", f);
    write_file(in / name, rows);
    fs::last_write_time(in / name, an_hour_ago + std::chrono::seconds(f));  // one epoch per file, in this order
  }
  int run_number = 0;
  auto run = [&](const std::string& topic, const fs::path& checkpoint, std::optional<int> kill_epoch) {
    const fs::path log = dir / ("run-" + std::to_string(run_number++) + ".log");
    std::vector<std::string> args{in.string(), kafka.bootstraps(), topic, checkpoint.string()};
    if (kill_epoch) args.push_back(std::to_string(*kill_epoch));
    child_process query(FLOW_KAFKA_EXACTLY_ONCE_QUERY, args, log, log);
    const int status = query.wait_exit(60s);
    INFO("run " << run_number - 1 << " (kill after epoch " << kill_epoch.value_or(-1) << "):\n" << read_file(log));
    return status;
  };

  REQUIRE(run("reference", dir / "reference-checkpoint", std::nullopt) == 0);
  const auto reference = read_whole_topic(kafka.bootstraps(), "reference", 2);
  CHECK(key_value_pairs(reference) == expected);

  // Three random epochs, in order: each run is killed at one, and the next run re-runs it from the checkpoint.
  std::mt19937 random(Catch::rngSeed());
  std::vector<int> epochs(files - 1);
  for (int e = 0; e < files - 1; ++e) epochs[static_cast<std::size_t>(e)] = e;
  std::shuffle(epochs.begin(), epochs.end(), random);
  epochs.resize(3);
  std::sort(epochs.begin(), epochs.end());
  const fs::path checkpoint = dir / "checkpoint";
  for (int kill_epoch : epochs) {
    REQUIRE(run("out", checkpoint, kill_epoch) == -1);  // killed by itself, or by another crash:
    // inside the window, the checkpoint's commit of the epoch is not written.
    CHECK_FALSE(flow::test::logged(checkpoint, "commits/" + std::to_string(kill_epoch)));
  }
  REQUIRE(run("out", checkpoint, std::nullopt) == 0);

  // Kafka had committed each killed epoch: its marker is there once, as is every other epoch's.
  std::multiset<std::string> markers;
  for (const auto& marker : read_whole_topic(kafka.bootstraps(), "libflow-sink-epochs", 1))
    markers.insert(marker.value);
  CHECK(markers.size() == 2 * files);  // the reference query's and this query's
  for (int e = 0; e < files; ++e) CHECK(markers.count(std::to_string(e)) == 2);
  const auto out = read_whole_topic(kafka.bootstraps(), "out", 2);
  CHECK(key_value_pairs(out) == expected);
  CHECK(by_partition(out) == by_partition(reference));
}
