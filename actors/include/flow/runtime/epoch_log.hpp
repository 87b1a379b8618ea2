// The coordinator's record of a query's epochs: the write-ahead offset log, commits, and the state
// checkpoint. Plain data, no actors and no timing, so that every recovery decision is unit-tested.
//
// An epoch is committed once every sink has committed it and every durable operator state (one per
// stateful operator instance: a "slot") has reported what it changed in it. A committed epoch is never run
// again: its changes are folded into the checkpointed state at once, its log entry is dropped (handed to the
// caller with those changes, for a durable checkpoint), and a restart restores that state and replays only
// the logged epochs after it. The log therefore holds the epochs in flight and nothing more. A log resumed
// from a durable checkpoint (resume) starts with its states restored and its uncommitted epochs logged.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow/runtime/state_loan.hpp"
#include "flow/stream_operator.hpp"
#include "flow/types.hpp"

namespace flow::runtime {

// The offsets of one epoch: one JSON text per source, the event-time watermark it runs with
// (operator_context::no_watermark: none) and its processing time (operator_context::processing_time;
// nullopt in a log written before it was logged).
struct logged_offsets {
  std::int64_t epoch = 0;
  std::vector<std::string> start, end;
  std::int64_t watermark = operator_context::no_watermark;
  std::optional<std::int64_t> processing_time{};
  // Per source (or none): its plan record of the epoch (plan_logging_source::plan_record), empty for none.
  std::vector<std::string> plans = {};
};

// Info: what the coordinator keeps per epoch besides the offsets (timing and figures for the progress).
template <class Info>
class epoch_log {
 public:
  struct entry {
    std::vector<std::string> start, end;  // offsets per source, JSON text
    Info info;
    std::vector<batch> changes;  // per slot, filled when the epoch commits: what it changed in the state
  };

  // states: an empty state per slot (its operator's make_state()); sinks: how many must commit an epoch.
  epoch_log(std::vector<std::unique_ptr<operator_state>> states, std::size_t sinks)
      : sink_committed_(std::max<std::size_t>(1, sinks), -1) {
    for (auto& state : states) {
      state_.push_back(std::move(state));
      loans_.push_back(std::make_shared<state_loans>());
    }
  }

  // Write-ahead: logs the next epoch's offsets before it runs; returns its number.
  std::int64_t append(std::vector<std::string> start, std::vector<std::string> end, Info info) {
    const std::int64_t epoch = next_epoch_++;
    log_.emplace(epoch, entry{std::move(start), std::move(end), std::move(info), {}});
    return epoch;
  }

  // Continues a query from its durable checkpoint: the states (given to the constructor, restored by the
  // caller) are as of last_committed, and uncommitted holds the logged epochs after it, oldest first, contiguous.
  // Returns them, to be run again with the same offsets. Only on a fresh log.
  std::vector<std::int64_t> resume(std::int64_t last_committed, const std::vector<logged_offsets>& uncommitted) {
    if (next_epoch_ != 0) throw error("epoch log: resume on a log that already ran epochs");
    last_committed_ = last_committed;
    next_epoch_ = last_committed + 1;
    for (auto& committed : sink_committed_) committed = last_committed;
    std::vector<std::int64_t> replay;
    for (const auto& logged : uncommitted) {
      if (logged.epoch != next_epoch_)
        throw error("epoch log: resumed epoch " + std::to_string(logged.epoch) + " does not follow epoch " +
                    std::to_string(next_epoch_ - 1));
      log_.emplace(logged.epoch, entry{logged.start, logged.end, Info{}, {}});
      replay.push_back(next_epoch_++);
    }
    return replay;
  }

  entry& at(std::int64_t epoch) {
    auto it = log_.find(epoch);
    if (it == log_.end()) throw error("epoch log: epoch " + std::to_string(epoch) + " is not logged");
    return it->second;
  }

  // What a state slot changed in an uncommitted epoch (operator_state::take_changes).
  // Returns the epochs this completes, like sink_committed.
  std::vector<std::pair<std::int64_t, entry>> state_changes(std::int64_t epoch, std::size_t slot, batch changed) {
    if (slot >= state_.size()) throw error("epoch log: state slot " + std::to_string(slot) + " does not exist");
    if (epoch > last_committed_) changes_[epoch].emplace(slot, std::move(changed));
    return advance();
  }

  // A sink committed epoch. Returns the epochs that are now committed, oldest first, each once, with
  // their log entries (which the log no longer keeps).
  std::vector<std::pair<std::int64_t, entry>> sink_committed(std::int64_t epoch, std::size_t sink = 0) {
    if (sink >= sink_committed_.size()) throw error("epoch log: sink " + std::to_string(sink) + " does not exist");
    if (epoch > sink_committed_[sink]) sink_committed_[sink] = epoch;
    return advance();
  }

  // After a failure: forgets what the uncommitted epochs did and returns them, oldest first, to be run
  // again with the same offsets.
  std::vector<std::int64_t> restart() {
    changes_.clear();
    for (auto& committed : sink_committed_) committed = last_committed_;
    std::vector<std::int64_t> replay;
    for (const auto& [epoch, e] : log_) replay.push_back(epoch);
    return replay;
  }

  // A state slot as of the last committed epoch (copied with snapshot() or snapshot_to a directory).
  const operator_state& slot_state(std::size_t slot) const { return *state_.at(slot); }
  // The same, for one copy on another thread: the slot's next committed change waits until it is taken.
  std::shared_ptr<state_loans::loan> lend_slot_state(std::size_t slot) {
    return state_loans::lend(loans_.at(slot), state_.at(slot));
  }
  std::size_t slots() const { return state_.size(); }

  std::int64_t last_committed() const { return last_committed_; }
  std::int64_t next_epoch() const { return next_epoch_; }
  std::size_t logged() const { return log_.size(); }
  bool stateful() const { return !state_.empty(); }

 private:
  std::vector<std::pair<std::int64_t, entry>> advance() {
    std::vector<std::pair<std::int64_t, entry>> done;
    const std::int64_t all_sinks = *std::min_element(sink_committed_.begin(), sink_committed_.end());
    while (last_committed_ < all_sinks) {
      const std::int64_t epoch = last_committed_ + 1;
      auto changed = changes_.find(epoch);
      std::vector<batch> changes;
      if (stateful()) {
        if (changed == changes_.end() || changed->second.size() < state_.size()) break;
        for (auto& [slot, rows] : changed->second) {
          loans_[slot]->wait_returned();
          state_[slot]->apply_changes(rows);
          changes.push_back(std::move(rows));  // slot order: the map is ordered by slot
        }
        changes_.erase(changed);
      }
      auto logged = log_.find(epoch);
      if (logged == log_.end()) throw error("epoch log: epoch " + std::to_string(epoch) + " committed but never logged");
      logged->second.changes = std::move(changes);
      done.emplace_back(epoch, std::move(logged->second));
      log_.erase(logged);
      last_committed_ = epoch;
    }
    return done;
  }

  std::int64_t next_epoch_ = 0;
  std::int64_t last_committed_ = -1;
  std::map<std::int64_t, entry> log_;
  std::vector<std::shared_ptr<operator_state>> state_;            // as of last_committed_
  std::vector<std::shared_ptr<state_loans>> loans_;               // per slot
  std::vector<std::int64_t> sink_committed_;                      // per sink
  std::map<std::int64_t, std::map<std::size_t, batch>> changes_;  // of uncommitted epochs
};

}  // namespace flow::runtime
