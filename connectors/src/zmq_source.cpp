// The ZeroMQ source: a receiver thread takes messages from a SUB or PULL socket and appends each
// payload as one record to push_source's bounded record log. A full log blocks the receiver, so
// libzmq's receive queue fills up to rcvHwm: PULL then pushes back on its PUSH peers, while a PUB peer
// drops what a full subscriber cannot take (ZeroMQ's PUB/SUB contract).
#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>

#include "flow/connectors/push_source.hpp"
#include "flow/connectors/socket.hpp"
#include "flow/connectors/zeromq.hpp"

namespace flow::connectors {

namespace {

using socket_detail::positive_option;

const std::string source_name = "zmq source";
constexpr std::chrono::milliseconds poll_interval{50};  // how soon the receiver notices stop()
constexpr int burst_messages = 1024;                    // taken without waiting when they are queued
constexpr std::size_t burst_bytes = 256 << 10;          // and appended to the log as one run

std::mutex bound_mutex;
std::vector<std::pair<const void*, std::string>> bound_sources;  // alive binding sources

bool bool_option(const options& opts, const std::string& key, bool fallback) {
  try {
    return opts.get_bool(key, fallback);
  } catch (const error&) {
    throw error(source_name + ": option '" + key + "' must be true or false, got '" + opts.get(key) + "'");
  }
}

bool is_pull(const options& opts) {
  auto type = opts.get("socketType", "SUB");
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::toupper(c); });
  if (type == "SUB") return false;
  if (type == "PULL") return true;
  throw error(source_name + ": option 'socketType' must be SUB or PULL, got '" + opts.get("socketType") + "'");
}

std::string message_format(const options& opts) {
  auto format = opts.get("messageFormat", "text");
  if (format != "text" && format != "csv" && format != "json" && format != "binary")
    throw error(source_name + ": option 'messageFormat' must be text, csv, json or binary, got '" + format + "'");
  return format;
}

void validate_source_options(const options& opts) {
  if (opts.get("endpoint").empty())
    throw error(source_name + ": option 'endpoint' is required, e.g. option(\"endpoint\", \"tcp://127.0.0.1:5555\")");
  bool pull = is_pull(opts);
  bool_option(opts, "bind", false);
  bool_option(opts, "includeTimestamp", false);
  auto format = message_format(opts);
  if (opts.has("includeTimestamp") && format != "text")
    throw error(source_name + ": option 'includeTimestamp' applies to messageFormat text only");
  if (pull && opts.has("subscribe"))
    throw error(source_name + ": option 'subscribe' applies to socketType SUB only (PULL has no topics)");
  for (const char* key : {"rcvHwm", "maxBufferedBytes", "blockBytes"}) positive_option(opts, key, 1, source_name);
}

std::string description_of(const options& opts) {
  validate_source_options(opts);
  std::string out = "ZeroMQSource[endpoint: " + opts.get("endpoint") + ", socketType: " + (is_pull(opts) ? "PULL" : "SUB");
  if (bool_option(opts, "bind", false)) out += ", bind";
  if (opts.has("subscribe")) out += ", subscribe: " + opts.get("subscribe");
  return out + "]";
}

class zmq_source final : public push_source {
 public:
  zmq_source(const options& opts, schema_ptr schema)
      : push_source(push_source_config{description_of(opts), message_format(opts), opts,
                                       message_format(opts) == "text" ? nullptr
                                                                      : resolve_zmq_source_schema(opts, std::move(schema))}),
        endpoint_(opts.get("endpoint")),
        topics_(split_list(opts.get("subscribe"))),
        lines_(message_format(opts) != "binary"),
        json_(message_format(opts) == "json"),
        text_(message_format(opts) == "text"),
        socket_(context_, is_pull(opts) ? zmq::socket_type::pull : zmq::socket_type::sub) {
    try {
      socket_.set(zmq::sockopt::rcvhwm, static_cast<int>(positive_option(opts, "rcvHwm", 1000, source_name)));
      socket_.set(zmq::sockopt::linger, 0);
      if (!is_pull(opts)) {
        if (topics_.empty()) socket_.set(zmq::sockopt::subscribe, "");
        for (const auto& topic : topics_) socket_.set(zmq::sockopt::subscribe, topic);
      }
      if (bool_option(opts, "bind", false)) {
        socket_.bind(endpoint_);
        bound_endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
        std::lock_guard<std::mutex> lock(bound_mutex);
        bound_sources.emplace_back(this, bound_endpoint_);
      } else {
        socket_.connect(endpoint_);
      }
    } catch (const zmq::error_t& e) {
      throw error(source_name + ": cannot " + (bool_option(opts, "bind", false) ? "bind" : "connect") + " to '" +
                  endpoint_ + "': " + e.what());
    }
    // Longest first, so the most specific matching topic is the one stripped from a single frame.
    std::sort(topics_.begin(), topics_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  }

  ~zmq_source() override {
    stop();
    if (!bound_endpoint_.empty()) {
      std::lock_guard<std::mutex> lock(bound_mutex);
      std::erase_if(bound_sources, [this](const auto& entry) { return entry.first == this; });
    }
  }

 std::optional<std::string> latest_offset(const std::string& start) override {
    {
      std::lock_guard<std::mutex> lock(failure_mutex_);
      if (!failure_.empty()) throw error(description() + ": receiving failed: " + failure_);
    }
    return push_source::latest_offset(start);
  }

 protected:
  void start_receiving() override {
    receiver_ = std::thread([this] { receive_loop(); });
  }

  void stop_receiving() override {
    stopping_ = true;
    if (receiver_.joinable()) receiver_.join();
  }

  connector_metrics extra_metrics() const override {
    return {{"numMessagesReceived", messages_.load(std::memory_order_relaxed)},
            {"numReceiverStalls", log().waits()},
            {"receiverStalledMs", log().waited_micros() / 1000}};
  }

 private:
  // Waits for a message (up to poll_interval, to notice stop()), then takes what else is queued without
  // waiting, up to a burst, and appends the burst to the log as one run: one lock, one copy.
  void receive_loop() {
    socket_.set(zmq::sockopt::rcvtimeo, static_cast<int>(poll_interval.count()));
    while (!stopping_) {
      try {
        if (!socket_.recv(frame_, zmq::recv_flags::none)) continue;  // timed out
        stage_message();
        for (int i = 1; i < burst_messages && staged_.size() < burst_bytes && !stopping_; ++i) {
          if (!socket_.recv(frame_, zmq::recv_flags::dontwait)) break;
          stage_message();
        }
        if (!flush()) return;
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        flush();
        std::lock_guard<std::mutex> lock(failure_mutex_);
        failure_ = e.what();
        return;
      }
    }
  }

  // frame_ holds the first frame of a message: frames its payload into staged_.
  void stage_message() {
    ++staged_messages_;
    std::string_view payload(static_cast<const char*>(frame_.data()), frame_.size());
    if (frame_.more()) {
      // [topic, payload]: a multipart message arrives whole, so these receives do not wait.
      [[maybe_unused]] auto got = socket_.recv(second_, zmq::recv_flags::none);
      if (second_.more()) {
        while (second_.more()) [[maybe_unused]] auto rest = socket_.recv(second_, zmq::recv_flags::none);
        count_bad_record();
        return;
      }
      payload = std::string_view(static_cast<const char*>(second_.data()), second_.size());
    } else {
      for (const auto& topic : topics_) {
        if (payload.starts_with(topic)) {
          payload.remove_prefix(topic.size());
          break;
        }
      }
    }
    if (lines_) {
      if (payload.ends_with('\n')) payload.remove_suffix(1);
      if (payload.ends_with('\r')) payload.remove_suffix(1);
      // A JSON document spread over lines is still one record: its line breaks are only whitespace.
      if (json_ && payload.find_first_of("\r\n") != std::string_view::npos) {
        scratch_.assign(payload);
        std::replace_if(scratch_.begin(), scratch_.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
        payload = scratch_;
      }
    }
    if (text_) {
      // Each line of a text message is a record of its own (the log's string column splits the staged
      // lines), so records, rows and arrival times match.
      staged_.append(payload);
      staged_.push_back('\n');
    } else {
      stage(payload);
    }
  }

  void stage(std::string_view record) {
    log().frame(staged_, record);
    ends_.push_back(static_cast<std::uint32_t>(staged_.size()));
    staged_payload_bytes_ += record.size();
  }

  // Appends the staged records; false once the log is closed.
  bool flush() {
    messages_.fetch_add(staged_messages_, std::memory_order_relaxed);
    staged_messages_ = 0;
    bool open = true;
    if (text_) {
      const auto appended = log().append_lines(staged_);  // waits while the log is full: a stall
      counters().received(appended.records, appended.payload_bytes);
      open = appended.open;
    } else if (!ends_.empty()) {
      open = log().append_framed(staged_, ends_);
      if (open) counters().received(ends_.size(), staged_payload_bytes_);
    }
    staged_.clear();
    ends_.clear();
    staged_payload_bytes_ = 0;
    return open;
  }

  const std::string endpoint_;
  std::vector<std::string> topics_;
  const bool lines_;
  const bool json_;
  const bool text_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string bound_endpoint_;
  std::thread receiver_;
  std::atomic<bool> stopping_{false};
  zmq::message_t frame_, second_;  // reused for every message
  std::string scratch_;
  std::string staged_;                // framed records of the current burst
  std::vector<std::uint32_t> ends_;   // where each staged record ends
  std::size_t staged_payload_bytes_ = 0;
  std::int64_t staged_messages_ = 0;
  mutable std::mutex failure_mutex_;
  std::string failure_;  // why the receiver ended on its own
  std::atomic<std::int64_t> messages_{0};
};

}  // namespace

schema_ptr resolve_zmq_source_schema(const options& opts, schema_ptr given) {
  validate_source_options(opts);
  auto format = message_format(opts);
  if (format == "text") {
    if (given)
      throw error(source_name + ": messageFormat text has a fixed schema (value[, timestamp]); drop schema(...) or "
                  "choose messageFormat csv, json or binary");
    return push_source::text_schema(bool_option(opts, "includeTimestamp", false));
  }
  if (!given)
    throw error(source_name + ": messageFormat " + format + " needs a schema: call schema(...) on the reader" +
                (format == "binary" ? " with the schema of the batches the producer sends" : ""));
  return given;
}

std::unique_ptr<source_reader> make_zmq_source(const options& opts, schema_ptr schema) {
  return std::make_unique<zmq_source>(opts, std::move(schema));
}

std::vector<std::string> bound_zmq_source_endpoints() {
  std::lock_guard<std::mutex> lock(bound_mutex);
  std::vector<std::string> endpoints;
  for (const auto& [source, endpoint] : bound_sources) endpoints.push_back(endpoint);
  return endpoints;
}

}  // namespace flow::connectors
