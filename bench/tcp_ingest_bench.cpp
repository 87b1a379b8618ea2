// TCP ingest over loopback: a producer thread sends Don Quijote repeated to ~200 MB as lines; read by
// (a) a plain loop over the same POSIX socket calls splitting lines with memchr, and (b) libflow's socket
// source through a session with a trivial query (a global count, delivered by foreachBatch).
// One JSON line per run: rows/s, MB/s and the ratio to the plain loop of the same round.
// Usage: tcp_ingest_bench [--mb N] [--runs N] [--flow.threads=N ...]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "flow/session.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw flow::error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Listens on a free loopback port; the first connection gets `repeat` copies of the text, then EOF.
class producer {
 public:
  producer(const std::string& text, std::size_t repeat) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(listen_fd_, 1) != 0)
      throw flow::error(std::string("producer: cannot listen: ") + std::strerror(errno));
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
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

struct result {
  std::size_t rows = 0;
  std::size_t bytes = 0;
  double seconds = 0;
};

// (a) The plain loop: connect, read 256 KiB at a time, split lines, count them and their bytes.
result plain_loop(const std::string& text, std::size_t repeat) {
  producer peer(text, repeat);
  auto started = clock_type::now();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(peer.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw flow::error("plain loop: cannot connect");
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
  r.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  ::close(fd);
  return r;
}

// (b) libflow: the socket source through a session; foreachBatch counts the rows of each epoch.
result libflow_source(flow::session& session, const std::string& text, std::size_t repeat, std::size_t expected_rows) {
  producer peer(text, repeat);
  std::atomic<std::int64_t> counted{0};
  auto started = clock_type::now();
  auto query = session.read_stream()
                   .format("socket")
                   .option("host", std::string("127.0.0.1"))
                   .option("port", static_cast<long long>(peer.port()))
                   .load("")
                   .write_stream()
                   .foreach_batch([&counted](const flow::batch& rows, std::int64_t) {
                     counted += static_cast<std::int64_t>(rows.num_rows());
                   })
                   .start();
  auto deadline = started + 300s;
  while (counted.load() < static_cast<std::int64_t>(expected_rows) && clock_type::now() < deadline)
    std::this_thread::sleep_for(200us);
  result r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  r.rows = static_cast<std::size_t>(counted.load());
  r.bytes = text.size() * repeat;
  query.stop();
  if (auto failure = query.exception()) throw flow::error(*failure);
  if (r.rows != expected_rows)
    throw flow::error("libflow counted " + std::to_string(r.rows) + " rows, expected " + std::to_string(expected_rows));
  return r;
}

void print(const char* mode, const result& r, std::size_t run, double plain_seconds) {
  std::cout << "{\"bench\":\"tcp_ingest\",\"mode\":\"" << mode << "\",\"run\":" << run << ",\"rows\":" << r.rows
            << ",\"bytes\":" << r.bytes << ",\"seconds\":" << r.seconds
            << ",\"rows_per_s\":" << static_cast<std::int64_t>(r.rows / r.seconds)
            << ",\"MB_per_s\":" << r.bytes / r.seconds / 1e6 << ",\"ratio_to_plain\":" << plain_seconds / r.seconds << "}"
            << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::size_t megabytes = 200, runs = 3;
    for (int i = 1; i + 1 < argc; ++i) {
      std::string flag = argv[i];
      if (flag == "--mb") megabytes = std::stoul(argv[++i]);
      else if (flag == "--runs") runs = std::stoul(argv[++i]);
    }
    const std::string text = read_all(std::string(FLOW_SHARED_DATA_DIR) + "/text/quijote.txt");
    const std::size_t repeat = std::max<std::size_t>(1, megabytes * 1000 * 1000 / text.size());
    flow::session session{argc, argv};
    for (std::size_t run = 0; run < runs; ++run) {
      auto plain = plain_loop(text, repeat);
      print("plain_loop", plain, run, plain.seconds);
      auto ours = libflow_source(session, text, repeat, plain.rows);
      print("libflow_socket_source", ours, run, plain.seconds);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tcp_ingest_bench: " << e.what() << "\n";
    return 1;
  }
}
