// ZeroMQ ingest over tcp loopback: a producer thread PUSHes the lines of Don Quijote, repeated, one
// message per line; read by (a) a plain cppzmq PULL loop that counts messages and bytes, and (b) libflow's
// zmq source (PULL, messageFormat text) through a session, its rows into the noop sink (the ingest
// figure) and into foreachBatch. One JSON line per mode and run: rows/s, MB/s, the process's CPU seconds
// and the ratio to the plain loop of the same round.
// Usage: zmq_ingest_bench [--messages N] [--runs N] [--flow.threads=N ...]
#include <zmq.hpp>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_input.hpp"
#include "flow/session.hpp"
#include "ingest_support.hpp"

namespace {

using ingest::result;

std::vector<std::string> quijote_lines() {
  std::istringstream in(ingest::read_quijote());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Binds a PUSH socket on a free loopback port and sends `count` messages, cycling through the lines;
// the destructor waits until they are all handed to the peer.
class producer {
 public:
  producer(const std::vector<std::string>& lines, std::size_t count) : socket_(context_, zmq::socket_type::push) {
    socket_.set(zmq::sockopt::sndtimeo, 10000);  // a consumer that went away does not hang the bench
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this, &lines, count] {
      for (std::size_t i = 0; i < count; ++i) {
        const std::string& line = lines[i % lines.size()];
        if (!socket_.send(zmq::buffer(line), zmq::send_flags::none)) return;
      }
    });
  }
  ~producer() { thread_.join(); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
  std::thread thread_;
};

std::size_t bytes_sent(const std::vector<std::string>& lines, std::size_t count) {
  std::size_t cycle = 0;
  for (const auto& line : lines) cycle += line.size();
  std::size_t bytes = count / lines.size() * cycle;
  for (std::size_t i = 0; i < count % lines.size(); ++i) bytes += lines[i].size();
  return bytes;
}

// (a) The plain loop: connect a PULL socket and receive every message, counting them and their bytes.
result plain_loop(const std::vector<std::string>& lines, std::size_t count) {
  producer peer(lines, count);
  ingest::stopwatch clocks;
  zmq::context_t context{1};
  zmq::socket_t pull(context, zmq::socket_type::pull);
  pull.connect(peer.endpoint());
  zmq::message_t message;
  result r;
  while (r.rows < count) {
    if (!pull.recv(message, zmq::recv_flags::none)) break;
    ++r.rows;
    r.bytes += message.size();
  }
  clocks.stop(r);
  return r;
}

// (b) libflow: the zmq source through a session, into the noop sink or foreachBatch.
result libflow_source(flow::session& session, const std::vector<std::string>& lines, std::size_t count,
                      ingest::sink_kind sink) {
  producer peer(lines, count);
  ingest::stopwatch clocks;
  auto messages = session.read_stream()
                      .format("zmq")
                      .option("endpoint", peer.endpoint())
                      .option("socketType", "PULL")
                      .load();
  return ingest::measure(messages, sink, count, bytes_sent(lines, count), clocks);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("zmq_ingest_bench", [&] {
    const std::size_t messages = ingest::number_flag(argc, argv, "messages", 5'000'000);
    const std::size_t runs = ingest::number_flag(argc, argv, "runs", 3);
    const auto lines = quijote_lines();
    flow::session session{argc, argv};
    ingest::summary medians;
    for (std::size_t run = 0; run < runs; ++run) {
      auto plain = plain_loop(lines, messages);
      ingest::print("zmq_ingest", "plain_cppzmq_loop", plain, run, plain);
      medians.add("plain_cppzmq_loop", plain);
      for (auto sink : {ingest::sink_kind::noop, ingest::sink_kind::foreach_batch}) {
        auto ours = libflow_source(session, lines, messages, sink);
        const std::string mode = std::string("libflow_zmq_source_") + ingest::sink_name(sink);
        ingest::print("zmq_ingest", mode, ours, run, plain);
        medians.add(mode, ours);
      }
    }
    medians.print("zmq_ingest", "plain_cppzmq_loop");
    return 0;
  });
}
