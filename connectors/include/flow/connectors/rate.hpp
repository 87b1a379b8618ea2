// Spark's rate source: rows (timestamp, value) generated at a fixed rate, for tests and benchmarks.
#pragma once

#include <cstdint>
#include <memory>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// timestamp: timestamp, value: int64 (both non-null).
flow::schema_ptr rate_source_schema();

// Throws flow::error naming the option when rowsPerSecond, rampUpTime or numPartitions is invalid.
void validate_rate_options(const flow::options& opts);

// Options: rowsPerSecond (default 1), rampUpTime (default "0s"; a duration, whole seconds count),
// numPartitions (default 1). Offsets are {"seconds":N,"startTimeMs":T}: N seconds after the source's
// start time T (kept in the offset, so the rows of a range never depend on the reader instance).
// value is the row index 0, 1, 2, ...; the rows of a range are a pure function of the range.
std::unique_ptr<flow::source_reader> make_rate_source(const flow::options& opts);

// Spark's RateStreamProvider.valueAtSecond: the number of rows generated in the first `seconds` seconds,
// with the rate ramping up linearly over ramp_up_seconds.
std::int64_t rate_rows_at_second(std::int64_t seconds, std::int64_t rows_per_second, std::int64_t ramp_up_seconds);

}  // namespace flow::connectors

namespace flow {
using connectors::make_rate_source;
}  // namespace flow
