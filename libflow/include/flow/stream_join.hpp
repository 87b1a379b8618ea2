// Joins of two streams (Spark's stream-stream join): inner, left_outer and right_outer, on equal key
// columns and, for outer joins, a time range between the two sides' event times. Each side's rows are
// buffered (in columns, checkpointed after each epoch) until the watermark proves no row of the other side
// can match them. docs/joins-and-dedup.md.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "flow/join.hpp"
#include "flow/plan.hpp"
#include "flow/stream_operator.hpp"

namespace flow {

// What a stream-stream join matches on: left_keys[i] == right_keys[i] for every i, and, when the sides'
// time columns are named, right_time - left_time within [lower, upper] (microseconds).
struct stream_join_spec {
  join_type type = join_type::inner;
  std::vector<std::string> left_keys, right_keys;
  // join(other, {names}): the keys appear once in the output (Spark's join on using-columns).
  bool using_columns = false;
  std::string left_time, right_time;  // empty: no time range
  static constexpr std::int64_t unbounded_below = std::numeric_limits<std::int64_t>::min();
  static constexpr std::int64_t unbounded_above = std::numeric_limits<std::int64_t>::max();
  std::int64_t lower = unbounded_below, upper = unbounded_above;
};

// join(other, {keys}, type): equal columns of these names, no time range.
stream_join_spec stream_join_on_columns(std::vector<std::string> keys, join_type type);
// join(other, condition, type): condition is a conjunction (&&) of equalities between a left and a right
// column (the keys) and comparisons between a left and a right timestamp column, each optionally plus or
// minus an interval literal (lit("1 hour") or microseconds), e.g.
//   col("key") == col("rkey") && col("rt") >= col("lt") && col("rt") <= col("lt") + lit("1 hour")
// Throws flow::error naming a conjunct of any other form, or a condition without an equality.
stream_join_spec stream_join_on_condition(const schema& left, const schema& right, const expr& condition,
                                          join_type type);

// Spark's rules, checked when the frame is built: inner, left_outer or right_outer; an outer join needs
// a watermark on both sides and a time range bounded on both ends (else Spark's message). Returns the
// join node, whose children are left and right.
plan_ptr make_stream_join(plan_ptr left, plan_ptr right, stream_join_spec spec);

// The two-input operator: input 0 is the left side, input 1 the right, each hash-partitioned on its keys.
// A row probes the other side's buffered rows, is emitted with every match and is buffered itself. Rows
// older than the watermark are dropped and counted; on_watermark evicts rows no future row can match,
// emitting the unmatched ones of an outer join's preserved side padded with nulls. Append output only.
class stream_join_operator final : public stream_operator {
 public:
  stream_join_operator(schema_ptr left, schema_ptr right, stream_join_spec spec);
  // The factory registered as "stream_stream_join" (arguments: descriptor()'s).
  static operator_ptr from_arguments(const std::string& arguments, const schema_ptr& input);

  std::string name() const override;
  const schema_ptr& output_schema() const override { return output_; }
  // Each input has its own key columns (left_keys / right_keys of the spec): compile_graph wires the two
  // hash edges itself, so the graph's one-key-list check does not apply.
  std::vector<std::string> key_columns() const override { return {}; }
  std::unique_ptr<operator_state> make_state() const override;
  void process(const batch& input, std::size_t input_index, operator_state* state, operator_context& ctx) const override;
  void on_watermark(std::int64_t watermark, operator_state* state, operator_context& ctx) const override;
  std::optional<operator_descriptor> descriptor() const override;

  const stream_join_spec& spec() const { return spec_; }
  const schema_ptr& side_schema(std::size_t side) const { return sides_[side].rows; }

  // One side's layout: its schema, key and time column indexes.
  struct side_layout {
    schema_ptr rows;
    std::vector<std::size_t> keys;
    std::optional<std::size_t> time;
  };
  // Where output column i comes from: a column of the left and/or the right side (a using-column key has
  // both; it takes the preferred side's value when that side is not null).
  struct output_column {
    std::optional<std::size_t> left, right;
    bool prefer_right = false;
  };
  const side_layout& side(std::size_t s) const { return sides_[s]; }
  const std::vector<output_column>& output_columns() const { return columns_; }
  const key_layout& join_key_layout() const { return join_keys_; }
  // Side s's rows can be evicted at all: a time range bounds the other side's matching times on that end.
  bool ever_evicts(std::size_t s) const;
  // No row of the other side still to come can match a buffered row of side s with this event time.
  bool evictable(std::size_t s, std::int64_t time, std::int64_t watermark) const;
  // Side s's unmatched rows are emitted padded with nulls.
  bool preserves(std::size_t s) const {
    return (s == 0 && spec_.type == join_type::left_outer) || (s == 1 && spec_.type == join_type::right_outer);
  }

 private:
  stream_join_spec spec_;
  side_layout sides_[2];
  std::vector<output_column> columns_;
  key_layout join_keys_;
  schema_ptr output_;
};

}  // namespace flow
