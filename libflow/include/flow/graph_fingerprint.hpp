// What a query's checkpoint depends on, and whether a (changed) query may resume from a checkpoint.
// A checkpoint's offsets refer to its sources and its state slots to its stateful operators instance by
// instance; everything else of a query (sinks, triggers, rate limits, stateless operators) may change
// between runs. See docs/fault-tolerance.md, "Changing a query".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "flow/graph.hpp"

namespace flow {

// What of a query its checkpoint depends on, as JSON text (stored in the checkpoint's metadata): every
// source's identity (source_identities[k]: source_reader::identity() of graph.sources()[k]) and output
// schema, in graph order, and every stateful operator in state-slot order (vertices in order, then the
// chain's operators whose make_state() is non-null and durable()): vertex name, parallelism, operator
// name, key columns, and the schema of its state (make_state()->snapshot().schema()). The graph's
// parallelism must be resolved (dataflow_graph::resolve_parallelism). Throws flow::error when
// source_identities does not have one entry per source.
std::string graph_fingerprint(const dataflow_graph& graph, const std::vector<std::string>& source_identities);

// nullopt when a query with fingerprint `query` may run on a checkpoint written with `checkpoint`; else a
// message naming every difference (sources and stateful operators changed, added or removed), the
// checkpoint's side and the query's side by side, and what to do. A schema may only relax a non-nullable
// column to nullable. Throws flow::error naming checkpoint_directory when a fingerprint is not one
// graph_fingerprint wrote (a damaged metadata file).
std::optional<std::string> checkpoint_incompatibility(const std::string& checkpoint, const std::string& query,
                                                      const std::string& checkpoint_directory);

// The parallelism every stateful operator of a checkpoint's fingerprint has, when they all have the same
// (nullopt: none, or several): what a resumed query's vertices that set none take, as Spark keeps a
// checkpoint's number of shuffle partitions. Throws as checkpoint_incompatibility.
std::optional<std::size_t> checkpoint_parallelism(const std::string& checkpoint, const std::string& checkpoint_directory);

}  // namespace flow
