// HTTP feed ingest: the feed server (a separate process, as fast as it can) streams N tweets; (a) a plain
// Beast client reads the chunked body and splits it into lines, (b) libflow's http-feed source feeds a
// query that decodes each tweet's id, into the noop sink (the ingest figure) and into foreachBatch. One JSON line per mode and run: rows/s, MB/s, this
// process's CPU seconds (the server's not included) and the ratio to the plain client of the same round.
// usage: http_ingest_bench [--tweets N] [--runs N] (default 1000000 tweets, 3 runs; a bare N is the tweets)
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <string>

#include "bench_input.hpp"
#include "child_run.hpp"
#include "flow/session.hpp"
#include "ingest_support.hpp"

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

struct server_process {
  pid_t pid = -1;
  int port = 0;
  explicit server_process(long long tweets) {
    if (access(FLOW_FEED_SERVER, X_OK) != 0)
      throw bench::input_error(std::string("cannot run the feed server ") + FLOW_FEED_SERVER +
                               "; build it: cmake --build <build dir> --target feed_server");
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    const pid_t parent = getpid();
    pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      bench::die_with_parent(parent);
      dup2(out[1], STDOUT_FILENO);
      std::string count = std::to_string(tweets);
      execl(FLOW_FEED_SERVER, FLOW_FEED_SERVER, "--port", "0", "--rate", "0", "--count", count.c_str(), "--token", "bench",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c = 0;
    pollfd readable{out[0], POLLIN, 0};
    while (poll(&readable, 1, 10000) > 0 && ::read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    ::close(out[0]);
    if (line.rfind("listening on ", 0) != 0) throw std::runtime_error("the feed server did not start");
    port = std::stoi(line.substr(13));
  }
  ~server_process() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

using ingest::result;

// (a) The baseline: one GET, Beast's parser, lines counted as they are cut.
result plain_client(int port, std::size_t tweets) {
  net::io_context io;
  tcp::socket socket(io);
  ingest::stopwatch clocks;
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  http::request<http::empty_body> req{http::verb::get, "/2/tweets/search/stream?since_id=0", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer bench");
  http::write(socket, req);
  http::response_parser<http::empty_body> parser;
  parser.body_limit(boost::none);
  result r;
  std::string partial;
  auto on_chunk = [&](std::uint64_t, boost::beast::string_view body, boost::beast::error_code&) -> std::size_t {
    r.bytes += body.size();
    std::size_t pos = 0;
    while (pos < body.size()) {
      auto nl = body.find('\n', pos);
      if (nl == boost::beast::string_view::npos) {
        partial.append(body.data() + pos, body.size() - pos);
        break;
      }
      std::size_t length = partial.size() + (nl - pos);
      partial.clear();
      if (length > 1) ++r.rows;  // "\r" alone is a keep-alive
      pos = nl + 1;
    }
    return body.size();
  };
  parser.on_chunk_body(on_chunk);
  boost::beast::flat_buffer buffer;
  http::read_header(socket, buffer, parser);
  while (r.rows < tweets) {
    boost::beast::error_code ec;
    http::read_some(socket, buffer, parser, ec);
    if (ec) throw std::runtime_error("plain client: " + ec.message());
  }
  clocks.stop(r);
  return r;
}

// (b) libflow: the http-feed source and the JSON decoder (id only), into the noop sink or foreachBatch.
result flow_query(int port, std::size_t tweets, ingest::sink_kind sink) {
  flow::session session;
  ingest::stopwatch clocks;
  auto ids = session.read_stream()
                 .format("http-feed")
                 .schema(flow::make_schema({{"id", flow::type_id::int64, true}}))
                 .option("url", "http://127.0.0.1:" + std::to_string(port) + "/2/tweets/search/stream")
                 .option("bearerToken", "bench")
                 .option("param.since_id", "0")
                 .load();
  auto delivered = ingest::deliver(ids, sink, tweets);
  result r;
  clocks.stop(r);
  r.rows = delivered.rows;
  delivered.query.stop();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return bench::run("http_ingest_bench", [&] {
    const bool bare_count = argc == 2 && argv[1][0] != '-';
    const std::size_t tweets = bare_count ? bench::count_argument(argv[1], "the tweet count")
                                          : ingest::number_flag(argc, argv, "tweets", 1000000);
    const std::size_t runs = ingest::number_flag(argc, argv, "runs", 3);
    server_process server(static_cast<long long>(tweets));  // each connection gets the tweets from the start
    bool all_rows = true;
    ingest::summary medians;
    for (std::size_t run = 0; run < runs; ++run) {
      result plain = plain_client(server.port, tweets);
      ingest::print("http_ingest", "plain_beast_client", plain, run, plain);
      medians.add("plain_beast_client", plain);
      for (auto sink : {ingest::sink_kind::noop, ingest::sink_kind::foreach_batch}) {
        result ours = flow_query(server.port, tweets, sink);
        ours.bytes = plain.bytes;  // the same stream
        const std::string mode = std::string("libflow_http_feed_source_") + ingest::sink_name(sink);
        ingest::print("http_ingest", mode, ours, run, plain);
        medians.add(mode, ours);
        all_rows = all_rows && ours.rows >= tweets;
      }
    }
    medians.print("http_ingest", "plain_beast_client");
    return all_rows ? 0 : 1;
  });
}
