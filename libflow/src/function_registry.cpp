#include "flow/function_registry.hpp"

#include "flow/named_registry.hpp"

namespace flow {

namespace {

named_registry<batch_function>& batch_functions() {
  // Built on first use: registering from another translation unit's static initialiser is safe.
  static named_registry<batch_function> registry("batch function", "flow::register_batch_function");
  return registry;
}

}  // namespace

void register_batch_function(std::string name, batch_function fn) {
  if (!fn) throw error("flow::register_batch_function(\"" + name + "\"): the function is empty");
  batch_functions().add(std::move(name), std::move(fn));
}

batch_function find_batch_function(std::string_view name) { return batch_functions().find(name); }

std::vector<std::string> batch_function_names() { return batch_functions().names(); }

}  // namespace flow
