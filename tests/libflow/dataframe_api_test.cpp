// The reader and stream writer builders: option overloads and load(), against a session context that
// records what it is handed.
#include <catch2/catch.hpp>

#include "flow/dataframe.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;

namespace {

class recording_context final : public session_context {
 public:
  void resolve_scan(scan_spec& scan) override {
    if (!scan.schema) scan.schema = make_schema({{"value", type_id::string, true}});
    scans.push_back(scan);
  }
  std::vector<batch> execute(const plan_ptr& plan) override {
    executed.push_back(plan);
    return {};
  }
  std::size_t input_partitions(const scan_spec& scan) override { return scan.path.size(); }
  std::shared_ptr<query_control> start_stream(const plan_ptr&, const sink_spec& sink) override {
    sinks.push_back(sink);
    return nullptr;
  }
  std::shared_ptr<query_control> start_graph(dataflow_graph, const query_options&) override { return nullptr; }
  batch sql(const std::string&) override { return batch::empty(make_schema({})); }

  std::vector<scan_spec> scans;
  std::vector<sink_spec> sinks;
  std::vector<plan_ptr> executed;
};

}  // namespace

TEST_CASE("data_stream_writer::option stores strings, numbers and booleans as text", "[dataframe]") {
  auto ctx = std::make_shared<recording_context>();
  auto frame = data_frame_reader(ctx, true).format("socket").load();
  frame.write_stream()
      .format("csv")
      .option("path", "/tmp/x")  // a string literal: not the bool overload
      .option("maxRecordsPerFile", 100)
      .option("big", 5'000'000'000LL)
      .option("header", true)
      .option("ratio", 0.25)
      .option("name", std::string("plain"))
      .option("files", std::size_t{7})
      .option("offset", std::int64_t{-3})
      .start();
  REQUIRE(ctx->sinks.size() == 1);
  const options& opts = ctx->sinks[0].opts;
  CHECK(opts.get("path") == "/tmp/x");
  CHECK(opts.get_int("maxRecordsPerFile", 0) == 100);
  CHECK(opts.get("big") == "5000000000");
  CHECK(opts.get("header") == "true");
  CHECK(opts.get("ratio") == "0.25");
  CHECK(opts.get("name") == "plain");
  CHECK(opts.get("files") == "7");
  CHECK(opts.get("offset") == "-3");
}

TEST_CASE("data_frame_reader::option takes doubles as the shortest text that reads back", "[dataframe]") {
  auto ctx = std::make_shared<recording_context>();
  data_frame_reader(ctx, true).format("rate").option("rowsPerSecond", 0.1).option("big", 1e21).option("n", 3).load();
  REQUIRE(ctx->scans.size() == 1);
  CHECK(ctx->scans[0].opts.get("rowsPerSecond") == "0.1");
  CHECK(std::stod(ctx->scans[0].opts.get("big")) == 1e21);
  CHECK(ctx->scans[0].opts.get("n") == "3");
  CHECK(option_text(2.0) == "2");
  CHECK(option_text(-0.5) == "-0.5");
}

TEST_CASE("data_frame_reader::load() for sources without a path, while file formats still need one", "[dataframe]") {
  auto ctx = std::make_shared<recording_context>();
  auto frame = data_frame_reader(ctx, true).format("kafka").load();
  REQUIRE(ctx->scans.size() == 1);
  CHECK(ctx->scans[0].format == "kafka");
  CHECK(ctx->scans[0].path.empty());
  CHECK(frame.is_streaming());

  data_frame_reader(ctx, false).format("csv").load("/data/*.csv");
  CHECK(ctx->scans.back().path == "/data/*.csv");

  auto message = error_of([&] { data_frame_reader(ctx, true).format("csv").load(); });
  CHECK_THAT(message, Catch::Contains("the csv format reads files and needs a path") &&
                          Catch::Contains("load(\"/data/*.csv\")"));
  CHECK_THAT(error_of([&] { data_frame_reader(ctx, true).format("json").load(""); }),
             Catch::Contains("the json format reads files and needs a path"));
  CHECK_THAT(error_of([&] { data_frame_reader(ctx, true).load(); }), Catch::Contains("load(): no format"));
  CHECK(ctx->scans.size() == 2);  // none of the refused loads reached the session
}

TEST_CASE("grouped count() names its column count, as Spark does, and agg(count(*)) keeps count(1)", "[dataframe]") {
  auto ctx = std::make_shared<recording_context>();
  auto frame = data_frame_reader(ctx, true).format("socket").load();
  auto grouped = frame.group_by({col("value")});
  CHECK(grouped.count().schema().names() == std::vector<std::string>{"value", "count"});
  CHECK(grouped.agg({count_all(), count(col("value"))}).schema().names() ==
        std::vector<std::string>{"value", "count(1)", "count(value)"});
}

TEST_CASE("union_: static frames run as one plan over both scans, streaming ones keep the output mode rules", "[dataframe]") {
  auto ctx = std::make_shared<recording_context>();
  auto left = data_frame_reader(ctx, false).format("text").load("/in/a");
  auto right = data_frame_reader(ctx, false).format("text").load("/in/bb");
  auto both = left.union_(right).where(col("value") != lit(""));
  CHECK_FALSE(both.is_streaming());
  CHECK(both.schema() == left.schema());
  CHECK(both.num_partitions() == std::string("/in/a").size() + std::string("/in/bb").size());
  both.count();
  REQUIRE(ctx->executed.size() == 1);
  CHECK(ctx->executed[0] == both.plan());
  CHECK(ctx->executed[0]->children.front()->kind == plan_kind::union_all);

  auto stream = data_frame_reader(ctx, true).format("socket").load();
  auto streams = stream.union_(data_frame_reader(ctx, true).format("socket").load());
  CHECK(streams.is_streaming());
  CHECK_THAT(error_of([&] { streams.write_stream().output_mode("complete").start(); }),
             Catch::Contains("complete output mode not supported when there are no streaming aggregations"));
  streams.write_stream().format("memory").start();
  CHECK(ctx->sinks.size() == 1);
  CHECK_THAT(error_of([&] { stream.union_(left); }),
             Catch::Contains("Union between streaming and batch DataFrames/Datasets is not supported"));
}
