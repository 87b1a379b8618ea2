// Session windows: group_by({session_window(col("t"), "30 minutes"), col("user")}).agg(...) on a stream.
// A keyed operator (keyed by the grouping keys other than the session window) whose state per key is the
// key's open sessions, each a window {start, end} (end = last event + gap) and the aggregation's
// accumulators, so it lives in the runtime's state store (checkpointed, on any state backend). A row opens
// [t, t + gap); sessions of a key that overlap or touch merge, their accumulators merged by the aggregation's
// own code (aggregate_operator). Append mode emits a session once, when the watermark passes its end; update
// mode the sessions an epoch changed; both evict sessions behind the watermark. docs/event-time-and-state.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flow/keyed_operator.hpp"
#include "flow/operators.hpp"

namespace flow {

// session_window(timeColumn, "30 minutes"): Spark's session window, only as a group_by key (with at least one
// other key). A row opens [t, t + gap); sessions of a key that overlap or touch merge. The gap may come per row
// from a string expression ("5 minutes"): a row with a null gap is dropped (as in Spark), one whose gap is not a
// positive duration fails the query (Spark drops it too: here it is a clear error).
// It is a window(...) node (expr_kind::window) with slide 0 and the gap as its length, or length 0 and the gap
// expression as its second child.
expr session_window(expr time_column, std::string_view gap);
expr session_window(expr time_column, expr gap);
bool is_session_window(const expr_node& node);

// The index of the session_window(...) key among keys, or -1.
int session_window_key_index(const std::vector<expr>& keys);

// A key's sessions: one encoded row of the operator's session schema each.
using session_list = std::vector<std::string>;

class session_window_operator final : public keyed_operator<session_list> {
 public:
  // keys: one session_window(...) key and at least one column (Spark's rule for streaming). Complete mode
  // (a static frame's; validate_output_mode refuses it on a stream) emits every session at each epoch's end.
  // Throws flow::error naming what is wrong.
  session_window_operator(schema_ptr input, std::vector<expr> keys, std::vector<agg_spec> aggs, output_mode mode);
  // The factory registered as "session_window". Its arguments: the input schema, the output mode, the session
  // key's position and name, its time expression, its gap (microseconds; 0: per row, then the gap expression),
  // and the partial_aggregate arguments of the aggregation over the input with the session as a column.
  static operator_ptr from_arguments(const std::string& arguments, const schema_ptr& input);
  std::optional<operator_descriptor> descriptor() const override;

  // The grouping keys in the order given (the session window's column is "session_window"), then one column
  // per aggregate, as group_by(...).agg(...) names them.
  const schema_ptr& output_schema() const override;
  std::string name() const override;
  // The output's key columns (sink upserts in update mode).
  std::vector<std::string> output_key_names() const;

  void process(const batch& rows, const row_keys& keys, keyed_state<session_list>& state,
               operator_context& ctx) const override;
  void end_epoch(keyed_state<session_list>& state, operator_context& ctx) const override;
  void save(const session_list& sessions, row_writer& out) const override { out.add_list(sessions); }
  session_list load(const batch& saved, std::size_t row) const override;
  // The progress counts sessions: all of them, those the epoch created, grew or merged, and those it
  // evicted (counted by end_epoch as it evicts them, not here: a key's change row does not tell).
  std::size_t state_rows(const operator_state& state) const override;
  std::size_t state_rows_updated(const batch& changes, std::int64_t epoch) const override;
  std::size_t state_rows_removed(const batch&) const override { return 0; }

 private:
  // Folds fresh (the aggregation's state rows of one batch: a session [t, t + gap) per row) into the stored
  // sessions of its keys, merging the sessions that overlap.
  void merge_sessions(const batch& fresh, keyed_state<session_list>& state, std::int64_t epoch) const;
  struct impl;
  std::shared_ptr<const impl> impl_;
};

}  // namespace flow
