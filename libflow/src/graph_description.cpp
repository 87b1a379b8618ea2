#include "flow/graph_description.hpp"

#include <algorithm>

#include "flow/operator_registry.hpp"

namespace flow {

namespace {

std::string quoted(const std::string& vertex) { return "vertex '" + vertex + "'"; }

[[noreturn]] void cannot_ship(const graph_vertex& v, const std::string& why) {
  throw error("cannot ship the dataflow graph: " + quoted(v.name) + " " + why);
}

std::vector<operator_descriptor> describe_chain(const graph_vertex& v) {
  std::vector<operator_descriptor> chain;
  for (const auto& op : v.chain) {
    auto descriptor = op->descriptor();
    if (!descriptor)
      cannot_ship(v, "runs operator '" + op->name() +
                         "', which has no descriptor: map_batches ships only the function registered under its "
                         "name (flow::register_batch_function, then map_batches(flow::find_batch_function(name), "
                         "output, name)); a user operator ships when its class overrides descriptor() and its "
                         "factory is registered with flow::register_operator");
    chain.push_back(std::move(*descriptor));
  }
  return chain;
}

std::vector<operator_ptr> rebuild_chain(const std::vector<operator_descriptor>& descriptors, schema_ptr input) {
  std::vector<operator_ptr> chain;
  for (const auto& descriptor : descriptors) {
    chain.push_back(make_operator(descriptor, input));
    input = chain.back()->output_schema();
  }
  return chain;
}

bool same_options(const options& a, const options& b) { return a.all() == b.all(); }

bool same_vertex(const vertex_description& a, const vertex_description& b) {
  return a.name == b.name && a.kind == b.kind && a.parallelism == b.parallelism &&
         a.scan.format == b.scan.format && a.scan.path == b.scan.path && same_options(a.scan.opts, b.scan.opts) &&
         a.scan.fields == b.scan.fields && a.scan.streaming == b.scan.streaming && a.input == b.input &&
         a.chain == b.chain && a.sink.format == b.sink.format && same_options(a.sink.opts, b.sink.opts) &&
         a.sink.query_name == b.sink.query_name && a.sink.mode == b.sink.mode &&
         a.sink.trigger.kind == b.sink.trigger.kind && a.sink.trigger.interval == b.sink.trigger.interval &&
         a.sink.keys == b.sink.keys;
}

bool same_edge(const graph_edge& a, const graph_edge& b) {
  return a.from == b.from && a.to == b.to && a.input == b.input && a.kind == b.kind && a.keys == b.keys;
}

}  // namespace

bool operator==(const graph_description& a, const graph_description& b) {
  return std::equal(a.vertices.begin(), a.vertices.end(), b.vertices.begin(), b.vertices.end(), same_vertex) &&
         std::equal(a.edges.begin(), a.edges.end(), b.edges.begin(), b.edges.end(), same_edge);
}

graph_description describe(const dataflow_graph& graph) {
  graph_description description;
  for (const auto& v : graph.vertices()) {
    vertex_description d;
    d.name = v.name;
    d.kind = v.kind;
    d.parallelism = v.parallelism;
    d.chain = describe_chain(v);
    switch (v.kind) {
      case vertex_kind::source:
        if (v.scan.rows)
          cannot_ship(v, "reads rows held in this process's memory (format '" + v.scan.format +
                             "'); read them from files or a connector instead");
        d.scan = {v.scan.format, v.scan.path, v.scan.opts, *v.scan.schema, v.scan.streaming};
        break;
      case vertex_kind::operators: d.input = *v.input; break;
      case vertex_kind::sink:
        if (v.sink.foreach || v.sink.foreach_batch)
          cannot_ship(v, "writes through a " + std::string(v.sink.foreach ? "foreach writer" : "foreachBatch function") +
                             ", an object of this process; write to a sink format registered in both processes "
                             "(flow::register_sink_format) instead");
        d.input = *v.input;
        d.sink = {v.sink.format, v.sink.opts, v.sink.query_name, v.sink.mode, v.sink.trigger, v.sink_keys};
        break;
    }
    description.vertices.push_back(std::move(d));
  }
  description.edges = graph.edges();
  return description;
}

dataflow_graph rebuild(const graph_description& description) {
  dataflow_graph graph;
  for (const auto& d : description.vertices) {
    try {
      switch (d.kind) {
        case vertex_kind::source: {
          auto fields = std::make_shared<const schema>(d.scan.fields);
          scan_spec scan{d.scan.format, d.scan.path, d.scan.opts, fields, d.scan.streaming, nullptr};
          graph.add_source(d.name, std::move(scan), rebuild_chain(d.chain, fields), d.parallelism);
          break;
        }
        case vertex_kind::operators: {
          auto input = std::make_shared<const schema>(d.input);
          graph.add_operators(d.name, input, rebuild_chain(d.chain, input), d.parallelism);
          break;
        }
        case vertex_kind::sink: {
          if (!d.chain.empty()) throw error("a sink runs no operators, but " + std::to_string(d.chain.size()) + " are listed");
          sink_spec sink;
          sink.format = d.sink.format;
          sink.opts = d.sink.opts;
          sink.query_name = d.sink.query_name;
          sink.mode = d.sink.mode;
          sink.trigger = d.sink.trigger;
          const std::size_t v = graph.add_sink(d.name, std::make_shared<const schema>(d.input), std::move(sink));
          graph.vertices()[v].parallelism = d.parallelism;
          graph.vertices()[v].sink_keys = d.sink.keys;
          break;
        }
      }
    } catch (const error& e) {
      throw error("cannot rebuild the dataflow graph: " + quoted(d.name) + ": " + e.what());
    }
  }
  for (const auto& e : description.edges) graph.connect(e.from, e.to, e.kind, e.keys, e.input);
  return graph;
}

}  // namespace flow
