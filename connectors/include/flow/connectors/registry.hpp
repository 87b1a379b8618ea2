// The runtime's side of the connector registry (flow/registry.hpp): every source and sink by format name.
#pragma once

#include <memory>

#include "flow/registry.hpp"

namespace flow::connectors {

// Checks the scan with its format's resolve and fills in scan.schema (a file format infers it). Throws
// flow::error for an unknown format (listing the registered ones), for a path given to a source that
// takes none, for bad options, and when no schema results.
void resolve_source(scan_spec& scan);

// Throw flow::error listing the registered formats when the format is unknown.
std::unique_ptr<source_reader> make_source(const scan_spec& scan);
std::unique_ptr<sink_writer> make_sink(const sink_spec& spec, const sink_context& ctx);

}  // namespace flow::connectors
