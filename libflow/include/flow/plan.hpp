// The logical plan the user API builds, its validation, and the physical plan the runtime executes.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flow/deduplicate.hpp"
#include "flow/expr.hpp"
#include "flow/formats.hpp"
#include "flow/join.hpp"
#include "flow/operators.hpp"

namespace flow {

// Where a query reads from: a connector by format name, with Spark-style options.
struct scan_spec {
  std::string format;   // csv, json, text (file formats), or a connector name
  std::string path;
  options opts;
  schema_ptr schema;    // resolved at load time (given, or inferred)
  bool streaming = false;
  std::shared_ptr<const std::vector<batch>> rows;  // format "local": rows held in memory
};

// A user function over whole batches (Spark's mapPartitions, per batch). Must be thread-safe:
// parallel stage instances call it concurrently.
using batch_function = std::function<batch(const batch&)>;

enum class plan_kind { scan, project, filter, map_batches, aggregate, union_all, topology, watermark, join, deduplicate };

struct plan_node;
class dataflow_graph;
using plan_ptr = std::shared_ptr<const plan_node>;

struct plan_node {
  plan_kind kind = plan_kind::scan;
  std::vector<plan_ptr> children; // scan: none; union_all: two or more; a stream-stream join: two; else one
  scan_spec scan;                 // scan
  std::vector<expr> exprs;        // project
  expr predicate;                 // filter
  batch_function function;        // map_batches
  schema_ptr function_output;     // map_batches: output schema (nullptr: same as input)
  std::string function_name;      // map_batches
  std::vector<expr> keys;         // aggregate
  std::vector<agg_spec> aggs;     // aggregate
  std::string event_time;         // watermark: the event-time column
  std::int64_t delay_micros = 0;  // watermark: how late a row may be
  // topology: the vertices and edges of a topology up to one of its streams (a snapshot, no sinks) and
  // the vertex whose output that stream is (flow::topology_stream::as_frame).
  std::shared_ptr<const dataflow_graph> graph;
  std::size_t graph_output = 0;
  // join: the stream-static join (flow/join.hpp), fused into the vertex of its child, or with two
  // children the stream-stream join (flow/stream_join.hpp), a vertex of its own; deduplicate: the
  // keyed deduplicate_operator (flow/deduplicate.hpp), in a vertex of its own fed by a hash edge on its keys.
  operator_ptr op;
  schema_ptr output;              // every node: its output schema, computed when the node is built
};

plan_ptr make_scan(scan_spec scan);
// Each of these binds the node against its child's schema and throws flow::error on a bad plan.
plan_ptr make_project(plan_ptr child, std::vector<expr> exprs);
plan_ptr make_filter(plan_ptr child, expr predicate);
plan_ptr make_map_batches(plan_ptr child, batch_function fn, schema_ptr output, std::string name);
// map_batches' operator: checks fn's results against output. It can be shipped (descriptor()) when fn is
// the function registered under name with flow::register_batch_function.
std::shared_ptr<const stateless_operator> make_function_operator(batch_function fn, schema_ptr output, std::string name);
plan_ptr make_aggregate(plan_ptr child, std::vector<expr> keys, std::vector<agg_spec> aggs);
// with_watermark(column, delay): column must be a timestamp; delay as parse_duration_micros reads it.
plan_ptr make_watermark(plan_ptr child, std::string column, std::string_view delay);
// Spark's union (by position, duplicates kept): the inputs must have equal schemas and be all streaming
// or all static.
plan_ptr make_union(std::vector<plan_ptr> inputs);
// child joined with the rows of a static frame on the key columns (Spark's join(other, Seq(keys), type)).
// right_outer and full_outer are refused (with Spark's message when child is streaming).
plan_ptr make_join(plan_ptr child, const batch& right, std::vector<std::string> keys, join_type type);
// The same on a condition over both sides' columns (Spark's join(other, condition, type)).
plan_ptr make_join(plan_ptr child, const batch& right, const expr& condition, join_type type);
// child's rows without the later rows of each key (Spark's dropDuplicates, or within the watermark when
// spec names the event-time column).
plan_ptr make_deduplicate(plan_ptr child, deduplicate_spec spec);
// The output of vertex output in graph (a topology's vertices, without sinks: flow::error otherwise) as a
// streaming leaf.
// Its operators count for none of Spark's rules on aggregations: those look at the relational nodes above it.
plan_ptr make_topology_input(std::shared_ptr<const dataflow_graph> graph, std::size_t output);

// The plan's scans, left to right (several below a union; a topology input's sources).
std::vector<const scan_spec*> scans_of(const plan_node& plan);
// The scan of a plan with a single one; throws flow::error for a union (use scans_of).
const scan_spec& scan_of(const plan_node& plan);
bool is_streaming(const plan_node& plan);
bool has_aggregate(const plan_node& plan);
// The event-time columns of the with_watermark nodes in plan, left to right (depth first).
std::vector<std::string> watermark_columns(const plan_node& plan);
// The operator of a project, filter, map_batches or join node, bound to its child's output.
std::shared_ptr<const stateless_operator> make_stateless_operator(const plan_node& node);
// Spark's explain(): one line per operator, root first, children below their parent as a tree; the plan
// as it runs, after the optimizer (flow/optimizer.hpp).
std::string explain(const plan_node& plan);

// Throws flow::error when the output mode is not allowed for the query shape, naming the rule
// (e.g. "complete output mode not supported when there are no streaming aggregations"). Append mode with an
// aggregation needs it to group by a window over (or by) a watermarked column.
void validate_output_mode(const plan_node& plan, output_mode mode);

}  // namespace flow
