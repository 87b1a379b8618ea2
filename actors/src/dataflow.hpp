// The actors that carry an epoch's data: source -> stage x N -> [aggregate x N] -> sink.
// They carry batches and count; the compute they call lives in libflow and connectors.
#pragma once

#include <memory>
#include <vector>

#include "messages.hpp"
#include "flow/plan.hpp"

namespace flow::runtime {

// Who to tell when an actor fails, and which incarnation of the dataflow it belongs to.
struct supervision {
  caf::actor coordinator;
  std::uint64_t generation = 0;
};

caf::actor spawn_source(caf::actor_system& sys, std::shared_ptr<source_reader> reader,
                        std::vector<caf::actor> stages, std::size_t credits_per_stage, supervision sup);

caf::actor spawn_stage(caf::actor_system& sys, std::shared_ptr<const decoder> chunk_decoder,
                       std::shared_ptr<const pipeline> pre, std::shared_ptr<const aggregate_operator> aggregate,
                       std::vector<caf::actor> downstream, supervision sup);

caf::actor spawn_aggregate(caf::actor_system& sys, std::shared_ptr<const aggregate_operator> aggregate,
                           batch restored_state, std::shared_ptr<const pipeline> post, output_mode mode,
                           caf::actor sink, std::size_t upstream_count, std::size_t partition, supervision sup);

caf::actor spawn_sink(caf::actor_system& sys, std::shared_ptr<sink_writer> writer, std::size_t upstream_count,
                      supervision sup);

}  // namespace flow::runtime
