// Spark's dropDuplicates and dropDuplicatesWithinWatermark on a stream: a keyed operator that passes on
// the first row of each key and drops the later ones. Its state (one expiry time per key seen) lives in
// the runtime's state store, so it is checkpointed and runs on any state backend. docs/joins-and-dedup.md.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "flow/keyed_operator.hpp"

namespace flow {

// What deduplicate_operator's constructor takes besides its input.
struct deduplicate_spec {
  std::vector<std::string> keys;  // the columns whose values make a row a duplicate
  // Within the watermark: the event-time column (timestamp) and the delay; a key is forgotten once the
  // watermark passes its first row's event time plus the delay. Empty: every key is kept for ever.
  std::string event_time_column{};
  std::int64_t delay_micros = 0;
};

class deduplicate_operator final : public keyed_operator<std::int64_t> {
 public:
  // The expiry of keys kept for ever.
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

  // Throws flow::error naming the column when a key or the event-time column is missing, or the event-time
  // column is not a timestamp.
  deduplicate_operator(schema_ptr input, deduplicate_spec spec);
  // The factory registered as "deduplicate".
  static operator_ptr from_arguments(const std::string& arguments, const schema_ptr& input);

  // The input's rows, unchanged.
  const schema_ptr& output_schema() const override { return input_; }
  std::string name() const override;
  std::optional<operator_descriptor> descriptor() const override;
  const deduplicate_spec& spec() const { return spec_; }

  void process(const batch& rows, const row_keys& keys, keyed_state<std::int64_t>& state,
               operator_context& ctx) const override;
  // Forgets the keys whose expiry is at or before the watermark (within the watermark only).
  void on_watermark(std::int64_t watermark, keyed_state<std::int64_t>& state, operator_context& ctx) const override;
  void save(const std::int64_t& expires_at, row_writer& out) const override { out.add(expires_at); }
  std::int64_t load(const batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }

 private:
  schema_ptr input_;
  deduplicate_spec spec_;
  std::size_t event_time_ = 0;
};

}  // namespace flow
