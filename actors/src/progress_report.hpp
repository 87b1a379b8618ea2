// A query's progress reports: built from a committed epoch's log entry or from an idle plan, and
// published to query_shared, which the query handle renders as Spark's StreamingQueryProgress JSON.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "query_shared.hpp"

#include "flow/graph.hpp"
#include "flow/runtime/checkpoint_store.hpp"
#include "flow/runtime/query_lifecycle.hpp"

namespace flow::runtime {

class progress_reporter {
 public:
  progress_reporter(std::shared_ptr<query_shared> shared, const dataflow_graph& graph,
                    std::vector<std::string> source_descriptions, std::vector<std::string> sink_descriptions,
                    std::size_t history);

  // now: when the epoch's commit (or the idle plan) was handled. checkpoint: what the checkpoint store wrote
  // for the epoch (its commit_stats(epoch)), null without a checkpoint.
  void epoch_committed(lifecycle_actions::publish_progress report, lifecycle_clock::time_point now,
                       const checkpoint_commit_stats* checkpoint);
  void idle(const lifecycle_actions::publish_idle_progress& report, lifecycle_clock::time_point now);

 private:
  query_progress new_progress(std::int64_t batch_id) const;
  void publish(query_progress p);

  std::shared_ptr<query_shared> shared_;
  std::vector<std::string> source_descriptions_;
  std::string sink_description_;  // several sinks: joined by ", "
  std::vector<query_progress::state_operator> state_operators_;  // names and parallelism, figures zero
  std::vector<std::size_t> slot_operators_;  // each checkpoint slot's index in state_operators_
  std::size_t history_;
  bool watermarked_ = false;  // the graph has a with_watermark: reports carry eventTime.watermark
  epoch_stats last_state_stats_;  // the state figures of the last report, repeated by idle ones
};

}  // namespace flow::runtime
