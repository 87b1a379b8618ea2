#include "flow/connectors/registry.hpp"

#include <iostream>

#include "flow/connectors/console.hpp"
#include "flow/connectors/file_sink.hpp"
#include "flow/connectors/file_source.hpp"
#include "flow/connectors/foreach.hpp"
#include "flow/connectors/http_feed.hpp"
#include "flow/connectors/kafka.hpp"
#include "flow/connectors/memory.hpp"
#include "flow/connectors/rate.hpp"
#include "flow/connectors/socket.hpp"
#include "flow/connectors/zeromq.hpp"

namespace flow::connectors {

bool is_file_format(std::string_view format) { return format == "csv" || format == "json" || format == "text"; }

void resolve_source(scan_spec& scan) {
  if (is_file_format(scan.format) || scan.format == "local") return;
  if (scan.format == "socket") {
    if (!scan.streaming) throw error("the socket source is streaming only: use read_stream()");
    if (scan.schema) throw error("socket source has a fixed schema (value[, timestamp]); drop schema(...)");
    validate_socket_source_options(scan.opts);
    scan.schema = socket_source_schema(scan.opts);
    return;
  }
  if (scan.format == "http-feed" || scan.format == "twitter") {
    if (!scan.streaming) throw error("the " + scan.format + " source is streaming only: use read_stream()");
    if (!scan.schema)
      throw error("the " + scan.format + " source needs a schema naming the JSON fields to read: call schema(...)");
    validate_http_feed_options(scan.opts);
    return;
  }
  if (scan.format == "zmq") {
    if (!scan.streaming) throw error("the zmq source is streaming only: use read_stream()");
    scan.schema = resolve_zmq_source_schema(scan.opts, scan.schema);
    return;
  }
  if (scan.format == "kafka" || scan.format == "rate") {
    if (scan.schema)
      throw error(scan.format + " source has a fixed schema and cannot be set with a custom one; drop schema(...)");
    if (scan.format == "kafka") validate_kafka_source_options(scan.opts);
    else validate_rate_options(scan.opts);
    scan.schema = scan.format == "kafka" ? kafka_source_schema() : rate_source_schema();
    return;
  }
  throw error("unknown source format '" + scan.format + "'; supported: csv, json, text, kafka, rate, zmq");
}

std::unique_ptr<source_reader> make_source(const scan_spec& scan) {
  if (is_file_format(scan.format)) return make_file_source(scan.path, scan.format, scan.opts, scan.schema);
  if (scan.format == "socket") return make_socket_source(scan.opts);
  if (scan.format == "kafka") return make_kafka_source(scan.opts);
  if (scan.format == "zmq") return make_zmq_source(scan.opts, scan.schema);
  if (scan.format == "rate") return make_rate_source(scan.opts);
  if (scan.format == "http-feed" || scan.format == "twitter") return make_http_feed_source(scan.opts, scan.schema);
  throw error("unknown source format '" + scan.format + "'; supported: csv, json, text, kafka, rate, zmq");
}

std::unique_ptr<sink_writer> make_sink(const sink_spec& spec, const sink_context& ctx) {
  if (spec.format == "memory") {
    if (spec.query_name.empty())
      throw error("the memory sink needs a query name: call query_name(\"table\") before start()");
    return make_memory_sink(ctx.catalog, spec.query_name);
  }
  if (spec.format == "console") return make_console_sink(ctx.console ? *ctx.console : std::cout, spec.opts);
  if (spec.format == "csv" || spec.format == "json") {
    if (!spec.opts.has("path"))
      throw error("the " + spec.format + " sink needs an output directory: option(\"path\", \"/output/dir\")");
    return make_file_sink(spec.format, spec.opts);
  }
  if (spec.format == "foreach") {
    if (!spec.foreach) throw error("the foreach sink needs a writer: call foreach(writer) before start()");
    return make_foreach_sink(spec.foreach);
  }
  if (spec.format == "foreachBatch") {
    if (!spec.foreach_batch)
      throw error("the foreachBatch sink needs a function: call foreach_batch(fn) before start()");
    return make_foreach_batch_sink(spec.foreach_batch);
  }
  if (spec.format == "socket") return make_socket_sink(spec.opts);
  if (spec.format == "kafka") return make_kafka_sink(spec.opts);
  if (spec.format == "zmq") return make_zmq_sink(spec.opts);
  throw error("unknown sink format '" + spec.format +
              "'; supported: memory, console, csv, json, foreach, foreachBatch, socket, kafka, zmq");
}

}  // namespace flow::connectors
