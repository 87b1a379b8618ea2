// KafkaSink: rows produced as records. At least once: an epoch commits once every record is acknowledged.
// Exactly once: one Kafka transaction per epoch, which also writes the epoch's marker record.
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <thread>

#include "flow/connectors/durable_file.hpp"
#include "flow/connectors/kafka.hpp"
#include "flow/connectors/test_hooks.hpp"
#include "kafka_support.hpp"

namespace flow::connectors {

namespace {

using namespace kafka;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view sink_name = "kafka sink";
constexpr std::string_view default_marker_topic = "libflow-sink-epochs";

// FLOW_KAFKA_SINK_KILL_AFTER_COMMIT=<epoch>: the process kills itself (SIGKILL) once that epoch's transaction
// is committed in Kafka, before the sink returns (so before the checkpoint's commit): the crash window, for tests.
constexpr const char* kill_after_commit_variable = "FLOW_KAFKA_SINK_KILL_AFTER_COMMIT";

std::string error_text(rd_kafka_error_t* e) {
  std::string text = rd_kafka_error_string(e);
  rd_kafka_error_destroy(e);
  return text;
}

// The transactional.id of this sink on this checkpoint: made once at random and kept in the sink's directory
// of the checkpoint, so a restarted query gets it back (and fences its previous incarnation) while a new
// checkpoint, or another sink of the query, gets a new one.
std::string checkpoint_transactional_id(const std::string& directory) {
  const std::string path = directory + "/transactional-id";
  std::error_code unreadable;
  if (std::filesystem::exists(path, unreadable) || unreadable) {  // an unreadable directory: read_file says why
    std::string why;
    if (auto id = unseal(read_file(sink_name, path), why)) return *id;
    throw error("kafka sink: the transactional id kept in '" + path + "' is damaged (" + why +
                "); without it the epochs already in Kafka cannot be found. Set the option kafka.transactional.id "
                "to the id of the earlier run, or delete the file (epochs re-run after the restart may then be "
                "written twice)");
  }
  std::random_device random;
  char id[32];
  std::snprintf(id, sizeof id, "libflow-%08x%08x", random(), random());
  write_file_atomically(sink_name, directory, "transactional-id", seal(id));
  return id;
}

enum class delivery_guarantee { at_least_once, exactly_once };

delivery_guarantee parse_guarantee(const options& opts) {
  const std::string value = opts.get("deliveryGuarantee", "at-least-once");
  if (value == "at-least-once") {
    if (opts.has("kafka.transactional.id"))
      throw error("kafka sink: option kafka.transactional.id is set but deliveryGuarantee is at-least-once; set "
                  "deliveryGuarantee to exactly-once for transactions, or remove kafka.transactional.id");
    return delivery_guarantee::at_least_once;
  }
  if (value != "exactly-once")
    throw error("kafka sink: option deliveryGuarantee must be at-least-once (default) or exactly-once, got '" +
                value + "'");
  return delivery_guarantee::exactly_once;
}

class kafka_sink_writer final : public sink_writer {
 public:
  explicit kafka_sink_writer(const options& opts)
      : opts_(opts),
        guarantee_(parse_guarantee(opts)),
        servers_(bootstrap_servers(opts, sink_name)),
        timeout_(timeout(opts, sink_name)),
        topic_(opts.get("topic")),
        marker_topic_(opts.get("epochMarkerTopic", default_marker_topic)),
        kill_after_commit_(epoch_from_environment(kill_after_commit_variable, sink_name)) {
    // The transactional producer needs the checkpoint's id, known at open: until then only the options are checked.
    if (guarantee_ == delivery_guarantee::at_least_once) producer_ = make_producer({});
    else make_conf(opts, sink_name, {});
  }

  ~kafka_sink_writer() override {
    if (!producer_) return;
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_.get(), 0);
  }

  std::string description() const override {
    return topic_.empty() ? "KafkaSink[topic column]" : "KafkaSink[" + topic_ + "]";
  }

  void use_checkpoint(const std::string& directory) override { checkpoint_directory_ = directory; }

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
    if (guarantee_ == delivery_guarantee::exactly_once) {
      if (checkpoint_directory_.empty())
        throw error("kafka sink: deliveryGuarantee=exactly-once needs a checkpoint: without one a query numbers its "
                    "epochs from 0 again, so the epochs already in Kafka could not be told from new ones; set the "
                    "query option checkpointLocation (or the session's --flow.checkpoint-location), or use "
                    "deliveryGuarantee=at-least-once");
      transactional_id_ = opts_.get("kafka.transactional.id");
      if (transactional_id_.empty()) transactional_id_ = checkpoint_transactional_id(checkpoint_directory_);
      start_transactional_producer();
    }
  }

  void write(std::int64_t epoch, const batch& rows) override {
    if (committed_ && epoch <= *committed_) return;  // a replayed epoch whose records are in Kafka already
    if (guarantee_ == delivery_guarantee::exactly_once) {
      begin_transaction(epoch);
      if (committed_ && epoch <= *committed_) return;  // the restarted producer found it committed
    }
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
    if (guarantee_ == delivery_guarantee::exactly_once) return commit_transaction(epoch);
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

  // At least once: drops records still queued; records already sent may still arrive. Exactly once: aborts
  // the epoch's transaction (read_committed consumers never see its records).
  void abort(std::int64_t) override {
    if (guarantee_ == delivery_guarantee::exactly_once) {
      if (in_transaction_) {
        in_transaction_ = false;
        if (auto e = rd_kafka_abort_transaction(producer_.get(), static_cast<int>(timeout_.count()))) {
          last_error_ = error_text(e);
          producer_.reset();  // the next epoch starts a new producer, which fences this one and aborts its transaction
        }
      }
      return;
    }
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE);
    rd_kafka_poll(producer_.get(), 0);
    epoch_failures_ = 0;
    first_failure_.clear();
  }

  connector_metrics metrics() const override {
    return {{"numRecordsWritten", records_written_}, {"numBytesWritten", bytes_written_}, {"numErrors", errors_}};
  }

  void close() override {
    if (!producer_) return;
    if (in_transaction_) abort(-1);  // an epoch written but never committed: not to be seen
    else rd_kafka_flush(producer_.get(), static_cast<int>(timeout_.count()));
  }

 private:
  handle_ptr make_producer(std::vector<std::pair<std::string, std::string>> defaults) {
    defaults.emplace_back("client.id", "flow-kafka-sink");
    auto conf = make_conf(opts_, sink_name, defaults);
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
      static_cast<kafka_sink_writer*>(opaque)->on_delivery(*m);
    });
    rd_kafka_conf_set_error_cb(conf.get(), [](rd_kafka_t*, int, const char* reason, void* opaque) {
      static_cast<kafka_sink_writer*>(opaque)->last_error_ = reason;
    });
    return make_handle(RD_KAFKA_PRODUCER, std::move(conf), sink_name);
  }

  std::string transaction_failure(std::string_view what, const std::string& reason) const {
    return "kafka sink: cannot " + std::string(what) + " (transactional.id '" + transactional_id_ + "', brokers '" +
           servers_ + "'): " + reason;
  }

  // A new transactional producer: init_transactions fences every earlier producer with this id (a killed
  // run's) and aborts its unfinished transaction; then the last committed epoch is read back.
  void start_transactional_producer() {
    producer_ = make_producer({{"transactional.id", transactional_id_}});
    if (auto e = rd_kafka_init_transactions(producer_.get(), static_cast<int>(timeout_.count()))) {
      producer_.reset();
      throw error(transaction_failure("initialise transactions", error_text(e)) +
                  " (the brokers must support transactions, Kafka 0.11 or later, with a transaction coordinator)");
    }
    if (auto epoch = last_committed_epoch()) committed_ = epoch;
  }

  void begin_transaction(std::int64_t epoch) {
    if (in_transaction_) return;
    if (!producer_) {
      start_transactional_producer();
      if (committed_ && epoch <= *committed_) return;
    }
    if (auto e = rd_kafka_begin_transaction(producer_.get())) {
      producer_.reset();
      throw error(transaction_failure("begin the transaction of epoch " + std::to_string(epoch), error_text(e)));
    }
    in_transaction_ = true;
  }

  // The epoch's marker joins its transaction, so Kafka holds the epoch's records exactly when it holds the marker.
  void commit_transaction(std::int64_t epoch) {
    begin_transaction(epoch);
    if (committed_ && epoch <= *committed_) return;
    const std::string epoch_text = std::to_string(epoch);
    produce(marker_topic_, transactional_id_, epoch_text, 0, &marker_tag_);
    const auto deadline = clock_type::now() + timeout_;
    for (;;) {
      rd_kafka_error_t* e = rd_kafka_commit_transaction(producer_.get(), static_cast<int>(timeout_.count()));
      if (!e) break;
      const bool retriable = rd_kafka_error_is_retriable(e);
      const bool requires_abort = rd_kafka_error_txn_requires_abort(e);
      const std::string reason = error_text(e);
      if (retriable && clock_type::now() < deadline) continue;
      in_transaction_ = false;
      rd_kafka_error_t* abort_failed =
          requires_abort ? rd_kafka_abort_transaction(producer_.get(), static_cast<int>(timeout_.count())) : nullptr;
      // Not aborted here, the transaction may have committed: a new producer reads the marker back at the replay.
      if (!requires_abort || abort_failed) producer_.reset();
      if (abort_failed) rd_kafka_error_destroy(abort_failed);
      epoch_failures_ = 0;
      first_failure_.clear();
      throw error(transaction_failure("commit the transaction of epoch " + epoch_text, reason) +
                  " (the epoch is retried; a transaction that did commit is not written again)");
    }
    in_transaction_ = false;
    if (kill_after_commit_ == epoch) ::kill(::getpid(), SIGKILL);
    epoch_failures_ = 0;
    first_failure_.clear();
    committed_ = epoch;
  }

  // The epoch of this transactional id's last committed marker, read with isolation.level=read_committed up
  // to the partition's end as of now; nullopt when there is none.
  std::optional<std::int64_t> last_committed_epoch() {
    options reader_opts;  // the producer's options, less the one that only a producer may have
    for (const auto& [key, value] : opts_.all())
      if (key != "kafka.transactional.id") reader_opts.set(key, value);
    auto conf = make_conf(reader_opts, sink_name,
                          {{"group.id", transactional_id_ + "-marker-reader"},
                           {"client.id", "flow-kafka-sink"},
                           {"enable.auto.commit", "false"},
                           {"enable.partition.eof", "true"}});
    char reason[512];
    if (rd_kafka_conf_set(conf.get(), "isolation.level", "read_committed", reason, sizeof reason) != RD_KAFKA_CONF_OK)
      throw error(std::string("kafka sink: ") + reason);
    handle_ptr consumer = make_handle(RD_KAFKA_CONSUMER, std::move(conf), sink_name);
    rd_kafka_poll_set_consumer(consumer.get());
    std::int64_t low = 0;
    std::int64_t high = 0;
    auto err = rd_kafka_query_watermark_offsets(consumer.get(), marker_topic_.c_str(), 0, &low, &high,
                                                static_cast<int>(timeout_.count()));
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return std::nullopt;  // the first marker will create it
    if (err)
      throw error("kafka sink: cannot read the epoch markers in topic '" + marker_topic_ +
                  "' partition 0 from brokers '" + servers_ + "': " + rd_kafka_err2str(err) +
                  ". Create the topic (one partition, cleanup.policy=compact) or name another with the option "
                  "epochMarkerTopic");
    std::optional<std::int64_t> found;
    // This id's last marker is near the end unless other sinks share the topic: the tail first, then further back.
    for (std::int64_t window = 256, until = high; !found && until > low;
         until = std::max(low, until - window), window *= 4)
      found = last_marker_in(consumer.get(), std::max(low, until - window), until);
    rd_kafka_consumer_close(consumer.get());
    return found;
  }

  // The last committed marker of this id in [from, until) of the marker partition.
  std::optional<std::int64_t> last_marker_in(rd_kafka_t* consumer, std::int64_t from, std::int64_t until) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, marker_topic_.c_str(), 0)->offset = from;
    rd_kafka_assign(consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    std::optional<std::int64_t> found;
    const auto deadline = clock_type::now() + timeout_;
    for (bool done = false; !done;) {
      if (clock_type::now() > deadline)
        throw error("kafka sink: reading the epoch markers of topic '" + marker_topic_ + "' up to offset " +
                    std::to_string(until) + " took longer than " + std::to_string(timeout_.count()) +
                    " ms (kafka.timeoutMs); an open transaction of another producer may hold them back" +
                    (last_error_.empty() ? "" : "; last error: " + last_error_));
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        done = m->offset >= until;
      } else if (m->err) {
        last_error_ = rd_kafka_message_errstr(m);
      } else if (m->offset >= until) {
        done = true;
      } else if (m->key && std::string_view(static_cast<const char*>(m->key), m->key_len) == transactional_id_) {
        std::string_view text(static_cast<const char*>(m->payload), m->len);
        std::int64_t epoch = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), epoch);
        if (ec != std::errc{} || end != text.data() + text.size())
          throw error("kafka sink: the epoch marker at offset " + std::to_string(m->offset) + " of topic '" +
                      marker_topic_ + "' is not an epoch number: '" + std::string(text) +
                      "'; only libflow's Kafka sinks may write to the marker topic");
        found = epoch;
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(consumer, nullptr);
    return found;
  }

  static void require_string(const schema& input, std::size_t index) {
    const field& f = input[index];
    if (f.type != type_id::string)
      throw error("kafka sink: column '" + f.name + "' must be a string, found " + std::string(type_name(f.type)) +
                  "; cast it, e.g. col(\"" + f.name + "\").cast(\"string\")");
  }

  void produce(std::string_view topic, std::optional<std::string_view> key, std::optional<std::string_view> value,
               std::int32_t partition = RD_KAFKA_PARTITION_UA, void* tag = nullptr) {
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
          RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key_data, key_size),
          RD_KAFKA_V_VALUE(value_data, value_size), RD_KAFKA_V_OPAQUE(tag), RD_KAFKA_V_END);
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
    if (m._private == &marker_tag_ && !m.err) return;  // not one of the query's records
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

  options opts_;
  delivery_guarantee guarantee_;
  std::string servers_;
  std::chrono::milliseconds timeout_;
  std::string topic_;
  std::string marker_topic_;
  std::optional<std::int64_t> kill_after_commit_;
  handle_ptr producer_;
  std::string last_error_;
  std::string transactional_id_;
  std::string checkpoint_directory_;  // the sink's own in the query's checkpoint (use_checkpoint); empty: none
  bool in_transaction_ = false;
  char marker_tag_ = 0;  // its address tags the marker records' delivery reports

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
