#include "flow/connectors/registry.hpp"

#include <array>
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
#include "flow/connectors/socket.hpp"
#include "flow/connectors/zeromq.hpp"

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

struct source_format {
  std::string_view name;
  void (*resolve)(scan_spec&);  // nullptr: a file format, resolved by the session (it infers schemas)
  std::unique_ptr<source_reader> (*make)(const scan_spec&);
};

// Every source format: the one list that dispatch and the "supported" messages come from.
const std::array<source_format, 9> source_formats_table{{
    {"csv", nullptr, make_files},
    {"json", nullptr, make_files},
    {"text", nullptr, make_files},
    {"socket", resolve_socket, [](const scan_spec& s) { return make_socket_source(s.opts); }},
    {"http-feed", resolve_http_feed, [](const scan_spec& s) { return make_http_feed_source(s.opts, s.schema); }},
    {"twitter", resolve_http_feed, [](const scan_spec& s) { return make_http_feed_source(s.opts, s.schema); }},
    {"zmq", resolve_zmq, [](const scan_spec& s) { return make_zmq_source(s.opts, s.schema); }},
    {"kafka", resolve_kafka, [](const scan_spec& s) { return make_kafka_source(s.opts); }},
    {"rate", resolve_rate, [](const scan_spec& s) { return make_rate_source(s.opts); }},
}};

// ---------------------------------------------------------------- sinks

struct sink_format {
  std::string_view name;
  std::unique_ptr<sink_writer> (*make)(const sink_spec&, const sink_context&);
};

std::unique_ptr<sink_writer> make_files_sink(const sink_spec& spec, const sink_context&) {
  if (!spec.opts.has("path"))
    throw error("the " + spec.format + " sink needs an output directory: option(\"path\", \"/output/dir\")");
  return make_file_sink(spec.format, spec.opts);
}

// Every sink format, in the order the "supported" message lists them.
const std::array<sink_format, 10> sink_formats_table{{
    {"memory",
     [](const sink_spec& spec, const sink_context& ctx) {
       if (spec.query_name.empty())
         throw error("the memory sink needs a query name: call query_name(\"table\") before start()");
       return make_memory_sink(ctx.catalog, spec.query_name);
     }},
    {"console",
     [](const sink_spec& spec, const sink_context& ctx) {
       return make_console_sink(ctx.console ? *ctx.console : std::cout, spec.opts);
     }},
    {"csv", make_files_sink},
    {"json", make_files_sink},
    {"foreach",
     [](const sink_spec& spec, const sink_context&) {
       if (!spec.foreach) throw error("the foreach sink needs a writer: call foreach(writer) before start()");
       return make_foreach_sink(spec.foreach);
     }},
    {"foreachBatch",
     [](const sink_spec& spec, const sink_context&) {
       if (!spec.foreach_batch)
         throw error("the foreachBatch sink needs a function: call foreach_batch(fn) before start()");
       return make_foreach_batch_sink(spec.foreach_batch);
     }},
    {"socket", [](const sink_spec& spec, const sink_context&) { return make_socket_sink(spec.opts); }},
    {"kafka", [](const sink_spec& spec, const sink_context&) { return make_kafka_sink(spec.opts); }},
    {"zmq", [](const sink_spec& spec, const sink_context&) { return make_zmq_sink(spec.opts); }},
    {"noop", [](const sink_spec&, const sink_context&) { return make_noop_sink(); }},
}};

template <class Table>
std::vector<std::string> names_of(const Table& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.name);
  return names;
}

template <class Table>
const typename Table::value_type* find_format(const Table& table, std::string_view name) {
  for (const auto& entry : table)
    if (entry.name == name) return &entry;
  return nullptr;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

const source_format& source_entry(const std::string& format) {
  if (const auto* entry = find_format(source_formats_table, format)) return *entry;
  throw error("unknown source format '" + format + "'; supported: " + joined(source_formats()) +
              " (names are case-sensitive)");
}

}  // namespace

std::vector<std::string> source_formats() { return names_of(source_formats_table); }

std::vector<std::string> sink_formats() { return names_of(sink_formats_table); }

void resolve_source(scan_spec& scan) {
  if (scan.format == "local") return;  // rows held in memory (session::create_data_frame)
  const source_format& entry = source_entry(scan.format);
  if (!entry.resolve) return;
  if (!scan.path.empty())
    throw error("load('" + scan.path + "'): the " + scan.format +
                " source takes no path; configure it with option(...) and call load()");
  entry.resolve(scan);
}

std::unique_ptr<source_reader> make_source(const scan_spec& scan) { return source_entry(scan.format).make(scan); }

std::unique_ptr<sink_writer> make_sink(const sink_spec& spec, const sink_context& ctx) {
  if (const auto* entry = find_format(sink_formats_table, spec.format)) return entry->make(spec, ctx);
  throw error("unknown sink format '" + spec.format + "'; supported: " + joined(sink_formats()) +
              " (names are case-sensitive)");
}

}  // namespace flow::connectors
