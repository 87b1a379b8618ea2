// The coordinator: one actor per query. It numbers epochs, plans them with the sources, logs offsets
// before running them, waits for the sinks to commit, keeps the operators' state as of the last
// commit, and restarts the dataflow after a failure, replaying the uncommitted epochs from their
// logged offsets. Every decision is flow::runtime::query_lifecycle's (a plain class, over the
// epoch_log); the actor feeds it messages and carries out the actions it returns.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "protocol.hpp"
#include "query_shared.hpp"

#include "flow/dataframe.hpp"
#include "flow/graph.hpp"
#include "flow/runtime/progress.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/runtime/checkpoint_store.hpp"
#include "flow/runtime/query_lifecycle.hpp"

namespace flow::runtime {

class cluster_driver;

struct query_setup {
  std::shared_ptr<dataflow_graph> graph;                // parallelism resolved and validated at spawn
  std::vector<std::shared_ptr<source_reader>> readers;  // one per graph->sources(), in that order
  std::vector<std::shared_ptr<sink_writer>> writers;    // one per graph->sinks(), in that order
  // The trigger, pipelining, failure and timing settings; start_query fills in the sources and sinks.
  lifecycle_options lifecycle;
  std::size_t parallelism = 2;                          // for vertices that do not set theirs
  std::size_t credits_per_instance = 2;
  std::size_t max_unit_bytes = 256 * 1024;
  std::size_t progress_history = 100;
  std::shared_ptr<query_shared> shared;
  std::string checkpoint_location;  // empty: no durable checkpoint
  checkpoint_options checkpoint;
  // The operators' states: their backend, and with one that keeps files, a directory this run owns
  // (removed when the query ends).
  state_backend_config state_backend;
  std::string state_directory;
  // A driver's workers, which run the operator vertices' instances (placed anew for every generation of
  // the dataflow, over the workers not lost); null: everything runs in this process.
  std::shared_ptr<cluster_driver> cluster;
};

// Validates the graph, prepares the sources and opens the sinks in the calling thread (their errors reach
// the caller), then spawns the coordinator, which runs the query; returns the query's handle.
std::shared_ptr<query_control> start_query(caf::actor_system& sys, query_setup setup);

// The query handle's implementation: reads query_shared, sends stop to the coordinator.
std::shared_ptr<query_control> make_query_control(coordinator_actor coordinator, std::shared_ptr<query_shared> shared);

std::string random_uuid();

}  // namespace flow::runtime
