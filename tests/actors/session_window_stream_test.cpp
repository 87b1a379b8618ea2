// Session windows through the actor runtime: retail sessions per customer in append mode over three days,
// one file per epoch, stopped after two days and continued from the checkpoint (memory and RocksDB state),
// then a file of old invoices that the watermark drops and counts; against a plain loop over the same rows.
// The progress's state figures count sessions, not keys.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "flow/session.hpp"
#include "flow/session_window.hpp"
#include "retail_day.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t minute = 60'000'000;

// (CustomerID, start, end, rows, quantity)
using retail_session = std::tuple<double, std::int64_t, std::int64_t, std::int64_t, std::int64_t>;

struct collected {
  std::mutex mutex;
  std::vector<retail_session> sessions;
};

// Sessions (30-minute gap, 1-hour watermark) of the files in input, one per epoch, appended to out; returns
// the query's progress reports.
std::vector<std::string> run_sessions(const fs::path& input, const fs::path& checkpoint, const std::string& backend,
                                      const std::shared_ptr<collected>& out) {
  flow::session_config config;
  config.state_backend = backend;
  config.parallelism = 2;
  flow::session session(config);
  auto query = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
                   .schema(retail::retail_schema()).load((input / "*.csv").string())
                   .where(col("CustomerID") > flow::lit(0.0))
                   .with_watermark("InvoiceDate", "1 hour")
                   .group_by({col("CustomerID"), flow::session_window(col("InvoiceDate"), "30 minutes")})
                   .agg({{flow::agg_kind::count, flow::expr{}, "rows"}, {flow::agg_kind::sum, col("Quantity"), "quantity"}})
                   .write_stream().output_mode("append").option("checkpointLocation", checkpoint.string())
                   .trigger(flow::available_now())
                   .foreach_batch([out](const flow::batch& rows, std::int64_t) {
                     std::lock_guard<std::mutex> lock(out->mutex);
                     const auto& windows = rows.col("session_window");
                     for (std::size_t i = 0; i < rows.num_rows(); ++i)
                       out->sessions.emplace_back(rows.col("CustomerID").doubles()[i], windows.ints()[i],
                                                  windows.ends()[i], rows.col("rows").ints()[i],
                                                  rows.col("quantity").ints()[i]);
                   })
                   .start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());
  return query.recent_progress();
}

std::int64_t total_of(const std::vector<std::string>& reports, const std::string& figure) {
  std::int64_t total = 0;
  for (const auto& report : reports) total += flow::test::json_int(report, figure).value_or(0);
  return total;
}

}  // namespace

TEST_CASE("session windows: retail sessions per customer in append mode across a checkpoint restart equal a plain "
          "loop, and late invoices are dropped and counted",
          "[actors][session_window]") {
  const std::string backend = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO("state backend " << backend);
  flow::test::temp_dir dir;
  const auto input = dir / "in", checkpoint = dir / "checkpoint";
  fs::create_directories(input);
  const std::vector<std::string> days{"2010-12-01", "2010-12-02", "2010-12-03"};
  auto copy_day = [&](const std::string& day, const std::string& as) {
    // Written elsewhere, then moved in: files appear atomically, one modification time after the other.
    fs::copy_file(flow::test::shared_data_dir() / "retail-by-day" / (day + ".csv"), dir / "next.csv");
    fs::rename(dir / "next.csv", input / (as + ".csv"));
    std::this_thread::sleep_for(20ms);
  };
  auto out = std::make_shared<collected>();
  copy_day(days[0], days[0]);
  copy_day(days[1], days[1]);
  auto progress = run_sessions(input, checkpoint, backend, out);
  copy_day(days[2], days[2]);
  copy_day(days[0], "2010-12-04-replayed");  // old invoices: every row is behind the watermark
  const auto continued = run_sessions(input, checkpoint, backend, out);
  progress.insert(progress.end(), continued.begin(), continued.end());

  // The plain loop: the days' rows with a customer, in time order per customer, swept into sessions; those
  // the final watermark (the latest invoice minus the hour) closed were emitted.
  std::map<double, std::vector<std::pair<std::int64_t, std::int64_t>>> rows_of;  // customer: (time, quantity)
  std::int64_t latest = INT64_MIN;
  for (const auto& day : days) {
    const flow::batch rows = flow::test::retail_day(day);
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      if (!rows.col("CustomerID").valid(i)) continue;
      const std::int64_t t = rows.col("InvoiceDate").ints()[i];
      rows_of[rows.col("CustomerID").doubles()[i]].emplace_back(t, rows.col("Quantity").ints()[i]);
      latest = std::max(latest, t);
    }
  }
  const std::int64_t gap = 30 * minute, final_watermark = latest - 60 * minute;
  std::vector<retail_session> expected;
  for (auto& [customer, rows] : rows_of) {
    std::sort(rows.begin(), rows.end());
    for (std::size_t first = 0; first < rows.size();) {
      retail_session s{customer, rows[first].first, rows[first].first + gap, 0, 0};
      std::size_t next = first;
      for (; next < rows.size() && rows[next].first <= std::get<2>(s); ++next) {
        std::get<2>(s) = std::max(std::get<2>(s), rows[next].first + gap);
        ++std::get<3>(s);
        std::get<4>(s) += rows[next].second;
      }
      if (std::get<2>(s) <= final_watermark) expected.push_back(s);
      first = next;
    }
  }
  const flow::batch replayed = flow::test::retail_day(days[0]);
  std::int64_t late = 0;
  for (std::size_t i = 0; i < replayed.num_rows(); ++i) late += replayed.col("CustomerID").valid(i) ? 1 : 0;

  std::sort(expected.begin(), expected.end());
  std::sort(out->sessions.begin(), out->sessions.end());
  CHECK(expected.size() > 100);
  CHECK(out->sessions == expected);
  CHECK(total_of(progress, "numRowsDroppedByWatermark") == late);
}

TEST_CASE("session windows: the progress's numRowsTotal counts the sessions in the state, numRowsUpdated those "
          "the epoch created, grew or merged and numRowsRemoved those it evicted, not the keys",
          "[actors][session_window]") {
  flow::test::temp_dir dir;
  const auto input = dir / "in";
  fs::create_directories(input);
  constexpr std::int64_t start = 1577836800LL * 1'000'000;  // 2020-01-01 00:00
  // One file per epoch of (user, minutes after start), their modification times in order.
  auto write_epoch = [&](int epoch, const std::vector<std::pair<std::string, std::int64_t>>& rows) {
    const auto file = input / ("part-" + std::to_string(epoch) + ".csv");
    std::ofstream out(file);
    out << "user,t\n";
    for (const auto& [user, minutes] : rows)
      out << user << "," << flow::format_timestamp(flow::timestamp{start + minutes * minute}) << "\n";
    out.close();
    fs::last_write_time(file, fs::file_time_type::clock::now() - std::chrono::minutes(10 - epoch));
  };
  // Epoch 0: a's sessions [0, 10) and [60, 70), b's [0, 10). Epoch 1 (watermark 0:00): a's second session
  // grows to [60, 75), a third opens at [180, 190). Epoch 2, without data (watermark 2:00): every session but
  // a's third is evicted: three sessions, of which only b's leaves its key without sessions.
  write_epoch(0, {{"a", 0}, {"a", 60}, {"b", 0}});
  write_epoch(1, {{"a", 65}, {"a", 180}});
  flow::session_config config;
  config.parallelism = 2;
  flow::session session(config);
  auto query = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
                   .schema(flow::make_schema({{"user", flow::type_id::string, true},
                                              {"t", flow::type_id::timestamp, true}}))
                   .load(input.string())
                   .with_watermark("t", "1 hour")
                   .group_by({col("user"), flow::session_window(col("t"), "10 minutes")})
                   .count()
                   .write_stream().format("memory").query_name("sessions").output_mode("update")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  using counts = std::tuple<std::int64_t, std::int64_t, std::int64_t>;  // (numRowsTotal, numRowsUpdated, numRowsRemoved)
  std::map<std::int64_t, counts> figures;                                 // by epoch
  for (const auto& report : query.recent_progress()) {
    const auto epoch = flow::test::json_int(report, "batchId");
    const auto total = flow::test::json_int(report, "numRowsTotal");
    if (epoch && total)
      figures[*epoch] = {*total, flow::test::json_int(report, "numRowsUpdated").value_or(-1),
                         flow::test::json_int(report, "numRowsRemoved").value_or(-1)};
  }
  CHECK(figures == std::map<std::int64_t, counts>{{0, {3, 3, 0}}, {1, {4, 2, 0}}, {2, {1, 0, 3}}});
}
