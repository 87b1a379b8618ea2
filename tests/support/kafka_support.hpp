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

// Records of topic's partitions [0, partitions) from their beginning, read with a plain consumer
// (isolation.level read_committed, librdkafka's default) until done(records, partitions at their end) or 10 s passed.
template <class Done>
std::vector<kafka_record> consume_topic(const std::string& bootstraps, const std::string& topic, int partitions,
                                        Done done) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char reason[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), reason, sizeof reason);
  rd_kafka_conf_set(conf, "group.id", "libflow-test-reader", reason, sizeof reason);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", reason, sizeof reason);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", reason, sizeof reason);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
  REQUIRE(consumer);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<kafka_record> records;
  std::set<std::int32_t> at_end;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done(records, at_end.size() == static_cast<std::size_t>(partitions)) &&
         std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (!m) continue;
    if (!m->err) {
      at_end.erase(m->partition);
      records.push_back({m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : "",
                         std::string(static_cast<const char*>(m->payload), m->len), m->partition});
    } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert(m->partition);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return records;
}

// Until `expected` records arrived.
inline std::vector<kafka_record> read_topic(const std::string& bootstraps, const std::string& topic, int partitions,
                                            std::size_t expected) {
  return consume_topic(bootstraps, topic, partitions,
                       [&](const std::vector<kafka_record>& records, bool) { return records.size() >= expected; });
}

// Everything up to each partition's end (its last stable offset for read_committed).
inline std::vector<kafka_record> read_whole_topic(const std::string& bootstraps, const std::string& topic,
                                                  int partitions) {
  return consume_topic(bootstraps, topic, partitions,
                       [](const std::vector<kafka_record>&, bool all_at_end) { return all_at_end; });
}

// "key=value" of each record.
inline std::multiset<std::string> key_value_pairs(const std::vector<kafka_record>& records) {
  std::multiset<std::string> pairs;
  for (const auto& r : records) pairs.insert(r.key + "=" + r.value);
  return pairs;
}

}  // namespace flow::test
