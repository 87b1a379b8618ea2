#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>

#include "flow/connectors/file_sink.hpp"
#include "flow/connectors/file_source.hpp"
#include "flow/connectors/registry.hpp"
#include "test_support.hpp"

using flow::type_id;
using flow::value;
namespace fs = std::filesystem;

namespace {

using strings = std::vector<std::string>;

flow::timestamp ts(const char* text) { return *flow::parse_timestamp(text); }

flow::schema_ptr sales_schema() {
  return flow::make_schema({{"id", type_id::int64, true},
                            {"name", type_id::string, true},
                            {"price", type_id::float64, true},
                            {"paid", type_id::boolean, true},
                            {"at", type_id::timestamp, true}});
}

// Rows that exercise quoting, nulls and every scalar type.
flow::batch tricky_sales() {
  return flow::make_batch(
      sales_schema(),
      {{value{std::int64_t{1}}, value{std::string("plain")}, value{2.5}, value{true}, value{ts("2010-12-01 08:26:00")}},
       {value{std::int64_t{2}}, value{std::string("with, comma")}, value{-0.125}, value{false},
        value{ts("2010-12-01 08:26:00.123456")}},
       {value{std::int64_t{3}}, value{std::string("say \"hi\"")}, value{1e21}, flow::null_value{}, flow::null_value{}},
       {value{std::int64_t{-4}}, value{std::string("two\nlines\r\n")}, flow::null_value{}, value{true},
        value{ts("1969-12-31 23:59:59.5")}},
       {flow::null_value{}, value{std::string("")}, value{3.0}, value{false}, value{ts("2010-12-01 00:00:00")}},
       {value{std::int64_t{6}}, flow::null_value{}, value{std::numeric_limits<double>::infinity()}, value{true},
        value{ts("2010-12-01 00:00:00")}}});
}

flow::batch numbered(std::int64_t from, std::int64_t count) {
  std::vector<std::vector<value>> rows;
  for (std::int64_t i = from; i < from + count; ++i) rows.push_back({value{i}, value{"row " + std::to_string(i)}});
  return flow::make_batch(flow::make_schema({{"n", type_id::int64, true}, {"text", type_id::string, true}}), rows);
}

std::unique_ptr<flow::sink_writer> open_sink(const std::string& format, const fs::path& path, flow::options opts = {},
                                             flow::schema_ptr schema = sales_schema()) {
  opts.set("path", path.string());
  auto sink = flow::make_file_sink(format, opts);
  sink->open(schema, flow::output_mode::append, {});
  return sink;
}

// Decodes files with libflow's own reader: what a consumer of the sink's output gets.
flow::batch read_back(const strings& files, const std::string& format, const flow::schema_ptr& schema,
                      flow::options opts = {}) {
  if (format == "csv") opts.set("multiLine", "true");  // the strings hold line breaks
  auto decoder = flow::make_decoder(format, opts, schema);
  std::vector<flow::batch> parts;
  for (const auto& file : files) {
    flow::decode_stats stats;
    for (const auto& chunk : flow::read_file_chunks(file, *decoder, 1 << 20)) {
      parts.push_back(decoder->decode(chunk, stats));
      CHECK(stats.malformed == 0);
    }
  }
  return parts.empty() ? flow::batch::empty(schema) : flow::concat(parts);
}

strings names_in(const fs::path& dir) {
  strings out;
  for (const auto& entry : fs::directory_iterator(dir)) out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

strings file_names(const strings& paths) {
  strings out;
  for (const auto& p : paths) out.push_back(fs::path(p).filename().string());
  return out;
}

}  // namespace

TEST_CASE("file sink writes RFC 4180 CSV that libflow's reader reads back unchanged", "[file_sink]") {
  flow::test::temp_dir dir;
  auto sink = open_sink("csv", dir.path());
  CHECK(sink->description() == "FileSink[" + dir.path().string() + "]");
  sink->write(0, tricky_sales());
  sink->commit(0);

  auto files = flow::committed_files(dir.path().string());
  REQUIRE(file_names(files) == strings{"part-00000-00000.csv"});
  auto text = flow::test::read_file(files[0]);
  CHECK(text.find("1,plain,2.5,true,2010-12-01 08:26:00\n") == 0);  // no header by default, as in Spark
  CHECK(text.find("2,\"with, comma\",-0.125,false,2010-12-01 08:26:00.123456\n") != std::string::npos);
  CHECK(text.find("3,\"say \"\"hi\"\"\",1.0E21,,\n") != std::string::npos);  // null: empty field
  CHECK(text.find("-4,\"two\nlines\r\n\",,true,1969-12-31 23:59:59.5\n") != std::string::npos);
  CHECK(text.find("\n,\"\",3.0,false,") != std::string::npos);  // empty string "" is not null
  CHECK(text.find("\n6,,Infinity,true,") != std::string::npos);

  CHECK(read_back(files, "csv", sales_schema()) == tricky_sales());
}

TEST_CASE("file sink CSV options: header in every part file and another separator", "[file_sink]") {
  flow::test::temp_dir dir;
  flow::options opts;
  opts.set("header", "true");
  opts.set("sep", ";");
  opts.set("maxRecordsPerFile", "4");
  auto sink = open_sink("csv", dir.path(), opts);
  sink->write(0, tricky_sales());
  sink->commit(0);
  auto files = flow::committed_files(dir.path().string());
  REQUIRE(files.size() == 2);
  for (const auto& f : files) CHECK(flow::test::read_file(f).rfind("id;name;price;paid;at\n", 0) == 0);
  CHECK(flow::test::read_file(files[0]).find("2;with, comma;-0.125;") != std::string::npos);
  CHECK(read_back(files, "csv", sales_schema(), opts) == tricky_sales());

  flow::options bad;
  bad.set("path", dir.path().string());
  bad.set("sep", "||");
  CHECK_THAT(flow::test::error_of([&] { flow::make_file_sink("csv", bad); }), Catch::Contains("'sep'"));
  bad.set("sep", ",");
  bad.set("maxRecordsPerFile", "-1");
  CHECK_THAT(flow::test::error_of([&] { flow::make_file_sink("csv", bad); }), Catch::Contains("maxRecordsPerFile"));
}

TEST_CASE("file sink writes JSON lines as Spark does: nulls left out, ISO timestamps, windows, arrays", "[file_sink]") {
  flow::test::temp_dir dir;
  auto schema = flow::make_schema({{"name", type_id::string, true},
                                   {"n", type_id::int64, true},
                                   {"x", type_id::float64, true},
                                   {"ok", type_id::boolean, true},
                                   {"at", type_id::timestamp, true},
                                   {"window", type_id::window, true},
                                   {"words", type_id::string_list, true}});
  flow::window_value hour{ts("2010-12-01 08:00:00"), ts("2010-12-01 09:00:00")};
  auto rows = flow::make_batch(
      schema, {{value{std::string("a \"quoted\"\\ name\n\t\x01")}, value{std::int64_t{7}}, value{0.5}, value{true},
                value{ts("2010-12-01 08:26:00")}, value{hour}, value{strings{"to", "be", "\"or\""}}},
               {flow::null_value{}, value{std::int64_t{-1}}, value{std::nan("")}, flow::null_value{},
                value{ts("2010-12-01 08:26:00.000250")}, flow::null_value{}, value{strings{}}},
               {flow::null_value{}, flow::null_value{}, flow::null_value{}, flow::null_value{}, flow::null_value{},
                flow::null_value{}, flow::null_value{}}});
  auto sink = open_sink("json", dir.path(), {}, schema);
  sink->write(3, rows);
  sink->commit(3);
  auto files = flow::committed_files(dir.path().string());
  REQUIRE(file_names(files) == strings{"part-00003-00000.json"});
  CHECK(flow::test::read_file(files[0]) ==
        "{\"name\":\"a \\\"quoted\\\"\\\\ name\\n\\t\\u0001\",\"n\":7,\"x\":0.5,\"ok\":true,"
        "\"at\":\"2010-12-01T08:26:00.000Z\","
        "\"window\":{\"start\":\"2010-12-01T08:00:00.000Z\",\"end\":\"2010-12-01T09:00:00.000Z\"},"
        "\"words\":[\"to\",\"be\",\"\\\"or\\\"\"]}\n"
        "{\"n\":-1,\"x\":\"NaN\",\"at\":\"2010-12-01T08:26:00.000250Z\",\"words\":[]}\n"
        "{}\n");
  // The reader gets the strings, numbers and lists back.
  auto scalar = flow::make_schema({{"name", type_id::string, true}, {"n", type_id::int64, true},
                                   {"words", type_id::string_list, true}});
  auto back = read_back(files, "json", scalar);
  REQUIRE(back.num_rows() == 3);
  CHECK(back.at(0, 0) == rows.at(0, 0));
  CHECK(back.at(1, 1) == value{std::int64_t{-1}});
  CHECK(back.at(0, 2) == rows.at(0, 6));
  CHECK(flow::is_null(back.at(2, 1)));
}

TEST_CASE("file sink JSON round trip: libflow's JSON reader reads every column back, ISO timestamps included",
          "[file_sink]") {
  flow::test::temp_dir dir;
  auto fields = sales_schema()->fields();
  fields.push_back({"words", type_id::string_list, true});
  auto schema = flow::make_schema(fields);
  auto rows = flow::make_batch(
      schema,
      {{value{std::int64_t{1}}, value{std::string("Espa\xC3\xB1" "a \"q\" \\ \x01")}, value{2.5}, value{true},
        value{ts("2010-12-01 08:26:00")}, value{strings{"a", "b"}}},
       {value{std::int64_t{2}}, value{std::string("")}, value{-0.125}, value{false},
        value{ts("2010-12-01 08:26:00.123456")}, value{strings{}}},
       {value{std::int64_t{3}}, flow::null_value{}, value{1e21}, flow::null_value{}, value{ts("1969-12-31 23:59:59.5")},
        flow::null_value{}},
       {flow::null_value{}, value{std::string("x")}, flow::null_value{}, value{true},
        value{ts("2010-12-01 08:26:00.000250")}, value{strings{"\"\n"}}},
       {value{std::int64_t{5}}, value{std::string("y")}, value{3.0}, value{true}, flow::null_value{},
        value{strings{"z"}}}});
  auto sink = open_sink("json", dir.path(), {}, schema);
  sink->write(0, rows);
  sink->commit(0);
  auto files = flow::committed_files(dir.path().string());
  REQUIRE(files.size() == 1);
  CHECK(flow::test::read_file(files[0]).find("\"at\":\"2010-12-01T08:26:00.123456Z\"") != std::string::npos);
  CHECK(read_back(files, "json", schema) == rows);
}

TEST_CASE("file sink writes under hidden temporary names and publishes files and log entry at commit",
          "[file_sink]") {
  flow::test::temp_dir dir;
  auto sink = open_sink("csv", dir.path());
  sink->write(0, tricky_sales());
  sink->write(0, tricky_sales());
  CHECK(names_in(dir.path()) == strings{".part-00000-00000.csv.tmp", "_flow_metadata"});
  CHECK(flow::list_input_files(dir.path().string()).empty());  // readers skip what is not committed
  CHECK(flow::committed_files(dir.path().string()).empty());

  sink->commit(0);
  CHECK(names_in(dir.path()) == strings{"_flow_metadata", "part-00000-00000.csv"});
  CHECK(names_in(dir.path() / "_flow_metadata") == strings{"0"});
  CHECK(flow::test::read_file(dir.path() / "_flow_metadata" / "0") ==
        "{\"epoch\":0,\"rows\":12,\"files\":[\"part-00000-00000.csv\"]}\n");
  CHECK(flow::list_input_files(dir.path().string()).size() == 1);
  CHECK(flow::test::metric(sink->metrics(), "numFiles") == 1);
  CHECK(flow::test::metric(sink->metrics(), "numOutputRows") == 12);
  CHECK(flow::test::metric(sink->metrics(), "numOutputBytes") ==
        static_cast<std::int64_t>(fs::file_size(dir.path() / "part-00000-00000.csv")));
}

TEST_CASE("file sink commit log lists every epoch's files in epoch order, empty epochs included", "[file_sink]") {
  flow::test::temp_dir dir;
  flow::options opts;
  opts.set("maxRecordsPerFile", "3");
  auto sink = open_sink("csv", dir.path(), opts, numbered(0, 1).schema_ref());
  for (std::int64_t epoch = 0; epoch < 12; ++epoch) {
    if (epoch != 4) sink->write(epoch, numbered(epoch * 10, epoch == 11 ? 7 : 2));
    sink->commit(epoch);
  }
  auto files = flow::committed_files(dir.path().string());
  REQUIRE(files.size() == 13);
  CHECK(file_names(files)[3] == "part-00003-00000.csv");
  CHECK(file_names(files)[4] == "part-00005-00000.csv");  // epoch 4 had no rows: no file, still logged
  CHECK(file_names(files)[10] == "part-00011-00000.csv");  // 10 < 11 numerically, not as text
  CHECK(flow::test::read_file(dir.path() / "_flow_metadata" / "4") == "{\"epoch\":4,\"rows\":0,\"files\":[]}\n");
  auto back = read_back(files, "csv", numbered(0, 1).schema_ref());
  REQUIRE(back.num_rows() == 10 * 2 + 7);
  CHECK(back.at(0, 0) == value{std::int64_t{0}});
  CHECK(back.at(back.num_rows() - 1, 0) == value{std::int64_t{116}});
}

TEST_CASE("file sink splits an epoch into parts of maxRecordsPerFile rows across write calls", "[file_sink]") {
  flow::test::temp_dir dir;
  flow::options opts;
  opts.set("maxRecordsPerFile", "4");
  auto sink = open_sink("json", dir.path(), opts, numbered(0, 1).schema_ref());
  sink->write(7, numbered(0, 3));
  sink->write(7, numbered(3, 3));
  sink->write(7, numbered(6, 4));
  sink->commit(7);
  auto files = flow::committed_files(dir.path().string());
  REQUIRE(file_names(files) == strings{"part-00007-00000.json", "part-00007-00001.json", "part-00007-00002.json"});
  std::vector<std::size_t> rows_per_file;
  for (const auto& f : files) rows_per_file.push_back(read_back({f}, "json", numbered(0, 1).schema_ref()).num_rows());
  CHECK(rows_per_file == std::vector<std::size_t>{4, 4, 2});
  CHECK(read_back(files, "json", numbered(0, 1).schema_ref()) == numbered(0, 10));
  CHECK(flow::test::metric(sink->metrics(), "numFiles") == 3);
  CHECK(flow::test::metric(sink->metrics(), "numOutputRows") == 10);
}

TEST_CASE("file sink skips a replayed epoch that is already committed: exactly-once files", "[file_sink]") {
  flow::test::temp_dir dir;
  auto sink = open_sink("csv", dir.path(), {}, numbered(0, 1).schema_ref());
  sink->write(0, numbered(0, 5));
  sink->commit(0);
  sink->write(1, numbered(5, 5));
  sink->commit(1);
  auto before = flow::test::read_file(dir.path() / "part-00000-00000.csv");

  sink->write(0, numbered(100, 3));  // a replay after a failure: the epoch is committed, nothing changes
  sink->commit(0);
  sink->commit(1);
  CHECK(flow::test::read_file(dir.path() / "part-00000-00000.csv") == before);
  CHECK(names_in(dir.path()) == strings{"_flow_metadata", "part-00000-00000.csv", "part-00001-00000.csv"});
  CHECK(read_back(flow::committed_files(dir.path().string()), "csv", numbered(0, 1).schema_ref()) == numbered(0, 10));
  CHECK(flow::test::metric(sink->metrics(), "numOutputRows") == 10);
}

TEST_CASE("file sink abort deletes the epoch's temporary files and the epoch can be written again", "[file_sink]") {
  flow::test::temp_dir dir;
  flow::options opts;
  opts.set("maxRecordsPerFile", "2");
  auto sink = open_sink("csv", dir.path(), opts, numbered(0, 1).schema_ref());
  sink->write(0, numbered(0, 5));
  CHECK(names_in(dir.path()).size() == 4);  // three temporary parts and the log directory
  sink->abort(0);
  CHECK(names_in(dir.path()) == strings{"_flow_metadata"});
  CHECK(flow::committed_files(dir.path().string()).empty());

  sink->write(0, numbered(0, 5));
  sink->commit(0);
  CHECK(read_back(flow::committed_files(dir.path().string()), "csv", numbered(0, 1).schema_ref()) == numbered(0, 5));

  sink->write(1, numbered(5, 1));
  sink->close();  // a stopped query drops what it did not commit
  CHECK(names_in(dir.path()) == strings{"_flow_metadata", "part-00000-00000.csv", "part-00000-00001.csv",
                                        "part-00000-00002.csv"});
}

TEST_CASE("file sink deletes stray files of an uncommitted epoch before writing it again", "[file_sink]") {
  flow::test::temp_dir dir;
  auto sink = open_sink("csv", dir.path(), {}, numbered(0, 1).schema_ref());
  sink->write(0, numbered(0, 2));
  sink->commit(0);
  // What an attempt at epoch 1 that died between renaming its parts and logging them leaves behind.
  flow::test::write_file(dir.path() / "part-00001-00000.csv", "99,stale\n");
  flow::test::write_file(dir.path() / "part-00001-00007.csv", "98,stale\n");
  flow::test::write_file(dir.path() / ".part-00001-00008.csv.tmp", "97,stale\n");
  flow::test::write_file(dir.path() / "part-00010-00000.csv", "10,other epoch\n");
  flow::test::write_file(dir.path() / "notes.txt", "not ours\n");

  sink->write(1, numbered(2, 2));
  CHECK(names_in(dir.path()) == strings{".part-00001-00000.csv.tmp", "_flow_metadata", "notes.txt",
                                        "part-00000-00000.csv", "part-00010-00000.csv"});
  sink->commit(1);
  auto files = flow::committed_files(dir.path().string());
  CHECK(file_names(files) == strings{"part-00000-00000.csv", "part-00001-00000.csv"});
  CHECK(read_back(files, "csv", numbered(0, 1).schema_ref()) == numbered(0, 4));

  // An empty replayed epoch (no write call) cleans up too.
  flow::test::write_file(dir.path() / "part-00002-00000.csv", "96,stale\n");
  sink->commit(2);
  CHECK_FALSE(fs::exists(dir.path() / "part-00002-00000.csv"));
}

TEST_CASE("file sink refuses complete and update mode, CSV struct columns, and unusable paths", "[file_sink]") {
  flow::test::temp_dir dir;
  flow::options opts;
  opts.set("path", (dir.path() / "out").string());
  auto csv = flow::make_file_sink("csv", opts);
  CHECK_THAT(flow::test::error_of([&] { csv->open(sales_schema(), flow::output_mode::complete, {"id"}); }),
             Catch::Contains("Data source csv does not support Complete output mode"));
  CHECK_THAT(flow::test::error_of([&] { csv->open(sales_schema(), flow::output_mode::update, {"id"}); }),
             Catch::Contains("Data source csv does not support Update output mode"));
  auto json = flow::make_file_sink("json", opts);
  CHECK_THAT(flow::test::error_of([&] { json->open(sales_schema(), flow::output_mode::complete, {}); }),
             Catch::Contains("Data source json does not support Complete output mode"));

  auto windowed = flow::make_schema({{"k", type_id::string, true}, {"window", type_id::window, true}});
  auto message = flow::test::error_of([&] { csv->open(windowed, flow::output_mode::append, {}); });
  CHECK_THAT(message, Catch::Contains("CSV data source does not support window data type"));
  CHECK_THAT(message, Catch::Contains("'window'"));
  CHECK_THAT(message, Catch::Contains("map_batches"));
  CHECK(flow::test::error_of([&] { json->open(windowed, flow::output_mode::append, {}); }) == "<no error>");
  auto lists = flow::make_schema({{"k", type_id::string, true}, {"tags", type_id::string_list, true}});
  message = flow::test::error_of([&] { csv->open(lists, flow::output_mode::append, {}); });
  CHECK_THAT(message, Catch::Contains("CSV data source does not support array<string> data type (column 'tags')"));
  CHECK_THAT(message, Catch::Contains("write JSON instead (format json)"));
  CHECK(flow::test::error_of([&] { json->open(lists, flow::output_mode::append, {}); }) == "<no error>");

  flow::test::write_file(dir.path() / "a-file", "x");
  flow::options under_file;
  under_file.set("path", (dir.path() / "a-file" / "out").string());
  auto blocked = flow::make_file_sink("csv", under_file);
  CHECK_THAT(flow::test::error_of([&] { blocked->open(sales_schema(), flow::output_mode::append, {}); }),
             Catch::Contains("cannot create output directory") && Catch::Contains("a-file"));

  CHECK_THAT(flow::test::error_of([] { flow::make_file_sink("csv", {}); }), Catch::Contains("option 'path' is required"));
  CHECK_THAT(flow::test::error_of([&] { flow::make_file_sink("parquet", opts); }),
             Catch::Contains("unsupported format 'parquet'"));
  CHECK_THAT(flow::test::error_of([&] { csv->write(0, tricky_sales()); }), Catch::Contains("write before open"));
  csv->open(sales_schema(), flow::output_mode::append, {});
  CHECK_THAT(flow::test::error_of([&] { csv->write(0, numbered(0, 1)); }),
             Catch::Contains("epoch 0 has rows of schema"));
}

TEST_CASE("file sink restarted on its output deletes unlogged part files and resumes after the logged epochs",
          "[file_sink]") {
  flow::test::temp_dir dir;
  {
    auto first = open_sink("csv", dir.path(), {}, numbered(0, 1).schema_ref());
    first->write(0, numbered(0, 2));
    first->commit(0);
    first->commit(1);
  }
  // What a run killed between renaming epoch 2's parts and logging them leaves behind.
  flow::test::write_file(dir.path() / "part-00002-00000.csv", "99,stale\n");
  flow::test::write_file(dir.path() / ".part-00002-00001.csv.tmp", "98,stale\n");
  flow::test::write_file(dir.path() / "notes.txt", "not ours\n");
  CHECK(file_names(flow::list_input_files(dir.path().string())) == strings{"part-00000-00000.csv"});

  auto restarted = open_sink("csv", dir.path(), {}, numbered(0, 1).schema_ref());
  CHECK(names_in(dir.path()) == strings{"_flow_metadata", "notes.txt", "part-00000-00000.csv"});
  // The restarted query replays epochs 0 and 1 (skipped: same rows as logged), then writes epoch 2.
  restarted->write(0, numbered(0, 2));
  restarted->commit(0);
  restarted->commit(1);
  restarted->write(2, numbered(2, 3));
  restarted->commit(2);
  CHECK(read_back(flow::committed_files(dir.path().string()), "csv", numbered(0, 1).schema_ref()) == numbered(0, 5));
  CHECK(flow::list_input_files(dir.path().string()) == flow::committed_files(dir.path().string()));

  // A restart whose epochs differ from the logged ones (other input, no checkpoint) fails instead of
  // silently skipping rows.
  auto other = open_sink("csv", dir.path(), {}, numbered(0, 1).schema_ref());
  other->write(0, numbered(0, 4));
  CHECK_THAT(flow::test::error_of([&] { other->commit(0); }),
             Catch::Contains("epoch 0 was committed by an earlier run with 2 rows, this run's epoch 0 has 4") &&
                 Catch::Contains("new directory"));
}

TEST_CASE("committed_files explains a missing or corrupt commit log", "[file_sink]") {
  flow::test::temp_dir dir;
  CHECK_THAT(flow::test::error_of([&] { flow::committed_files(dir.path().string()); }),
             Catch::Contains("has no commit log"));
  fs::create_directories(dir.path() / "_flow_metadata");
  flow::test::write_file(dir.path() / "_flow_metadata" / ".0.tmp", "half-written");  // ignored: not an entry
  CHECK(flow::committed_files(dir.path().string()).empty());
  flow::test::write_file(dir.path() / "_flow_metadata" / "0", "{\"epoch\":0,\"files\":[\"part-0");
  CHECK_THAT(flow::test::error_of([&] { flow::committed_files(dir.path().string()); }),
             Catch::Contains("commit log entry") && Catch::Contains("corrupt"));
}

TEST_CASE("registry makes file, foreach and foreachBatch sinks and names what is missing", "[file_sink][registry]") {
  flow::test::temp_dir dir;
  flow::sink_context ctx;
  flow::sink_spec spec;
  spec.format = "csv";
  CHECK_THAT(flow::test::error_of([&] { flow::connectors::make_sink(spec, ctx); }),
             Catch::Contains("csv sink needs an output directory"));
  spec.opts.set("path", dir.path().string());
  CHECK(flow::connectors::make_sink(spec, ctx)->description() == "FileSink[" + dir.path().string() + "]");
  spec.format = "json";
  CHECK(flow::connectors::make_sink(spec, ctx)->description() == "FileSink[" + dir.path().string() + "]");
  spec.format = "foreach";
  CHECK_THAT(flow::test::error_of([&] { flow::connectors::make_sink(spec, ctx); }), Catch::Contains("needs a writer"));
  spec.format = "foreachBatch";
  CHECK_THAT(flow::test::error_of([&] { flow::connectors::make_sink(spec, ctx); }), Catch::Contains("needs a function"));
  spec.foreach_batch = [](const flow::batch&, std::int64_t) {};
  CHECK(flow::connectors::make_sink(spec, ctx)->description() == "ForeachBatchSink");
  spec.format = "parquet";
  CHECK_THAT(flow::test::error_of([&] { flow::connectors::make_sink(spec, ctx); }),
             Catch::Contains("unknown sink format") && Catch::Contains("csv, foreach, foreachBatch, json"));
}

TEST_CASE("file sink deletes only part files it could have written, never another tool's", "[file_sink]") {
  flow::test::temp_dir dir;
  // Spark's part file names (task number, job UUID, file counter) and one of a copy, in the output directory.
  const strings others{"part-00000-3f1c2a9e-1b2c-4d5e-8f90-a1b2c3d4e5f6-c000.csv",
                       "part-00001-3f1c2a9e-1b2c-4d5e-8f90-a1b2c3d4e5f6-c000.csv", "part-00000-00000-copy.csv",
                       "part-00001-7.csv.orig.csv"};
  for (const auto& name : others) flow::test::write_file(dir.path() / name, "1,kept\n");
  auto sink = open_sink("csv", dir.path(), {}, numbered(0, 1).schema_ref());
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    sink->write(epoch, numbered(epoch, 1));
    sink->commit(epoch);
  }
  auto kept = others;
  kept.insert(kept.end(), {"_flow_metadata", "part-00000-00000.csv", "part-00001-00000.csv"});
  std::sort(kept.begin(), kept.end());
  CHECK(names_in(dir.path()) == kept);
}

TEST_CASE("file sink closed while an epoch is being written commits nothing of it", "[file_sink]") {
  // A query that fails for good closes its sink from the coordinator while the sink actor may still be
  // between an epoch's writes and its commit: the rest of that epoch must not be committed as the epoch.
  flow::test::temp_dir dir;
  auto sink = open_sink("csv", dir.path(), {}, numbered(0, 1).schema_ref());
  sink->write(0, numbered(0, 2));
  sink->commit(0);
  sink->write(1, numbered(2, 2));
  sink->close();
  CHECK_THAT(flow::test::error_of([&] { sink->write(1, numbered(4, 2)); }), Catch::Contains("closed"));
  CHECK_THAT(flow::test::error_of([&] { sink->commit(1); }), Catch::Contains("closed"));
  CHECK(file_names(flow::committed_files(dir.path().string())) == strings{"part-00000-00000.csv"});
  CHECK_FALSE(fs::exists(dir.path() / "_flow_metadata" / "1"));
  CHECK(names_in(dir.path()) == strings{"_flow_metadata", "part-00000-00000.csv"});
}
