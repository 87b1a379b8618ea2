// The Flink exercise of the course, in libflow: 10 simulated sensors send a reading each every 100 ms with
// jittered event times, some of them seconds late; the average per sensor per 1-second event-time window,
// with a watermark, in append mode (each window printed once, when the watermark passes its end), and the
// late readings the watermark dropped counted.
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>

#include "example_support.hpp"
#include "flow/session.hpp"

namespace {

const char* const usage =
    "usage: sensor_averages [--seconds N] [--watermark DELAY] [--trigger 1s|once|available-now] [--output FILE.csv]\n"
    "  --seconds N        how long to run (default 10)\n"
    "  --watermark DELAY  how late a reading may arrive (default \"1 second\"); later ones are dropped and counted\n";

constexpr std::int64_t sensors = 10;
constexpr std::int64_t readings_per_second = 10;  // per sensor: one every 100 ms

struct arguments {
  long long seconds = 10;
  std::string watermark = "1 second";
  flow::examples::example_options common;
};

// A reading from the rate source's row number n at processing time t: sensor n % 10, a value that drifts
// around 20 degrees, and an event time up to 200 ms before t; every 25th reading of a sensor is 3 s late.
flow::batch readings(const flow::batch& rate) {
  const auto& times = rate.col("timestamp");
  const auto& values = rate.col("value");
  flow::column_builder sensor(flow::type_id::string, rate.num_rows()), reading(flow::type_id::float64, rate.num_rows()),
      event_time(flow::type_id::timestamp, rate.num_rows());
  for (std::size_t i = 0; i < rate.num_rows(); ++i) {
    const std::int64_t n = values.ints()[i];
    const std::int64_t jitter_ms = (n * 7919) % 200;
    const bool late = (n / sensors) % 25 == 24;
    sensor.append_string("sensor-" + std::to_string(n % sensors));
    reading.append_double(20.0 + 5.0 * std::sin(static_cast<double>(n) / 50.0) + static_cast<double>(n % sensors));
    event_time.append_timestamp(flow::timestamp{times.ints()[i] - jitter_ms * 1000 - (late ? 3'000'000 : 0)});
  }
  return flow::batch(flow::make_schema({{"sensor", flow::type_id::string, false},
                                        {"reading", flow::type_id::float64, false},
                                        {"event_time", flow::type_id::timestamp, false}}),
                     {sensor.finish(), reading.finish(), event_time.finish()});
}

}  // namespace

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  using flow::col;
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .number("--seconds", args.seconds, 1)
                 .value("--watermark", [&](const std::string& text) {
                   try {
                     flow::parse_duration_micros(text);
                   } catch (const flow::error& e) {
                     throw flow::cli::usage_error(std::string("--watermark: ") + e.what());
                   }
                   args.watermark = text;
                 });
  return flow::examples::run_example("sensor_averages", argc, argv, cli, [&](flow::examples::signal_stopper& stopper) {
    flow::session session{argc, argv};
    auto rate = session.read_stream().format("rate").option("rowsPerSecond", sensors * readings_per_second).load();
    auto averages = rate.map_batches(readings, flow::make_schema({{"sensor", flow::type_id::string, false},
                                                                   {"reading", flow::type_id::float64, false},
                                                                   {"event_time", flow::type_id::timestamp, false}}),
                                     "sensor_readings")
                        .with_watermark("event_time", args.watermark)
                        .group_by({col("sensor"), flow::window(col("event_time"), "1 second")})
                        .avg("reading");
    auto query = flow::examples::start_memory_table(averages, "sensor_averages", args.common.when, stopper, {},
                                                    flow::output_mode::append);
    std::size_t shown = 0;
    for (long long i = 0; i < args.seconds && query.is_active(); ++i) {
      query.await_termination(1s);
      auto table = session.sql("SELECT * FROM sensor_averages").collect_batch();
      std::cout << "windows closed so far: " << table.num_rows() << " (" << table.num_rows() - shown << " new)\n";
      shown = table.num_rows();
    }
    query.stop();
    if (auto failure = query.exception()) throw flow::error(*failure);
    long long late = 0;
    for (const auto& progress : query.recent_progress()) {
      const auto at = progress.find("\"numRowsDroppedByWatermark\":");
      if (at != std::string::npos) late += std::stoll(progress.substr(at + 28));
    }
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";
    auto result = session.sql("SELECT * FROM sensor_averages ORDER BY window, sensor").collect_batch();
    session.sql("SELECT * FROM sensor_averages ORDER BY window DESC, sensor").show(10, false);
    std::cout << "late readings dropped by the watermark: " << late << "\n";
    flow::examples::write_output(result, args.common.output);
    return 0;
  });
}
