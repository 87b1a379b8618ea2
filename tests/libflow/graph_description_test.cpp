// A dataflow graph as plain data: described, rebuilt from its description into the same graph (same
// vertices, edges, schemas, and operators that compute the same), and refused, naming the vertex and the
// operator, when part of it lives only in this process.
#include <catch2/catch.hpp>

#include "collecting_context.hpp"
#include "flow/compile.hpp"
#include "flow/function_registry.hpp"
#include "flow/graph_description.hpp"
#include "flow/operator_registry.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
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

// Epochs of batches through a vertex's chain, operator after operator, each operator with the state its
// make_state() gives, kept across epochs: what the chain emits in each epoch.
std::vector<std::vector<batch>> run_chain(const graph_vertex& v, const std::vector<std::vector<batch>>& epochs) {
  std::vector<std::unique_ptr<operator_state>> states;
  for (const auto& op : v.chain) states.push_back(op->make_state());
  std::vector<std::vector<batch>> emitted;
  for (std::size_t epoch = 0; epoch < epochs.size(); ++epoch) {
    std::vector<batch> current = epochs[epoch];
    for (std::size_t k = 0; k < v.chain.size(); ++k) {
      collecting_context ctx(static_cast<std::int64_t>(epoch));
      for (const auto& rows : current) v.chain[k]->process(rows, 0, states[k].get(), ctx);
      v.chain[k]->end_epoch(states[k].get(), ctx);
      current = std::move(ctx.emitted);
    }
    emitted.push_back(std::move(current));
  }
  return emitted;
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
      CHECK(run_chain(copy, {{retail_rows()}}) == run_chain(original, {{retail_rows()}}));
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

namespace {

schema_ptr events_schema() {
  return make_schema({{"Country", type_id::string, true},
                      {"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, true},
                      {"InvoiceDate", type_id::timestamp, true}});
}

// Two epochs of events; groups repeat across epochs, and every aggregate meets nulls.
std::vector<std::vector<batch>> event_epochs() {
  const auto minute = [](std::int64_t m) { return timestamp{m * 60'000'000}; };
  return {{make_batch(events_schema(), {{std::string("France"), std::int64_t{6}, 2.5, minute(1)},
                                        {std::string("Spain"), std::int64_t{-1}, 4.0, minute(2)},
                                        {std::string("France"), std::int64_t{2}, null_value{}, minute(7)},
                                        {null_value{}, std::int64_t{1}, 1.0, minute(12)}}),
           make_batch(events_schema(), {{std::string("Norway"), std::int64_t{10}, 1.5, minute(3)}})},
          {make_batch(events_schema(), {{std::string("France"), std::int64_t{1}, 0.5, minute(4)},
                                        {std::string("Norway"), null_value{}, 1.5, minute(14)},
                                        {std::string("Spain"), std::int64_t{3}, 2.0, minute(9)}})}};
}

// scan -> where -> group_by(Country, a sliding window) -> agg(sum, count(*), min, max, avg) -> select.
dataflow_graph windowed_aggregation_graph(output_mode mode) {
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/data/events";
  scan.schema = events_schema();
  scan.streaming = true;
  auto positive = make_filter(make_scan(std::move(scan)), col("Quantity") > lit(0));
  auto aggregated = make_aggregate(positive, {col("Country"), window(col("InvoiceDate"), "10 minutes", "5 minutes")},
                                   {{agg_kind::sum, col("Quantity") * col("UnitPrice"), "revenue"},
                                    {agg_kind::count, expr{}, "rows"},
                                    {agg_kind::min, col("UnitPrice"), {}},
                                    {agg_kind::max, col("InvoiceDate"), "last"},
                                    {agg_kind::avg, col("Quantity"), {}}});
  auto selected = make_project(aggregated, {col("Country"), col("window"), col("revenue"), (col("rows") * lit(2)).as("twice"),
                                            col("min(UnitPrice)"), col("last"), col("avg(Quantity)")});
  sink_spec sink;
  sink.format = "memory";
  sink.query_name = "windowed";
  sink.mode = mode;
  return compile_graph(selected, sink);
}

}  // namespace

TEST_CASE("graph description: a compiled aggregation is rebuilt into operators that compute the same", "[graph_description]") {
  for (auto mode : {output_mode::update, output_mode::complete}) {
    INFO(to_string(mode));
    const dataflow_graph graph = windowed_aggregation_graph(mode);
    const graph_description description = describe(graph);
    REQUIRE(description.vertices.size() == 3);
    REQUIRE(description.vertices[0].chain.size() == 2);
    CHECK(description.vertices[0].chain[1].name == "partial_aggregate");
    REQUIRE(description.vertices[1].chain.size() == 2);
    CHECK(description.vertices[1].chain[0].name == "final_aggregate");
    CHECK_THAT(description.vertices[1].chain[0].arguments, Catch::EndsWith(" " + std::to_string(to_string(mode).size()) + ":" + std::string(to_string(mode))));

    const dataflow_graph rebuilt = rebuild(description);
    rebuilt.validate();
    CHECK(describe(rebuilt) == description);
    CHECK(rebuilt.explain() == graph.explain());
    // The source's chain on the events, then the aggregate's chain on the partial aggregates it emitted.
    const auto partials = run_chain(graph.vertex(0), event_epochs());
    CHECK(run_chain(rebuilt.vertex(0), event_epochs()) == partials);
    const auto results = run_chain(graph.vertex(1), partials);
    CHECK(run_chain(rebuilt.vertex(1), partials) == results);
    REQUIRE(results.size() == 2);
    REQUIRE(results[1].size() == 1);
    // Complete mode re-emits all 9 (country, window) groups; update mode the 4 the second epoch changed
    // (France's two windows around minute 4, Spain's two around minute 9).
    CHECK(results[1][0].num_rows() == (mode == output_mode::complete ? 9u : 4u));
  }
}

TEST_CASE("graph description: corrupt aggregation arguments are refused with flow::error", "[graph_description]") {
  const dataflow_graph graph = windowed_aggregation_graph(output_mode::update);
  const operator_descriptor partial = graph.vertex(0).chain[1]->descriptor().value();
  const operator_descriptor final_aggregate = graph.vertex(1).chain[0]->descriptor().value();
  const schema_ptr& state = graph.vertex(1).input;
  const auto rebuild_with = [](const operator_descriptor& descriptor, const std::string& from, const std::string& to,
                               const schema_ptr& input) {
    operator_descriptor corrupt = descriptor;
    const auto at = corrupt.arguments.find(from);
    REQUIRE(at != std::string::npos);
    corrupt.arguments.replace(at, from.size(), to);
    return error_of([&] { make_operator(corrupt, input); });
  };
  CHECK_THAT(rebuild_with(final_aggregate, "6:update", "6:upsert", state),
             Catch::Equals("cannot rebuild operator 'final_aggregate': unknown output mode 'upsert'; use append, update or complete"));
  CHECK_THAT(rebuild_with(final_aggregate, "3:sum", "3:sup", state),
             Catch::Equals("cannot rebuild operator 'final_aggregate': cannot decode its arguments: expected an aggregate "
                           "kind (sum, count, min, max or avg), found 'sup'"));
  CHECK_THAT(rebuild_with(final_aggregate, "4:none", "4:nope", state),
             Catch::Contains("cannot decode its arguments: expected 'input' or 'none', found 'nope'"));
  CHECK_THAT(rebuild_with(partial, ") 1:2 (", ") 1:x (", events_schema()),
             Catch::Contains("cannot decode its arguments: expected the number of keys, found 'x'"));
  CHECK_THAT(rebuild_with(partial, "4:none", "5:input", events_schema()), Catch::Contains("cannot decode its arguments"));
  CHECK_THAT(rebuild_with(partial, "(col 8:Quantity)", "(col 8:Quantily)", events_schema()),
             Catch::StartsWith("cannot rebuild operator 'partial_aggregate': ") && Catch::Contains("Quantily"));
  // Truncated anywhere: an error, never a crash.
  for (std::size_t length = 0; length < final_aggregate.arguments.size(); ++length) {
    INFO(length);
    CHECK_THAT(error_of([&] { make_operator({"final_aggregate", final_aggregate.arguments.substr(0, length)}, state); }),
               Catch::StartsWith("cannot rebuild operator 'final_aggregate': "));
  }
  // Each reads the schema the aggregation gives it: the raw rows before the shuffle, the partials after.
  CHECK_THAT(error_of([&] { make_operator(final_aggregate, events_schema()); }),
             Catch::StartsWith("cannot rebuild operator 'final_aggregate': it reads the aggregation's partial aggregates ("));
  CHECK_THAT(error_of([&] { make_operator(partial, state); }),
             Catch::StartsWith("cannot rebuild operator 'partial_aggregate': it reads the aggregation's input rows ("));

  graph_description description = describe(graph);
  description.vertices[1].chain[0].arguments += " 0:";
  CHECK_THAT(error_of([&] { rebuild(description); }),
             Catch::StartsWith("cannot rebuild the dataflow graph: vertex 'aggregate': cannot rebuild operator 'final_aggregate': "
                               "cannot decode its arguments: unexpected text after the last item"));
}
