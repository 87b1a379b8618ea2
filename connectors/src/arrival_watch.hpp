// How a source without a receiver thread of its own says when data arrives (source_reader::notify_when_data):
// a thread that, once armed, waits for a file descriptor to become readable (inotify) or a deadline (a
// listing that is due), then calls arrived() once.
#pragma once

#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace flow::connectors {

class arrival_watch {
 public:
  using clock = std::chrono::steady_clock;

  explicit arrival_watch(std::function<void()> arrived);
  ~arrival_watch();
  arrival_watch(const arrival_watch&) = delete;
  arrival_watch& operator=(const arrival_watch&) = delete;

  // Calls arrived() once fd (-1: none) is readable or deadline (none: never) has passed, from the watch's
  // thread. The fd must stay open until the watch is destroyed.
  void arm(int fd, std::optional<clock::time_point> deadline);
  // Forgets an arm() whose call has not come yet.
  void disarm();

 private:
  void run();
  void wake();

  std::function<void()> arrived_;
  int wake_fd_ = -1;  // an eventfd: interrupts the thread's poll when the arming changes
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t arming_ = 0;  // counts arm() and disarm() calls
  bool armed_ = false, stopping_ = false;
  int fd_ = -1;
  std::optional<clock::time_point> deadline_;
  std::thread thread_;
};

}  // namespace flow::connectors
