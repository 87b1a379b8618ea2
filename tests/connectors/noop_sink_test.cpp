#include <catch2/catch.hpp>

#include "flow/connectors/noop.hpp"
#include "test_support.hpp"

TEST_CASE("the noop sink counts committed epochs and rows once, through aborts and replays", "[noop]") {
  auto schema = flow::make_schema({{"n", flow::type_id::int64, true}});
  auto rows = [&](std::int64_t count) {
    std::vector<std::vector<flow::value>> values;
    for (std::int64_t i = 0; i < count; ++i) values.push_back({flow::value{i}});
    return flow::make_batch(schema, values);
  };
  auto sink = flow::make_noop_sink();
  sink->open(schema, flow::output_mode::append, {});
  CHECK(sink->description() == "NoopSink");

  sink->write(0, rows(3));
  sink->write(0, rows(4));
  sink->write(1, rows(5));
  sink->abort(1);  // epoch 1 failed and is replayed
  sink->commit(0);
  sink->write(1, rows(2));
  sink->commit(1);
  sink->write(1, rows(9));  // a replay of a committed epoch is not counted again
  sink->commit(1);
  sink->commit(2);  // an empty epoch
  CHECK(flow::test::metric(sink->metrics(), "numEpochs") == 3);
  CHECK(flow::test::metric(sink->metrics(), "numOutputRows") == 9);
}
