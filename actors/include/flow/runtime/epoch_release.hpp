// When a durable query's sink may commit an epoch. The coordinator runs an epoch while its offsets are still
// being written to the checkpoint (their sync off the epoch's path), so the sink holds a complete epoch
// until the coordinator releases it: every epoch up to the released one has its offsets durable. An epoch
// committed by a sink is visible (a memory table, a file); after a crash it must be re-run with the same
// offsets, which only a durable offsets record guarantees. A plain class; the sink actor owns one.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <vector>

namespace flow::runtime {

class epoch_release {
 public:
  // gated: the query has a checkpoint; otherwise every epoch may commit at once.
  explicit epoch_release(bool gated) : released_(gated ? -1 : std::numeric_limits<std::int64_t>::max()) {}

  // The epoch is complete (epochs complete in order): true when it may commit now, else it is held.
  bool complete(std::int64_t epoch) {
    if (held_.empty() && epoch <= released_) return true;
    held_.push_back(epoch);
    return false;
  }

  // Every epoch up to through may commit: the held ones that now may, oldest first.
  std::vector<std::int64_t> release(std::int64_t through) {
    if (through > released_) released_ = through;
    std::vector<std::int64_t> ready;
    while (!held_.empty() && held_.front() <= released_) {
      ready.push_back(held_.front());
      held_.pop_front();
    }
    return ready;
  }

 private:
  std::int64_t released_;
  std::deque<std::int64_t> held_;
};

}  // namespace flow::runtime
