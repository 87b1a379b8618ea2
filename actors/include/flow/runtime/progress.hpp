// Per-epoch figures and the progress report (Spark's StreamingQueryProgress as JSON).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flow/source_sink.hpp"
#include "flow/stream_operator.hpp"

namespace flow::runtime {

// Counted along the dataflow and summed at the sink: each actor adds its own figures to the barrier.
struct epoch_stats {
  std::int64_t input_rows = 0;
  std::vector<std::int64_t> input_rows_per_source;  // by the source's index among the graph's sources
  std::int64_t input_bytes = 0;
  std::int64_t malformed_rows = 0;
  std::vector<std::int64_t> malformed_rows_per_source;
  std::int64_t output_rows = 0;
  // Per stateful operator of the graph (graph order: vertex by vertex, chain order), summed over its instances.
  std::vector<std::int64_t> state_rows_total;
  std::vector<std::int64_t> state_rows_updated;   // rows of the epoch's changes
  std::vector<std::int64_t> state_rows_removed;   // rows removed in the epoch (stream_operator::state_rows_removed)
  std::vector<std::int64_t> state_memory_bytes;
  std::vector<std::int64_t> state_update_micros;  // time in the operator's process calls
  // Rows dropped as older than the watermark, per stateful operator; an operator without durable state
  // (a partial aggregation) counts for the next stateful one.
  std::vector<std::int64_t> state_rows_dropped_by_watermark;
  // Event times the with_watermark operators saw: over all rows, and the latest per watermarked input
  // (operator_context::no_watermark: none).
  event_time_stats event_times;
  std::vector<std::int64_t> latest_event_time;
  // Each source's connector metrics at the end of reading the epoch (one barrier per source carries them):
  // metric i is source_metric_sources[i]'s.
  std::vector<std::string> source_metric_names;
  std::vector<std::int64_t> source_metric_values;
  std::vector<std::uint32_t> source_metric_sources;

  void count_input(std::size_t source, std::int64_t rows) {
    input_rows += rows;
    add_at(input_rows_per_source, source, rows);
  }
  void count_malformed(std::size_t source, std::int64_t rows) {
    malformed_rows += rows;
    add_at(malformed_rows_per_source, source, rows);
  }

  void add(const epoch_stats& o) {
    add_all(input_rows_per_source, o.input_rows_per_source);
    add_all(malformed_rows_per_source, o.malformed_rows_per_source);
    add_all(state_rows_total, o.state_rows_total);
    add_all(state_rows_updated, o.state_rows_updated);
    add_all(state_rows_removed, o.state_rows_removed);
    add_all(state_memory_bytes, o.state_memory_bytes);
    add_all(state_update_micros, o.state_update_micros);
    add_all(state_rows_dropped_by_watermark, o.state_rows_dropped_by_watermark);
    event_times.add(o.event_times);
    for (std::size_t i = 0; i < o.latest_event_time.size(); ++i) see_event_time(i, o.latest_event_time[i]);
    source_metric_names.insert(source_metric_names.end(), o.source_metric_names.begin(), o.source_metric_names.end());
    source_metric_values.insert(source_metric_values.end(), o.source_metric_values.begin(), o.source_metric_values.end());
    source_metric_sources.insert(source_metric_sources.end(), o.source_metric_sources.begin(), o.source_metric_sources.end());
    input_rows += o.input_rows;
    input_bytes += o.input_bytes;
    malformed_rows += o.malformed_rows;
    output_rows += o.output_rows;
  }

  void see_event_time(std::size_t input, std::int64_t latest) {
    if (latest_event_time.size() <= input) latest_event_time.resize(input + 1, operator_context::no_watermark);
    latest_event_time[input] = std::max(latest_event_time[input], latest);
  }
  static void add_at(std::vector<std::int64_t>& figures, std::size_t index, std::int64_t n) {
    if (figures.size() <= index) figures.resize(index + 1, 0);
    figures[index] += n;
  }

 private:
  static void add_all(std::vector<std::int64_t>& figures, const std::vector<std::int64_t>& more) {
    for (std::size_t i = 0; i < more.size(); ++i) add_at(figures, i, more[i]);
  }
};

struct query_progress {
  std::string id;
  std::string run_id;
  std::string name;
  std::string timestamp;            // trigger start, ISO-8601 UTC
  std::int64_t batch_id = 0;
  epoch_stats stats;
  double input_rows_per_second = 0;     // over the interval since the previous trigger started
  double processed_rows_per_second = 0; // over this trigger's execution time
  std::int64_t latest_offset_ms = 0;
  std::int64_t add_batch_ms = 0;
  std::int64_t wal_commit_ms = 0;
  std::int64_t trigger_execution_ms = 0;
  std::int64_t restarts = 0;            // stage restarts while running this epoch
  // The watermark the epoch ran with (eventTime.watermark: 1970-01-01 before the first, as Spark); nullopt
  // when the query has no with_watermark.
  std::optional<std::int64_t> watermark;
  // Spark's StateOperatorProgress, one per stateful operator of the graph, in graph order. The row and memory
  // figures are stats' state_* at the operator's index.
  struct state_operator {
    std::string name;
    std::int64_t shuffle_partitions = 0;     // the operator's parallelism
    std::int64_t state_store_instances = 0;  // one per instance
    std::int64_t commit_time_ms = 0;         // the checkpoint's write of its deltas and snapshots; 0 without one
    std::int64_t delta_bytes = 0;
    std::int64_t snapshot_bytes = 0;
  };
  std::vector<state_operator> state_operators;
  struct source {
    std::string description;
    std::string start_offset;           // JSON text, or empty for null
    std::string end_offset;
    std::int64_t input_rows = 0;
    connector_metrics metrics;
    std::int64_t malformed_rows = 0;
  };
  std::vector<source> sources;
  std::string sink_description;         // several sinks: their descriptions joined by ", "
  connector_metrics sink_metrics;
};

std::string to_json(const query_progress& p);
std::string iso8601_now();

}  // namespace flow::runtime
