// End-to-end: Kafka and rate streams through flow::session, against librdkafka's in-process mock cluster.
#include <catch2/catch.hpp>

// clang-format off
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
// clang-format on

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;

namespace {

// One mock broker and a producer that feeds it.
class mock_kafka {
 public:
  mock_kafka() {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char reason[256];
    REQUIRE(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", reason, sizeof reason) == RD_KAFKA_CONF_OK);
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
    REQUIRE(producer_);
    cluster_ = rd_kafka_handle_mock_cluster(producer_);
    REQUIRE(cluster_);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~mock_kafka() {
    rd_kafka_flush(producer_, 5000);
    rd_kafka_destroy(producer_);
  }
  mock_kafka(const mock_kafka&) = delete;
  mock_kafka& operator=(const mock_kafka&) = delete;

  const std::string& bootstraps() const { return bootstraps_; }

  void create_topic(const std::string& topic, int partitions) {
    REQUIRE(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void produce(const std::string& topic, std::int32_t partition, const std::string& key, const std::string& value) {
    auto err = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
    REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void flush() { REQUIRE(rd_kafka_flush(producer_, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR); }

 private:
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstraps_;
};

// "key=value" of every record in topic's partitions, read with a plain consumer until `expected`
// records arrived or 10 s passed.
std::multiset<std::string> read_topic(const std::string& bootstraps, const std::string& topic, int partitions,
                                      std::size_t expected) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char reason[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), reason, sizeof reason);
  rd_kafka_conf_set(conf, "group.id", "kafka-stream-test-reader", reason, sizeof reason);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", reason, sizeof reason);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
  REQUIRE(consumer);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::multiset<std::string> records;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (records.size() < expected && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (!m) continue;
    if (!m->err) {
      std::string key = m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : "";
      records.insert(key.append("=").append(static_cast<const char*>(m->payload), m->len));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return records;
}

// The integer after "key": in a progress report.
std::int64_t json_int(const std::string& json, const std::string& key) {
  auto at = json.find(std::string("\"").append(key).append("\":"));
  REQUIRE(at != std::string::npos);
  return std::stoll(json.substr(at + key.size() + 3));
}

}  // namespace

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
                    .load("");
  CHECK(clicks.schema().to_string() ==
        "key: string, value: string, topic: string, partition: int64, offset: int64, timestamp: timestamp");
  auto query = clicks.group_by({col("key")}).count().write_stream().format("memory").query_name("clicks_per_user")
                   .output_mode("complete").trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());

  auto table = session.sql("SELECT key, `count(1)` FROM clicks_per_user ORDER BY key").collect_batch();
  std::map<std::string, std::int64_t> counted;
  for (std::size_t r = 0; r < table.num_rows(); ++r)
    counted[flow::to_string(table.at(r, 0))] = std::get<std::int64_t>(table.at(r, 1));
  CHECK(counted == expected_counts);

  auto progress = query.recent_progress();
  CHECK(progress.size() >= produced_count / 50);
  std::int64_t rows = 0;
  for (const auto& p : progress) {
    auto epoch_rows = json_int(p, "numInputRows");
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
                  .load("")
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
  CHECK(read_topic(kafka.bootstraps(), "clicks_copy", 2, produced_count) == produced);
  CHECK_THAT(*copy.last_progress(), Catch::Contains("KafkaSink[clicks_copy]") &&
                                        Catch::Contains("\"numRecordsWritten\":300"));
}

TEST_CASE("a Kafka source without a reachable broker fails start() with the reason", "[actors][kafka]") {
  flow::session session;
  auto unreachable = session.read_stream().format("kafka")
                         .option("kafka.bootstrap.servers", "127.0.0.1:1")
                         .option("subscribe", "nowhere")
                         .option("kafka.timeoutMs", 300)
                         .load("");
  auto started = std::chrono::steady_clock::now();
  // start() plans the initial offset in the caller's thread.
  CHECK_THAT(flow::test::error_of([&] {
               unreachable.write_stream().format("memory").query_name("nothing").trigger(flow::available_now()).start();
             }),
             Catch::Contains("cannot get the partitions of topic 'nowhere' from brokers '127.0.0.1:1' within 300 ms"));
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("the rate source delivers every row of its ranges exactly once", "[actors][rate]") {
  flow::session session;
  auto query = session.read_stream().format("rate").option("rowsPerSecond", 100).option("numPartitions", 2)
                   .load("")
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
