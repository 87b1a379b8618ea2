#include "flow/compile.hpp"

#include <algorithm>

#include "flow/aggregate_operators.hpp"
#include "flow/optimizer.hpp"
#include "flow/session_window.hpp"
#include "flow/stream_join.hpp"
#include "flow/watermark.hpp"

namespace flow {

namespace {

// ---------------------------------------------------------------- the plan's vertices

class plan_compiler {
 public:
  plan_compiler(dataflow_graph& graph, output_mode mode) : graph_(graph), mode_(mode) {}

  // Returns the vertex whose output is node's output.
  std::size_t append(const plan_node& node) {
    switch (node.kind) {
      case plan_kind::scan: return graph_.add_source(fresh_name("source"), node.scan);
      case plan_kind::join:
        if (node.children.size() == 2) return append_stream_join(node);
        [[fallthrough]];
      case plan_kind::project:
      case plan_kind::filter:
      case plan_kind::map_batches: {
        auto v = append(*node.children.front());
        graph_.append(v, make_stateless_operator(node));
        return v;
      }
      case plan_kind::aggregate: {
        const plan_node& child = *node.children.front();
        auto upstream = append(child);
        if (node.op) return append_session_window(node, upstream);
        auto aggregate = std::make_shared<const aggregate_operator>(child.output, node.keys, node.aggs);
        graph_.append(upstream, std::make_shared<partial_aggregate_operator>(aggregate));
        auto keys = aggregate->key_names();
        // Without keys (a global aggregation) every partial goes to one instance.
        auto v = graph_.add_operators(fresh_name("aggregate"), aggregate->state_schema(),
                                      {std::make_shared<final_aggregate_operator>(aggregate, mode_)},
                                      keys.empty() ? 1 : 0);
        if (keys.empty()) graph_.connect(upstream, v, partitioning::rebalance);
        else graph_.connect(upstream, v, partitioning::hash, keys);
        output_keys_ = std::move(keys);
        return v;
      }
      case plan_kind::union_all: {
        std::vector<std::size_t> inputs;
        for (const auto& child : node.children) inputs.push_back(append(*child));
        auto v = graph_.add_operators(fresh_name("union"), node.output, {});
        for (auto input : inputs) graph_.connect(input, v, partitioning::rebalance);
        return v;
      }
      case plan_kind::topology: return append_topology(*node.graph, node.graph_output);
      case plan_kind::watermark: {
        auto v = append(*node.children.front());
        graph_.append(v, std::make_shared<watermark_operator>(node.output, node.event_time, node.delay_micros,
                                                              watermarks_++));
        return v;
      }
      case plan_kind::deduplicate: {
        auto upstream = append(*node.children.front());
        auto v = graph_.add_operators(fresh_name("deduplicate"), node.children.front()->output, {node.op});
        graph_.connect(upstream, v, partitioning::hash, node.op->key_columns());
        return v;
      }
    }
    throw error("compile: unknown plan node");
  }

  // The grouping keys of the aggregation compiled last (the one nearest the output).
  const std::vector<std::string>& output_keys() const { return output_keys_; }

 private:
  // A session window aggregation: one keyed vertex fed by a hash edge on its keys (no partial aggregation:
  // sessions merge across rows only where the key's sessions are).
  std::size_t append_session_window(const plan_node& node, std::size_t upstream) {
    const plan_node& child = *node.children.front();
    auto sessions = std::make_shared<const session_window_operator>(child.output, node.keys, node.aggs, mode_);
    auto v = graph_.add_operators(fresh_name("session_window"), child.output, {sessions});
    graph_.connect(upstream, v, partitioning::hash, sessions->key_columns());
    output_keys_ = sessions->output_key_names();
    return v;
  }

  // Both streams into one vertex running the two-input join, each hash-partitioned on its join keys.
  std::size_t append_stream_join(const plan_node& node) {
    const auto& join = static_cast<const stream_join_operator&>(*node.op);
    auto left = append(*node.children[0]);
    auto right = append(*node.children[1]);
    auto v = graph_.add_operators(fresh_name("join"), node.children[0]->output, {node.op});
    graph_.connect(left, v, partitioning::hash, join.spec().left_keys, 0);
    graph_.connect(right, v, partitioning::hash, join.spec().right_keys, 1);
    return v;
  }

  // Copies the topology's vertices and edges in (renaming a vertex whose name the graph has already)
  // and returns the copy of vertex output.
  std::size_t append_topology(const dataflow_graph& topology, std::size_t output) {
    std::vector<std::size_t> copy_of;
    for (const auto& vertex : topology.vertices()) {
      if (vertex.kind == vertex_kind::source)
        copy_of.push_back(graph_.add_source(fresh_name(vertex.name), vertex.scan, vertex.chain, vertex.parallelism));
      else
        copy_of.push_back(graph_.add_operators(fresh_name(vertex.name), vertex.input, vertex.chain, vertex.parallelism));
    }
    for (const auto& edge : topology.edges())
      graph_.connect(copy_of[edge.from], copy_of[edge.to], edge.kind, edge.keys, edge.input);
    return copy_of[output];
  }

  // base, or base-2, base-3, ... when the graph has a vertex of that name.
  std::string fresh_name(const std::string& base) const {
    auto taken = [&](const std::string& name) {
      for (const auto& v : graph_.vertices())
        if (v.name == name) return true;
      return false;
    };
    std::string name = base;
    for (std::size_t n = 2; taken(name); ++n) name = base + "-" + std::to_string(n);
    return name;
  }

  dataflow_graph& graph_;
  output_mode mode_;
  std::vector<std::string> output_keys_;
  std::size_t watermarks_ = 0;  // with_watermark operators so far: the next one's input index
};

void require_plan(const plan_ptr& plan) {
  if (!plan) throw error("compile: the plan is empty; build it with a data frame");
}

}  // namespace

std::size_t append_plan(dataflow_graph& graph, const plan_ptr& plan, output_mode mode) {
  require_plan(plan);
  return plan_compiler(graph, mode).append(*optimize(plan));
}

dataflow_graph compile_graph(const plan_ptr& plan, const sink_spec& sink) {
  require_plan(plan);
  validate_output_mode(*plan, sink.mode);
  dataflow_graph graph;
  plan_compiler compiler(graph, sink.mode);
  auto output = compiler.append(*optimize(plan));
  auto s = graph.add_sink("sink", plan->output, sink);
  // Update mode upserts by the grouping keys; once a select dropped or renamed one, its rows are appended.
  const auto& keys = compiler.output_keys();
  if (std::all_of(keys.begin(), keys.end(), [&](const std::string& k) { return plan->output->find(k).has_value(); }))
    graph.vertices()[s].sink_keys = keys;
  graph.connect(output, s, partitioning::forward);
  graph.validate();
  return graph;
}

}  // namespace flow
