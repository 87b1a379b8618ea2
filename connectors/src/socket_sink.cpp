// The socket sink: each committed epoch's rows as lines of text on one TCP connection.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

#include "flow/connectors/socket.hpp"

namespace flow::connectors {

namespace {

using namespace socket_detail;
using namespace std::chrono_literals;

const std::string sink_name = "socket sink";

class socket_sink final : public sink_writer {
 public:
  explicit socket_sink(const options& opts)
      : host_((validate_socket_sink_options(opts), opts.get("host"))),
        port_(port_option(opts, false, sink_name)),
        reconnect_initial_(positive_option(opts, "reconnectInitialMs", 100, sink_name)),
        reconnect_max_(positive_option(opts, "reconnectMaxMs", 5000, sink_name)),
        write_timeout_(positive_option(opts, "writeTimeoutMs", 30000, sink_name)) {}

  ~socket_sink() override { close(); }

  std::string description() const override { return "SocketSink[host: " + host_ + ", port: " + std::to_string(port_) + "]"; }

  // One line per row: the value column, or the whole row as CSV when there is none.
  void open(const schema_ptr& input, output_mode, const std::vector<std::string>&) override {
    encoder_.emplace(text_encoding::text, input);
  }

  void write(std::int64_t epoch, const batch& rows) override {
    if (!encoder_) throw error(sink_name + ": write before open");
    encoder_->append_rows(pending_[epoch], rows);
    pending_lines_[epoch] += rows.num_rows();
  }

  void commit(std::int64_t epoch) override {
    auto text = pending_.extract(epoch);
    auto lines = pending_lines_.extract(epoch);
    if (epoch <= last_committed_) return;  // a replayed epoch: already sent
    if (!text.empty() && !text.mapped().empty()) send_epoch(text.mapped());
    last_committed_ = epoch;
    if (!lines.empty()) lines_written_ += static_cast<std::int64_t>(lines.mapped());
  }

  void abort(std::int64_t epoch) override {
    pending_.erase(epoch);
    pending_lines_.erase(epoch);
  }

  connector_metrics metrics() const override {
    return {{"connected", fd_ >= 0 ? 1 : 0},
            {"numReconnects", reconnects_},
            {"numLinesWritten", lines_written_},
            {"numBytesWritten", bytes_written_}};
  }

  void close() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  // Sends the whole text on a live connection; when the connection fails, reconnects with backoff and
  // sends it all again, until writeTimeoutMs has passed.
  void send_epoch(const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + write_timeout_;
    auto backoff = reconnect_initial_;
    std::string failure;
    while (true) {
      if (fd_ >= 0 && peer_closed()) close();
      if (fd_ < 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left > 0ms) fd_ = connect_tcp(host_, port_, left, -1, failure);
        if (fd_ >= 0) {
          if (connected_before_) ++reconnects_;
          connected_before_ = true;
          backoff = reconnect_initial_;
        }
      }
      if (fd_ >= 0) {
        if (send_all(text, deadline, failure)) return;
        close();
      }
      if (std::chrono::steady_clock::now() + backoff >= deadline)
        throw error(sink_name + ": " + failure + " (gave up after writeTimeoutMs=" +
                    std::to_string(write_timeout_.count()) + ")");
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, reconnect_max_);
    }
  }

  // The peer closed (or reset) the connection since the last epoch. What it sent us is ignored.
  bool peer_closed() {
    char scratch[4096];
    while (true) {
      ssize_t n = ::recv(fd_, scratch, sizeof scratch, MSG_DONTWAIT);
      if (n > 0) continue;
      return n == 0 || (errno != EAGAIN && errno != EINTR);
    }
  }

  bool send_all(const std::string& text, std::chrono::steady_clock::time_point deadline, std::string& failure) {
    std::size_t sent = 0;
    while (sent < text.size()) {
      ssize_t n = ::send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        bytes_written_ += n;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd writable{fd_, POLLOUT, 0};
        if (left > 0ms && poll(&writable, 1, static_cast<int>(left.count())) > 0) continue;
        failure = "the peer at " + host_ + ":" + std::to_string(port_) + " does not read";
        return false;
      }
      failure = "connection to " + host_ + ":" + std::to_string(port_) + " lost: " + std::strerror(errno);
      return false;
    }
    return true;
  }

  const std::string host_;
  const std::uint16_t port_;
  const std::chrono::milliseconds reconnect_initial_, reconnect_max_, write_timeout_;
  std::optional<row_encoder> encoder_;  // made at open
  std::map<std::int64_t, std::string> pending_;
  std::map<std::int64_t, std::size_t> pending_lines_;
  std::int64_t last_committed_ = -1;
  int fd_ = -1;
  bool connected_before_ = false;
  std::int64_t reconnects_ = 0, lines_written_ = 0, bytes_written_ = 0;
};

}  // namespace

void validate_socket_sink_options(const options& opts) {
  if (opts.get("host").empty()) throw error(sink_name + ": option 'host' is required");
  port_option(opts, false, sink_name);
  for (const char* key : {"reconnectInitialMs", "reconnectMaxMs", "writeTimeoutMs"}) positive_option(opts, key, 1, sink_name);
  if (opts.get_int("reconnectMaxMs", 5000) < opts.get_int("reconnectInitialMs", 100))
    throw error(sink_name + ": option 'reconnectMaxMs' must not be below reconnectInitialMs");
}

std::unique_ptr<sink_writer> make_socket_sink(const options& opts) { return std::make_unique<socket_sink>(opts); }

}  // namespace flow::connectors
