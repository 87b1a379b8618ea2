// Where a graph's vertex instances run in a cluster: each operator vertex's instance on one of the workers,
// spread round-robin over their slots, and so are the instances of source vertices that read their files
// themselves; other sources' instances (one reader feeds them) and sinks stay on the driver. Plain C++, no actors: the
// coordinator places every generation of a dataflow with it, so that a lost worker's instances move to the
// remaining workers.
#pragma once

#include <cstddef>
#include <limits>
#include <vector>

#include "flow/graph.hpp"

namespace flow::runtime {

class instance_placement {
 public:
  static constexpr std::size_t here = std::numeric_limits<std::size_t>::max();

  // Every instance here (an embedded run).
  instance_placement() = default;

  // slots: per worker (the driver's order), how many instances it takes; 0: the worker is lost. Instances
  // are dealt in vertex order, instance order, to the next worker with a free slot; once every slot is
  // taken, the rest are dealt round-robin over the available workers (they share their cores). The same
  // graph and slots give the same placement. self_reading: the source vertices placed like operator
  // vertices. Throws flow::error when the graph has vertices to place and no worker is available.
  instance_placement(const dataflow_graph& graph, const std::vector<std::size_t>& slots,
                     const std::vector<std::size_t>& self_reading = {});

  // The worker instance `instance` of `vertex` runs on, or here.
  std::size_t worker_of(std::size_t vertex, std::size_t instance) const;
  // How many instances each worker runs.
  std::vector<std::size_t> load() const;

 private:
  std::vector<std::vector<std::size_t>> workers_;  // per vertex, per instance (empty: all here)
  std::size_t worker_count_ = 0;
};

}  // namespace flow::runtime
