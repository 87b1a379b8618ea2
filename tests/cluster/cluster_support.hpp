// Helpers of the cluster tests: secret files, worker processes on 127.0.0.1 and driver configurations.
#pragma once

#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "flow/session.hpp"
#include "test_support.hpp"

namespace flow::test {

// dir/name holding secret, mode 600 (as read_cluster_secret demands).
// "127.0.0.1:PORT" of a port that was free a moment ago and that nobody listens on (its probe is closed).
inline std::string free_address() {
  listener probe;
  return "127.0.0.1:" + std::to_string(probe.port());
}

inline std::string make_secret_file(const temp_dir& dir, const std::string& name, const std::string& secret) {
  const auto path = dir.path() / name;
  write_file(path, secret + "\n");
  ::chmod(path.c_str(), 0600);
  return path.string();
}

// A worker process listening on 127.0.0.1 (a free port unless listen is given), killed at the end of the
// test. address: HOST:PORT from its "listening" line. Its stderr (the worker's log) goes to log_file.
// launcher: a command that runs the program, such as {"/usr/sbin/ip", "netns", "exec", NAME}.
struct worker_process {
  std::filesystem::path log_file;
  std::unique_ptr<child_process> process;
  std::string address;

  worker_process(const temp_dir& dir, const std::string& secret_file, std::vector<std::string> extra = {},
                 const std::string& program = FLOW_CLUSTER_WORKER, const std::string& listen = "127.0.0.1:0",
                 std::vector<std::string> launcher = {}) {
    static int count = 0;
    log_file = dir.path() / ("worker-" + std::to_string(++count) + ".log");
    std::vector<std::string> args{"--flow.role=worker", "--flow.listen=" + listen, "--flow.secret-file", secret_file};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!launcher.empty()) {
      args.insert(args.begin(), program);
      args.insert(args.begin(), launcher.begin() + 1, launcher.end());
    }
    process = std::make_unique<child_process>(launcher.empty() ? program : launcher.front(), args,
                                              std::filesystem::path{}, log_file);
    const std::regex listening("worker (\\S+): listening \\(build [0-9a-f]+\\)");
    for (int lines = 0; lines < 50 && address.empty(); ++lines) {
      const std::string line = process->read_line(std::chrono::seconds(20));
      std::smatch m;
      if (std::regex_match(line, m, listening)) address = m[1];
      else if (line.empty()) break;
    }
    INFO("worker log: " << read_file(log_file));
    REQUIRE_FALSE(address.empty());
  }
  std::string log() const { return read_file(log_file); }
};

// What a worker's last lines say after SIGTERM: the rows and epochs its instances processed, the file
// bytes its source instances read, and the most bytes one of its instances had sent to an instance on
// another node without its ack (remote_edge_bytes).
struct worker_figures {
  std::int64_t rows = 0, epochs = 0, file_bytes = 0, most_unacked_bytes = 0;
};

inline worker_figures last_figures(worker_process& worker) {
  worker.process->signal(SIGTERM);
  std::string unacked, before_last, last, line;
  while (!(line = worker.process->read_line(std::chrono::seconds(20))).empty()) {
    unacked = before_last;
    before_last = last;
    last = line;
  }
  std::smatch most, read, processed;
  const std::regex unacked_line("worker \\S+: at most ([0-9]+) bytes sent to an instance on another node unacknowledged");
  const std::regex read_line("worker \\S+: read ([0-9]+) bytes of files");
  const std::regex figures("worker \\S+: processed ([0-9]+) rows in ([0-9]+) epochs");
  INFO("the worker's last lines: " << unacked << "\n" << before_last << "\n" << last << "\nits log: " << worker.log());
  REQUIRE(std::regex_match(unacked, most, unacked_line));
  REQUIRE(std::regex_match(before_last, read, read_line));
  REQUIRE(std::regex_match(last, processed, figures));
  return {std::stoll(processed[1]), std::stoll(processed[2]), std::stoll(read[1]), std::stoll(most[1])};
}

inline session_config driver_config(std::vector<std::string> workers, const std::string& secret_file) {
  session_config c;
  c.threads = 2;
  c.workers = std::move(workers);
  c.secret_file = secret_file;
  // Generous: a TLS handshake under the sanitizers on a loaded 2-core machine takes seconds. The test of
  // the bound itself sets the default.
  c.join_timeout = std::chrono::seconds(30);
  return c;
}

}  // namespace flow::test
