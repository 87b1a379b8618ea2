#include <catch2/catch.hpp>

#include "flow/compile.hpp"
#include "flow/operator_registry.hpp"
#include "flow/plan.hpp"
#include "flow/watermark.hpp"
#include "test_support.hpp"

using namespace flow;

namespace {

constexpr std::int64_t none = operator_context::no_watermark;

schema_ptr events_schema() {
  return make_schema({{"key", type_id::string, true}, {"ts", type_id::timestamp, true}});
}

// Records what an operator reports.
class recording_context final : public operator_context {
 public:
  void emit(batch rows) override { emitted += rows.num_rows(); }
  std::int64_t epoch() const override { return 0; }
  std::size_t instance() const override { return 0; }
  std::size_t parallelism() const override { return 1; }
  void observe_event_times(std::size_t input, const event_time_stats& seen) override {
    inputs.push_back(input);
    times.add(seen);
  }
  std::size_t emitted = 0;
  std::vector<std::size_t> inputs;
  event_time_stats times;
};

}  // namespace

TEST_CASE("watermark tracker: latest event time minus the delay, the slowest input, never backwards",
          "[watermark]") {
  watermark_tracker tracker({10, 100});
  CHECK(tracker.enabled());
  CHECK(tracker.current() == none);
  tracker.observe({none, none});
  CHECK(tracker.current() == none);  // no rows yet
  tracker.observe({1000, none});
  CHECK(tracker.current() == 990);   // the input without rows has no say (Spark)
  tracker.observe({none, 1050});
  CHECK(tracker.current() == 990);   // min(1000 - 10, 1050 - 100) = 950 < 990: never backwards
  tracker.observe({2000, 1500});
  CHECK(tracker.current() == 1400);  // min(1990, 1400)
  tracker.observe({1200, 1300});     // older rows do not lower the latest event time
  CHECK(tracker.current() == 1400);

  watermark_tracker fastest({10, 100}, watermark_policy::max);
  fastest.observe({2000, 1500});
  CHECK(fastest.current() == 1990);
  CHECK(parse_watermark_policy("max") == watermark_policy::max);
  CHECK_THROWS_WITH(parse_watermark_policy("avg"), Catch::Contains("give min (the slowest input, the default) or max"));

  watermark_tracker restarted({10});
  restarted.restore(5000);
  restarted.observe({4000});
  CHECK(restarted.current() == 5000);
  CHECK_FALSE(watermark_tracker().enabled());
}

TEST_CASE("with_watermark reports the batch's event times and passes the rows on", "[watermark]") {
  watermark_operator op(events_schema(), "ts", 60'000'000, 1);
  batch rows = make_batch(events_schema(), {{std::string("a"), timestamp{300}}, {std::string("b"), null_value{}},
                                            {std::string("c"), timestamp{100}}});
  recording_context ctx;
  op.process(rows, 0, nullptr, ctx);
  CHECK(ctx.emitted == 3);
  CHECK(ctx.inputs == std::vector<std::size_t>{1});
  CHECK(ctx.times.min == 100);
  CHECK(ctx.times.max == 300);
  CHECK(ctx.times.count == 2);
  CHECK(ctx.times.sum == 400.0);

  // It ships: the factory rebuilds the same operator.
  auto rebuilt = find_operator("with_watermark")(op.descriptor()->arguments, events_schema());
  const auto* copy = dynamic_cast<const watermark_operator*>(rebuilt.get());
  REQUIRE(copy);
  CHECK(copy->column() == "ts");
  CHECK(copy->delay_micros() == 60'000'000);
  CHECK(copy->input() == 1);

  CHECK_THROWS_WITH(watermark_operator(events_schema(), "key", 0, 0),
                    Catch::Contains("the event time column must be a timestamp, but it is string"));
  CHECK_THROWS_WITH(watermark_operator(events_schema(), "when", 0, 0), Catch::Contains("when"));
}

TEST_CASE("append mode with an aggregation needs a window over a watermarked column", "[watermark][plan]") {
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/in";
  scan.streaming = true;
  scan.schema = events_schema();
  auto source = make_scan(scan);
  std::vector<agg_spec> counts{{agg_kind::count, expr{}, {}}};
  auto watermarked = make_watermark(source, "ts", "10 minutes");
  CHECK(watermarked->delay_micros == 600'000'000);
  CHECK(watermark_columns(*watermarked) == std::vector<std::string>{"ts"});

  auto by_window = make_aggregate(watermarked, {col("key"), window(col("ts"), "1 hour")}, counts);
  CHECK_NOTHROW(validate_output_mode(*by_window, output_mode::append));
  CHECK_THAT(explain(*by_window), Catch::Contains("EventTimeWatermark ts, 600000 ms"));

  auto unwatermarked = make_aggregate(source, {col("key"), window(col("ts"), "1 hour")}, counts);
  CHECK_THROWS_WITH(validate_output_mode(*unwatermarked, output_mode::append),
                    Catch::Contains("append output mode not supported when there are streaming aggregations") &&
                        Catch::Contains("with_watermark(column, delay)"));
  auto by_key = make_aggregate(watermarked, {col("key")}, counts);
  CHECK_THROWS_WITH(validate_output_mode(*by_key, output_mode::append), Catch::Contains("without watermark"));
  CHECK_THROWS_WITH(make_watermark(source, "ts", "soon"), Catch::Contains("soon"));

  // Compiled: the watermark operator is numbered input 0 and the graph's delays name it.
  sink_spec sink;
  sink.format = "memory";
  sink.query_name = std::string("t");  // not = "t": GCC 12 warns falsely (-Wrestrict, its bug 105329)
  sink.mode = output_mode::append;
  auto graph = compile_graph(by_window, sink);
  CHECK(watermark_delays(graph) == std::vector<std::int64_t>{600'000'000});
}
