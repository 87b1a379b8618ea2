// User functions by name, so that a plan can name the function it runs (a serialized plan carries the
// name, the process that runs it finds the function here). Thread-safe; a name is registered once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "flow/plan.hpp"

namespace flow {

// Registers a map_batches-style function (thread-safe itself, see batch_function). Throws flow::error for
// an empty name, an empty function, or a name already registered.
void register_batch_function(std::string name, batch_function fn);
// Throws flow::error listing every registered name when name is unknown.
batch_function find_batch_function(std::string_view name);
// Sorted.
std::vector<std::string> batch_function_names();

}  // namespace flow
