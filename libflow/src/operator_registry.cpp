#include "flow/operator_registry.hpp"

#include "flow/aggregate_operators.hpp"
#include "flow/deduplicate.hpp"
#include "flow/session_window.hpp"
#include "flow/function_registry.hpp"
#include "flow/join.hpp"
#include "flow/named_registry.hpp"
#include "flow/operators.hpp"
#include "flow/plan_codec.hpp"
#include "flow/stream_join.hpp"
#include "flow/watermark.hpp"

namespace flow {

namespace {

operator_ptr build_project(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  std::vector<expr> exprs;
  while (!reader.at_end()) exprs.push_back(reader.read_expr());
  return std::make_shared<project_operator>(*input, exprs);
}

operator_ptr build_filter(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  expr predicate = reader.read_expr();
  reader.expect_end();
  return std::make_shared<filter_operator>(input, predicate);
}

operator_ptr build_map_batches(const std::string& arguments, const schema_ptr&) {
  codec_reader reader(arguments, "its arguments");
  std::string name = reader.read_string();
  schema_ptr output = reader.read_schema();
  reader.expect_end();
  batch_function fn = find_batch_function(name);
  return make_function_operator(std::move(fn), std::move(output), std::move(name));
}

void register_builtin_operators(named_registry<operator_factory>& registry) {
  registry.add("project", build_project);
  registry.add("filter", build_filter);
  registry.add("map_batches", build_map_batches);
  registry.add("partial_aggregate", partial_aggregate_operator::from_arguments);
  registry.add("final_aggregate", final_aggregate_operator::from_arguments);
  registry.add("with_watermark", watermark_operator::from_arguments);
  registry.add("stream_static_join", stream_static_join_operator::from_arguments);
  registry.add("deduplicate", deduplicate_operator::from_arguments);
  registry.add("session_window", session_window_operator::from_arguments);
  registry.add("stream_stream_join", stream_join_operator::from_arguments);
}

named_registry<operator_factory>& operators() {
  // Built on first use: registering from another translation unit's static initialiser is safe.
  static named_registry<operator_factory> registry("stream operator", "flow::register_operator", register_builtin_operators);
  return registry;
}

}  // namespace

void register_operator(std::string name, operator_factory factory) {
  if (!factory) throw error("flow::register_operator(\"" + name + "\"): the factory is empty");
  operators().add(std::move(name), std::move(factory));
}

operator_factory find_operator(std::string_view name) { return operators().find(name); }

std::vector<std::string> operator_names() { return operators().names(); }

operator_ptr make_operator(const operator_descriptor& descriptor, const schema_ptr& input) {
  const operator_factory factory = find_operator(descriptor.name);
  if (!input) throw error("operator '" + descriptor.name + "': no input schema to rebuild it for");
  operator_ptr op;
  try {
    op = factory(descriptor.arguments, input);
  } catch (const error& e) {
    throw error("cannot rebuild operator '" + descriptor.name + "': " + e.what());
  }
  if (!op) throw error("the factory of operator '" + descriptor.name + "' returned no operator");
  return op;
}

}  // namespace flow
