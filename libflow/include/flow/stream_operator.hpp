// The one interface every operator of a dataflow graph implements: the built-in ones (select, where,
// map_batches, the aggregation) and the user's own. An operator is an immutable description shared by all
// instances of its vertex; whatever it changes lives in an operator_state the runtime makes for each
// instance, hands to every call, snapshots after each epoch and restores after a failure. Writing an
// operator needs this header only (keyed operators: flow/keyed_operator.hpp, which includes it).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/batch.hpp"
#include "flow/state_backend.hpp"

namespace flow {

// How another process rebuilds an operator: the name it is registered under (flow::register_operator)
// and its arguments, encoded as that factory reads them.
struct operator_descriptor {
  std::string name;
  std::string arguments;
  friend bool operator==(const operator_descriptor&, const operator_descriptor&) = default;
};

// Event times seen (microseconds since the epoch, UTC): the earliest, the latest, their sum and count.
struct event_time_stats {
  std::int64_t min = std::numeric_limits<std::int64_t>::max();
  std::int64_t max = std::numeric_limits<std::int64_t>::min();
  double sum = 0;
  std::int64_t count = 0;
  void add(const event_time_stats& o) {
    if (o.count == 0) return;
    min = std::min(min, o.min);
    max = std::max(max, o.max);
    sum += o.sum;
    count += o.count;
  }
};

// What an operator may do while the runtime calls it. Valid only during the call.
class operator_context {
 public:
  virtual ~operator_context() = default;
  // Hands rows to the next operator of the chain (or the vertex's outputs). Rows of output_schema().
  virtual void emit(batch rows) = 0;
  virtual std::int64_t epoch() const = 0;
  // This instance's index among the vertex's parallelism() instances (its partition of the keys).
  virtual std::size_t instance() const = 0;
  virtual std::size_t parallelism() const = 0;
  // The event-time watermark this epoch runs with (microseconds since the epoch, UTC; docs/event-time-and-state.md),
  // no_watermark while the query has none yet. Stateful operators drop rows older than it.
  static constexpr std::int64_t no_watermark = std::numeric_limits<std::int64_t>::min();
  virtual std::int64_t watermark() const { return no_watermark; }
  // The epoch's processing time (milliseconds since the Unix epoch, UTC; Spark's batch timestamp): the
  // coordinator fixes it when it plans the epoch and logs it with the offsets, so that a replayed epoch sees
  // the value of its first run. A context that fixes none answers the system clock.
  virtual std::int64_t processing_time() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // Counts rows a stateful operator dropped as older than the watermark (progress: numRowsDroppedByWatermark).
  virtual void count_rows_dropped_by_watermark(std::size_t /*rows*/) {}
  // Counts rows an operator that keeps several under one key removed from its state (progress:
  // numRowsRemoved; stream_operator::state_rows_removed).
  virtual void count_state_rows_removed(std::size_t /*rows*/) {}
  // A with_watermark operator reports the event times of a batch of its watermarked input (the index the
  // query numbers them by: flow::watermark_input).
  virtual void observe_event_times(std::size_t /*input*/, const event_time_stats& /*seen*/) {}
};

// The mutable state of one operator instance. The runtime owns it: it keeps a copy as of the last
// committed epoch (folding in take_changes() after each epoch with apply_changes) and gives a restarted
// instance that copy's snapshot() through restore().
class operator_state {
 public:
  virtual ~operator_state() = default;
  // The whole state as rows (any schema the operator chooses).
  virtual batch snapshot() const = 0;
  // Replaces the state by a snapshot().
  virtual void restore(const batch& snapshot) = 0;
  // What changed since the previous call, as rows apply_changes folds into another copy of this state:
  // after a.apply_changes(b.take_changes()) a holds what b holds (when it held what b held before).
  virtual batch take_changes() = 0;
  virtual void apply_changes(const batch& changes) = 0;
  // For the progress report (numRowsTotal, memoryUsedBytes).
  virtual std::size_t num_rows() const = 0;
  virtual std::size_t memory_bytes() const = 0;
  // False for scratch space that is empty at every epoch's end (a partial aggregation's buffer): the
  // runtime neither checkpoints nor restores it.
  virtual bool durable() const { return true; }

  // Called by the runtime right after make_state(), before any other call: keep the state in the given
  // backend, with working files in instance_directory (one per operator instance). States that support
  // only memory ignore it.
  virtual void use_backend(const state_backend_config& /*config*/, const std::string& /*instance_directory*/) {}
  // True when the state lives on disk and checkpoints as a directory: the runtime then calls snapshot_to
  // and restore_from instead of snapshot() and restore() (both still work, and hold the whole state).
  virtual bool snapshots_to_directory() const { return false; }
  // A copy of the state as of the last take_changes() or apply_changes() in directory (which must not
  // exist). Files shared with earlier snapshots are hard links: the cost follows what changed.
  virtual void snapshot_to(const std::string& directory) const {
    throw error("operator_state::snapshot_to(" + directory + "): this state snapshots as rows (snapshot()), not to a directory");
  }
  // Replaces the state by a snapshot_to() directory.
  virtual void restore_from(const std::string& directory) {
    throw error("operator_state::restore_from(" + directory + "): this state restores from rows (restore()), not a directory");
  }
};

class stream_operator {
 public:
  virtual ~stream_operator() = default;
  // For explain(), progress and error messages.
  virtual std::string name() const = 0;
  virtual const schema_ptr& output_schema() const = 0;
  // The columns the input must be hash-partitioned by (every row of a key reaches the same instance);
  // empty: any partitioning will do. A vertex that starts with such an operator gets a hash edge.
  virtual std::vector<std::string> key_columns() const { return {}; }
  // True when process() reads the keys of key_columns() that a hash edge encoded with the batch
  // (batch::attached_keys): the edge into the vertex then encodes them instead of only hashing them.
  virtual bool reads_attached_keys() const { return false; }
  // The input columns (indexes, ascending) the operator reads when its output depends on those alone;
  // nullopt: it may read any. A source vertex whose chain starts with such an operator decodes only those
  // columns where its format can skip the others (csv: the others are null, their text not converted).
  virtual std::optional<std::vector<std::size_t>> columns_read() const { return std::nullopt; }
  // Null for a stateless operator.
  virtual std::unique_ptr<operator_state> make_state() const { return nullptr; }
  // One batch of the epoch (input: which input of a two-input operator, else 0). state is make_state()'s
  // object of this instance (null when stateless). May emit zero or more batches.
  virtual void process(const batch& input, std::size_t input_index, operator_state* state,
                       operator_context& ctx) const = 0;
  // Every input of the epoch has been processed.
  virtual void end_epoch(operator_state* /*state*/, operator_context& /*ctx*/) const {}
  // How to rebuild this operator in another process; nullopt when it cannot be shipped (serializing a
  // graph that holds it fails, naming it).
  virtual std::optional<operator_descriptor> descriptor() const { return std::nullopt; }
  // Event time passed watermark (microseconds since the epoch, UTC) on every input: called when an epoch
  // starts with a watermark later than the previous epoch's, before its first batch.
  virtual void on_watermark(std::int64_t /*watermark*/, operator_state* /*state*/, operator_context& /*ctx*/) const {}
  // For the progress report (stateOperators): the rows state holds (numRowsTotal), and how many of them the
  // epoch wrote, given its take_changes() (numRowsUpdated). A row of the state or of its changes counts one
  // unless the operator keeps several under one key (a session window: one per session).
  virtual std::size_t state_rows(const operator_state& state) const { return state.num_rows(); }
  virtual std::size_t state_rows_updated(const batch& changes, std::int64_t /*epoch*/) const {
    return changes.num_rows();
  }
  // The rows the epoch removed (numRowsRemoved), given its take_changes(): its rows flagged "__deleted" (a
  // keyed state's removed keys). An operator that keeps several rows under one key answers 0 and counts them
  // as it removes them (operator_context::count_state_rows_removed); the runtime adds both.
  virtual std::size_t state_rows_removed(const batch& changes) const {
    if (!changes.valid()) return 0;
    const auto deleted = changes.schema().find("__deleted");
    if (!deleted || changes.col(*deleted).type() != type_id::boolean) return 0;
    const auto* flags = changes.col(*deleted).bools();
    return static_cast<std::size_t>(std::count(flags, flags + changes.num_rows(), 1));
  }
};

using operator_ptr = std::shared_ptr<const stream_operator>;

}  // namespace flow
