#include "flow/runtime/progress.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "flow/formats.hpp"

namespace flow::runtime {

std::string iso8601_now() {
  auto now = std::chrono::system_clock::now();
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return iso_timestamp(timestamp{millis * 1000});  // whole milliseconds: ".mmmZ", as Spark's timestamp field
}

namespace {

std::string number(double v) {
  if (!std::isfinite(v)) return "0.0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string offset_json(const std::string& offset) { return offset.empty() ? "null" : offset; }

void metrics_json(std::ostringstream& out, const connector_metrics& metrics) {
  out << "{";
  for (std::size_t i = 0; i < metrics.size(); ++i)
    out << (i ? "," : "") << "\"" << json_escape(metrics[i].first) << "\":" << metrics[i].second;
  out << "}";
}

// Spark's eventTime: the epoch's earliest, latest and average event time (when it saw rows) and the
// watermark it ran with, as ISO-8601 texts; left out for a query without a watermark, as Spark does.
void event_time_json(std::ostringstream& out, const query_progress& p) {
  const auto iso = [](std::int64_t micros) {
    std::string quoted = "\"";
    quoted += iso_timestamp(timestamp{micros});
    quoted += '"';
    return quoted;
  };
  const auto& seen = p.stats.event_times;
  if (!p.watermark && seen.count == 0) return;
  out << ",\"eventTime\":{";
  if (seen.count > 0)
    out << "\"avg\":" << iso(static_cast<std::int64_t>(std::llround(seen.sum / static_cast<double>(seen.count))))
        << ",\"max\":" << iso(seen.max) << ",\"min\":" << iso(seen.min) << (p.watermark ? "," : "");
  if (p.watermark) out << "\"watermark\":" << iso(std::max<std::int64_t>(0, *p.watermark));
  out << "}";
}

}  // namespace

std::string to_json(const query_progress& p) {
  std::ostringstream out;
  out << "{\"id\":\"" << json_escape(p.id) << "\",\"runId\":\"" << json_escape(p.run_id) << "\",\"name\":";
  if (p.name.empty()) out << "null";
  else out << "\"" << json_escape(p.name) << "\"";
  out << ",\"timestamp\":\"" << p.timestamp << "\",\"batchId\":" << p.batch_id
      << ",\"numInputRows\":" << p.stats.input_rows
      << ",\"inputRowsPerSecond\":" << number(p.input_rows_per_second)
      << ",\"processedRowsPerSecond\":" << number(p.processed_rows_per_second)
      << ",\"durationMs\":{\"addBatch\":" << p.add_batch_ms << ",\"latestOffset\":" << p.latest_offset_ms
      << ",\"triggerExecution\":" << p.trigger_execution_ms << ",\"walCommit\":" << p.wal_commit_ms << "}";
  event_time_json(out, p);
  out << ",\"stateOperators\":[";
  for (std::size_t i = 0; i < p.state_operators.size(); ++i) {
    const auto& op = p.state_operators[i];
    const auto figure = [&](const std::vector<std::int64_t>& figures) { return i < figures.size() ? figures[i] : 0; };
    out << (i ? "," : "") << "{\"operatorName\":\"" << json_escape(op.name)
        << "\",\"numRowsTotal\":" << figure(p.stats.state_rows_total)
        << ",\"numRowsUpdated\":" << figure(p.stats.state_rows_updated)
        << ",\"allUpdatesTimeMs\":" << figure(p.stats.state_update_micros) / 1000
        << ",\"numRowsRemoved\":" << figure(p.stats.state_rows_removed)
        << ",\"numRowsDroppedByWatermark\":" << figure(p.stats.state_rows_dropped_by_watermark)
        << ",\"commitTimeMs\":" << op.commit_time_ms
        << ",\"memoryUsedBytes\":" << figure(p.stats.state_memory_bytes)
        << ",\"numShufflePartitions\":" << op.shuffle_partitions
        << ",\"numStateStoreInstances\":" << op.state_store_instances
        << ",\"customMetrics\":{\"deltaBytes\":" << op.delta_bytes << ",\"snapshotBytes\":" << op.snapshot_bytes
        << ",\"stateOnCurrentVersionSizeBytes\":" << figure(p.stats.state_memory_bytes) << "}}";
  }
  out << "],\"sources\":[";
  for (std::size_t i = 0; i < p.sources.size(); ++i) {
    const auto& source = p.sources[i];
    const double share = p.stats.input_rows > 0 ? static_cast<double>(source.input_rows) / p.stats.input_rows : 0.0;
    out << (i ? "," : "") << "{\"description\":\"" << json_escape(source.description)
        << "\",\"startOffset\":" << offset_json(source.start_offset)
        << ",\"endOffset\":" << offset_json(source.end_offset) << ",\"numInputRows\":" << source.input_rows
        << ",\"inputRowsPerSecond\":" << number(p.input_rows_per_second * share)
        << ",\"processedRowsPerSecond\":" << number(p.processed_rows_per_second * share)
        << ",\"numMalformedRows\":" << source.malformed_rows << ",\"metrics\":";
    metrics_json(out, source.metrics);
    out << "}";
  }
  out << "],\"sink\":{\"description\":\"" << json_escape(p.sink_description)
      << "\",\"numOutputRows\":" << p.stats.output_rows << ",\"metrics\":";
  metrics_json(out, p.sink_metrics);
  out << "},\"numRestarts\":" << p.restarts << "}";
  return out.str();
}

}  // namespace flow::runtime
