// Per-line latency with the default trigger: a producer thread sends, every millisecond, rate/1000 lines
// over loopback TCP, each holding its send time (steady clock, ns); the latency of a line is the time from
// its send to its arrival in (a) a plain blocking read loop over the same socket calls (the floor) and
// (b) libflow's socket source -> parse (cast to int64) -> foreachBatch, stateless and with an aggregation
// (a count per send time in update mode: each output row stands for the lines its count grew by).
// One JSON line per mode and rate: p50/p99/p99.9/max in ms over the lines sent after a warm-up, and the
// process's CPU seconds and context switches (getrusage) while the mode ran, and the batches (epochs) that
// delivered the lines; then the CPU seconds an idle libflow query (its
// producer connected and silent) takes per second.
// Usage: latency_bench [--seconds N (3)] [--flow.threads=N ...]
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_input.hpp"
#include "flow/session.hpp"
#include "ingest_support.hpp"

namespace {

using namespace std::chrono_literals;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(ingest::clock_type::now().time_since_epoch()).count();
}

// Listens on a free loopback port; the first connection gets, every millisecond, lines_per_tick lines holding
// the send time, for warm_up + measured, then EOF. sent() is the number of lines sent once done() holds.
class ticking_producer {
 public:
  ticking_producer(std::size_t lines_per_tick, std::chrono::milliseconds duration) {
    listen_fd_ = ingest::listen_on_loopback(port_);
    thread_ = std::thread([this, lines_per_tick, duration] {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      const int on = 1;  // each tick's lines leave at once: Nagle would hold a small send for an ACK
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      auto next = ingest::clock_type::now();
      const auto end = next + duration;
      std::string lines;
      while (lines_per_tick > 0 && next < end && !stopping_) {
        next += 1ms;
        std::this_thread::sleep_until(next);
        const std::string line = std::to_string(now_ns()) + "\n";
        lines.clear();
        for (std::size_t i = 0; i < lines_per_tick; ++i) lines += line;
        std::string_view rest = lines;
        while (!rest.empty()) {
          ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
          if (n <= 0) break;
          rest.remove_prefix(static_cast<std::size_t>(n));
        }
        sent_ += lines_per_tick;
      }
      while (lines_per_tick == 0 && !stopping_) std::this_thread::sleep_for(10ms);  // idle: connected, silent
      ::close(fd);
      done_ = true;
    });
  }
  ~ticking_producer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // ends an accept that never got its connection
    thread_.join();
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  bool done() const { return done_; }
  std::size_t sent() const { return sent_; }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false}, done_{false};
  std::atomic<std::size_t> sent_{0};
  std::thread thread_;
};

// Latencies (ns) of lines sent from `from` on, each with the number of lines it stands for.
class latencies {
 public:
  explicit latencies(std::int64_t from) : from_(from) {}
  // One delivery of lines: a read of the plain loop, an epoch's batch of libflow.
  void delivered() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++deliveries_;
  }
  std::size_t deliveries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return deliveries_;
  }
  void add(std::int64_t sent, std::int64_t arrived, std::uint64_t lines) {
    std::lock_guard<std::mutex> lock(mutex_);
    received_ += lines;
    if (sent >= from_) samples_.emplace_back(arrived - sent, lines);
  }
  std::size_t received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  // {p50, p99, p99.9, max} in ms, and the lines measured.
  std::pair<std::vector<double>, std::uint64_t> percentiles() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::sort(samples_.begin(), samples_.end());
    std::uint64_t total = 0;
    for (const auto& s : samples_) total += s.second;
    std::vector<double> out;
    for (double q : {0.5, 0.99, 0.999, 1.0}) {
      const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total));
      std::uint64_t seen = 0;
      std::int64_t value = samples_.empty() ? 0 : samples_.back().first;
      for (const auto& s : samples_) {
        seen += s.second;
        if (seen >= std::max<std::uint64_t>(rank, 1)) {
          value = s.first;
          break;
        }
      }
      out.push_back(static_cast<double>(value) / 1e6);
    }
    return {out, total};
  }

 private:
  mutable std::mutex mutex_;
  std::int64_t from_;
  std::size_t received_ = 0, deliveries_ = 0;
  std::vector<std::pair<std::int64_t, std::uint64_t>> samples_;
};

struct mode_run {
  std::chrono::milliseconds warm_up{500};
  std::chrono::milliseconds measured{3000};
  std::size_t lines_per_tick = 0;
};

// Voluntary and involuntary context switches of the process so far.
long context_switches() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_nvcsw + usage.ru_nivcsw;
}

void print(const std::string& mode, std::size_t rate, latencies& measured, const ingest::result& r, long switches) {
  auto [p, lines] = measured.percentiles();
  const auto deliveries = std::max<std::size_t>(1, measured.deliveries());
  std::cout << "{\"bench\":\"latency\",\"mode\":\"" << mode << "\",\"lines_per_s\":" << rate << ",\"lines\":" << lines
            << ",\"p50_ms\":" << p[0] << ",\"p99_ms\":" << p[1] << ",\"p999_ms\":" << p[2] << ",\"max_ms\":" << p[3]
            << ",\"seconds\":" << r.seconds << ",\"cpu_seconds\":" << r.cpu_seconds
            << ",\"deliveries\":" << deliveries << ",\"cpu_us_per_delivery\":" << r.cpu_seconds * 1e6 / deliveries
            << ",\"context_switches\":" << switches << "}" << std::endl;
}

// (a) The floor: a blocking read loop, the time taken once per read for the lines it completes.
ingest::result plain_loop(const mode_run& run, latencies& measured) {
  ticking_producer peer(run.lines_per_tick, run.warm_up + run.measured);
  ingest::stopwatch clocks;
  const int fd = ingest::connect_to_loopback(peer.port());
  std::vector<char> buffer(256 << 10);
  std::size_t kept = 0;  // bytes of an incomplete line at the buffer's start
  while (true) {
    ssize_t n = ::read(fd, buffer.data() + kept, buffer.size() - kept);
    if (n <= 0) break;
    const std::int64_t arrived = now_ns();
    measured.delivered();
    const char* p = buffer.data();
    const char* end = p + kept + n;
    while (const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))) {
      std::int64_t sent = 0;
      std::from_chars(p, nl, sent);
      measured.add(sent, arrived, 1);
      p = nl + 1;
    }
    kept = static_cast<std::size_t>(end - p);
    std::memmove(buffer.data(), p, kept);
  }
  ingest::result r;
  clocks.stop(r);
  ::close(fd);
  return r;
}

// Waits until every line the producer sent has arrived (or the query ended, or 30 s passed without progress).
void await_all(const ticking_producer& peer, const latencies& measured, const flow::streaming_query& query) {
  std::size_t last = 0;
  auto last_change = ingest::clock_type::now();
  while (query.is_active() && (!peer.done() || measured.received() < peer.sent())) {
    std::this_thread::sleep_for(20ms);
    if (measured.received() != last) {
      last = measured.received();
      last_change = ingest::clock_type::now();
    } else if (peer.done() && ingest::clock_type::now() - last_change > 30s) {
      throw flow::error("libflow delivered " + std::to_string(last) + " of " + std::to_string(peer.sent()) + " lines");
    }
  }
  if (auto failure = query.exception()) throw flow::error(*failure);
}

flow::data_frame parsed_lines(flow::session& session, std::uint16_t port) {
  return session.read_stream()
      .format("socket")
      .option("host", "127.0.0.1")
      .option("port", static_cast<long long>(port))
      .load()
      .select({flow::col("value").cast(flow::type_id::int64).as("sent")});
}

// (b) libflow, stateless: every row is a line.
ingest::result libflow_stateless(flow::session& session, const mode_run& run, latencies& measured) {
  ticking_producer peer(run.lines_per_tick, run.warm_up + run.measured);
  ingest::stopwatch clocks;
  auto query = parsed_lines(session, peer.port())
                   .write_stream()
                   .foreach_batch([&measured](const flow::batch& rows, std::int64_t) {
                     const std::int64_t arrived = now_ns();
                     measured.delivered();
                     const std::int64_t* sent = rows.col("sent").ints();
                     for (std::size_t i = 0; i < rows.num_rows(); ++i) measured.add(sent[i], arrived, 1);
                   })
                   .start();
  await_all(peer, measured, query);
  ingest::result r;
  clocks.stop(r);
  query.stop();
  return r;
}

// (b) libflow with an aggregation: a count per send time in update mode; a row stands for the lines its
// count grew by since its previous output.
ingest::result libflow_aggregate(flow::session& session, const mode_run& run, latencies& measured) {
  ticking_producer peer(run.lines_per_tick, run.warm_up + run.measured);
  ingest::stopwatch clocks;
  auto counted = std::make_shared<std::map<std::int64_t, std::int64_t>>();
  auto query = parsed_lines(session, peer.port())
                   .group_by({flow::col("sent")})
                   .count()
                   .write_stream()
                   .output_mode("update")
                   .foreach_batch([&measured, counted](const flow::batch& rows, std::int64_t) {
                     const std::int64_t arrived = now_ns();
                     measured.delivered();
                     const std::int64_t* sent = rows.col("sent").ints();
                     const std::int64_t* count = rows.col("count").ints();
                     for (std::size_t i = 0; i < rows.num_rows(); ++i) {
                       auto& before = (*counted)[sent[i]];
                       measured.add(sent[i], arrived, static_cast<std::uint64_t>(count[i] - before));
                       before = count[i];
                     }
                   })
                   .start();
  await_all(peer, measured, query);
  ingest::result r;
  clocks.stop(r);
  query.stop();
  return r;
}

// CPU seconds per second of an idle libflow query: its producer connected, sending nothing.
double idle_cpu_per_second(flow::session& session, std::chrono::milliseconds measured) {
  ticking_producer peer(0, measured);
  auto query = parsed_lines(session, peer.port()).write_stream().foreach_batch([](const flow::batch&, std::int64_t) {}).start();
  std::this_thread::sleep_for(500ms);  // connected and settled
  ingest::stopwatch clocks;
  std::this_thread::sleep_for(measured);
  ingest::result r;
  clocks.stop(r);
  if (auto failure = query.exception()) throw flow::error(*failure);
  query.stop();
  return r.cpu_seconds / r.seconds;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("latency_bench", [&] {
    mode_run run;
    run.measured = std::chrono::milliseconds(1000 * ingest::number_flag(argc, argv, "seconds", 3));
    flow::session session{argc, argv};
    for (std::size_t rate : {10'000, 100'000, 1'000'000}) {
      run.lines_per_tick = rate / 1000;
      const std::int64_t from_offset = std::chrono::duration_cast<std::chrono::nanoseconds>(run.warm_up).count();
      {
        latencies measured(now_ns() + from_offset);
        const long switches = context_switches();
        const auto r = plain_loop(run, measured);
        print("plain_loop", rate, measured, r, context_switches() - switches);
      }
      {
        latencies measured(now_ns() + from_offset);
        const long switches = context_switches();
        const auto r = libflow_stateless(session, run, measured);
        print("libflow_stateless", rate, measured, r, context_switches() - switches);
      }
      {
        latencies measured(now_ns() + from_offset);
        const long switches = context_switches();
        const auto r = libflow_aggregate(session, run, measured);
        print("libflow_aggregate", rate, measured, r, context_switches() - switches);
      }
    }
    std::cout << "{\"bench\":\"latency\",\"mode\":\"libflow_idle\",\"cpu_seconds_per_second\":"
              << idle_cpu_per_second(session, run.measured) << "}" << std::endl;
    return 0;
  });
}
