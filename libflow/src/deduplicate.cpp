#include "flow/deduplicate.hpp"

#include <algorithm>

#include "flow/plan_codec.hpp"

namespace flow {

namespace {

// drop_duplicates with the watermarked column among its keys keeps its name (flow::make_deduplicate).
bool within_watermark(const deduplicate_spec& spec) {
  return !spec.event_time_column.empty() &&
         std::find(spec.keys.begin(), spec.keys.end(), spec.event_time_column) == spec.keys.end();
}

keyed_operator_spec keyed_spec(const schema_ptr& input, const deduplicate_spec& spec) {
  if (spec.keys.empty()) throw error("drop_duplicates: give at least one column");
  return {.name = within_watermark(spec) ? "drop_duplicates_within_watermark" : "drop_duplicates",
          .input = input,
          .keys = spec.keys,
          .output = {},
          .state = {{"expires_at", type_id::int64}}};
}

}  // namespace

deduplicate_operator::deduplicate_operator(schema_ptr input, deduplicate_spec spec)
    : keyed_operator(keyed_spec(input, spec)), input_(std::move(input)), spec_(std::move(spec)) {
  if (spec_.event_time_column.empty()) return;
  const auto index = input_->find(spec_.event_time_column);
  if (!index || (*input_)[*index].type != type_id::timestamp) {
    throw error(std::string(keyed_operator::name()) + ": the event-time column '" + spec_.event_time_column +
                "' is not a timestamp column of the input [" + input_->to_string() +
                "]; name the column the watermark is defined on");
  }
  if (spec_.delay_micros < 0) throw error("drop_duplicates_within_watermark: the delay is negative");
  event_time_ = *index;
}

std::string deduplicate_operator::name() const {
  std::string keys;
  for (const auto& k : spec_.keys) keys += (keys.empty() ? "" : ", ") + k;
  return keyed_operator::name() + " [" + keys + "]";
}

void deduplicate_operator::process(const batch& rows, const row_keys& keys, keyed_state<std::int64_t>& state,
                                   operator_context& ctx) const {
  const bool with_event_time = !spec_.event_time_column.empty();
  const column* event_time = with_event_time ? &rows.col(event_time_) : nullptr;
  const std::int64_t watermark = with_event_time ? ctx.watermark() : operator_context::no_watermark;
  std::vector<std::uint8_t> keep(rows.num_rows(), 0);
  std::size_t kept = 0, late = 0;
  for (std::size_t i = 0; i < rows.num_rows(); ++i) {
    // As Spark: a row whose event time is at or behind the watermark is late, dropped and counted.
    if (watermark != operator_context::no_watermark && event_time->valid(i) && event_time->ints()[i] <= watermark) {
      ++late;
      continue;
    }
    if (state.find(keys[i])) continue;
    std::int64_t expires_at = never;
    if (with_event_time) {
      // A row without an event time can never expire: keep its key for ever.
      if (event_time->valid(i)) {
        const std::int64_t t = event_time->ints()[i];
        expires_at = t > never - spec_.delay_micros ? never : t + spec_.delay_micros;
      }
    }
    state.put(keys[i], expires_at);
    keep[i] = 1;
    ++kept;
  }
  if (late > 0) ctx.count_rows_dropped_by_watermark(late);
  if (kept == rows.num_rows()) ctx.emit(rows);
  else if (kept > 0) ctx.emit(filter_rows(rows, keep));
}

void deduplicate_operator::on_watermark(std::int64_t watermark, keyed_state<std::int64_t>& state,
                                        operator_context&) const {
  if (spec_.event_time_column.empty()) return;
  // Collected first: keys may not be removed while the store is iterated.
  std::vector<std::pair<std::string, std::uint64_t>> expired;
  state.for_each([&](key_ref key, const std::int64_t& expires_at) {
    if (expires_at <= watermark) expired.emplace_back(std::string(key.bytes), key.hash);
  });
  for (const auto& [bytes, hash] : expired) state.remove(key_ref{bytes, hash});
}

std::optional<operator_descriptor> deduplicate_operator::descriptor() const {
  codec_writer out;
  out.write(std::to_string(spec_.keys.size()));
  for (const auto& k : spec_.keys) out.write(k);
  out.write(spec_.event_time_column).write(std::to_string(spec_.delay_micros));
  return operator_descriptor{"deduplicate", out.text()};
}

operator_ptr deduplicate_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  deduplicate_spec spec;
  const auto key_count = reader.read_number("the key count");
  for (std::int64_t i = 0; i < key_count; ++i) spec.keys.push_back(reader.read_string());
  spec.event_time_column = reader.read_string();
  spec.delay_micros = reader.read_number("the delay");
  reader.expect_end();
  return std::make_shared<deduplicate_operator>(input, std::move(spec));
}

}  // namespace flow
