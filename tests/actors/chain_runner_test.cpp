// The vertex instance's plain parts, without actors: chain_runner (a fused chain of operators, their
// states, what they emit) and output_router (which instances of the next vertices get which rows and
// barriers, and how many barriers an instance waits for).
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "flow/aggregate_operators.hpp"
#include "flow/keys.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/runtime/output_router.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::runtime;

namespace {

schema_ptr kv() { return make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}}); }

batch rows(std::vector<std::pair<std::int64_t, std::int64_t>> kvs) {
  std::vector<std::vector<value>> r;
  for (auto [k, v] : kvs) r.push_back({k, v});
  return make_batch(kv(), r);
}

std::shared_ptr<const aggregate_operator> sum_by_k() {
  return std::make_shared<aggregate_operator>(kv(), std::vector<expr>{col("k")},
                                              std::vector<agg_spec>{{agg_kind::sum, col("v"), "v"}});
}

struct emitted {
  std::vector<std::pair<std::uint64_t, batch>> out;
  chain_runner::output sink() {
    return [this](std::uint64_t seq, batch b) { out.emplace_back(seq, std::move(b)); };
  }
};

// A graph: source (parallelism p_source) -> [edge kind] -> vertex "next" (parallelism p_next) -> sink.
dataflow_graph two_vertices(std::size_t p_source, std::size_t p_next, partitioning kind) {
  dataflow_graph g;
  scan_spec scan;
  scan.format = "local";
  scan.schema = kv();
  auto s = g.add_source("source", scan, {}, p_source);
  auto n = g.add_operators("next", kv(), {}, p_next);
  g.connect(s, n, kind, kind == partitioning::hash ? std::vector<std::string>{"k"} : std::vector<std::string>{});
  auto sink = g.add_sink("sink", kv(), sink_spec{});
  g.connect(n, sink, partitioning::forward);
  g.resolve_parallelism(1);
  g.validate();
  return g;
}

}  // namespace

TEST_CASE("chain_runner: each operator's emits feed the next, end_epoch runs in chain order", "[chain_runner]") {
  auto agg = sum_by_k();
  // The partial aggregation emits at its end_epoch; the final one must merge that before its own end_epoch.
  std::vector<operator_ptr> chain{std::make_shared<filter_operator>(kv(), col("v") > lit(std::int64_t{0})),
                                  std::make_shared<partial_aggregate_operator>(agg),
                                  std::make_shared<final_aggregate_operator>(agg, output_mode::update),
                                  std::make_shared<filter_operator>(agg->output_schema(), col("v") > lit(std::int64_t{10}))};
  emitted e;
  chain_runner runner(chain, 0, 1, e.sink());
  CHECK(runner.durable_states() == 1);
  runner.process(0, 7, 0, rows({{1, 5}, {2, -3}, {1, 7}, {3, 11}, {4, 2}}));
  CHECK(e.out.empty());  // the aggregation emits only at the epoch's end
  runner.end_epoch(0, 3);
  REQUIRE(e.out.size() == 1);
  CHECK(e.out[0].first == 3);  // end-of-epoch output carries the seq end_epoch was given
  CHECK(flow::test::sorted_rows(e.out[0].second) ==
        std::vector<std::vector<value>>{{std::int64_t{1}, std::int64_t{12}}, {std::int64_t{3}, std::int64_t{11}}});
  auto changes = runner.take_changes();
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].num_rows() == 3);  // keys 1, 3, 4; key 2 was filtered out before the aggregation
  CHECK(runner.state_rows(0) == 3);
  CHECK(runner.running_operator() == chain[3]->name());
}

TEST_CASE("chain_runner: an empty chain passes batches on with their seq, and restore refills a state", "[chain_runner]") {
  emitted e;
  chain_runner pass({}, 0, 1, e.sink());
  pass.process(0, 42, 0, rows({{1, 1}}));
  REQUIRE(e.out.size() == 1);
  CHECK(e.out[0].first == 42);
  CHECK(pass.take_changes().empty());

  auto agg = sum_by_k();
  std::vector<operator_ptr> chain{std::make_shared<final_aggregate_operator>(agg, output_mode::complete)};
  emitted first_out, restored_out;
  chain_runner first(chain, 0, 1, first_out.sink());
  auto table = agg->make_state();
  table->update(rows({{1, 2}, {2, 3}}));
  first.process(0, 0, 0, table->snapshot());
  first.end_epoch(0, 0);
  CHECK(first.take_changes().at(0).num_rows() == 2);
  chain_runner restored(chain, 0, 1, restored_out.sink());
  restored.restore(0, table->snapshot());  // the state first's table holds
  restored.end_epoch(1, 0);
  REQUIRE(restored_out.out.size() == 1);
  CHECK(flow::test::sorted_rows(restored_out.out[0].second) == flow::test::sorted_rows(first_out.out[0].second));
}

TEST_CASE("output_router: every partitioning sends rows and barriers where they belong", "[output_router]") {
  SECTION("hash: a key always reaches the same instance, every instance gets the barrier") {
    auto g = two_vertices(2, 3, partitioning::hash);
    output_router router(g, 0, 0);
    std::map<std::int64_t, std::set<std::size_t>> targets_of_key;
    std::size_t rows_sent = 0;
    for (int round = 0; round < 3; ++round)
      router.route(rows({{1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}, {1, 0}}), [&](std::size_t edge, std::size_t t, const batch& b) {
        CHECK(edge == 0);
        for (std::size_t i = 0; i < b.num_rows(); ++i) targets_of_key[b.col(0).ints()[i]].insert(t);
        rows_sent += b.num_rows();
      });
    CHECK(rows_sent == 18);
    for (auto& [key, targets] : targets_of_key) CHECK(targets.size() == 1);
    std::set<std::size_t> barriers;
    router.barrier([&](std::size_t, std::size_t t) { barriers.insert(t); });
    CHECK(barriers == std::set<std::size_t>{0, 1, 2});
    for (std::size_t i = 0; i < 3; ++i) CHECK(output_router::expected_barriers(g, 1, i) == 2);
  }
  SECTION("rebalance: whole batches round-robin, instances start at different targets") {
    auto g = two_vertices(2, 2, partitioning::rebalance);
    output_router first(g, 0, 0), second(g, 0, 1);
    std::vector<std::size_t> sent;
    auto record = [&](std::size_t, std::size_t t, const batch&) { sent.push_back(t); };
    first.route(rows({{1, 1}}), record);
    first.route(rows({{1, 1}}), record);
    second.route(rows({{1, 1}}), record);
    CHECK(sent == std::vector<std::size_t>{0, 1, 1});
  }
  SECTION("forward: instance i to instance i, one barrier each; into a sink, all of them") {
    auto g = two_vertices(2, 2, partitioning::forward);
    output_router second(g, 0, 1);
    std::vector<std::size_t> sent;
    second.route(rows({{1, 1}}), [&](std::size_t, std::size_t t, const batch&) { sent.push_back(t); });
    CHECK(sent == std::vector<std::size_t>{1});
    CHECK(output_router::expected_barriers(g, 1, 0) == 1);
    CHECK(output_router::expected_barriers(g, 1, 1) == 1);
    CHECK(output_router::expected_barriers(g, 2, 0) == 2);  // the sink hears both instances
  }
  SECTION("broadcast: every instance gets every batch") {
    auto g = two_vertices(1, 3, partitioning::broadcast);
    output_router router(g, 0, 0);
    std::vector<std::size_t> sent;
    router.route(rows({{1, 1}, {2, 2}}), [&](std::size_t, std::size_t t, const batch& b) {
      sent.push_back(t);
      CHECK(b.num_rows() == 2);
    });
    CHECK(sent == std::vector<std::size_t>{0, 1, 2});
  }
}
