// The socket source: a receiver thread reads lines from TCP connections (one it keeps open as a client,
// or the producers it accepts as a server) and appends them to push_source's bounded record log.
// Plain POSIX sockets with poll(): the receiver is one thread that may block on a full log (the
// backpressure point), which the blocking style expresses directly; an eventfd wakes it to stop.
#include "flow/connectors/socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "flow/connectors/push_source.hpp"

namespace flow::connectors {

namespace socket_detail {

std::uint16_t port_option(const options& opts, bool allow_zero, const std::string& who) {
  if (!opts.has("port")) throw error(who + ": option 'port' is required");
  std::int64_t port = 0;
  try {
    port = opts.get_int("port", 0);
  } catch (const error&) {
    throw error(who + ": option 'port' must be a whole number, got '" + opts.get("port") + "'");
  }
  if (port < (allow_zero ? 0 : 1) || port > 65535)
    throw error(who + ": option 'port' must be in " + (allow_zero ? "0" : "1") + "..65535, got " + std::to_string(port));
  return static_cast<std::uint16_t>(port);
}

std::int64_t positive_option(const options& opts, const std::string& key, std::int64_t fallback, const std::string& who) {
  std::int64_t v = 0;
  try {
    v = opts.get_int(key, fallback);
  } catch (const error&) {
    throw error(who + ": option '" + key + "' must be a whole number, got '" + opts.get(key) + "'");
  }
  if (v < 1) throw error(who + ": option '" + key + "' must be positive, got " + std::to_string(v));
  return v;
}

namespace {

struct addrinfo_list {
  addrinfo* head = nullptr;
  ~addrinfo_list() {
    if (head) freeaddrinfo(head);
  }
};

}  // namespace

int connect_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout, int wake_fd,
                std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo_list found;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found.head); rc != 0) {
    error = "cannot resolve host '" + host + "': " + gai_strerror(rc);
    return -1;
  }
  for (addrinfo* a = found.head; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
      int ready = poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
      if (ready > 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
        int so_error = 0;
        socklen_t len = sizeof so_error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        rc = so_error == 0 ? 0 : -1;
        errno = so_error;
      } else {
        rc = -1;
        errno = ready == 0 ? ETIMEDOUT : (ready > 0 ? ECANCELED : errno);
      }
    }
    if (rc == 0) return fd;
    error = "cannot connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
  }
  return -1;
}

}  // namespace socket_detail

namespace {

using namespace socket_detail;
using namespace std::chrono_literals;

const std::string source_name = "socket source";
constexpr std::chrono::milliseconds connect_timeout{5000};

std::mutex listeners_mutex;
std::vector<std::pair<const source_reader*, std::uint16_t>> listeners;  // alive server-mode sources

bool server_mode(const options& opts) {
  auto mode = opts.get("mode", "client");
  if (mode == "client") return false;
  if (mode == "server") return true;
  throw error(source_name + ": option 'mode' must be 'client' or 'server', got '" + mode + "'");
}

class socket_source final : public push_source {
 public:
  explicit socket_source(const options& opts)
      : push_source(push_source_config{description_of(opts), "text", opts, nullptr}),
        host_(opts.get("host")),
        port_(port_option(opts, server_mode(opts), source_name)),
        server_(server_mode(opts)),
        max_line_bytes_(static_cast<std::size_t>(positive_option(opts, "maxLineBytes", 1 << 20, source_name))),
        reconnect_initial_(positive_option(opts, "reconnectInitialMs", 100, source_name)),
        reconnect_max_(positive_option(opts, "reconnectMaxMs", 5000, source_name)) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw error(source_name + ": eventfd: " + std::strerror(errno));
    if (server_) {
      try {
        listen_on_host();
      } catch (...) {
        ::close(wake_fd_);
        throw;
      }
      std::lock_guard<std::mutex> lock(listeners_mutex);
      listeners.emplace_back(this, bound_port_);
    }
  }

  ~socket_source() override {
    stop();
    if (server_) {
      std::lock_guard<std::mutex> lock(listeners_mutex);
      std::erase_if(listeners, [this](const auto& entry) { return entry.first == this; });
      ::close(listen_fd_);
    }
    ::close(wake_fd_);
  }

  std::uint16_t bound_port() const { return bound_port_; }

 protected:
  void start_receiving() override {
    receiver_ = std::thread([this] {
      if (server_) serve();
      else run_client();
    });
  }

  void stop_receiving() override {
    stopping_ = true;
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
    if (receiver_.joinable()) receiver_.join();
  }

  std::string status() const override {
    if (server_ || active_connections_.load() > 0) return {};
    std::lock_guard<std::mutex> lock(disconnect_mutex_);
    return disconnect_reason_;
  }

  connector_metrics extra_metrics() const override {
    connector_metrics m{{"connected", active_connections_.load() > 0 ? 1 : 0},
                        {"activeConnections", active_connections_.load()}};
    if (server_) {
      m.emplace_back("numConnectionsAccepted", connections_accepted_.load());
      m.emplace_back("boundPort", bound_port_);
    } else {
      m.emplace_back("numReconnects", reconnects_.load());
      m.emplace_back("numConnectFailures", connect_failures_.load());
    }
    return m;
  }

 private:
  static std::string description_of(const options& opts) {
    validate_socket_source_options(opts);
    return "TextSocketSource[host: " + opts.get("host") + ", port: " + opts.get("port") +
           (server_mode(opts) ? ", mode: server]" : "]");
  }

  void listen_on_host() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found); rc != 0)
      throw error(source_name + ": cannot resolve host '" + host_ + "': " + gai_strerror(rc));
    std::string failure;
    for (addrinfo* a = found; a && listen_fd_ < 0; a = a->ai_next) {
      int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      int yes = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) {
        listen_fd_ = fd;
      } else {
        failure = std::strerror(errno);
        ::close(fd);
      }
    }
    freeaddrinfo(found);
    if (listen_fd_ < 0)
      throw error(source_name + ": cannot listen on " + host_ + ":" + std::to_string(port_) + ": " + failure);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    bound_port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }

  // Waits for the delay unless asked to stop; false when stopping.
  bool pause(std::chrono::milliseconds delay) {
    pollfd wake{wake_fd_, POLLIN, 0};
    int ready = poll(&wake, 1, static_cast<int>(delay.count()));
    return !stopping_ && (ready == 0 || (ready < 0 && errno == EINTR));
  }

  void set_disconnect_reason(std::string reason) {
    std::lock_guard<std::mutex> lock(disconnect_mutex_);
    disconnect_reason_ = std::move(reason);
  }

  void run_client() {
    auto backoff = reconnect_initial_;
    bool connected_before = false;
    while (!stopping_) {
      std::string failure;
      int fd = connect_tcp(host_, port_, connect_timeout, wake_fd_, failure);
      if (fd < 0) {
        connect_failures_.fetch_add(1, std::memory_order_relaxed);
        set_disconnect_reason(failure + "; retrying");
        if (!pause(backoff)) return;
        backoff = std::min(backoff * 2, reconnect_max_);
        continue;
      }
      if (connected_before) reconnects_.fetch_add(1, std::memory_order_relaxed);
      connected_before = true;
      backoff = reconnect_initial_;
      active_connections_ = 1;
      line_splitter state = make_splitter();
      bool peer_gone = false;
      while (!peer_gone && !stopping_) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[1].revents) break;
        if (!receive(fd, state, peer_gone)) break;
      }
      ::close(fd);
      set_disconnect_reason("the server closed the connection; reconnecting");
      active_connections_ = 0;
      if (!peer_gone || !pause(backoff)) return;
    }
  }

  void serve() {
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    std::vector<line_splitter> states(2, make_splitter());  // parallel to fds; the first two are unused
    auto close_all = [&] {
      for (std::size_t i = 2; i < fds.size(); ++i) ::close(fds[i].fd);
      active_connections_ = 0;
    };
    while (!stopping_) {
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[0].revents) break;
      for (std::size_t i = 2; i < fds.size();) {
        bool peer_gone = false;
        if (fds[i].revents) {
          if (!receive(fds[i].fd, states[i], peer_gone)) return close_all();
        }
        if (peer_gone) {
          ::close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
          states.erase(states.begin() + static_cast<std::ptrdiff_t>(i));
          active_connections_.fetch_sub(1);
        } else {
          ++i;
        }
      }
      if (fds[1].revents) {
        while (true) {
          int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;  // EAGAIN: all accepted; anything else: the producer gave up already
          fds.push_back({fd, POLLIN, 0});
          states.push_back(make_splitter());
          connections_accepted_.fetch_add(1, std::memory_order_relaxed);
          active_connections_.fetch_add(1);
        }
      }
    }
    close_all();
  }

  line_splitter make_splitter() {
    return line_splitter(log(), counters(), {.max_line_bytes = max_line_bytes_, .strip_bom = true});
  }

  // Reads what fd has (up to a few buffers, so one busy producer does not starve the others) and
  // appends its complete lines. peer_gone: the connection ended. False when the log was closed.
  bool receive(int fd, line_splitter& lines, bool& peer_gone) {
    for (int round = 0; round < 4; ++round) {
      ssize_t n = ::read(fd, buffer_.data(), buffer_.size());
      if (n > 0) {
        if (!lines.consume(buffer_.data(), static_cast<std::size_t>(n))) return false;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
      // End of stream or a reset: the last line may lack its newline (as Java's readLine sees it).
      peer_gone = true;
      return lines.finish();
    }
    return true;
  }

  const std::string host_;
  const std::uint16_t port_;
  const bool server_;
  const std::size_t max_line_bytes_;
  const std::chrono::milliseconds reconnect_initial_, reconnect_max_;
  int wake_fd_ = -1;
  int listen_fd_ = -1;
  std::uint16_t bound_port_ = 0;
  std::thread receiver_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> active_connections_{0}, reconnects_{0}, connect_failures_{0}, connections_accepted_{0};
  mutable std::mutex disconnect_mutex_;
  std::string disconnect_reason_;  // client: why it is not connected now
  std::vector<char> buffer_ = std::vector<char>(256 << 10);
};

}  // namespace

flow::schema_ptr socket_source_schema(const options& opts) {
  return push_source::text_schema(opts.get_bool("includeTimestamp", false));
}

void validate_socket_source_options(const options& opts) {
  if (opts.get("host").empty()) throw error(source_name + ": option 'host' is required");
  port_option(opts, server_mode(opts), source_name);
  for (const char* key : {"maxLineBytes", "reconnectInitialMs", "reconnectMaxMs", "maxBufferedBytes", "blockBytes"})
    positive_option(opts, key, 1, source_name);
  if (opts.get_int("reconnectMaxMs", 5000) < opts.get_int("reconnectInitialMs", 100))
    throw error(source_name + ": option 'reconnectMaxMs' must not be below reconnectInitialMs");
  try {
    opts.get_bool("includeTimestamp", false);
  } catch (const error&) {
    throw error(source_name + ": option 'includeTimestamp' must be true or false, got '" +
                opts.get("includeTimestamp") + "'");
  }
}

std::unique_ptr<source_reader> make_socket_source(const options& opts) { return std::make_unique<socket_source>(opts); }

std::uint16_t socket_source_bound_port(const source_reader& source) {
  auto* socket = dynamic_cast<const socket_source*>(&source);
  return socket ? socket->bound_port() : 0;
}

std::vector<std::uint16_t> listening_socket_ports() {
  std::lock_guard<std::mutex> lock(listeners_mutex);
  std::vector<std::uint16_t> ports;
  for (const auto& [source, port] : listeners) ports.push_back(port);
  return ports;
}

}  // namespace flow::connectors
