#include "flow/connectors/registry.hpp"

#include <iostream>

#include "flow/connectors/console.hpp"
#include "flow/connectors/file_sink.hpp"
#include "flow/connectors/file_source.hpp"
#include "flow/connectors/foreach.hpp"
#include "flow/connectors/http_feed.hpp"
#include "flow/connectors/kafka.hpp"
#include "flow/connectors/memory.hpp"
#include "flow/connectors/noop.hpp"
#include "flow/connectors/rate.hpp"
#include "flow/connectors/rocksdb_store.hpp"
#include "flow/connectors/socket.hpp"
#include "flow/connectors/zeromq.hpp"
#include "flow/named_registry.hpp"

namespace flow::connectors {

namespace {

// ---------------------------------------------------------------- sources

void require_streaming(const scan_spec& scan) {
  if (!scan.streaming) throw error("the " + scan.format + " source is streaming only: use read_stream()");
}

void refuse_schema(const scan_spec& scan) {
  if (scan.schema)
    throw error(scan.format + " source has a fixed schema and cannot be set with a custom one; drop schema(...)");
}

void resolve_socket(scan_spec& scan) {
  require_streaming(scan);
  if (scan.schema) throw error("socket source has a fixed schema (value[, timestamp]); drop schema(...)");
  validate_socket_source_options(scan.opts);
  scan.schema = socket_source_schema(scan.opts);
}

void resolve_http_feed(scan_spec& scan) {
  require_streaming(scan);
  if (!scan.schema)
    throw error("the " + scan.format + " source needs a schema naming the JSON fields to read: call schema(...)");
  validate_http_feed_options(scan.opts);
}

void resolve_zmq(scan_spec& scan) {
  require_streaming(scan);
  scan.schema = resolve_zmq_source_schema(scan.opts, scan.schema);
}

void resolve_kafka(scan_spec& scan) {
  refuse_schema(scan);
  validate_kafka_source_options(scan.opts);
  scan.schema = kafka_source_schema();
}

void resolve_rate(scan_spec& scan) {
  refuse_schema(scan);
  validate_rate_options(scan.opts);
  scan.schema = rate_source_schema();
}

std::unique_ptr<source_reader> make_files(const scan_spec& scan) {
  return make_file_source(scan.path, scan.format, scan.opts, scan.schema);
}

void add_source(named_registry<source_format>& registry, std::string name, source_format format) {
  if (!format.resolve || !format.make)
    throw error("flow::register_source_format(\"" + name + "\"): the format needs both functions, resolve " +
                "(checks options, sets the schema) and make (makes the reader)");
  registry.add(std::move(name), std::move(format));
}

void register_builtin_sources(named_registry<source_format>& registry) {
  for (const char* files : {"csv", "json", "text"}) add_source(registry, files, {resolve_file_scan, make_files, true});
  add_source(registry, "socket", {resolve_socket, [](const scan_spec& s) { return make_socket_source(s.opts); }});
  for (const char* feed : {"http-feed", "twitter"})
    add_source(registry, feed,
               {resolve_http_feed, [](const scan_spec& s) { return make_http_feed_source(s.opts, s.schema); }});
  add_source(registry, "zmq", {resolve_zmq, [](const scan_spec& s) { return make_zmq_source(s.opts, s.schema); }});
  add_source(registry, "kafka", {resolve_kafka, [](const scan_spec& s) { return make_kafka_source(s.opts); }});
  add_source(registry, "rate", {resolve_rate, [](const scan_spec& s) { return make_rate_source(s.opts); }});
}

// Built on first use, so registering from a static initialiser elsewhere is safe.
named_registry<source_format>& source_registry() {
  static named_registry<source_format> registry("source format", "flow::register_source_format",
                                                register_builtin_sources);
  return registry;
}

// ---------------------------------------------------------------- sinks

std::unique_ptr<sink_writer> make_files_sink(const sink_spec& spec, const sink_context&) {
  if (!spec.opts.has("path"))
    throw error("the " + spec.format + " sink needs an output directory: option(\"path\", \"/output/dir\")");
  return make_file_sink(spec.format, spec.opts);
}

void add_sink(named_registry<sink_factory>& registry, std::string name, sink_factory factory) {
  if (!factory) throw error("flow::register_sink_format(\"" + name + "\"): the factory is empty");
  registry.add(std::move(name), std::move(factory));
}

void register_builtin_sinks(named_registry<sink_factory>& registry) {
  add_sink(registry, "memory", [](const sink_spec& spec, const sink_context& ctx) {
    if (spec.query_name.empty())
      throw error("the memory sink needs a query name: call query_name(\"table\") before start()");
    return make_memory_sink(ctx.catalog, spec.query_name);
  });
  add_sink(registry, "console", [](const sink_spec& spec, const sink_context& ctx) {
    return make_console_sink(ctx.console ? *ctx.console : std::cout, spec.opts);
  });
  for (const char* files : {"csv", "json"}) add_sink(registry, files, make_files_sink);
  add_sink(registry, "foreach", [](const sink_spec& spec, const sink_context&) {
    if (!spec.foreach) throw error("the foreach sink needs a writer: call foreach(writer) before start()");
    return make_foreach_sink(spec.foreach);
  });
  add_sink(registry, "foreachBatch", [](const sink_spec& spec, const sink_context&) {
    if (!spec.foreach_batch)
      throw error("the foreachBatch sink needs a function: call foreach_batch(fn) before start()");
    return make_foreach_batch_sink(spec.foreach_batch);
  });
  add_sink(registry, "socket", [](const sink_spec& spec, const sink_context&) { return make_socket_sink(spec.opts); });
  add_sink(registry, "kafka", [](const sink_spec& spec, const sink_context&) { return make_kafka_sink(spec.opts); });
  add_sink(registry, "zmq", [](const sink_spec& spec, const sink_context&) { return make_zmq_sink(spec.opts); });
  add_sink(registry, "noop", [](const sink_spec&, const sink_context&) { return make_noop_sink(); });
}

named_registry<sink_factory>& sink_registry() {
  static named_registry<sink_factory> registry("sink format", "flow::register_sink_format", register_builtin_sinks);
  return registry;
}

}  // namespace

void resolve_source(scan_spec& scan) {
  if (scan.format == "local") return;  // rows held in memory (session::create_data_frame)
  const source_format format = source_registry().find(scan.format);
  if (!format.takes_path && !scan.path.empty())
    throw error("load('" + scan.path + "'): the " + scan.format +
                " source takes no path; configure it with option(...) and call load()");
  format.resolve(scan);
  if (!scan.schema)
    throw error("the " + scan.format + " source has no schema: give one with schema(...) (its resolve function " +
                "sets none)");
}

std::unique_ptr<source_reader> make_source(const scan_spec& scan) {
  auto reader = source_registry().find(scan.format).make(scan);
  if (!reader) throw error("the " + scan.format + " source format made no reader (its make function returned null)");
  return reader;
}

std::unique_ptr<sink_writer> make_sink(const sink_spec& spec, const sink_context& ctx) {
  auto writer = sink_registry().find(spec.format)(spec, ctx);
  if (!writer) throw error("the " + spec.format + " sink format made no writer (its factory returned null)");
  return writer;
}

// The built-in state backends join libflow's registry when the connectors are linked: every program that
// runs queries links this file (the runtime makes its sources and sinks here).
const bool builtin_state_backends_registered = [] {
  register_state_backends();
  return true;
}();

}  // namespace flow::connectors

namespace flow {

void register_source_format(std::string name, source_format format) {
  connectors::add_source(connectors::source_registry(), std::move(name), std::move(format));
}

void register_sink_format(std::string name, sink_factory factory) {
  connectors::add_sink(connectors::sink_registry(), std::move(name), std::move(factory));
}

std::vector<std::string> source_formats() { return connectors::source_registry().names(); }

std::vector<std::string> sink_formats() { return connectors::sink_registry().names(); }

}  // namespace flow
