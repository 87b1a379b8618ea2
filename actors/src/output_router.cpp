#include "flow/runtime/output_router.hpp"

#include "flow/keys.hpp"

namespace flow::runtime {

output_router::output_router(const dataflow_graph& graph, std::size_t vertex, std::size_t instance)
    : instance_(instance) {
  const auto& from = graph.vertex(vertex);
  for (auto e : graph.outputs_of(vertex)) {
    const auto& edge = graph.edges()[e];
    out_edge out;
    out.to = edge.to;
    out.input = edge.input;
    out.kind = edge.kind;
    out.targets = std::max<std::size_t>(1, graph.vertex(edge.to).parallelism);
    out.next = instance % out.targets;  // instances start their round-robin at different targets
    for (const auto& key : edge.keys) out.key_columns.push_back(from.output->index_of(key));
    const auto& chain = graph.vertex(edge.to).chain;
    out.hand_on_keys = !chain.empty() && chain.front()->reads_attached_keys();
    edges_.push_back(std::move(out));
  }
}

std::vector<batch> output_router::hash_parts(const batch& rows, const out_edge& edge) {
  return hash_partition(rows, edge.key_columns, edge.targets, edge.hand_on_keys);
}

std::size_t output_router::expected_barriers(const dataflow_graph& graph, std::size_t vertex, std::size_t instance) {
  std::size_t count = 0;
  const std::size_t targets = std::max<std::size_t>(1, graph.vertex(vertex).parallelism);
  for (auto e : graph.inputs_of(vertex)) {
    const auto& edge = graph.edges()[e];
    const std::size_t upstream = std::max<std::size_t>(1, graph.vertex(edge.from).parallelism);
    if (edge.kind != partitioning::forward) {
      count += upstream;
      continue;
    }
    for (std::size_t i = 0; i < upstream; ++i)
      if (i % targets == instance) ++count;
  }
  return count;
}

}  // namespace flow::runtime
