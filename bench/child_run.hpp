// Runs one benchmark run in a forked child process, so that each run has its own heap, peak RSS and
// address-space limit, and hands back what the run returned as text.
#pragma once

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>

namespace bench {

struct child_result {
  std::string text;  // what body returned (empty when the child died before writing it)
  int status = 0;    // waitpid's status
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Called in a child right after fork(): it is SIGKILLed when its parent dies (a bench stopped by a timeout
// leaves no workers behind), or exits at once if the parent died already. PDEATHSIG fires when the forking
// thread ends: the benches fork from their main thread.
inline void die_with_parent(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(125);
}

// body runs in the child; an exception there is printed on stderr, prefixed by program, and the child
// exits 1. Throws std::runtime_error when the pipe or the fork fails.
inline child_result run_in_child(const std::string& program, const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    die_with_parent(parent);
    close(fds[0]);
    std::string text;
    try {
      text = body();
    } catch (const std::exception& e) {
      std::cerr << program << ": a benchmark run failed: " << e.what() << std::endl;
      _exit(1);
    }
    for (std::size_t done = 0; done < text.size();) {
      const auto n = write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) _exit(1);
      done += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  child_result result;
  char buf[65536];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) result.text.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  waitpid(pid, &result.status, 0);
  return result;
}

}  // namespace bench
