// A dataflow graph as plain data: described, rebuilt from its description into the same graph (same
// vertices, edges, schemas, and operators that compute the same), and refused, naming the vertex and the
// operator, when part of it lives only in this process.
#include <catch2/catch.hpp>

#include "flow/function_registry.hpp"
#include "flow/graph_description.hpp"
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

batch retail_rows() {
  return make_batch(retail_schema(), {{std::string("536365"), std::string("85123A"), std::int64_t{6}, 2.55, std::string("United Kingdom")},
                                      {std::string("536366"), std::string("22633"), std::int64_t{-2}, 1.85, std::string("France")},
                                      {std::string("536367"), std::string("84879"), std::int64_t{32}, 1.69, null_value{}}});
}

struct collecting_context final : operator_context {
  std::vector<batch> emitted;
  void emit(batch rows) override { emitted.push_back(std::move(rows)); }
  std::int64_t epoch() const override { return 0; }
  std::size_t instance() const override { return 0; }
  std::size_t parallelism() const override { return 1; }
};

// One batch through a vertex's chain, operator after operator.
std::vector<batch> run_chain(const graph_vertex& v, const batch& input) {
  std::vector<batch> current{input};
  for (const auto& op : v.chain) {
    collecting_context ctx;
    for (const auto& rows : current) op->process(rows, 0, nullptr, ctx);
    current = std::move(ctx.emitted);
  }
  return current;
}

// Fan-out and fan-in: a source reading CSV files, its rows hash-partitioned to a revenue vertex and
// broadcast to a tagging vertex, both written by an update-mode sink keyed by Country and a file sink.
dataflow_graph retail_graph() {
  dataflow_graph graph;
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/data/retail";
  scan.opts.set("header", "true");
  scan.opts.set("maxFilesPerTrigger", "1");
  scan.schema = retail_schema();
  scan.streaming = true;
  const auto source = graph.add_source("retail", scan, {std::make_shared<filter_operator>(retail_schema(), col("Quantity") > lit(0))}, 2);
  const auto revenue_project = std::make_shared<project_operator>(
      *retail_schema(), std::vector<expr>{col("Country"), (col("UnitPrice") * col("Quantity")).as("revenue")});
  const auto revenue = graph.add_operators("revenue", retail_schema(), {revenue_project}, 4);
  const auto tagged_project = std::make_shared<project_operator>(
      *retail_schema(), std::vector<expr>{col("StockCode"), upper(col("Country")).as("country"), lit(std::int64_t{1}).as("one")});
  const auto tagged = graph.add_operators("tagged", retail_schema(),
                                          {tagged_project, std::make_shared<filter_operator>(tagged_project->output_schema(),
                                                                                            col("country") != lit("FRANCE"))},
                                          1);
  sink_spec by_country;
  by_country.format = "memory";
  by_country.query_name = "by_country";
  by_country.mode = output_mode::update;
  by_country.trigger = processing_time(std::chrono::milliseconds(1500));
  const auto country_sink = graph.add_sink("country-sink", revenue_project->output_schema(), by_country);
  graph.vertices()[country_sink].sink_keys = {"Country"};
  sink_spec files;
  files.format = "parquet-ish";
  files.opts.set("path", "/out/tagged");
  const auto file_sink = graph.add_sink("file-sink", graph.vertex(tagged).output, files);
  graph.connect(source, revenue, partitioning::hash, {"Country"});
  graph.connect(source, tagged, partitioning::broadcast);
  graph.connect(revenue, country_sink, partitioning::rebalance);
  graph.connect(tagged, file_sink, partitioning::forward, {}, 0);
  return graph;
}

}  // namespace

TEST_CASE("graph description: a graph rebuilt from its description is the same graph", "[graph_description]") {
  const dataflow_graph graph = retail_graph();
  graph.validate();
  const graph_description description = describe(graph);
  REQUIRE(description.vertices.size() == 5);
  CHECK(description.vertices[0].scan.format == "csv");
  CHECK(description.vertices[0].scan.opts.get("maxfilespertrigger") == "1");
  CHECK(description.vertices[0].scan.fields == *retail_schema());
  CHECK(description.vertices[0].chain == std::vector<operator_descriptor>{{"filter", "(gt (col 8:Quantity) (lit int64 0))"}});
  CHECK(description.vertices[3].sink.keys == std::vector<std::string>{"Country"});
  CHECK(description.vertices[3].sink.trigger.interval == std::chrono::milliseconds(1500));

  const dataflow_graph rebuilt = rebuild(description);
  rebuilt.validate();
  CHECK(describe(rebuilt) == description);
  CHECK(rebuilt.explain() == graph.explain());
  REQUIRE(rebuilt.vertices().size() == graph.vertices().size());
  for (std::size_t v = 0; v < graph.vertices().size(); ++v) {
    const graph_vertex& original = graph.vertex(v);
    const graph_vertex& copy = rebuilt.vertex(v);
    INFO(original.name);
    CHECK(copy.name == original.name);
    CHECK(copy.kind == original.kind);
    CHECK(copy.parallelism == original.parallelism);
    CHECK(*copy.input == *original.input);
    if (original.kind != vertex_kind::sink) {
      CHECK(*copy.output == *original.output);
      CHECK(run_chain(copy, retail_rows()) == run_chain(original, retail_rows()));
    }
    CHECK(copy.sink.format == original.sink.format);
    CHECK(copy.sink.opts.all() == original.sink.opts.all());
    CHECK(copy.sink.mode == original.sink.mode);
    CHECK(copy.sink_keys == original.sink_keys);
  }
  CHECK(rebuilt.vertex(0).scan.path == "/data/retail");
  CHECK(rebuilt.vertex(0).scan.streaming);
  REQUIRE(rebuilt.edges().size() == graph.edges().size());
  CHECK(rebuilt.edges()[0].kind == partitioning::hash);
  CHECK(rebuilt.edges()[0].keys == std::vector<std::string>{"Country"});
  CHECK(rebuilt.edges()[1].kind == partitioning::broadcast);

  // Equality sees every field.
  graph_description changed = description;
  changed.vertices[3].sink.opts.set("checkpointLocation", "/tmp/x");
  CHECK_FALSE(changed == description);
  changed = description;
  changed.edges[1].input = 1;
  CHECK_FALSE(changed == description);
}

TEST_CASE("graph description: what lives only in this process is refused, naming it", "[graph_description]") {
  dataflow_graph lambda_graph = retail_graph();
  lambda_graph.append(1, make_function_operator([](const batch& rows) { return rows; }, lambda_graph.vertex(1).output, "my-lambda"));
  CHECK_THAT(error_of([&] { describe(lambda_graph); }),
             Catch::StartsWith("cannot ship the dataflow graph: vertex 'revenue' runs operator 'MapBatches my-lambda', "
                               "which has no descriptor: map_batches ships only the function registered under its name"));

  dataflow_graph local_rows;
  scan_spec scan;
  scan.format = "local";
  scan.schema = retail_schema();
  scan.rows = std::make_shared<const std::vector<batch>>(std::vector<batch>{retail_rows()});
  local_rows.add_source("rows", scan);
  CHECK_THAT(error_of([&] { describe(local_rows); }),
             Catch::StartsWith("cannot ship the dataflow graph: vertex 'rows' reads rows held in this process's memory"));

  dataflow_graph foreach_batch = retail_graph();
  foreach_batch.vertices()[4].sink.foreach_batch = [](const batch&, std::int64_t) {};
  CHECK_THAT(error_of([&] { describe(foreach_batch); }),
             Catch::StartsWith("cannot ship the dataflow graph: vertex 'file-sink' writes through a foreachBatch function"));
}

TEST_CASE("graph description: a description naming what this process lacks is refused, naming the vertex", "[graph_description]") {
  graph_description description = describe(retail_graph());
  description.vertices[2].chain[1].name = "test-not-registered";
  CHECK_THAT(error_of([&] { rebuild(description); }),
             Catch::StartsWith("cannot rebuild the dataflow graph: vertex 'tagged': unknown stream operator 'test-not-registered'"));

  description = describe(retail_graph());
  description.vertices[1].chain[0].arguments = "(col 7:Missing)";
  CHECK_THAT(error_of([&] { rebuild(description); }),
             Catch::StartsWith("cannot rebuild the dataflow graph: vertex 'revenue': cannot rebuild operator 'project': ") &&
                 Catch::Contains("Missing"));

  description = describe(retail_graph());
  description.edges[0].to = 9;
  CHECK_THAT(error_of([&] { rebuild(description); }), Catch::Contains("connect(0, 9): no such vertex"));

  description = describe(retail_graph());
  description.vertices[4].chain = description.vertices[1].chain;
  CHECK_THAT(error_of([&] { rebuild(description); }),
             Catch::Equals("cannot rebuild the dataflow graph: vertex 'file-sink': a sink runs no operators, but 1 are listed"));
}
