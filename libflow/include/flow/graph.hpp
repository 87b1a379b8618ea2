// The physical dataflow graph the runtime executes: vertices (a source, a chain of operators, a sink),
// each run as `parallelism` instances, and edges that say how one vertex's output is split among the
// next vertex's instances. Both the relational API (flow::compile_graph) and the topology builder
// produce it. Plain data, no actors: validated and explained here, run by the actors layer.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "flow/plan.hpp"
#include "flow/source_sink.hpp"
#include "flow/stream_operator.hpp"
#include "flow/trigger.hpp"

namespace flow {

// How an edge splits a batch among the target's instances.
//   forward: instance i sends to instance i (equal parallelism; no copy, no reordering);
//   rebalance: whole batches round-robin;
//   hash: rows by the hash of key columns (flow::hash_partition): a key always reaches the same instance;
//   broadcast: every instance gets every batch.
enum class partitioning { forward, rebalance, hash, broadcast };
std::string_view to_string(partitioning p);

struct sink_spec {
  std::string format = "console";  // see flow/registry.hpp for the formats
  options opts;
  std::string query_name;
  output_mode mode = output_mode::append;
  flow::trigger trigger;
  std::shared_ptr<foreach_writer> foreach;     // format "foreach"
  foreach_batch_function foreach_batch;        // format "foreachBatch"
};

enum class vertex_kind { source, operators, sink };

struct graph_vertex {
  std::string name;
  vertex_kind kind = vertex_kind::operators;
  // Instances; 0 takes the session's parallelism. A source reads with one reader and decodes and runs
  // its chain in `parallelism` instances; a sink has one instance.
  std::size_t parallelism = 0;
  scan_spec scan;                   // source
  std::vector<operator_ptr> chain;  // source, operators: fused, each batch passes them in order
  sink_spec sink;                   // sink
  std::vector<std::string> sink_keys;  // sink: the grouping keys update mode upserts by
  schema_ptr input;                 // operators, sink: the rows each input receives
  schema_ptr output;                // source, operators: the chain's output (the scan's schema when empty)
};

struct graph_edge {
  std::size_t from = 0, to = 0;  // vertex indexes
  std::size_t input = 0;         // which input of `to` (a two-input operator); edges into one input form a union
  partitioning kind = partitioning::rebalance;
  std::vector<std::string> keys;  // hash: columns of from's output
};

// How many operators of the vertex's chain keep a durable state (one checkpoint slot per instance each).
std::size_t durable_states(const graph_vertex& vertex);

// What a source vertex's instances decode raw records with: format_decoder, or when the vertex's chain starts
// with an operator that reads some columns only (stream_operator::columns_read) and the format can skip
// columns, format_decoder converting only those (decoder::converting_only).
std::shared_ptr<const decoder> chain_decoder(std::shared_ptr<const decoder> format_decoder, const graph_vertex& source);

class dataflow_graph {
 public:
  // Each returns the new vertex's index.
  std::size_t add_source(std::string name, scan_spec scan, std::vector<operator_ptr> chain = {},
                         std::size_t parallelism = 0);
  std::size_t add_operators(std::string name, schema_ptr input, std::vector<operator_ptr> chain,
                            std::size_t parallelism = 0);
  std::size_t add_sink(std::string name, schema_ptr input, sink_spec sink);
  void connect(std::size_t from, std::size_t to, partitioning kind, std::vector<std::string> keys = {},
               std::size_t input = 0);
  // Appends op to vertex v's chain (fusing it with what runs there).
  void append(std::size_t v, operator_ptr op);

  const std::vector<graph_vertex>& vertices() const { return vertices_; }
  std::vector<graph_vertex>& vertices() { return vertices_; }
  const std::vector<graph_edge>& edges() const { return edges_; }
  const graph_vertex& vertex(std::size_t v) const { return vertices_.at(v); }
  std::vector<std::size_t> inputs_of(std::size_t v) const;   // edge indexes into v
  std::vector<std::size_t> outputs_of(std::size_t v) const;  // edge indexes out of v
  std::vector<std::size_t> sources() const;
  std::vector<std::size_t> sinks() const;
  // Every vertex after all the vertices it reads from.
  std::vector<std::size_t> topological_order() const;

  // Sets every parallelism of 0 to default_parallelism and every sink's to 1.
  void resolve_parallelism(std::size_t default_parallelism);
  // Throws flow::error naming the vertex and what to change: a cycle; a source with inputs; a vertex
  // without input or (non-sink) without output; edges into one input with different schemas; hash keys
  // missing from the upstream output; a keyed operator not fed by a hash edge on its keys (parallelism
  // above 1); a forward edge between different parallelisms (after resolve_parallelism).
  void validate() const;
  // One line per vertex, sources first: name, kind, parallelism, chain, inputs with their partitioning.
  std::string explain() const;

 private:
  std::size_t add(graph_vertex v);
  std::vector<graph_vertex> vertices_;
  std::vector<graph_edge> edges_;
};

}  // namespace flow
