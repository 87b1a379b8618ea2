// Event time end to end: with_watermark, append mode, late rows, eviction, the no-data epoch and restarts,
// each against a plain loop over the same rows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t minute = 60'000'000, hour = 60 * minute;

// (key, window start) -> sum of the amounts.
using window_sums = std::map<std::pair<std::string, std::int64_t>, double>;

// The starts of the windows [start, start + length) every slide that hold t (aligned to 1970-01-01).
std::vector<std::int64_t> window_starts(std::int64_t t, std::int64_t length, std::int64_t slide) {
  std::vector<std::int64_t> starts;
  for (std::int64_t start = t - ((t % slide) + slide) % slide; start > t - length; start -= slide) starts.push_back(start);
  return starts;
}

struct event {
  std::string key;
  double amount = 0;
  std::int64_t time = 0;
};

// An append-mode result table (key column, "window", sum column) as sums; each window must appear once.
window_sums sums_of(const flow::batch& table, const std::string& key, const std::string& sum) {
  window_sums out;
  for (std::size_t i = 0; i < table.num_rows(); ++i) {
    const auto& keys = table.col(key);
    auto at = std::make_pair(keys.valid(i) ? flow::to_string(keys.at(i)) : std::string(),
                             table.col("window").window(i).start.micros);
    INFO("key '" << at.first << "' window " << flow::format_timestamp(flow::timestamp{at.second}));
    CHECK(out.count(at) == 0);  // emitted exactly once
    out[at] = table.col(sum).doubles()[i];
  }
  return out;
}

void check_same(const window_sums& actual, const window_sums& expected) {
  CHECK(actual.size() == expected.size());
  for (const auto& [at, sum] : expected) {
    INFO("key '" << at.first << "' window " << flow::format_timestamp(flow::timestamp{at.second}));
    REQUIRE(actual.count(at) == 1);
    CHECK(std::round(actual.at(at) * 100) == std::round(sum * 100));
  }
}

// What an append-mode query computes from events arriving in `epochs` (one file each), by Spark's rules:
// each epoch runs with the watermark the epochs before it made; a row whose windows the watermark closed is
// dropped (counted); at the end every window the final watermark closed is emitted.
struct simulated {
  window_sums emitted;
  std::int64_t dropped = 0;
};

simulated simulate(const std::vector<std::vector<event>>& epochs, std::int64_t delay, std::int64_t length,
                   std::int64_t slide) {
  simulated out;
  window_sums open;
  std::optional<std::int64_t> watermark, latest;
  for (const auto& rows : epochs) {
    for (const auto& e : rows) {
      bool kept = false;
      for (auto start : window_starts(e.time, length, slide)) {
        if (watermark && start + length <= *watermark) continue;
        open[{e.key, start}] += e.amount;
        kept = true;
      }
      if (!kept) ++out.dropped;
    }
    for (const auto& e : rows) latest = std::max(latest.value_or(e.time), e.time);
    if (latest) watermark = std::max(watermark.value_or(*latest - delay), *latest - delay);
  }
  for (const auto& [at, sum] : open)
    if (watermark && at.second + length <= *watermark) out.emitted[at] = sum;
  return out;
}

// "k0", "k1", ...
std::string key_name(std::int64_t n) {
  std::string name = "k";
  name += std::to_string(n);
  return name;
}

flow::schema_ptr events_schema() {
  return flow::make_schema({{"key", flow::type_id::string, true},
                            {"amount", flow::type_id::float64, true},
                            {"ts", flow::type_id::timestamp, true}});
}

// One CSV file per epoch, their modification times in order (the file source reads oldest first).
void write_epochs(const fs::path& dir, const std::vector<std::vector<event>>& epochs, std::size_t first = 0) {
  fs::create_directories(dir);
  const auto base = fs::file_time_type::clock::now() - 1h;
  for (std::size_t k = 0; k < epochs.size(); ++k) {
    const auto file = dir / ("part-" + std::to_string(1000 + first + k) + ".csv");
    std::ofstream out(file);
    out << "key,amount,ts\n";
    for (const auto& e : epochs[k])
      out << e.key << "," << e.amount << "," << flow::format_timestamp(flow::timestamp{e.time}) << "\n";
    out.close();
    fs::last_write_time(file, base + std::chrono::seconds(first + k));
  }
}

flow::data_frame windowed_sums(flow::session& session, const fs::path& dir, const std::string& delay,
                               const std::string& length, const std::string& slide = {}) {
  return session.read_stream().format("csv").option("header", true).schema(events_schema())
      .option("maxFilesPerTrigger", 1).load(dir.string())
      .with_watermark("ts", delay)
      .group_by({col("key"), flow::window(col("ts"), length, slide)})
      .sum("amount");
}

std::int64_t total_of(const std::vector<std::string>& reports, const std::string& figure) {
  std::int64_t total = 0;
  for (const auto& report : reports) total += flow::test::json_int(report, figure).value_or(0);
  return total;
}

}  // namespace

// ---------------------------------------------------------------- retail days, in order

namespace {

// Every row of the first `days` retail files as events: CustomerID (text), UnitPrice * Quantity, InvoiceDate.
std::vector<std::vector<event>> retail_events(flow::session& session, const fs::path& data) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(data)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::vector<std::vector<event>> epochs;
  for (const auto& file : files) {
    auto rows = session.read().format("csv").option("header", true).option("inferSchema", true)
                    .load(file.string()).collect_batch();
    std::vector<event> day;
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      const auto& customer = rows.col("CustomerID");
      const auto& price = rows.col("UnitPrice");
      const auto& quantity = rows.col("Quantity");
      day.push_back({customer.valid(i) ? flow::to_string(customer.at(i)) : std::string(),
                     price.doubles()[i] * static_cast<double>(quantity.ints()[i]), rows.col("InvoiceDate").ints()[i]});
    }
    epochs.push_back(std::move(day));
  }
  return epochs;
}

window_sums stream_retail(flow::session& session, const fs::path& data, const std::string& table,
                          const std::string& slide, std::vector<std::string>& progress) {
  auto sales = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                   .schema(session.read().format("csv").option("header", true).option("inferSchema", true)
                               .load(data.string()).schema())
                   .load(data.string());
  auto query = sales.select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"),
                             col("InvoiceDate")})
                   .with_watermark("InvoiceDate", "2 hours")
                   .group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour", slide)})
                   .sum("total_cost")
                   .write_stream().format("memory").query_name(table).output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());
  progress = query.recent_progress();
  return sums_of(session.sql("SELECT * FROM " + table).collect_batch(), "CustomerID", "sum(total_cost)");
}

}  // namespace

TEST_CASE("append mode emits each closed tumbling and sliding retail window once, as a loop computes them",
          "[actors][event-time]") {
  flow::session session;
  flow::test::temp_dir dir;
  const auto data = flow::test::retail_days(dir, 3);
  const auto epochs = retail_events(session, data);
  for (const std::string slide : {"1 hour", "15 minutes"}) {
    INFO("slide " << slide);
    std::vector<std::string> progress;
    const auto streamed = stream_retail(session, data, slide == "1 hour" ? "tumbling" : "sliding", slide, progress);
    const auto expected = simulate(epochs, 2 * hour, hour, flow::parse_duration_micros(slide));
    REQUIRE(expected.emitted.size() > 100);
    check_same(streamed, expected.emitted);
    CHECK(expected.dropped == 0);
    CHECK(total_of(progress, "numRowsDroppedByWatermark") == 0);
    // Three data epochs, then the no-data epoch that emits what the final watermark closed.
    REQUIRE(progress.size() == 4);
    CHECK(flow::test::json_int(progress.back(), "numInputRows") == 0);
    CHECK_THAT(progress.back(), Catch::Contains("\"eventTime\":{\"watermark\":\"2010-12-03T"));
    CHECK_THAT(progress.front(), Catch::Contains("\"eventTime\":{\"avg\":\"2010-12-01T") &&
                                     Catch::Contains("\"watermark\":\"1970-01-01T00:00:00.000Z\"}"));
    // The windows of the first day are emitted by the second epoch, not held to the end.
    CHECK(flow::test::json_int(progress[1], "numOutputRows").value_or(0) > 0);
  }
}

TEST_CASE("late rows in shuffled input are dropped by the watermark and counted exactly", "[actors][event-time]") {
  const std::string backend = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO("state backend " << backend);
  flow::session_config config;
  config.state_backend = backend;
  flow::session session(config);
  flow::test::temp_dir dir;
  auto rows = retail_events(session, flow::test::retail_days(dir, 1)).front();
  std::mt19937 shuffle(11);
  std::shuffle(rows.begin(), rows.end(), shuffle);
  std::vector<std::vector<event>> epochs(6);
  for (std::size_t i = 0; i < rows.size(); ++i) epochs[i * epochs.size() / rows.size()].push_back(rows[i]);
  write_epochs(dir / "in", epochs);

  auto query = windowed_sums(session, dir / "in", "10 minutes", "1 hour")
                   .write_stream().format("memory").query_name("late").output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  const auto expected = simulate(epochs, 10 * minute, hour, hour);
  REQUIRE(expected.dropped > 100);
  CHECK(total_of(query.recent_progress(), "numRowsDroppedByWatermark") == expected.dropped);
  check_same(sums_of(session.sql("SELECT * FROM late").collect_batch(), "key", "sum(amount)"), expected.emitted);
}

TEST_CASE("the state of a watermarked window aggregation stays bounded while the input grows",
          "[actors][event-time]") {
  const std::string backend = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO("state backend " << backend);
  flow::session_config config;
  config.state_backend = backend;
  flow::session session(config);
  flow::test::temp_dir dir;
  // 40 epochs of 600 rows: 20 keys, one row per key every 20 s, so each epoch spans 10 minutes.
  std::vector<std::vector<event>> epochs(40);
  std::int64_t t = 1'600'000'000LL * 1'000'000;
  for (auto& rows : epochs)
    for (int i = 0; i < 600; ++i, t += 1'000'000) rows.push_back({key_name(i % 20), 1.0, t});
  write_epochs(dir / "in", epochs);

  auto query = windowed_sums(session, dir / "in", "2 minutes", "1 minute")
                   .write_stream().format("memory").query_name("bounded").output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());
  const auto progress = query.recent_progress();
  REQUIRE(progress.size() == 41);
  // An epoch keeps its own 10 minutes of windows, the 2 behind the watermark and the partial minutes at
  // either end: at most 14 windows of 20 keys.
  std::int64_t most = 0;
  for (const auto& report : progress) most = std::max(most, flow::test::json_int(report, "numRowsTotal").value_or(0));
  CHECK(most <= 20 * 14);
  const auto expected = simulate(epochs, 2 * minute, minute, minute);
  CHECK(static_cast<std::int64_t>(expected.emitted.size()) > 10 * most);  // far more windows than were ever held
  check_same(sums_of(session.sql("SELECT * FROM bounded").collect_batch(), "key", "sum(amount)"), expected.emitted);
}

TEST_CASE("a query restarted from its checkpoint continues with its watermark: the same output as one run",
          "[actors][event-time][checkpoint]") {
  flow::session session;
  flow::test::temp_dir dir;
  const std::int64_t start = 1'600'000'000LL * 1'000'000;
  // Four epochs of 20 minutes, a row every 30 s for 3 keys; the third also brings rows of the first minutes,
  // late for the watermark the first run ended with.
  std::vector<std::vector<event>> epochs(4);
  for (std::size_t k = 0; k < epochs.size(); ++k)
    for (std::int64_t s = 0; s < 20 * 60; s += 30)
      epochs[k].push_back({key_name(s / 30 % 3), 1.0 + static_cast<double>(k),
                           start + static_cast<std::int64_t>(k) * 20 * minute + s * 1'000'000});
  for (int i = 0; i < 5; ++i) epochs[2].push_back({"k0", 100.0, start + i * minute});
  const auto expected = simulate(epochs, minute, 5 * minute, 5 * minute);
  REQUIRE(expected.dropped == 5);

  const auto checkpoint = dir / "checkpoint";
  auto run = [&](const std::string& table) {
    auto query = windowed_sums(session, dir / "in", "1 minute", "5 minutes")
                     .write_stream().format("memory").query_name(table).output_mode("append")
                     .option("checkpointLocation", checkpoint.string()).trigger(flow::available_now()).start();
    REQUIRE(query.await_termination(60s));
    REQUIRE_FALSE(query.exception());
    return session.sql("SELECT * FROM " + table).collect_batch();
  };
  write_epochs(dir / "in", {epochs[0], epochs[1]});
  auto first = run("first");
  write_epochs(dir / "in", {epochs[2], epochs[3]}, 2);
  auto second = run("second");
  window_sums both = sums_of(first, "key", "sum(amount)");
  for (const auto& [at, sum] : sums_of(second, "key", "sum(amount)")) {
    INFO("key '" << at.first << "' window " << flow::format_timestamp(flow::timestamp{at.second}));
    CHECK(both.count(at) == 0);  // a window the first run emitted is not emitted again
    both[at] = sum;
  }
  check_same(both, expected.emitted);
}

TEST_CASE("retail_by_day --window --slide --watermark --output-mode append writes every closed window once",
          "[actors][event-time][example]") {
  flow::session session;
  flow::test::temp_dir dir;
  const auto data = flow::test::retail_days(dir, 3);
  const auto output = dir / "windows.csv";
  flow::test::child_process example(FLOW_RETAIL_EXAMPLE,
                                    {"--data", data.string(), "--trigger", "available-now", "--window", "1 hour",
                                     "--slide", "15 minutes", "--watermark", "2 hours", "--output-mode", "append",
                                     "--refreshes", "1", "--output", output.string()},
                                    dir / "log.txt");
  REQUIRE(example.wait_exit(120s) == 0);
  const auto written = flow::test::read_customer_hour_sums(output, 3);
  const auto lines = flow::test::read_file(output);
  CHECK(static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n')) == written.size() + 1);  // no window twice
  flow::test::customer_hour_sums expected;
  for (const auto& [at, sum] : simulate(retail_events(session, data), 2 * hour, hour, 15 * minute).emitted)
    expected[{at.first, flow::format_timestamp(flow::timestamp{at.second})}] = sum;
  flow::test::check_same_sums(written, expected);

  flow::test::child_process refused(FLOW_RETAIL_EXAMPLE, {"--data", data.string(), "--watermark", "soon"},
                                    dir / "refused.txt", dir / "refused-errors.txt");
  CHECK(refused.wait_exit(60s) != 0);
  CHECK_THAT(flow::test::read_file(dir / "refused-errors.txt"), Catch::Contains("--watermark"));
}
