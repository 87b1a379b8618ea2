// Per-epoch figures and the progress report (Spark's StreamingQueryProgress as JSON).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flow/source_sink.hpp"

namespace flow::runtime {

// Counted along the dataflow and summed at the sink: each actor adds its own figures to the barrier.
struct epoch_stats {
  std::int64_t input_rows = 0;
  std::vector<std::int64_t> input_rows_per_source;  // by the source's index among the graph's sources
  std::int64_t input_bytes = 0;
  std::int64_t malformed_rows = 0;
  std::vector<std::int64_t> malformed_rows_per_source;
  std::int64_t output_rows = 0;
  std::int64_t state_rows_total = 0;
  std::int64_t state_rows_updated = 0;
  std::int64_t state_memory_bytes = 0;
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
    for (std::size_t i = 0; i < o.input_rows_per_source.size(); ++i) add_at(input_rows_per_source, i, o.input_rows_per_source[i]);
    for (std::size_t i = 0; i < o.malformed_rows_per_source.size(); ++i)
      add_at(malformed_rows_per_source, i, o.malformed_rows_per_source[i]);
    source_metric_names.insert(source_metric_names.end(), o.source_metric_names.begin(), o.source_metric_names.end());
    source_metric_values.insert(source_metric_values.end(), o.source_metric_values.begin(), o.source_metric_values.end());
    source_metric_sources.insert(source_metric_sources.end(), o.source_metric_sources.begin(), o.source_metric_sources.end());
    input_rows += o.input_rows;
    input_bytes += o.input_bytes;
    malformed_rows += o.malformed_rows;
    output_rows += o.output_rows;
    state_rows_total += o.state_rows_total;
    state_rows_updated += o.state_rows_updated;
    state_memory_bytes += o.state_memory_bytes;
  }

 private:
  static void add_at(std::vector<std::int64_t>& per_source, std::size_t source, std::int64_t n) {
    if (per_source.size() <= source) per_source.resize(source + 1, 0);
    per_source[source] += n;
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
  std::size_t state_operators = 0;      // stateful operators of the graph (Spark: one entry each)
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
