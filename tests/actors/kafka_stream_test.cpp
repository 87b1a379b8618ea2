// End-to-end: Kafka and rate streams through flow::session, against librdkafka's in-process mock cluster.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "flow/session.hpp"
#include "kafka_support.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
using namespace flow::test;

TEST_CASE("a Kafka topic counted by key with maxOffsetsPerTrigger, then copied with the Kafka sink",
          "[actors][kafka]") {
  mock_kafka kafka;
  kafka.create_topic("clicks", 3);
  constexpr int produced_count = 300;
  std::map<std::string, std::int64_t> expected_counts;
  std::multiset<std::string> produced;
  for (int i = 0; i < produced_count; ++i) {
    std::string key = std::string("user").append(std::to_string(i % 7));
    std::string value = std::string("v").append(std::to_string(i));
    kafka.produce("clicks", i % 3, key, value);
    ++expected_counts[key];
    produced.insert(key + "=" + value);
  }
  kafka.flush();

  flow::session session;
  auto clicks = session.read_stream().format("kafka")
                    .option("kafka.bootstrap.servers", kafka.bootstraps())
                    .option("subscribe", "clicks")
                    .option("startingOffsets", "earliest")
                    .option("maxOffsetsPerTrigger", 50)
                    .option("kafka.timeoutMs", 5000)
                    .load();
  CHECK(clicks.schema().to_string() ==
        "key: string, value: string, topic: string, partition: int64, offset: int64, timestamp: timestamp");
  auto query = clicks.group_by({col("key")}).count().write_stream().format("memory").query_name("clicks_per_user")
                   .output_mode("complete").trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());

  CHECK(counts_of(session.sql("SELECT key, count FROM clicks_per_user").collect_batch()) == expected_counts);

  auto progress = query.recent_progress();
  CHECK(progress.size() >= produced_count / 50);
  std::int64_t rows = 0;
  for (const auto& p : progress) {
    auto epoch_rows = json_int(p, "numInputRows").value_or(-1);
    CHECK(epoch_rows > 0);
    CHECK(epoch_rows <= 50);  // 50 split 16/16/16 across the three partitions, Spark's proration
    rows += epoch_rows;
  }
  CHECK(rows == produced_count);
  CHECK_THAT(progress.back(), Catch::Contains("KafkaV2[Subscribe[clicks]]") &&
                                  Catch::Contains(R"({"clicks":{"0":100,"1":100,"2":100}})") &&
                                  Catch::Contains("\"offsetsBehindLatest\":0"));

  // The same topic written to another one by the Kafka sink, read back by a plain consumer.
  kafka.create_topic("clicks_copy", 2);
  auto copy = session.read_stream().format("kafka")
                  .option("kafka.bootstrap.servers", kafka.bootstraps())
                  .option("subscribe", "clicks")
                  .option("startingOffsets", "earliest")
                  .option("kafka.timeoutMs", 5000)
                  .load()
                  .select({col("key"), col("value")})
                  .write_stream().format("kafka")
                  .option("kafka.bootstrap.servers", kafka.bootstraps())
                  // std::string: data_stream_writer::option has no const char* overload (a literal picks bool).
                  .option("topic", std::string("clicks_copy"))
                  .option("kafka.timeoutMs", std::string("5000"))
                  .trigger(flow::available_now())
                  .start();
  REQUIRE(copy.await_termination(60s));
  REQUIRE_FALSE(copy.exception());
  CHECK(key_value_pairs(read_topic(kafka.bootstraps(), "clicks_copy", 2, produced_count)) == produced);
  CHECK_THAT(*copy.last_progress(), Catch::Contains("KafkaSink[clicks_copy]") &&
                                        Catch::Contains("\"numRecordsWritten\":300"));
}

TEST_CASE("a Kafka source without a reachable broker fails start() with the reason", "[actors][kafka]") {
  flow::session session;
  auto unreachable = session.read_stream().format("kafka")
                         .option("kafka.bootstrap.servers", "127.0.0.1:1")
                         .option("subscribe", "nowhere")
                         .option("kafka.timeoutMs", 300)
                         .load();
  auto started = std::chrono::steady_clock::now();
  // start() plans the initial offset in the caller's thread.
  CHECK_THAT(flow::test::error_of([&] {
               unreachable.write_stream().format("memory").query_name("nothing").trigger(flow::available_now()).start();
             }),
             Catch::Contains("cannot get the partitions of topic 'nowhere' from brokers '127.0.0.1:1' within 300 ms"));
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

namespace {

// User + system CPU seconds of the whole process (query, librdkafka's threads, the mock broker).
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The values a query reading topic saw, with when its sink got them.
class arrivals {
 public:
  flow::streaming_query start(flow::session& session, const mock_kafka& kafka, const std::string& topic,
                              const std::string& fetch_wait_ms) {
    return session.read_stream().format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstraps())
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("kafka.timeoutMs", 5000)
        .option("kafka.fetch.wait.max.ms", fetch_wait_ms)
        .load()
        .select({col("value")})
        .write_stream()
        .foreach_batch([this](const flow::batch& rows, std::int64_t) {
          const auto now = std::chrono::steady_clock::now();
          std::lock_guard<std::mutex> lock(mutex_);
          for (std::size_t r = 0; r < rows.num_rows(); ++r) seen_at_.emplace(rows.col(0).str(r), now);
        })
        .start();
  }
  std::optional<std::chrono::steady_clock::time_point> seen_at(const std::string& value) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = seen_at_.find(value);
    if (found == seen_at_.end()) return std::nullopt;
    return found->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::chrono::steady_clock::time_point> seen_at_;
};

}  // namespace

TEST_CASE("an idle Kafka query does not poll, and a produced record starts an epoch at once",
          "[actors][kafka][notify]") {
  mock_kafka kafka;
  kafka.create_topic("idle", 2);
  flow::session session;
  {
    // librdkafka's default fetch wait (500 ms): a broker holds the fetch of the query's arrival consumer
    // that long when no record comes.
    arrivals seen;
    auto query = seen.start(session, kafka, "idle", "500");
    kafka.produce("idle", 0, "k", "first");
    kafka.flush();
    REQUIRE(eventually([&] { return seen.seen_at("first").has_value(); }, 30s));
    // Polled every 10 ms (a metadata and an offsets request each time), the idle query used about 0.3 s of
    // CPU in 2 s; waiting for the broker, about 0.02 s.
    const double cpu_before = process_cpu_seconds();
    std::this_thread::sleep_for(2s);
    const double idle_cpu = process_cpu_seconds() - cpu_before;
    INFO("idle CPU seconds over 2 s: " << idle_cpu);
    CHECK(idle_cpu < 0.1);
    query.stop();
    REQUIRE(query.await_termination(10s));
    REQUIRE_FALSE(query.exception());
  }
  // A real broker answers a held fetch as soon as a record arrives; librdkafka's mock broker only when the
  // wait is over, so the wait here is short.
  kafka.create_topic("busy", 2);
  arrivals seen;
  auto query = seen.start(session, kafka, "busy", "2");
  std::vector<double> latencies_ms;
  for (int i = 0; i < 9; ++i) {
    const std::string value = std::string("v").append(std::to_string(i));
    const auto produced_at = std::chrono::steady_clock::now();
    kafka.produce("busy", i % 2, "k", value);
    kafka.flush();
    REQUIRE(eventually([&] { return seen.seen_at(value).has_value(); }, 30s));
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(*seen.seen_at(value) - produced_at).count());
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  INFO("median latency from produce to sink: " << latencies_ms[latencies_ms.size() / 2] << " ms");
  CHECK(latencies_ms[latencies_ms.size() / 2] < 10.0);  // the poll interval it had before
  query.stop();
  REQUIRE(query.await_termination(10s));
  REQUIRE_FALSE(query.exception());
}

TEST_CASE("the rate source delivers every row of its ranges exactly once", "[actors][rate]") {
  flow::session session;
  auto query = session.read_stream().format("rate").option("rowsPerSecond", 100).option("numPartitions", 2)
                   .load()
                   .write_stream().format("memory").query_name("ticks")
                   .trigger(flow::processing_time(200ms)).start();
  auto deadline = std::chrono::steady_clock::now() + 20s;
  std::int64_t rows = 0;
  while (rows < 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    rows = std::get<std::int64_t>(session.sql("SELECT count(*) FROM ticks").collect_batch().at(0, 0));
  }
  query.stop();
  REQUIRE(query.await_termination(10s));
  auto summary = session.sql("SELECT count(*), count(DISTINCT value), min(value), max(value) FROM ticks").collect_batch();
  auto count = std::get<std::int64_t>(summary.at(0, 0));
  CHECK(count >= 200);
  CHECK(count % 100 == 0);  // whole seconds of 100 rows
  CHECK(std::get<std::int64_t>(summary.at(0, 1)) == count);
  CHECK(std::get<std::int64_t>(summary.at(0, 2)) == 0);
  CHECK(std::get<std::int64_t>(summary.at(0, 3)) == count - 1);
  CHECK_THAT(*query.last_progress(), Catch::Contains("RateStreamV2[rowsPerSecond=100"));
}
