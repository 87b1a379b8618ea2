#include "flow/graph.hpp"

#include <algorithm>
#include <sstream>

namespace flow {

std::string_view to_string(partitioning p) {
  switch (p) {
    case partitioning::forward: return "forward";
    case partitioning::rebalance: return "rebalance";
    case partitioning::hash: return "hash";
    case partitioning::broadcast: return "broadcast";
  }
  return "?";
}

namespace {

std::string_view to_string(vertex_kind k) {
  switch (k) {
    case vertex_kind::source: return "source";
    case vertex_kind::operators: return "operators";
    case vertex_kind::sink: return "sink";
  }
  return "?";
}

std::string quoted(const graph_vertex& v) { return "vertex '" + v.name + "'"; }

schema_ptr chain_output(const schema_ptr& input, const std::vector<operator_ptr>& chain) {
  return chain.empty() ? input : chain.back()->output_schema();
}

}  // namespace

std::size_t dataflow_graph::add(graph_vertex v) {
  if (v.name.empty()) v.name = std::string(to_string(v.kind)) + "-" + std::to_string(vertices_.size());
  for (const auto& other : vertices_)
    if (other.name == v.name)
      throw error("dataflow graph: two vertices are named '" + v.name + "'; give each a name of its own");
  for (const auto& op : v.chain)
    if (!op) throw error("dataflow graph: " + quoted(v) + " has an empty operator in its chain");
  vertices_.push_back(std::move(v));
  return vertices_.size() - 1;
}

std::size_t dataflow_graph::add_source(std::string name, scan_spec scan, std::vector<operator_ptr> chain,
                                       std::size_t parallelism) {
  if (!scan.schema) throw error("dataflow graph: source '" + name + "' has no schema; resolve the scan first");
  graph_vertex v;
  v.name = std::move(name);
  v.kind = vertex_kind::source;
  v.parallelism = parallelism;
  v.input = scan.schema;
  v.output = chain_output(scan.schema, chain);
  v.scan = std::move(scan);
  v.chain = std::move(chain);
  return add(std::move(v));
}

std::size_t dataflow_graph::add_operators(std::string name, schema_ptr input, std::vector<operator_ptr> chain,
                                          std::size_t parallelism) {
  if (!input) throw error("dataflow graph: operator vertex '" + name + "' needs its input schema");
  graph_vertex v;
  v.name = std::move(name);
  v.kind = vertex_kind::operators;
  v.parallelism = parallelism;
  v.output = chain_output(input, chain);
  v.input = std::move(input);
  v.chain = std::move(chain);
  return add(std::move(v));
}

std::size_t dataflow_graph::add_sink(std::string name, schema_ptr input, sink_spec sink) {
  if (!input) throw error("dataflow graph: sink '" + name + "' needs its input schema");
  graph_vertex v;
  v.name = std::move(name);
  v.kind = vertex_kind::sink;
  v.parallelism = 1;
  v.input = std::move(input);
  v.sink = std::move(sink);
  return add(std::move(v));
}

void dataflow_graph::connect(std::size_t from, std::size_t to, partitioning kind, std::vector<std::string> keys,
                             std::size_t input) {
  if (from >= vertices_.size() || to >= vertices_.size())
    throw error("dataflow graph: connect(" + std::to_string(from) + ", " + std::to_string(to) +
                "): no such vertex (the graph has " + std::to_string(vertices_.size()) + ")");
  if (kind == partitioning::hash && keys.empty())
    throw error("dataflow graph: the hash edge from '" + vertices_[from].name + "' to '" + vertices_[to].name +
                "' needs key columns");
  edges_.push_back(graph_edge{from, to, input, kind, std::move(keys)});
}

void dataflow_graph::append(std::size_t v, operator_ptr op) {
  auto& vertex = vertices_.at(v);
  if (vertex.kind == vertex_kind::sink) throw error("dataflow graph: cannot add an operator to sink '" + vertex.name + "'");
  if (!op) throw error("dataflow graph: " + quoted(vertex) + ": the operator is empty");
  vertex.output = op->output_schema();
  vertex.chain.push_back(std::move(op));
}

std::vector<std::size_t> dataflow_graph::inputs_of(std::size_t v) const {
  std::vector<std::size_t> out;
  for (std::size_t e = 0; e < edges_.size(); ++e)
    if (edges_[e].to == v) out.push_back(e);
  return out;
}

std::vector<std::size_t> dataflow_graph::outputs_of(std::size_t v) const {
  std::vector<std::size_t> out;
  for (std::size_t e = 0; e < edges_.size(); ++e)
    if (edges_[e].from == v) out.push_back(e);
  return out;
}

std::vector<std::size_t> dataflow_graph::sources() const {
  std::vector<std::size_t> out;
  for (std::size_t v = 0; v < vertices_.size(); ++v)
    if (vertices_[v].kind == vertex_kind::source) out.push_back(v);
  return out;
}

std::vector<std::size_t> dataflow_graph::sinks() const {
  std::vector<std::size_t> out;
  for (std::size_t v = 0; v < vertices_.size(); ++v)
    if (vertices_[v].kind == vertex_kind::sink) out.push_back(v);
  return out;
}

std::vector<std::size_t> dataflow_graph::topological_order() const {
  std::vector<std::size_t> pending(vertices_.size(), 0), order;
  for (const auto& e : edges_) ++pending[e.to];
  for (std::size_t v = 0; v < vertices_.size(); ++v)
    if (pending[v] == 0) order.push_back(v);
  for (std::size_t i = 0; i < order.size(); ++i)
    for (const auto& e : edges_)
      if (e.from == order[i] && --pending[e.to] == 0) order.push_back(e.to);
  if (order.size() != vertices_.size()) {
    std::string cycle;
    for (std::size_t v = 0; v < vertices_.size(); ++v)
      if (pending[v] > 0) cycle += (cycle.empty() ? "'" : ", '") + vertices_[v].name + "'";
    throw error("dataflow graph: the edges form a cycle through " + cycle +
                "; a dataflow graph must be acyclic (feed results back through a sink and a source)");
  }
  return order;
}

void dataflow_graph::resolve_parallelism(std::size_t default_parallelism) {
  for (auto& v : vertices_) {
    if (v.kind == vertex_kind::sink) v.parallelism = 1;
    else if (v.parallelism == 0) v.parallelism = std::max<std::size_t>(1, default_parallelism);
  }
}

void dataflow_graph::validate() const {
  if (sources().empty()) throw error("dataflow graph: no source; add one with add_source");
  if (sinks().empty()) throw error("dataflow graph: no sink; every result must reach a sink");
  topological_order();
  for (std::size_t v = 0; v < vertices_.size(); ++v) {
    const auto& vertex = vertices_[v];
    auto inputs = inputs_of(v);
    auto outputs = outputs_of(v);
    if (vertex.kind == vertex_kind::source && !inputs.empty())
      throw error("dataflow graph: source '" + vertex.name + "' has an input; a source only reads its connector");
    if (vertex.kind != vertex_kind::source && inputs.empty())
      throw error("dataflow graph: " + quoted(vertex) + " has no input; connect a vertex to it");
    if (vertex.kind != vertex_kind::sink && outputs.empty())
      throw error("dataflow graph: the output of " + quoted(vertex) + " goes nowhere; connect it to a sink");
    if (vertex.kind == vertex_kind::sink && !outputs.empty())
      throw error("dataflow graph: sink '" + vertex.name + "' has an output; a sink ends the graph");
    std::vector<std::string> keyed;
    if (!vertex.chain.empty()) keyed = vertex.chain.front()->key_columns();
    if (vertex.kind == vertex_kind::source && !keyed.empty() && vertex.parallelism != 1)
      throw error("dataflow graph: source '" + vertex.name + "' starts its chain with keyed operator '" +
                  vertex.chain.front()->name() + "', but its reader deals rows to its instances in turn; give "
                  "the operator a vertex of its own fed by a hash edge on its keys, or the source parallelism 1");
    for (auto e : inputs) {
      const auto& edge = edges_[e];
      const auto& from = vertices_[edge.from];
      if (edge.input == 0 && vertex.input && *from.output != *vertex.input)
        throw error("dataflow graph: '" + from.name + "' sends rows [" + from.output->to_string() + "] to " +
                    quoted(vertex) + ", which reads [" + vertex.input->to_string() +
                    "]; the inputs of a union must have the same schema");
      for (const auto& key : edge.keys)
        if (!from.output->find(key))
          throw error("dataflow graph: the hash edge from '" + from.name + "' to '" + vertex.name + "' is keyed by '" +
                      key + "', which '" + from.name + "' does not output (it has [" + from.output->to_string() + "])");
      if (edge.kind == partitioning::forward && from.parallelism != 0 && vertex.parallelism != 0 &&
          from.parallelism != vertex.parallelism && vertex.kind != vertex_kind::sink)
        throw error("dataflow graph: the forward edge from '" + from.name + "' (parallelism " +
                    std::to_string(from.parallelism) + ") to '" + vertex.name + "' (parallelism " +
                    std::to_string(vertex.parallelism) +
                    ") joins different parallelisms; give both the same or use rebalance or hash");
      const bool single = vertex.parallelism == 1 && from.parallelism == 1;
      if (!keyed.empty() && !single && (edge.kind != partitioning::hash || edge.keys != keyed)) {
        std::string keys;
        for (const auto& k : keyed) keys += (keys.empty() ? "" : ", ") + k;
        throw error("dataflow graph: " + quoted(vertex) + " starts with keyed operator '" +
                    vertex.chain.front()->name() + "', but its input from '" + from.name + "' is partitioned by " +
                    std::string(to_string(edge.kind)) + "; partition it by hash of [" + keys +
                    "] so that each key reaches one instance");
      }
    }
    for (std::size_t i = 1; i < vertex.chain.size(); ++i)
      if (!vertex.chain[i]->key_columns().empty() && vertex.parallelism != 1)
        throw error("dataflow graph: keyed operator '" + vertex.chain[i]->name() + "' runs inside " + quoted(vertex) +
                    " after '" + vertex.chain[i - 1]->name() + "'; start a new vertex with a hash edge for it");
  }
}

std::string dataflow_graph::explain() const {
  std::ostringstream out;
  for (auto v : topological_order()) {
    const auto& vertex = vertices_[v];
    out << vertex.name << " (" << to_string(vertex.kind) << ", parallelism "
        << (vertex.parallelism ? std::to_string(vertex.parallelism) : std::string("default")) << ")";
    if (vertex.kind == vertex_kind::source) out << " " << vertex.scan.format << " " << vertex.scan.path;
    if (vertex.kind == vertex_kind::sink) out << " " << vertex.sink.format << " " << to_string(vertex.sink.mode);
    for (const auto& op : vertex.chain) out << " -> " << op->name();
    for (auto e : inputs_of(v)) {
      const auto& edge = edges_[e];
      out << "\n  <- " << vertices_[edge.from].name << " by " << to_string(edge.kind);
      if (!edge.keys.empty()) {
        out << " [";
        for (std::size_t k = 0; k < edge.keys.size(); ++k) out << (k ? ", " : "") << edge.keys[k];
        out << "]";
      }
      if (edge.input != 0) out << " into input " << edge.input;
    }
    out << "\n";
  }
  return out.str();
}

std::size_t durable_states(const graph_vertex& vertex) {
  std::size_t n = 0;
  for (const auto& op : vertex.chain)
    if (auto state = op->make_state(); state && state->durable()) ++n;
  return n;
}

std::shared_ptr<const decoder> chain_decoder(std::shared_ptr<const decoder> format_decoder, const graph_vertex& source) {
  if (!format_decoder || source.chain.empty()) return format_decoder;
  const auto columns = source.chain.front()->columns_read();
  if (!columns) return format_decoder;
  auto pruned = format_decoder->converting_only(*columns);
  return pruned ? pruned : format_decoder;
}

}  // namespace flow
