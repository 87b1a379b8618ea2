#include "flow/watermark.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "flow/graph.hpp"
#include "flow/plan_codec.hpp"

namespace flow {

namespace {

std::int64_t read_integer(codec_reader& reader, const char* what) {
  const std::string text = reader.read_string();
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    throw error(std::string("with_watermark: cannot decode its arguments: expected ") + what + ", found '" + text + "'");
  return value;
}

}  // namespace

watermark_operator::watermark_operator(schema_ptr input_schema, std::string column, std::int64_t delay_micros,
                                       std::size_t input)
    : schema_(std::move(input_schema)), column_(std::move(column)), delay_(delay_micros), input_(input) {
  if (!schema_) throw error("with_watermark: the input schema is missing");
  column_index_ = schema_->index_of(column_);
  if ((*schema_)[column_index_].type != type_id::timestamp)
    throw error("with_watermark('" + column_ + "'): the event time column must be a timestamp, but it is " +
                std::string(type_name((*schema_)[column_index_].type)) + "; cast it first (cast to timestamp)");
  if (delay_ < 0)
    throw error("with_watermark('" + column_ + "'): the delay must not be negative; give e.g. \"10 minutes\"");
}

operator_ptr watermark_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  std::string column = reader.read_string();
  const std::int64_t delay = read_integer(reader, "the delay in microseconds");
  const std::int64_t index = read_integer(reader, "the watermarked input's index");
  reader.expect_end();
  if (index < 0) throw error("with_watermark: cannot decode its arguments: a negative input index");
  return std::make_shared<watermark_operator>(input, std::move(column), delay, static_cast<std::size_t>(index));
}

std::string watermark_operator::name() const {
  return "EventTimeWatermark " + column_ + ", " + std::to_string(delay_) + " us";
}

void watermark_operator::process(const batch& input, std::size_t, operator_state*, operator_context& ctx) const {
  const flow::column& times = input.col(column_index_);
  event_time_stats seen;
  const std::int64_t* t = times.ints();
  for (std::size_t i = 0; i < input.num_rows(); ++i) {
    if (!times.valid(i)) continue;
    seen.min = std::min(seen.min, t[i]);
    seen.max = std::max(seen.max, t[i]);
    seen.sum += static_cast<double>(t[i]);
    ++seen.count;
  }
  if (seen.count > 0) ctx.observe_event_times(input_, seen);
  if (input.num_rows() > 0) ctx.emit(input);
}

std::optional<operator_descriptor> watermark_operator::descriptor() const {
  return operator_descriptor{
      "with_watermark", codec_writer().write(column_).write(std::to_string(delay_)).write(std::to_string(input_)).text()};
}

std::vector<std::int64_t> watermark_delays(const dataflow_graph& graph) {
  std::vector<std::optional<std::int64_t>> found;
  for (const auto& vertex : graph.vertices())
    for (const auto& op : vertex.chain) {
      const auto* watermark = dynamic_cast<const watermark_operator*>(op.get());
      if (!watermark) continue;
      if (found.size() <= watermark->input()) found.resize(watermark->input() + 1);
      auto& delay = found[watermark->input()];
      if (delay && *delay != watermark->delay_micros())
        throw error("vertex '" + vertex.name + "': two with_watermark operators are watermarked input " +
                    std::to_string(watermark->input()) + " with different delays; number each input once");
      delay = watermark->delay_micros();
    }
  std::vector<std::int64_t> delays;
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (!found[i])
      throw error("dataflow graph: watermarked inputs are numbered up to " + std::to_string(found.size() - 1) +
                  ", but none is input " + std::to_string(i) + "; number them from 0 without gaps");
    delays.push_back(*found[i]);
  }
  return delays;
}

watermark_policy parse_watermark_policy(std::string_view text) {
  if (text == "min") return watermark_policy::min;
  if (text == "max") return watermark_policy::max;
  throw error("multipleWatermarkPolicy '" + std::string(text) + "': give min (the slowest input, the default) or max");
}

watermark_tracker::watermark_tracker(std::vector<std::int64_t> delays, watermark_policy policy)
    : delays_(std::move(delays)), latest_(delays_.size(), operator_context::no_watermark), policy_(policy) {}

void watermark_tracker::observe(const std::vector<std::int64_t>& latest_event_times) {
  std::optional<std::int64_t> next;
  for (std::size_t i = 0; i < delays_.size(); ++i) {
    if (i < latest_event_times.size()) latest_[i] = std::max(latest_[i], latest_event_times[i]);
    if (latest_[i] == operator_context::no_watermark) continue;  // Spark: an input without rows yet has no say
    const std::int64_t candidate = latest_[i] - delays_[i];
    if (!next) next = candidate;
    else next = policy_ == watermark_policy::min ? std::min(*next, candidate) : std::max(*next, candidate);
  }
  if (next) current_ = std::max(current_, *next);
}

void watermark_tracker::restore(std::int64_t watermark) { current_ = std::max(current_, watermark); }

}  // namespace flow
