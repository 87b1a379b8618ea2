// Writing text: the JSON string escaper, ISO timestamps and the row encoder every text sink uses.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "flow/formats.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;

namespace {

timestamp ts(const char* text) { return *parse_timestamp(text); }

raw_chunk chunk_of(const std::string& text) {
  auto buffer = std::make_shared<const std::string>(text);
  return raw_chunk{buffer, 0, buffer->size(), "encoded", 1};
}

batch decode_all(std::string_view format, const options& opts, const schema_ptr& schema, const std::string& text) {
  decode_stats stats;
  batch out = make_decoder(format, opts, schema)->decode(chunk_of(text), stats);
  CHECK(stats.malformed == 0);
  return out;
}

schema_ptr scalar_schema() {
  return make_schema({{"id", type_id::int64, true},
                      {"name", type_id::string, true},
                      {"price", type_id::float64, true},
                      {"paid", type_id::boolean, true},
                      {"at", type_id::timestamp, true}});
}

batch scalar_rows() {
  return make_batch(
      scalar_schema(),
      {{value{std::int64_t{1}}, value{std::string("plain")}, value{2.5}, value{true}, value{ts("2010-12-01 08:26:00")}},
       {value{std::int64_t{2}}, value{std::string("with, comma; semi")}, value{-0.125}, value{false},
        value{ts("2010-12-01 08:26:00.123456")}},
       {value{std::int64_t{3}}, value{std::string("say \"hi\"")}, value{1e21}, null_value{}, null_value{}},
       {value{std::int64_t{-4}}, value{std::string("two\nlines\r\n")}, null_value{}, value{true},
        value{ts("1969-12-31 23:59:59.5")}},
       {null_value{}, value{std::string("")}, value{3.0}, value{false}, value{ts("2010-12-01 00:00:00.001")}},
       {value{std::int64_t{6}}, null_value{}, value{-std::numeric_limits<double>::infinity()}, value{true},
        value{ts("2010-12-01 00:00:00")}}});
}

}  // namespace

TEST_CASE("json_escape: quotes, backslash, control characters escaped, UTF-8 and other bytes passed through",
          "[formats][encoder]") {
  CHECK(json_escape("plain text") == "plain text");
  CHECK(json_escape("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(json_escape("\n\r\t\b\f") == "\\n\\r\\t\\b\\f");
  CHECK(json_escape(std::string("\x00\x01\x1f", 3)) == "\\u0000\\u0001\\u001f");
  CHECK(json_escape("/ \x7f") == "/ \x7f");  // neither needs escaping in JSON
  const std::string utf8 = "Espa\xC3\xB1" "a \xE2\x82\xAC \xF0\x9F\x98\x80";  // ñ, €, an emoji
  CHECK(json_escape(utf8) == utf8);
  CHECK(json_escape("") == "");

  std::string out = "x=";
  append_json_string(out, "say \"hi\"\n");
  CHECK(out == "x=\"say \\\"hi\\\"\\n\"");
}

TEST_CASE("json_escape output is read back unchanged by libflow's JSON reader", "[formats][encoder]") {
  std::string tricky = std::string("q\" b\\ nl\n cr\r tab\t bs\b ff\f nul") + std::string(1, '\0') +
                       "\x01\x1f Espa\xC3\xB1" "a \xF0\x9F\x98\x80";
  std::string line = "{\"s\":";
  append_json_string(line, tricky);
  line += "}\n";
  auto back = decode_all("json", {}, make_schema({{"s", type_id::string, true}}), line);
  REQUIRE(back.num_rows() == 1);
  CHECK(back.at(0, 0) == value{tricky});
}

TEST_CASE("iso_timestamp writes Spark's JSON timestamps, and parse_timestamp reads them back", "[formats][encoder]") {
  CHECK(iso_timestamp(ts("2010-12-01 08:26:00")) == "2010-12-01T08:26:00.000Z");
  CHECK(iso_timestamp(ts("2010-12-01 08:26:00.5")) == "2010-12-01T08:26:00.500Z");
  CHECK(iso_timestamp(ts("2010-12-01 08:26:00.000250")) == "2010-12-01T08:26:00.000250Z");
  CHECK(iso_timestamp(ts("1969-12-31 23:59:59.5")) == "1969-12-31T23:59:59.500Z");
  for (const char* text : {"2010-12-01 08:26:00", "2010-12-01 08:26:00.123456", "1969-12-31 23:59:59.999999",
                           "1900-03-01 00:00:00.001", "2024-02-29 23:59:59"}) {
    CHECK(parse_timestamp(iso_timestamp(ts(text))) == ts(text));
  }
}

TEST_CASE("row_encoder csv: RFC 4180 quoting, null vs empty string, header, separator", "[formats][encoder]") {
  row_encoder plain(text_encoding::csv, scalar_schema());
  CHECK(plain.header().empty());
  std::string text = plain.encode(scalar_rows());
  CHECK(text ==
        "1,plain,2.5,true,2010-12-01 08:26:00\n"
        "2,\"with, comma; semi\",-0.125,false,2010-12-01 08:26:00.123456\n"
        "3,\"say \"\"hi\"\"\",1.0E21,,\n"
        "-4,\"two\nlines\r\n\",,true,1969-12-31 23:59:59.5\n"
        ",\"\",3.0,false,2010-12-01 00:00:00.001\n"
        "6,,-Infinity,true,2010-12-01 00:00:00\n");
  // A string with line breaks stays one quoted field: read back with multiLine, as in Spark.
  options multi_line;
  multi_line.set("multiLine", "true");
  CHECK(decode_all("csv", multi_line, scalar_schema(), text) == scalar_rows());

  encoder_options opts;
  opts.separator = ';';
  opts.header = true;
  row_encoder semi(text_encoding::csv, scalar_schema(), opts);
  CHECK(semi.header() == "id;name;price;paid;at\n");
  std::string with_header = semi.encode(scalar_rows());
  CHECK(with_header.rfind("id;name;price;paid;at\n1;plain;", 0) == 0);
  CHECK(with_header.find("\n2;with, comma; semi;") == std::string::npos);  // the separator is quoted
  CHECK(with_header.find("\n2;\"with, comma; semi\";") != std::string::npos);
  options read_opts;
  read_opts.set("header", "true");
  read_opts.set("sep", ";");
  read_opts.set("multiLine", "true");
  CHECK(decode_all("csv", read_opts, scalar_schema(), with_header) == scalar_rows());

  std::string one;
  plain.append_row(one, scalar_rows(), 0);
  CHECK(one == "1,plain,2.5,true,2010-12-01 08:26:00");  // no line end
}

TEST_CASE("row_encoder csv refuses window and array columns up front, naming the column", "[formats][encoder]") {
  auto lists = make_schema({{"id", type_id::int64, true}, {"tags", type_id::string_list, true}});
  auto message = error_of([&] { row_encoder(text_encoding::csv, lists); });
  CHECK_THAT(message, Catch::Contains("CSV data source does not support array<string> data type (column 'tags')"));
  CHECK_THAT(message, Catch::Contains("write JSON instead"));
  auto windows = make_schema({{"w", type_id::window, true}});
  CHECK_THAT(error_of([&] { row_encoder(text_encoding::csv, windows); }),
             Catch::Contains("does not support window data type (column 'w')"));
  // JSON and text take them.
  CHECK(error_of([&] { row_encoder(text_encoding::json, lists); }) == "<no error>");
  CHECK(error_of([&] { row_encoder(text_encoding::text, lists); }) == "<no error>");

  encoder_options bad;
  bad.separator = '\n';
  CHECK_THAT(error_of([&] { row_encoder(text_encoding::csv, scalar_schema(), bad); }),
             Catch::Contains("separator"));
}

TEST_CASE("row_encoder json: Spark's JSON lines, ISO or plain timestamps, windows and arrays", "[formats][encoder]") {
  auto schema = make_schema({{"name", type_id::string, true},
                             {"x", type_id::float64, true},
                             {"at", type_id::timestamp, true},
                             {"w", type_id::window, true},
                             {"words", type_id::string_list, true}});
  window_value hour{ts("2010-12-01 08:00:00"), ts("2010-12-01 09:00:00")};
  auto rows = make_batch(schema, {{value{std::string("a\"b")}, value{0.5}, value{ts("2010-12-01 08:26:00.000250")},
                                   value{hour}, value{std::vector<std::string>{"to", "\"be\""}}},
                                  {null_value{}, value{std::nan("")}, null_value{}, null_value{},
                                   value{std::vector<std::string>{}}}});
  row_encoder iso(text_encoding::json, schema);
  CHECK(iso.encode(rows) ==
        "{\"name\":\"a\\\"b\",\"x\":0.5,\"at\":\"2010-12-01T08:26:00.000250Z\","
        "\"w\":{\"start\":\"2010-12-01T08:00:00.000Z\",\"end\":\"2010-12-01T09:00:00.000Z\"},"
        "\"words\":[\"to\",\"\\\"be\\\"\"]}\n"
        "{\"x\":\"NaN\",\"words\":[]}\n");
  encoder_options opts;
  opts.iso_timestamps = false;
  row_encoder plain(text_encoding::json, schema, opts);
  std::string one;
  plain.append_row(one, rows, 0);
  CHECK(one.find("\"at\":\"2010-12-01 08:26:00.00025\"") != std::string::npos);
  CHECK(one.find("{\"start\":\"2010-12-01 08:00:00\",\"end\":\"2010-12-01 09:00:00\"}") != std::string::npos);
  CHECK(one.back() == '}');
}

TEST_CASE("row_encoder json output is read back by libflow's JSON reader, timestamps included", "[formats][encoder]") {
  for (bool iso_timestamps : {true, false}) {
    encoder_options opts;
    opts.iso_timestamps = iso_timestamps;
    auto finite = scalar_rows().slice(0, 5);  // -Infinity comes back as a string, not a number
    std::string text = row_encoder(text_encoding::json, scalar_schema(), opts).encode(finite);
    CHECK(decode_all("json", {}, scalar_schema(), text) == finite);
  }
}

TEST_CASE("row_encoder text: the value column, else the row as CSV", "[formats][encoder]") {
  auto with_value = make_schema({{"key", type_id::string, true}, {"value", type_id::int64, true}});
  auto rows = make_batch(with_value, {{value{std::string("a")}, value{std::int64_t{42}}},
                                      {value{std::string("b")}, null_value{}}});
  CHECK(row_encoder(text_encoding::text, with_value).encode(rows) == "42\n\n");

  auto without = make_schema({{"word", type_id::string, true}, {"tags", type_id::string_list, true}});
  auto table = make_batch(without, {{value{std::string("x,y")}, value{std::vector<std::string>{"p", "q"}}},
                                    {value{std::string("")}, null_value{}}});
  CHECK(row_encoder(text_encoding::text, without).encode(table) == "\"x,y\",\"[p, q]\"\n\"\",\n");
}

TEST_CASE("row_encoder refuses a batch whose columns differ from its schema", "[formats][encoder]") {
  row_encoder encoder(text_encoding::json, scalar_schema());
  auto other = make_batch(make_schema({{"id", type_id::string, true}}), {{value{std::string("1")}}});
  std::string out;
  auto message = error_of([&] { encoder.append_rows(out, other); });
  CHECK_THAT(message, Catch::Contains("cannot write rows of schema (") && Catch::Contains("declared columns"));
}
