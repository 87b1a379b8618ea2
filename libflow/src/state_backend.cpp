// The registry of state backends.
#include "flow/state_backend.hpp"

#include <algorithm>

#include "flow/named_registry.hpp"

namespace flow {

namespace {

named_registry<key_value_store_factory>& backend_registry() {
  static named_registry<key_value_store_factory> registry("state backend", "flow::register_state_backend");
  return registry;
}

}  // namespace

void register_state_backend(std::string name, key_value_store_factory factory) {
  if (name == "memory")
    throw error("flow::register_state_backend(\"memory\"): 'memory' is the built-in in-memory backend; choose another name");
  if (!factory) throw error("flow::register_state_backend(\"" + name + "\"): the factory is empty");
  backend_registry().add(std::move(name), std::move(factory));
}

std::unique_ptr<key_value_store> make_key_value_store(const state_backend_config& config,
                                                      const std::string& instance_directory) {
  if (config.kind == "memory")
    throw error("make_key_value_store: the 'memory' state backend keeps state in the operators and has no store");
  return backend_registry().find(config.kind)(config, instance_directory);
}

std::vector<std::string> state_backends() {
  std::vector<std::string> names = backend_registry().names();
  names.push_back("memory");
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace flow
