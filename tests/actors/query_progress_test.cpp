// A running query's progress reports: one per committed epoch, in batchId order, and idle reports
// (Spark's noDataProgressEventInterval) only between epochs.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using namespace flow::test;

namespace {

flow::data_frame id_stream(flow::session& session, const std::filesystem::path& dir) {
  return session.read_stream().format("csv").option("header", true)
      .schema(flow::make_schema({{"id", flow::type_id::int64, true}})).load(dir.string());
}

std::string ids_csv(int first, int count) {
  std::string text = "id\n";
  for (int i = first; i < first + count; ++i) text += std::to_string(i) + "\n";
  return text;
}

}  // namespace

TEST_CASE("an idle report never precedes the report of an epoch still running", "[actors][progress]") {
  temp_dir dir;
  std::filesystem::create_directories(dir / "in");
  write_file(dir / "in" / "a.csv", ids_csv(0, 100));
  flow::session_config config;
  config.threads = 2;
  config.no_data_progress_interval = 50ms;
  flow::session session(config);
  // The epoch is slow, so the next plan (pipelined) finds nothing new while it runs.
  auto query = id_stream(session, dir / "in").write_stream()
                   .foreach_batch([](const flow::batch&, std::int64_t) { std::this_thread::sleep_for(200ms); })
                   .start();
  query.process_all_available();
  REQUIRE(eventually([&] { return query.recent_progress().size() >= 2; }, 5s));
  // Data again after idle reports: its epoch is the batchId the idle reports announced.
  write_file(dir / "b.csv", ids_csv(100, 30));
  std::filesystem::rename(dir / "b.csv", dir / "in" / "b.csv");
  REQUIRE(eventually([&] { return json_int(query.last_progress().value_or(""), "numInputRows") == 30; }, 5s));
  auto reports = query.recent_progress();
  query.stop();

  std::int64_t previous = -1;
  std::vector<std::int64_t> epochs_with_rows;
  for (const auto& report : reports) {
    INFO(report);
    auto batch_id = json_int(report, "batchId").value_or(-1);
    auto rows = json_int(report, "numInputRows").value_or(-1);
    CHECK(batch_id >= previous);  // idle reports repeat the next epoch's number, never go back
    if (rows == 0) CHECK(batch_id == previous + 1);
    if (rows > 0) epochs_with_rows.push_back(batch_id);
    previous = rows > 0 ? batch_id : batch_id - 1;
  }
  CHECK(json_int(reports.front(), "batchId") == 0);
  CHECK(json_int(reports.front(), "numInputRows") == 100);
  CHECK(epochs_with_rows == std::vector<std::int64_t>{0, 1});
}
