// Arbitrary per-key state, as Spark's mapGroupsWithState / flatMapGroupsWithState (docs/map-groups-with-state.md):
//
//   auto totals = orders.group_by_key({"CustomerID"}).map_groups_with_state(
//       [](const flow::group_key& key, const flow::batch& rows, flow::group_state<flow::state_row>& state) {
//         double spend = state.exists() ? std::get<double>(state.get()[0]) : 0.0;
//         for (std::size_t i = 0; i < rows.num_rows(); ++i) spend += ...;
//         state.update({spend});
//         state.set_timeout_duration(std::chrono::hours(1));
//         return flow::state_row{key[0], spend};
//       },
//       {.state = {{"spend", flow::type_id::float64}},
//        .output = {{"CustomerID", flow::type_id::float64}, {"spend", flow::type_id::float64}},
//        .timeout = flow::group_state_timeout::processing_time});
//
// group_state<S> is also the handle of the DStream API's map_with_state (flow/dstream_operators.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow/dataframe.hpp"

namespace flow {

class dataflow_graph;

// Spark's GroupStateTimeout.
enum class group_state_timeout { none, processing_time, event_time };

// A timestamp of group_state: milliseconds since the Unix epoch (UTC), as Spark's.
inline constexpr std::int64_t no_timestamp = std::numeric_limits<std::int64_t>::min();

// The state of one key handed to the user's function: Spark's GroupState. Valid during the call only.
template <class S>
class group_state {
 public:
  struct clocks {
    std::int64_t processing_time = no_timestamp;  // the epoch's (operator_context::processing_time)
    std::int64_t watermark = no_timestamp;        // the event-time watermark (no_timestamp: none yet)
  };
  // operation names the API in error messages; timeout_at: the key's timeout (no_timestamp: none), which
  // the call resets unless it sets one again, as Spark's (null when timeout is none).
  group_state(std::string_view operation, std::optional<S>& value, std::int64_t* timeout_at, bool timed_out,
              group_state_timeout timeout, clocks now)
      : operation_(operation), value_(&value), timeout_at_(timeout_at), timed_out_(timed_out), timeout_(timeout),
        now_(now) {
    if (timeout_at_) *timeout_at_ = no_timestamp;
  }

  bool exists() const { return value_->has_value(); }
  const S& get() const {
    if (!exists())
      throw error(std::string(operation_) + ": get() of a state that does not exist (check exists() first)");
    return **value_;
  }
  const std::optional<S>& get_option() const { return *value_; }
  void update(S value) { *value_ = std::move(value); }
  void remove() {
    value_->reset();
    if (timeout_at_) *timeout_at_ = no_timestamp;
  }
  // True when the function was called because the key's timeout passed (then without rows).
  bool has_timed_out() const { return timed_out_; }

  // Processing-time timeout: the key times out when no rows arrived for it for duration after this epoch's
  // processing time.
  void set_timeout_duration(std::chrono::milliseconds duration) {
    if (timeout_ != group_state_timeout::processing_time)
      throw error(std::string(operation_) + ": Cannot set timeout duration without enabling processing time timeout "
                  "(give timeout = group_state_timeout::processing_time)");
    if (duration.count() <= 0)
      throw error(std::string(operation_) + ": Timeout duration must be positive, got " +
                  std::to_string(duration.count()) + " ms");
    *timeout_at_ = now_.processing_time + duration.count();
  }
  // Event-time timeout: the key times out when the watermark passes timestamp_ms (not before the
  // current watermark).
  void set_timeout_timestamp(std::int64_t timestamp_ms) {
    if (timeout_ != group_state_timeout::event_time)
      throw error(std::string(operation_) + ": Cannot set timeout timestamp without enabling event time timeout "
                  "(give timeout = group_state_timeout::event_time)");
    if (now_.watermark != no_timestamp && timestamp_ms < now_.watermark)
      throw error(std::string(operation_) + ": Timeout timestamp (" + std::to_string(timestamp_ms) +
                  ") cannot be earlier than the current watermark (" + std::to_string(now_.watermark) + ")");
    *timeout_at_ = timestamp_ms;
  }
  std::int64_t get_current_processing_time_ms() const { return now_.processing_time; }
  // no_timestamp before the query has a watermark.
  std::int64_t get_current_watermark_ms() const { return now_.watermark; }

 private:
  std::string_view operation_;
  std::optional<S>* value_;
  std::int64_t* timeout_at_;
  bool timed_out_;
  group_state_timeout timeout_;
  clocks now_;
};

// map_groups_with_state's values: a key (its columns' values), a state (the declared state columns'), an
// output row (the declared output columns').
using group_key = std::vector<value>;
using state_row = std::vector<value>;

using map_groups_function = std::function<state_row(const group_key&, const batch&, group_state<state_row>&)>;
using flat_map_groups_function =
    std::function<std::vector<state_row>(const group_key&, const batch&, group_state<state_row>&)>;

struct group_state_spec {
  std::vector<field> state;   // the columns of a key's state (update() gets rows of these)
  std::vector<field> output;  // the columns of the rows the function returns
  group_state_timeout timeout = group_state_timeout::none;
};

// The operator behind both calls, for the topology builder: its output is spec.output, its input is
// hash-partitioned by keys. operator_mode: append or update (flat_map_groups_with_state's, update for map).
operator_ptr make_group_state_operator(schema_ptr input, std::vector<std::string> keys, flat_map_groups_function fn,
                                       group_state_spec spec, output_mode operator_mode, bool is_map);

// Spark's rules for the group-state operators of graph under a sink of mode, checked at start: flow::error
// naming the rule (mapGroupsWithState: update only; flatMapGroupsWithState: its own mode; an event-time
// timeout needs a with_watermark upstream).
void validate_group_state_rules(const dataflow_graph& graph, output_mode mode);

// data_frame::group_by_key's result (Spark's KeyValueGroupedDataset).
class keyed_groups {
 public:
  keyed_groups(std::shared_ptr<session_context> ctx, data_frame frame, std::vector<std::string> keys)
      : ctx_(std::move(ctx)), frame_(std::move(frame)), keys_(std::move(keys)) {}
  // fn once per key with rows in an epoch (and once, without rows, when its timeout passed): one output row.
  // Output mode update only.
  data_frame map_groups_with_state(map_groups_function fn, group_state_spec spec) const;
  // fn returns any number of output rows; operator_mode (append or update) is the sink's output mode.
  data_frame flat_map_groups_with_state(flat_map_groups_function fn, output_mode operator_mode,
                                        group_state_spec spec) const;

 private:
  data_frame apply(flat_map_groups_function fn, group_state_spec spec, output_mode operator_mode, bool is_map) const;
  std::shared_ptr<session_context> ctx_;
  data_frame frame_;
  std::vector<std::string> keys_;
};

}  // namespace flow
