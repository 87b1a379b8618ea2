// Linux network namespaces for the cluster tests: a worker runs in a namespace of its own, joined to the
// test's namespace by a veth pair, so that its link can be cut (the namespace's end set down) or
// throttled (tc tbf) without touching any other traffic. Needs root (CAP_NET_ADMIN) and iproute2; tests
// ask netns_unavailable() first and skip with its reason.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <array>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace flow::test {

// The full path of an iproute2 program ("ip", "tc"), "" when it is not installed.
inline std::string iproute2_program(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
    if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
  return {};
}

struct command_result {
  int status = -1;  // the exit status, -1 when it did not exit normally
  std::string output;  // stdout and stderr
};

// Runs command through /bin/sh (its words must need no quoting).
inline command_result run_command(const std::string& command) {
  command_result result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 512> buffer;
  while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe)) result.output += buffer.data();
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs command as run_command does; throws with its output when it fails.
inline void run_checked(const std::string& command) {
  const auto result = run_command(command);
  if (result.status != 0) throw std::runtime_error("`" + command + "` failed: " + result.output);
}

// Why this process cannot make network namespaces ("" when it can): not root, no iproute2, or the kernel
// refused a namespace (no CAP_NET_ADMIN, e.g. in an unprivileged container).
inline std::string netns_unavailable() {
  if (::geteuid() != 0) return "network namespace tests need root (CAP_NET_ADMIN); this runs as uid " + std::to_string(::geteuid());
  const std::string ip = iproute2_program("ip"), tc = iproute2_program("tc");
  if (ip.empty() || tc.empty()) return "network namespace tests need iproute2 (ip and tc); install the iproute2 package";
  const std::string probe = "flowtest-probe-" + std::to_string(::getpid());
  const auto added = run_command(ip + " netns add " + probe);
  run_command(ip + " netns del " + probe);
  if (added.status != 0) return "`ip netns add` failed here (no CAP_NET_ADMIN?): " + added.output;
  return {};
}

// A network namespace and the veth pair joining it to this process's namespace, on a /30 of its own in
// 198.18.0.0/15 (RFC 2544's range for network tests, used by no real network): this side host_address(),
// the namespace's side address(). Names and addresses hold the test process's id and an index (0..3), so
// that tests running at once never meet. Removed with its link on destruction, also when a test failed;
// end the processes running in it first (declare it before them). Those of killed test processes are
// removed by the next one made.
class network_namespace {
 public:
  explicit network_namespace(int index)
      : ip_(iproute2_program("ip")),
        tc_(iproute2_program("tc")),
        name_("flowtest-" + std::to_string(::getpid()) + "-" + std::to_string(index)),
        host_device_("fl" + std::to_string(::getpid()) + "h" + std::to_string(index)),
        inner_device_("fl" + std::to_string(::getpid()) + "n" + std::to_string(index)) {
    const std::uint32_t block = (static_cast<std::uint32_t>(::getpid()) % 8192u) * 4u + static_cast<std::uint32_t>(index % 4);
    const std::uint32_t base = (198u << 24 | 18u << 16) + block * 4u;
    host_address_ = dotted(base + 1);
    address_ = dotted(base + 2);
    remove_leftovers();
    remove();  // an earlier process's with this one's id
    try {
      for (const std::string& step : {
               ip_ + " netns add " + name_,
               ip_ + " link add " + host_device_ + " type veth peer name " + inner_device_,
               ip_ + " link set " + inner_device_ + " netns " + name_,
               ip_ + " addr add " + host_address_ + "/30 dev " + host_device_,
               ip_ + " link set " + host_device_ + " up",
               ip_ + " -n " + name_ + " addr add " + address_ + "/30 dev " + inner_device_,
               ip_ + " -n " + name_ + " link set " + inner_device_ + " up",
               ip_ + " -n " + name_ + " link set lo up",
           })
        run_checked(step);
    } catch (...) {
      remove();
      throw;
    }
  }
  ~network_namespace() { remove(); }
  network_namespace(const network_namespace&) = delete;
  network_namespace& operator=(const network_namespace&) = delete;

  const std::string& name() const { return name_; }
  const std::string& address() const { return address_; }
  const std::string& host_address() const { return host_address_; }
  // The command prefix that runs a program inside (worker_process's launcher).
  std::vector<std::string> launcher() const { return {ip_, "netns", "exec", name_}; }

  // The namespace's end down: the other end loses its carrier and the link drops everything, both ways,
  // with no FIN and no RST: a pulled cable as the peer sees it.
  void cut() { run_checked(ip_ + " -n " + name_ + " link set " + inner_device_ + " down"); }
  // Both ends send at most `rate` (tc's units: "8mbit") through a token bucket that queues up to 400 ms.
  void throttle(const std::string& rate) {
    const std::string tbf = " root tbf rate " + rate + " burst 64kbit latency 400ms";
    run_checked(tc_ + " qdisc add dev " + host_device_ + tbf);
    run_checked(ip_ + " netns exec " + name_ + " " + tc_ + " qdisc add dev " + inner_device_ + tbf);
  }

 private:
  static std::string dotted(std::uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." + std::to_string(a >> 8 & 255) + "." +
           std::to_string(a & 255);
  }
  // The namespaces and links of test processes that are gone (killed: no destructor ran, e.g. at a
  // ctest timeout).
  void remove_leftovers() const {
    std::istringstream names(run_command(ip_ + " netns list").output);
    for (std::string name; names >> name;) {
      unsigned long pid = 0;
      int index = 0;
      if (std::sscanf(name.c_str(), "flowtest-%lu-%d", &pid, &index) != 2) continue;
      if (pid == static_cast<unsigned long>(::getpid()) || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
      run_command(ip_ + " link del fl" + std::to_string(pid) + "h" + std::to_string(index));
      run_command(ip_ + " netns del " + name);
    }
  }
  // Deleting either end of a veth pair deletes both.
  void remove() {
    run_command(ip_ + " link del " + host_device_);
    run_command(ip_ + " netns del " + name_);
  }

  std::string ip_, tc_, name_, host_device_, inner_device_, host_address_, address_;
};

// A veth pair joining two namespaces directly (besides each one's link to this process), with a route in
// each to the other's address(): their workers then reach each other without this process. Removed on
// destruction; declare it after both namespaces.
class namespace_link {
 public:
  namespace_link(const network_namespace& a, const network_namespace& b)
      : ip_(iproute2_program("ip")),
        a_(a.name()),
        b_(b.name()),
        a_address_(a.address()),
        b_address_(b.address()),
        a_device_("fl" + std::to_string(::getpid()) + "pa"),
        b_device_("fl" + std::to_string(::getpid()) + "pb") {
    remove();
    try {
      for (const std::string& step : {
               ip_ + " link add " + a_device_ + " type veth peer name " + b_device_,
               ip_ + " link set " + a_device_ + " netns " + a.name(),
               ip_ + " link set " + b_device_ + " netns " + b.name(),
               ip_ + " -n " + a.name() + " link set " + a_device_ + " up",
               ip_ + " -n " + b.name() + " link set " + b_device_ + " up",
               ip_ + " -n " + a.name() + " route add " + b.address() + "/32 dev " + a_device_,
               ip_ + " -n " + b.name() + " route add " + a.address() + "/32 dev " + b_device_,
           })
        run_checked(step);
    } catch (...) {
      remove();
      throw;
    }
  }
  ~namespace_link() { remove(); }
  namespace_link(const namespace_link&) = delete;
  namespace_link& operator=(const namespace_link&) = delete;

  // The first namespace's end down: no FIN, no RST, as network_namespace::cut.
  void cut() { run_checked(ip_ + " -n " + a_ + " link set " + a_device_ + " down"); }
  // The cut link working again: its end up and both routes back (the kernel drops a route whose device
  // goes down).
  void restore() {
    run_checked(ip_ + " -n " + a_ + " link set " + a_device_ + " up");
    run_checked(ip_ + " -n " + a_ + " route replace " + b_address_ + "/32 dev " + a_device_);
    run_checked(ip_ + " -n " + b_ + " route replace " + a_address_ + "/32 dev " + b_device_);
  }

 private:
  void remove() { run_command(ip_ + " -n " + a_ + " link del " + a_device_); }

  std::string ip_, a_, b_, a_address_, b_address_, a_device_, b_device_;
};

}  // namespace flow::test
