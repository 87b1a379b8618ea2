#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "flow/connectors/rate.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::connectors::rate_rows_at_second;

namespace {

flow::options rate_options(std::int64_t rows_per_second, std::string ramp_up = "0s", std::int64_t partitions = 1) {
  flow::options opts;
  opts.set("rowsPerSecond", std::to_string(rows_per_second));
  opts.set("rampUpTime", std::move(ramp_up));
  opts.set("numPartitions", std::to_string(partitions));
  return opts;
}

std::int64_t start_time_ms(const std::string& offset) {
  auto at = offset.find("\"startTimeMs\":");
  REQUIRE(at != std::string::npos);
  return std::stoll(offset.substr(at + 14));
}

std::string offset_at(std::int64_t seconds, std::int64_t start_ms) {
  return "{\"seconds\":" + std::to_string(seconds) + ",\"startTimeMs\":" + std::to_string(start_ms) + "}";
}

std::vector<flow::batch> read_range(flow::source_reader& source, const std::string& start, const std::string& end) {
  source.begin_read(start, end);
  std::vector<flow::batch> batches;
  while (auto unit = source.next()) batches.push_back(std::get<flow::batch>(*unit));
  return batches;
}

std::vector<std::int64_t> values_of(const std::vector<flow::batch>& batches) {
  std::vector<std::int64_t> values;
  for (const auto& b : batches)
    for (std::size_t r = 0; r < b.num_rows(); ++r) values.push_back(b.col("value").ints()[r]);
  return values;
}

}  // namespace

TEST_CASE("rate source row counts follow Spark's valueAtSecond, ramp-up included", "[rate]") {
  // Spark's own example: rampUpTime 4 s, 10 rows/s.
  std::vector<std::int64_t> counts;
  for (std::int64_t s = 0; s <= 6; ++s) counts.push_back(rate_rows_at_second(s, 10, 4));
  CHECK(counts == std::vector<std::int64_t>{0, 2, 6, 12, 20, 30, 40});
  CHECK(rate_rows_at_second(7, 5, 0) == 35);
  CHECK(rate_rows_at_second(0, 5, 0) == 0);
}

TEST_CASE("rate source yields values and timestamps of a range, replayably", "[rate]") {
  auto source = flow::make_rate_source(rate_options(10));
  CHECK(source->description() == "RateStreamV2[rowsPerSecond=10, rampUpTimeSeconds=0, numPartitions=1]");
  CHECK(source->output_schema()->to_string() == "timestamp: timestamp, value: int64");
  auto initial = source->initial_offset();
  auto t0 = start_time_ms(initial);
  CHECK(initial == offset_at(0, t0));

  auto batches = read_range(*source, offset_at(0, t0), offset_at(2, t0));
  auto values = values_of(batches);
  REQUIRE(values.size() == 20);
  for (std::int64_t v = 0; v < 20; ++v) CHECK(values[static_cast<std::size_t>(v)] == v);
  const auto& ts = batches.front().col("timestamp");
  CHECK(ts.ints()[0] == t0 * 1000);
  CHECK(ts.ints()[7] == (t0 + 700) * 1000);  // start + index / rowsPerSecond

  auto later = values_of(read_range(*source, offset_at(2, t0), offset_at(3, t0)));
  CHECK(later.front() == 20);
  CHECK(later.back() == 29);
  CHECK(read_range(*source, offset_at(0, t0), offset_at(2, t0)) == batches);  // the same range, the same rows
}

TEST_CASE("rate source spreads values over partitions like Spark and bounds batch sizes", "[rate]") {
  auto source = flow::make_rate_source(rate_options(10, "0s", 3));
  auto t0 = start_time_ms(source->initial_offset());
  auto batches = read_range(*source, offset_at(0, t0), offset_at(1, t0));
  REQUIRE(batches.size() == 3);  // one per partition share
  CHECK(values_of({batches[0]}) == std::vector<std::int64_t>{0, 3, 6, 9});
  CHECK(values_of({batches[1]}) == std::vector<std::int64_t>{1, 4, 7});
  CHECK(values_of({batches[2]}) == std::vector<std::int64_t>{2, 5, 8});
  CHECK(batches[2].col("timestamp").ints()[1] == (t0 + 500) * 1000);

  auto one = flow::make_rate_source(rate_options(1000));
  one->set_max_unit_bytes(160);  // 16 bytes a row
  auto small = read_range(*one, offset_at(0, t0), offset_at(1, t0));
  CHECK(small.size() == 100);
  CHECK(small.front().num_rows() == 10);
  CHECK(values_of(small).size() == 1000);
}

TEST_CASE("rate source ramps up: timestamps spread evenly over the range's seconds", "[rate]") {
  auto source = flow::make_rate_source(rate_options(10, "4s"));
  auto t0 = start_time_ms(source->initial_offset());
  auto batches = read_range(*source, offset_at(1, t0), offset_at(3, t0));
  auto values = values_of(batches);
  REQUIRE(values.size() == 10);  // rows 2..11 (counts 2 at 1 s, 12 at 3 s)
  CHECK(values.front() == 2);
  CHECK(values.back() == 11);
  // 10 values over 2000 ms: 200 ms apart from the range's first second.
  CHECK(batches[0].col("timestamp").ints()[0] == (t0 + 1000) * 1000);
  CHECK(batches[0].col("timestamp").ints()[3] == (t0 + 1600) * 1000);
}

TEST_CASE("rate source's latest offset grows with elapsed time", "[rate]") {
  auto source = flow::make_rate_source(rate_options(5));
  auto initial = source->initial_offset();
  auto t0 = start_time_ms(initial);
  std::optional<std::string> latest;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!(latest = source->latest_offset(initial)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  REQUIRE(latest);
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count() - t0;
  CHECK(elapsed_ms >= 1000);
  CHECK(*latest == offset_at(1, t0));
  CHECK_FALSE(source->latest_offset(*latest));  // nothing new within the same second
}

TEST_CASE("rate source notifies when the next whole second brings rows", "[rate][notify]") {
  auto source = flow::make_rate_source(rate_options(5));
  std::atomic<int> calls{0};
  REQUIRE(source->notify_when_data([&] { ++calls; }));
  auto initial = source->initial_offset();
  REQUIRE_FALSE(source->latest_offset(initial));  // within the first second
  CHECK(calls == 0);
  REQUIRE(flow::test::eventually([&] { return calls.load() == 1; }, 5s));
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count() - start_time_ms(initial);
  CHECK(elapsed_ms >= 1000);
  CHECK(source->latest_offset(initial) == offset_at(1, start_time_ms(initial)));
}

TEST_CASE("rate source rejects bad options and offsets clearly", "[rate]") {
  flow::options zero;
  zero.set("rowsPerSecond", "0");
  CHECK_THAT(flow::test::error_of([&] { flow::make_rate_source(zero); }),
             Catch::Contains("rowsPerSecond") && Catch::Contains("positive"));
  flow::options partitions;
  partitions.set("numPartitions", "-2");
  CHECK_THAT(flow::test::error_of([&] { flow::connectors::validate_rate_options(partitions); }),
             Catch::Contains("numPartitions"));
  flow::options ramp;
  ramp.set("rampUpTime", "soon");
  CHECK_THAT(flow::test::error_of([&] { flow::make_rate_source(ramp); }), Catch::Contains("rampUpTime"));
  auto source = flow::make_rate_source({});
  CHECK_THAT(flow::test::error_of([&] { source->latest_offset("{\"logOffset\":3}"); }),
             Catch::Contains("malformed offset"));
}

TEST_CASE("rate source: its identity for a checkpoint holds numPartitions, not the rate", "[rate][fingerprint]") {
  const auto identity = flow::make_rate_source(rate_options(10, "0s", 2))->identity();
  CHECK(identity == "RateStreamV2[numPartitions=2]");
  CHECK(flow::make_rate_source(rate_options(500, "10s", 2))->identity() == identity);
  CHECK(flow::make_rate_source(rate_options(10, "0s", 3))->identity() != identity);
  CHECK_THAT(flow::make_rate_source(rate_options(500, "10s", 2))->description(), Catch::Contains("rowsPerSecond=500"));
}
