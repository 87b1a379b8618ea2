// The topology builder without actors: the dataflow graphs it builds (vertices, chains, edges,
// partitionings, parallelism, names), the fusion of stateless operators, and the mistakes it refuses.
#include <catch2/catch.hpp>

#include "flow/topology.hpp"

#include "flow/compile.hpp"

#include "../../examples/custom_topology/retail_operators.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;

namespace {

schema_ptr retail_schema() {
  return make_schema({{"InvoiceNo", type_id::string, true},
                      {"StockCode", type_id::string, true},
                      {"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, true},
                      {"Country", type_id::string, true}});
}

class recording_context final : public session_context {
 public:
  void resolve_scan(scan_spec&) override {}
  std::vector<batch> execute(const plan_ptr&) override { return {}; }
  std::size_t input_partitions(const scan_spec&) override { return 1; }
  std::shared_ptr<query_control> start_stream(const plan_ptr&, const sink_spec&) override { return nullptr; }
  std::shared_ptr<query_control> start_graph(dataflow_graph graph, const query_options& options) override {
    graphs.push_back(std::move(graph));
    started.push_back(options);
    return nullptr;
  }
  batch sql(const std::string&) override { return batch::empty(make_schema({})); }

  std::vector<dataflow_graph> graphs;
  std::vector<query_options> started;
};

class empty_state final : public operator_state {
 public:
  batch snapshot() const override { return batch::empty(make_schema({})); }
  void restore(const batch&) override {}
  batch take_changes() override { return snapshot(); }
  void apply_changes(const batch&) override {}
  std::size_t num_rows() const override { return 0; }
  std::size_t memory_bytes() const override { return 0; }
};

// An operator that only describes itself: keyed (with state) when given keys, else stateless.
class test_operator final : public stream_operator {
 public:
  test_operator(std::string name, schema_ptr output, std::vector<std::string> keys = {})
      : name_(std::move(name)), output_(std::move(output)), keys_(std::move(keys)) {}
  std::string name() const override { return name_; }
  const schema_ptr& output_schema() const override { return output_; }
  std::vector<std::string> key_columns() const override { return keys_; }
  std::unique_ptr<operator_state> make_state() const override {
    return keys_.empty() ? nullptr : std::make_unique<empty_state>();
  }
  void process(const batch&, std::size_t, operator_state*, operator_context&) const override {}

 private:
  std::string name_;
  schema_ptr output_;
  std::vector<std::string> keys_;
};

operator_ptr keyed(std::string name, std::vector<std::string> keys, schema_ptr output) {
  return std::make_shared<const test_operator>(std::move(name), std::move(output), std::move(keys));
}

operator_ptr stateless(std::string name, schema_ptr output) {
  return std::make_shared<const test_operator>(std::move(name), std::move(output));
}

schema_ptr country_revenue_schema() {
  return make_schema({{"Country", type_id::string, true}, {"revenue", type_id::float64, true}});
}

struct fixture {
  std::shared_ptr<recording_context> ctx = std::make_shared<recording_context>();
  topology t{ctx};
  data_frame frame = data_frame_reader(ctx, true).format("csv").schema(retail_schema()).load("/data/*.csv");
};

std::size_t vertex_named(const dataflow_graph& g, const std::string& name) {
  for (std::size_t v = 0; v < g.vertices().size(); ++v)
    if (g.vertex(v).name == name) return v;
  FAIL("no vertex named " << name << " in\n" << g.explain());
  return 0;
}

std::vector<std::string> chain_of(const graph_vertex& v) {
  std::vector<std::string> names;
  for (const auto& op : v.chain) names.push_back(op->name());
  return names;
}

// The edges into vertex `to`, as (from's name, partitioning, keys, input index).
std::vector<std::tuple<std::string, partitioning, std::vector<std::string>, std::size_t>> inputs_of(
    const dataflow_graph& g, std::size_t to) {
  std::vector<std::tuple<std::string, partitioning, std::vector<std::string>, std::size_t>> out;
  for (auto e : g.inputs_of(to)) {
    const auto& edge = g.edges()[e];
    out.emplace_back(g.vertex(edge.from).name, edge.kind, edge.keys, edge.input);
  }
  return out;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("topology: a keyed operator gets a vertex of its own behind a hash edge on its keys", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame, 2);
  auto by_country = rows.key_by({"Country"}).apply("country", keyed("revenue", {"Country"}, country_revenue_schema()), 4);
  by_country.sink("out").format("memory").query_name("revenue").output_mode("complete").upsert_keys({"Country"});

  auto g = f.t.graph();
  REQUIRE(g.vertices().size() == 3);
  const auto& source = g.vertex(vertex_named(g, "retail"));
  CHECK(source.kind == vertex_kind::source);
  CHECK(source.parallelism == 2);
  CHECK(source.scan.path == "/data/*.csv");
  CHECK(source.chain.empty());
  auto country = vertex_named(g, "country");
  CHECK(g.vertex(country).kind == vertex_kind::operators);
  CHECK(g.vertex(country).parallelism == 4);
  CHECK(chain_of(g.vertex(country)) == strings{"revenue"});
  CHECK(*g.vertex(country).input == *retail_schema());
  CHECK(inputs_of(g, country) == decltype(inputs_of(g, country)){{"retail", partitioning::hash, {"Country"}, 0}});
  auto out = vertex_named(g, "out");
  const auto& sink = g.vertex(out);
  CHECK(sink.kind == vertex_kind::sink);
  CHECK(sink.sink.format == "memory");
  CHECK(sink.sink.query_name == "revenue");
  CHECK(sink.sink.mode == output_mode::complete);
  CHECK(sink.sink_keys == strings{"Country"});
  CHECK(*sink.input == *country_revenue_schema());
  CHECK(inputs_of(g, out) == decltype(inputs_of(g, out)){{"country", partitioning::forward, {}, 0}});
}

TEST_CASE("topology: without key_by a keyed operator is still fed by the hash of its keys", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame);
  rows.apply("stock", keyed("units", {"StockCode"}, retail_schema())).sink("out");
  auto g = f.t.graph();
  auto stock = vertex_named(g, "stock");
  CHECK(inputs_of(g, stock) == decltype(inputs_of(g, stock)){{"retail", partitioning::hash, {"StockCode"}, 0}});
  CHECK(g.vertex(stock).parallelism == 0);  // the session's
}

TEST_CASE("topology: one stream read twice feeds two vertices, each with its own sink", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame);
  rows.key_by({"Country"}).apply("country", keyed("revenue", {"Country"}, country_revenue_schema())).sink("revenue");
  rows.key_by({"StockCode"}).apply("stock", keyed("units", {"StockCode"}, retail_schema())).sink("units");

  auto g = f.t.graph();
  CHECK(g.vertices().size() == 5);
  auto source = vertex_named(g, "retail");
  CHECK(g.outputs_of(source).size() == 2);
  CHECK(g.vertex(source).chain.empty());
  CHECK(inputs_of(g, vertex_named(g, "stock")) ==
        decltype(inputs_of(g, 0)){{"retail", partitioning::hash, {"StockCode"}, 0}});
  CHECK(inputs_of(g, vertex_named(g, "units")) == decltype(inputs_of(g, 0)){{"stock", partitioning::forward, {}, 0}});
  CHECK(inputs_of(g, vertex_named(g, "revenue")) ==
        decltype(inputs_of(g, 0)){{"country", partitioning::forward, {}, 0}});
}

TEST_CASE("topology: stateless steps fuse into the vertex before them when nothing else reads it", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame, 2);
  auto cleaned = rows.where(col("Quantity") > lit(0)).select(strings{"Country", "UnitPrice"});
  auto revenue = cleaned.key_by({"Country"})
                     .apply("country", keyed("revenue", {"Country"}, country_revenue_schema()), 4)
                     .where(col("revenue") > lit(100.0));
  revenue.sink("out");

  auto g = f.t.graph();
  REQUIRE(g.vertices().size() == 3);  // retail (+ where, select), country (+ where), out
  const auto& source = g.vertex(vertex_named(g, "retail"));
  REQUIRE(source.chain.size() == 2);
  CHECK_THAT(source.chain[0]->name(), Catch::Contains("Filter"));
  CHECK_THAT(source.chain[1]->name(), Catch::Contains("Project"));
  CHECK(source.output->names() == strings{"Country", "UnitPrice"});
  auto country = vertex_named(g, "country");
  REQUIRE(g.vertex(country).chain.size() == 2);
  CHECK(g.vertex(country).chain[0]->name() == "revenue");
  CHECK_THAT(g.vertex(country).chain[1]->name(), Catch::Contains("Filter"));
  CHECK(g.vertex(country).parallelism == 4);
  CHECK(*g.vertex(country).input == *source.output);
}

TEST_CASE("topology: a stateless step on a stream read elsewhere too runs in a vertex of its own", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame, 3);
  rows.sink("raw");
  rows.where(col("Quantity") > lit(0)).sink("positive");

  auto g = f.t.graph();
  REQUIRE(g.vertices().size() == 4);
  CHECK(g.vertex(vertex_named(g, "retail")).chain.empty());  // the raw sink sees every row
  auto positive = vertex_named(g, "positive");
  auto filter = g.edges()[g.inputs_of(positive).at(0)].from;
  CHECK(g.vertex(filter).kind == vertex_kind::operators);
  CHECK(g.vertex(filter).parallelism == 3);  // runs where its input runs
  CHECK_THAT(chain_of(g.vertex(filter)).at(0), Catch::Contains("Filter"));
  CHECK(inputs_of(g, filter) == decltype(inputs_of(g, 0)){{"retail", partitioning::forward, {}, 0}});
}

TEST_CASE("topology: apply fuses a stateless operator only over a forward edge of equal parallelism", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame, 2);
  auto same = rows.apply("clean", stateless("clean", retail_schema()), 2);
  auto wider = same.apply("wide", stateless("wide", retail_schema()), 4);
  auto spread = wider.rebalance().apply("spread", stateless("spread", retail_schema()), 4);
  spread.broadcast().apply("everywhere", stateless("everywhere", retail_schema()), 4).sink("out");

  auto g = f.t.graph();
  CHECK(chain_of(g.vertex(vertex_named(g, "retail"))) == strings{"clean"});
  auto wide = vertex_named(g, "wide");
  CHECK(inputs_of(g, wide) == decltype(inputs_of(g, 0)){{"retail", partitioning::rebalance, {}, 0}});
  auto spread_vertex = vertex_named(g, "spread");
  CHECK(inputs_of(g, spread_vertex) == decltype(inputs_of(g, 0)){{"wide", partitioning::rebalance, {}, 0}});
  auto everywhere = vertex_named(g, "everywhere");
  CHECK(inputs_of(g, everywhere) == decltype(inputs_of(g, 0)){{"spread", partitioning::broadcast, {}, 0}});
  CHECK(g.vertices().size() == 5);  // clean has no vertex: it runs in retail's
}

TEST_CASE("topology: union_with feeds one input from both streams, connect feeds a two-input operator", "[topology]") {
  fixture f;
  auto a = f.t.source("a", f.frame);
  auto b = f.t.source("b", f.frame);
  auto both = a.union_with(b);
  CHECK(*both.schema() == *retail_schema());
  both.key_by({"Country"}).apply("country", keyed("revenue", {"Country"}, country_revenue_schema())).sink("revenue");
  auto ab = a.union_with(b);
  ab.sink("all");
  auto joined = a.key_by({"StockCode"}).connect(b.broadcast()).apply("join", stateless("join", retail_schema()), 2);
  joined.sink("joined");

  auto g = f.t.graph();
  using edges = decltype(inputs_of(g, 0));
  CHECK(inputs_of(g, vertex_named(g, "country")) ==
        edges{{"a", partitioning::hash, {"Country"}, 0}, {"b", partitioning::hash, {"Country"}, 0}});
  CHECK(inputs_of(g, vertex_named(g, "all")) == edges{{"a", partitioning::forward, {}, 0}, {"b", partitioning::forward, {}, 0}});
  CHECK(inputs_of(g, vertex_named(g, "join")) ==
        edges{{"a", partitioning::hash, {"StockCode"}, 0}, {"b", partitioning::broadcast, {}, 1}});
  CHECK(g.outputs_of(vertex_named(g, "a")).size() == 3);
}

TEST_CASE("topology: start hands the validated graph and the query's options to the session", "[topology]") {
  fixture f;
  f.t.source("retail", f.frame).sink("out").format("csv").option("path", "/tmp/out").option("header", true);
  f.t.start({.name = "retail", .trigger = available_now()});
  REQUIRE(f.ctx->graphs.size() == 1);
  CHECK(f.ctx->started.at(0).name == "retail");
  CHECK(f.ctx->started.at(0).trigger.kind == trigger_kind::available_now);
  const auto& sink = f.ctx->graphs[0].vertex(vertex_named(f.ctx->graphs[0], "out"));
  CHECK(sink.sink.format == "csv");
  CHECK(sink.sink.opts.get("path") == "/tmp/out");
  CHECK(sink.sink.opts.get("header") == "true");
  CHECK(f.t.explain() == f.ctx->graphs[0].explain());
}

TEST_CASE("topology: mistakes are refused when they are made, naming what to change", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame);
  CHECK_THAT(error_of([&] { f.t.source("retail", f.frame); }),
             Catch::Contains("a vertex named 'retail' exists already"));
  CHECK_THAT(error_of([&] { rows.key_by({"country"}); }),
             Catch::Contains("key_by: no column 'country'") && Catch::Contains("Country: string"));
  CHECK_THAT(error_of([&] { rows.key_by({}); }), Catch::Contains("key_by: no key columns"));
  CHECK_THAT(error_of([&] { rows.apply("nothing", nullptr); }), Catch::Contains("apply('nothing'): the operator is empty"));
  CHECK_THAT(error_of([&] { rows.union_with(rows.select(strings{"Country"})); }),
             Catch::Contains("union_with: the streams carry different rows"));
  CHECK_THAT(error_of([&] { rows.select(strings{"Nope"}); }), Catch::Contains("Nope"));
  CHECK_THAT(error_of([&] { rows.sink("bad").upsert_keys({"Nope"}); }),
             Catch::Contains("sink 'bad': upsert key 'Nope' is not a column"));

  fixture other;
  auto foreign = other.t.source("retail", other.frame);
  CHECK_THAT(error_of([&] { rows.union_with(foreign); }), Catch::Contains("different topologies"));
  CHECK_THAT(error_of([&] { rows.connect(foreign); }), Catch::Contains("different topologies"));

  auto static_frame = data_frame_reader(f.ctx, false).format("csv").schema(retail_schema()).load("/data/*.csv");
  CHECK_THAT(error_of([&] { f.t.source("static", static_frame); }),
             Catch::Contains("topology source 'static': the data frame is static; read it with read_stream()"));
}

TEST_CASE("topology: a data frame with operators as a source becomes the relational compiler's vertices", "[topology]") {
  fixture f;
  auto totals = f.frame.where(col("Quantity") > lit(std::int64_t{0})).group_by({col("Country")}).sum("Quantity");
  auto rows = f.t.source("sales", totals, 3);
  rows.sink("out");
  auto g = f.t.graph();
  REQUIRE(g.vertices().size() == 3);
  CHECK(g.vertex(0).name == "sales/source");
  CHECK(g.vertex(0).kind == vertex_kind::source);
  CHECK(g.vertex(0).parallelism == 3);
  REQUIRE(g.vertex(0).chain.size() == 2);  // the filter, then the partial aggregation
  CHECK(g.vertex(1).name == "sales");
  CHECK(g.vertex(1).chain.front()->key_columns() == std::vector<std::string>{"Country"});
  CHECK(g.vertex(1).output->names() == std::vector<std::string>{"Country", "sum(Quantity)"});
  CHECK(g.edges()[0].kind == partitioning::hash);
  CHECK(g.vertex(2).name == "out");

  // A global aggregation runs in one instance: the operator after it reads it by rebalance, not forward.
  fixture h;
  data_frame everything(h.ctx, make_aggregate(h.frame.plan(), {}, {flow::sum(col("Quantity"))}));
  // Read twice, so neither step fuses into the aggregation's vertex.
  auto all = h.t.source("all", everything);
  all.apply("copy", std::make_shared<filter_operator>(everything.plan()->output, lit(true))).sink("out");
  all.apply("again", std::make_shared<filter_operator>(everything.plan()->output, lit(true))).sink("out2");
  auto global = h.t.graph();
  global.resolve_parallelism(4);
  CHECK_NOTHROW(global.validate());
  const auto copy = vertex_named(global, "copy");
  CHECK(global.edges()[global.inputs_of(copy).at(0)].kind == partitioning::rebalance);
}

TEST_CASE("topology: as_frame splices the vertices up to the stream into the frame's graph", "[topology]") {
  fixture f;
  auto units_schema = make_schema({{"StockCode", type_id::string, true}, {"units", type_id::int64, true}});
  auto units = f.t.source("source", f.frame).key_by({"StockCode"}).apply("units", keyed("units", {"StockCode"}, units_schema));
  units.sink("elsewhere");  // not run by the frame's query
  auto unit_rows = units.as_frame();
  CHECK(unit_rows.is_streaming());
  CHECK(unit_rows.schema() == *units_schema);
  // Read twice: the second copy's vertices are renamed, as the relational compiler names its own.
  auto frame = unit_rows.union_(unit_rows).where(col("units") > lit(std::int64_t{0})).group_by({col("StockCode")}).sum("units");
  // The topology's vertices below the node, as t.explain() prints them.
  CHECK_THAT(frame.explain(), Catch::Contains("   +- Union [StockCode: string, units: int64]\n"
                                              "      :- TopologyStream units [StockCode: string, units: int64]\n"
                                              "      :     source (source, parallelism default) csv /data/*.csv\n"
                                              "      :     units (operators, parallelism default) -> units\n"
                                              "      :       <- source by hash [StockCode]\n"
                                              "      +- TopologyStream units"));
  sink_spec spec;
  spec.mode = output_mode::update;
  auto g = compile_graph(frame.plan(), spec);
  INFO(g.explain());
  REQUIRE(g.vertices().size() == 7);
  CHECK(g.vertex(vertex_named(g, "source")).kind == vertex_kind::source);
  CHECK(g.vertex(vertex_named(g, "source-2")).kind == vertex_kind::source);
  for (const auto* name : {"units", "units-2"}) {
    auto v = vertex_named(g, name);
    CHECK(chain_of(g.vertex(v)) == strings{"units"});
    CHECK(inputs_of(g, v).size() == 1);
    CHECK(std::get<1>(inputs_of(g, v).front()) == partitioning::hash);
  }
  // The frame's filter and partial aggregation run in the union's vertex, the final one behind a hash edge.
  auto u = vertex_named(g, "union");
  CHECK(inputs_of(g, u).size() == 2);
  CHECK(g.vertex(u).chain.size() == 2);
  auto agg = vertex_named(g, "aggregate");
  CHECK(inputs_of(g, agg) == decltype(inputs_of(g, agg)){{"union", partitioning::hash, strings{"StockCode"}, 0}});
  CHECK(g.vertex(vertex_named(g, "sink")).sink_keys == strings{"StockCode"});
  // A graph with sinks is not a stream's upstream.
  CHECK_THAT(error_of([&] { make_topology_input(std::make_shared<const dataflow_graph>(f.t.graph()), 0); }),
             Catch::Contains("the graph has sinks"));
  // Spark's output-mode rules look at the relational aggregations only.
  CHECK_THAT(error_of([&] { validate_output_mode(*unit_rows.plan(), output_mode::complete); }),
             Catch::Contains("complete output mode not supported when there are no streaming aggregations"));
}

TEST_CASE("topology: as_frame of a union or a partitioned stream", "[topology]") {
  fixture f;
  auto a = f.t.source("a", f.frame);
  auto both = a.union_with(f.t.source("b", f.frame, 1));
  sink_spec spec;
  auto g = compile_graph(both.as_frame().plan(), spec);
  INFO(g.explain());
  REQUIRE(g.vertices().size() == 4);
  // The union passes through a vertex of its own, fed round-robin from the sources of other parallelisms.
  auto u = vertex_named(g, "union");
  CHECK(g.vertex(u).chain.empty());
  CHECK(inputs_of(g, u).size() == 2);
  // key_by says how a topology vertex reads; the frame's compiler partitions for itself.
  auto keyed_rows = compile_graph(a.key_by({"Country"}).as_frame().plan(), spec);
  REQUIRE(keyed_rows.vertices().size() == 2);
  CHECK(inputs_of(keyed_rows, vertex_named(keyed_rows, "sink")) ==
        decltype(inputs_of(keyed_rows, 0)){{"a", partitioning::forward, strings{}, 0}});
}

TEST_CASE("topology: graph() refuses what the dataflow graph cannot run", "[topology]") {
  SECTION("a stream that reaches no sink") {
    fixture f;
    auto rows = f.t.source("retail", f.frame);
    rows.sink("out");
    rows.apply("lost", stateless("lost", retail_schema()));
    CHECK_THAT(error_of([&] { f.t.graph(); }), Catch::Contains("the output of vertex 'lost' goes nowhere"));
    CHECK(f.ctx->graphs.empty());
    CHECK_THAT(error_of([&] { f.t.start(); }), Catch::Contains("goes nowhere"));
    CHECK(f.ctx->graphs.empty());  // nothing was started
  }
  SECTION("a keyed operator behind a partitioning other than its keys") {
    fixture f;
    f.t.source("retail", f.frame).rebalance().apply("country", keyed("revenue", {"Country"}, country_revenue_schema()), 2).sink("out");
    CHECK_THAT(error_of([&] { f.t.graph(); }),
               Catch::Contains("starts with keyed operator 'revenue'") && Catch::Contains("hash of [Country]"));
  }
  SECTION("a forward edge between different parallelisms") {
    fixture f;
    f.t.source("retail", f.frame, 2).forward().apply("wide", stateless("wide", retail_schema()), 4).sink("out");
    CHECK_THAT(error_of([&] { f.t.graph(); }), Catch::Contains("joins different parallelisms"));
  }
  SECTION("no sink at all") {
    fixture f;
    f.t.source("retail", f.frame);
    CHECK_THAT(error_of([&] { f.t.graph(); }), Catch::Contains("no sink"));
  }
}

TEST_CASE("topology: the worked example of docs/topologies.md builds the graph the page shows", "[topology]") {
  fixture f;
  auto rows = f.t.source("retail", f.frame, 2)
                  .select(std::vector<std::string>{"InvoiceNo", "StockCode", "Quantity", "UnitPrice", "Country"});
  auto schema = rows.schema();
  auto keep = [](const batch&, std::int64_t) {};
  auto invoices = std::make_shared<retail::invoice_revenue>(schema);
  rows.key_by({"Country", "InvoiceNo"})
      .apply("invoice_revenue", invoices, 2)
      .key_by({"Country"})
      .apply("country_revenue", std::make_shared<retail::country_revenue>(invoices->output_schema()), 2)
      .sink("countries").output_mode("update").upsert_keys({"Country"}).foreach_batch(keep);
  rows.key_by({"StockCode"})
      .apply("stock_units", std::make_shared<retail::stock_units>(schema), 2)
      .sink("stock").output_mode("update").upsert_keys({"StockCode"}).foreach_batch(keep);
  const std::string explained = f.t.explain();
  CHECK(explained ==
        "retail (source, parallelism 2) csv /data/*.csv -> Project [InvoiceNo, StockCode, Quantity, UnitPrice, Country]\n"
        "invoice_revenue (operators, parallelism 2) -> invoice_revenue\n"
        "  <- retail by hash [Country, InvoiceNo]\n"
        "stock_units (operators, parallelism 2) -> stock_units\n"
        "  <- retail by hash [StockCode]\n"
        "country_revenue (operators, parallelism 2) -> country_revenue\n"
        "  <- invoice_revenue by hash [Country]\n"
        "stock (sink, parallelism 1) foreachBatch update\n"
        "  <- stock_units by forward\n"
        "countries (sink, parallelism 1) foreachBatch update\n"
        "  <- country_revenue by forward\n");
  // The page shows the same text, with DIR for the directory.
  std::string page = test::read_file(std::filesystem::path(FLOW_SOURCE_DIR) / "docs" / "topologies.md");
  std::string shown = explained;
  shown.replace(shown.find("/data/*.csv"), 11, "DIR/*.csv");
  CHECK_THAT(page, Catch::Contains(shown));
}
