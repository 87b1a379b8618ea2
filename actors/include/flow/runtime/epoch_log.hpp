// The coordinator's record of a query's epochs: the write-ahead offset log, commits, and the state
// checkpoint. Plain data, no actors and no timing, so that every recovery decision is unit-tested.
//
// An epoch is committed once the sink has committed it and every state partition has reported the
// groups it changed in it. A committed epoch is never run again: its changes are folded into the
// checkpointed state at once, its log entry is dropped, and a restart restores that state and replays
// only the logged epochs after it. The log therefore holds the epochs in flight and nothing more.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "flow/operators.hpp"
#include "flow/types.hpp"

namespace flow::runtime {

// Info: what the coordinator keeps per epoch besides the offsets (timing and figures for the progress).
template <class Info>
class epoch_log {
 public:
  struct entry {
    std::string start, end;  // offsets, JSON text
    Info info;
  };

  // aggregate: the query's stateful operator or null; partitions: its instances.
  epoch_log(std::shared_ptr<const aggregate_operator> aggregate, std::size_t partitions) {
    if (aggregate)
      for (std::size_t p = 0; p < partitions; ++p) state_.push_back(aggregate->make_state());
  }

  // Write-ahead: logs the next epoch's offsets before it runs; returns its number.
  std::int64_t append(std::string start, std::string end, Info info) {
    const std::int64_t epoch = next_epoch_++;
    log_.emplace(epoch, entry{std::move(start), std::move(end), std::move(info)});
    return epoch;
  }

  entry& at(std::int64_t epoch) {
    auto it = log_.find(epoch);
    if (it == log_.end()) throw error("epoch log: epoch " + std::to_string(epoch) + " is not logged");
    return it->second;
  }

  // The changed groups (state schema) of a state partition in an uncommitted epoch.
  // Returns the epochs this completes, like sink_committed.
  std::vector<std::pair<std::int64_t, entry>> state_changes(std::int64_t epoch, std::size_t partition, batch changed) {
    if (partition >= state_.size())
      throw error("epoch log: state partition " + std::to_string(partition) + " does not exist");
    if (epoch > last_committed_) changes_[epoch].emplace(partition, std::move(changed));
    return advance();
  }

  // The sink committed epoch. Returns the epochs that are now committed, oldest first, each once, with
  // their log entries (which the log no longer keeps).
  std::vector<std::pair<std::int64_t, entry>> sink_committed(std::int64_t epoch) {
    if (epoch > sink_committed_) sink_committed_ = epoch;
    return advance();
  }

  // After a failure: forgets what the uncommitted epochs did and returns them, oldest first, to be run
  // again with the same offsets.
  std::vector<std::int64_t> restart() {
    changes_.clear();
    sink_committed_ = last_committed_;
    std::vector<std::int64_t> replay;
    for (const auto& [epoch, e] : log_) replay.push_back(epoch);
    return replay;
  }

  // A state partition as of the last committed epoch (state schema).
  batch state(std::size_t partition) const { return state_.at(partition)->snapshot(); }

  std::int64_t last_committed() const { return last_committed_; }
  std::int64_t next_epoch() const { return next_epoch_; }
  std::size_t logged() const { return log_.size(); }
  bool stateful() const { return !state_.empty(); }

 private:
  std::vector<std::pair<std::int64_t, entry>> advance() {
    std::vector<std::pair<std::int64_t, entry>> done;
    while (last_committed_ < sink_committed_) {
      const std::int64_t epoch = last_committed_ + 1;
      auto changed = changes_.find(epoch);
      if (stateful()) {
        if (changed == changes_.end() || changed->second.size() < state_.size()) break;
        for (auto& [partition, rows] : changed->second) state_[partition]->replace_groups(rows);
        changes_.erase(changed);
      }
      auto logged = log_.find(epoch);
      if (logged == log_.end()) throw error("epoch log: epoch " + std::to_string(epoch) + " committed but never logged");
      done.emplace_back(epoch, std::move(logged->second));
      log_.erase(logged);
      last_committed_ = epoch;
    }
    return done;
  }

  std::int64_t next_epoch_ = 0;
  std::int64_t last_committed_ = -1;
  std::int64_t sink_committed_ = -1;
  std::map<std::int64_t, entry> log_;
  std::vector<std::unique_ptr<aggregate_state>> state_;                 // as of last_committed_
  std::map<std::int64_t, std::map<std::size_t, batch>> changes_;        // of uncommitted epochs
};

}  // namespace flow::runtime
