// Spark's noop sink: runs the query and drops its output. For measuring a source and the operators
// without the cost of writing anywhere.
#pragma once

#include <memory>

#include "flow/source_sink.hpp"

namespace flow::connectors {

// Metrics (cumulative): numEpochs and numOutputRows, the epochs committed and their rows. A replayed
// epoch that was committed already is not counted again.
std::unique_ptr<flow::sink_writer> make_noop_sink();

}  // namespace flow::connectors

namespace flow {
using connectors::make_noop_sink;
}  // namespace flow
