#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include "flow/connectors/memory.hpp"

using flow::type_id;
using flow::value;

namespace {

flow::schema_ptr key_value_schema() {
  return flow::make_schema({{"k", type_id::string, true}, {"v", type_id::int64, true}});
}

flow::batch kv(const std::vector<std::pair<std::string, std::int64_t>>& rows) {
  std::vector<std::vector<value>> values;
  for (const auto& [k, v] : rows) values.push_back({value{k}, value{v}});
  return flow::make_batch(key_value_schema(), values);
}

// The table's rows as "k=v" strings, in table order.
std::vector<std::string> rows_of(const flow::memory_catalog& catalog, const std::string& table) {
  std::vector<std::string> out;
  for (const auto& b : catalog.table(table)) {
    for (std::size_t r = 0; r < b.num_rows(); ++r) out.push_back(flow::to_string(b.at(r, 0)) + "=" + flow::to_string(b.at(r, 1)));
  }
  return out;
}

using strings = std::vector<std::string>;

flow::timestamp ts(const char* text) { return *flow::parse_timestamp(text); }

}  // namespace

TEST_CASE("memory sink in complete mode replaces the table with each epoch", "[memory_sink]") {
  auto catalog = std::make_shared<flow::memory_catalog>();
  auto sink = flow::make_memory_sink(catalog, "counts");
  CHECK(sink->description() == "MemorySink[counts]");
  sink->open(key_value_schema(), flow::output_mode::complete, {"k"});
  CHECK(catalog->list_tables() == strings{"counts"});
  CHECK(rows_of(*catalog, "counts").empty());

  sink->write(0, kv({{"a", 1}}));
  sink->write(0, kv({{"b", 2}}));
  CHECK(rows_of(*catalog, "counts").empty());  // nothing visible before the commit
  sink->commit(0);
  CHECK(rows_of(*catalog, "counts") == strings{"a=1", "b=2"});
  CHECK(catalog->table("counts").size() == 2);  // the batches themselves, no copy into one

  sink->write(1, kv({{"a", 3}, {"b", 2}, {"c", 1}}));
  sink->commit(1);
  CHECK(rows_of(*catalog, "counts") == strings{"a=3", "b=2", "c=1"});
}

TEST_CASE("memory sink in append mode appends, ignores replayed commits and drops aborted epochs", "[memory_sink]") {
  auto catalog = std::make_shared<flow::memory_catalog>();
  auto sink = flow::make_memory_sink(catalog, "events");
  sink->open(key_value_schema(), flow::output_mode::append, {});
  sink->write(0, kv({{"a", 1}}));
  sink->commit(0);
  std::uint64_t version = catalog->table_version("events");
  sink->write(1, kv({{"b", 2}}));
  sink->commit(1);
  CHECK(catalog->table_version("events") > version);
  CHECK(rows_of(*catalog, "events") == strings{"a=1", "b=2"});

  // Replay of epoch 1 after a failure: the rows are written again, the commit must not duplicate them.
  sink->write(1, kv({{"b", 2}}));
  sink->commit(1);
  sink->commit(0);
  CHECK(rows_of(*catalog, "events") == strings{"a=1", "b=2"});

  sink->write(2, kv({{"lost", 9}}));
  sink->abort(2);
  sink->write(2, kv({{"c", 3}}));
  sink->commit(2);
  CHECK(rows_of(*catalog, "events") == strings{"a=1", "b=2", "c=3"});
  CHECK(sink->metrics() == flow::connector_metrics{{"numRowsInTable", 3}});
}

TEST_CASE("memory sink in update mode upserts by the key columns", "[memory_sink]") {
  auto catalog = std::make_shared<flow::memory_catalog>();
  auto sink = flow::make_memory_sink(catalog, "latest");
  sink->open(key_value_schema(), flow::output_mode::update, {"k"});
  sink->write(0, kv({{"a", 1}, {"b", 2}}));
  sink->commit(0);
  sink->write(1, kv({{"b", 3}, {"c", 4}}));
  sink->write(1, kv({{"b", 5}}));
  sink->commit(1);
  CHECK(rows_of(*catalog, "latest") == strings{"a=1", "c=4", "b=5"});
  sink->write(2, kv({{"a", 7}}));
  sink->commit(2);
  CHECK(rows_of(*catalog, "latest") == strings{"c=4", "b=5", "a=7"});

  auto bad = flow::make_memory_sink(catalog, "other");
  CHECK_THROWS_AS(bad->open(key_value_schema(), flow::output_mode::update, {"missing"}), flow::error);
}

TEST_CASE("memory catalog answers the Spark query over a windowed aggregate", "[memory_sink][sql]") {
  auto schema = flow::make_schema({{"CustomerID", type_id::float64, true},
                                   {"window", type_id::window, true},
                                   {"sum(total_cost)", type_id::float64, true}});
  auto hour = [](const char* start, const char* end) { return value{flow::window_value{ts(start), ts(end)}}; };
  auto epoch0 = flow::make_batch(schema, {{value{17850.0}, hour("2010-12-01 08:00:00", "2010-12-01 09:00:00"), value{139.12}},
                                          {value{}, hour("2010-12-01 09:00:00", "2010-12-01 10:00:00"), value{410.5}}});
  auto epoch0b = flow::make_batch(schema, {{value{13047.0}, hour("2010-12-01 08:00:00", "2010-12-01 09:00:00"), value{366.63}}});
  auto catalog = std::make_shared<flow::memory_catalog>();
  auto sink = flow::make_memory_sink(catalog, "compras_por_hora");
  sink->open(schema, flow::output_mode::complete, {"CustomerID", "window"});
  sink->write(0, epoch0);
  sink->write(0, epoch0b);
  sink->commit(0);

  auto result = catalog->sql("SELECT * FROM compras_por_hora ORDER BY `sum(total_cost)` DESC");
  REQUIRE(result.schema() == *schema);
  REQUIRE(result.num_rows() == 3);
  CHECK(flow::is_null(result.at(0, 0)));
  CHECK(result.at(0, 1) == hour("2010-12-01 09:00:00", "2010-12-01 10:00:00"));
  CHECK(result.at(0, 2) == value{410.5});
  CHECK(result.at(1, 0) == value{13047.0});
  CHECK(result.at(2, 0) == value{17850.0});
  CHECK(result.at(2, 2) == value{139.12});

  // A new epoch is loaded before the next query.
  sink->write(1, flow::make_batch(schema, {{value{12583.0}, hour("2010-12-01 08:00:00", "2010-12-01 09:00:00"), value{855.86}}}));
  sink->commit(1);
  auto after = catalog->sql("SELECT CustomerID, `sum(total_cost)` AS total FROM compras_por_hora");
  REQUIRE(after.num_rows() == 1);
  CHECK(after.schema().names() == strings{"CustomerID", "total"});
  CHECK(after.at(0, 0) == value{12583.0});
  CHECK(after.at(0, 1) == value{855.86});
}

TEST_CASE("memory catalog maps SQL results back to flow types", "[memory_sink][sql]") {
  auto schema = flow::make_schema({{"at", type_id::timestamp, true},
                                   {"ok", type_id::boolean, true},
                                   {"n", type_id::int64, true},
                                   {"name", type_id::string, true}});
  auto catalog = std::make_shared<flow::memory_catalog>();
  catalog->put_table("t", schema,
                     {flow::make_batch(schema, {{value{ts("2011-01-02 03:04:05")}, value{true}, value{std::int64_t{5}}, value{std::string("x")}},
                                                {value{}, value{false}, value{}, value{std::string("y")}}})});
  auto all = catalog->sql("SELECT * FROM t ORDER BY name");
  CHECK(all == catalog->table("t").front());

  auto aggregated = catalog->sql("SELECT count(*) AS num, sum(n) AS total, avg(n) * 1.5 AS scaled, max(name) AS max_name FROM t");
  REQUIRE(aggregated.num_rows() == 1);
  CHECK(aggregated.schema().to_string() == "num: int64, total: int64, scaled: float64, max_name: string");
  CHECK(aggregated.at(0, 0) == value{std::int64_t{2}});
  CHECK(aggregated.at(0, 2) == value{7.5});

  auto none = catalog->sql("SELECT * FROM t WHERE n > 100");
  CHECK(none.num_rows() == 0);
  CHECK(none.schema() == *schema);
}

TEST_CASE("memory catalog keeps NaN through SQL, equal to itself and above every number as in Spark", "[memory_sink][sql]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto schema = flow::make_schema({{"name", type_id::string, true}, {"x", type_id::float64, true}});
  auto catalog = std::make_shared<flow::memory_catalog>();
  auto sink = flow::make_memory_sink(catalog, "t");
  sink->open(schema, flow::output_mode::append, {});
  sink->write(0, flow::make_batch(schema, {{value{std::string("nan")}, value{nan}},
                                           {value{std::string("null")}, value{}},
                                           {value{std::string("inf")}, value{inf}},
                                           {value{std::string("one")}, value{1.0}}}));
  sink->commit(0);
  auto is_nan = [](const value& v) { return std::holds_alternative<double>(v) && std::isnan(std::get<double>(v)); };

  auto sorted = catalog->sql("SELECT * FROM t ORDER BY x");  // nulls first, then numbers, NaN last
  REQUIRE(sorted.schema() == *schema);
  REQUIRE(sorted.num_rows() == 4);
  CHECK(flow::is_null(sorted.at(0, 1)));
  CHECK(sorted.at(1, 1) == value{1.0});
  CHECK(sorted.at(2, 1) == value{inf});
  CHECK(is_nan(sorted.at(3, 1)));

  auto above = catalog->sql("SELECT name FROM t WHERE x > 1e308 ORDER BY name");
  CHECK(above.num_rows() == 2);
  CHECK(above.at(0, 0) == value{std::string("inf")});
  CHECK(above.at(1, 0) == value{std::string("nan")});
  CHECK(catalog->sql("SELECT name FROM t WHERE x = x").num_rows() == 3);
  auto largest = catalog->sql("SELECT max(x) AS m, count(x) AS c FROM t");
  CHECK(is_nan(largest.at(0, 0)));
  CHECK(largest.at(0, 1) == value{std::int64_t{3}});
}

TEST_CASE("memory sink in update mode takes NaN keys of any bit pattern as one key", "[memory_sink]") {
  auto schema = flow::make_schema({{"k", type_id::float64, true}, {"v", type_id::int64, true}});
  auto catalog = std::make_shared<flow::memory_catalog>();
  auto sink = flow::make_memory_sink(catalog, "latest");
  sink->open(schema, flow::output_mode::update, {"k"});
  sink->write(0, flow::make_batch(schema, {{value{std::nan("1")}, value{std::int64_t{1}}}}));
  sink->commit(0);
  sink->write(1, flow::make_batch(schema, {{value{-std::nan("2")}, value{std::int64_t{2}}}}));
  sink->commit(1);
  auto rows = catalog->table("latest");
  REQUIRE(rows.size() == 1);
  REQUIRE(rows.front().num_rows() == 1);
  CHECK(rows.front().at(0, 1) == value{std::int64_t{2}});
}

TEST_CASE("memory catalog reports SQL errors with SQLite's message and the query", "[memory_sink][sql]") {
  auto catalog = std::make_shared<flow::memory_catalog>();
  catalog->put_table("t", key_value_schema(), {kv({{"a", 1}})});
  CHECK_THROWS_WITH(catalog->sql("SELECT * FROM missing"),
                    Catch::Contains("no such table: missing") && Catch::Contains("tables: t") &&
                        Catch::Contains("SELECT * FROM missing"));
  CHECK_THROWS_WITH(catalog->sql("SELEC k FROM t"), Catch::Contains("syntax error") && Catch::Contains("SELEC k FROM t"));
  CHECK_THROWS_WITH(catalog->sql("DELETE FROM t"), Catch::Contains("only queries"));
  CHECK_THROWS_WITH(catalog->sql("SELECT 1; SELECT 2"), Catch::Contains("one statement"));
  CHECK_THROWS_WITH(catalog->table("nope"), Catch::Contains("no table 'nope'"));
  CHECK(catalog->sql("SELECT k FROM t;").num_rows() == 1);
}

TEST_CASE("memory catalog readers never see half an epoch", "[memory_sink][sql]") {
  auto catalog = std::make_shared<flow::memory_catalog>();
  auto sink = flow::make_memory_sink(catalog, "t");
  sink->open(key_value_schema(), flow::output_mode::complete, {"k"});
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done) {
      auto result = catalog->sql("SELECT count(*), min(v), max(v) FROM t");
      auto count = std::get<std::int64_t>(result.at(0, 0));
      if (count == 0) continue;
      // Every epoch writes 3 batches of 10 rows holding the epoch number.
      if (count != 30 || result.at(0, 1) != result.at(0, 2)) ++torn;
    }
  });
  for (std::int64_t epoch = 0; epoch < 200; ++epoch) {
    for (int b = 0; b < 3; ++b) {
      std::vector<std::pair<std::string, std::int64_t>> rows;
      for (int i = 0; i < 10; ++i) rows.emplace_back(std::to_string(b * 10 + i), epoch);
      sink->write(epoch, kv(rows));
    }
    sink->commit(epoch);
  }
  done = true;
  reader.join();
  CHECK(torn == 0);
  CHECK(catalog->sql("SELECT max(v) FROM t").at(0, 0) == value{std::int64_t{199}});
}
