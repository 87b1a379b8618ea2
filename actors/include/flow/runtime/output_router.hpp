// Where one vertex instance's output goes: per outgoing edge, which instances of the target get which
// rows (the edge's partitioning) and which get its barriers; and how many barriers an instance waits
// for per epoch. Plain C++, no actors: the vertex actor sends what it says.
#pragma once

#include <cstddef>
#include <vector>

#include "flow/graph.hpp"

namespace flow::runtime {

class output_router {
 public:
  // The outgoing edges of `vertex` in `graph` (parallelism resolved), for its instance `instance`.
  output_router(const dataflow_graph& graph, std::size_t vertex, std::size_t instance);

  std::size_t edges() const { return edges_.size(); }
  std::size_t input_of(std::size_t edge) const { return edges_[edge].input; }
  std::size_t target_vertex(std::size_t edge) const { return edges_[edge].to; }

  // Calls send(edge, target_instance, rows) for every part of rows that goes somewhere.
  template <class Send>
  void route(const batch& rows, Send&& send) {
    for (std::size_t e = 0; e < edges_.size(); ++e) {
      auto& edge = edges_[e];
      switch (edge.kind) {
        case partitioning::forward: send(e, instance_ % edge.targets, rows); break;
        case partitioning::rebalance:
          send(e, edge.next, rows);
          edge.next = (edge.next + 1) % edge.targets;
          break;
        case partitioning::broadcast:
          for (std::size_t t = 0; t < edge.targets; ++t) send(e, t, rows);
          break;
        case partitioning::hash: {
          auto parts = hash_parts(rows, edge);
          for (std::size_t t = 0; t < parts.size(); ++t)
            if (parts[t].num_rows() > 0) send(e, t, parts[t]);
          break;
        }
      }
    }
  }

  // Calls notify(edge, target_instance) for every instance that waits for this instance's barrier.
  template <class Notify>
  void barrier(Notify&& notify) const {
    for (std::size_t e = 0; e < edges_.size(); ++e) {
      const auto& edge = edges_[e];
      if (edge.kind == partitioning::forward) notify(e, instance_ % edge.targets);
      else
        for (std::size_t t = 0; t < edge.targets; ++t) notify(e, t);
    }
  }

  // How many barriers instance `instance` of `vertex` receives per epoch from its upstream instances.
  static std::size_t expected_barriers(const dataflow_graph& graph, std::size_t vertex, std::size_t instance);

 private:
  struct out_edge {
    std::size_t to = 0, input = 0, targets = 1, next = 0;
    partitioning kind = partitioning::rebalance;
    std::vector<std::size_t> key_columns;
    bool hand_on_keys = false;  // hash: the target's first operator reads the keys the edge encodes
  };
  static std::vector<batch> hash_parts(const batch& rows, const out_edge& edge);
  std::vector<out_edge> edges_;
  std::size_t instance_;
};

}  // namespace flow::runtime
