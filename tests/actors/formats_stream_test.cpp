// End-to-end: JSON and text streams, the console sink, and bad input through the runtime.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;

namespace {

// Redirects std::cout for the lifetime of the object.
class captured_cout {
 public:
  captured_cout() : previous_(std::cout.rdbuf(text_.rdbuf())) {}
  ~captured_cout() { std::cout.rdbuf(previous_); }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::streambuf* previous_;
};

}  // namespace

TEST_CASE("a JSON-lines stream aggregates into the memory sink", "[actors][json]") {
  flow::session session;
  flow::test::temp_dir dir;
  flow::test::write_file(dir / "a.json", "{\"user\":\"ana\",\"amount\":3}\n{\"user\":\"bo\",\"amount\":4}\n");
  flow::test::write_file(dir / "b.json", "{\"user\":\"ana\",\"amount\":10}\n{\"user\":null,\"amount\":1}\n");
  auto schema = flow::make_schema({{"user", flow::type_id::string, true}, {"amount", flow::type_id::int64, true}});
  auto totals = session.read_stream().format("json").schema(schema).option("maxFilesPerTrigger", 1)
                    .load(dir.path().string())
                    .group_by({col("user")})
                    .agg({flow::sum(col("amount")), flow::count_all()});
  auto query = totals.write_stream().format("memory").query_name("totals").output_mode("complete")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(30s));
  auto table = session.sql("SELECT user, `sum(amount)`, `count(1)` FROM totals ORDER BY `sum(amount)` DESC").collect_batch();
  REQUIRE(table.num_rows() == 3);
  CHECK(table.at(0, 0) == flow::value{std::string("ana")});
  CHECK(table.at(0, 1) == flow::value{std::int64_t{13}});
  CHECK(table.at(0, 2) == flow::value{std::int64_t{2}});
  CHECK(flow::is_null(table.at(2, 0)));
  CHECK(query.recent_progress().size() == 2);
}

TEST_CASE("the console sink prints every epoch as a table", "[actors][console]") {
  flow::session session;
  flow::test::temp_dir dir;
  flow::test::write_file(dir / "1.txt", "to be\nor not\n");
  flow::test::write_file(dir / "2.txt", "to be\n");
  std::string printed;
  {
    captured_cout capture;
    auto lines = session.read_stream().format("text").option("maxFilesPerTrigger", 1).load(dir.path().string());
    auto query = lines.group_by({col("value")}).count().write_stream().format("console").output_mode("update")
                     .trigger(flow::available_now()).start();
    REQUIRE(query.await_termination(30s));
    printed = capture.text();
  }
  CHECK_THAT(printed, Catch::Contains("Batch: 0"));
  CHECK_THAT(printed, Catch::Contains("Batch: 1"));
  CHECK_THAT(printed, Catch::Contains("|value |count|") || Catch::Contains("| value|count|"));
  // Update mode: the second epoch shows only the changed group, with its running count.
  auto second = printed.substr(printed.find("Batch: 1"));
  CHECK_THAT(second, Catch::Contains("to be|    2|") || Catch::Contains("| to be|    2|"));
  CHECK_THAT(second, !Catch::Contains("or not"));
}

TEST_CASE("FAILFAST on a malformed row fails the query at once, naming the file and line", "[actors][malformed]") {
  flow::session session;
  flow::test::temp_dir dir;
  flow::test::write_file(dir / "bad.csv", "id,amount\n1,10\n2,ten\n3,30\n");
  auto schema = flow::make_schema({{"id", flow::type_id::int64, true}, {"amount", flow::type_id::int64, true}});
  auto query = session.read_stream().format("csv").option("header", true).option("mode", "FAILFAST").schema(schema)
                   .load(dir.path().string())
                   .write_stream().format("memory").query_name("strict").output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE_THROWS_WITH(query.await_termination(30s), Catch::Contains("bad.csv") && Catch::Contains("line 3"));
  CHECK_FALSE(query.is_active());
  // Not retried: a restart reads the same line again.
  CHECK_THAT(*query.exception(), !Catch::Contains("giving up"));
}

TEST_CASE("a csv stream converts only the columns its first select reads: a bad value elsewhere does not fail "
          "FAILFAST, a bad value it reads does",
          "[actors][malformed][pruned]") {
  flow::session session;
  flow::test::temp_dir dir;
  flow::test::write_file(dir / "bad.csv", "id,note,amount\n1,x,10\n2,y,ten\n3,z,30\n");
  auto schema = flow::make_schema(
      {{"id", flow::type_id::int64, true}, {"note", flow::type_id::int64, true}, {"amount", flow::type_id::int64, true}});
  auto start = [&](const std::string& name, const std::vector<std::string>& columns) {
    return session.read_stream().format("csv").option("header", true).option("mode", "FAILFAST").schema(schema)
        .load(dir.path().string())
        .select(columns)
        .write_stream().format("memory").query_name(name).output_mode("append")
        .trigger(flow::available_now()).start();
  };
  // 'note' (every value bad) and 'amount' (line 3 bad) are not read: nothing fails, nothing is malformed.
  auto ids = start("ids", {"id"});
  REQUIRE(ids.await_termination(30s));
  CHECK(session.sql("SELECT * FROM ids ORDER BY id").collect_batch().num_rows() == 3);
  REQUIRE(ids.last_progress());
  CHECK_THAT(*ids.last_progress(), Catch::Contains("\"numMalformedRows\":0"));
  // Reading 'amount' fails at its bad value, naming the file, the line and the field.
  auto amounts = start("amounts", {"id", "amount"});
  REQUIRE_THROWS_WITH(amounts.await_termination(30s),
                      Catch::Contains("bad.csv") && Catch::Contains("line 3") && Catch::Contains("'amount'"));
}

TEST_CASE("a csv stream straight into an aggregation converts only its keys' and aggregates' columns",
          "[actors][malformed][pruned]") {
  flow::session session;
  flow::test::temp_dir dir;
  flow::test::write_file(dir / "bad.csv", "id,note,amount\n1,x,10\n2,y,ten\n1,z,30\n");
  auto schema = flow::make_schema(
      {{"id", flow::type_id::int64, true}, {"note", flow::type_id::int64, true}, {"amount", flow::type_id::int64, true}});
  auto start = [&](const std::string& name, const std::string& summed) {
    return session.read_stream().format("csv").option("header", true).option("mode", "FAILFAST").schema(schema)
        .load(dir.path().string())
        .group_by({col("id")})
        .agg({flow::sum(col(summed)), flow::count_all()})
        .write_stream().format("memory").query_name(name).output_mode("complete")
        .trigger(flow::available_now()).start();
  };
  // Counting by id reads neither 'note' (every value bad) nor 'amount' (line 3 bad): nothing fails.
  auto ids = start("ids_counted", "id");
  REQUIRE(ids.await_termination(30s));
  auto table = session.sql("SELECT * FROM ids_counted ORDER BY id").collect_batch();
  REQUIRE(table.num_rows() == 2);
  CHECK(table.at(0, 1) == flow::value{std::int64_t{2}});
  CHECK(table.at(0, 2) == flow::value{std::int64_t{2}});
  REQUIRE(ids.last_progress());
  CHECK_THAT(*ids.last_progress(), Catch::Contains("\"numMalformedRows\":0"));
  // Summing 'amount' reads it and fails at its bad value.
  auto amounts = start("amounts_summed", "amount");
  REQUIRE_THROWS_WITH(amounts.await_termination(30s),
                      Catch::Contains("bad.csv") && Catch::Contains("line 3") && Catch::Contains("'amount'"));
}

TEST_CASE("PERMISSIVE keeps malformed rows as nulls and counts them in the progress", "[actors][malformed]") {
  flow::session session;
  flow::test::temp_dir dir;
  flow::test::write_file(dir / "bad.csv", "id,amount\n1,10\n2,ten\n3,30\n");
  auto schema = flow::make_schema({{"id", flow::type_id::int64, true}, {"amount", flow::type_id::int64, true}});
  auto query = session.read_stream().format("csv").option("header", true).schema(schema).load(dir.path().string())
                   .write_stream().format("memory").query_name("lenient").output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(30s));
  auto table = session.sql("SELECT * FROM lenient ORDER BY id").collect_batch();
  REQUIRE(table.num_rows() == 3);
  CHECK(flow::is_null(table.at(1, 1)));
  REQUIRE(query.last_progress());
  CHECK_THAT(*query.last_progress(), Catch::Contains("\"numMalformedRows\":1"));
}

TEST_CASE("csv reads take multiLine: without it a stray quote spoils one line, with it quotes span lines",
          "[actors][csv][malformed]") {
  flow::session session;
  flow::test::temp_dir dir;
  // 100,000 lines; line 2 opens a quote that no later line closes.
  std::string stray;
  for (int i = 0; i < 100000; ++i) stray += std::to_string(i) + (i == 1 ? ",\"v" : ",v") + std::to_string(i) + "\n";
  flow::test::write_file(dir / "stray.csv", stray);
  auto schema = flow::make_schema({{"id", flow::type_id::int64, true}, {"v", flow::type_id::string, true}});
  auto read = [&](const std::string& mode, bool multi_line) {
    return session.read().format("csv").schema(schema).option("mode", mode).option("multiLine", multi_line)
        .option("maxBytesPerChunk", 64 * 1024).load((dir / "stray.csv").string()).collect_batch();
  };
  CHECK(read("PERMISSIVE", false).num_rows() == 100000);  // 99,999 good rows and the malformed one
  auto dropped = read("DROPMALFORMED", false);
  REQUIRE(dropped.num_rows() == 99999);
  std::int64_t id_sum = 0;
  for (std::size_t r = 0; r < dropped.num_rows(); ++r) id_sum += dropped.col(0).ints()[r];
  CHECK(id_sum == 99999LL * 100000 / 2 - 1);  // every id but 1
  CHECK(read("PERMISSIVE", true).num_rows() == 2);  // the quote takes the rest of the file

  // A stream with multiLine: quoted fields with line breaks, cut into many chunks, come out whole.
  std::string notes = "id,note\n";
  for (int i = 0; i < 2000; ++i) notes += std::to_string(i) + ",\"line one\nline \"\"two\"\", " + std::to_string(i) + "\"\n";
  std::filesystem::create_directories(dir / "notes");
  flow::test::write_file(dir / "notes" / "notes.csv", notes);
  auto query = session.read_stream().format("csv").option("header", true).option("multiLine", true)
                   .option("mode", "FAILFAST").option("maxBytesPerChunk", 4096).schema(schema)
                   .load((dir / "notes").string())
                   .write_stream().format("memory").query_name("notes").output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(30s));
  auto table = session.sql("SELECT * FROM notes ORDER BY id").collect_batch();
  REQUIRE(table.num_rows() == 2000);
  CHECK(table.at(1999, 1) == flow::value{std::string("line one\nline \"two\", 1999")});
  REQUIRE(query.last_progress());
  CHECK_THAT(*query.last_progress(), Catch::Contains("\"numMalformedRows\":0"));
}
