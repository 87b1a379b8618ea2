// A Kafka source on a cluster: an epoch's partition ranges are split over the source vertex's instances,
// which read them on the workers with consumers of their own (the driver only plans the offsets and logs
// them), against librdkafka's mock cluster in this process (the real Kafka protocol on 127.0.0.1).
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <map>
#include <string>

#include "checkpoint_log.hpp"
#include "cluster_support.hpp"
#include "kafka_support.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;

namespace {

constexpr int partitions = 4;
constexpr int key_count = 7;

// count records to the topic "clicks", key "user<i % 7>", spread over its partitions; the counts by key.
std::map<std::string, std::int64_t> produce_clicks(mock_kafka& kafka, int count) {
  kafka.create_topic("clicks", partitions);
  std::map<std::string, std::int64_t> counts;
  for (int i = 0; i < count; ++i) {
    const std::string key = std::string("user").append(std::to_string(i % key_count));
    kafka.produce("clicks", i % partitions, key, std::string("v").append(std::to_string(i)));
    ++counts[key];
  }
  kafka.flush();
  return counts;
}

data_stream_writer clicks_per_user(session& s, const mock_kafka& kafka, std::int64_t per_trigger) {
  return s.read_stream().format("kafka")
      .option("kafka.bootstrap.servers", kafka.bootstraps())
      .option("subscribe", "clicks")
      .option("startingOffsets", "earliest")
      .option("maxOffsetsPerTrigger", per_trigger)
      .option("kafka.timeoutMs", 5000)
      .load()
      .group_by({col("key")})
      .count()
      .write_stream()
      .format("memory")
      .query_name("clicks_per_user")
      .output_mode("complete");
}

std::map<std::string, std::int64_t> counted(session& s) {
  return counts_of(s.sql("SELECT key, count FROM clicks_per_user").collect_batch());
}

// What the progress of the query's last epoch with rows says the source read: {numInputRows summed over
// every epoch, the numRecordsRead and numBytesRead metrics of that last epoch}; fails when a metric is
// missing or reported twice.
struct read_figures {
  std::int64_t input_rows = 0, records_read = 0, bytes_read = 0;
};

read_figures progress_figures(const streaming_query& query) {
  read_figures figures;
  std::string last;
  for (const auto& p : query.recent_progress()) {
    const auto rows = json_int(p, "numInputRows").value_or(0);
    figures.input_rows += rows;
    if (rows > 0) last = p;
  }
  INFO("the last progress with rows: " << last);
  for (const std::string name : {"\"numRecordsRead\"", "\"numBytesRead\""}) {
    std::size_t found = 0;
    for (auto at = last.find(name); at != std::string::npos; at = last.find(name, at + 1)) ++found;
    CHECK(found == 1);
  }
  figures.records_read = json_int(last, "numRecordsRead").value_or(-1);
  figures.bytes_read = json_int(last, "numBytesRead").value_or(-1);
  return figures;
}

}  // namespace

// The driver's reader only plans the offsets: the workers' instances report the rows and records they read.
TEST_CASE("a Kafka source read on the workers reports its input rows and records read in the driver's progress",
          "[cluster][kafka]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  mock_kafka kafka;
  constexpr int records = 600;
  produce_clicks(kafka, records);
  read_figures embedded_figures;
  {
    session_config embedded;
    embedded.parallelism = 2;
    session here(embedded);
    auto query = clicks_per_user(here, kafka, 200).trigger(available_now()).start();
    REQUIRE(query.await_termination(60s));
    REQUIRE_FALSE(query.exception());
    embedded_figures = progress_figures(query);
  }
  CHECK(embedded_figures.input_rows == records);
  CHECK(embedded_figures.records_read == records);
  CHECK(embedded_figures.bytes_read > 0);
  worker_process a(dir, secret), b(dir, secret);
  auto config = driver_config({a.address, b.address}, secret);
  config.parallelism = 2;
  session driver(config);
  auto query = clicks_per_user(driver, kafka, 200).trigger(available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  const auto figures = progress_figures(query);
  CHECK(figures.input_rows == records);
  CHECK(figures.records_read == records);
  CHECK(figures.bytes_read == embedded_figures.bytes_read);
}

// Before the split the Kafka reader and its source vertex ran on the driver, and the workers saw only the
// partial counts the shuffle sent them (at most 7 keys x 2 instances per epoch): far fewer rows than the
// topic holds.
TEST_CASE("a Kafka source's partitions are read on the workers, split over its instances, with the embedded counts",
          "[cluster][kafka]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  mock_kafka kafka;
  constexpr int records = 800;
  const auto expected = produce_clicks(kafka, records);
  {
    session_config embedded;
    embedded.parallelism = 2;
    session here(embedded);
    auto query = clicks_per_user(here, kafka, 200).trigger(available_now()).start();
    REQUIRE(query.await_termination(60s));
    REQUIRE_FALSE(query.exception());
    REQUIRE(counted(here) == expected);
  }
  worker_process a(dir, secret), b(dir, secret);
  {
    auto config = driver_config({a.address, b.address}, secret);
    config.parallelism = 2;  // one source instance on each worker, two partitions each
    session driver(config);
    auto query = clicks_per_user(driver, kafka, 200).trigger(available_now()).start();
    REQUIRE(query.await_termination(60s));
    REQUIRE_FALSE(query.exception());
    CHECK(counted(driver) == expected);
  }
  const auto first = last_figures(a), second = last_figures(b);
  INFO("rows the workers processed: " << first.rows << " and " << second.rows);
  // Each worker's source instance read its two partitions' records (200 of each 4 epochs' 800).
  CHECK(first.rows >= records / 2);
  CHECK(second.rows >= records / 2);
}

// The offsets stay the driver's: logged before each epoch runs, so the epochs a lost worker's instances
// were reading are read again, from the same offsets, by the instances placed on the other worker.
TEST_CASE("a worker SIGKILLed while it reads Kafka partitions: the epochs are read again elsewhere, counts exact",
          "[cluster][kafka][loss]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  mock_kafka kafka;
  constexpr int records = 2000;
  const auto expected = produce_clicks(kafka, records);
  worker_process a(dir, secret), b(dir, secret);
  auto config = driver_config({a.address, b.address}, secret);
  config.parallelism = 2;
  session driver(config);
  const auto checkpoint = dir.path() / "checkpoint";
  auto query = clicks_per_user(driver, kafka, 40)
                   .option("checkpointLocation", checkpoint.string())
                   .trigger(processing_time(10ms))
                   .start();
  REQUIRE(eventually([&] { return newest_commit(checkpoint) >= 2; }, 60s, 1ms));
  INFO("the run must still have epochs to go when the worker is killed");
  REQUIRE(newest_commit(checkpoint) < records / 40 - 5);
  a.process->signal(SIGKILL);
  const bool all_counted = eventually([&] { return !query.exception() && counted(driver) == expected; }, 120s, 20ms);
  INFO("the query's exception: " << query.exception().value_or("none"));
  CHECK(all_counted);
  query.stop();
  CHECK(last_figures(b).rows >= records / 2);
}
