#include "arrival_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "flow/types.hpp"

namespace flow::connectors {

arrival_watch::arrival_watch(std::function<void()> arrived) : arrived_(std::move(arrived)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw error(std::string("cannot create an eventfd to watch for new data: ") + std::strerror(errno));
  thread_ = std::thread([this] { run(); });
}

arrival_watch::~arrival_watch() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake();
  thread_.join();
  ::close(wake_fd_);
}

void arrival_watch::wake() {
  changed_.notify_all();
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
}

void arrival_watch::arm(int fd, std::optional<clock::time_point> deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++arming_;
    armed_ = true;
    fd_ = fd;
    deadline_ = deadline;
  }
  wake();
}

void arrival_watch::disarm() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++arming_;
    armed_ = false;
  }
  wake();
}

void arrival_watch::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return armed_ || stopping_; });
    if (stopping_) return;
    const auto arming = arming_;
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd_, POLLIN, 0}};  // poll() skips a negative fd
    const auto deadline = deadline_;
    int timeout = -1;
    if (deadline) {
      // poll() takes an int: a longer wait (more than ~24.8 days) ends early and is looked at again below.
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now()).count();
      timeout = static_cast<int>(std::clamp<std::int64_t>(left, 0, std::numeric_limits<int>::max()));
    }
    lock.unlock();
    const int ready = ::poll(fds, 2, timeout);
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t count = 0;
      [[maybe_unused]] auto drained = ::read(wake_fd_, &count, sizeof count);
    }
    const bool due = (ready == 0 && clock::now() >= *deadline) || (ready > 0 && fds[1].revents != 0);
    lock.lock();
    if (!due || arming != arming_ || !armed_) continue;  // woken, re-armed or disarmed meanwhile: look again
    armed_ = false;
    lock.unlock();
    arrived_();
    lock.lock();
  }
}

}  // namespace flow::connectors
