// Where a cluster's vertex instances run (instance_placement, no actors): operator vertices' instances on
// the workers, round-robin over their slots, deterministic; re-placed over the workers left after a loss.
#include <catch2/catch.hpp>

#include "flow/runtime/instance_placement.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::runtime;

namespace {

// A source (3 instances), two operator vertices (op_a instances of "a", op_b of "b") and a sink. The graph is
// only placed, never run: the vertices need no operators.
dataflow_graph graph_of(std::size_t op_a, std::size_t op_b) {
  dataflow_graph g;
  scan_spec scan;
  scan.schema = make_schema({{"x", type_id::int64, true}});
  const auto source = g.add_source("source", scan, {}, 3);
  const auto a = g.add_operators("a", scan.schema, {}, op_a);
  const auto b = g.add_operators("b", scan.schema, {}, op_b);
  const auto sink = g.add_sink("sink", scan.schema, sink_spec{});
  g.connect(source, a, partitioning::rebalance);
  g.connect(a, b, partitioning::rebalance);
  g.connect(b, sink, partitioning::rebalance);
  g.resolve_parallelism(1);
  return g;
}

// Per operator vertex, the worker of each instance.
std::vector<std::vector<std::size_t>> workers_of(const instance_placement& p, const dataflow_graph& g) {
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t v = 0; v < g.vertices().size(); ++v) {
    if (g.vertex(v).kind != vertex_kind::operators) continue;
    auto& instances = out.emplace_back();
    for (std::size_t i = 0; i < g.vertex(v).parallelism; ++i) instances.push_back(p.worker_of(v, i));
  }
  return out;
}

}  // namespace

TEST_CASE("placement: operator instances go round-robin over the workers' slots, sources and sinks stay here",
          "[cluster][placement]") {
  const auto g = graph_of(3, 2);
  const instance_placement p(g, {2, 2, 2});
  CHECK(workers_of(p, g) == std::vector<std::vector<std::size_t>>{{0, 1, 2}, {0, 1}});
  CHECK(p.load() == std::vector<std::size_t>{2, 2, 1});
  for (std::size_t i = 0; i < 3; ++i) CHECK(p.worker_of(0, i) == instance_placement::here);  // the source
  CHECK(p.worker_of(3, 0) == instance_placement::here);                                      // the sink
  // The same graph and slots: the same placement.
  CHECK(workers_of(instance_placement(g, {2, 2, 2}), g) == workers_of(p, g));
  // An embedded run: everything here.
  CHECK(instance_placement().worker_of(1, 0) == instance_placement::here);
}

TEST_CASE("placement: a full worker is skipped, and past every slot the instances share the workers evenly",
          "[cluster][placement]") {
  const auto g = graph_of(3, 3);
  CHECK(workers_of(instance_placement(g, {1, 4}), g) == std::vector<std::vector<std::size_t>>{{0, 1, 1}, {1, 1, 0}});
  CHECK(instance_placement(g, {1, 4}).load() == std::vector<std::size_t>{2, 4});  // 5 slots, 6 instances
  CHECK(instance_placement(g, {1, 1}).load() == std::vector<std::size_t>{3, 3});
}

TEST_CASE("placement: after a loss the instances are placed over the remaining workers", "[cluster][placement]") {
  const auto g = graph_of(2, 2);
  const instance_placement before(g, {2, 2, 2});
  CHECK(before.load() == std::vector<std::size_t>{2, 1, 1});
  const instance_placement after(g, {2, 0, 2});  // worker 1 lost
  CHECK(after.load() == std::vector<std::size_t>{2, 0, 2});
  for (const auto& instances : workers_of(after, g))
    for (auto w : instances) CHECK(w != 1);
  CHECK_THAT(flow::test::error_of([&] { instance_placement(g, {0, 0}); }),
             Catch::Contains("cannot place vertex 'a': no worker of the cluster is available (all 2 lost)"));
}

TEST_CASE("a self-reading source vertex's instances are placed on the workers first, in the same deal", "[cluster][placement]") {
  const auto g = graph_of(2, 1);
  const instance_placement p(g, {2, 2}, {0});
  for (std::size_t i = 0; i < 3; ++i) CHECK(p.worker_of(0, i) == std::vector<std::size_t>{0, 1, 0}[i]);
  CHECK(workers_of(p, g) == std::vector<std::vector<std::size_t>>{{1, 0}, {1}});
  CHECK(p.worker_of(3, 0) == instance_placement::here);  // the sink
  // Without the source in the list its instances stay here.
  CHECK(instance_placement(g, {2, 2}).worker_of(0, 0) == instance_placement::here);
}
