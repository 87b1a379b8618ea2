#include "flow/topology.hpp"

#include "flow/compile.hpp"

#include <optional>

namespace flow {

namespace {

// What the user asked for, one node per call, before fusion. Partitions and unions are not vertices:
// they say how the vertices that read them are connected.
enum class node_kind { source, operators, sink, partition, union_of };

struct topology_node {
  node_kind kind = node_kind::operators;
  std::string name;
  std::size_t parallelism = 0;
  plan_ptr plan;                      // source: a streaming data frame's plan (a scan, or operators over scans)
  operator_ptr op;                    // operators
  sink_spec sink;                     // sink
  std::vector<std::string> sink_keys; // sink
  partitioning part = partitioning::forward;  // partition
  std::vector<std::string> keys;              // partition: hash keys
  std::vector<std::size_t> inputs;    // node indexes; operators: inputs[i] feeds input i
  schema_ptr output;                  // source, operators, partition, union: the rows it carries
};

// One vertex that feeds a node, with the partitioning asked for on the way (none: the default).
struct resolved_input {
  std::size_t node;
  std::size_t input_index;
  std::optional<partitioning> part;
  std::vector<std::string> keys;
};

bool is_stateless(const stream_operator& op) { return op.key_columns().empty() && !op.make_state(); }

}  // namespace

struct topology_state {
  std::vector<topology_node> nodes;

  std::size_t add(topology_node node) {
    if (!node.name.empty())
      for (const auto& other : nodes)
        if (other.name == node.name)
          throw error("topology: a vertex named '" + node.name + "' exists already; give each vertex a name of its own");
    nodes.push_back(std::move(node));
    return nodes.size() - 1;
  }

  // The declared parallelism of what a node carries: a partition's or a union's comes from its inputs
  // (a union of different parallelisms has none: 0).
  std::size_t parallelism_of(std::size_t n) const {
    const auto& node = nodes[n];
    if (node.kind == node_kind::partition) return parallelism_of(node.inputs[0]);
    if (node.kind != node_kind::union_of) return node.parallelism;
    std::size_t common = parallelism_of(node.inputs[0]);
    for (auto in : node.inputs)
      if (parallelism_of(in) != common) return 0;
    return common;
  }

  // The vertex-making nodes behind input `from`, with the partitioning nearest to the reader.
  void resolve(std::size_t from, std::size_t input_index, std::optional<partitioning> part,
               std::vector<std::string> keys, std::vector<resolved_input>& out) const {
    const auto& node = nodes[from];
    if (node.kind == node_kind::partition) {
      if (!part) {
        part = node.part;
        keys = node.keys;
      }
      resolve(node.inputs[0], input_index, part, keys, out);
    } else if (node.kind == node_kind::union_of) {
      for (auto in : node.inputs) resolve(in, input_index, part, keys, out);
    } else {
      out.push_back(resolved_input{from, input_index, part, std::move(keys)});
    }
  }

  std::vector<resolved_input> inputs_of(std::size_t n) const {
    std::vector<resolved_input> out;
    for (std::size_t i = 0; i < nodes[n].inputs.size(); ++i) resolve(nodes[n].inputs[i], i, std::nullopt, {}, out);
    return out;
  }

  // Whether each node is n or a node n reads, directly or not.
  std::vector<bool> upstream_of(std::size_t n) const {
    std::vector<bool> included(nodes.size(), false);
    std::vector<std::size_t> pending{n};
    while (!pending.empty()) {
      auto m = pending.back();
      pending.pop_back();
      if (included[m]) continue;
      included[m] = true;
      for (auto in : nodes[m].inputs) pending.push_back(in);
    }
    return included;
  }

  // The graph of the included nodes (all: the whole topology); vertex_of maps a node to its vertex.
  dataflow_graph compile(const std::vector<bool>& included, std::vector<std::size_t>& vertex_of) const;
  void connect_inputs(dataflow_graph& graph, const std::vector<std::size_t>& vertex_of, std::size_t n,
                      std::size_t vertex) const;
  std::shared_ptr<session_context> ctx;
};

void topology_state::connect_inputs(dataflow_graph& graph, const std::vector<std::size_t>& vertex_of,
                                    std::size_t n, std::size_t vertex) const {
  const auto& node = nodes[n];
  const bool keyed = node.kind == node_kind::operators && !node.op->key_columns().empty();
  // A union read as a frame passes through a vertex of its own (as_frame), like an operator vertex.
  const bool reader = node.kind == node_kind::operators || node.kind == node_kind::union_of;
  for (const auto& in : inputs_of(n)) {
    partitioning kind = partitioning::forward;
    auto keys = in.keys;
    if (in.part) {
      kind = *in.part;
    } else if (keyed) {
      kind = partitioning::hash;
      keys = node.op->key_columns();
    } else if (reader && parallelism_of(n) != graph.vertex(vertex_of[in.node]).parallelism) {
      // The vertex as compiled: a data frame's global aggregation runs in one instance whatever was asked.
      kind = partitioning::rebalance;
    }
    graph.connect(vertex_of[in.node], vertex, kind, std::move(keys), in.input_index);
  }
}

dataflow_graph topology_state::compile(const std::vector<bool>& included, std::vector<std::size_t>& vertex_of) const {
  std::vector<std::size_t> readers(nodes.size(), 0);
  for (std::size_t n = 0; n < nodes.size(); ++n)
    if (included[n] && (nodes[n].kind == node_kind::operators || nodes[n].kind == node_kind::sink))
      for (const auto& in : inputs_of(n)) ++readers[in.node];

  dataflow_graph graph;
  vertex_of.assign(nodes.size(), 0);
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    if (!included[n]) continue;
    const auto& node = nodes[n];
    switch (node.kind) {
      case node_kind::source: {
        if (node.plan->kind == plan_kind::scan) {
          vertex_of[n] = graph.add_source(node.name, node.plan->scan, {}, node.parallelism);
          break;
        }
        // A frame with operators: the relational compiler's vertices, named after the source.
        const std::size_t first = graph.vertices().size();
        vertex_of[n] = append_plan(graph, node.plan);
        for (std::size_t v = first; v < graph.vertices().size(); ++v) {
          auto& vertex = graph.vertices()[v];
          vertex.name = node.name + (v == vertex_of[n] ? std::string() : "/" + vertex.name);
          if (vertex.parallelism == 0) vertex.parallelism = node.parallelism;
        }
        break;
      }
      case node_kind::operators: {
        auto inputs = inputs_of(n);
        const auto& in = inputs.front();
        // Fused, each batch passes the step in the same instance; other readers of the input would see its output.
        const bool fuse = inputs.size() == 1 && in.input_index == 0 && readers[in.node] == 1 &&
                          (!in.part || *in.part == partitioning::forward) &&
                          node.parallelism == nodes[in.node].parallelism && is_stateless(*node.op);
        if (fuse) {
          vertex_of[n] = vertex_of[in.node];
          graph.append(vertex_of[n], node.op);
        } else {
          vertex_of[n] = graph.add_operators(node.name, nodes[in.node].output, {node.op}, node.parallelism);
          connect_inputs(graph, vertex_of, n, vertex_of[n]);
        }
        break;
      }
      case node_kind::sink:
        vertex_of[n] = graph.add_sink(node.name, nodes[node.inputs[0]].output, node.sink);
        graph.vertices()[vertex_of[n]].sink_keys = node.sink_keys;
        connect_inputs(graph, vertex_of, n, vertex_of[n]);
        break;
      case node_kind::partition:
      case node_kind::union_of:
        break;
    }
  }
  return graph;
}

// ---------------------------------------------------------------- topology_stream

const schema_ptr& topology_stream::schema() const { return state_->nodes[node_].output; }

topology_stream topology_stream::partitioned(partitioning kind, std::vector<std::string> keys) const {
  topology_node node;
  node.kind = node_kind::partition;
  node.part = kind;
  node.keys = std::move(keys);
  node.inputs = {node_};
  node.output = schema();
  return {state_, state_->add(std::move(node))};
}

topology_stream topology_stream::key_by(std::vector<std::string> keys) const {
  if (keys.empty()) throw error("key_by: no key columns; name the columns whose values pick the instance");
  for (const auto& key : keys)
    if (!schema()->find(key))
      throw error("key_by: no column '" + key + "' in the stream's rows [" + schema()->to_string() +
                  "]; key by columns the stream carries");
  return partitioned(partitioning::hash, std::move(keys));
}

topology_stream topology_stream::rebalance() const { return partitioned(partitioning::rebalance, {}); }
topology_stream topology_stream::broadcast() const { return partitioned(partitioning::broadcast, {}); }
topology_stream topology_stream::forward() const { return partitioned(partitioning::forward, {}); }

topology_stream topology_stream::apply(std::string name, operator_ptr op, std::size_t parallelism) const {
  if (!op) throw error("apply('" + name + "'): the operator is empty");
  topology_node node;
  node.name = std::move(name);
  node.parallelism = parallelism;
  node.output = op->output_schema();
  node.op = std::move(op);
  node.inputs = {node_};
  return {state_, state_->add(std::move(node))};
}

topology_stream topology_stream::stateless(operator_ptr op) const {
  topology_node node;
  node.parallelism = state_->parallelism_of(node_);
  node.output = op->output_schema();
  node.op = std::move(op);
  node.inputs = {node_};
  return {state_, state_->add(std::move(node))};
}

topology_stream topology_stream::select(std::vector<expr> exprs) const {
  return stateless(std::make_shared<const project_operator>(*schema(), exprs));
}

topology_stream topology_stream::select(const std::vector<std::string>& columns) const {
  std::vector<expr> exprs;
  for (const auto& c : columns) exprs.push_back(col(c));
  return select(std::move(exprs));
}

topology_stream topology_stream::where(expr predicate) const {
  return stateless(std::make_shared<const filter_operator>(schema(), predicate));
}

topology_stream topology_stream::union_with(const topology_stream& other) const {
  if (other.state_ != state_) throw error("union_with: the streams belong to different topologies");
  if (*other.schema() != *schema())
    throw error("union_with: the streams carry different rows, [" + schema()->to_string() + "] and [" +
                other.schema()->to_string() + "]; select the same columns in the same order on both");
  topology_node node;
  node.kind = node_kind::union_of;
  node.inputs = {node_, other.node_};
  node.output = schema();
  return {state_, state_->add(std::move(node))};
}

connected_streams topology_stream::connect(const topology_stream& other) const {
  if (other.state_ != state_) throw error("connect: the streams belong to different topologies");
  return {*this, other};
}

data_frame topology_stream::as_frame() const {
  const auto& node = state_->nodes[node_];
  // A frame's partitioning is the relational compiler's to choose.
  if (node.kind == node_kind::partition) return topology_stream(state_, node.inputs[0]).as_frame();
  std::vector<std::size_t> vertex_of;
  auto graph = state_->compile(state_->upstream_of(node_), vertex_of);
  auto output = vertex_of[node_];
  if (node.kind == node_kind::union_of) {
    // Named like the relational compiler's unions; splicing the snapshot into a query renames clashes.
    output = graph.add_operators("union", node.output, {}, state_->parallelism_of(node_));
    state_->connect_inputs(graph, vertex_of, node_, output);
  }
  return {state_->ctx, make_topology_input(std::make_shared<const dataflow_graph>(std::move(graph)), output)};
}

topology_sink topology_stream::sink(std::string name) const {
  topology_node node;
  node.kind = node_kind::sink;
  node.name = std::move(name);
  node.inputs = {node_};
  return {state_, state_->add(std::move(node))};
}

topology_stream connected_streams::apply(std::string name, operator_ptr op, std::size_t parallelism) const {
  auto stream = first_.apply(std::move(name), std::move(op), parallelism);
  stream.state_->nodes[stream.node_].inputs.push_back(second_.node_);
  return stream;
}

// ---------------------------------------------------------------- topology_sink

sink_spec& topology_sink::spec() { return state_->nodes[node_].sink; }

topology_sink& topology_sink::format(std::string f) {
  spec().format = std::move(f);
  return *this;
}

topology_sink& topology_sink::option(std::string key, std::string value) {
  spec().opts.set(std::move(key), std::move(value));
  return *this;
}

topology_sink& topology_sink::output_mode(flow::output_mode mode) {
  spec().mode = mode;
  return *this;
}

topology_sink& topology_sink::query_name(std::string table) {
  spec().query_name = std::move(table);
  return *this;
}

topology_sink& topology_sink::upsert_keys(std::vector<std::string> keys) {
  auto& node = state_->nodes[node_];
  const auto& rows = state_->nodes[node.inputs[0]].output;
  for (const auto& key : keys)
    if (!rows->find(key))
      throw error("sink '" + node.name + "': upsert key '" + key + "' is not a column of its rows [" +
                  rows->to_string() + "]");
  node.sink_keys = std::move(keys);
  return *this;
}

topology_sink& topology_sink::foreach(std::shared_ptr<foreach_writer> writer) {
  spec().format = "foreach";
  spec().foreach = std::move(writer);
  return *this;
}

topology_sink& topology_sink::foreach_batch(foreach_batch_function fn) {
  spec().format = "foreachBatch";
  spec().foreach_batch = std::move(fn);
  return *this;
}

// ---------------------------------------------------------------- topology

topology::topology(std::shared_ptr<session_context> ctx)
    : state_(std::make_shared<topology_state>()) {
  if (!ctx) throw error("topology: no session; build it from a session's context");
  state_->ctx = std::move(ctx);
}

topology_stream topology::source(std::string name, const data_frame& frame, std::size_t parallelism) {
  if (!frame.is_streaming())
    throw error("topology source '" + name + "': the data frame is static; read it with read_stream()");
  topology_node node;
  node.kind = node_kind::source;
  node.name = std::move(name);
  node.parallelism = parallelism;
  node.plan = frame.plan();
  node.output = frame.plan()->output;
  return {state_, state_->add(std::move(node))};
}

dataflow_graph topology::graph() const {
  std::vector<std::size_t> vertex_of;
  auto graph = state_->compile(std::vector<bool>(state_->nodes.size(), true), vertex_of);
  graph.validate();
  return graph;
}

streaming_query topology::start(const query_options& options) const {
  return streaming_query(state_->ctx->start_graph(graph(), options));
}

}  // namespace flow
