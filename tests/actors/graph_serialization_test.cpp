// A dataflow graph's description through CAF's binary serializer, as the middleman ships it to another
// node: it comes back equal, the graph rebuilt from it is the same, and corrupt bytes give an error.
#include <catch2/catch.hpp>

#include <random>

#include <caf/all.hpp>

#include "../../actors/src/graph_inspect.hpp"
#include "flow/function_registry.hpp"

using namespace flow;

namespace {

schema_ptr retail_schema() {
  return make_schema({{"InvoiceNo", type_id::string, true},
                      {"StockCode", type_id::string, false},
                      {"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, true},
                      {"InvoiceDate", type_id::timestamp, true},
                      {"Country", type_id::string, true}});
}

// Every vertex kind, partitioning, output mode and trigger kind's neighbourhood: a streaming CSV source
// with a filter, a windowed projection keyed by Country, a registered map_batches, two sinks.
dataflow_graph retail_graph() {
  dataflow_graph graph;
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/data/retail";
  scan.opts.set("header", "true");
  scan.opts.set("maxFilesPerTrigger", "1");
  scan.schema = retail_schema();
  scan.streaming = true;
  const auto source = graph.add_source(
      "retail", scan, {std::make_shared<filter_operator>(retail_schema(), col("Quantity") > lit(0) && col("UnitPrice") >= lit(0.5))}, 2);
  const auto project = std::make_shared<project_operator>(
      *retail_schema(), std::vector<expr>{col("Country"), window(col("InvoiceDate"), "1 hour", "", "15 minutes"),
                                          (col("UnitPrice") * col("Quantity")).as("revenue")});
  const auto revenue = graph.add_operators("revenue", retail_schema(), {project}, 4);
  graph.append(revenue, make_function_operator(find_batch_function("test-serialization-identity"), project->output_schema(),
                                               "test-serialization-identity"));
  sink_spec by_country;
  by_country.format = "memory";
  by_country.query_name = "by_country";
  by_country.mode = output_mode::complete;
  by_country.trigger = available_now();
  const auto country_sink = graph.add_sink("country-sink", project->output_schema(), by_country);
  graph.vertices()[country_sink].sink_keys = {"Country", "window"};
  sink_spec console;
  console.opts.set("numRows", "50");
  console.trigger = processing_time(std::chrono::milliseconds(250));
  const auto console_sink = graph.add_sink("console", retail_schema(), console);
  graph.connect(source, revenue, partitioning::hash, {"Country"});
  graph.connect(source, console_sink, partitioning::broadcast);
  graph.connect(revenue, country_sink, partitioning::rebalance);
  return graph;
}

graph_description retail_description() {
  static const bool registered = [] {
    register_batch_function("test-serialization-identity", [](const batch& rows) { return rows; });
    return true;
  }();
  (void)registered;
  return describe(retail_graph());
}

std::vector<char> serialize(graph_description description) {
  std::vector<char> buffer;
  caf::binary_serializer sink{nullptr, buffer};
  REQUIRE_FALSE(sink(description));
  return buffer;
}

struct graph_config : caf::actor_system_config {
  graph_config() { add_message_type<graph_description>("flow::graph_description"); }
};

}  // namespace

TEST_CASE("a graph description round trips through CAF's binary serializer", "[actors][graph_serialization]") {
  const graph_description description = retail_description();
  const std::vector<char> bytes = serialize(description);
  graph_description copy;
  caf::binary_deserializer source{nullptr, bytes};
  REQUIRE_FALSE(source(copy));
  CHECK(source.remaining() == 0);
  CHECK(copy == description);
  CHECK(serialize(copy) == bytes);
  CHECK(copy.vertices[0].scan.opts.get("maxFilesPerTrigger") == "1");
  CHECK(copy.vertices[2].sink.mode == output_mode::complete);
  CHECK(copy.vertices[2].sink.trigger.kind == trigger_kind::available_now);
  CHECK(copy.vertices[3].sink.trigger.interval == std::chrono::milliseconds(250));
  CHECK(copy.edges[1].kind == partitioning::broadcast);

  // The receiving side rebuilds the same graph, its operators computing the same.
  const dataflow_graph rebuilt = rebuild(copy);
  rebuilt.validate();
  const dataflow_graph original = retail_graph();
  CHECK(rebuilt.explain() == original.explain());
  const batch rows = make_batch(retail_schema(), {{std::string("536365"), std::string("85123A"), std::int64_t{6}, 2.55,
                                                   *parse_timestamp("2010-12-01 08:26:00"), std::string("United Kingdom")}});
  const auto& original_project = *original.vertex(1).chain[0];
  const auto& rebuilt_project = *rebuilt.vertex(1).chain[0];
  CHECK(static_cast<const stateless_operator&>(rebuilt_project).apply(rows) ==
        static_cast<const stateless_operator&>(original_project).apply(rows));
}

TEST_CASE("a graph description travels in a CAF message as the middleman sends it", "[actors][graph_serialization]") {
  graph_config cfg;
  caf::actor_system sys{cfg};
  const graph_description description = retail_description();
  auto msg = caf::make_message(description);
  std::vector<char> buffer;
  caf::binary_serializer sink{sys, buffer};
  REQUIRE_FALSE(sink(msg));
  caf::message copy;
  caf::binary_deserializer source{sys, buffer};
  REQUIRE_FALSE(source(copy));
  REQUIRE(copy.match_elements<graph_description>());
  CHECK(copy.get_as<graph_description>(0) == description);
  CHECK(caf::to_string(copy).find("country-sink") != std::string::npos);
}

TEST_CASE("corrupt serialized graph descriptions give an error, never a crash", "[actors][graph_serialization]") {
  const std::vector<char> bytes = serialize(retail_description());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::vector<char> truncated(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    graph_description result;
    caf::binary_deserializer source{nullptr, truncated};
    INFO("truncated to " << n << " bytes");
    CHECK(source(result));
  }

  graph_description bad_kind = retail_description();
  bad_kind.vertices[1].kind = static_cast<vertex_kind>(3);
  const std::vector<char> bad_bytes = serialize(bad_kind);
  graph_description result;
  caf::binary_deserializer source{nullptr, bad_bytes};
  const caf::error err = source(result);
  REQUIRE(err);
  CHECK(err == caf::sec::invalid_argument);

  // A flipped byte is refused by CAF, or by rebuild() (flow::error), or gives a graph of other names
  // and values; nothing else may be thrown.
  std::mt19937 random(7);
  std::size_t refused = 0, rebuilt = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::vector<char> flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ static_cast<char>(1 + random() % 255));
    graph_description mutated;
    caf::binary_deserializer mutated_source{nullptr, flipped};
    if (mutated_source(mutated)) {
      ++refused;
      continue;
    }
    try {
      rebuild(mutated);
      ++rebuilt;
    } catch (const error&) {
      ++refused;
    }
  }
  CHECK(refused > 0);
  CHECK(rebuilt > 0);
}
