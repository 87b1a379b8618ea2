// Data frames and topologies together, on real retail files in temp dirs, available-now: the relational
// API and the builder giving the same result, a relational union, a topology stream continued as a data
// frame (as_frame), and a union feeding two sinks where one fails once. Every result is compared with a
// computation written here over the same files.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "../../examples/custom_topology/retail_operators.hpp"
#include "flow/formats.hpp"
#include "flow/session.hpp"
#include "flow/topology.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::test;

namespace {

using retail::retail_schema;

const std::vector<std::string> days = {"2010-12-01", "2010-12-02", "2010-12-03",
                                       "2010-12-05", "2010-12-06", "2010-12-07"};

std::filesystem::path day_file(const std::string& day) { return shared_data_dir() / "retail-by-day" / (day + ".csv"); }

// Copies the days' files into dir.
void copy_days(const temp_dir& dir, const std::vector<std::string>& which) {
  for (const auto& day : which) std::filesystem::copy_file(day_file(day), dir / (day + ".csv"));
}

batch read_day(const std::string& day) {
  auto text = std::make_shared<const std::string>(read_file(day_file(day)));
  options opts;
  opts.set("header", "true");
  opts.set("mode", "FAILFAST");
  decode_stats stats;
  return make_decoder("csv", opts, retail_schema())->decode(raw_chunk{text, 0, text->size(), day, 1}, stats);
}

using table = std::map<value, std::vector<value>>;  // first column -> the other columns

// sum(Quantity) by StockCode over the days, as the relational aggregation gives it.
table units_by_stock(const std::vector<std::string>& which) {
  std::map<std::string, std::int64_t> units;
  for (const auto& day : which) {
    auto rows = read_day(day);
    for (std::size_t i = 0; i < rows.num_rows(); ++i)
      units[std::string(rows.col("StockCode").str(i))] += std::get<std::int64_t>(rows.at(i, rows.schema().index_of("Quantity")));
  }
  table out;
  for (const auto& [code, sum] : units) out[code] = {sum};
  return out;
}

// Keeps each key's newest row from update-mode output.
struct latest_rows {
  std::mutex mutex;
  table rows;
  // Throws once, in epoch fail_in_epoch, before writing anything (-1: never).
  std::atomic<std::int64_t> fail_in_epoch{-1};

  foreach_batch_function sink() {
    return [this](const batch& b, std::int64_t epoch) {
      if (fail_in_epoch.load() == epoch) {
        fail_in_epoch.store(-1);
        throw error("injected sink failure in epoch " + std::to_string(epoch));
      }
      std::lock_guard<std::mutex> lock(mutex);
      for (std::size_t i = 0; i < b.num_rows(); ++i) {
        std::vector<value> rest;
        for (std::size_t c = 1; c < b.num_columns(); ++c) rest.push_back(b.at(i, c));
        rows[b.at(i, 0)] = std::move(rest);
      }
    };
  }
  table get() {
    std::lock_guard<std::mutex> lock(mutex);
    return rows;
  }
};

data_frame retail_stream(session& s, const temp_dir& dir) {
  return s.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
      .schema(retail_schema()).load(dir.path().string());
}

void run_to_end(streaming_query& query) {
  REQUIRE(query.await_termination(std::chrono::seconds(120)));
  REQUIRE_FALSE(query.exception());
}

operator_ptr stock_units(const data_frame& rows) { return std::make_shared<const retail::stock_units>(rows.plan()->output); }

}  // namespace

TEST_CASE("frames and topologies: group_by(StockCode).sum(Quantity) equals a user keyed operator", "[frame_topology]") {
  temp_dir dir;
  copy_days(dir, days);
  session s(session_config{2, 2});

  latest_rows relational;
  auto by_frame = retail_stream(s, dir).group_by({col("StockCode")}).sum("Quantity").write_stream()
                      .output_mode("update").trigger(available_now()).foreach_batch(relational.sink()).start();
  run_to_end(by_frame);

  latest_rows built;
  topology t(s.context());
  t.source("retail", retail_stream(s, dir)).key_by({"StockCode"}).apply("stock_units", stock_units(retail_stream(s, dir)))
      .sink("units").foreach_batch(built.sink()).output_mode("update");
  auto by_topology = t.start({.name = "units", .trigger = available_now()});
  run_to_end(by_topology);

  const auto expected = units_by_stock(days);
  REQUIRE(expected.size() > 100);
  CHECK(relational.get() == expected);
  CHECK(built.get() == relational.get());
}

TEST_CASE("frames and topologies: a relational union of two directories, aggregated", "[frame_topology]") {
  temp_dir left, right;
  copy_days(left, {days[0], days[1], days[2]});
  copy_days(right, {days[3], days[4], days[5]});
  session s(session_config{2, 2});
  latest_rows out;
  auto both = retail_stream(s, left).union_(retail_stream(s, right));
  auto query = both.group_by({col("StockCode")}).sum("Quantity").write_stream().output_mode("update")
                   .trigger(available_now()).foreach_batch(out.sink()).start();
  run_to_end(query);
  CHECK(out.get() == units_by_stock(days));
}

TEST_CASE("frames and topologies: a keyed operator's output continued as a data frame", "[frame_topology]") {
  temp_dir dir;
  copy_days(dir, days);
  session s(session_config{2, 2});
  topology t(s.context());
  auto rows = retail_stream(s, dir);
  auto units = t.source("retail", rows).key_by({"StockCode"}).apply("stock_units", stock_units(rows));
  // A sink of the topology's own: the frame's query runs only the vertices up to `units`.
  latest_rows never_written;
  units.sink("elsewhere").foreach_batch(never_written.sink()).output_mode("update");

  // stock_units emits each changed key's running total at each epoch's end; the frame sums those
  // totals and counts them per key.
  auto frame = units.as_frame()
                   .where(col("StockCode") < lit("3"))
                   .select({col("StockCode"), col("units")})
                   .group_by({col("StockCode")})
                   .agg({sum(col("units")), count_all()});
  CHECK_THAT(frame.explain(), Catch::Contains("TopologyStream stock_units") && Catch::Contains("Filter") &&
                                  Catch::Contains("stock_units (operators"));
  latest_rows out;
  auto query = frame.write_stream().output_mode("update").trigger(available_now()).foreach_batch(out.sink()).start();
  run_to_end(query);

  // One file per epoch, in name order (the days are in order).
  std::map<std::string, std::int64_t> running;
  table expected;
  for (const auto& day : days) {
    auto rows_of_day = read_day(day);
    std::set<std::string> changed;
    for (std::size_t i = 0; i < rows_of_day.num_rows(); ++i) {
      std::string code(rows_of_day.col("StockCode").str(i));
      running[code] += std::get<std::int64_t>(rows_of_day.at(i, rows_of_day.schema().index_of("Quantity")));
      changed.insert(code);
    }
    for (const auto& code : changed) {
      if (!(code < "3")) continue;
      auto& row = expected[code];
      if (row.empty()) row = {std::int64_t{0}, std::int64_t{0}};
      row[0] = std::get<std::int64_t>(row[0]) + running[code];
      row[1] = std::get<std::int64_t>(row[1]) + 1;
    }
  }
  REQUIRE(expected.size() > 50);
  CHECK(out.get() == expected);
  CHECK(never_written.get().empty());
}

TEST_CASE("frames and topologies: a union feeding two sinks survives one sink's failure", "[frame_topology]") {
  temp_dir left, right;
  copy_days(left, {days[0], days[1], days[2]});
  copy_days(right, {days[3], days[4], days[5]});
  session s(session_config{2, 2});
  topology t(s.context());
  auto left_rows = retail_stream(s, left);
  auto units = t.source("left", left_rows)
                   .union_with(t.source("right", retail_stream(s, right), 1))
                   .key_by({"StockCode"})
                   .apply("stock_units", stock_units(left_rows));
  latest_rows failing, steady;
  failing.fail_in_epoch = 2;  // each source reads one file per epoch: three epochs
  units.sink("failing").foreach_batch(failing.sink()).output_mode("update");
  units.sink("steady").foreach_batch(steady.sink()).output_mode("update");
  auto query = t.start({.name = "two-sinks", .trigger = available_now()});
  run_to_end(query);

  CHECK(failing.fail_in_epoch.load() == -1);  // the failure happened
  const auto expected = units_by_stock(days);
  // Running totals: a lost or replayed-twice epoch would leave a different newest total.
  CHECK(failing.get() == expected);
  CHECK(steady.get() == expected);
  bool restarted = false;
  for (const auto& p : query.recent_progress()) restarted |= json_int(p, "numRestarts").value_or(0) > 0;
  CHECK(restarted);
}
