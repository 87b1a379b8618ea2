// End-to-end: the retail query through the actor runtime, against the reference result.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
namespace fs = std::filesystem;

namespace {

using result_map = std::map<std::pair<std::string, std::string>, double>;  // (customer, window start) -> sum

result_map load_expected() {
  std::istringstream in(flow::test::read_file(flow::test::shared_data_dir() / "expected" / "result_2010-12-01.csv"));
  std::string line;
  std::getline(in, line);  // header
  result_map expected;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    REQUIRE(f.size() == 6);
    expected[{f[0], f[1]}] = std::stod(f[4]);
  }
  return expected;
}

result_map to_map(const flow::batch& table) {
  result_map out;
  const auto& customer = table.col("CustomerID");
  const auto& window = table.col("window");
  const auto& total = table.col("sum(total_cost)");
  for (std::size_t i = 0; i < table.num_rows(); ++i) {
    std::string who = customer.valid(i) ? flow::to_string(customer.at(i)) : "";
    auto key = std::make_pair(who, flow::format_timestamp(window.window(i).start));
    REQUIRE(out.count(key) == 0);
    out[key] = total.doubles()[i];
  }
  return out;
}

void require_same(const result_map& actual, const result_map& expected) {
  REQUIRE(actual.size() == expected.size());
  for (const auto& [key, sum] : expected) {
    INFO("customer '" << key.first << "' window " << key.second);
    REQUIRE(actual.count(key) == 1);
    CHECK(std::round(actual.at(key) * 100) == std::round(sum * 100));
  }
}

flow::schema_ptr retail_schema(flow::session& session) {
  auto day = (flow::test::shared_data_dir() / "retail-by-day" / "2010-12-01.csv").string();
  return std::make_shared<const flow::schema>(
      session.read().format("csv").option("header", true).option("inferSchema", true).load(day).schema());
}

flow::data_frame per_customer_hour(const flow::data_frame& sales) {
  return sales.select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"), col("InvoiceDate")})
      .group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")})
      .sum("total_cost");
}

void copy_days(const fs::path& to, const std::vector<std::string>& days) {
  for (const auto& d : days)
    fs::copy_file(flow::test::shared_data_dir() / "retail-by-day" / (d + ".csv"), to / (d + ".csv"));
}

// Streams the reference day, one file per epoch and available-now, into memory table `table` (complete
// mode), as the example does, and waits for the query to end.
flow::streaming_query stream_reference_day(flow::session& session, const std::string& table) {
  flow::test::temp_dir dir;
  copy_days(dir.path(), {"2010-12-01"});
  auto sales = session.read_stream().format("csv").option("header", true).schema(retail_schema(session))
                   .option("maxFilesPerTrigger", 1).load((dir.path() / "*.csv").string());
  auto query = per_customer_hour(sales).write_stream().format("memory").query_name(table)
                   .output_mode("complete").trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  return query;
}

result_map only_day(const result_map& all, const std::string& day) {
  result_map out;
  for (const auto& [key, v] : all)
    if (key.second.rfind(day, 0) == 0) out[key] = v;
  return out;
}

}  // namespace

TEST_CASE("the retail stream over 2010-12-01 matches the reference result", "[actors][retail]") {
  flow::session session;
  auto query = stream_reference_day(session, "compras_por_hora");
  auto table = session.sql("SELECT * FROM compras_por_hora ORDER BY `sum(total_cost)` DESC").collect_batch();
  require_same(to_map(table), load_expected());
  // The verbatim query orders by the sum, largest first.
  CHECK(table.col("sum(total_cost)").doubles()[0] >= table.col("sum(total_cost)").doubles()[1]);

  auto progress = query.last_progress();
  REQUIRE(progress);
  CHECK(progress->find("\"batchId\":0") != std::string::npos);
  CHECK(progress->find("\"numInputRows\":3108") != std::string::npos);
  for (const char* name : {"inputRowsPerSecond", "processedRowsPerSecond", "durationMs", "startOffset", "endOffset",
                           "stateOperators", "numRowsTotal", "\"id\"", "\"runId\""})
    CHECK(progress->find(name) != std::string::npos);
}

TEST_CASE("a session from command-line flags with polling or sleeping or blocking idle workers gives the reference result",
          "[actors][retail]") {
  std::string program = "app", threads = "--flow.threads=2", other = "--data";
  for (std::string idle : {"--flow.idle-workers=poll", "--flow.idle-workers=sleep", "--flow.idle-workers=block"}) {
    INFO(idle);
    char* argv[] = {program.data(), threads.data(), idle.data(), other.data()};
    flow::session session(4, argv);
    stream_reference_day(session, "per_hour");
    require_same(to_map(session.sql("SELECT * FROM per_hour").collect_batch()), load_expected());
  }

  std::string bad = "--flow.idle-workers=nap";
  char* bad_argv[] = {program.data(), bad.data()};
  CHECK_THROWS_WITH(flow::session(2, bad_argv),
                    Catch::Contains("invalid value 'nap' for --flow.idle-workers: expected poll, sleep or block"));
}

TEST_CASE("a multi-day stream, one file per epoch, equals the static result and the reference day",
          "[actors][retail]") {
  flow::session session;
  flow::test::temp_dir dir;
  copy_days(dir.path(), {"2010-12-01", "2010-12-02", "2010-12-03", "2010-12-05"});
  auto schema = retail_schema(session);
  auto glob = (dir.path() / "*.csv").string();
  auto query = per_customer_hour(session.read_stream().format("csv").option("header", true).schema(schema)
                                     .option("maxFilesPerTrigger", 1).load(glob))
                   .write_stream().format("memory").query_name("per_hour").output_mode("complete")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  CHECK(query.recent_progress().size() == 4);
  auto streamed = to_map(session.sql("SELECT * FROM per_hour").collect_batch());

  auto static_result = per_customer_hour(session.read().format("csv").option("header", true).schema(schema).load(glob))
                           .collect_batch();
  auto batch_map = to_map(static_result);
  REQUIRE(streamed.size() == batch_map.size());
  for (const auto& [key, v] : batch_map) CHECK(std::round(streamed.at(key) * 100) == std::round(v * 100));
  require_same(only_day(streamed, "2010-12-01"), load_expected());
}

TEST_CASE("process_all_available returns only after every pipelined epoch has committed", "[actors][retail]") {
  flow::session session;
  flow::test::temp_dir dir;
  const std::vector<std::string> days{"2010-12-01", "2010-12-02", "2010-12-03", "2010-12-05",
                                      "2010-12-06", "2010-12-07", "2010-12-08", "2010-12-09"};
  copy_days(dir.path(), days);
  auto schema = retail_schema(session);
  auto glob = (dir.path() / "*.csv").string();
  auto query = per_customer_hour(session.read_stream().format("csv").option("header", true).schema(schema)
                                     .option("maxFilesPerTrigger", 1).load(glob))
                   .write_stream().format("memory").query_name("all_days").output_mode("complete").start();
  query.process_all_available();
  // No waiting here: the last epoch's progress and table must already be there.
  CHECK(query.recent_progress().size() == days.size());
  auto streamed = to_map(session.sql("SELECT * FROM all_days").collect_batch());
  auto expected = to_map(per_customer_hour(session.read().format("csv").option("header", true).schema(schema)
                                               .load(glob)).collect_batch());
  CHECK(streamed.size() == expected.size());
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("update mode emits only changed groups and the memory table upserts them", "[actors]") {
  flow::session session;
  flow::test::temp_dir dir;
  copy_days(dir.path(), {"2010-12-01", "2010-12-02"});
  auto query = per_customer_hour(session.read_stream().format("csv").option("header", true)
                                     .schema(retail_schema(session)).option("maxFilesPerTrigger", 1)
                                     .load((dir.path() / "*.csv").string()))
                   .write_stream().format("memory").query_name("updates").output_mode("update")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  auto table = to_map(session.sql("SELECT * FROM updates").collect_batch());
  require_same(only_day(table, "2010-12-01"), load_expected());
  CHECK(only_day(table, "2010-12-02").size() > 0);
}

TEST_CASE("a file moved into the directory while the query runs is picked up", "[actors][files]") {
  flow::session session;
  flow::test::temp_dir dir;
  fs::create_directory(dir.path() / "in");
  copy_days(dir.path() / "in", {"2010-12-01"});
  auto query = per_customer_hour(session.read_stream().format("csv").option("header", true)
                                     .schema(retail_schema(session)).load((dir.path() / "in").string()))
                   .write_stream().format("memory").query_name("moving").output_mode("complete")
                   .trigger(flow::processing_time(50ms)).start();
  query.process_all_available();
  auto first = to_map(session.sql("SELECT * FROM moving").collect_batch());
  require_same(first, load_expected());

  copy_days(dir.path(), {"2010-12-02"});  // written outside, then moved in atomically
  fs::rename(dir.path() / "2010-12-02.csv", dir.path() / "in" / "2010-12-02.csv");
  query.process_all_available();
  auto second = to_map(session.sql("SELECT * FROM moving").collect_batch());
  CHECK(second.size() > first.size());
  require_same(only_day(second, "2010-12-01"), load_expected());
  query.stop();
  CHECK_FALSE(query.is_active());
  CHECK(query.status().message == "Stopped");
}

TEST_CASE("a stage that throws on one epoch is restarted and the result is unchanged", "[actors][recovery]") {
  flow::session session;
  flow::test::temp_dir dir;
  copy_days(dir.path(), {"2010-12-01", "2010-12-02", "2010-12-03", "2010-12-05", "2010-12-06"});
  auto schema = retail_schema(session);
  auto failures = std::make_shared<std::atomic<int>>(0);
  // Fails the first time it sees a row of 2010-12-05 (the fourth epoch), then works.
  auto flaky = [failures](const flow::batch& b) {
    const auto& ts = b.col("InvoiceDate");
    auto day = flow::parse_timestamp("2010-12-05 00:00:00")->micros;
    for (std::size_t i = 0; i < b.num_rows(); ++i)
      if (ts.valid(i) && ts.ints()[i] >= day && failures->fetch_add(1) == 0) throw std::runtime_error("injected failure");
    return b;
  };
  auto sales = session.read_stream().format("csv").option("header", true).schema(schema)
                   .option("maxFilesPerTrigger", 1).load((dir.path() / "*.csv").string());
  auto query = per_customer_hour(sales.map_batches(flaky, nullptr, "flaky"))
                   .write_stream().format("memory").query_name("recovered").output_mode("complete")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  CHECK(failures->load() > 1);
  bool restarted = false;
  for (const auto& p : query.recent_progress())
    if (p.find("\"numRestarts\":0") == std::string::npos) restarted = true;
  CHECK(restarted);
  CHECK(query.recent_progress().size() == 5);
  auto recovered = to_map(session.sql("SELECT * FROM recovered").collect_batch());

  auto clean = to_map(per_customer_hour(session.read().format("csv").option("header", true).schema(schema)
                                            .load((dir.path() / "*.csv").string()))
                          .collect_batch());
  REQUIRE(recovered.size() == clean.size());
  for (const auto& [key, v] : clean) CHECK(std::round(recovered.at(key) * 100) == std::round(v * 100));
}

TEST_CASE("a stage that always fails ends the query with its error after the allowed restarts", "[actors][recovery]") {
  flow::session_config config;
  config.max_failures = 2;
  flow::session session(config);
  flow::test::temp_dir dir;
  copy_days(dir.path(), {"2010-12-01"});
  auto sales = session.read_stream().format("csv").option("header", true).schema(retail_schema(session))
                   .load((dir.path() / "*.csv").string());
  auto broken = [](const flow::batch&) -> flow::batch { throw std::runtime_error("disk on fire"); };
  auto query = sales.map_batches(broken, nullptr, "broken").write_stream().format("memory").query_name("broken")
                   .output_mode("append").trigger(flow::available_now()).start();
  REQUIRE_THROWS_WITH(query.await_termination(60s), Catch::Contains("disk on fire"));
  CHECK_FALSE(query.is_active());
  REQUIRE(query.exception());
  CHECK_THAT(*query.exception(), Catch::Contains("vertex 'source', operator 'MapBatches broken'"));
  CHECK_THAT(*query.exception(), Catch::Contains("giving up"));
}

TEST_CASE("output modes the query shape does not allow are refused at start, naming the rule", "[actors][modes]") {
  flow::session session;
  flow::test::temp_dir dir;
  copy_days(dir.path(), {"2010-12-01"});
  auto sales = session.read_stream().format("csv").option("header", true).schema(retail_schema(session))
                   .load((dir.path() / "*.csv").string());
  CHECK_THROWS_WITH(sales.write_stream().format("memory").query_name("a").output_mode("complete").start(),
                    Catch::Contains("complete output mode not supported when there are no streaming aggregations"));
  CHECK_THROWS_WITH(per_customer_hour(sales).write_stream().format("memory").query_name("b").output_mode("append").start(),
                    Catch::Contains("append output mode not supported when there are streaming aggregations"));
  CHECK_THROWS_WITH(sales.write_stream().format("memory").output_mode("append").start(),
                    Catch::Contains("query name"));
  CHECK_THROWS_WITH(sales.write_stream().format("kafkaa").output_mode("append").start(),
                    Catch::Contains("unknown sink format"));
}

TEST_CASE("a missing input directory fails the query with a clear error", "[actors][files]") {
  flow::session session;
  flow::test::temp_dir dir;
  auto sales = session.read_stream().format("csv").option("header", true).schema(retail_schema(session))
                   .load((dir.path() / "nowhere").string());
  auto query = sales.write_stream().format("memory").query_name("nowhere").output_mode("append")
                   .trigger(flow::processing_time(20ms)).start();
  REQUIRE_THROWS_WITH(query.await_termination(30s), Catch::Contains("does not exist"));
  CHECK_FALSE(query.is_active());
}

TEST_CASE("a static read counts rows, partitions and shows a Spark table", "[actors][static]") {
  flow::session session;
  auto day = (flow::test::shared_data_dir() / "retail-by-day" / "2010-12-01.csv").string();
  auto df = session.read().format("csv").option("header", true).option("inferSchema", true).load(day);
  CHECK(df.count() == 3108);
  CHECK(df.num_partitions() >= 1);
  auto shown = df.show_string(5);
  CHECK_THAT(shown, Catch::StartsWith("+---------+"));
  CHECK_THAT(shown, Catch::Contains("|InvoiceNo|"));
  CHECK_THAT(shown, Catch::Contains("only showing top 5 rows"));
  // Rows come back in file order, as Spark shows them, although stages decode chunks in parallel.
  CHECK_THAT(shown, Catch::Contains("|   536365|   85123A|WHITE HANGING HEA...|"));
  flow::session_config small_units;
  small_units.max_unit_bytes = 16 * 1024;
  flow::session chunked(small_units);
  auto all = chunked.read().format("csv").option("header", true).option("inferSchema", true).load(day).collect_batch();
  REQUIRE(all.num_rows() == 3108);
  CHECK(all.at(0, 0) == flow::value{std::string("536365")});
  CHECK(all.at(3107, 0) == flow::value{std::string("536597")});
  CHECK(chunked.read().format("csv").option("header", true).option("inferSchema", true).load(day).num_partitions() > 4);
  auto expensive = df.where(col("UnitPrice") > flow::lit(100.0)).select({col("InvoiceNo"), col("UnitPrice")});
  for (const auto& b : expensive.collect())
    for (std::size_t i = 0; i < b.num_rows(); ++i) CHECK(b.col("UnitPrice").doubles()[i] > 100.0);
  CHECK_THROWS_WITH(session.read().format("csv").load("/nonexistent/dir/x.csv"), Catch::Contains("does not exist"));
}
