// CAF 0.17 serialization of a dataflow graph's description (flow/graph_description.hpp), to run it in
// another process. Include only from actors/*.cpp: it pulls in CAF. flow::session registers the message
// type (flow::graph_description) in every process. The receiver rebuilds the
// graph with flow::rebuild(), which finds the operators it names in its own registry.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>

#include "flow/graph_description.hpp"

namespace flow {

// An enum member travels as its underlying integer; loading refuses one past the enum's last value, so
// corrupt bytes give a CAF error rather than an enum value no switch handles.
template <class Enum, Enum Last>
struct checked_enum {
  Enum& value;
};

template <class Inspector, class Enum, Enum Last>
typename Inspector::result_type inspect(Inspector& f, checked_enum<Enum, Last>& x) {
  using underlying = std::underlying_type_t<Enum>;
  auto raw = static_cast<underlying>(x.value);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    const auto wide = static_cast<std::int64_t>(raw), last = static_cast<std::int64_t>(Last);
    if (wide < 0 || wide > last)
      return caf::make_error(caf::sec::invalid_argument, "enum value " + std::to_string(wide) +
                                                             " is out of range (0 to " + std::to_string(last) + ")");
    x.value = static_cast<Enum>(raw);
    return caf::none;
  });
  return f(raw, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, field& x) {
  checked_enum<type_id, type_id::string_list> type{x.type};
  return f(caf::meta::type_name("flow::field"), x.name, type, x.nullable);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, schema& x) {
  std::vector<field> fields = x.fields();
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x = schema(std::move(fields));
    return caf::none;
  });
  return f(caf::meta::type_name("flow::schema"), fields, load);
}

// Options travel as their (lower-cased) keys and values.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, options& x) {
  std::map<std::string, std::string> values = x.all();
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x = options();
    for (auto& [key, value] : values) x.set(key, std::move(value));
    return caf::none;
  });
  return f(caf::meta::type_name("flow::options"), values, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, operator_descriptor& x) {
  return f(caf::meta::type_name("flow::operator_descriptor"), x.name, x.arguments);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, trigger& x) {
  checked_enum<trigger_kind, trigger_kind::available_now> kind{x.kind};
  std::int64_t interval_ms = x.interval.count();
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.interval = std::chrono::milliseconds(interval_ms);
    return caf::none;
  });
  return f(caf::meta::type_name("flow::trigger"), kind, interval_ms, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scan_description& x) {
  return f(caf::meta::type_name("flow::scan_description"), x.format, x.path, x.opts, x.fields, x.streaming);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sink_description& x) {
  checked_enum<output_mode, output_mode::complete> mode{x.mode};
  return f(caf::meta::type_name("flow::sink_description"), x.format, x.opts, x.query_name, mode, x.trigger, x.keys);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vertex_description& x) {
  checked_enum<vertex_kind, vertex_kind::sink> kind{x.kind};
  return f(caf::meta::type_name("flow::vertex_description"), x.name, kind, x.parallelism, x.scan, x.input, x.chain,
           x.sink);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, graph_edge& x) {
  checked_enum<partitioning, partitioning::broadcast> kind{x.kind};
  return f(caf::meta::type_name("flow::graph_edge"), x.from, x.to, x.input, kind, x.keys);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, graph_description& x) {
  return f(caf::meta::type_name("flow::graph_description"), x.vertices, x.edges);
}

}  // namespace flow
