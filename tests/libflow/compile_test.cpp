// The relational API compiled to a dataflow graph (flow/compile.hpp): the graph's shape, Spark's refusals,
// and the compiled chains run by hand, in this thread, as the runtime will run them, against the old
// physical plan's pipeline.
#include <catch2/catch.hpp>

#include <functional>
#include <map>

#include "flow/compile.hpp"
#include "flow/keys.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;
using flow::test::sorted_rows;

namespace {

schema_ptr items_schema() {
  return make_schema({{"Country", type_id::string, true},
                      {"StockCode", type_id::string, true},
                      {"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, true}});
}

batch items(const std::vector<std::vector<value>>& rows) { return make_batch(items_schema(), rows); }

// Two epochs of input, two batches each; countries repeat across batches and epochs.
std::vector<std::vector<batch>> two_epochs() {
  return {{items({{"France", "A", std::int64_t{6}, 2.5}, {"Spain", "B", std::int64_t{-1}, 4.0},
                  {"France", "C", std::int64_t{2}, 3.0}, {null_value{}, "A", std::int64_t{1}, 1.0}}),
           items({{"Norway", "B", std::int64_t{10}, 1.5}, {"Spain", "C", std::int64_t{3}, 2.0}})},
          {items({{"France", "A", std::int64_t{1}, 2.5}, {"Germany", "D", std::int64_t{4}, 7.0}}),
           items({{"Norway", "B", null_value{}, 1.5}, {"Italy", "E", std::int64_t{5}, 0.5},
                  {"Spain", "B", std::int64_t{2}, 4.0}})}};
}

plan_ptr scan_of_items(bool streaming, std::string path = "items") {
  scan_spec scan;
  scan.format = "local";
  scan.path = std::move(path);
  scan.schema = items_schema();
  scan.streaming = streaming;
  return make_scan(std::move(scan));
}

plan_ptr revenue_by_country(plan_ptr input) {
  auto revenue = make_project(std::move(input), {col("Country"), (col("Quantity") * col("UnitPrice")).as("revenue")});
  return make_aggregate(revenue, {col("Country")},
                        {{agg_kind::sum, col("revenue"), {}}, {agg_kind::count, expr{}, "rows"}});
}

sink_spec sink_with(output_mode mode) {
  sink_spec sink;
  sink.format = "memory";
  sink.mode = mode;
  return sink;
}

std::vector<std::size_t> chain_sizes(const dataflow_graph& graph) {
  std::vector<std::size_t> sizes;
  for (const auto& v : graph.vertices()) sizes.push_back(v.chain.size());
  return sizes;
}

std::vector<std::string> chain_names(const graph_vertex& v) {
  std::vector<std::string> names;
  for (const auto& op : v.chain) names.push_back(op->name());
  return names;
}

class emit_to final : public operator_context {
 public:
  emit_to(std::function<void(batch)> next, std::size_t instance, std::size_t parallelism)
      : next_(std::move(next)), instance_(instance), parallelism_(parallelism) {}
  void emit(batch rows) override { next_(std::move(rows)); }
  std::int64_t epoch() const override { return 0; }
  std::size_t instance() const override { return instance_; }
  std::size_t parallelism() const override { return parallelism_; }

 private:
  std::function<void(batch)> next_;
  std::size_t instance_, parallelism_;
};

// Runs a compiled graph as the runtime will: every vertex as `parallelism` instances (a sink as one), each
// with its own operator states that live across epochs; a batch passes the chain in order; at the end
// of an epoch each operator's end_epoch is called in chain order, what it emits flowing on; outputs are
// split per edge (forward: instance i to i, rebalance: round-robin, hash: flow::hash_partition).
class graph_runner {
 public:
  graph_runner(dataflow_graph graph, std::size_t parallelism) : graph_(std::move(graph)) {
    graph_.resolve_parallelism(parallelism);
    graph_.validate();
    for (const auto& v : graph_.vertices()) {
      std::vector<std::vector<std::unique_ptr<operator_state>>> instances(v.parallelism);
      for (auto& states : instances)
        for (const auto& op : v.chain) states.push_back(op->make_state());
      states_.push_back(std::move(instances));
    }
  }

  // inputs[s]: the epoch's batches of the s-th source (in graph.sources() order). Returns what the sink got.
  std::vector<batch> run_epoch(const std::vector<std::vector<batch>>& inputs) {
    const auto& vertices = graph_.vertices();
    std::vector<std::vector<std::vector<batch>>> inbox(vertices.size());
    for (std::size_t v = 0; v < vertices.size(); ++v) inbox[v].resize(vertices[v].parallelism);
    auto sources = graph_.sources();
    REQUIRE(sources.size() == inputs.size());
    for (std::size_t s = 0; s < sources.size(); ++s)
      for (std::size_t b = 0; b < inputs[s].size(); ++b)
        inbox[sources[s]][b % vertices[sources[s]].parallelism].push_back(inputs[s][b]);

    std::vector<batch> result;
    for (auto v : graph_.topological_order()) {
      if (vertices[v].kind == vertex_kind::sink) {
        for (auto& b : inbox[v].front()) result.push_back(std::move(b));
        continue;
      }
      for (std::size_t i = 0; i < vertices[v].parallelism; ++i) {
        auto out = run_chain(v, i, inbox[v][i]);
        for (auto e : graph_.outputs_of(v)) send(graph_.edges()[e], i, out, inbox);
      }
    }
    return result;
  }

 private:
  std::vector<batch> run_chain(std::size_t v, std::size_t i, const std::vector<batch>& inputs) {
    const auto& vertex = graph_.vertex(v);
    std::vector<batch> out;
    std::function<void(std::size_t, batch)> push = [&](std::size_t k, batch rows) {
      if (k == vertex.chain.size()) {
        out.push_back(std::move(rows));
        return;
      }
      emit_to ctx([&, k](batch next) { push(k + 1, std::move(next)); }, i, vertex.parallelism);
      vertex.chain[k]->process(rows, 0, states_[v][i][k].get(), ctx);
    };
    for (const auto& b : inputs) push(0, b);
    for (std::size_t k = 0; k < vertex.chain.size(); ++k) {
      emit_to ctx([&, k](batch next) { push(k + 1, std::move(next)); }, i, vertex.parallelism);
      vertex.chain[k]->end_epoch(states_[v][i][k].get(), ctx);
    }
    return out;
  }

  void send(const graph_edge& edge, std::size_t from_instance, const std::vector<batch>& out,
            std::vector<std::vector<std::vector<batch>>>& inbox) {
    auto& targets = inbox[edge.to];
    for (const auto& b : out) {
      switch (edge.kind) {
        case partitioning::forward: targets[from_instance % targets.size()].push_back(b); break;
        case partitioning::rebalance: targets[next_round_robin_++ % targets.size()].push_back(b); break;
        case partitioning::broadcast:
          for (auto& target : targets) target.push_back(b);
          break;
        case partitioning::hash: {
          std::vector<std::size_t> keys;
          for (const auto& k : edge.keys) keys.push_back(b.schema().index_of(k));
          auto parts = hash_partition(b, keys, targets.size());
          for (std::size_t p = 0; p < parts.size(); ++p)
            if (parts[p].num_rows() > 0) targets[p].push_back(parts[p]);
          break;
        }
      }
    }
  }

  dataflow_graph graph_;
  std::vector<std::vector<std::vector<std::unique_ptr<operator_state>>>> states_;  // vertex, instance, operator
  std::size_t next_round_robin_ = 0;
};

// A reference for the graphs: the plan interpreted node by node over whole epochs, each aggregation
// with one table (no graph, no partitioning). Every scan reads the epoch's batches.
class plan_interpreter {
 public:
  plan_interpreter(plan_ptr plan, output_mode mode) : plan_(std::move(plan)), mode_(mode) {}
  std::vector<batch> run_epoch(const std::vector<batch>& input) { return run(*plan_, input); }

 private:
  std::vector<batch> run(const plan_node& node, const std::vector<batch>& input) {
    switch (node.kind) {
      case plan_kind::scan: return input;
      case plan_kind::union_all: {
        std::vector<batch> out;
        for (const auto& child : node.children) {
          auto rows = run(*child, input);
          out.insert(out.end(), rows.begin(), rows.end());
        }
        return out;
      }
      case plan_kind::aggregate: {
        const auto& child = *node.children.front();
        auto& table = tables_[&node];
        if (!table) table = aggregate_operator(child.output, node.keys, node.aggs).make_state();
        for (const auto& rows : run(child, input)) table->update(rows);
        return {table->emit(mode_)};
      }
      default: {
        auto op = make_stateless_operator(node);
        std::vector<batch> out;
        for (const auto& rows : run(*node.children.front(), input))
          out.push_back(op->apply(rows));
        return out;
      }
    }
  }
  plan_ptr plan_;
  output_mode mode_;
  std::map<const plan_node*, std::unique_ptr<aggregate_state>> tables_;
};

std::vector<std::vector<value>> rows_of(const std::vector<batch>& batches) {
  std::vector<std::vector<value>> rows;
  for (const auto& b : batches) {
    auto more = sorted_rows(b);
    rows.insert(rows.end(), more.begin(), more.end());
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// The graph run by hand at parallelism 1, 2 and 3 gives, epoch by epoch, the rows of the plan interpreted.
void check_same_as_interpreted(const plan_ptr& plan, output_mode mode) {
  auto epochs = two_epochs();
  for (std::size_t parallelism : {1, 2, 3}) {
    INFO("parallelism " << parallelism);
    plan_interpreter expected(plan, mode);
    graph_runner runner(compile_graph(plan, sink_with(mode)), parallelism);
    for (std::size_t e = 0; e < epochs.size(); ++e) {
      INFO("epoch " << e);
      auto actual = rows_of(runner.run_epoch({epochs[e]}));
      CHECK(actual == rows_of(expected.run_epoch(epochs[e])));
    }
  }
}

}  // namespace

TEST_CASE("compile_graph: stateless operators fuse into the source vertex", "[compile]") {
  auto plan =
      make_filter(make_project(scan_of_items(true), {col("Country"), col("Quantity")}), col("Quantity") > lit(0));
  auto graph = compile_graph(plan, sink_with(output_mode::append));
  REQUIRE(graph.vertices().size() == 2);
  const auto& source = graph.vertex(0);
  CHECK(source.kind == vertex_kind::source);
  CHECK(source.parallelism == 0);
  CHECK(chain_names(source) == std::vector<std::string>{"Project [Country, Quantity]", "Filter (Quantity > 0)"});
  CHECK(*source.output == *plan->output);
  const auto& sink = graph.vertex(1);
  CHECK(sink.kind == vertex_kind::sink);
  CHECK(sink.sink.format == "memory");
  CHECK(sink.sink_keys.empty());
  REQUIRE(graph.edges().size() == 1);
  CHECK(graph.edges()[0].from == 0);
  CHECK(graph.edges()[0].to == 1);
  CHECK(graph.edges()[0].kind == partitioning::forward);
  CHECK(graph.explain() ==
        "source (source, parallelism default) local items -> Project [Country, Quantity] -> Filter (Quantity > 0)\n"
        "sink (sink, parallelism 1) memory append\n"
        "  <- source by forward\n");
}

TEST_CASE("compile_graph: an aggregation splits into a partial in the upstream chain and a keyed vertex", "[compile]") {
  auto plan = make_project(revenue_by_country(scan_of_items(true)), {col("Country"), col("sum(revenue)")});
  auto graph = compile_graph(plan, sink_with(output_mode::update));
  REQUIRE(graph.vertices().size() == 3);
  CHECK(chain_sizes(graph) == std::vector<std::size_t>{2, 2, 0});
  const auto& source = graph.vertex(0);
  CHECK(source.chain[1]->name() == "PartialAggregate [Country], [sum(revenue), rows]");
  CHECK(source.chain[1]->key_columns().empty());
  CHECK_FALSE(source.chain[1]->make_state()->durable());

  const auto& aggregate = graph.vertex(1);
  CHECK(aggregate.name == "aggregate");
  CHECK(aggregate.kind == vertex_kind::operators);
  CHECK(aggregate.parallelism == 0);
  CHECK(*aggregate.input == *source.output);
  CHECK(aggregate.chain[0]->name() == "Aggregate [Country], [sum(revenue), rows]");
  CHECK(aggregate.chain[0]->key_columns() == std::vector<std::string>{"Country"});
  CHECK(aggregate.chain[0]->make_state()->durable());
  CHECK(aggregate.chain[1]->name() == "Project [Country, sum(revenue)]");
  CHECK(*aggregate.output == *plan->output);

  REQUIRE(graph.edges().size() == 2);
  const auto& shuffle = graph.edges()[0];
  CHECK(shuffle.from == 0);
  CHECK(shuffle.to == 1);
  CHECK(shuffle.kind == partitioning::hash);
  CHECK(shuffle.keys == std::vector<std::string>{"Country"});
  CHECK(graph.vertex(2).sink_keys == std::vector<std::string>{"Country"});
  CHECK(graph.vertex(2).sink.mode == output_mode::update);
  CHECK(durable_states(graph.vertex(0)) == 0);  // the partial aggregation's table is scratch
  CHECK(durable_states(graph.vertex(1)) == 1);
  CHECK(graph.explain() ==
        "source (source, parallelism default) local items -> Project [Country, (Quantity * UnitPrice) AS revenue] "
        "-> PartialAggregate [Country], [sum(revenue), rows]\n"
        "aggregate (operators, parallelism default) -> Aggregate [Country], [sum(revenue), rows] "
        "-> Project [Country, sum(revenue)]\n"
        "  <- source by hash [Country]\n"
        "sink (sink, parallelism 1) memory update\n"
        "  <- aggregate by forward\n");

  auto without_key = make_project(revenue_by_country(scan_of_items(true)), {col("rows")});
  CHECK(compile_graph(without_key, sink_with(output_mode::update)).vertex(2).sink_keys.empty());
}

TEST_CASE("compile_graph: the output mode reaches the final aggregate", "[compile]") {
  auto plan = revenue_by_country(scan_of_items(true));
  auto first_epoch = two_epochs()[0];
  std::vector<batch> only_spain = {items({{"Spain", "B", std::int64_t{1}, 4.0}})};
  graph_runner update(compile_graph(plan, sink_with(output_mode::update)), 2);
  graph_runner complete(compile_graph(plan, sink_with(output_mode::complete)), 2);
  CHECK(rows_of(update.run_epoch({first_epoch})) == rows_of(complete.run_epoch({first_epoch})));
  // update emits the one group the epoch changed, complete all four (France, Norway, Spain, null).
  auto updated = rows_of(update.run_epoch({only_spain}));
  CHECK(updated == std::vector<std::vector<value>>{{std::string("Spain"), 6.0, std::int64_t{3}}});  // -4 + 6 + 4
  CHECK(rows_of(complete.run_epoch({only_spain})).size() == 4);
}

TEST_CASE("compile_graph: a union of two scans is one vertex with two rebalanced inputs", "[compile]") {
  auto left = make_project(scan_of_items(true, "left"), {col("Country"), col("Quantity")});
  auto right = make_project(scan_of_items(true, "right"), {col("Country"), col("Quantity")});
  auto plan = make_filter(make_union({left, right}), col("Quantity") > lit(1));
  auto graph = compile_graph(plan, sink_with(output_mode::append));
  REQUIRE(graph.sources().size() == 2);
  CHECK(graph.vertex(graph.sources()[0]).name == "source");
  CHECK(graph.vertex(graph.sources()[1]).name == "source-2");
  CHECK(graph.vertex(graph.sources()[1]).scan.path == "right");
  std::size_t union_vertex = 0;
  for (std::size_t v = 0; v < graph.vertices().size(); ++v)
    if (graph.vertex(v).name == "union") union_vertex = v;
  REQUIRE(union_vertex != 0);
  auto inputs = graph.inputs_of(union_vertex);
  REQUIRE(inputs.size() == 2);
  for (auto e : inputs) {
    CHECK(graph.edges()[e].kind == partitioning::rebalance);
    CHECK(graph.edges()[e].input == 0);
  }
  CHECK(chain_names(graph.vertex(union_vertex)) == std::vector<std::string>{"Filter (Quantity > 1)"});
  CHECK(graph.vertices().size() == 4);
}

TEST_CASE("compile_graph: several queries from one plan get independent graphs", "[compile]") {
  auto plan = revenue_by_country(scan_of_items(true));
  auto first = compile_graph(plan, sink_with(output_mode::update));
  auto second = compile_graph(plan, sink_with(output_mode::complete));
  first.append(1, make_stateless_operator(*make_filter(plan, col("rows") > lit(1))));
  CHECK(chain_sizes(first) == std::vector<std::size_t>{2, 2, 0});
  CHECK(chain_sizes(second) == std::vector<std::size_t>{2, 1, 0});
  CHECK(first.vertex(1).chain[0] != second.vertex(1).chain[0]);
  // The plan itself is unchanged and compiles again.
  CHECK(chain_sizes(compile_graph(plan, sink_with(output_mode::update))) == std::vector<std::size_t>{2, 1, 0});
}

TEST_CASE("compile_graph: the compiled chains give the result of the plan interpreted node by node", "[compile]") {
  SECTION("select and where") {
    auto plan = make_filter(
        make_project(scan_of_items(true), {col("Country"), (col("Quantity") * col("UnitPrice")).as("revenue")}),
        col("revenue") > lit(2.0));
    check_same_as_interpreted(plan, output_mode::append);
  }
  SECTION("aggregation followed by where and select, update mode") {
    auto plan = make_project(make_filter(revenue_by_country(make_filter(scan_of_items(true), col("Quantity") > lit(0))),
                                         col("sum(revenue)") > lit(5.0)),
                             {col("Country"), col("rows")});
    check_same_as_interpreted(plan, output_mode::update);
  }
  SECTION("aggregation, complete mode") {
    check_same_as_interpreted(revenue_by_country(scan_of_items(true)), output_mode::complete);
  }
}

TEST_CASE("compile_graph: a union feeding an aggregation counts the rows of both inputs", "[compile]") {
  auto plan = revenue_by_country(make_union({scan_of_items(true, "left"), scan_of_items(true, "right")}));
  auto epochs = two_epochs();
  // Both inputs read the first epoch: as one scan reading it twice.
  std::vector<batch> twice = {epochs[0][0], epochs[0][1], epochs[0][0], epochs[0][1]};
  plan_interpreter expected(revenue_by_country(scan_of_items(true)), output_mode::complete);
  graph_runner runner(compile_graph(plan, sink_with(output_mode::complete)), 2);
  CHECK(rows_of(runner.run_epoch({epochs[0], epochs[0]})) == rows_of(expected.run_epoch(twice)));
}

TEST_CASE("compile_graph: static frames may aggregate twice", "[compile]") {
  auto twice = make_aggregate(revenue_by_country(scan_of_items(false)), {col("rows")},
                              {{agg_kind::count, expr{}, "countries"}});
  auto graph = compile_graph(twice, sink_with(output_mode::complete));
  CHECK(chain_sizes(graph) == std::vector<std::size_t>{2, 2, 1, 0});
  CHECK(graph.vertex(2).name == "aggregate-2");
  CHECK(graph.vertex(3).sink_keys == std::vector<std::string>{"rows"});
  graph_runner runner(std::move(graph), 2);
  // France 2 rows, Spain 2, Norway 1, null 1 -> rows 2: 2 countries, rows 1: 2 countries.
  auto rows = rows_of(runner.run_epoch({two_epochs()[0]}));
  CHECK(rows ==
        std::vector<std::vector<value>>{{std::int64_t{1}, std::int64_t{2}}, {std::int64_t{2}, std::int64_t{2}}});
}

TEST_CASE("compile_graph: a global aggregation (no keys) merges in one instance", "[compile]") {
  auto plan = make_aggregate(scan_of_items(true), {}, {{agg_kind::sum, col("Quantity"), {}}});
  auto graph = compile_graph(plan, sink_with(output_mode::complete));
  CHECK(graph.vertex(1).parallelism == 1);
  CHECK(graph.edges()[0].kind == partitioning::rebalance);
  CHECK(graph.vertex(2).sink_keys.empty());
  graph_runner runner(std::move(graph), 3);
  CHECK(rows_of(runner.run_epoch({two_epochs()[0]})) == std::vector<std::vector<value>>{{std::int64_t{21}}});
}

TEST_CASE("compile_graph: refuses what Spark refuses in streaming, with Spark's rule", "[compile]") {
  auto aggregated = revenue_by_country(scan_of_items(true));
  CHECK_THAT(error_of([&] { make_aggregate(aggregated, {col("rows")}, {{agg_kind::count, expr{}, {}}}); }),
             Catch::Contains("Multiple streaming aggregations are not supported with streaming DataFrames/Datasets"));
  CHECK_THAT(error_of([&] { make_union({aggregated, revenue_by_country(scan_of_items(true, "other"))}); }),
             Catch::Contains("union of aggregations: Multiple streaming aggregations are not supported"));
  auto unioned = make_union({make_project(aggregated, {col("Country"), col("rows")}),
                             make_project(scan_of_items(true), {col("Country"), lit(1).as("rows")})});
  CHECK_THAT(error_of([&] { make_aggregate(unioned, {col("Country")}, {{agg_kind::sum, col("rows"), {}}}); }),
             Catch::Contains("Multiple streaming aggregations are not supported"));
  CHECK_THAT(error_of([&] { compile_graph(scan_of_items(true), sink_with(output_mode::complete)); }),
             Catch::Contains("complete output mode not supported when there are no streaming aggregations"));
  CHECK_THAT(error_of([&] { compile_graph(aggregated, sink_with(output_mode::append)); }),
             Catch::Contains("append output mode not supported when there are streaming aggregations"));
  CHECK_THAT(error_of([&] { compile_graph(nullptr, sink_with(output_mode::append)); }),
             Catch::Contains("the plan is empty"));
}

TEST_CASE("make_union: equal schemas, streaming or static alike", "[compile]") {
  auto left = scan_of_items(true);
  auto narrow = make_project(scan_of_items(true), {col("Country"), col("Quantity")});
  CHECK(error_of([&] { make_union({left, narrow}); }) ==
        "union: input 2 has the schema [Country: string, Quantity: int64], but input 1 has [Country: string, "
        "StockCode: string, Quantity: int64, UnitPrice: float64]; union needs the same columns (names, types, "
        "order) on every input: select them alike first");
  auto not_null = make_project(scan_of_items(true), {col("Country"), lit(1).as("Quantity")});
  CHECK_THAT(error_of([&] { make_union({narrow, not_null}); }),
             Catch::Contains("(Country nullable, Quantity not null)") &&
                 Catch::Contains("(Country nullable, Quantity nullable)"));
  CHECK_THAT(error_of([&] { make_union({left, scan_of_items(false)}); }),
             Catch::Contains("Union between streaming and batch DataFrames/Datasets is not supported"));
  CHECK_THAT(error_of([&] { make_union({left}); }), Catch::Contains("at least two inputs"));

  auto three = make_union({left, scan_of_items(true, "b"), scan_of_items(true, "c")});
  CHECK(is_streaming(*three));
  CHECK(scans_of(*three).size() == 3);
  CHECK(scans_of(*three)[2]->path == "c");
  CHECK_THAT(error_of([&] { scan_of(*three); }), Catch::Contains("reads 3 sources"));
  CHECK_FALSE(is_streaming(*make_union({scan_of_items(false), scan_of_items(false)})));
}

TEST_CASE("explain: Spark's tree, with a union's inputs as branches", "[compile]") {
  auto left = make_filter(scan_of_items(true, "left"), col("Quantity") > lit(0));
  auto plan = make_project(make_union({left, scan_of_items(true, "right")}), {col("Country")});
  CHECK(explain(*plan) ==
        "Project [Country]\n"
        "+- Union [Country: string, StockCode: string, Quantity: int64, UnitPrice: float64]\n"
        "   :- Filter (Quantity > 0)\n"
        "   :  +- StreamingRelation local left [Country: string, StockCode: string, Quantity: int64, UnitPrice: float64]\n"
        "   +- StreamingRelation local right [Country: string, StockCode: string, Quantity: int64, UnitPrice: float64]\n");
}
