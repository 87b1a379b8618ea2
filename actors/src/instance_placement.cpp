#include "flow/runtime/instance_placement.hpp"

#include <algorithm>

#include "flow/types.hpp"

namespace flow::runtime {

instance_placement::instance_placement(const dataflow_graph& graph, const std::vector<std::size_t>& slots,
                                       const std::vector<std::size_t>& self_reading)
    : workers_(graph.vertices().size()), worker_count_(slots.size()) {
  std::vector<std::size_t> available;
  for (std::size_t w = 0; w < slots.size(); ++w)
    if (slots[w] > 0) available.push_back(w);
  std::vector<std::size_t> used(slots.size(), 0);
  std::size_t next = 0;  // position in available of the next worker to try
  auto take = [&]() {
    for (std::size_t k = 0; k < available.size(); ++k) {
      const std::size_t w = available[(next + k) % available.size()];
      if (used[w] < slots[w]) {
        next = (next + k + 1) % available.size();
        return w;
      }
    }
    const std::size_t w = available[next];  // every slot taken: share
    next = (next + 1) % available.size();
    return w;
  };
  for (std::size_t v = 0; v < graph.vertices().size(); ++v) {
    const auto& vertex = graph.vertex(v);
    const bool placed = vertex.kind == vertex_kind::operators ||
                        std::find(self_reading.begin(), self_reading.end(), v) != self_reading.end();
    if (!placed) continue;
    if (available.empty())
      throw error("cannot place vertex '" + vertex.name + "': no worker of the cluster is available (all " +
                  std::to_string(slots.size()) + " lost); start workers and run the query again");
    for (std::size_t i = 0; i < vertex.parallelism; ++i) {
      const std::size_t w = take();
      ++used[w];
      workers_[v].push_back(w);
    }
  }
}

std::size_t instance_placement::worker_of(std::size_t vertex, std::size_t instance) const {
  if (vertex >= workers_.size() || instance >= workers_[vertex].size()) return here;
  return workers_[vertex][instance];
}

std::vector<std::size_t> instance_placement::load() const {
  std::vector<std::size_t> out(worker_count_, 0);
  for (const auto& instances : workers_)
    for (auto w : instances) ++out[w];
  return out;
}

}  // namespace flow::runtime
