// The feed server (tools/feed_server) as a child process, for the suites built with FLOW_FEED_SERVER.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace flow::test {

// Started with its flags on a port (0: a free one), which it reports as "listening on PORT"; killed on
// destruction.
class feed_server {
 public:
  explicit feed_server(std::vector<std::string> flags, int port = 0) { start(std::move(flags), port); }

  // Starts it (again, after kill()) with these flags on this port.
  void start(std::vector<std::string> flags, int port) {
    flags.insert(flags.begin(), {"--port", std::to_string(port)});
    process_ = std::make_unique<child_process>(FLOW_FEED_SERVER, std::move(flags));
    std::string line = process_->read_line();
    REQUIRE(line.rfind("listening on ", 0) == 0);
    port_ = std::stoi(line.substr(13));
  }
  // SIGKILL, and the process reaped.
  void kill() { process_.reset(); }

  int port() const { return port_; }
  std::string url(const std::string& path = "/2/tweets/search/stream") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  std::unique_ptr<child_process> process_;
  int port_ = 0;
};

}  // namespace flow::test
