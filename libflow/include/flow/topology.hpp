// The topology builder: a dataflow graph composed by hand, in the spirit of Flink's DataStream API.
//
//   flow::topology t(ctx);
//   auto rows = t.source("retail", session.read_stream().format("csv")...load(dir));
//   auto by_country = rows.key_by({"Country"}).apply("country", country_revenue, 4);
//   by_country.sink("revenue").format("memory").query_name("revenue").output_mode("complete");
//   auto query = t.start({.name = "retail", .trigger = flow::available_now()});
//
// A stream is the output of a source or an operator; using it twice fans it out. key_by, rebalance,
// broadcast and forward choose how the next vertex's input is partitioned. Building records what was
// asked; graph() turns it into a flow::dataflow_graph, fusing a stateless operator into the vertex before
// it when that vertex feeds nothing else over a forward edge of the same parallelism (docs/topologies.md).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flow/dataframe.hpp"
#include "flow/graph.hpp"

namespace flow {

struct topology_state;
class connected_streams;
class topology_sink;

class topology_stream {
 public:
  const schema_ptr& schema() const;

  // How the next vertex reads this stream: by the hash of key columns (every row of a key reaches one
  // instance), whole batches round-robin, every batch to every instance, or instance i to instance i.
  // Without one: a keyed operator's keys, forward between equal parallelisms, else rebalance.
  topology_stream key_by(std::vector<std::string> keys) const;
  topology_stream rebalance() const;
  topology_stream broadcast() const;
  topology_stream forward() const;

  // A vertex named name running op in parallelism instances (0: the session's parallelism).
  topology_stream apply(std::string name, operator_ptr op, std::size_t parallelism = 0) const;
  // Stateless steps that run in this stream's vertex when nothing else reads it, else in one of their own.
  topology_stream select(std::vector<expr> exprs) const;
  topology_stream select(const std::vector<std::string>& columns) const;
  topology_stream where(expr predicate) const;
  topology_stream filter(expr predicate) const { return where(std::move(predicate)); }

  // The rows of both streams (same schema) as one stream.
  topology_stream union_with(const topology_stream& other) const;
  // Both streams into one two-input operator: this one as input 0, other as input 1.
  connected_streams connect(const topology_stream& other) const;

  // This stream as a streaming data frame, to continue with the relational API: its query runs the
  // topology's vertices up to this stream (a snapshot taken now; sinks and other branches are not run)
  // followed by the frame's operators. A key_by or other partitioning before it is dropped: the
  // relational compiler partitions what it needs. Spark's output-mode rules look only at the relational
  // aggregations after it.
  data_frame as_frame() const;

  // A sink vertex writing this stream; set its format and options on the result.
  topology_sink sink(std::string name) const;

 private:
  friend class topology;
  friend class connected_streams;
  topology_stream(std::shared_ptr<topology_state> state, std::size_t node) : state_(std::move(state)), node_(node) {}
  topology_stream partitioned(partitioning kind, std::vector<std::string> keys) const;
  topology_stream stateless(operator_ptr op) const;
  std::shared_ptr<topology_state> state_;
  std::size_t node_;
};

class connected_streams {
 public:
  // A vertex running the two-input operator op; process() sees input_index 0 or 1.
  topology_stream apply(std::string name, operator_ptr op, std::size_t parallelism = 0) const;

 private:
  friend class topology_stream;
  connected_streams(topology_stream first, topology_stream second)
      : first_(std::move(first)), second_(std::move(second)) {}
  topology_stream first_, second_;
};

// Where a sink writes, as data_stream_writer says it (the trigger and the query's name are start()'s).
class topology_sink {
 public:
  topology_sink& format(std::string f);
  topology_sink& option(std::string key, std::string value);
  topology_sink& option(std::string key, const char* value) { return option(std::move(key), std::string(value)); }
  topology_sink& option(std::string key, bool value) { return option(std::move(key), std::string(value ? "true" : "false")); }
  template <option_integer T>
  topology_sink& option(std::string key, T value) { return option(std::move(key), std::to_string(value)); }
  topology_sink& option(std::string key, double value) { return option(std::move(key), option_text(value)); }
  topology_sink& output_mode(std::string_view mode) { return output_mode(parse_output_mode(mode)); }
  topology_sink& output_mode(flow::output_mode mode);
  // The memory sink's table.
  topology_sink& query_name(std::string table);
  // Update mode: the columns that identify a row, which a newer row with the same values replaces.
  topology_sink& upsert_keys(std::vector<std::string> keys);
  topology_sink& foreach(std::shared_ptr<foreach_writer> writer);
  topology_sink& foreach_batch(foreach_batch_function fn);

 private:
  friend class topology_stream;
  topology_sink(std::shared_ptr<topology_state> state, std::size_t node) : state_(std::move(state)), node_(node) {}
  sink_spec& spec();
  std::shared_ptr<topology_state> state_;
  std::size_t node_;
};

class topology {
 public:
  explicit topology(std::shared_ptr<session_context> ctx);

  // A source vertex reading a streaming data frame (session.read_stream()...load()) in parallelism
  // instances (0: the session's parallelism).
  topology_stream source(std::string name, const data_frame& frame, std::size_t parallelism = 0);

  // The dataflow graph built so far, validated (flow::error names the vertex and what to change).
  dataflow_graph graph() const;
  std::string explain() const { return graph().explain(); }
  // Runs the graph as one query (options: its name and trigger).
  streaming_query start(const query_options& options = {}) const;

 private:
  std::shared_ptr<topology_state> state_;
};

}  // namespace flow
