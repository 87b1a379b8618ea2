// KafkaMicroBatchStream: offsets are per-partition positions; an epoch reads exactly its range.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include "flow/connectors/kafka.hpp"
#include "kafka_arrival.hpp"
#include "kafka_support.hpp"

namespace flow::connectors {

namespace {

using namespace kafka;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view source_name = "kafka source";
constexpr std::size_t max_rows_per_batch = 4096;
constexpr std::size_t default_unit_bytes = std::size_t{1} << 20;
constexpr std::int64_t earliest_marker = -2;
constexpr std::int64_t latest_marker = -1;
// An idle query plans again this often even without records arriving: partitions and topics that appear
// later are found so.
constexpr std::chrono::seconds partition_recheck{1};

struct source_settings {
  std::vector<std::string> subscribe;
  std::vector<topic_partition> assign;  // used when subscribe is empty
  std::string starting = "latest";      // earliest, latest or json
  partition_offsets starting_json;
  std::optional<std::int64_t> max_offsets_per_trigger;
  bool fail_on_data_loss = true;
  std::chrono::milliseconds timeout{10000};
  std::string servers;
};

source_settings parse_settings(const options& opts) {
  source_settings s;
  s.servers = bootstrap_servers(opts, source_name);
  s.timeout = timeout(opts, source_name);
  if (opts.has("subscribePattern"))
    throw error("kafka source: option subscribePattern is not supported; list the topics with subscribe or use assign");
  bool has_subscribe = opts.has("subscribe");
  bool has_assign = opts.has("assign");
  if (has_subscribe == has_assign)
    throw error(has_subscribe ? "kafka source: only one of the options subscribe and assign can be specified"
                              : "kafka source: one of the options subscribe (\"topic1,topic2\") or assign "
                                "({\"topic1\":[0,1]}) must be specified");
  if (has_subscribe) {
    s.subscribe = split_list(opts.get("subscribe"));
    if (s.subscribe.empty()) throw error("kafka source: option subscribe names no topic; give \"topic1,topic2\"");
  } else {
    s.assign = parse_partitions(opts.get("assign"), "kafka source option assign");
    if (s.assign.empty()) throw error("kafka source: option assign names no partition; give {\"topic1\":[0,1]}");
    std::sort(s.assign.begin(), s.assign.end());
    s.assign.erase(std::unique(s.assign.begin(), s.assign.end()), s.assign.end());
  }
  if (opts.has("startingOffsets")) {
    std::string starting = opts.get("startingOffsets");
    std::string lowered = starting;
    std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lowered == "earliest" || lowered == "latest") {
      s.starting = lowered;
    } else {
      s.starting = "json";
      s.starting_json = parse_partition_offsets(starting, "kafka source option startingOffsets");
      for (const auto& [tp, offset] : s.starting_json)
        if (offset < earliest_marker)
          throw error("kafka source: startingOffsets gives " + std::to_string(offset) + " for " + to_string(tp) +
                      "; use an offset >= 0, -2 for earliest or -1 for latest");
    }
  }
  if (opts.has("endingOffsets"))
    throw error("kafka source: option endingOffsets is for batch queries only; a stream reads until it is stopped");
  if (opts.has("maxOffsetsPerTrigger")) {
    std::int64_t limit = opts.get_int("maxOffsetsPerTrigger", 0);
    if (limit <= 0) throw error("kafka source: option maxOffsetsPerTrigger must be positive, got " + opts.get("maxOffsetsPerTrigger"));
    s.max_offsets_per_trigger = limit;
  }
  s.fail_on_data_loss = opts.get_bool("failOnDataLoss", true);
  for (std::string_view managed : {"kafka.auto.offset.reset", "kafka.enable.auto.commit"}) {
    if (opts.has(managed))
      throw error("kafka source: option " + std::string(managed) +
                  " is not supported: the query tracks offsets itself; use startingOffsets to choose where to begin");
  }
  return s;
}

std::string random_suffix() {
  auto ticks = clock_type::now().time_since_epoch().count();
  std::ostringstream out;
  out << std::hex << (static_cast<std::uint64_t>(ticks) * 0x9E3779B97F4A7C15ULL);
  return out.str();
}

std::string err_text(rd_kafka_resp_err_t err) { return rd_kafka_err2str(err); }

// Spark's KafkaMicroBatchStream.rateLimit: the limit split across partitions in proportion to their
// backlog, every partition with a backlog getting at least one offset.
partition_offsets rate_limit(std::int64_t limit, const partition_offsets& from, const partition_offsets& until) {
  std::map<topic_partition, std::int64_t> sizes;
  double total = 0;
  for (const auto& [tp, end] : until) {
    auto begin = from.find(tp);
    if (begin == from.end() || end - begin->second <= 0) continue;
    sizes[tp] = end - begin->second;
    total += static_cast<double>(end - begin->second);
  }
  if (total < 1) return until;
  partition_offsets limited = until;
  for (const auto& [tp, size] : sizes) {
    std::int64_t begin = from.at(tp);
    double prorate = static_cast<double>(limit) * (static_cast<double>(size) / total);
    auto prorate_long = static_cast<std::int64_t>(prorate < 1 ? std::ceil(prorate) : std::floor(prorate));
    std::int64_t off = prorate_long > std::numeric_limits<std::int64_t>::max() - begin
                           ? std::numeric_limits<std::int64_t>::max()
                           : begin + prorate_long;
    limited[tp] = std::min(until.at(tp), off);
  }
  return limited;
}

struct message_deleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using message_ptr = std::unique_ptr<rd_kafka_message_t, message_deleter>;

struct partition_range {
  topic_partition tp;
  std::int64_t next = 0;   // the next offset to emit
  std::int64_t until = 0;  // exclusive
  bool done() const { return next >= until; }
};

class kafka_stream_source final : public source_reader {
 public:
  explicit kafka_stream_source(const options& opts) : settings_(parse_settings(opts)), options_(opts) {
    std::vector<std::pair<std::string, std::string>> defaults = {
        {"group.id", "flow-kafka-source-" + random_suffix()},
        {"client.id", "flow-kafka-source"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        // Partitions are read one at a time up to a known offset: a long fetch wait at the end of one
        // would delay the next.
        {"fetch.wait.max.ms", "10"},
        {"auto.offset.reset", "error"}};
    auto conf = make_conf(opts, source_name, defaults);
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_error_cb(conf.get(), [](rd_kafka_t*, int, const char* reason, void* opaque) {
      static_cast<kafka_stream_source*>(opaque)->last_error_ = reason;
    });
    consumer_ = make_handle(RD_KAFKA_CONSUMER, std::move(conf), source_name);
    queue_ = rd_kafka_queue_get_consumer(consumer_.get());
    if (!queue_) throw error("kafka source: librdkafka gave no consumer queue (is kafka.group.id empty?)");
  }

  ~kafka_stream_source() override {
    rd_kafka_queue_destroy(queue_);
    rd_kafka_assign(consumer_.get(), nullptr);
    rd_kafka_consumer_close(consumer_.get());
  }

  std::string description() const override {
    std::string out = "KafkaV2[";
    if (!settings_.subscribe.empty()) {
      out += "Subscribe[";
      for (std::size_t i = 0; i < settings_.subscribe.size(); ++i) out += (i ? ", " : "") + settings_.subscribe[i];
    } else {
      out += "Assign[";
      for (std::size_t i = 0; i < settings_.assign.size(); ++i)
        out += (i ? ", " : "") + settings_.assign[i].topic + "-" + std::to_string(settings_.assign[i].partition);
    }
    return out + "]]";
  }

  schema_ptr output_schema() const override { return kafka_source_schema(); }

  std::string initial_offset() override {
    if (initial_) return *initial_;
    auto deadline = clock_type::now() + settings_.timeout;
    auto partitions = current_partitions(deadline);
    if (settings_.starting == "json") check_starting_partitions(partitions);
    partition_offsets start;
    for (const auto& tp : partitions) {
      std::int64_t wanted = latest_marker;
      if (settings_.starting == "earliest") wanted = earliest_marker;
      if (settings_.starting == "json") wanted = settings_.starting_json.at(tp);
      if (wanted >= 0) {
        start[tp] = wanted;
        continue;
      }
      auto [low, high] = watermarks(tp, deadline);
      start[tp] = wanted == earliest_marker ? low : high;
    }
    initial_ = format_partition_offsets(start);
    return *initial_;
  }

  // A consumer of its own hears of records arriving after a plan that found none (kafka_arrival.hpp).
  bool notify_when_data(std::function<void()> arrived) override {
    arrival_ = std::make_unique<arrival_consumer>(options_, std::move(arrived));
    return true;
  }

  std::optional<std::string> latest_offset(const std::string& start) override {
    auto deadline = clock_type::now() + settings_.timeout;
    partition_offsets from = parse_partition_offsets(start, "kafka source offset");
    partition_offsets begin;
    partition_offsets high;
    for (const auto& tp : current_partitions(deadline)) {
      auto [low, latest] = watermarks(tp, deadline);
      high[tp] = latest;
      auto known = from.find(tp);
      begin[tp] = known != from.end() ? known->second : low;  // a new partition is read from its start
    }
    for (const auto& [tp, offset] : from) {
      if (!high.contains(tp))
        report_data_loss(to_string(tp) + " is gone (at offset " + std::to_string(offset) +
                         "); was the topic deleted or its partitions reassigned?");
    }
    for (const auto& [tp, latest] : high) {
      if (latest < begin[tp])
        report_data_loss(to_string(tp) + " went back from offset " + std::to_string(begin[tp]) + " to " +
                         std::to_string(latest) + "; was the topic deleted and recreated?");
    }
    partition_offsets end = high;
    if (rate_limits_enabled_ && settings_.max_offsets_per_trigger)
      end = rate_limit(*settings_.max_offsets_per_trigger, begin, high);
    const bool found = end != from;
    if (arrival_) {
      if (found) arrival_->disarm();
      else arrival_->arm(high, clock_type::now() + partition_recheck);
    }
    latest_high_ = std::move(high);
    if (!found) return std::nullopt;
    return format_partition_offsets(end);
  }

  void begin_read(const std::string& start, const std::string& end) override {
    ranges_ = partition_ranges(start, end);
    current_ = 0;
    assigned_ = false;
    unassign();
  }

  // Kafka's partitions are read apart: each partition's range of the epoch goes to one instance, which
  // reads it with a consumer of its own (on the worker it runs on).
  bool instances_can_read_ranges() const override { return true; }

  range_read_plan plan_range_reads(const std::string& start, const std::string& end) override {
    range_read_plan plan;
    plan.max_unit_bytes = unit_bytes_;
    for (const auto& range : partition_ranges(start, end))
      plan.ranges.emplace_back(format_partition_offsets({{range.tp, range.next}}),
                               format_partition_offsets({{range.tp, range.until}}));
    return plan;
  }

  // Partitions are read one after the other, in (topic, partition) order, so a replayed range yields
  // the same batches; only the partition being read is assigned.
  std::optional<source_unit> next() override {
    column_builder keys(type_id::string), values(type_id::string), topics(type_id::string);
    column_builder partitions(type_id::int64), offsets(type_id::int64), timestamps(type_id::timestamp);
    std::size_t rows = 0;
    std::size_t bytes = 0;
    auto last_progress = clock_type::now();
    while (current_ < ranges_.size() && rows < max_rows_per_batch && bytes < unit_bytes_) {
      partition_range& range = ranges_[current_];
      if (!assigned_) {
        assign(range);
        last_progress = clock_type::now();
      }
      rd_kafka_message_t* messages[256];
      // No more than the range holds: librdkafka waits the whole timeout for a batch it cannot fill.
      std::size_t wanted = std::min<std::size_t>({std::size(messages), max_rows_per_batch - rows,
                                                  static_cast<std::size_t>(range.until - range.next)});
      ssize_t got = rd_kafka_consume_batch_queue(queue_, 100, messages, wanted);
      if (got < 0) throw error("kafka source: consuming failed: " + err_text(rd_kafka_last_error()));
      std::vector<message_ptr> polled(messages, messages + got);
      bool progressed = false;
      for (const auto& owned : polled) {
        const rd_kafka_message_t* m = owned.get();
        bool ours = m->rkt && m->partition == range.tp.partition && range.tp.topic == rd_kafka_topic_name(m->rkt);
        std::int64_t before = range.next;
        if (m->err) {
          if (ours) on_partition_event(range, *m);
          else if (!m->rkt) last_error_ = rd_kafka_message_errstr(m);
        } else if (ours && !range.done() && m->offset >= range.next) {  // older offsets: a previous assignment
          if (m->offset < range.until) {
            append_row(*m, keys, values, topics, partitions, offsets, timestamps);
            ++rows;
            bytes += m->len + m->key_len;
          }
          range.next = std::min(m->offset + 1, range.until);
        }
        progressed = progressed || range.next != before;
      }
      if (range.done()) {
        unassign();
        ++current_;
      } else if (progressed) {
        last_progress = clock_type::now();
      } else if (clock_type::now() - last_progress > settings_.timeout) {
        rd_kafka_poll(consumer_.get(), 0);  // serves the error callback
        throw error("kafka source: no records from " + to_string(range.tp) + " for " +
                    std::to_string(settings_.timeout.count()) + " ms (kafka.timeoutMs) while reading offsets [" +
                    std::to_string(range.next) + ", " + std::to_string(range.until) + ") from brokers '" +
                    settings_.servers + "'" + (last_error_.empty() ? "" : "; last error: " + last_error_));
      }
    }
    records_read_ += static_cast<std::int64_t>(rows);
    bytes_read_ += static_cast<std::int64_t>(bytes);
    if (rows == 0) return std::nullopt;
    return source_unit{batch(kafka_source_schema(), {keys.finish(), values.finish(), topics.finish(), partitions.finish(),
                                                     offsets.finish(), timestamps.finish()})};
  }

  void set_rate_limits_enabled(bool enabled) override { rate_limits_enabled_ = enabled; }
  void set_max_unit_bytes(std::size_t bytes) override { unit_bytes_ = std::max<std::size_t>(bytes, 1); }

  connector_metrics metrics() const override {
    connector_metrics out = {{"numRecordsRead", records_read_}, {"numBytesRead", bytes_read_},
                             {"numRecordsLost", records_lost_}};
    std::vector<std::int64_t> behind;
    for (const auto& [tp, high] : latest_high_) {
      auto end = last_end_.find(tp);
      if (end != last_end_.end()) behind.push_back(std::max<std::int64_t>(0, high - end->second));
    }
    if (!behind.empty()) {
      std::int64_t total = 0;
      for (auto b : behind) total += b;
      out.emplace_back("offsetsBehindLatest", total);
      out.emplace_back("maxOffsetsBehindLatest", *std::max_element(behind.begin(), behind.end()));
      out.emplace_back("minOffsetsBehindLatest", *std::min_element(behind.begin(), behind.end()));
      out.emplace_back("avgOffsetsBehindLatest", total / static_cast<std::int64_t>(behind.size()));
    }
    return out;
  }

  void stop() override {
    unassign();
    if (arrival_) arrival_->disarm();
  }

 private:
  // The partitions' ranges of (start, end] that hold records, in (topic, partition) order; a partition
  // new since start is read from its first offset.
  std::vector<partition_range> partition_ranges(const std::string& start, const std::string& end) {
    partition_offsets from = parse_partition_offsets(start, "kafka source offset");
    partition_offsets to = parse_partition_offsets(end, "kafka source offset");
    auto deadline = clock_type::now() + settings_.timeout;
    std::vector<partition_range> ranges;
    for (const auto& [tp, until] : to) {
      auto known = from.find(tp);
      std::int64_t begin = known != from.end() ? known->second : watermarks(tp, deadline).first;
      if (begin < until) ranges.push_back({tp, begin, until});
    }
    last_end_ = std::move(to);
    return ranges;
  }

  static std::int64_t remaining_ms(clock_type::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
    return std::max<std::int64_t>(left, 1);
  }

  error unreachable(const std::string& what, rd_kafka_resp_err_t err) {
    rd_kafka_poll(consumer_.get(), 0);  // serves the error callback
    return error("kafka source: cannot " + what + " from brokers '" + settings_.servers + "' within " +
                 std::to_string(settings_.timeout.count()) + " ms (kafka.timeoutMs): " + err_text(err) +
                 (last_error_.empty() ? "" : "; last error: " + last_error_));
  }

  // The partitions to read: the assigned ones, or every partition of the subscribed topics.
  std::vector<topic_partition> current_partitions(clock_type::time_point deadline) {
    if (settings_.subscribe.empty()) return settings_.assign;
    std::vector<topic_partition> partitions;
    for (const auto& topic : settings_.subscribe) {
      rd_kafka_topic_t* handle = rd_kafka_topic_new(consumer_.get(), topic.c_str(), nullptr);
      const rd_kafka_metadata_t* metadata = nullptr;
      auto err = rd_kafka_metadata(consumer_.get(), 0, handle, &metadata, static_cast<int>(remaining_ms(deadline)));
      rd_kafka_topic_destroy(handle);
      if (err) throw unreachable("get the partitions of topic '" + topic + "'", err);
      for (int t = 0; t < metadata->topic_cnt; ++t) {
        const auto& found = metadata->topics[t];
        if (found.err || topic != found.topic) continue;  // a topic not created yet has no partitions
        for (int p = 0; p < found.partition_cnt; ++p) partitions.push_back({topic, found.partitions[p].id});
      }
      rd_kafka_metadata_destroy(metadata);
    }
    std::sort(partitions.begin(), partitions.end());
    return partitions;
  }

  std::pair<std::int64_t, std::int64_t> watermarks(const topic_partition& tp, clock_type::time_point deadline) {
    std::int64_t low = 0, high = 0;
    auto err = rd_kafka_query_watermark_offsets(consumer_.get(), tp.topic.c_str(), tp.partition, &low, &high,
                                                static_cast<int>(remaining_ms(deadline)));
    if (err) throw unreachable("get the offsets of " + to_string(tp), err);
    return {low, high};
  }

  void check_starting_partitions(const std::vector<topic_partition>& partitions) const {
    std::vector<topic_partition> specified;
    for (const auto& [tp, offset] : settings_.starting_json) specified.push_back(tp);
    if (specified == partitions) return;
    auto list = [](const std::vector<topic_partition>& tps) {
      std::string out;
      for (const auto& tp : tps) out += (out.empty() ? "" : ", ") + tp.topic + "-" + std::to_string(tp.partition);
      return "[" + out + "]";
    };
    throw error("kafka source: startingOffsets must give an offset for every partition read (use -2 for earliest, "
                "-1 for latest); specified: " + list(specified) + ", partitions: " + list(partitions));
  }

  void report_data_loss(const std::string& what) {
    if (settings_.fail_on_data_loss)
      throw error("kafka source: " + what + " Some data may have been lost. If you want the query to go on "
                  "regardless, set the source option failOnDataLoss to false.");
  }

  void on_partition_event(partition_range& range, const rd_kafka_message_t& m) {
    if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // The partition ends at m.offset: what lies below until and was not seen are gaps (compaction,
      // transaction markers).
      if (m.offset >= range.until) range.next = range.until;
      return;
    }
    if (m.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || m.err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
      report_data_loss("offset " + std::to_string(range.next) + " of " + to_string(range.tp) +
                       " is out of range (deleted by retention, or the topic was recreated).");
      auto [low, high] = watermarks(range.tp, clock_type::now() + settings_.timeout);
      std::int64_t resume = low > range.next && low < range.until ? low : range.until;
      records_lost_ += resume - range.next;
      range.next = resume;
      assigned_ = false;
      return;
    }
    last_error_ = rd_kafka_message_errstr(&m);
  }

  void assign(const partition_range& range) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, range.tp.topic.c_str(), range.tp.partition)->offset = range.next;
    auto err = rd_kafka_assign(consumer_.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) throw error("kafka source: cannot assign " + to_string(range.tp) + ": " + err_text(err));
    assigned_ = true;
  }

  void unassign() {
    rd_kafka_assign(consumer_.get(), nullptr);
    assigned_ = false;
  }

  static void append_row(const rd_kafka_message_t& m, column_builder& keys, column_builder& values,
                         column_builder& topics, column_builder& partitions, column_builder& offsets,
                         column_builder& timestamps) {
    if (m.key) keys.append_string({static_cast<const char*>(m.key), m.key_len});
    else keys.append_null();
    if (m.payload) values.append_string({static_cast<const char*>(m.payload), m.len});
    else values.append_null();
    topics.append_string(rd_kafka_topic_name(m.rkt));
    partitions.append_int(m.partition);
    offsets.append_int(m.offset);
    rd_kafka_timestamp_type_t type;
    std::int64_t ms = rd_kafka_message_timestamp(&m, &type);
    if (ms < 0) timestamps.append_null();
    else timestamps.append_timestamp({ms * 1000});
  }

  source_settings settings_;
  options options_;  // for the arrival consumer
  handle_ptr consumer_;
  rd_kafka_queue_t* queue_ = nullptr;
  std::string last_error_;
  std::optional<std::string> initial_;
  bool rate_limits_enabled_ = true;
  std::size_t unit_bytes_ = default_unit_bytes;

  std::vector<partition_range> ranges_;
  std::size_t current_ = 0;
  bool assigned_ = false;

  partition_offsets latest_high_;
  partition_offsets last_end_;
  std::int64_t records_read_ = 0;
  std::int64_t bytes_read_ = 0;
  std::int64_t records_lost_ = 0;
  std::unique_ptr<arrival_consumer> arrival_;  // set by notify_when_data
};

}  // namespace

schema_ptr kafka_source_schema() {
  static const schema_ptr schema = make_schema({{"key", type_id::string, true},
                                                {"value", type_id::string, true},
                                                {"topic", type_id::string, false},
                                                {"partition", type_id::int64, false},
                                                {"offset", type_id::int64, false},
                                                {"timestamp", type_id::timestamp, true}});
  return schema;
}

void validate_kafka_source_options(const options& opts) {
  parse_settings(opts);
  make_conf(opts, source_name, {});
}

std::unique_ptr<source_reader> make_kafka_source(const options& opts) {
  return std::make_unique<kafka_stream_source>(opts);
}

}  // namespace flow::connectors
