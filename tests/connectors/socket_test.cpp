// The socket source and sink against real TCP peers on 127.0.0.1 that the tests run themselves.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "flow/connectors/registry.hpp"
#include "flow/connectors/socket.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::connectors;
using namespace std::chrono_literals;

namespace {

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// One end of a TCP connection, closed on destruction.
class connection {
 public:
  explicit connection(int fd = -1) : fd_(fd) {}
  connection(connection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  connection& operator=(connection&& other) noexcept {
    close();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }
  ~connection() { close(); }
  bool is_open() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Blocking send of everything; false when the peer is gone.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Reads until the received text holds at least `lines` newlines, the peer closes, or the timeout passes.
  std::string receive_lines(std::size_t lines, std::chrono::milliseconds timeout = 10s) {
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::count(text.begin(), text.end(), '\n') < static_cast<std::ptrdiff_t>(lines)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd readable{fd_, POLLIN, 0};
      if (left <= 0ms || poll(&readable, 1, static_cast<int>(left.count())) <= 0) break;
      char buffer[4096];
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
  }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A listening socket on 127.0.0.1 (port 0: a free one), as `nc -lk` would be.
class listener {
 public:
  explicit listener(std::uint16_t port = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int yes = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    auto addr = loopback(port);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~listener() { ::close(fd_); }
  std::uint16_t port() const { return port_; }
  // The next connection, or a closed one when none arrives in time.
  connection accept(std::chrono::milliseconds timeout = 10s) {
    pollfd readable{fd_, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(timeout.count())) <= 0) return connection{};
    return connection{::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)};
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

connection connect_to(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = loopback(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return connection{fd};
}

// A port nobody listens on (free when checked).
std::uint16_t unused_port() {
  listener probe;
  return probe.port();
}

options source_options(long port, std::map<std::string, std::string> extra = {}) {
  options opts;
  opts.set("host", "127.0.0.1");
  opts.set("port", std::to_string(port));
  for (auto& [k, v] : extra) opts.set(k, v);
  return opts;
}

std::int64_t metric(const source_reader& source, const std::string& name) {
  for (const auto& [key, v] : source.metrics())
    if (key == name) return v;
  FAIL("no metric " << name);
  return -1;
}

// Reads what the source has, epoch by epoch, committing each, until `count` lines arrived.
class drain {
 public:
  explicit drain(source_reader& source) : source_(source), offset_(source.initial_offset()) {}

  std::vector<std::string> take(std::size_t count, std::chrono::milliseconds timeout = 10s) {
    std::vector<std::string> values;
    eventually(
        [&] {
          auto end = source_.latest_offset(offset_);
          if (!end) return values.size() >= count;
          source_.begin_read(offset_, *end);
          while (auto unit = source_.next()) {
            batch b;
            if (auto* chunk = std::get_if<raw_chunk>(&*unit)) {
              decode_stats stats;
              b = source_.chunk_decoder()->decode(*chunk, stats);
            } else {
              b = std::get<batch>(*unit);
            }
            for (std::size_t i = 0; i < b.num_rows(); ++i) values.emplace_back(b.col(0).str(i));
          }
          source_.commit(*end);
          offset_ = *end;
          return values.size() >= count;
        },
        timeout);
    return values;
  }

 private:
  source_reader& source_;
  std::string offset_;
};

}  // namespace

TEST_CASE("socket source options are checked with clear errors", "[socket]") {
  CHECK_THAT(test::error_of([] { make_socket_source(options{}); }), Catch::Contains("option 'host' is required"));
  options no_port;
  no_port.set("host", "127.0.0.1");
  CHECK_THAT(test::error_of([&] { make_socket_source(no_port); }), Catch::Contains("option 'port' is required"));
  CHECK_THAT(test::error_of([] { make_socket_source(source_options(0)); }), Catch::Contains("1..65535, got 0"));
  CHECK_THAT(test::error_of([] { make_socket_source(source_options(70000, {{"mode", "server"}})); }),
             Catch::Contains("0..65535, got 70000"));
  CHECK_THAT(test::error_of([] { make_socket_source(source_options(9, {{"mode", "both"}})); }),
             Catch::Contains("'client' or 'server', got 'both'"));
  CHECK_THAT(test::error_of([] { make_socket_source(source_options(9, {{"maxLineBytes", "0"}})); }),
             Catch::Contains("'maxLineBytes' must be positive"));
  CHECK_THAT(test::error_of([] { make_socket_source(source_options(9, {{"reconnectInitialMs", "x"}})); }),
             Catch::Contains("'reconnectInitialMs' must be a whole number"));
  CHECK_THAT(test::error_of([] { make_socket_source(source_options(9, {{"includeTimestamp", "maybe"}})); }),
             Catch::Contains("'includeTimestamp' must be true or false"));

  scan_spec batch_read{"socket", "", source_options(9), nullptr, false, nullptr};
  CHECK_THAT(test::error_of([&] { resolve_source(batch_read); }), Catch::Contains("streaming only"));
  scan_spec stream{"socket", "", source_options(9, {{"includeTimestamp", "true"}}), nullptr, true, nullptr};
  resolve_source(stream);
  CHECK(stream.schema->to_string() == "value: string, timestamp: timestamp");

  listener taken;
  CHECK_THAT(test::error_of([&] { make_socket_source(source_options(taken.port(), {{"mode", "server"}})); }),
             Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(taken.port())));
}

TEST_CASE("client mode reads lines, strips CRLF and a byte-order mark, keeps a last line without newline", "[socket]") {
  listener server;
  auto source = make_socket_source(source_options(server.port()));
  CHECK(source->output_schema()->to_string() == "value: string");
  drain reader(*source);
  CHECK(reader.take(0).empty());  // starts the receiver
  auto peer = server.accept();
  REQUIRE(peer.is_open());
  // The mark and the lines arrive in pieces: the receiver must join them.
  REQUIRE(peer.send("\xEF"));
  REQUIRE(eventually([&] { return metric(*source, "connected") == 1; }));
  REQUIRE(peer.send("\xBB\xBF" "En un lugar\r"));
  REQUIRE(peer.send("\nde la Mancha\r\n\r\n\xEF\xBB\xBFnot a mark here\n"));
  REQUIRE(peer.send("last without newline"));
  peer.close();
  auto values = reader.take(5);
  CHECK(values == std::vector<std::string>{"En un lugar", "de la Mancha", "", "\xEF\xBB\xBFnot a mark here",
                                           "last without newline"});
  CHECK(metric(*source, "numRecordsReceived") == 5);
}

TEST_CASE("a line longer than maxLineBytes is a counted bad record, discarded up to its newline", "[socket]") {
  listener server;
  auto source = make_socket_source(source_options(server.port(), {{"maxLineBytes", "16"}}));
  drain reader(*source);
  reader.take(0);
  auto peer = server.accept();
  REQUIRE(peer.is_open());
  REQUIRE(peer.send("short\n" + std::string(100, 'x') + "\nafter\n"));
  // An oversize line spread over many reads, then one that is exactly at the limit.
  for (int i = 0; i < 64; ++i) REQUIRE(peer.send(std::string(4096, 'y')));
  REQUIRE(peer.send("\n"));
  REQUIRE(peer.send(std::string(16, 'z').append("\r\n")));
  CHECK(reader.take(3) == std::vector<std::string>{"short", "after", std::string(16, 'z')});
  CHECK(metric(*source, "numBadRecords") == 2);
}

TEST_CASE("a huge line under the default limit of 1 MiB does not grow memory past the limit", "[socket]") {
  listener server;
  auto source = make_socket_source(source_options(server.port()));
  drain reader(*source);
  reader.take(0);
  auto peer = server.accept();
  std::thread producer([&] { peer.send(std::string(8 << 20, 'q') + "\nok\n"); });
  CHECK(reader.take(1) == std::vector<std::string>{"ok"});
  producer.join();
  CHECK(metric(*source, "numBadRecords") == 1);
}

TEST_CASE("server mode accepts several producers at once and keeps each one's order", "[socket]") {
  auto source = make_socket_source(source_options(0, {{"mode", "server"}, {"host", "127.0.0.1"}}));
  std::uint16_t port = socket_source_bound_port(*source);
  REQUIRE(port != 0);
  auto ports = listening_socket_ports();
  CHECK(std::find(ports.begin(), ports.end(), port) != ports.end());
  drain reader(*source);
  reader.take(0);
  CHECK(metric(*source, "boundPort") == port);

  constexpr int producers = 4, lines = 2000;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([p, port] {
      auto peer = connect_to(port);
      std::string text;
      for (int i = 0; i < lines; ++i) text.append("p").append(std::to_string(p)).append(" ").append(std::to_string(i)).append("\n");
      // In pieces, so the producers' lines interleave at the source.
      for (std::size_t at = 0; at < text.size(); at += 1000) peer.send(std::string_view(text).substr(at, 1000));
    });
  auto values = reader.take(producers * lines);
  for (auto& t : threads) t.join();
  REQUIRE(values.size() == producers * lines);
  std::map<int, int> next;
  for (const auto& v : values) {
    int p = std::stoi(v.substr(1));
    CHECK(std::stoi(v.substr(v.find(' ') + 1)) == next[p]++);
  }
  CHECK(next.size() == producers);
  CHECK(metric(*source, "numConnectionsAccepted") == producers);
  REQUIRE(eventually([&] { return metric(*source, "activeConnections") == 0; }));
  CHECK(metric(*source, "connected") == 0);
  source.reset();
  ports = listening_socket_ports();
  CHECK(std::find(ports.begin(), ports.end(), port) == ports.end());
}

TEST_CASE("client mode reconnects when the peer goes away and loses nothing sent after", "[socket]") {
  listener server;
  auto source = make_socket_source(source_options(server.port(), {{"reconnectInitialMs", "10"}}));
  drain reader(*source);
  reader.take(0);
  {
    auto first = server.accept();
    REQUIRE(first.is_open());
    REQUIRE(first.send("one\ntwo\n"));
  }
  auto second = server.accept();
  REQUIRE(second.is_open());
  std::vector<std::string> sent_after;
  for (int i = 0; i < 1000; ++i) {
    sent_after.push_back("after " + std::to_string(i));
    REQUIRE(second.send(sent_after.back() + "\n"));
  }
  auto values = reader.take(1002);
  REQUIRE(values.size() == 1002);
  CHECK(values[0] == "one");
  CHECK(values[1] == "two");
  CHECK(std::vector<std::string>(values.begin() + 2, values.end()) == sent_after);
  CHECK(metric(*source, "numReconnects") == 1);
  CHECK(metric(*source, "connected") == 1);
}

TEST_CASE("client mode keeps retrying while the connection is refused and reads once the peer is up", "[socket]") {
  std::uint16_t port = unused_port();
  auto source = make_socket_source(source_options(port, {{"reconnectInitialMs", "5"}, {"reconnectMaxMs", "40"}}));
  drain reader(*source);
  CHECK(reader.take(0).empty());
  REQUIRE(eventually([&] { return metric(*source, "numConnectFailures") >= 3; }));
  CHECK(metric(*source, "connected") == 0);
  listener late(port);
  auto peer = late.accept();
  REQUIRE(peer.is_open());
  REQUIRE(peer.send("finally\n"));
  CHECK(reader.take(1) == std::vector<std::string>{"finally"});
  CHECK(metric(*source, "connected") == 1);
  CHECK(metric(*source, "numReconnects") == 0);
}

TEST_CASE("a stalled query pushes back on the producer and keeps memory bounded", "[socket]") {
  constexpr std::size_t max_buffered = 256 << 10, line_bytes = 1000, total_lines = 32 << 10;  // 32 MB
  listener server;
  auto source = make_socket_source(source_options(
      server.port(), {{"maxBufferedBytes", std::to_string(max_buffered)}, {"blockBytes", "32768"}}));
  drain reader(*source);
  reader.take(0);
  auto peer = server.accept();
  REQUIRE(peer.is_open());
  std::atomic<std::size_t> sent_lines{0};
  std::thread producer([&] {
    std::string line(line_bytes - 1, 'w');
    line += '\n';
    std::string chunk;
    for (int i = 0; i < 64; ++i) chunk += line;
    while (sent_lines < total_lines && peer.send(chunk)) sent_lines += 64;
  });
  // Nothing commits: the log fills, the receiver stops reading, the kernel buffers fill, the producer blocks.
  REQUIRE(eventually([&] { return metric(*source, "bufferedBytes") >= static_cast<std::int64_t>(max_buffered); }));
  std::size_t seen = 0;
  REQUIRE(eventually([&] {
    std::size_t before = sent_lines;
    std::this_thread::sleep_for(300ms);
    seen = sent_lines;
    return before == seen;
  }));
  CHECK(seen < total_lines);
  CHECK(metric(*source, "bufferedBytes") <= static_cast<std::int64_t>(max_buffered + line_bytes));
  // The query resumes: every line arrives, memory stays bounded throughout.
  auto values = reader.take(total_lines, 60s);
  producer.join();
  CHECK(values.size() == total_lines);
  CHECK(std::all_of(values.begin(), values.end(), [](const std::string& v) { return v.size() == line_bytes - 1; }));
  CHECK(metric(*source, "bufferedBytes") <= static_cast<std::int64_t>(max_buffered + line_bytes));
}

TEST_CASE("stopping a source whose receiver waits on a full log returns promptly", "[socket]") {
  listener server;
  auto source = make_socket_source(source_options(server.port(), {{"maxBufferedBytes", "1024"}, {"blockBytes", "256"}}));
  drain reader(*source);
  reader.take(0);
  auto peer = server.accept();
  REQUIRE(peer.send(std::string(64 << 10, 'a') + "\n" + std::string(16 << 10, '\n')));
  REQUIRE(eventually([&] { return metric(*source, "bufferedBytes") >= 1024; }));
  auto started = std::chrono::steady_clock::now();
  source->stop();
  source.reset();
  CHECK(std::chrono::steady_clock::now() - started < 2s);
}

TEST_CASE("socket sink writes value lines at commit, ignores replays, and reconnects", "[socket]") {
  listener server;
  options opts = source_options(server.port(), {{"reconnectInitialMs", "10"}});
  auto sink = make_socket_sink(opts);
  auto schema = make_schema({{"value", type_id::string, true}, {"n", type_id::int64, true}});
  sink->open(schema, output_mode::append, {});
  sink->write(0, batch(schema, {make_string_column({"alpha", "beta"}), make_int_column({1, 2})}));
  sink->commit(0);
  auto peer = server.accept();
  REQUIRE(peer.is_open());
  CHECK(peer.receive_lines(2) == "alpha\nbeta\n");

  sink->write(0, batch(schema, {make_string_column({"alpha", "beta"}), make_int_column({1, 2})}));
  sink->commit(0);  // a replay of a committed epoch: nothing is sent
  sink->write(1, batch(schema, {make_string_column({"dropped"}), make_int_column({3})}));
  sink->abort(1);
  sink->write(1, batch(schema, {make_string_column({"gamma"}), make_int_column({3})}));
  sink->commit(1);
  CHECK(peer.receive_lines(1) == "gamma\n");

  peer.close();  // the peer goes away between epochs
  sink->write(2, batch(schema, {make_string_column({"delta"}), make_int_column({4})}));
  sink->commit(2);
  auto again = server.accept();
  REQUIRE(again.is_open());
  CHECK(again.receive_lines(1) == "delta\n");
  auto metrics = sink->metrics();
  CHECK(std::find(metrics.begin(), metrics.end(), std::make_pair(std::string("numReconnects"), std::int64_t{1})) !=
        metrics.end());
  CHECK(std::find(metrics.begin(), metrics.end(), std::make_pair(std::string("numLinesWritten"), std::int64_t{4})) !=
        metrics.end());
}

TEST_CASE("socket sink writes rows without a value column as CSV", "[socket]") {
  listener server;
  auto sink = make_socket_sink(source_options(server.port()));
  auto schema = make_schema({{"word", type_id::string, true}, {"count", type_id::int64, true}});
  sink->open(schema, output_mode::update, {"word"});
  sink->write(0, batch(schema, {make_string_column({"plain", "with,comma", "say \"hi\""}), make_int_column({1, 2, 3})}));
  sink->commit(0);
  auto peer = server.accept();
  CHECK(peer.receive_lines(3) == "plain,1\n\"with,comma\",2\n\"say \"\"hi\"\"\",3\n");
}

TEST_CASE("socket sink fails the epoch with a clear error when nobody listens", "[socket]") {
  auto opts = source_options(unused_port(), {{"writeTimeoutMs", "200"}, {"reconnectInitialMs", "10"}});
  auto sink = make_socket_sink(opts);
  auto schema = make_schema({{"value", type_id::string, true}});
  sink->open(schema, output_mode::append, {});
  sink->write(0, batch(schema, {make_string_column({"lost"})}));
  auto started = std::chrono::steady_clock::now();
  CHECK_THAT(test::error_of([&] { sink->commit(0); }),
             Catch::Contains("cannot connect to 127.0.0.1:" + opts.get("port")) && Catch::Contains("writeTimeoutMs=200"));
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  CHECK_THAT(test::error_of([] { make_socket_sink(source_options(0)); }), Catch::Contains("socket sink: option 'port'"));
}
