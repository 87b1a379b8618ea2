// A dataflow graph as plain data, to ship it to another process: every operator as its descriptor
// (the registered name and arguments, flow/operator_registry.hpp) instead of an object, every schema by
// value. describe() makes one from a graph and rebuild() the graph again from one, in the process that
// runs it (where the operators and batch functions it names are registered). The actors layer
// serializes it with CAF (actors/src/graph_inspect.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "flow/graph.hpp"

namespace flow {

// A scan_spec without rows held in memory.
struct scan_description {
  std::string format;
  std::string path;
  options opts;
  schema fields;
  bool streaming = false;
};

// A sink_spec without the callbacks (foreach, foreachBatch), and the keys update mode upserts by.
struct sink_description {
  std::string format;
  options opts;
  std::string query_name;
  output_mode mode = output_mode::append;
  flow::trigger trigger;
  std::vector<std::string> keys;
};

struct vertex_description {
  std::string name;
  vertex_kind kind = vertex_kind::operators;
  std::size_t parallelism = 0;
  scan_description scan;                   // source
  schema input;                            // operators, sink
  std::vector<operator_descriptor> chain;  // source, operators
  sink_description sink;                   // sink
};

struct graph_description {
  std::vector<vertex_description> vertices;
  std::vector<graph_edge> edges;
};

// Every field equal (options by their values).
bool operator==(const graph_description& a, const graph_description& b);

// Throws flow::error naming the first vertex and operator that cannot be shipped and why: an operator
// without a descriptor (a map_batches function that is not the one registered under its name, a user
// operator that does not override descriptor()), a source of rows held in memory, a foreach or
// foreachBatch sink.
graph_description describe(const dataflow_graph& graph);

// The graph again, its operators made by the factories registered under their names for the schema
// that reaches them (each vertex's input, then each operator's output). Throws flow::error naming the
// vertex for an unknown operator, arguments its factory refuses, or an edge between missing vertices.
dataflow_graph rebuild(const graph_description& description);

}  // namespace flow
