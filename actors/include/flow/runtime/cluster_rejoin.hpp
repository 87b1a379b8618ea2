// When a driver tries again to join a worker it lost, or one it could not reach at its start: at once
// when the loss is seen, then after a delay that doubles with each failed try, from first_delay up to
// max_delay; a join ends the tries (and resets the delay for a later loss). Plain C++, no clock of its
// own: the caller passes the time, so the schedule is tested without waiting.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flow::runtime {

class rejoin_schedule {
 public:
  using clock = std::chrono::steady_clock;

  rejoin_schedule(std::chrono::milliseconds first_delay, std::chrono::milliseconds max_delay);

  // A worker not joined (lost, or not reached at the start): its first try is due now. A worker already
  // waiting keeps its schedule.
  void lost(const std::string& address, clock::time_point now);
  // Its try failed: the next is due after the current delay, which then doubles (up to max_delay).
  void failed(const std::string& address, clock::time_point now);
  // It joined: no more tries.
  void joined(const std::string& address);

  // The workers whose try is due at now, by address.
  std::vector<std::string> due(clock::time_point now) const;
  // When the next try is due (nullopt: no worker waits).
  std::optional<clock::time_point> next_due() const;

 private:
  struct waiting {
    clock::time_point next_try;
    std::chrono::milliseconds delay;
  };
  std::chrono::milliseconds first_delay_, max_delay_;
  std::map<std::string, waiting> waiting_;
};

}  // namespace flow::runtime
