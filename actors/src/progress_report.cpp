#include "progress_report.hpp"

#include <algorithm>
#include <cmath>

#include "flow/watermark.hpp"

namespace flow::runtime {

progress_reporter::progress_reporter(std::shared_ptr<query_shared> shared, const dataflow_graph& graph,
                                     std::vector<std::string> source_descriptions,
                                     std::vector<std::string> sink_descriptions, std::size_t history)
    : shared_(std::move(shared)), source_descriptions_(std::move(source_descriptions)), history_(history) {
  // Graph order, as state_slots numbers the slots: vertex by vertex, instance by instance, chain order.
  for (const auto& v : graph.vertices()) {
    const std::size_t first = state_operators_.size();
    for (const auto& op : v.chain)
      if (auto state = op->make_state(); state && state->durable()) {
        const auto parallelism = static_cast<std::int64_t>(v.parallelism);
        state_operators_.push_back({op->name(), parallelism, parallelism, 0, 0, 0});
      }
    for (std::size_t i = 0; i < v.parallelism; ++i)
      for (std::size_t op = first; op < state_operators_.size(); ++op) slot_operators_.push_back(op);
  }
  watermarked_ = !watermark_delays(graph).empty();
  for (const auto& description : sink_descriptions)
    sink_description_ += (sink_description_.empty() ? "" : ", ") + description;
}

// A report with the query's names, the time, the sources' and sinks' descriptions.
query_progress progress_reporter::new_progress(std::int64_t batch_id) const {
  query_progress p;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    p.id = shared_->id;
    p.run_id = shared_->run_id;
    p.name = shared_->name;
  }
  p.timestamp = iso8601_now();
  p.batch_id = batch_id;
  p.state_operators = state_operators_;
  for (const auto& description : source_descriptions_) p.sources.push_back({description, {}, {}, 0, {}});
  p.sink_description = sink_description_;
  return p;
}

void progress_reporter::publish(query_progress p) {
  last_state_stats_.state_rows_total = p.stats.state_rows_total;
  last_state_stats_.state_memory_bytes = p.stats.state_memory_bytes;
  shared_->update([&](query_shared& shared) {
    shared.progress.push_back(std::move(p));
    while (shared.progress.size() > history_) shared.progress.pop_front();
  });
}

namespace {

// Spreads the checkpoint's write time over the operators by the bytes written for each.
void add_checkpoint_figures(std::vector<query_progress::state_operator>& operators,
                            const std::vector<std::size_t>& slot_operators, const checkpoint_commit_stats& commit) {
  std::size_t state_bytes = 0;
  for (std::size_t slot = 0; slot < slot_operators.size(); ++slot) {
    auto& op = operators[slot_operators[slot]];
    const std::size_t delta = slot < commit.delta_bytes.size() ? commit.delta_bytes[slot] : 0;
    const std::size_t snapshot = slot < commit.snapshot_bytes.size() ? commit.snapshot_bytes[slot] : 0;
    op.delta_bytes += static_cast<std::int64_t>(delta);
    op.snapshot_bytes += static_cast<std::int64_t>(snapshot);
    state_bytes += delta + snapshot;
  }
  for (auto& op : operators) {
    const double share = state_bytes ? static_cast<double>(op.delta_bytes + op.snapshot_bytes) / state_bytes : 0.0;
    op.commit_time_ms = std::llround(commit.duration_ms * share);
  }
}

}  // namespace

void progress_reporter::epoch_committed(lifecycle_actions::publish_progress report, lifecycle_clock::time_point now,
                                        const checkpoint_commit_stats* checkpoint) {
  query_progress p = new_progress(report.epoch);
  if (checkpoint && checkpoint->epoch == report.epoch)
    add_checkpoint_figures(p.state_operators, slot_operators_, *checkpoint);
  auto& logged = report.logged;
  const auto& info = logged.info;
  p.stats = std::move(logged.info.stats);
  const auto& stats = p.stats;
  p.trigger_execution_ms = millis_between(info.trigger_start, now);
  p.add_batch_ms = millis_between(info.run_start, now);
  p.latest_offset_ms = info.latest_offset_ms;
  p.wal_commit_ms = info.wal_commit_ms;
  double exec_seconds = std::max(1e-6, std::chrono::duration<double>(now - info.trigger_start).count());
  p.processed_rows_per_second = static_cast<double>(stats.input_rows) / exec_seconds;
  if (info.since_previous_trigger_s > 0)
    p.input_rows_per_second = static_cast<double>(stats.input_rows) / info.since_previous_trigger_s;
  p.restarts = report.restarts;
  if (watermarked_) p.watermark = info.watermark;
  for (std::size_t i = 0; i < p.sources.size(); ++i) {
    p.sources[i].start_offset = logged.start.at(i);
    p.sources[i].end_offset = logged.end.at(i);
    p.sources[i].input_rows = i < stats.input_rows_per_source.size() ? stats.input_rows_per_source[i] : 0;
    p.sources[i].malformed_rows = i < stats.malformed_rows_per_source.size() ? stats.malformed_rows_per_source[i] : 0;
  }
  p.sink_metrics = std::move(logged.info.sink_metrics);
  // Readers on several nodes (the driver's, and Kafka's instances on the workers) each report what they read.
  for (std::size_t m = 0; m < stats.source_metric_names.size(); ++m) {
    const std::size_t source = m < stats.source_metric_sources.size() ? stats.source_metric_sources[m] : 0;
    if (source >= p.sources.size() || m >= stats.source_metric_values.size()) continue;
    auto& metrics = p.sources[source].metrics;
    const auto& name = stats.source_metric_names[m];
    auto same = std::find_if(metrics.begin(), metrics.end(), [&](const auto& metric) { return metric.first == name; });
    if (same == metrics.end()) metrics.emplace_back(name, stats.source_metric_values[m]);
    else same->second += stats.source_metric_values[m];
  }
  publish(std::move(p));
}

void progress_reporter::idle(const lifecycle_actions::publish_idle_progress& report, lifecycle_clock::time_point now) {
  query_progress p = new_progress(report.next_epoch);
  p.stats.state_rows_total = last_state_stats_.state_rows_total;
  p.stats.state_memory_bytes = last_state_stats_.state_memory_bytes;
  p.trigger_execution_ms = p.latest_offset_ms = millis_between(report.trigger_start, now);
  for (std::size_t i = 0; i < p.sources.size(); ++i)
    p.sources[i].start_offset = p.sources[i].end_offset = report.offsets.at(i);
  for (std::size_t i = 0; i < report.answers.size() && i < p.sources.size(); ++i)
    if (const auto& answer = report.answers[i])
      for (std::size_t m = 0; m < answer->metric_names.size() && m < answer->metric_values.size(); ++m)
        p.sources[i].metrics.emplace_back(answer->metric_names[m], answer->metric_values[m]);
  publish(std::move(p));
}

}  // namespace flow::runtime
