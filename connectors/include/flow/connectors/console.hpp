// Spark's console sink: prints each committed epoch as a show() table under a "Batch: N" header.
#pragma once

#include <memory>
#include <ostream>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// Options: numRows (default 20), truncate (default true). out must outlive the sink.
// Prints what each epoch delivers, in the order given (complete mode: the whole result table).
std::unique_ptr<flow::sink_writer> make_console_sink(std::ostream& out, flow::options opts);

}  // namespace flow::connectors

namespace flow {
using connectors::make_console_sink;
}  // namespace flow
