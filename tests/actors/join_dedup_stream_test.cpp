// Stream-static joins, deduplication and global aggregation through the actor runtime, over the retail
// days, each against an independent computation of the same answer: SQLite over the same rows (the memory
// sink's tables) or a plain loop.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
namespace fs = std::filesystem;

namespace {

flow::session_config two_instances() {
  flow::session_config config;
  config.parallelism = 2;
  // A day's file is one unit, decoded in one instance: its rows reach the next vertex in file order.
  config.max_unit_bytes = 1 << 20;
  return config;
}

void copy_day(const fs::path& dir, const std::string& day, const std::string& as = {}) {
  fs::copy_file(flow::test::shared_data_dir() / "retail-by-day" / (day + ".csv"), dir / ((as.empty() ? day : as) + ".csv"));
}

flow::schema_ptr retail_schema(flow::session& session) {
  auto day = (flow::test::shared_data_dir() / "retail-by-day" / "2010-12-01.csv").string();
  return std::make_shared<const flow::schema>(
      session.read().format("csv").option("header", true).option("inferSchema", true).load(day).schema());
}

flow::data_frame retail_stream(flow::session& session, const fs::path& dir) {
  return session.read_stream().format("csv").option("header", true).schema(retail_schema(session))
      .option("maxFilesPerTrigger", 1).load((dir / "*.csv").string());
}

// Streams frame into memory table `table` (available-now) and waits for the end.
void stream_into(const flow::data_frame& frame, const std::string& table, const std::string& mode = "append",
                 const std::string& checkpoint = {}) {
  auto writer = frame.write_stream().format("memory").query_name(table).output_mode(mode).trigger(flow::available_now());
  if (!checkpoint.empty()) writer.option("checkpointLocation", checkpoint);
  auto query = writer.start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());
}

// Backquoted names joined by ", ", each after prefix.
std::string column_list(const flow::schema& s, const std::string& prefix = {}) {
  std::string list;
  for (const auto& f : s.fields()) list += (list.empty() ? "" : ", ") + prefix + "`" + f.name + "`";
  return list;
}

std::vector<std::vector<flow::value>> sql_rows(flow::session& session, const std::string& query) {
  INFO(query);
  return flow::test::sorted_rows(session.sql(query).collect_batch());
}

}  // namespace

TEST_CASE("stream-static join: every join type over retail rows equals SQLite's join, null keys included",
          "[actors][join]") {
  flow::session session(two_instances());
  flow::test::temp_dir dir;
  const auto days = dir / "days", tables = dir / "tables";
  fs::create_directories(days);
  fs::create_directories(tables);
  copy_day(days, "2010-12-01");
  copy_day(days, "2010-12-02");
  // Some countries and customers of the days, one of neither, and a row with a null key, which matches nothing
  // (the stream has rows without a CustomerID too).
  flow::test::write_file(tables / "countries.csv",
                         "Country,Region\nUnited Kingdom,British Isles\nEIRE,British Isles\nFrance,Western Europe\n"
                         "Germany,Western Europe\nGermany,Central Europe\nAtlantis,Nowhere\n,Unknown\n");
  flow::test::write_file(tables / "customers.csv",
                         "CustomerID,Segment\n17850.0,gold\n13047.0,silver\n12583.0,silver\n15311.0,bronze\n"
                         "99999.0,lost\n,anonymous\n");
  stream_into(retail_stream(session, days), "retail");
  for (const std::string table : {"countries", "customers"}) {
    const auto path = (tables / (table + ".csv")).string();
    const auto rows = session.read().format("csv").option("header", true).option("inferSchema", true).load(path);
    stream_into(session.read_stream().format("csv").option("header", true).schema(rows.schema()).load(path), table);
    const std::string key = table == "countries" ? "Country" : "CustomerID";
    for (const std::string type : {"inner", "left_outer", "left_semi", "left_anti"}) {
      INFO(table << " " << type);
      const auto joined = retail_stream(session, days).join(rows, {key}, type);
      const std::string result = table + "_" + type;
      stream_into(joined, result);
      // The expected rows, in the join's column order: the key, retail's other columns, the table's.
      std::string columns = "r.`" + key + "`";
      const auto retail = retail_schema(session);
      for (const auto& f : retail->fields())
        if (f.name != key) columns += ", r.`" + f.name + "`";
      const std::string other = table == "countries" ? "t.`Region`" : "t.`Segment`";
      const std::string on = "t.`" + key + "` = r.`" + key + "`";
      std::string expected;
      if (type == "inner") expected = "SELECT " + columns + ", " + other + " FROM retail r JOIN " + table + " t ON " + on;
      if (type == "left_outer")
        expected = "SELECT " + columns + ", " + other + " FROM retail r LEFT JOIN " + table + " t ON " + on;
      if (type == "left_semi")
        expected = "SELECT " + columns + " FROM retail r WHERE EXISTS (SELECT 1 FROM " + table + " t WHERE " + on + ")";
      if (type == "left_anti")
        expected = "SELECT " + columns + " FROM retail r WHERE NOT EXISTS (SELECT 1 FROM " + table + " t WHERE " + on + ")";
      const auto actual = sql_rows(session, "SELECT " + column_list(joined.schema()) + " FROM " + result);
      CHECK(actual.size() > 0);
      CHECK(actual == sql_rows(session, expected));
    }
  }
}

TEST_CASE("stream-static join on a condition: every join type over retail rows equals SQLite's join",
          "[actors][join]") {
  flow::session session(two_instances());
  flow::test::temp_dir dir;
  const auto days = dir / "days", tables = dir / "tables";
  fs::create_directories(days);
  fs::create_directories(tables);
  copy_day(days, "2010-12-01");
  // A sale matches the rows of its country whose MinQuantity its Quantity exceeds.
  flow::test::write_file(tables / "bulk.csv",
                         "CountryName,MinQuantity\nUnited Kingdom,20\nUnited Kingdom,100\nFrance,10\nNorway,0\n,0\n");
  stream_into(retail_stream(session, days), "retail");
  const auto path = (tables / "bulk.csv").string();
  const auto bulk = session.read().format("csv").option("header", true).option("inferSchema", true).load(path);
  stream_into(session.read_stream().format("csv").option("header", true).schema(bulk.schema()).load(path), "bulk");
  const auto condition = (col("Country") == col("CountryName")) && (col("Quantity") > col("MinQuantity"));
  const std::string on = "t.CountryName = r.Country AND r.Quantity > t.MinQuantity";
  const std::string columns = column_list(*retail_schema(session), "r.");
  for (const std::string type : {"inner", "left_outer", "left_semi", "left_anti"}) {
    INFO(type);
    const auto joined = retail_stream(session, days).join(bulk, condition, type);
    stream_into(joined, "bulk_" + type);
    std::string expected;
    if (type == "inner") expected = "SELECT " + columns + ", t.* FROM retail r JOIN bulk t ON " + on;
    if (type == "left_outer") expected = "SELECT " + columns + ", t.* FROM retail r LEFT JOIN bulk t ON " + on;
    if (type == "left_semi") expected = "SELECT " + columns + " FROM retail r WHERE EXISTS (SELECT 1 FROM bulk t WHERE " + on + ")";
    if (type == "left_anti")
      expected = "SELECT " + columns + " FROM retail r WHERE NOT EXISTS (SELECT 1 FROM bulk t WHERE " + on + ")";
    const auto actual = sql_rows(session, "SELECT " + column_list(joined.schema()) + " FROM bulk_" + type);
    CHECK(actual.size() > 0);
    CHECK(actual == sql_rows(session, expected));
  }
}

TEST_CASE("stream-static join: Spark's refusals for a streaming left side", "[actors][join]") {
  flow::session session(two_instances());
  flow::test::temp_dir dir;
  copy_day(dir.path(), "2010-12-01");
  const auto stream = retail_stream(session, dir.path());
  const auto table = session.read().format("csv").option("header", true).option("inferSchema", true)
                         .load((dir / "2010-12-01.csv").string());
  CHECK_THAT(flow::test::error_of([&] { stream.join(table, {"Country"}, "right_outer"); }),
             Catch::Contains("RightOuter join with a streaming DataFrame/Dataset on the left and a static "
                             "DataFrame/DataSet on the right not supported"));
  CHECK_THAT(flow::test::error_of([&] { stream.join(table, {"Country"}, "full"); }),
             Catch::Contains("FullOuter joins with streaming DataFrames/Datasets on the left"));
  CHECK_THAT(flow::test::error_of([&] { table.join(stream, {"Country"}); }),
             Catch::Contains("a static data frame on the left joined with a streaming one on the right is not supported"));
  CHECK_THAT(flow::test::error_of([&] { stream.join(table, {"Region"}); }),
             Catch::Contains("key column 'Region' is not a column of the left (stream) side"));
}

TEST_CASE("drop_duplicates of (InvoiceNo, StockCode) keeps each key's first row, across epochs and a restart",
          "[actors][dedup]") {
  for (const std::string backend : {"memory", "rocksdb"}) {
    INFO(backend);
    flow::session session(two_instances());
    flow::test::temp_dir dir;
    const auto days = dir / "days";
    const auto checkpoint = (dir / "checkpoint").string();
    fs::create_directories(days);
    auto deduplicated = [&] {
      return retail_stream(session, days).drop_duplicates({"InvoiceNo", "StockCode"});
    };
    auto run = [&](const std::string& table) {
      auto query = deduplicated().write_stream().format("memory").query_name(table).output_mode("append")
                       .option("checkpointLocation", checkpoint).option("stateStore.backend", backend)
                       .trigger(flow::available_now()).start();
      REQUIRE(query.await_termination(120s));
      REQUIRE_FALSE(query.exception());
    };
    copy_day(days, "2010-12-01");
    run("first_run");
    // After the restart: the same day again (every key seen before the restart) and a new one.
    copy_day(days, "2010-12-01", "2010-12-01-again");
    copy_day(days, "2010-12-02");
    run("second_run");
    stream_into(retail_stream(session, days), "retail");

    const std::string columns = column_list(*retail_schema(session));
    const auto actual = sql_rows(session, "SELECT " + columns + " FROM first_run UNION ALL SELECT " + columns +
                                              " FROM second_run");
    // SQLite's first row of each key, in the order the rows were read (the rowid of the raw table).
    const auto expected = sql_rows(session, "SELECT " + columns + " FROM retail WHERE rowid IN (SELECT MIN(rowid) FROM "
                                                                  "retail GROUP BY InvoiceNo, StockCode)");
    CHECK(expected.size() == 3009 + 2047);
    CHECK(actual == expected);
    // The repeated day gave nothing after the restart: its keys came back from the checkpoint. (Timestamps are
    // microseconds in SQLite; 1291248000 s is 2010-12-02 00:00 UTC.)
    CHECK(sql_rows(session, "SELECT COUNT(*) FROM second_run WHERE InvoiceDate < 1291248000000000") ==
          std::vector<std::vector<flow::value>>{{std::int64_t{0}}});
  }
}

TEST_CASE("global aggregation (agg on the whole stream) equals a loop over the rows, complete and update",
          "[actors][aggregate]") {
  flow::session session(two_instances());
  flow::test::temp_dir dir;
  copy_day(dir.path(), "2010-12-01");
  copy_day(dir.path(), "2010-12-02");
  const std::vector<flow::agg_spec> aggs{flow::count_all(), flow::sum(col("Quantity")), flow::max(col("UnitPrice"))};
  stream_into(retail_stream(session, dir.path()).agg(aggs), "totals", "complete");
  stream_into(retail_stream(session, dir.path()).group_by({}).agg(aggs), "running_totals", "update");

  // The loop: count, sum and max per day, over the rows read as a static frame.
  std::vector<std::vector<flow::value>> per_day_running;
  std::int64_t rows = 0, quantity = 0;
  double max_price = 0;
  for (const std::string day : {"2010-12-01", "2010-12-02"}) {
    const auto frame = session.read().format("csv").option("header", true).schema(retail_schema(session))
                           .load((dir / (day + ".csv")).string());
    for (const auto& b : frame.collect()) {
      for (std::size_t i = 0; i < b.num_rows(); ++i) {
        ++rows;
        quantity += b.col("Quantity").ints()[i];
        max_price = std::max(max_price, b.col("UnitPrice").doubles()[i]);
      }
    }
    per_day_running.push_back({rows, quantity, max_price});
  }
  const auto totals = session.sql("SELECT * FROM totals").collect_batch();
  CHECK(totals.schema().to_string() == "count(1): int64, sum(Quantity): int64, max(UnitPrice): float64");
  CHECK(flow::test::sorted_rows(totals) == std::vector<std::vector<flow::value>>{per_day_running.back()});
  // Update mode: the one group after each epoch.
  CHECK(sql_rows(session, "SELECT * FROM running_totals") == per_day_running);
  // A static frame aggregates the same way.
  const auto all = session.read().format("csv").option("header", true).schema(retail_schema(session))
                       .load((dir / "*.csv").string());
  CHECK(flow::test::sorted_rows(all.agg(aggs).collect_batch()) == std::vector<std::vector<flow::value>>{per_day_running.back()});
}
