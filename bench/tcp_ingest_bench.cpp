// TCP ingest over loopback: a producer thread sends Don Quijote repeated to ~600 MB as lines; read by
// (a) a plain loop over the same POSIX socket calls splitting lines with memchr, and (b) libflow's socket
// source through a session, its rows into the noop sink (the ingest figure) and into foreachBatch.
// One JSON line per mode and run: rows/s, MB/s, the process's CPU seconds and the ratio to the plain
// loop of the same round.
// Usage: tcp_ingest_bench [--mb N (600)] [--runs N (5)] [--flow.threads=N ...]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_input.hpp"
#include "flow/session.hpp"
#include "ingest_support.hpp"

namespace {

using ingest::result;

// Listens on a free loopback port; the first connection gets `repeat` copies of the text, then EOF.
class producer {
 public:
  producer(const std::string& text, std::size_t repeat) {
    listen_fd_ = ingest::listen_on_loopback(port_);
    thread_ = std::thread([this, &text, repeat] {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      for (std::size_t i = 0; i < repeat; ++i) {
        std::string_view rest = text;
        while (!rest.empty()) {
          ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
          if (n <= 0) break;
          rest.remove_prefix(static_cast<std::size_t>(n));
        }
      }
      ::close(fd);
    });
  }
  ~producer() {
    ::shutdown(listen_fd_, SHUT_RDWR);  // ends an accept that never got its connection
    thread_.join();
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// (a) The plain loop: connect, read 256 KiB at a time, split lines, count them and their bytes.
result plain_loop(const std::string& text, std::size_t repeat) {
  producer peer(text, repeat);
  ingest::stopwatch clocks;
  int fd = ingest::connect_to_loopback(peer.port());
  std::vector<char> buffer(256 << 10);
  result r;
  std::size_t partial = 0;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n <= 0) break;
    const char* p = buffer.data();
    const char* end = p + n;
    while (const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))) {
      std::size_t length = partial + static_cast<std::size_t>(nl - p);
      ++r.rows;
      r.bytes += length + 1;
      partial = 0;
      p = nl + 1;
    }
    partial += static_cast<std::size_t>(end - p);
  }
  clocks.stop(r);
  ::close(fd);
  return r;
}

// (b) libflow: the socket source through a session, into the noop sink or foreachBatch.
result libflow_source(flow::session& session, const std::string& text, std::size_t repeat, std::size_t expected_rows,
                      ingest::sink_kind sink) {
  producer peer(text, repeat);
  ingest::stopwatch clocks;
  auto lines = session.read_stream()
                   .format("socket")
                   .option("host", "127.0.0.1")
                   .option("port", static_cast<long long>(peer.port()))
                   .load();
  return ingest::measure(lines, sink, expected_rows, text.size() * repeat, clocks);
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("tcp_ingest_bench", [&] {
    const std::size_t megabytes = ingest::number_flag(argc, argv, "mb", 600);
    const std::size_t runs = ingest::number_flag(argc, argv, "runs", 5);
    const std::string text = ingest::read_quijote();
    const std::size_t repeat = std::max<std::size_t>(1, megabytes * 1000 * 1000 / text.size());
    flow::session session{argc, argv};
    ingest::summary medians;
    for (std::size_t run = 0; run < runs; ++run) {
      auto plain = plain_loop(text, repeat);
      ingest::print("tcp_ingest", "plain_loop", plain, run, plain);
      medians.add("plain_loop", plain);
      for (auto sink : {ingest::sink_kind::noop, ingest::sink_kind::foreach_batch}) {
        auto ours = libflow_source(session, text, repeat, plain.rows, sink);
        const std::string mode = std::string("libflow_socket_source_") + ingest::sink_name(sink);
        ingest::print("tcp_ingest", mode, ours, run, plain);
        medians.add(mode, ours);
      }
    }
    medians.print("tcp_ingest", "plain_loop");
    return 0;
  });
}
