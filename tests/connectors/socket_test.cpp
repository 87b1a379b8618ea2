// The socket source and sink against real TCP peers on 127.0.0.1 that the tests run themselves.
#include <catch2/catch.hpp>

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
using namespace flow::test;

namespace {

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
        timeout, 1ms);
    return values;
  }

 private:
  source_reader& source_;
  std::string offset_;
};

// A client-mode source (source_options(port, extra)) connected to a test server that has accepted it.
struct connected_source {
  listener server;
  std::unique_ptr<source_reader> source;
  drain reader;
  connection peer;

  explicit connected_source(std::initializer_list<std::pair<const std::string, std::string>> extra = {})
      : source(make_socket_source(source_options(server.port(), extra))), reader(*source) {
    reader.take(0);  // starts the receiver
    peer = server.accept();
    REQUIRE(peer.is_open());
  }
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
  REQUIRE(eventually([&] { return metric(source->metrics(), "connected") == 1; }));
  REQUIRE(peer.send("\xBB\xBF" "En un lugar\r"));
  REQUIRE(peer.send("\nde la Mancha\r\n\r\n\xEF\xBB\xBFnot a mark here\n"));
  REQUIRE(peer.send("last without newline"));
  peer.close();
  auto values = reader.take(5);
  CHECK(values == std::vector<std::string>{"En un lugar", "de la Mancha", "", "\xEF\xBB\xBFnot a mark here",
                                           "last without newline"});
  CHECK(settled_metric(*source, "numRecordsReceived", 5) == 5);
}

TEST_CASE("a line longer than maxLineBytes is a counted bad record, discarded up to its newline", "[socket]") {
  connected_source c({{"maxLineBytes", "16"}});
  auto& [server, source, reader, peer] = c;
  REQUIRE(peer.send("short\n" + std::string(100, 'x') + "\nafter\n"));
  // An oversize line spread over many reads, then one that is exactly at the limit.
  for (int i = 0; i < 64; ++i) REQUIRE(peer.send(std::string(4096, 'y')));
  REQUIRE(peer.send("\n"));
  REQUIRE(peer.send(std::string(16, 'z').append("\r\n")));
  CHECK(reader.take(3) == std::vector<std::string>{"short", "after", std::string(16, 'z')});
  CHECK(metric(source->metrics(), "numBadRecords") == 2);
}

TEST_CASE("a huge line under the default limit of 1 MiB does not grow memory past the limit", "[socket]") {
  connected_source c;
  auto& [server, source, reader, peer] = c;
  std::thread producer([&] { peer.send(std::string(8 << 20, 'q') + "\nok\n"); });
  CHECK(reader.take(1) == std::vector<std::string>{"ok"});
  producer.join();
  CHECK(metric(source->metrics(), "numBadRecords") == 1);
}

TEST_CASE("server mode accepts several producers at once and keeps each one's order", "[socket]") {
  auto source = make_socket_source(source_options(0, {{"mode", "server"}, {"host", "127.0.0.1"}}));
  std::uint16_t port = socket_source_bound_port(*source);
  REQUIRE(port != 0);
  auto ports = listening_socket_ports();
  CHECK(std::find(ports.begin(), ports.end(), port) != ports.end());
  drain reader(*source);
  reader.take(0);
  CHECK(metric(source->metrics(), "boundPort") == port);

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
  CHECK(metric(source->metrics(), "numConnectionsAccepted") == producers);
  REQUIRE(eventually([&] { return metric(source->metrics(), "activeConnections") == 0; }));
  CHECK(metric(source->metrics(), "connected") == 0);
  source.reset();
  ports = listening_socket_ports();
  CHECK(std::find(ports.begin(), ports.end(), port) == ports.end());
}

TEST_CASE("client mode reconnects when the peer goes away and loses nothing sent after", "[socket]") {
  connected_source c({{"reconnectInitialMs", "10"}});
  auto& [server, source, reader, first] = c;
  REQUIRE(first.send("one\ntwo\n"));
  first.close();
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
  CHECK(metric(source->metrics(), "numReconnects") == 1);
  CHECK(metric(source->metrics(), "connected") == 1);
}

TEST_CASE("client mode keeps retrying while the connection is refused and reads once the peer is up", "[socket]") {
  std::uint16_t port = unused_port();
  auto source = make_socket_source(source_options(port, {{"reconnectInitialMs", "5"}, {"reconnectMaxMs", "40"}}));
  drain reader(*source);
  CHECK(reader.take(0).empty());
  REQUIRE(eventually([&] { return metric(source->metrics(), "numConnectFailures") >= 3; }));
  CHECK(metric(source->metrics(), "connected") == 0);
  listener late(port);
  auto peer = late.accept();
  REQUIRE(peer.is_open());
  REQUIRE(peer.send("finally\n"));
  CHECK(reader.take(1) == std::vector<std::string>{"finally"});
  CHECK(metric(source->metrics(), "connected") == 1);
  CHECK(metric(source->metrics(), "numReconnects") == 0);
}

TEST_CASE("a stalled query pushes back on the producer and keeps memory bounded", "[socket]") {
  constexpr std::size_t max_buffered = 256 << 10, line_bytes = 1000, total_lines = 32 << 10;  // 32 MB
  connected_source c({{"maxBufferedBytes", std::to_string(max_buffered)}, {"blockBytes", "32768"}});
  auto& [server, source, reader, peer] = c;
  std::atomic<std::size_t> sent_lines{0};
  std::thread producer([&] {
    std::string line(line_bytes - 1, 'w');
    line += '\n';
    std::string chunk;
    for (int i = 0; i < 64; ++i) chunk += line;
    while (sent_lines < total_lines && peer.send(chunk)) sent_lines += 64;
  });
  // Nothing commits: the log fills, the receiver stops reading, the kernel buffers fill, the producer blocks.
  REQUIRE(eventually([&] { return metric(source->metrics(), "bufferedBytes") >= static_cast<std::int64_t>(max_buffered); }));
  std::size_t seen = 0;
  REQUIRE(eventually([&] {
    std::size_t before = sent_lines;
    std::this_thread::sleep_for(300ms);
    seen = sent_lines;
    return before == seen;
  }));
  CHECK(seen < total_lines);
  CHECK(metric(source->metrics(), "bufferedBytes") <= static_cast<std::int64_t>(max_buffered + line_bytes));
  // The query resumes: every line arrives, memory stays bounded throughout.
  auto values = reader.take(total_lines, 60s);
  producer.join();
  CHECK(values.size() == total_lines);
  CHECK(std::all_of(values.begin(), values.end(), [](const std::string& v) { return v.size() == line_bytes - 1; }));
  CHECK(metric(source->metrics(), "bufferedBytes") <= static_cast<std::int64_t>(max_buffered + line_bytes));
}

TEST_CASE("stopping a source whose receiver waits on a full log returns promptly", "[socket]") {
  connected_source c({{"maxBufferedBytes", "1024"}, {"blockBytes", "256"}});
  auto& [server, source, reader, peer] = c;
  REQUIRE(peer.send(std::string(64 << 10, 'a') + "\n" + std::string(16 << 10, '\n')));
  REQUIRE(eventually([&] { return metric(source->metrics(), "bufferedBytes") >= 1024; }));
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
