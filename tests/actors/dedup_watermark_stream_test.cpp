// drop_duplicates_within_watermark through the runtime: the frame's watermark read from the plan, a replayed
// day's rows dropped as late and counted exactly, against a plain count of the same rows.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "flow/session.hpp"
#include "retail_day.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
namespace fs = std::filesystem;

TEST_CASE("drop_duplicates_within_watermark: a replayed day is late, dropped and counted, and the first lines of "
          "each key pass",
          "[actors][dedup]") {
  const std::string backend = GENERATE(as<std::string>{}, "memory", "rocksdb");
  INFO("state backend " << backend);
  flow::session_config config;
  config.state_backend = backend;
  config.parallelism = 2;
  flow::session session(config);
  flow::test::temp_dir dir;
  const auto input = dir / "in";
  fs::create_directories(input);
  const std::vector<std::string> files{"2010-12-01", "2010-12-02", "2010-12-01"};
  for (std::size_t i = 0; i < files.size(); ++i) {
    // Written elsewhere, then moved in: one modification time after the other.
    fs::copy_file(flow::test::shared_data_dir() / "retail-by-day" / (files[i] + ".csv"), dir / "next.csv");
    fs::rename(dir / "next.csv", input / ("part-" + std::to_string(i) + ".csv"));
    std::this_thread::sleep_for(20ms);
  }
  auto query = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
                   .schema(retail::retail_schema()).load((input / "*.csv").string())
                   .with_watermark("InvoiceDate", "1 hour")
                   .drop_duplicates_within_watermark({"InvoiceNo", "StockCode"})
                   .write_stream().format("memory").query_name("unique_lines").output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());

  // The plain count: each day's distinct (InvoiceNo, StockCode) (no invoice spans two days); the replayed
  // day's every row is more than the hour behind the second day's latest invoice.
  std::size_t distinct = 0;
  for (const std::string day : {"2010-12-01", "2010-12-02"}) {
    const flow::batch rows = flow::test::retail_day(day);
    std::set<std::pair<std::string, std::string>> keys;
    for (std::size_t i = 0; i < rows.num_rows(); ++i)
      keys.emplace(rows.col("InvoiceNo").str(i), rows.col("StockCode").str(i));
    distinct += keys.size();
  }
  const std::int64_t replayed = static_cast<std::int64_t>(flow::test::retail_day("2010-12-01").num_rows());
  const flow::batch count = session.sql("SELECT COUNT(*) FROM unique_lines").collect_batch();
  CHECK(std::get<std::int64_t>(count.at(0, 0)) == static_cast<std::int64_t>(distinct));
  std::int64_t dropped = 0;
  for (const auto& report : query.recent_progress())
    dropped += flow::test::json_int(report, "numRowsDroppedByWatermark").value_or(0);
  CHECK(dropped == replayed);
}
