// Physical operators. An operator is an immutable description built from the plan; whatever it
// mutates lives in a separate state object that the runtime owns, snapshots and restores.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flow/batch.hpp"
#include "flow/expr.hpp"
#include "flow/stream_operator.hpp"

namespace flow {

enum class output_mode { append, update, complete };
std::string_view to_string(output_mode m);
output_mode parse_output_mode(std::string_view text);  // throws flow::error

// ---------------------------------------------------------------- stateless operators

// An operator without state: one batch in, one batch out (possibly empty, which is not passed on).
class stateless_operator : public stream_operator {
 public:
  virtual batch apply(const batch& input) const = 0;
  virtual std::string describe() const = 0;
  std::string name() const override { return describe(); }
  void process(const batch& input, std::size_t, operator_state*, operator_context& ctx) const override {
    batch out = apply(input);
    if (out.num_rows() > 0) ctx.emit(std::move(out));
  }
};

class project_operator final : public stateless_operator {
 public:
  project_operator(const schema& input, const std::vector<expr>& exprs);
  const schema_ptr& output_schema() const override { return output_; }
  batch apply(const batch& input) const override;
  std::string describe() const override;
  std::optional<operator_descriptor> descriptor() const override;
  std::optional<std::vector<std::size_t>> columns_read() const override { return columns_read_; }

 private:
  std::vector<bound_expr> exprs_;
  schema_ptr output_;
  std::optional<std::vector<std::size_t>> columns_read_;
  // The input column of each expression when every one is a column (aliased or not), else empty: such a
  // select passes a filter's selection on without copying rows.
  std::vector<std::size_t> input_columns_;
};

// Hands on the kept rows as a selection of its input's columns (batch::selected), without copying them.
class filter_operator final : public stateless_operator {
 public:
  filter_operator(const schema_ptr& input, const expr& predicate);  // predicate must be boolean
  const schema_ptr& output_schema() const override { return output_; }
  batch apply(const batch& input) const override;
  std::string describe() const override;
  std::optional<operator_descriptor> descriptor() const override;

 private:
  bound_expr predicate_;
  schema_ptr output_;
};

// ---------------------------------------------------------------- aggregation

enum class agg_kind { sum, count, min, max, avg };
std::string_view to_string(agg_kind k);

struct agg_spec {
  agg_kind kind = agg_kind::count;
  expr input;                 // count(*) when not valid()
  std::string output_name;    // empty: Spark's name, e.g. "sum(total_cost)", "count(1)"
};

class aggregate_state;

// group_by(keys).agg(aggs). Keys may include window(...) (a row joins every window that contains it).
// The state table is the keys followed by one or two accumulator columns per aggregate; it is what
// partial aggregation ships between stages and what snapshots contain.
class aggregate_operator {
 public:
  aggregate_operator(schema_ptr input, std::vector<expr> keys, std::vector<agg_spec> aggs);

  const schema_ptr& input_schema() const { return input_; }
  const schema_ptr& output_schema() const { return output_; }   // keys, then one column per aggregate
  const schema_ptr& state_schema() const { return state_; }     // keys, then accumulators
  std::size_t num_keys() const { return keys_.size(); }
  // As given to the constructor (what rebuilds this aggregation elsewhere).
  const std::vector<expr>& keys() const { return keys_; }
  const std::vector<agg_spec>& aggregates() const { return aggs_; }
  std::vector<std::string> key_names() const;
  // Index of the window key, or -1.
  int window_key_index() const { return window_key_; }
  std::unique_ptr<aggregate_state> make_state() const;
  // Splits a state-schema batch (e.g. partial aggregates) into n parts by the hash of its keys;
  // the same key always goes to the same part.
  std::vector<batch> partition(const batch& state_rows, std::size_t n) const;
  std::string describe() const;

  struct impl;
  const impl& internals() const { return *impl_; }

 private:
  schema_ptr input_, output_, state_;
  std::vector<expr> keys_;
  std::vector<agg_spec> aggs_;
  int window_key_ = -1;
  std::shared_ptr<const impl> impl_;
};

// The mutable hash table of one aggregation partition.
class aggregate_state {
 public:
  virtual ~aggregate_state() = default;
  // Folds raw input rows (input schema) into the table. With a window key, a row's windows that ended at or
  // before watermark are left out (late); returns how many rows were left with no window (dropped as late).
  virtual std::size_t update(const batch& input, timestamp watermark = timestamp{INT64_MIN}) = 0;
  // Folds partial aggregates (state schema) into the table.
  virtual void merge(const batch& state_rows) = 0;
  // complete: every group; update: groups changed since the last emit; append: groups whose window
  // ended at or before watermark (then evicted). Output schema. Resets the changed set.
  virtual batch emit(output_mode mode, timestamp watermark = timestamp{INT64_MIN}) = 0;
  // The whole table in state schema (snapshot, or partial aggregates to ship).
  virtual batch snapshot() const = 0;
  // Groups changed since the last emit, in state schema (an incremental snapshot).
  virtual batch changed_since_emit() const = 0;
  virtual std::size_t num_changed() const = 0;
  // The groups added since the table held `first` groups, in state schema (groups are numbered in the
  // order they were added until evict_groups() or clear()).
  virtual batch groups_since(std::size_t first) const = 0;
  // Replaces the table by a snapshot (state schema).
  virtual void restore(const batch& state_rows) = 0;
  // Sets the given groups to the given state rows, adding groups not in the table: applies an
  // incremental snapshot (changed_since_emit of a later version of this table).
  virtual void replace_groups(const batch& state_rows) = 0;
  // Drops groups whose window ends at or before watermark; returns them (state schema).
  virtual batch evict_groups(timestamp watermark) = 0;
  virtual void clear() = 0;
  virtual std::size_t num_groups() const = 0;
  virtual std::size_t memory_bytes() const = 0;
};

}  // namespace flow
