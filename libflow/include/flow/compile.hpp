// From the relational API to the dataflow graph: a data frame's logical plan becomes vertices and edges
// (stateless operators fused into the vertex before them, an aggregation in a vertex of its own fed by
// a hash edge on its grouping keys, a stream-static join fused like a stateless operator, a deduplication
// in a vertex of its own fed by a hash edge on its keys, a union as a vertex with several inputs, a topology stream read as a
// frame as a copy of the topology's vertices up to it), refused with Spark's rule when Spark refuses the
// shape in streaming.
#pragma once

#include "flow/graph.hpp"

namespace flow {

// Adds the plan's vertices to graph and returns the vertex whose output is the plan's output (no sink).
// An aggregation emits per mode at each epoch's end (update: the groups the epoch changed).
std::size_t append_plan(dataflow_graph& graph, const plan_ptr& plan, output_mode mode = output_mode::update);

// The whole query: the plan's vertices and one sink vertex ("sink") writing its output with the
// spec's output mode (update mode upserts by the aggregation's keys, graph_vertex::sink_keys, while the
// output holds them all).
dataflow_graph compile_graph(const plan_ptr& plan, const sink_spec& sink);

}  // namespace flow
