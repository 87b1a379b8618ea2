// The tests' child processes (a cluster test's workers) die with the test process: a test that ctest
// kills at its timeout leaves no worker behind to disturb later tests and benches.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "test_support.hpp"

namespace {

// Whether the process runs (a zombie, dead but not yet reaped by its new parent, does not).
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto name_end = text.rfind(')');
  return name_end != std::string::npos && name_end + 2 < text.size() && text[name_end + 2] != 'Z' &&
         text[name_end + 2] != 'X';
}

}  // namespace

TEST_CASE("a test's child process dies when the test process is SIGKILLed", "[cluster][child_process]") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  // The test process stands in for a test that ctest kills: it starts a child and waits to be killed.
  const pid_t test_process = fork();
  REQUIRE(test_process >= 0);
  if (test_process == 0) {
    close(fds[0]);
    try {
      flow::test::child_process child("/bin/sleep", {"60"});
      const pid_t pid = child.pid();
      if (write(fds[1], &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) _exit(1);
      pause();
    } catch (...) {
    }
    _exit(1);
  }
  close(fds[1]);
  pid_t child = -1;
  pollfd readable{fds[0], POLLIN, 0};
  REQUIRE(poll(&readable, 1, 30000) == 1);
  REQUIRE(read(fds[0], &child, sizeof child) == static_cast<ssize_t>(sizeof child));
  close(fds[0]);
  REQUIRE(child > 0);
  CHECK(running(child));

  REQUIRE(kill(test_process, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(test_process, &status, 0) == test_process);
  CHECK(WIFSIGNALED(status));
  const bool gone = flow::test::eventually([&] { return !running(child); }, std::chrono::seconds(10));
  if (!gone) kill(child, SIGKILL);
  CHECK(gone);
}
