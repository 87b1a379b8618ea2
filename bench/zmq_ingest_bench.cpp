// ZeroMQ ingest over tcp loopback: a producer thread PUSHes the lines of Don Quijote, repeated, one
// message per line; read by (a) a plain cppzmq PULL loop that counts messages and bytes, and (b) libflow's
// zmq source (PULL, messageFormat text) through a session with a trivial query (a global count,
// delivered by foreachBatch). One JSON line per mode and run: rows/s, MB/s and the ratio to the plain
// loop of the same round.
// Usage: zmq_ingest_bench [--messages N] [--runs N] [--flow.threads=N ...]
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "flow/session.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw flow::error("cannot read " + path);
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

struct result {
  std::size_t rows = 0;
  std::size_t bytes = 0;
  double seconds = 0;
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
  auto started = clock_type::now();
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
  r.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  return r;
}

// (b) libflow: the zmq source through a session; foreachBatch counts the rows of each epoch.
result libflow_source(flow::session& session, const std::vector<std::string>& lines, std::size_t count) {
  producer peer(lines, count);
  std::atomic<std::int64_t> counted{0};
  auto started = clock_type::now();
  auto query = session.read_stream()
                   .format("zmq")
                   .option("endpoint", peer.endpoint())
                   .option("socketType", "PULL")
                   .load("")
                   .write_stream()
                   .foreach_batch([&counted](const flow::batch& rows, std::int64_t) {
                     counted += static_cast<std::int64_t>(rows.num_rows());
                   })
                   .start();
  auto deadline = started + 300s;
  while (counted.load() < static_cast<std::int64_t>(count) && clock_type::now() < deadline)
    std::this_thread::sleep_for(200us);
  result r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  r.rows = static_cast<std::size_t>(counted.load());
  r.bytes = bytes_sent(lines, count);
  query.stop();
  if (auto failure = query.exception()) throw flow::error(*failure);
  if (r.rows != count)
    throw flow::error("libflow counted " + std::to_string(r.rows) + " rows, expected " + std::to_string(count));
  return r;
}

void print(const char* mode, const result& r, std::size_t run, double plain_seconds) {
  std::cout << "{\"bench\":\"zmq_ingest\",\"mode\":\"" << mode << "\",\"run\":" << run << ",\"rows\":" << r.rows
            << ",\"bytes\":" << r.bytes << ",\"seconds\":" << r.seconds
            << ",\"rows_per_s\":" << static_cast<std::int64_t>(r.rows / r.seconds)
            << ",\"MB_per_s\":" << r.bytes / r.seconds / 1e6 << ",\"ratio_to_plain\":" << plain_seconds / r.seconds << "}"
            << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::size_t messages = 5'000'000, runs = 3;
    for (int i = 1; i + 1 < argc; ++i) {
      std::string flag = argv[i];
      if (flag == "--messages") messages = std::stoul(argv[++i]);
      else if (flag == "--runs") runs = std::stoul(argv[++i]);
    }
    const auto lines = read_lines(std::string(FLOW_SHARED_DATA_DIR) + "/text/quijote.txt");
    if (lines.empty()) throw flow::error("quijote.txt has no lines");
    flow::session session{argc, argv};
    for (std::size_t run = 0; run < runs; ++run) {
      auto plain = plain_loop(lines, messages);
      print("plain_cppzmq_loop", plain, run, plain.seconds);
      auto ours = libflow_source(session, lines, messages);
      print("libflow_zmq_source", ours, run, plain.seconds);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "zmq_ingest_bench: " << e.what() << "\n";
    return 1;
  }
}
