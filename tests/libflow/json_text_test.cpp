// JSON lines and text lines decoding and inference.
#include <catch2/catch.hpp>

#include <algorithm>

#include "flow/formats.hpp"
#include "test_support.hpp"

using namespace flow;

namespace {

raw_chunk text_chunk(const std::string& text, std::size_t begin = 0, std::string origin = "in.json",
                     std::uint64_t first_line = 1) {
  auto buffer = std::make_shared<const std::string>(std::string(begin, '\n') + text);
  return raw_chunk{buffer, begin, buffer->size(), std::move(origin), first_line};
}

options with_mode(const std::string& mode) {
  options opts;
  opts.set("mode", mode);
  return opts;
}

using flow::test::error_of;

schema_ptr json_schema() {
  return make_schema({{"a", type_id::int64},
                      {"b", type_id::string},
                      {"c", type_id::float64},
                      {"d", type_id::boolean},
                      {"t", type_id::timestamp},
                      {"user.name", type_id::string}});
}

}  // namespace

TEST_CASE("json: fields by name, nested paths and conversions", "[formats][json]") {
  auto dec = make_decoder("json", {}, json_schema());
  decode_stats stats;
  batch b = dec->decode(
      text_chunk("{\"a\": 1, \"b\": \"x\", \"c\": 2.5, \"d\": true, \"t\": \"2010-12-01 08:26:00\", "
                 "\"user\": {\"name\": \"ann\"}}\r\n"
                 "\n"
                 "   \n"
                 "{\"b\": 5, \"c\": 3, \"a\": null, \"t\": 1291191960, \"extra\": [1, 2]}\n"
                 "{\"b\": {\"k\": [1, \"v\"]}, \"user\": {\"id\": 3}, \"user.name\": \"flat\"}"),
      stats);
  REQUIRE(b.num_rows() == 3);
  CHECK(stats.rows == 3);
  CHECK(stats.malformed == 0);
  CHECK(b.at(0, 0) == value{std::int64_t{1}});
  CHECK(b.at(0, 1) == value{std::string("x")});
  CHECK(b.at(0, 2) == value{2.5});
  CHECK(b.at(0, 3) == value{true});
  CHECK(b.at(0, 4) == value{*parse_timestamp("2010-12-01 08:26:00")});
  CHECK(b.at(0, 5) == value{std::string("ann")});
  // Missing keys and JSON null are null; an integer is a float64 too; integer timestamps are epoch seconds.
  CHECK(is_null(b.at(1, 0)));
  CHECK(b.at(1, 1) == value{std::string("5")});
  CHECK(b.at(1, 2) == value{3.0});
  CHECK(is_null(b.at(1, 3)));
  CHECK(b.at(1, 4) == value{*parse_timestamp("2010-12-01 08:26:00")});
  CHECK(is_null(b.at(1, 5)));
  // A string column takes other JSON values as their JSON text; a literal dotted key wins over the path.
  CHECK(b.at(2, 1) == value{std::string("{\"k\":[1,\"v\"]}")});
  CHECK(b.at(2, 5) == value{std::string("flat")});
}

TEST_CASE("json: malformed lines in every mode", "[formats][json][malformed]") {
  auto schema = make_schema({{"a", type_id::int64}, {"b", type_id::string}, {"_corrupt_record", type_id::string}});
  const std::string input =
      "{\"a\": 1, \"b\": \"ok\"}\n"
      "{\"a\": 2, \"b\": \n"
      "[1, 2]\n"
      "{\"a\": \"three\", \"b\": \"typed\"}\n"
      "{\"a\": 4.5, \"b\": \"fraction\"}\n"
      "{\"a\": 5, \"b\": \"fine\"}\n";

  decode_stats stats;
  batch b = make_decoder("json", {}, schema)->decode(text_chunk(input), stats);
  REQUIRE(b.num_rows() == 6);
  CHECK(stats.rows == 6);
  CHECK(stats.malformed == 4);
  CHECK(is_null(b.at(0, 2)));
  CHECK(is_null(b.at(1, 0)));
  CHECK(b.at(1, 2) == value{std::string("{\"a\": 2, \"b\": ")});
  CHECK(b.at(2, 2) == value{std::string("[1, 2]")});
  CHECK(is_null(b.at(3, 0)));
  CHECK(b.at(3, 1) == value{std::string("typed")});
  CHECK(b.at(3, 2) == value{std::string("{\"a\": \"three\", \"b\": \"typed\"}")});
  CHECK(is_null(b.at(4, 0)));
  CHECK(b.at(4, 2) == value{std::string("{\"a\": 4.5, \"b\": \"fraction\"}")});
  CHECK(b.at(5, 0) == value{std::int64_t{5}});
  CHECK(is_null(b.at(5, 2)));

  decode_stats drop_stats;
  batch dropped = make_decoder("json", with_mode("DROPMALFORMED"), schema)->decode(text_chunk(input), drop_stats);
  REQUIRE(dropped.num_rows() == 2);
  CHECK(drop_stats.rows == 2);
  CHECK(drop_stats.malformed == 4);
  CHECK(dropped.at(1, 1) == value{std::string("fine")});

  auto failfast = make_decoder("json", with_mode("FAILFAST"), schema);
  decode_stats fail_stats;
  std::string syntax = error_of([&] { failfast->decode(text_chunk(input, 0, "events.json", 10), fail_stats); });
  CHECK(syntax.find("events.json line 11") != std::string::npos);
  CHECK(syntax.find("PERMISSIVE") != std::string::npos);
  CHECK(syntax.find("DROPMALFORMED") != std::string::npos);
  std::string typed = error_of([&] { failfast->decode(text_chunk("{\"a\": \"three\"}\n", 0, "e.json"), fail_stats); });
  CHECK(typed.find("e.json line 1") != std::string::npos);
  CHECK(typed.find("'a'") != std::string::npos);
  CHECK(typed.find("\"three\"") != std::string::npos);
  CHECK(typed.find("int64") != std::string::npos);
  CHECK(fail_stats.malformed == 2);
}

TEST_CASE("json: record_boundary and schema inference", "[formats][json][infer]") {
  auto dec = make_decoder("json", {}, json_schema());
  CHECK(dec->record_boundary("{\"a\":1}\n{\"a\"") == 8);
  CHECK(dec->record_boundary("{\"a\":1}") == 0);

  schema_ptr s = infer_schema("json", {},
                              {"{\"id\": 1, \"price\": 2, \"when\": \"2010-12-01 08:26:00\", \"nothing\": null}\n"
                               "{\"price\": 2.5, \"ok\": true, \"user\": {\"name\": \"a\", \"age\": 3}, \"mix\": 1}\n",
                               "{\"mix\": \"x\", \"tags\": [1], \"id\": 7}\n"});
  CHECK(s->to_string() == schema({{"id", type_id::int64},
                                  {"price", type_id::float64},
                                  {"when", type_id::string},
                                  {"nothing", type_id::string},
                                  {"ok", type_id::boolean},
                                  {"user.name", type_id::string},
                                  {"user.age", type_id::int64},
                                  {"mix", type_id::string},
                                  {"tags", type_id::string}})
                              .to_string());

  // Malformed sample lines add the corrupt record column in PERMISSIVE mode, fail in FAILFAST.
  schema_ptr with_corrupt = infer_schema("json", {}, {"{\"a\": 1}\nnot json\n"});
  CHECK(with_corrupt->names() == std::vector<std::string>{"a", "_corrupt_record"});
  CHECK(error_of([] { infer_schema("json", with_mode("FAILFAST"), {"{\"a\": 1}\nnot json\n"}); })
            .find("malformed JSON") != std::string::npos);
  CHECK(error_of([] { infer_schema("json", {}, {"\n"}); }).find("no JSON objects") != std::string::npos);
  // The last line of a file without a final newline is a record like any other.
  CHECK(infer_schema("json", {}, {"{\"a\": 1}\n{\"a\": \"x\"}"})->to_string() == "a: string");

  // The inferred schema decodes what it was inferred from.
  decode_stats stats;
  batch b = make_decoder("json", {}, s)->decode(
      text_chunk("{\"price\": 2.5, \"ok\": true, \"user\": {\"name\": \"a\", \"age\": 3}, \"mix\": 1}\n"), stats);
  CHECK(stats.malformed == 0);
  CHECK(b.col("user.age").at(0) == value{std::int64_t{3}});
  CHECK(b.col("mix").at(0) == value{std::string("1")});
}

TEST_CASE("text: one row per line", "[formats][text]") {
  auto dec = make_decoder("text", {}, nullptr);
  CHECK(dec->output_schema()->to_string() == "value: string");
  CHECK(infer_schema("text", {}, {})->to_string() == "value: string");
  decode_stats stats;
  batch b = dec->decode(text_chunk("\xEF\xBB\xBF" "first\r\n\nthird\r\nlast"), stats);
  REQUIRE(b.num_rows() == 4);
  CHECK(stats.rows == 4);
  CHECK(b.at(0, 0) == value{std::string("first")});
  CHECK(b.at(1, 0) == value{std::string("")});
  CHECK(b.at(2, 0) == value{std::string("third")});
  CHECK(b.at(3, 0) == value{std::string("last")});
  // The BOM is only a file's first bytes.
  batch later = dec->decode(text_chunk("\xEF\xBB\xBF" "x\n", 3), stats);
  REQUIRE(later.num_rows() == 1);
  CHECK(later.at(0, 0) == value{std::string("\xEF\xBB\xBF" "x")});
  CHECK(dec->record_boundary("a\r\nb") == 3);
  CHECK(dec->record_boundary("ab") == 0);
  CHECK(error_of([] { make_decoder("text", {}, make_schema({{"n", type_id::int64}})); }).find("one string column") !=
        std::string::npos);
}

TEST_CASE("text: Don Quijote has 37,861 lines", "[formats][text]") {
  std::string content = test::read_file(test::shared_data_dir() / "text" / "quijote.txt");
  auto buffer = std::make_shared<const std::string>(content);
  decode_stats stats;
  batch b = make_decoder("text", {}, nullptr)->decode(raw_chunk{buffer, 0, buffer->size(), "quijote.txt", 1}, stats);
  CHECK(b.num_rows() == 37861);
  CHECK(stats.bytes == content.size());
  const column& lines = b.col(0);
  bool any_cr = false;
  for (std::size_t i = 0; i < lines.size(); ++i) any_cr = any_cr || lines.str(i).find('\r') != std::string_view::npos;
  CHECK_FALSE(any_cr);
  CHECK_FALSE(lines.str(0).starts_with("\xEF\xBB\xBF"));
  CHECK_FALSE(lines.str(0).empty());
}

TEST_CASE("json: timestamps with a zone offset and long fractions, with and without timestampFormat",
          "[formats][json][timestamp]") {
  auto schema = make_schema({{"t", type_id::timestamp}});
  const std::string text = "{\"t\": \"2010-12-01T08:26:00+01:00\"}\n{\"t\": \"2010-12-01T08:26:00.123456789Z\"}\n"
                           "{\"t\": \"2010-12-1 8:26:00\"}\n";
  for (std::string format : {"", "yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]"}) {
    INFO(format);
    options opts = with_mode("FAILFAST");
    if (!format.empty()) opts.set("timestampFormat", format);
    decode_stats stats;
    batch b = make_decoder("json", opts, schema)->decode(text_chunk(text), stats);
    REQUIRE(b.num_rows() == 3);
    CHECK(b.at(0, 0) == value{*parse_timestamp("2010-12-01 07:26:00")});
    CHECK(b.at(1, 0) == value{*parse_timestamp("2010-12-01 08:26:00.123456")});
    CHECK(b.at(2, 0) == value{*parse_timestamp("2010-12-01 08:26:00")});
  }
  options refused;
  refused.set("timestampFormat", "MM/dd/yyyy");
  CHECK_THAT(error_of([&] { make_decoder("json", refused, schema); }),
             Catch::Contains("option 'timestampFormat' 'MM/dd/yyyy' is not supported"));
}
