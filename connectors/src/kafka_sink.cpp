// KafkaSink: rows produced as records; an epoch commits once every record is acknowledged.
#include <optional>
#include <thread>

#include "flow/connectors/kafka.hpp"
#include "kafka_support.hpp"

namespace flow::connectors {

namespace {

using namespace kafka;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view sink_name = "kafka sink";

class kafka_sink_writer final : public sink_writer {
 public:
  explicit kafka_sink_writer(const options& opts)
      : servers_(bootstrap_servers(opts, sink_name)), timeout_(timeout(opts, sink_name)), topic_(opts.get("topic")) {
    auto conf = make_conf(opts, sink_name, {{"client.id", "flow-kafka-sink"}});
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      static_cast<kafka_sink_writer*>(opaque)->on_delivery(*m);
    });
    rd_kafka_conf_set_error_cb(conf.get(), [](rd_kafka_t*, int, const char* reason, void* opaque) {
      static_cast<kafka_sink_writer*>(opaque)->last_error_ = reason;
    });
    producer_ = make_handle(RD_KAFKA_PRODUCER, std::move(conf), sink_name);
  }

  ~kafka_sink_writer() override {
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_.get(), 0);
  }

  std::string description() const override {
    return topic_.empty() ? "KafkaSink[topic column]" : "KafkaSink[" + topic_ + "]";
  }

  void open(const schema_ptr& input, output_mode, const std::vector<std::string>&) override {
    auto value = input->find("value");
    if (!value)
      throw error("kafka sink: the rows need a 'value' column (string); found " + input->to_string() +
                  "; select or alias one, e.g. col(\"x\").cast(\"string\").as(\"value\")");
    value_column_ = *value;
    require_string(*input, value_column_);
    if (auto key = input->find("key")) {
      key_column_ = *key;
      require_string(*input, *key);
    }
    if (topic_.empty()) {
      auto topic = input->find("topic");
      if (!topic)
        throw error("kafka sink: no topic: set the option topic or give the rows a 'topic' column (string)");
      topic_column_ = *topic;
      require_string(*input, *topic);
    }
  }

  void write(std::int64_t epoch, const batch& rows) override {
    if (committed_ && epoch <= *committed_) return;  // a replayed epoch whose records are in Kafka already
    const column& values = rows.col(value_column_);
    for (std::size_t r = 0; r < rows.num_rows(); ++r) {
      std::string_view topic = topic_;
      if (topic_column_) {
        const column& topics = rows.col(*topic_column_);
        if (topics.is_null(r)) throw error("kafka sink: row " + std::to_string(r) + " of epoch " + std::to_string(epoch) + " has a null topic");
        topic = topics.str(r);
      }
      std::optional<std::string_view> key;
      if (key_column_ && !rows.col(*key_column_).is_null(r)) key = rows.col(*key_column_).str(r);
      std::optional<std::string_view> value;
      if (!values.is_null(r)) value = values.str(r);
      produce(topic, key, value);
    }
  }

  void commit(std::int64_t epoch) override {
    if (committed_ && epoch <= *committed_) return;
    auto err = rd_kafka_flush(producer_.get(), static_cast<int>(timeout_.count()));
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      throw error("kafka sink: " + std::to_string(rd_kafka_outq_len(producer_.get())) + " records of epoch " +
                  std::to_string(epoch) + " not acknowledged by brokers '" + servers_ + "' within " +
                  std::to_string(timeout_.count()) + " ms (kafka.timeoutMs)" +
                  (last_error_.empty() ? "" : "; last error: " + last_error_));
    }
    if (epoch_failures_ > 0) {
      std::string message = "kafka sink: " + std::to_string(epoch_failures_) + " records of epoch " +
                            std::to_string(epoch) + " were not delivered: " + first_failure_ +
                            " (the epoch is retried; records already delivered are written again)";
      epoch_failures_ = 0;
      first_failure_.clear();
      throw error(message);
    }
    committed_ = epoch;
  }

  // Drops records still queued; records already sent may still arrive (at-least-once).
  void abort(std::int64_t) override {
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE);
    rd_kafka_poll(producer_.get(), 0);
    epoch_failures_ = 0;
    first_failure_.clear();
  }

  connector_metrics metrics() const override {
    return {{"numRecordsWritten", records_written_}, {"numBytesWritten", bytes_written_}, {"numErrors", errors_}};
  }

  void close() override { rd_kafka_flush(producer_.get(), static_cast<int>(timeout_.count())); }

 private:
  static void require_string(const schema& input, std::size_t index) {
    const field& f = input[index];
    if (f.type != type_id::string)
      throw error("kafka sink: column '" + f.name + "' must be a string, found " + std::string(type_name(f.type)) +
                  "; cast it, e.g. col(\"" + f.name + "\").cast(\"string\")");
  }

  void produce(std::string_view topic, std::optional<std::string_view> key, std::optional<std::string_view> value) {
    std::string topic_name(topic);
    // librdkafka's macros cast their arguments without parentheses: plain variables only.
    void* key_data = key ? const_cast<char*>(key->data()) : nullptr;
    std::size_t key_size = key ? key->size() : 0;
    void* value_data = value ? const_cast<char*>(value->data()) : nullptr;
    std::size_t value_size = value ? value->size() : 0;
    auto deadline = clock_type::now() + timeout_;
    for (;;) {
      auto err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_TOPIC(topic_name.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_VALUE(value_data, value_size),
          RD_KAFKA_V_END);
      if (!err) return;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        throw error("kafka sink: cannot produce to topic '" + topic_name + "': " + rd_kafka_err2str(err));
      if (clock_type::now() > deadline)
        throw error("kafka sink: the producer queue stayed full for " + std::to_string(timeout_.count()) +
                    " ms (kafka.timeoutMs): brokers '" + servers_ + "' do not keep up or are unreachable" +
                    (last_error_.empty() ? "" : "; last error: " + last_error_));
      rd_kafka_poll(producer_.get(), 100);  // delivery reports free queue space
    }
  }

  void on_delivery(const rd_kafka_message_t& m) {
    if (!m.err) {
      ++records_written_;
      bytes_written_ += static_cast<std::int64_t>(m.len + m.key_len);
      return;
    }
    if (m.err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m.err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) return;
    ++errors_;
    if (epoch_failures_++ == 0)
      first_failure_ = std::string(rd_kafka_err2str(m.err)) + " (topic '" + rd_kafka_topic_name(m.rkt) + "')";
  }

  std::string servers_;
  std::chrono::milliseconds timeout_;
  std::string topic_;
  handle_ptr producer_;
  std::string last_error_;

  std::size_t value_column_ = 0;
  std::optional<std::size_t> key_column_;
  std::optional<std::size_t> topic_column_;
  std::optional<std::int64_t> committed_;

  std::int64_t epoch_failures_ = 0;
  std::string first_failure_;
  std::int64_t records_written_ = 0;
  std::int64_t bytes_written_ = 0;
  std::int64_t errors_ = 0;
};

}  // namespace

std::unique_ptr<sink_writer> make_kafka_sink(const options& opts) { return std::make_unique<kafka_sink_writer>(opts); }

}  // namespace flow::connectors
