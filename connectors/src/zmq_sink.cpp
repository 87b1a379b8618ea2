// The ZeroMQ sink: each committed epoch's rows as messages on a PUB or PUSH socket, one per row (text,
// csv, json) or one per batch written (binary: flow::encode). Messages are held per epoch and sent at
// commit, since ZeroMQ has no flush to tie them to.
#include <zmq.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "flow/connectors/socket.hpp"
#include "flow/connectors/zeromq.hpp"

namespace flow::connectors {

namespace {

using socket_detail::positive_option;

const std::string sink_name = "zmq sink";

std::mutex bound_mutex;
std::vector<std::pair<const void*, std::string>> bound_sinks;  // alive binding sinks

enum class message_format { text, csv, json, binary };

bool bool_option(const options& opts, const std::string& key, bool fallback) {
  try {
    return opts.get_bool(key, fallback);
  } catch (const error&) {
    throw error(sink_name + ": option '" + key + "' must be true or false, got '" + opts.get(key) + "'");
  }
}

bool is_push(const options& opts) {
  auto type = opts.get("socketType", "PUB");
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::toupper(c); });
  if (type == "PUB") return false;
  if (type == "PUSH") return true;
  throw error(sink_name + ": option 'socketType' must be PUB or PUSH, got '" + opts.get("socketType") + "'");
}

message_format format_of(const options& opts) {
  auto format = opts.get("messageFormat", "text");
  if (format == "text") return message_format::text;
  if (format == "csv") return message_format::csv;
  if (format == "json") return message_format::json;
  if (format == "binary") return message_format::binary;
  throw error(sink_name + ": option 'messageFormat' must be text, csv, json or binary, got '" + format + "'");
}

// An epoch's messages back to back: message i is bytes[ends[i-1], ends[i]).
struct epoch_messages {
  std::string bytes;
  std::vector<std::size_t> ends;
  std::int64_t rows = 0;
};

class zmq_sink final : public sink_writer {
 public:
  explicit zmq_sink(const options& opts)
      : endpoint_((validate_zmq_sink_options(opts), opts.get("endpoint"))),
        push_(is_push(opts)),
        bind_(bool_option(opts, "bind", false)),
        format_(format_of(opts)),
        topic_(opts.get("topic")),
        send_timeout_(positive_option(opts, "sendTimeoutMs", 30000, sink_name)),
        socket_(context_, push_ ? zmq::socket_type::push : zmq::socket_type::pub) {
    try {
      socket_.set(zmq::sockopt::sndhwm, static_cast<int>(positive_option(opts, "sndHwm", 1000, sink_name)));
      socket_.set(zmq::sockopt::linger, static_cast<int>(opts.get_int("lingerMs", 1000)));
      if (push_) {
        socket_.set(zmq::sockopt::sndtimeo, static_cast<int>(send_timeout_.count()));
        // Queue only on connections that are up, so a commit without any consumer fails instead of
        // leaving its messages in a queue that may never be delivered.
        socket_.set(zmq::sockopt::immediate, true);
      }
      if (bind_) {
        socket_.bind(endpoint_);
        bound_endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
        std::lock_guard<std::mutex> lock(bound_mutex);
        bound_sinks.emplace_back(this, bound_endpoint_);
      } else {
        socket_.connect(endpoint_);
      }
    } catch (const zmq::error_t& e) {
      throw error(sink_name + ": cannot " + (bind_ ? "bind" : "connect") + " to '" + endpoint_ + "': " + e.what());
    }
  }

  ~zmq_sink() override {
    if (!bound_endpoint_.empty()) {
      std::lock_guard<std::mutex> lock(bound_mutex);
      std::erase_if(bound_sinks, [this](const auto& entry) { return entry.first == this; });
    }
  }

  std::string description() const override {
    return "ZeroMQSink[endpoint: " + endpoint_ + ", socketType: " + (push_ ? "PUSH" : "PUB") + (bind_ ? ", bind" : "") +
           (topic_.empty() ? "" : ", topic: " + topic_) + "]";
  }

  // text: the value column, or the row as CSV; json: timestamps as "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC).
  void open(const schema_ptr& input, output_mode, const std::vector<std::string>&) override {
    if (format_ == message_format::binary) return;
    const text_encoding encoding = format_ == message_format::csv    ? text_encoding::csv
                                   : format_ == message_format::json ? text_encoding::json
                                                                     : text_encoding::text;
    encoder_options opts;
    opts.iso_timestamps = false;
    try {
      encoder_.emplace(encoding, input, opts);
    } catch (const error& e) {
      throw error(sink_name + ": messageFormat csv: " + e.what() + " (messageFormat json, or binary)");
    }
  }

  void write(std::int64_t epoch, const batch& rows) override {
    if (rows.num_rows() == 0) return;
    epoch_messages& out = pending_[epoch];
    out.rows += static_cast<std::int64_t>(rows.num_rows());
    if (format_ == message_format::binary) {
      auto encoded = encode(rows);
      out.bytes.append(reinterpret_cast<const char*>(encoded.data()), encoded.size());
      out.ends.push_back(out.bytes.size());
      return;
    }
    if (!encoder_) throw error(sink_name + ": write before open");
    for (std::size_t row = 0; row < rows.num_rows(); ++row) {
      encoder_->append_row(out.bytes, rows, row);
      out.ends.push_back(out.bytes.size());
    }
  }

  void commit(std::int64_t epoch) override {
    auto messages = pending_.extract(epoch);
    if (epoch <= last_committed_) return;  // a replayed epoch: sent already
    if (!messages.empty()) send_epoch(epoch, messages.mapped());
    last_committed_ = epoch;
    if (!messages.empty()) rows_written_ += messages.mapped().rows;
  }

  void abort(std::int64_t epoch) override { pending_.erase(epoch); }

  connector_metrics metrics() const override {
    return {{"numMessagesSent", messages_sent_}, {"numBytesSent", bytes_sent_}, {"numRowsWritten", rows_written_}};
  }

 private:
  // PUB never blocks (a subscriber whose queue is at its high-water mark misses the message); PUSH
  // waits up to sendTimeoutMs for a peer with room, then fails the epoch, which is replayed in full.
  void send_epoch(std::int64_t epoch, const epoch_messages& messages) {
    std::size_t begin = 0;
    for (std::size_t i = 0; i < messages.ends.size(); ++i) {
      zmq::const_buffer payload(messages.bytes.data() + begin, messages.ends[i] - begin);
      try {
        if (!topic_.empty()) {
          [[maybe_unused]] auto sent = socket_.send(zmq::buffer(topic_), zmq::send_flags::sndmore);
        }
        if (!socket_.send(payload, zmq::send_flags::none))
          throw error(sink_name + ": no peer of " + endpoint_ + " took message " + std::to_string(i + 1) + " of " +
                      std::to_string(messages.ends.size()) + " of epoch " + std::to_string(epoch) + " within " +
                      "sendTimeoutMs=" + std::to_string(send_timeout_.count()) + " (no consumer connected, or it does "
                      "not read); the epoch is sent again when it is replayed");
      } catch (const zmq::error_t& e) {
        throw error(sink_name + ": sending to " + endpoint_ + " failed: " + e.what());
      }
      ++messages_sent_;
      bytes_sent_ += static_cast<std::int64_t>(payload.size());
      begin = messages.ends[i];
    }
  }

  const std::string endpoint_;
  const bool push_;
  const bool bind_;
  const message_format format_;
  const std::string topic_;
  const std::chrono::milliseconds send_timeout_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string bound_endpoint_;
  std::optional<row_encoder> encoder_;  // made at open; none for binary
  std::map<std::int64_t, epoch_messages> pending_;
  std::int64_t last_committed_ = -1;
  std::int64_t messages_sent_ = 0, bytes_sent_ = 0, rows_written_ = 0;
};

}  // namespace

void validate_zmq_sink_options(const options& opts) {
  if (opts.get("endpoint").empty())
    throw error(sink_name + ": option 'endpoint' is required, e.g. option(\"endpoint\", \"tcp://127.0.0.1:5555\")");
  bool push = is_push(opts);
  bool_option(opts, "bind", false);
  format_of(opts);
  if (opts.has("topic") && push) throw error(sink_name + ": option 'topic' applies to socketType PUB only");
  if (opts.has("topic") && opts.get("topic").empty())
    throw error(sink_name + ": option 'topic' must not be empty (leave it out to send single-frame messages)");
  positive_option(opts, "sndHwm", 1, sink_name);
  positive_option(opts, "sendTimeoutMs", 1, sink_name);
  std::int64_t linger = 0;
  try {
    linger = opts.get_int("lingerMs", 1000);
  } catch (const error&) {
    throw error(sink_name + ": option 'lingerMs' must be a whole number, got '" + opts.get("lingerMs") + "'");
  }
  if (linger < 0) throw error(sink_name + ": option 'lingerMs' must not be negative, got " + std::to_string(linger));
}

std::unique_ptr<sink_writer> make_zmq_sink(const options& opts) { return std::make_unique<zmq_sink>(opts); }

std::vector<std::string> bound_zmq_sink_endpoints() {
  std::lock_guard<std::mutex> lock(bound_mutex);
  std::vector<std::string> endpoints;
  for (const auto& [sink, endpoint] : bound_sinks) endpoints.push_back(endpoint);
  return endpoints;
}

}  // namespace flow::connectors
