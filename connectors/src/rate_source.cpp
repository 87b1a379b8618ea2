// RateStreamMicroBatchStream: rows generated from the elapsed time, exactly as Spark computes them.
#include "flow/connectors/rate.hpp"

#include "arrival_watch.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

namespace flow::connectors {

namespace {

constexpr std::size_t max_rows_per_batch = 4096;
constexpr std::size_t bytes_per_row = 2 * sizeof(std::int64_t);

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t positive(const options& opts, std::string_view key, std::int64_t fallback) {
  std::int64_t v = opts.get_int(key, fallback);
  if (v <= 0)
    throw error("rate source: invalid value '" + opts.get(key) + "' for option " + std::string(key) +
                "; it must be a positive integer");
  return v;
}

// Spark's timeStringAsSec: "10s", "2 minutes", or a bare number of seconds.
std::int64_t ramp_up_seconds(const options& opts) {
  if (!opts.has("rampUpTime")) return 0;
  std::string text = opts.get("rampUpTime");
  std::int64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  bool zero_with_unit = ec == std::errc{} && seconds == 0 &&
                        std::all_of(end, static_cast<const char*>(text.data() + text.size()), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == ' '; });
  if (ec != std::errc{} || (end != text.data() + text.size() && !zero_with_unit)) {
    try {
      seconds = parse_duration_micros(text) / 1'000'000;
    } catch (const error& e) {
      throw error("rate source: invalid value '" + text + "' for option rampUpTime (" + e.what() +
                  "); give a duration such as \"10s\"");
    }
  }
  if (seconds < 0) throw error("rate source: option rampUpTime must not be negative, got '" + text + "'");
  return seconds;
}

struct rate_offset {
  std::int64_t seconds = 0;
  std::int64_t start_time_ms = 0;
};

std::string format_offset(const rate_offset& o) {
  return "{\"seconds\":" + std::to_string(o.seconds) + ",\"startTimeMs\":" + std::to_string(o.start_time_ms) + "}";
}

std::int64_t field_of(const std::string& offset, std::string_view key) {
  auto malformed = [&] {
    return error("rate source: malformed offset '" + offset +
                 "'; expected {\"seconds\":N,\"startTimeMs\":T} (was the checkpoint written by another source?)");
  };
  std::string quoted = std::string("\"").append(key).append("\"");
  std::size_t at = offset.find(quoted);
  if (at == std::string::npos) throw malformed();
  at = offset.find_first_not_of(" \t\n", at + quoted.size());
  if (at == std::string::npos || offset[at] != ':') throw malformed();
  at = offset.find_first_not_of(" \t\n", at + 1);
  if (at == std::string::npos) throw malformed();
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(offset.data() + at, offset.data() + offset.size(), value);
  if (ec != std::errc{} || end == offset.data() + at || value < 0) throw malformed();
  return value;
}

rate_offset parse_offset(const std::string& offset) {
  return {field_of(offset, "seconds"), field_of(offset, "startTimeMs")};
}

class rate_stream_source final : public source_reader {
 public:
  explicit rate_stream_source(const options& opts)
      : rows_per_second_(positive(opts, "rowsPerSecond", 1)),
        ramp_up_seconds_(ramp_up_seconds(opts)),
        num_partitions_(positive(opts, "numPartitions", 1)),
        start_time_ms_(now_ms()) {
    max_seconds_ = std::numeric_limits<std::int64_t>::max() / rows_per_second_;
    if (ramp_up_seconds_ > max_seconds_)
      throw error("rate source: rampUpTime of " + std::to_string(ramp_up_seconds_) + " s is too big for " +
                  std::to_string(rows_per_second_) + " rowsPerSecond; at most " + std::to_string(max_seconds_));
  }

  std::string description() const override {
    return "RateStreamV2[rowsPerSecond=" + std::to_string(rows_per_second_) +
           ", rampUpTimeSeconds=" + std::to_string(ramp_up_seconds_) +
           ", numPartitions=" + std::to_string(num_partitions_) + "]";
  }
  // Spark lets rowsPerSecond and rampUpTime change across a restart, not numPartitions.
  std::string identity() const override { return "RateStreamV2[numPartitions=" + std::to_string(num_partitions_) + "]"; }
  schema_ptr output_schema() const override { return rate_source_schema(); }
  std::string initial_offset() override { return format_offset({0, start_time_ms_}); }

  // Rows come with each whole second: the query hears of the next one (data-driven epochs).
  bool notify_when_data(std::function<void()> arrived) override {
    next_second_ = std::make_unique<arrival_watch>(std::move(arrived));
    return true;
  }

  std::optional<std::string> latest_offset(const std::string& start) override {
    rate_offset from = parse_offset(start);
    std::int64_t elapsed_ms = std::max<std::int64_t>(0, now_ms() - from.start_time_ms);
    rate_offset to{elapsed_ms / 1000, from.start_time_ms};
    if (to.seconds <= from.seconds || rows_at(to.seconds) == rows_at(from.seconds)) {
      if (next_second_) {
        const std::int64_t due_ms = (std::max(to.seconds, from.seconds) + 1) * 1000 - elapsed_ms;
        next_second_->arm(-1, arrival_watch::clock::now() + std::chrono::milliseconds(due_ms));
      }
      return std::nullopt;
    }
    return format_offset(to);
  }

  void begin_read(const std::string& start, const std::string& end) override {
    rate_offset from = parse_offset(start);
    rate_offset to = parse_offset(end);
    if (to.seconds < from.seconds || to.start_time_ms != from.start_time_ms)
      throw error("rate source: cannot read from " + start + " to " + end + "; the end is before the start");
    if (to.seconds > max_seconds_)
      throw error("rate source: offset of " + std::to_string(to.seconds) + " s overflows the row count at " +
                  std::to_string(rows_per_second_) + " rowsPerSecond; at most " + std::to_string(max_seconds_) + " s");
    range_start_ = rows_at(from.seconds);
    range_end_ = rows_at(to.seconds);
    local_start_ms_ = from.start_time_ms + from.seconds * 1000;
    ms_per_value_ = range_end_ > range_start_
                        ? static_cast<double>((to.seconds - from.seconds) * 1000) / static_cast<double>(range_end_ - range_start_)
                        : 0.0;
    partition_ = 0;
    emitted_in_partition_ = 0;
  }

  // Partition p holds the values range_start + p + k * numPartitions, as in Spark; partitions come one
  // after the other, each cut into batches.
  std::optional<source_unit> next() override {
    while (partition_ < num_partitions_) {
      std::int64_t first = range_start_ + partition_ + emitted_in_partition_ * num_partitions_;
      if (first >= range_end_) {
        ++partition_;
        emitted_in_partition_ = 0;
        continue;
      }
      std::int64_t remaining = (range_end_ - first + num_partitions_ - 1) / num_partitions_;
      std::size_t rows = std::min<std::size_t>(static_cast<std::size_t>(remaining), rows_per_batch());
      column_builder timestamps(type_id::timestamp, rows);
      column_builder values(type_id::int64, rows);
      for (std::size_t i = 0; i < rows; ++i) {
        std::int64_t value = first + static_cast<std::int64_t>(i) * num_partitions_;
        auto relative_ms = static_cast<std::int64_t>(std::llround(static_cast<double>(value - range_start_) * ms_per_value_));
        timestamps.append_timestamp({(local_start_ms_ + relative_ms) * 1000});
        values.append_int(value);
      }
      emitted_in_partition_ += static_cast<std::int64_t>(rows);
      rows_generated_ += static_cast<std::int64_t>(rows);
      return source_unit{batch(rate_source_schema(), {timestamps.finish(), values.finish()})};
    }
    return std::nullopt;
  }

  void set_max_unit_bytes(std::size_t bytes) override { unit_bytes_ = std::max<std::size_t>(bytes, bytes_per_row); }

  connector_metrics metrics() const override { return {{"numRowsGenerated", rows_generated_}}; }

 private:
  std::int64_t rows_at(std::int64_t seconds) const {
    return rate_rows_at_second(seconds, rows_per_second_, ramp_up_seconds_);
  }
  std::size_t rows_per_batch() const { return std::min(max_rows_per_batch, unit_bytes_ / bytes_per_row); }

  std::int64_t rows_per_second_;
  std::int64_t ramp_up_seconds_;
  std::int64_t num_partitions_;
  std::int64_t start_time_ms_;
  std::int64_t max_seconds_ = 0;
  std::size_t unit_bytes_ = max_rows_per_batch * bytes_per_row;

  std::int64_t range_start_ = 0;
  std::int64_t range_end_ = 0;
  std::int64_t local_start_ms_ = 0;
  double ms_per_value_ = 0.0;
  std::int64_t partition_ = 0;
  std::int64_t emitted_in_partition_ = 0;
  std::int64_t rows_generated_ = 0;
  std::unique_ptr<arrival_watch> next_second_;  // set by notify_when_data
};

}  // namespace

schema_ptr rate_source_schema() {
  static const schema_ptr schema =
      make_schema({{"timestamp", type_id::timestamp, false}, {"value", type_id::int64, false}});
  return schema;
}

void validate_rate_options(const options& opts) { rate_stream_source check(opts); }

std::unique_ptr<source_reader> make_rate_source(const options& opts) {
  return std::make_unique<rate_stream_source>(opts);
}

std::int64_t rate_rows_at_second(std::int64_t seconds, std::int64_t rows_per_second, std::int64_t ramp_up_seconds) {
  // With rampUpTime 4 s and 10 rows/s the speed grows by 2 rows/s each second: 0 2 4 6 8 10 10 ...,
  // so the row counts at seconds 0..6 are 0 2 6 12 20 30 40.
  std::int64_t speed_delta = rows_per_second / (ramp_up_seconds + 1);
  if (seconds <= ramp_up_seconds) {
    // (speed_delta * seconds) * (seconds + 1) / 2, ordered to avoid overflow.
    if (seconds % 2 == 1) return (seconds + 1) / 2 * speed_delta * seconds;
    return seconds / 2 * speed_delta * (seconds + 1);
  }
  std::int64_t ramp_up_rows = rate_rows_at_second(ramp_up_seconds, rows_per_second, ramp_up_seconds);
  return ramp_up_rows + (seconds - ramp_up_seconds) * rows_per_second;
}

}  // namespace flow::connectors
