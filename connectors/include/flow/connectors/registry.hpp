// Every connector by format name: the one place the runtime asks for a source or a sink.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "flow/dataframe.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

class memory_catalog;

// What a sink may need from the session.
struct sink_context {
  std::shared_ptr<memory_catalog> catalog;  // memory sink
  std::ostream* console = nullptr;          // console sink
};

// Checks the options of a non-file source and fills in scan.schema where the connector defines it
// (socket: value[, timestamp]; rate: timestamp, value; kafka: key, value, topic, ...). File formats
// (csv, json, text) are resolved by the session, which infers their schema.
// Throws flow::error for an unknown format (naming the supported ones) and for a path given to a source
// that takes none.
void resolve_source(scan_spec& scan);

// The format names make_source and make_sink accept, from the one table each dispatches on.
std::vector<std::string> source_formats();
std::vector<std::string> sink_formats();

// Throws flow::error naming the supported formats when the format is unknown.
std::unique_ptr<source_reader> make_source(const scan_spec& scan);
std::unique_ptr<sink_writer> make_sink(const sink_spec& spec, const sink_context& ctx);

}  // namespace flow::connectors
