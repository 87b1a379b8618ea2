// dataflow_graph without actors: what validate() refuses, each with the vertex and what to change,
// topological order, parallelism resolution and explain().
#include <catch2/catch.hpp>

#include "flow/aggregate_operators.hpp"
#include "flow/graph.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;

namespace {

schema_ptr kv() { return make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}}); }

scan_spec scan() {
  scan_spec s;
  s.format = "local";
  s.path = "memory";
  s.schema = kv();
  return s;
}

// The built-in aggregation's final operator: keyed by k, with a durable state.
operator_ptr keyed() {
  auto agg = std::make_shared<aggregate_operator>(kv(), std::vector<expr>{col("k")},
                                                  std::vector<agg_spec>{{agg_kind::sum, col("v"), "v"}});
  return std::make_shared<final_aggregate_operator>(agg, output_mode::update);
}

operator_ptr positive() { return std::make_shared<filter_operator>(kv(), col("v") > lit(std::int64_t{0})); }

}  // namespace

TEST_CASE("dataflow graph: a valid graph orders, resolves and explains", "[graph]") {
  dataflow_graph g;
  auto a = g.add_source("a", scan(), {positive()}, 2);
  auto b = g.add_source("b", scan());
  auto keyed_vertex = g.add_operators("sum", kv(), {keyed()}, 3);
  g.connect(a, keyed_vertex, partitioning::hash, {"k"});
  g.connect(b, keyed_vertex, partitioning::hash, {"k"});
  auto sink = g.add_sink("out", g.vertex(keyed_vertex).output, sink_spec{});
  g.connect(keyed_vertex, sink, partitioning::forward);
  g.validate();
  auto order = g.topological_order();
  CHECK(order.back() == sink);
  CHECK(std::find(order.begin(), order.end(), keyed_vertex) > std::find(order.begin(), order.end(), a));
  g.resolve_parallelism(4);
  CHECK(g.vertex(b).parallelism == 4);
  CHECK(g.vertex(a).parallelism == 2);
  CHECK(g.vertex(sink).parallelism == 1);
  CHECK(durable_states(g.vertex(keyed_vertex)) == 1);
  CHECK(durable_states(g.vertex(a)) == 0);
  CHECK_THAT(g.explain(), Catch::Contains("sum (operators, parallelism 3) -> ") &&
                              Catch::Contains("  <- a by hash [k]\n  <- b by hash [k]\n"));
}

TEST_CASE("dataflow graph: validate refuses what cannot run, naming the vertex and the fix", "[graph]") {
  auto with_sink = [](dataflow_graph& g, std::size_t from) {
    g.connect(from, g.add_sink("out", g.vertex(from).output, sink_spec{}), partitioning::forward);
  };
  SECTION("a keyed operator fed round-robin") {
    dataflow_graph g;
    auto s = g.add_source("s", scan());
    auto k = g.add_operators("sum", kv(), {keyed()}, 2);
    g.connect(s, k, partitioning::rebalance);
    with_sink(g, k);
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("vertex 'sum' starts with keyed operator") &&
                                                    Catch::Contains("partition it by hash of [k]"));
  }
  SECTION("a keyed operator at the head of a source's chain with several instances") {
    dataflow_graph g;
    auto s = g.add_source("s", scan(), {keyed()}, 2);
    with_sink(g, s);
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("source 's' starts its chain with keyed operator"));
    dataflow_graph single;
    with_sink(single, single.add_source("s", scan(), {keyed()}, 1));
    CHECK_NOTHROW(single.validate());
  }
  SECTION("a keyed operator after another operator in one vertex") {
    dataflow_graph g;
    auto s = g.add_source("s", scan(), {positive(), keyed()}, 2);
    with_sink(g, s);
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("start a new vertex with a hash edge for it"));
  }
  SECTION("a cycle") {
    dataflow_graph g;
    auto s = g.add_source("s", scan());
    auto x = g.add_operators("x", kv(), {}, 1);
    auto y = g.add_operators("y", kv(), {}, 1);
    g.connect(s, x, partitioning::rebalance);
    g.connect(x, y, partitioning::forward);
    g.connect(y, x, partitioning::forward);
    with_sink(g, y);
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("cycle through 'x', 'y'"));
  }
  SECTION("a union of different schemas, hash keys the input lacks, a forward edge between parallelisms") {
    dataflow_graph g;
    auto s = g.add_source("s", scan(), {}, 2);
    auto narrow = g.add_source("narrow", scan(), {std::make_shared<project_operator>(*kv(), std::vector<expr>{col("k")})});
    auto u = g.add_operators("u", kv(), {}, 3);
    g.connect(s, u, partitioning::rebalance);
    g.connect(narrow, u, partitioning::rebalance);
    with_sink(g, u);
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("the inputs of a union must have the same schema"));

    dataflow_graph h;
    auto hs = h.add_source("s", scan(), {}, 2);
    auto hu = h.add_operators("u", kv(), {}, 3);
    h.connect(hs, hu, partitioning::hash, {"nope"});
    with_sink(h, hu);
    CHECK_THAT(error_of([&] { h.validate(); }), Catch::Contains("keyed by 'nope', which 's' does not output"));

    dataflow_graph f;
    auto fs = f.add_source("s", scan(), {}, 2);
    auto fu = f.add_operators("u", kv(), {}, 3);
    f.connect(fs, fu, partitioning::forward);
    with_sink(f, fu);
    CHECK_THAT(error_of([&] { f.validate(); }), Catch::Contains("joins different parallelisms"));
  }
  SECTION("no sink, an output going nowhere, a vertex without input") {
    dataflow_graph g;
    auto s = g.add_source("s", scan());
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("no sink"));
    auto out = g.add_sink("first", kv(), sink_spec{});
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("the output of vertex 's' goes nowhere"));
    g.connect(s, out, partitioning::forward);
    auto lonely = g.add_operators("lonely", kv(), {}, 1);
    with_sink(g, lonely);
    CHECK_THAT(error_of([&] { g.validate(); }), Catch::Contains("vertex 'lonely' has no input"));
  }
}

TEST_CASE("chain_decoder: a source whose chain starts with a select converts only the columns it reads",
          "[graph][csv][pruned]") {
  const auto schema = make_schema({{"k", type_id::int64, true}, {"when", type_id::timestamp, true}, {"v", type_id::int64, true}});
  options failfast;
  failfast.set("mode", "FAILFAST");
  const auto csv = make_decoder("csv", failfast, schema);
  const auto text = std::make_shared<const std::string>("1,not a time,2\n");
  auto decode = [&](const std::shared_ptr<const decoder>& d) {
    decode_stats stats;
    return d->decode(raw_chunk{text, 0, text->size(), "t.csv", 1}, stats);
  };
  graph_vertex source;
  source.kind = vertex_kind::source;
  source.chain = {std::make_shared<project_operator>(*schema, std::vector<expr>{col("v") + col("k")})};
  const batch rows = decode(chain_decoder(csv, source));  // 'when' is not read: its bad value is not seen
  CHECK(rows.at(0, 0) == value{std::int64_t{1}});
  CHECK(is_null(rows.at(0, 1)));
  CHECK(rows.at(0, 2) == value{std::int64_t{2}});

  // A select of 'when', a filter first (it passes every column on) or no chain: every column is converted.
  source.chain = {std::make_shared<project_operator>(*schema, std::vector<expr>{col("when")})};
  CHECK_THAT(error_of([&] { decode(chain_decoder(csv, source)); }), Catch::Contains("'when' (field 2)"));
  source.chain = {std::make_shared<filter_operator>(schema, col("v") > lit(std::int64_t{0})),
                  std::make_shared<project_operator>(*schema, std::vector<expr>{col("v")})};
  CHECK(chain_decoder(csv, source) == csv);
  source.chain.clear();
  CHECK(chain_decoder(csv, source) == csv);
}

TEST_CASE("chain_decoder: a source whose chain starts with a partial aggregation converts only its keys' and "
          "aggregates' columns", "[graph][csv][pruned]") {
  const auto schema = make_schema({{"k", type_id::string, true}, {"when", type_id::timestamp, true},
                                   {"v", type_id::int64, true}, {"price", type_id::float64, true}});
  options failfast;
  failfast.set("mode", "FAILFAST");
  const auto csv = make_decoder("csv", failfast, schema);
  const auto text = std::make_shared<const std::string>("UK,2010-12-01 08:26:00,2,not a price\n");
  auto decode = [&](const std::shared_ptr<const decoder>& d) {
    decode_stats stats;
    return d->decode(raw_chunk{text, 0, text->size(), "t.csv", 1}, stats);
  };
  auto partial = [&](std::vector<agg_spec> aggs) {
    return std::make_shared<partial_aggregate_operator>(std::make_shared<const aggregate_operator>(
        schema, std::vector<expr>{col("k"), window(col("when"), "1 hour", "15 minutes")}, std::move(aggs)));
  };
  graph_vertex source;
  source.kind = vertex_kind::source;
  source.chain = {partial({{agg_kind::sum, col("v"), {}}, {agg_kind::count, expr{}, {}}})};
  const batch rows = decode(chain_decoder(csv, source));  // 'price' is not read: its bad value is not seen
  CHECK(rows.at(0, 0) == value{std::string("UK")});
  CHECK(rows.at(0, 1) == value{*parse_timestamp("2010-12-01 08:26:00")});
  CHECK(rows.at(0, 2) == value{std::int64_t{2}});
  CHECK(is_null(rows.at(0, 3)));

  // Aggregates of 'v' and 'price' read every column: all are converted, and the bad price fails the decode.
  source.chain = {partial({{agg_kind::sum, col("v"), {}}, {agg_kind::max, col("price"), {}}})};
  CHECK(chain_decoder(csv, source) == csv);
  CHECK_THAT(error_of([&] { decode(chain_decoder(csv, source)); }), Catch::Contains("'price' (field 4)"));
}
