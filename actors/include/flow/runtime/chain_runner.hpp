// One instance of a vertex's fused operator chain: each batch passes the operators in order, each
// operator's emits feed the next one, the last one's reach `out`. It owns the operators' states.
// Plain C++, no actors: the vertex actor feeds it messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/state_backend.hpp"
#include "flow/stream_operator.hpp"
#include "flow/runtime/progress.hpp"

namespace flow::runtime {

// Where states keep their data: with the "memory" backend in themselves, with another (RocksDB) in a
// store under directory, which belongs to this one user of it (an instance, or the coordinator's copy).
struct state_placement {
  state_backend_config backend;
  std::string directory;
  // Makes op's state (null when stateless) and hands it its backend; part names its directory.
  std::unique_ptr<operator_state> make_state(const stream_operator& op, const std::string& part) const;
};

// A state as of some moment, in the form the state keeps it: its rows (operator_state::snapshot()), or for
// a state that snapshots_to_directory() (RocksDB) a directory snapshot_to wrote, so that a large state
// never passes through memory. Made from rows implicitly.
struct state_copy {
  state_copy(batch snapshot = {}) : rows(std::move(snapshot)) {}
  static state_copy in_directory(std::string directory) {
    state_copy copy;
    copy.directory = std::move(directory);
    return copy;
  }
  batch rows;
  std::string directory;  // empty: rows
};

// state's copy: snapshot_to(directory) (which must not exist; its parents are created) when it snapshots to
// a directory, else its rows (directory unused).
state_copy copy_state(const operator_state& state, const std::string& directory);
// Replaces state by copy (restore_from its directory, or restore its rows); an empty copy leaves it as it is.
void restore_state(operator_state& state, const state_copy& copy);

class chain_runner {
 public:
  // out(seq, rows) receives the chain's output.
  using output = std::function<void(std::uint64_t seq, batch rows)>;

  chain_runner(std::vector<operator_ptr> chain, std::size_t instance, std::size_t parallelism, output out,
               const state_placement& placement = {});
  ~chain_runner();
  chain_runner(const chain_runner&) = delete;
  chain_runner& operator=(const chain_runner&) = delete;

  // Durable states, in chain order: what the coordinator checkpoints (one slot each).
  std::size_t durable_states() const { return durable_.size(); }
  void restore(std::size_t durable_index, const state_copy& copy);

  // A batch of the epoch from input `input`; what it causes is output with seq.
  void process(std::int64_t epoch, std::uint64_t seq, std::size_t input, const batch& rows);
  // Every operator's end_epoch, in chain order; what they emit is output with seq.
  void end_epoch(std::int64_t epoch, std::uint64_t seq);
  // The watermark and processing time the epoch runs with, before its first batch: operators see both
  // through their context, and when the watermark is later than the previous one every operator's
  // on_watermark runs (what they emit: seq).
  void start_epoch_clocks(std::int64_t epoch, std::uint64_t seq, std::int64_t watermark, std::int64_t processing_time);
  // Adds what the operators counted since the previous call to stats: rows dropped by the watermark (at
  // first_state_operator + the stateful operator's index in the chain) and the event times seen.
  void take_event_time_figures(epoch_stats& stats, std::size_t first_state_operator);
  // Each durable state's take_changes(), in chain order.
  std::vector<batch> take_changes();

  // The name of the operator the last call reached (for the error of a call that threw); empty if none.
  std::string running_operator() const { return running_ ? running_->op->name() : std::string(); }

  // Of the durable state durable_index, for the progress report (stream_operator::state_rows and
  // state_rows_updated, of changes: its take_changes() in the epoch that ran last).
  std::size_t state_rows(std::size_t durable_index) const;
  std::size_t state_rows_updated(std::size_t durable_index, const batch& changes) const;
  // stream_operator::state_rows_removed of changes plus the rows the operator counted since the previous call.
  std::size_t state_rows_removed(std::size_t durable_index, const batch& changes);
  std::size_t state_memory_bytes(std::size_t durable_index) const;
  // Time spent in the operator's process calls since the previous call.
  std::chrono::microseconds take_update_time(std::size_t durable_index);

 private:
  class context;
  void push(std::size_t position, const batch& rows);
  void run_process(std::size_t position, const batch& rows, std::size_t input);

  struct stage {
    operator_ptr op;
    std::unique_ptr<operator_state> state;
    std::chrono::steady_clock::duration update_time{};  // in process(), measured for durable states only
    std::size_t stateful_index = 0;  // its durable state's index, or the next durable state's for the others
    std::size_t rows_removed = 0;    // operator_context::count_state_rows_removed since state_rows_removed
  };
  std::vector<stage> stages_;
  std::vector<std::size_t> durable_;  // positions of durable states
  std::vector<std::unique_ptr<context>> contexts_;
  std::size_t instance_, parallelism_;
  output out_;
  const stage* running_ = nullptr;
  std::int64_t epoch_ = -1;
  std::uint64_t seq_ = 0;
  std::int64_t watermark_ = operator_context::no_watermark;
  std::optional<std::int64_t> processing_time_;  // none before the first start_epoch_clocks: the context's default
  epoch_stats event_time_figures_;  // since the last take_event_time_figures, at the chain's own indexes
};

}  // namespace flow::runtime
