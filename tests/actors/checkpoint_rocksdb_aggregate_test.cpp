// The data frame's built-in aggregation (group_by().sum()) as a checkpointed query on the RocksDB state
// backend: stopped and resumed, it gives the memory backend's result, and its checkpoint holds directory
// snapshots. Real RocksDB in temp dirs; the sums are computed here.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "flow/session.hpp"
#include "key_sum_files.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using flow::col;
using namespace flow::test;

namespace {

using totals = key_totals;

flow::schema_ptr kv_schema() {
  return flow::make_schema({{"k", flow::type_id::int64, true}, {"v", flow::type_id::int64, true}});
}

// sum(v) by k of the files in input, one file per epoch, into the memory table "sums" (complete mode) on the
// checkpoint, to its end, in a new session (a restarted process) on the given backend.
totals run_query(const fs::path& input, const fs::path& checkpoint, const std::string& backend) {
  flow::session_config config;
  config.state_backend = backend;
  config.state_snapshot_interval = 2;
  flow::session session(config);
  auto query = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
                   .schema(kv_schema()).load(input.string())
                   .group_by({col("k")})
                   .agg({{flow::agg_kind::sum, col("v"), "total"}})
                   .write_stream().format("memory").query_name("sums").output_mode("complete")
                   .option("checkpointLocation", checkpoint.string()).trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());
  const flow::batch table = session.sql("SELECT k, total FROM sums").collect_batch();
  totals sums;
  for (std::size_t r = 0; r < table.num_rows(); ++r)
    sums[std::get<std::int64_t>(table.at(r, 0))] = std::get<std::int64_t>(table.at(r, 1));
  return sums;
}

bool has_snapshot_directory(const fs::path& checkpoint) {
  for (const auto& entry : fs::recursive_directory_iterator(checkpoint / "state")) {
    if (entry.is_directory() && entry.path().extension() == ".d" && fs::exists(entry.path() / "flow-manifest"))
      return true;
  }
  return false;
}

}  // namespace

TEST_CASE("rocksdb checkpoint: a group_by sum stopped and resumed ends with the memory backend's result, and its "
          "snapshots are directories",
          "[checkpoint][rocksdb][aggregate]") {
  std::map<std::string, totals> results;
  for (std::string backend : {"memory", "rocksdb"}) {
    INFO("state backend " << backend);
    temp_dir input, checkpoint;
    totals expected;
    write_key_sum_files(input.path(), 4, 0, 300, 400, expected);
    CHECK(run_query(input.path(), checkpoint.path(), backend) == expected);
    CHECK(has_snapshot_directory(checkpoint.path()) == (backend == "rocksdb"));
    // Files that arrive later are summed on top of the restored state.
    write_key_sum_files(input.path(), 3, 2000, 300, 600, expected);
    results[backend] = run_query(input.path(), checkpoint.path(), backend);
    CHECK(results[backend] == expected);
  }
  CHECK(results["rocksdb"] == results["memory"]);
}
