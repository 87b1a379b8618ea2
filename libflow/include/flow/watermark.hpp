// Event-time watermarks (docs/event-time-and-state.md): the operator with_watermark(column, delay) compiles
// to, which passes its rows on and reports the event times it saw, and the tracker the query's coordinator
// keeps, which turns what the epochs saw into the watermark of the next epochs (Spark's rules).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flow/stream_operator.hpp"

namespace flow {

// Passes every row on unchanged and reports the batch's event times (column `column`, a timestamp) through
// operator_context::observe_event_times as watermarked input `input`. Ships as "with_watermark".
class watermark_operator final : public stream_operator {
 public:
  watermark_operator(schema_ptr input_schema, std::string column, std::int64_t delay_micros, std::size_t input);
  // The factory registered as "with_watermark".
  static operator_ptr from_arguments(const std::string& arguments, const schema_ptr& input);
  std::string name() const override;
  const schema_ptr& output_schema() const override { return schema_; }
  void process(const batch& input, std::size_t input_index, operator_state* state, operator_context& ctx) const override;
  std::optional<operator_descriptor> descriptor() const override;

  const std::string& column() const { return column_; }
  std::int64_t delay_micros() const { return delay_; }
  std::size_t input() const { return input_; }

 private:
  schema_ptr schema_;
  std::string column_;
  std::size_t column_index_ = 0;
  std::int64_t delay_;
  std::size_t input_;
};

class dataflow_graph;
// Per watermarked input of the graph (its watermark_operators' input()), the delay in microseconds; empty
// when the graph has none. flow::error when two operators claim one input with different delays.
std::vector<std::int64_t> watermark_delays(const dataflow_graph& graph);

// How several watermarked inputs make one watermark: the slowest input's (Spark's default), or the fastest's.
enum class watermark_policy { min, max };
// "min" or "max" (Spark's spark.sql.streaming.multipleWatermarkPolicy); flow::error otherwise.
watermark_policy parse_watermark_policy(std::string_view text);

// The query's watermark: after each epoch, per watermarked input the latest event time seen so far minus
// that input's delay; the minimum (or maximum) over the inputs that have seen rows; never moving backwards.
class watermark_tracker {
 public:
  // delays: per watermarked input, microseconds.
  explicit watermark_tracker(std::vector<std::int64_t> delays = {}, watermark_policy policy = watermark_policy::min);
  bool enabled() const { return !delays_.empty(); }
  // The latest event time an epoch saw per input (operator_context::no_watermark: none).
  void observe(const std::vector<std::int64_t>& latest_event_times);
  // The watermark for the epochs that start now (operator_context::no_watermark before any row was seen).
  std::int64_t current() const { return current_; }
  // A restart continues with the watermark its checkpoint logged.
  void restore(std::int64_t watermark);

 private:
  std::vector<std::int64_t> delays_;
  std::vector<std::int64_t> latest_;  // per input
  watermark_policy policy_;
  std::int64_t current_ = operator_context::no_watermark;
};

}  // namespace flow
