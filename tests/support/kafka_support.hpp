// The Kafka tests' peers: librdkafka's in-process mock cluster with a producer that feeds it, and a plain
// consumer that reads a topic back. Header-only: only the suites that link librdkafka include it.
#pragma once

#include <catch2/catch.hpp>

// clang-format off
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
// clang-format on

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace flow::test {

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
  rd_kafka_mock_cluster_t* cluster() const { return cluster_; }

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

struct kafka_record {
  std::string key;  // "" for a record without a key
  std::string value;
  std::int32_t partition = 0;
  friend bool operator==(const kafka_record&, const kafka_record&) = default;
};

// Everything in topic's partitions [0, partitions), read with a plain consumer until `expected` records
// arrived or 10 s passed.
inline std::vector<kafka_record> read_topic(const std::string& bootstraps, const std::string& topic, int partitions,
                                            std::size_t expected) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char reason[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), reason, sizeof reason);
  rd_kafka_conf_set(conf, "group.id", "libflow-test-reader", reason, sizeof reason);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", reason, sizeof reason);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
  REQUIRE(consumer);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<kafka_record> records;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (records.size() < expected && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (!m) continue;
    if (!m->err) {
      records.push_back({m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : "",
                         std::string(static_cast<const char*>(m->payload), m->len), m->partition});
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return records;
}

// "key=value" of each record.
inline std::multiset<std::string> key_value_pairs(const std::vector<kafka_record>& records) {
  std::multiset<std::string> pairs;
  for (const auto& r : records) pairs.insert(r.key + "=" + r.value);
  return pairs;
}

}  // namespace flow::test
