#include "flow/connectors/registry.hpp"

#include <iostream>

#include "flow/connectors/console.hpp"
#include "flow/connectors/file_source.hpp"
#include "flow/connectors/memory.hpp"

namespace flow::connectors {

bool is_file_format(std::string_view format) { return format == "csv" || format == "json" || format == "text"; }

void resolve_source(scan_spec& scan) {
  if (is_file_format(scan.format) || scan.format == "local") return;
  throw error("unknown source format '" + scan.format + "'; supported: csv, json, text");
}

std::unique_ptr<source_reader> make_source(const scan_spec& scan) {
  if (is_file_format(scan.format)) return make_file_source(scan.path, scan.format, scan.opts, scan.schema);
  throw error("unknown source format '" + scan.format + "'; supported: csv, json, text");
}

std::unique_ptr<sink_writer> make_sink(const sink_spec& spec, const sink_context& ctx) {
  if (spec.format == "memory") {
    if (spec.query_name.empty())
      throw error("the memory sink needs a query name: call query_name(\"table\") before start()");
    return make_memory_sink(ctx.catalog, spec.query_name);
  }
  if (spec.format == "console") return make_console_sink(ctx.console ? *ctx.console : std::cout, spec.opts);
  throw error("unknown sink format '" + spec.format + "'; supported: memory, console");
}

}  // namespace flow::connectors
