// The http-feed source: a receiver thread keeps one streaming HTTP request open, cuts the response body
// into lines and appends the non-blank ones to push_source's bounded record log. Beast's parser reads
// the response from bytes we fetch ourselves with poll(): that gives the stall timeout, and an eventfd
// ends every wait (connect, read, backoff) when the source stops.
#include "flow/connectors/http_feed.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cctype>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>
#include <thread>

#include "flow/connectors/push_source.hpp"
#include "flow/connectors/socket.hpp"

namespace flow::connectors {

namespace http = boost::beast::http;

namespace {

const std::string source_name = "http-feed source";

std::int64_t option_at_least(const options& opts, const std::string& key, std::int64_t fallback, std::int64_t minimum) {
  std::int64_t v = 0;
  try {
    v = opts.get_int(key, fallback);
  } catch (const error&) {
    throw error(source_name + ": option '" + key + "' must be a whole number, got '" + opts.get(key) + "'");
  }
  if (v < minimum)
    throw error(source_name + ": option '" + key + "' must be at least " + std::to_string(minimum) + ", got " +
                std::to_string(v));
  return v;
}

http_feed_backoff backoff_of(const options& opts) {
  http_feed_backoff b;
  b.network_step = option_at_least(opts, "networkBackoffStepMs", b.network_step, 1);
  b.network_max = option_at_least(opts, "networkBackoffMaxMs", b.network_max, 1);
  b.http_initial = option_at_least(opts, "httpBackoffInitialMs", b.http_initial, 1);
  b.http_max = option_at_least(opts, "httpBackoffMaxMs", b.http_max, 1);
  b.rate_limit_initial = option_at_least(opts, "rateLimitBackoffInitialMs", b.rate_limit_initial, 1);
  return b;
}

// The query string the options ask for: every param.<name>, in name order.
std::vector<std::pair<std::string, std::string>> query_params(const options& opts) {
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& [key, value] : opts.all()) {
    if (key.rfind("param.", 0) != 0) continue;
    if (key.size() == 6) throw error(source_name + ": option 'param.' needs a parameter name after the dot");
    params.emplace_back(key.substr(6), value);
  }
  return params;
}

// How a connection ended.
enum class outcome { stopped, network, http, rate_limit };

class http_feed_source final : public push_source {
 public:
  http_feed_source(const options& opts, schema_ptr schema)
      : push_source(push_source_config{description_of(opts), "json", opts, std::move(schema)}),
        endpoint_(parse_http_feed_url(opts.get("url"))),
        token_(opts.get("bearerToken")),
        params_(query_params(opts)),
        resume_param_(opts.get("resumeParam")),
        resume_field_(opts.get("resumeField", "id")),
        stall_timeout_(option_at_least(opts, "stallTimeoutMs", 90000, 1)),
        connect_timeout_(option_at_least(opts, "connectTimeoutMs", 10000, 1)),
        max_line_bytes_(static_cast<std::size_t>(option_at_least(opts, "maxLineBytes", 1 << 20, 1))),
        backoff_(backoff_of(opts)),
        lines_(log(), counters(),
               {.max_line_bytes = max_line_bytes_, .skip_blank = true,
                .keep_recent = resume_param_.empty() ? 0 : recent_lines_kept}) {
    if (!resume_param_.empty()) {
      options id_opts;
      id_opts.set("mode", "PERMISSIVE");
      id_decoder_ = make_decoder("json", id_opts, make_schema({{resume_field_, type_id::string, true}}));
    }

    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw error(source_name + ": eventfd: " + std::strerror(errno));
  }

  ~http_feed_source() override {
    stop();
    ::close(wake_fd_);
  }

  std::string last_error() const {
    std::lock_guard<std::mutex> lock(error_mutex_);
    return last_error_;
  }

 protected:
  void start_receiving() override {
    receiver_ = std::thread([this] { run(); });
  }

  void stop_receiving() override {
    stopping_ = true;
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
    if (receiver_.joinable()) receiver_.join();
  }

  std::string status() const override { return connected_.load() ? std::string() : last_error(); }

  connector_metrics extra_metrics() const override {
    return {{"connected", connected_.load()},
            {"numReconnects", reconnects_.load()},
            {"numStalls", stalls_.load()},
            {"numHttp429", http429_.load()},
            {"numHttp5xx", http5xx_.load()},
            {"numAuthFailures", auth_failures_.load()},
            {"numHttpErrors", http_errors_.load()},
            {"lastHttpStatus", last_status_.load()},
            {"authFailed", auth_failed_.load()}};
  }

 private:
  static std::string description_of(const options& opts) {
    validate_http_feed_options(opts);
    return "HttpFeedSource[" + opts.get("url") + "]";
  }

  void run() {
    std::int64_t network_failures = 0, http_failures = 0, rate_limit_failures = 0;
    bool first_attempt = true;
    while (!stopping_) {
      if (!first_attempt) reconnects_.fetch_add(1, std::memory_order_relaxed);
      first_attempt = false;
      bool received_data = false;
      outcome result = connect_and_stream(received_data);
      if (result == outcome::stopped) return;
      if (received_data) network_failures = http_failures = rate_limit_failures = 0;
      std::chrono::milliseconds delay{0};
      switch (result) {
        case outcome::network:
          delay = http_feed_reconnect_delay(backoff_, http_feed_failure::network, ++network_failures);
          break;
        case outcome::http:
          delay = http_feed_reconnect_delay(backoff_, http_feed_failure::http, ++http_failures);
          break;
        case outcome::rate_limit:
          delay = http_feed_reconnect_delay(backoff_, http_feed_failure::rate_limit, ++rate_limit_failures);
          break;
        case outcome::stopped:
          break;
      }
      if (!pause(delay)) return;
    }
  }

  // Waits for the delay unless asked to stop; false when stopping.
  bool pause(std::chrono::milliseconds delay) {
    pollfd wake{wake_fd_, POLLIN, 0};
    int ready = poll(&wake, 1, static_cast<int>(delay.count()));
    return !stopping_ && (ready == 0 || (ready < 0 && errno == EINTR));
  }

  void report(const std::string& text) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (text != last_error_) std::cerr << source_name << " " << endpoint_.host << ":" << endpoint_.port << ": " << text << "\n";
    last_error_ = text;
  }

  std::string request_text() {
    std::string target = endpoint_.target;
    char separator = target.find('?') == std::string::npos ? '?' : '&';
    auto add = [&](const std::string& name, const std::string& value) {
      target += separator;
      target += url_encode(name) + "=" + url_encode(value);
      separator = '&';
    };
    for (const auto& [name, value] : params_)
      if (!(name == resume_param_ && !resume_value_.empty())) add(name, value);
    if (!resume_param_.empty() && !resume_value_.empty()) add(resume_param_, resume_value_);
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + endpoint_.host + ":" + std::to_string(endpoint_.port) +
                          "\r\nUser-Agent: libflow-http-feed\r\nAccept: application/json\r\n";
    if (!token_.empty()) request += "Authorization: Bearer " + token_ + "\r\n";
    return request + "\r\n";
  }

  // Writes all of text to the non-blocking fd; false (with the reason reported) on failure or stop.
  bool send_all(int fd, std::string_view text) {
    while (!text.empty()) {
      ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
      if (n > 0) {
        text.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        report(std::string("cannot send the request: ") + std::strerror(errno));
        return false;
      }
      pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_fd_, POLLIN, 0}};
      if (poll(fds, 2, static_cast<int>(connect_timeout_.count())) <= 0 || fds[1].revents) {
        if (!stopping_) report("timed out sending the request");
        return false;
      }
    }
    return true;
  }

  outcome connect_and_stream(bool& received_data) {
    std::string failure;
    int fd = socket_detail::connect_tcp(endpoint_.host, endpoint_.port, connect_timeout_, wake_fd_, failure);
    if (fd < 0) {
      if (stopping_) return outcome::stopped;
      report(failure);
      return outcome::network;
    }
    outcome result = stream(fd, received_data);
    ::close(fd);
    connected_ = 0;
    remember_resume_value();
    return result;
  }

  outcome stream(int fd, bool& received_data) {
    if (!send_all(fd, request_text())) return stopping_ ? outcome::stopped : outcome::network;
    http::response_parser<http::empty_body> parser;
    parser.body_limit(boost::none);
    lines_.reset();  // a new connection: nothing of the last one's unfinished line is kept
    bool log_closed = false;
    auto on_body = [&](std::uint64_t, boost::beast::string_view body, boost::beast::error_code&) -> std::size_t {
      if (!log_closed && !lines_.consume(body.data(), body.size())) log_closed = true;
      return body.size();
    };
    parser.on_chunk_body(on_body);
    boost::beast::flat_buffer pending;
    bool streaming = false;
    bool raw_body = false;  // a 200 without chunked encoding: the body runs until the connection closes

    while (!stopping_) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      const auto timeout = streaming ? stall_timeout_ : connect_timeout_;
      int ready = poll(fds, 2, static_cast<int>(timeout.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (fds[1].revents || stopping_) return outcome::stopped;
      if (ready == 0) {
        if (streaming) {
          stalls_.fetch_add(1, std::memory_order_relaxed);
          report("stalled: no data for " + std::to_string(stall_timeout_.count()) + " ms; reconnecting");
        } else {
          report("timed out waiting for the response headers");
        }
        return outcome::network;
      }
      auto space = pending.prepare(256 << 10);
      ssize_t n = ::read(fd, space.data(), space.size());
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        report(n == 0 ? "the server closed the connection" : std::string("read failed: ") + std::strerror(errno));
        return outcome::network;
      }
      pending.commit(static_cast<std::size_t>(n));
      if (streaming) received_data = true;
      if (raw_body) {
        auto data = pending.data();
        if (!lines_.consume(static_cast<const char*>(data.data()), data.size())) return outcome::stopped;
        pending.consume(data.size());
        continue;
      }
      while (pending.size() > 0) {
        boost::beast::error_code ec;
        std::size_t used = parser.put(pending.data(), ec);
        pending.consume(used);
        if (log_closed) return outcome::stopped;
        // An error answer's body is no stream: the empty_body parser refuses it, after the header.
        if (!streaming && parser.is_header_done() && parser.get().result_int() != 200) {
          last_status_ = static_cast<int>(parser.get().result_int());
          return refused(static_cast<int>(last_status_), parser, pending);
        }
        if (ec == http::error::need_more) break;
        if (ec) {
          report("HTTP protocol error: " + ec.message());
          return outcome::network;
        }
        if (!streaming && parser.is_header_done()) {
          last_status_ = 200;
          streaming = true;
          received_data = pending.size() > 0;
          connected_ = 1;
          auth_failed_ = 0;
          if (!parser.chunked()) {
            raw_body = true;
            auto data = pending.data();
            if (!lines_.consume(static_cast<const char*>(data.data()), data.size())) return outcome::stopped;
            pending.consume(data.size());
            break;
          }
        }
        if (parser.is_done()) {
          report("the server ended the stream");
          return outcome::network;
        }
        if (used == 0) break;
      }
    }
    return outcome::stopped;
  }

  outcome refused(int status, const http::response_parser<http::empty_body>& parser, const boost::beast::flat_buffer& rest) {
    http_errors_.fetch_add(1, std::memory_order_relaxed);
    auto body = std::string_view(static_cast<const char*>(rest.data().data()), std::min<std::size_t>(rest.size(), 300));
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    const auto& reason = parser.get().reason();
    report("HTTP " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) +
           (body.empty() ? "" : ": " + std::string(body)));
    if (status == 401 || status == 403) {
      auth_failures_.fetch_add(1, std::memory_order_relaxed);
      auth_failed_ = 1;
    }
    if (status >= 500) http5xx_.fetch_add(1, std::memory_order_relaxed);
    if (status == 420 || status == 429) {
      http429_.fetch_add(1, std::memory_order_relaxed);
      return outcome::rate_limit;
    }
    return outcome::http;
  }

  // With a write-ahead log, a restarted source resumes the feed after the last record it logged.
  void recovered_records(const std::vector<std::string>& last_block) override {
    remember_resume_value(last_block);
  }

  // The resume value is the newest line's resumeField that decodes; malformed lines have none.
  template <class Lines>
  void remember_resume_value(const Lines& lines) {
    if (!id_decoder_) return;
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      auto bytes = std::make_shared<const std::string>(*it + "\n");
      decode_stats stats;
      batch b = id_decoder_->decode(raw_chunk{bytes, 0, bytes->size(), description(), 1}, stats);
      if (b.num_rows() == 1 && !b.col(0).is_null(0)) {
        resume_value_ = std::string(b.col(0).str(0));
        break;
      }
    }
  }

  void remember_resume_value() {
    remember_resume_value(lines_.recent());
    lines_.clear_recent();
  }

  static constexpr std::size_t recent_lines_kept = 16;

  const http_feed_endpoint endpoint_;
  const std::string token_;
  const std::vector<std::pair<std::string, std::string>> params_;
  const std::string resume_param_, resume_field_;
  const std::chrono::milliseconds stall_timeout_, connect_timeout_;
  const std::size_t max_line_bytes_;
  const http_feed_backoff backoff_;
  std::shared_ptr<const decoder> id_decoder_;
  // Cuts the body into lines: keep-alives (blank lines) dropped, the last lines remembered for resuming.
  line_splitter lines_;
  std::string resume_value_;
  int wake_fd_ = -1;
  std::thread receiver_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> connected_{0}, reconnects_{0}, stalls_{0}, http429_{0}, http5xx_{0}, auth_failures_{0},
      http_errors_{0}, last_status_{0}, auth_failed_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;
};

}  // namespace

http_feed_endpoint parse_http_feed_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.empty()) throw error(source_name + ": option 'url' is required, e.g. http://127.0.0.1:8080/2/tweets/search/stream");
  if (url.rfind("https://", 0) == 0)
    throw error(source_name + ": https is not supported ('" + url + "'); use an http:// url (e.g. through a local TLS proxy)");
  if (url.rfind(scheme, 0) != 0) throw error(source_name + ": url must start with http://, got '" + url + "'");
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  http_feed_endpoint e;
  e.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (e.target[0] == '?') e.target.insert(0, "/");
  if (e.target.find_first_of(" \r\n#") != std::string::npos)
    throw error(source_name + ": url path must not hold spaces, line breaks or a fragment, got '" + url + "'");
  if (authority.find('@') != std::string::npos)
    throw error(source_name + ": credentials in the url are not supported; use option bearerToken");
  auto colon = authority.rfind(':');
  e.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    std::string port = authority.substr(colon + 1);
    std::size_t used = 0;
    long value = -1;
    try {
      value = std::stol(port, &used);
    } catch (const std::exception&) {
    }
    if (used != port.size() || value < 1 || value > 65535)
      throw error(source_name + ": url port must be 1..65535, got '" + port + "' in '" + url + "'");
    e.port = static_cast<std::uint16_t>(value);
  }
  if (e.host.empty()) throw error(source_name + ": url has no host: '" + url + "'");
  return e;
}

std::string url_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::chrono::milliseconds http_feed_reconnect_delay(const http_feed_backoff& policy, http_feed_failure kind,
                                                    std::int64_t attempt) {
  attempt = std::max<std::int64_t>(attempt, 1);
  auto doubled = [&](std::int64_t initial, std::int64_t cap) {
    std::int64_t delay = initial;
    for (std::int64_t i = 1; i < attempt && delay < cap; ++i) delay *= 2;
    return std::chrono::milliseconds(std::min(delay, cap));
  };
  switch (kind) {
    case http_feed_failure::network:
      return std::chrono::milliseconds(std::min(policy.network_step * std::min<std::int64_t>(attempt, 1 << 20), policy.network_max));
    case http_feed_failure::http:
      return doubled(policy.http_initial, policy.http_max);
    case http_feed_failure::rate_limit:
      return doubled(policy.rate_limit_initial, std::max(policy.http_max, policy.rate_limit_initial));
  }
  return std::chrono::milliseconds(0);
}

void validate_http_feed_options(const options& opts) {
  parse_http_feed_url(opts.get("url"));
  for (const char* key : {"stallTimeoutMs", "connectTimeoutMs", "maxLineBytes", "maxBufferedBytes", "blockBytes"})
    option_at_least(opts, key, 1, 1);
  auto b = backoff_of(opts);
  if (b.network_max < b.network_step)
    throw error(source_name + ": option 'networkBackoffMaxMs' must not be below networkBackoffStepMs");
  if (b.http_max < b.http_initial)
    throw error(source_name + ": option 'httpBackoffMaxMs' must not be below httpBackoffInitialMs");
  query_params(opts);
  if (opts.get("bearerToken").find_first_of("\r\n") != std::string::npos)
    throw error(source_name + ": option 'bearerToken' must not hold line breaks");
  if (opts.has("resumeParam") && opts.get("resumeParam").empty())
    throw error(source_name + ": option 'resumeParam' must name a query parameter, e.g. since_id");
}

std::unique_ptr<source_reader> make_http_feed_source(const options& opts, schema_ptr schema) {
  if (!schema)
    throw error(source_name + ": a schema is required: the JSON fields to read, e.g. id string, created_at timestamp, "
                "user.screen_name string, hashtags array<string>");
  return std::make_unique<http_feed_source>(opts, std::move(schema));
}

std::string http_feed_last_error(const source_reader& source) {
  auto* feed = dynamic_cast<const http_feed_source*>(&source);
  return feed ? feed->last_error() : std::string();
}

}  // namespace flow::connectors
