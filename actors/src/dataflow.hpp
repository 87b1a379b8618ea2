// The actors that carry an epoch's data through a dataflow graph: per source vertex one reader actor
// feeding the vertex's instances, per operator vertex `parallelism` instances running its chain, per sink
// one writer actor. They carry batches and count; the compute they call lives in libflow and connectors.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "protocol.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/graph.hpp"

namespace flow::runtime {

// Who to tell when an actor fails, and which incarnation of the dataflow it belongs to.
struct supervision {
  coordinator_actor coordinator;
  std::uint64_t generation = 0;
};

struct graph_setup {
  std::shared_ptr<const dataflow_graph> graph;          // validated, parallelism resolved
  std::vector<std::shared_ptr<source_reader>> readers;  // one per graph->sources(), in that order
  std::vector<std::shared_ptr<sink_writer>> writers;    // one per graph->sinks(), in that order
  std::size_t credits_per_instance = 2;                 // units a source instance may hold
  state_placement states;  // the instances' states: backend, and a directory of this dataflow's own
};

// The actors of one incarnation of a graph.
struct running_graph {
  std::vector<source_actor> readers;
  std::vector<vertex_actor> instances;  // of every source and operator vertex
  std::vector<sink_actor> sinks;
  std::vector<caf::actor_addr> addresses() const;
  std::vector<caf::actor> handles() const;
};

// The durable operator states of the graph's instances, empty, numbered as spawn_graph numbers them
// (vertex by vertex, instance by instance, in chain order): the epoch log's slots.
std::vector<std::unique_ptr<operator_state>> state_slots(const dataflow_graph& graph,
                                                         const state_placement& placement = {});

// restored(slot): the copy each durable state starts from (a directory copy is read by the instance when
// it starts, so it must outlive this call: the coordinator keeps it in the generation's directory).
running_graph spawn_graph(caf::actor_system& sys, const graph_setup& setup,
                          const std::function<state_copy(std::size_t slot)>& restored, supervision sup);

}  // namespace flow::runtime
