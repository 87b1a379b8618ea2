// Operators by name, so that a graph shipped to another process can name the operators it runs: an
// operator's descriptor() gives the name it is registered under and its arguments, and the receiving
// process rebuilds it with the factory registered under that name. The built-in operators register
// through the same call: "project" and "filter" (arguments: their expressions, flow/plan_codec.hpp) and
// "map_batches" (arguments: the name of a function registered with flow::register_batch_function, and
// the output schema), "partial_aggregate" and "final_aggregate" (flow/aggregate_operators.hpp),
// "stream_static_join" (flow/join.hpp) and "deduplicate" (flow/deduplicate.hpp).
// Thread-safe; a name is registered once.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "flow/stream_operator.hpp"

namespace flow {

// Builds the operator from its descriptor's arguments for rows of schema input. Throws flow::error when
// the arguments are malformed or do not fit the input (an unknown column, ...).
using operator_factory = std::function<operator_ptr(const std::string& arguments, const schema_ptr& input)>;

// Throws flow::error for an empty name, an empty factory, or a name already registered.
void register_operator(std::string name, operator_factory factory);
// Throws flow::error listing every registered name when name is unknown.
operator_factory find_operator(std::string_view name);
// Sorted.
std::vector<std::string> operator_names();

// The operator a descriptor describes, rebuilt for rows of schema input; the error of a factory that
// throws names the operator.
operator_ptr make_operator(const operator_descriptor& descriptor, const schema_ptr& input);

}  // namespace flow
