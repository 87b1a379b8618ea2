// The actors that carry an epoch's data through a dataflow graph: per source vertex one reader actor
// feeding the vertex's instances, per operator vertex `parallelism` instances running its chain, per sink
// one writer actor. They carry batches and count; the compute they call lives in libflow and connectors.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "protocol.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/runtime/instance_placement.hpp"
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
  bool sinks_await_release = false;  // a durable query: sinks commit an epoch once released (epoch_release.hpp)
};

// What a worker adds to the instances it runs (null in the driver's own): it refuses messages from nodes
// that have not joined, and counts rows, file bytes read and epochs for the worker's last lines.
class instance_guard {
 public:
  virtual ~instance_guard() = default;
  virtual bool admits(const caf::strong_actor_ptr& sender) = 0;
  virtual void received(std::size_t rows) = 0;
  virtual void read_from_files(std::size_t bytes) = 0;  // a source instance's share of an epoch's files
  virtual void completed(std::int64_t epoch) = 0;
  virtual void unacknowledged(std::size_t bytes) = 0;  // sent to one instance on another node, not yet acked
};

// The bound on the bytes (flow::batch::byte_size) an instance has sent to one instance on another node and
// that one has not yet processed: past it the sender takes up no further input (a unit, a file's chunk, an
// upstream's batch or barrier) until acks come back, so nothing queues without bound in CAF's middleman,
// whatever feeds the sender. It can be exceeded by what one input produces. Within a node batches move by
// reference and the source's credits and the epochs in flight bound them.
constexpr std::size_t remote_edge_bytes = std::size_t{4} << 20;

// One instance of a vertex: what instance_fun runs, on the driver or on a worker (cluster_worker.cpp makes
// one from a deploy message).
struct instance_setup {
  std::shared_ptr<const dataflow_graph> graph;
  std::size_t vertex = 0, instance = 0;
  std::shared_ptr<const decoder> chunk_decoder;         // instances of a source vertex with raw records
  std::shared_ptr<source_reader> range_reader;          // instances of a source vertex that read its ranges
  std::vector<std::vector<batch_input_actor>> targets;  // per outgoing edge, per target instance
  std::vector<std::uint64_t> slots;                     // the epoch log's slot of each durable state
  std::size_t first_state_operator = 0;  // the graph-wide index of its first durable state's operator
  std::vector<state_copy> restored;      // each durable state's copy to start from
  state_placement states;                // this instance's own
  std::size_t source_index = 0;          // instances of a source vertex: which source
  supervision sup;
  std::shared_ptr<instance_guard> guard;  // on a worker only
};

// Spawns the instance actor (the same on every node).
vertex_actor spawn_instance(caf::actor_system& sys, instance_setup setup);

// Runs an operator vertex's instance, or a self-reading source vertex's (self_reading_sources), on a worker:
// (worker, its setup) -> its handle. Throws flow::error when the worker cannot (lost, or refusing).
using remote_deploy = std::function<batch_input_actor(std::size_t worker, const instance_setup& setup)>;

// Where the operator vertices' instances run: nowhere else than here without a placement.
struct remote_placement {
  instance_placement placement;
  remote_deploy deploy;
};

// The source vertices whose instances can read their source's files or ranges themselves
// (flow::source_reader::instances_can_read_files, instances_can_read_ranges): in a cluster they run on the
// workers, and the reader on the driver only plans each epoch's files (flow::file_read_plan) or ranges
// (flow::range_read_plan).
std::vector<std::size_t> self_reading_sources(const graph_setup& setup);

// The actors of one incarnation of a graph.
struct running_graph {
  std::vector<source_actor> readers;
  std::vector<vertex_actor> instances;  // of every source and operator vertex, local ones
  std::vector<batch_input_actor> remote_instances;  // of operator vertices, on workers
  std::vector<sink_actor> sinks;
  std::vector<caf::actor_addr> addresses() const;
  std::vector<caf::actor> handles() const;
};

// The durable operator states of the graph's instances, empty, numbered as spawn_graph numbers them
// (vertex by vertex, instance by instance, in chain order): the epoch log's slots.
std::vector<std::unique_ptr<operator_state>> state_slots(const dataflow_graph& graph,
                                                         const state_placement& placement = {});

// restored(slot, as_rows): the copy each durable state starts from (a directory copy is read by the instance
// when it starts, so it must outlive this call: the coordinator keeps it in the generation's directory;
// as_rows: the instance runs on a worker, which cannot see the driver's directories). remote: where the
// operator vertices' instances run (null: all here); sources and sinks always run here.
running_graph spawn_graph(caf::actor_system& sys, const graph_setup& setup,
                          const std::function<state_copy(std::size_t slot, bool as_rows)>& restored, supervision sup,
                          const remote_placement* remote = nullptr);

}  // namespace flow::runtime
