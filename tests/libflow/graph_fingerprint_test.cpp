// What a checkpoint depends on (flow/graph_fingerprint.hpp): compatible changes of a query are accepted,
// incompatible ones refused with a message that shows every difference, checkpoint and query side by side.
#include <catch2/catch.hpp>

#include "flow/compile.hpp"
#include "flow/graph_fingerprint.hpp"

#include "test_support.hpp"

using namespace flow;
using Catch::Matchers::Contains;
using flow::test::error_of;

namespace {

const std::string checkpoint_dir = "/data/ck";

schema_ptr items_schema() {
  return make_schema({{"Country", type_id::string, true},
                      {"StockCode", type_id::string, true},
                      {"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, true}});
}

plan_ptr scan_of(std::string path, options opts = {}) {
  scan_spec scan;
  scan.format = "csv";
  scan.path = std::move(path);
  scan.opts = std::move(opts);
  scan.schema = items_schema();
  scan.streaming = true;
  return make_scan(std::move(scan));
}

plan_ptr revenue_by(plan_ptr input, std::vector<expr> keys) {
  auto revenue = make_project(std::move(input), {col("Country"), col("StockCode"),
                                                 (col("Quantity") * col("UnitPrice")).as("revenue")});
  return make_aggregate(revenue, std::move(keys), {{agg_kind::sum, col("revenue"), {}}});
}

sink_spec memory_sink() {
  sink_spec sink;
  sink.format = "memory";
  sink.query_name = "revenue";
  sink.mode = output_mode::update;
  return sink;
}

// The fingerprint of the query: one identity per scan of the plan, "FileStreamSource[<path>]".
std::string fingerprint_of(const plan_ptr& plan, const sink_spec& sink = memory_sink(), std::size_t parallelism = 4) {
  auto graph = compile_graph(plan, sink);
  graph.resolve_parallelism(parallelism);
  std::vector<std::string> identities;
  for (const auto* scan : scans_of(*plan)) identities.push_back("FileStreamSource[" + scan->path + "]");
  return graph_fingerprint(graph, identities);
}

std::string refusal(const std::string& checkpoint, const std::string& query) {
  auto why = checkpoint_incompatibility(checkpoint, query, checkpoint_dir);
  REQUIRE(why);
  CHECK_THAT(*why, Contains("checkpoint '/data/ck' was written by a different query; it cannot resume this one:"));
  CHECK_THAT(*why, Contains("Start the query with a new checkpointLocation, or change it back."));
  return *why;
}

// A keyed operator that keeps one row per key: the key and the columns of `state`.
class tally_state final : public operator_state {
 public:
  explicit tally_state(schema_ptr schema) : schema_(std::move(schema)) {}
  batch snapshot() const override { return batch::empty(schema_); }
  void restore(const batch&) override {}
  batch take_changes() override { return snapshot(); }
  void apply_changes(const batch&) override {}
  std::size_t num_rows() const override { return 0; }
  std::size_t memory_bytes() const override { return 0; }

 private:
  schema_ptr schema_;
};

class tally final : public stream_operator {
 public:
  tally(std::string name, std::string key, std::vector<field> state)
      : name_(std::move(name)), key_(std::move(key)), output_(items_schema()) {
    state.insert(state.begin(), {key_, type_id::string, true});
    state_ = make_schema(std::move(state));
  }
  std::string name() const override { return name_; }
  const schema_ptr& output_schema() const override { return output_; }
  std::vector<std::string> key_columns() const override { return {key_}; }
  std::unique_ptr<operator_state> make_state() const override { return std::make_unique<tally_state>(state_); }
  void process(const batch&, std::size_t, operator_state*, operator_context&) const override {}

 private:
  std::string name_, key_;
  schema_ptr output_, state_;
};

struct keyed_vertex {
  std::string name;
  operator_ptr op;
};

// source "items" (FileStreamSource[/in/items]) -> one vertex per entry, each hash-partitioned on its keys,
// in parallelism 2 -> a sink.
std::string fingerprint_of(const std::vector<keyed_vertex>& vertices) {
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/in/items";
  scan.schema = items_schema();
  scan.streaming = true;
  dataflow_graph graph;
  auto upstream = graph.add_source("items", scan);
  for (const auto& v : vertices) {
    auto next = graph.add_operators(v.name, items_schema(), {v.op}, 2);
    graph.connect(upstream, next, partitioning::hash, v.op->key_columns());
    upstream = next;
  }
  graph.connect(upstream, graph.add_sink("out", items_schema(), memory_sink()), partitioning::forward);
  graph.resolve_parallelism(2);
  return graph_fingerprint(graph, {"FileStreamSource[/in/items]"});
}

operator_ptr units(std::vector<field> state = {{"units", type_id::int64, true}}) {
  return std::make_shared<tally>("units", "StockCode", std::move(state));
}

}  // namespace

TEST_CASE("graph fingerprint: the same query resumes its checkpoint", "[fingerprint]") {
  auto plan = revenue_by(scan_of("/in/a"), {col("Country")});
  const auto fingerprint = fingerprint_of(plan);
  CHECK_THAT(fingerprint, Contains("\"identity\":\"FileStreamSource[/in/a]\""));
  CHECK_THAT(fingerprint, Contains("\"keys\":[\"Country\"]"));
  CHECK_FALSE(checkpoint_incompatibility(fingerprint, fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country")})),
                                         checkpoint_dir));
}

TEST_CASE("graph fingerprint: triggers, sinks, rate limits and stateless operators may change", "[fingerprint]") {
  const auto checkpoint = fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country")}));

  auto other_sink = memory_sink();
  other_sink.format = "console";
  other_sink.opts.set("numRows", "50");
  other_sink.mode = output_mode::complete;
  other_sink.trigger = processing_time(std::chrono::milliseconds(500));
  CHECK_FALSE(checkpoint_incompatibility(checkpoint, fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country")}), other_sink),
                                         checkpoint_dir));

  options rate_limited;
  rate_limited.set("maxFilesPerTrigger", "3");
  CHECK_FALSE(checkpoint_incompatibility(
      checkpoint, fingerprint_of(revenue_by(scan_of("/in/a", rate_limited), {col("Country")})), checkpoint_dir));

  auto filtered = make_filter(scan_of("/in/a"), col("Quantity") > lit(std::int64_t{0}));
  auto selected = make_project(revenue_by(filtered, {col("Country")}), {col("Country")});
  CHECK_FALSE(checkpoint_incompatibility(checkpoint, fingerprint_of(selected), checkpoint_dir));
  // And back: removing them again is as fine.
  CHECK_FALSE(checkpoint_incompatibility(fingerprint_of(selected), checkpoint, checkpoint_dir));
}

TEST_CASE("graph fingerprint: another source path is refused, both paths shown", "[fingerprint]") {
  auto why = refusal(fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country")})),
                     fingerprint_of(revenue_by(scan_of("/in/b"), {col("Country")})));
  CHECK(why ==
        "checkpoint '/data/ck' was written by a different query; it cannot resume this one:\n"
        "  source 0 (vertex \"source\"):\n"
        "    identity  checkpoint: FileStreamSource[/in/a]   query: FileStreamSource[/in/b]\n"
        "Start the query with a new checkpointLocation, or change it back.");
}

TEST_CASE("graph fingerprint: an added or removed source is refused", "[fingerprint]") {
  const auto one = fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country")}));
  const auto two = fingerprint_of(revenue_by(make_union({scan_of("/in/a"), scan_of("/in/b")}), {col("Country")}));
  CHECK_THAT(refusal(one, two),
             Contains("source 1 (vertex \"source-2\", FileStreamSource[/in/b]): only in the query (added since the "
                      "checkpoint was written)"));
  CHECK_THAT(refusal(two, one),
             Contains("source 1 (vertex \"source-2\", FileStreamSource[/in/b]): only in the checkpoint (removed from "
                      "the query)"));
}

TEST_CASE("graph fingerprint: a source's changed schema is refused column by column", "[fingerprint]") {
  auto plan = revenue_by(scan_of("/in/a"), {col("Country")});
  auto graph = compile_graph(plan, memory_sink());
  graph.vertices()[graph.sources().front()].scan.schema =
      make_schema({{"Country", type_id::string, true}, {"StockCode", type_id::int64, true}});
  graph.resolve_parallelism(4);
  auto why = refusal(fingerprint_of(plan), graph_fingerprint(graph, {"FileStreamSource[/in/a]"}));
  CHECK_THAT(why, Contains("schema column 1  checkpoint: StockCode: string    query: StockCode: int64"));
  CHECK_THAT(why, Contains("schema column 2  checkpoint: Quantity: int64      query: (no such column)"));
  CHECK_THAT(why, Contains("schema column 3  checkpoint: UnitPrice: float64   query: (no such column)"));
}

TEST_CASE("graph fingerprint: other key columns are refused, both sides shown", "[fingerprint]") {
  auto why = refusal(fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country")})),
                     fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country"), col("StockCode")})));
  CHECK_THAT(why, Contains("stateful operator 0 (vertex \"aggregate\", operator \""));
  CHECK_THAT(why, Contains("key columns"));
  CHECK_THAT(why, Contains("checkpoint: [Country]"));
  CHECK_THAT(why, Contains("query: [Country, StockCode]"));
  // The added key column is one difference, not one per state column after it.
  CHECK_THAT(why, Contains("state schema column 1  checkpoint: (no such column)"));
  CHECK_THAT(why, Contains("query: StockCode: string"));
  CHECK_THAT(why, !Contains("state schema column 2"));
}

TEST_CASE("graph fingerprint: another state schema is refused, but a column may become nullable", "[fingerprint]") {
  const auto checkpoint = fingerprint_of({{"stock", units()}});
  CHECK(refusal(checkpoint, fingerprint_of({{"stock", units({{"units", type_id::float64, true}})}})) ==
        "checkpoint '/data/ck' was written by a different query; it cannot resume this one:\n"
        "  stateful operator 0 (vertex \"stock\", operator \"units\"):\n"
        "    state schema column 1  checkpoint: units: int64   query: units: float64\n"
        "Start the query with a new checkpointLocation, or change it back.");
  CHECK_THAT(refusal(checkpoint, fingerprint_of({{"stock", units({{"units", type_id::int64, true},
                                                                  {"rows", type_id::int64, true}})}})),
             Contains("state schema column 2  checkpoint: (no such column)   query: rows: int64"));

  const auto not_null = fingerprint_of({{"stock", units({{"units", type_id::int64, false}})}});
  CHECK_FALSE(checkpoint_incompatibility(not_null, checkpoint, checkpoint_dir));
  CHECK_THAT(refusal(checkpoint, not_null),
             Contains("state schema column 1  checkpoint: units: int64   query: units: int64 not null"));
}

TEST_CASE("graph fingerprint: an added or removed stateful operator is refused", "[fingerprint]") {
  auto revenue = std::make_shared<tally>("invoice_revenue", "Country", std::vector<field>{{"revenue", type_id::float64, true}});
  const auto one = fingerprint_of({{"stock", units()}});
  const auto two = fingerprint_of({{"invoices", revenue}, {"stock", units()}});
  CHECK(refusal(one, two) ==
        "checkpoint '/data/ck' was written by a different query; it cannot resume this one:\n"
        "  stateful operator 0 (vertex \"invoices\", operator \"invoice_revenue\", parallelism 2): only in the query "
        "(added since the checkpoint was written)\n"
        "Start the query with a new checkpointLocation, or change it back.");
  CHECK_THAT(refusal(two, one),
             Contains("stateful operator 0 (vertex \"invoices\", operator \"invoice_revenue\", parallelism 2): only in "
                      "the checkpoint (removed from the query)"));
  // A renamed operator in its place: one changed operator, not one removed and one added.
  auto why = refusal(one, fingerprint_of({{"stock", std::make_shared<tally>("units_v2", "StockCode",
                                                                             std::vector<field>{{"units", type_id::int64, true}})}}));
  CHECK_THAT(why, Contains("operator  checkpoint: \"units\"   query: \"units_v2\""));
}

TEST_CASE("graph fingerprint: another parallelism of a stateful vertex is refused, saying what to run", "[fingerprint]") {
  auto plan = revenue_by(scan_of("/in/a"), {col("Country")});
  auto why = refusal(fingerprint_of(plan, memory_sink(), 4), fingerprint_of(plan, memory_sink(), 2));
  CHECK_THAT(why, Contains("parallelism  checkpoint: 4   query: 2\n"
                           "      (its state is partitioned by key hash over the instances: run vertex \"aggregate\" "
                           "with parallelism 4 (the checkpoint's; a vertex that sets none takes the session's, "
                           "--flow.parallelism), or use a new checkpointLocation)"));
}

TEST_CASE("graph fingerprint: every difference is listed", "[fingerprint]") {
  auto why = refusal(fingerprint_of(revenue_by(scan_of("/in/a"), {col("Country")}), memory_sink(), 4),
                     fingerprint_of(revenue_by(scan_of("/in/b"), {col("StockCode")}), memory_sink(), 2));
  CHECK_THAT(why, Contains("identity  checkpoint: FileStreamSource[/in/a]   query: FileStreamSource[/in/b]"));
  CHECK_THAT(why, Contains("parallelism"));
  CHECK_THAT(why, Contains("checkpoint: [Country]"));
  CHECK_THAT(why, Contains("query: [StockCode]"));
}

TEST_CASE("graph fingerprint: a malformed fingerprint in a checkpoint is a clear error", "[fingerprint]") {
  const auto query = fingerprint_of({{"stock", units()}});
  for (std::string damaged : {"{\"sources\":[{\"vert", "{\"sources\":3,\"statefulOperators\":[]}",
                              "{\"sources\":[],\"statefulOperators\":[{\"vertex\":\"stock\"}]}"}) {
    auto message = error_of([&] { checkpoint_incompatibility(damaged, query, checkpoint_dir); });
    CHECK_THAT(message, Contains("checkpoint '/data/ck' (its metadata): the graph fingerprint is malformed ("));
    CHECK_THAT(message, Contains("start the query with a new checkpointLocation"));
  }
  CHECK_THAT(error_of([&] { checkpoint_incompatibility("{\"sources\":3,\"statefulOperators\":[]}", query, checkpoint_dir); }),
             Contains("field \"sources\" is not an array"));
}

TEST_CASE("graph fingerprint: one identity per source", "[fingerprint]") {
  auto graph = compile_graph(revenue_by(scan_of("/in/a"), {col("Country")}), memory_sink());
  CHECK_THAT(error_of([&] { graph_fingerprint(graph, {}); }),
             Contains("the graph has 1 sources, but 0 source identities were given"));
}
