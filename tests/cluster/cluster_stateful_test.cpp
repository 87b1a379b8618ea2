// Stateful queries on a driver and two workers against the embedded run: session windows
// and a stream-stream join run on the workers (their operators ship by descriptor); map_groups_with_state,
// whose function is C++ code in the driver's query, runs in the driver and says so.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <vector>

#include "cluster_support.hpp"
#include "flow/group_state.hpp"
#include "flow/session_window.hpp"
#include "retail_day.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using stateful_query = std::function<data_frame(session&)>;

// The query's result table, sorted, run to the end in a session of config at parallelism 2 (a memory sink,
// which ships: a foreachBatch function would keep the query in the driver).
std::vector<std::vector<value>> run_to_end(session_config config, const stateful_query& query, const std::string& mode) {
  config.parallelism = 2;
  session s(config);
  auto running = query(s).write_stream().format("memory").query_name("result").output_mode(mode)
                     .trigger(available_now()).start();
  REQUIRE(running.await_termination(120s));
  REQUIRE_FALSE(running.exception());
  auto rows = sorted_rows(s.sql("SELECT * FROM result").collect_batch());
  std::sort(rows.begin(), rows.end());
  return rows;
}

data_frame retail_stream(session& s, const fs::path& data) {
  return s.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
      .schema(retail::retail_schema()).load(data.string());
}

// The query's result on two workers equals the embedded run's; returns the rows each worker processed.
std::pair<std::int64_t, std::int64_t> check_on_two_workers(const temp_dir& dir, const stateful_query& query,
                                                           const std::string& mode, std::size_t least_rows) {
  const auto embedded = run_to_end(session_config{}, query, mode);
  REQUIRE(embedded.size() >= least_rows);
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process a(dir, secret), b(dir, secret);
  CHECK(run_to_end(driver_config({a.address, b.address}, secret), query, mode) == embedded);
  return {last_figures(a).rows, last_figures(b).rows};
}

}  // namespace

TEST_CASE("session windows on a driver and two workers: the embedded run's sessions",
          "[cluster][stateful][session_window]") {
  temp_dir dir;
  const auto data = retail_days(dir, 4);
  const auto [first, second] = check_on_two_workers(dir, [&](session& s) {
    return retail_stream(s, data)
        .where(col("CustomerID") > lit(0.0))
        .with_watermark("InvoiceDate", "1 hour")
        .group_by({col("CustomerID"), session_window(col("InvoiceDate"), "30 minutes")})
        .agg({{agg_kind::count, expr{}, "rows"}, {agg_kind::sum, col("Quantity"), "quantity"}});
  }, "append", 100);
  CHECK(first > 0);
  CHECK(second > 0);
}

TEST_CASE("a stream-stream join on a driver and two workers: the embedded run's pairs",
          "[cluster][stateful][stream-join]") {
  temp_dir dir;
  const auto data = retail_days(dir, 3);
  const auto [first, second] = check_on_two_workers(dir, [&](session& s) {
    auto lines = retail_stream(s, data).select({col("InvoiceNo"), col("StockCode"), col("Quantity"), col("InvoiceDate")})
                     .with_watermark("InvoiceDate", "10 minutes");
    auto again = retail_stream(s, data)
                     .select({col("InvoiceNo").as("OtherInvoice"), col("StockCode").as("OtherCode"),
                              col("InvoiceDate").as("OtherDate")})
                     .with_watermark("OtherDate", "10 minutes");
    return lines.join(again,
                      (col("InvoiceNo") == col("OtherInvoice")) && (col("StockCode") == col("OtherCode")) &&
                          (col("OtherDate") >= col("InvoiceDate")) && (col("OtherDate") <= col("InvoiceDate") + lit("1 hour")),
                      "inner");
  }, "append", 1000);
  CHECK(first > 0);
  CHECK(second > 0);
}

// The function is C++ code of the driver's program without a registered name: the graph cannot be shipped
// and the whole query runs in the driver (docs/deployment.md, What runs where).
TEST_CASE("map_groups_with_state on a cluster runs in the driver with the embedded result",
          "[cluster][stateful][group_state]") {
  temp_dir dir;
  const auto data = retail_days(dir, 3);
  const auto [first, second] = check_on_two_workers(dir, [&](session& s) {
    return retail_stream(s, data).group_by_key({"CustomerID"}).map_groups_with_state(
        [](const group_key& key, const batch& group, group_state<state_row>& state) {
          std::int64_t units = state.exists() ? std::get<std::int64_t>(state.get()[0]) : 0;
          const column& quantity = group.col("Quantity");
          for (std::size_t r = 0; r < group.num_rows(); ++r) units += quantity.valid(r) ? quantity.ints()[r] : 0;
          state.update({units});
          return state_row{key[0], units};
        },
        {.state = {{"units", type_id::int64}}, .output = {{"CustomerID", type_id::float64}, {"units", type_id::int64}}});
  }, "update", 100);
  CHECK(first == 0);
  CHECK(second == 0);
}
