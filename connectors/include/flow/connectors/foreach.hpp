// Spark's foreach and foreachBatch sinks: the epoch's result handed to user code.
#pragma once

#include <memory>

#include "flow/source_sink.hpp"

namespace flow::connectors {

// At each epoch's commit, writer->open(0, epoch) (one partition per epoch: the epoch's batches in source
// order); if it returns true, process(row) for every row; then close(nullopt). close is called even when
// open returns false, as in Spark. When process throws, close(the error message) is called and the
// exception propagates: the runtime replays the epoch, so rows are delivered at least once (open's epoch
// id lets a writer deduplicate). An epoch already committed by this sink is not delivered again.
std::unique_ptr<flow::sink_writer> make_foreach_sink(std::shared_ptr<flow::foreach_writer> writer);

// At each epoch's commit, fn(the epoch's rows concatenated in source order, epoch); an empty epoch gives
// an empty batch of the query's schema. An exception propagates (the runtime replays the epoch: at least
// once); an epoch already committed by this sink is not delivered again.
std::unique_ptr<flow::sink_writer> make_foreach_batch_sink(flow::foreach_batch_function fn);

}  // namespace flow::connectors

namespace flow {
using connectors::make_foreach_batch_sink;
using connectors::make_foreach_sink;
}  // namespace flow
