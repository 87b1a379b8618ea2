// CSV decoding and inference: RFC 4180 cases, malformed records in every mode, chunking, and the retail data.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <random>
#include <filesystem>
#include <limits>
#include <sstream>

#include "flow/formats.hpp"
#include "test_support.hpp"

using namespace flow;

namespace {

// A chunk over text; begin > 0 places it after a prefix, as a chunk cut from the middle of a file.
raw_chunk chunk_of(const std::string& text, std::size_t begin = 0, std::string origin = "test.csv",
                   std::uint64_t first_line = 1) {
  auto buffer = std::make_shared<const std::string>(std::string(begin, 'x') + text);
  return raw_chunk{buffer, begin, buffer->size(), std::move(origin), first_line};
}

options make_options(std::initializer_list<std::pair<std::string, std::string>> pairs) {
  options opts;
  for (const auto& [k, v] : pairs) opts.set(k, v);
  return opts;
}

schema_ptr strings(std::initializer_list<std::string> names) {
  std::vector<field> fields;
  for (const auto& n : names) fields.push_back(field{n, type_id::string, true});
  return make_schema(fields);
}

batch decode_csv(const std::string& text, const schema_ptr& schema, const options& opts = {},
                 decode_stats* stats_out = nullptr, std::size_t begin = 0) {
  decode_stats stats;
  batch b = make_decoder("csv", opts, schema)->decode(chunk_of(text, begin), stats);
  if (stats_out) *stats_out = stats;
  return b;
}

value cell(const batch& b, std::size_t row, std::string_view column) { return b.col(column).at(row); }

using flow::test::error_of;

schema_ptr retail_schema() {
  return make_schema({{"InvoiceNo", type_id::string},
                      {"StockCode", type_id::string},
                      {"Description", type_id::string},
                      {"Quantity", type_id::int64},
                      {"InvoiceDate", type_id::timestamp},
                      {"UnitPrice", type_id::float64},
                      {"CustomerID", type_id::float64},
                      {"Country", type_id::string}});
}

std::filesystem::path retail_dir() { return test::shared_data_dir() / "retail-by-day"; }

}  // namespace

TEST_CASE("split_list: a comma-separated list without blanks around its items or empty ones", "[formats][options]") {
  CHECK(split_list("a, b ,\tc") == std::vector<std::string>{"a", "b", "c"});
  CHECK(split_list(",a,,b,") == std::vector<std::string>{"a", "b"});
  CHECK(split_list("host:1") == std::vector<std::string>{"host:1"});
  CHECK(split_list(" , ").empty());
  CHECK(split_list("").empty());
}

TEST_CASE("options: keys are case-insensitive and typed getters validate", "[formats][options]") {
  options opts;
  opts.set("Header", "TRUE");
  opts.set("maxFilesPerTrigger", "12");
  CHECK(opts.has("header"));
  CHECK(opts.has("HEADER"));
  CHECK(opts.all().count("header") == 1);
  CHECK(opts.get("HeAdEr") == "TRUE");
  CHECK(opts.get("missing", "fallback") == "fallback");
  CHECK(opts.get_bool("header", false));
  CHECK(opts.get_bool("absent", true));
  CHECK(opts.get_int("maxfilespertrigger", 0) == 12);
  CHECK(opts.get_int("absent", -3) == -3);
  opts.set("header", "False");
  CHECK_FALSE(opts.get_bool("header", true));
  opts.set("header", "yes");
  CHECK(error_of([&] { opts.get_bool("header", false); }) == "option 'header' must be true or false, got 'yes'");
  opts.set("maxFilesPerTrigger", "12x");
  CHECK(error_of([&] { opts.get_int("maxFilesPerTrigger", 0); }).find("must be an integer, got '12x'") !=
        std::string::npos);
}

TEST_CASE("parse modes", "[formats]") {
  CHECK(parse_parse_mode("PERMISSIVE") == parse_mode::permissive);
  CHECK(parse_parse_mode("dropMalformed") == parse_mode::drop_malformed);
  CHECK(parse_parse_mode("failfast") == parse_mode::fail_fast);
  CHECK(error_of([] { parse_parse_mode("strict"); }).find("PERMISSIVE, DROPMALFORMED or FAILFAST") != std::string::npos);
}

TEST_CASE("csv: RFC 4180 quoting", "[formats][csv]") {
  auto schema = strings({"a", "b", "c"});
  decode_stats stats;
  batch b = decode_csv(
      "plain,\"with, comma\",\"say \"\"hi\"\"\"\n"
      "\"multi\nline\",\"\"\"\",\"end\"\n"
      "x,\"\",z\n",
      schema, make_options({{"multiLine", "true"}}), &stats);
  REQUIRE(b.num_rows() == 3);
  CHECK(stats.rows == 3);
  CHECK(stats.malformed == 0);
  CHECK(cell(b, 0, "a") == value{std::string("plain")});
  CHECK(cell(b, 0, "b") == value{std::string("with, comma")});
  CHECK(cell(b, 0, "c") == value{std::string("say \"hi\"")});
  CHECK(cell(b, 1, "a") == value{std::string("multi\nline")});
  CHECK(cell(b, 1, "b") == value{std::string("\"")});
  CHECK(cell(b, 1, "c") == value{std::string("end")});
  // A quoted empty field is an empty string; an unquoted empty field is null.
  CHECK(cell(b, 2, "b") == value{std::string("")});
}

TEST_CASE("csv: line endings, BOM, blank lines, a last record without newline", "[formats][csv]") {
  auto schema = strings({"a", "b"});
  decode_stats stats;
  batch b = decode_csv("\xEF\xBB\xBF" "a1,b1\r\n\r\n\"q\r\nx\",b2\r\n\nlast,row", schema,
                       make_options({{"multiLine", "true"}}), &stats);
  REQUIRE(b.num_rows() == 3);
  CHECK(stats.malformed == 0);
  CHECK(stats.bytes == std::string("\xEF\xBB\xBF" "a1,b1\r\n\r\n\"q\r\nx\",b2\r\n\nlast,row").size());
  CHECK(cell(b, 0, "a") == value{std::string("a1")});
  CHECK(cell(b, 0, "b") == value{std::string("b1")});
  CHECK(cell(b, 1, "a") == value{std::string("q\r\nx")});
  CHECK(cell(b, 1, "b") == value{std::string("b2")});
  CHECK(cell(b, 2, "b") == value{std::string("row")});

  // The BOM is only skipped at the start of a file.
  batch middle = decode_csv("\xEF\xBB\xBF" "a,b\n", schema, {}, nullptr, 10);
  CHECK(cell(middle, 0, "a") == value{std::string("\xEF\xBB\xBF" "a")});
}

TEST_CASE("csv: blank lines before the header are skipped, and without multiLine so are lines of only blanks",
          "[formats][csv]") {
  // Spark takes the first non-blank line as the header and, reading lines, drops every line whose
  // trim is empty (spaces, tabs, a lone '\r'): such a line is no record, not even a malformed one.
  const std::string text = "\xEF\xBB\xBF\n\r\n  \na,b\n1,2\n \t\r\n3,4\n   ";
  auto header = make_options({{"header", "true"}});
  schema_ptr inferred = infer_schema("csv", header, {text});
  CHECK(inferred->to_string() == "a: int64, b: int64");
  for (const char* mode : {"PERMISSIVE", "DROPMALFORMED", "FAILFAST"}) {
    decode_stats stats;
    batch b = decode_csv(text, inferred, make_options({{"header", "true"}, {"mode", mode}}), &stats);
    REQUIRE(b.num_rows() == 2);
    CHECK(stats.malformed == 0);
    CHECK(cell(b, 0, "a") == value{std::int64_t{1}});
    CHECK(cell(b, 1, "b") == value{std::int64_t{4}});
  }

  // With multiLine empty lines before the header are skipped too; a line of blanks is a record there
  // (Spark's multiLine reader keeps it), so only empty lines precede the header here.
  auto multi = make_options({{"header", "true"}, {"multiLine", "true"}});
  const std::string quoted = "\n\r\na,b\n\"x\ny\",2\n";
  CHECK(infer_schema("csv", multi, {quoted})->to_string() == "a: string, b: int64");
  decode_stats stats;
  batch b = decode_csv(quoted, make_schema({{"a", type_id::string}, {"b", type_id::int64}}), multi, &stats);
  REQUIRE(b.num_rows() == 1);
  CHECK(stats.malformed == 0);
  CHECK(cell(b, 0, "a") == value{std::string("x\ny")});
}

TEST_CASE("csv: empty fields are null, spaces kept for strings and trimmed for numbers", "[formats][csv]") {
  auto schema = make_schema({{"s", type_id::string},
                             {"i", type_id::int64},
                             {"d", type_id::float64},
                             {"b", type_id::boolean},
                             {"t", type_id::timestamp}});
  decode_stats stats;
  batch b = decode_csv(
      ",,,,\n"
      " padded ,  42 , 2.5 , TRUE , 2010-12-01 08:26:00 \n"
      "x,-7,17850.0,false,2011-01-02T03:04:05.5\n"
      "y,+3,-1.5e3,False,2011-01-02\n",
      schema, {}, &stats);
  REQUIRE(b.num_rows() == 4);
  CHECK(stats.malformed == 0);
  for (const char* name : {"s", "i", "d", "b", "t"}) CHECK(is_null(cell(b, 0, name)));
  CHECK(cell(b, 1, "s") == value{std::string(" padded ")});
  CHECK(cell(b, 1, "i") == value{std::int64_t{42}});
  CHECK(cell(b, 1, "d") == value{2.5});
  CHECK(cell(b, 1, "b") == value{true});
  CHECK(cell(b, 1, "t") == value{*parse_timestamp("2010-12-01 08:26:00")});
  CHECK(cell(b, 2, "i") == value{std::int64_t{-7}});
  CHECK(cell(b, 2, "d") == value{17850.0});
  CHECK(cell(b, 2, "b") == value{false});
  CHECK(cell(b, 2, "t") == value{*parse_timestamp("2011-01-02 03:04:05.5")});
  CHECK(cell(b, 3, "i") == value{std::int64_t{3}});
  CHECK(cell(b, 3, "d") == value{-1500.0});
  CHECK(cell(b, 3, "b") == value{false});
  CHECK(cell(b, 3, "t") == value{*parse_timestamp("2011-01-02 00:00:00")});
}

TEST_CASE("csv: a double past the double range reads as infinity, below it as zero, as Java reads it",
          "[formats][csv]") {
  auto schema = make_schema({{"d", type_id::float64}});
  decode_stats stats;
  batch b = decode_csv("1e400\n-1.5E309\n1e-400\n", schema, make_options({{"mode", "FAILFAST"}}), &stats);
  CHECK(stats.malformed == 0);
  CHECK(b.col("d").at(0) == value{std::numeric_limits<double>::infinity()});
  CHECK(b.col("d").at(1) == value{-std::numeric_limits<double>::infinity()});
  CHECK(b.col("d").at(2) == value{0.0});
  CHECK((*infer_schema("csv", {}, {"1e400\n"}))[0].type == type_id::float64);
}

TEST_CASE("csv: short decimals read as exactly the double from_chars gives, bit for bit", "[formats][csv]") {
  // Random decimals of 1 to 17 digits with the point anywhere (short ones take a fast path, long ones
  // from_chars), and the edges: -0, a point at either end, a second point, 15 and 16 nines.
  std::mt19937_64 random(8);
  std::vector<std::string> texts = {"-0",  "0.0",  "-0.000", "1.",  ".5",   "1.2.3", "-",
                                    "999999999999999", "9999999999999999", "0.000000000000001", "123456789.012345"};
  for (int n = 0; n < 20000; ++n) {
    const int digits = 1 + static_cast<int>(random() % 17);
    std::string text = random() % 2 ? "-" : "";
    const int point = static_cast<int>(random() % static_cast<std::uint64_t>(digits + 1));
    for (int d = 0; d < digits; ++d) {
      if (d == point && d > 0) text += '.';
      text += static_cast<char>('0' + random() % 10);
    }
    texts.push_back(text);
  }
  std::string input;
  for (const auto& t : texts) input += t + "\n";
  decode_stats stats;
  batch b = decode_csv(input, make_schema({{"d", type_id::float64}}), {}, &stats);
  REQUIRE(b.num_rows() == texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string& t = texts[i];
    double expected = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), expected);
    const value got = b.col("d").at(i);
    INFO("text " << t);
    if (ec != std::errc{} || end != t.data() + t.size()) {
      CHECK(is_null(got));
    } else {
      REQUIRE(std::holds_alternative<double>(got));
      CHECK(std::bit_cast<std::uint64_t>(std::get<double>(got)) == std::bit_cast<std::uint64_t>(expected));
    }
  }
}

TEST_CASE("csv: nullValue and separator options", "[formats][csv]") {
  auto schema = make_schema({{"s", type_id::string}, {"i", type_id::int64}});
  batch b = decode_csv("NA;NA\n;5\n\"NA\";6\nok;7\n", schema, make_options({{"sep", ";"}, {"nullValue", "NA"}}));
  REQUIRE(b.num_rows() == 4);
  CHECK(is_null(cell(b, 0, "s")));
  CHECK(is_null(cell(b, 0, "i")));
  CHECK(is_null(cell(b, 1, "s")));
  CHECK(is_null(cell(b, 2, "s")));
  CHECK(cell(b, 3, "s") == value{std::string("ok")});

  batch tabs = decode_csv("a,b\t1\n", schema, make_options({{"sep", "\\t"}}));
  CHECK(cell(tabs, 0, "s") == value{std::string("a,b")});
  CHECK(cell(tabs, 0, "i") == value{std::int64_t{1}});

  CHECK(error_of([&] { make_decoder("csv", make_options({{"sep", "::"}}), schema); }).find("option 'sep'") !=
        std::string::npos);
  CHECK(error_of([&] { make_decoder("csv", make_options({{"escape", "\\"}}), schema); }).find("option 'escape'") !=
        std::string::npos);
  CHECK(error_of([&] { make_decoder("csv", make_options({{"mode", "lenient"}}), schema); }).find("mode") !=
        std::string::npos);
  CHECK(error_of([&] { make_decoder("csv", {}, nullptr); }).find("needs a schema") != std::string::npos);
  CHECK(error_of([&] { make_decoder("parquet", {}, schema); }).find("unknown format 'parquet'") != std::string::npos);
}

TEST_CASE("csv: header is skipped only in the chunk at file offset 0", "[formats][csv]") {
  auto schema = make_schema({{"name", type_id::string}, {"n", type_id::int64}});
  auto header = make_options({{"header", "true"}});
  auto dec = make_decoder("csv", header, schema);
  CHECK(dec->skips_header());
  CHECK_FALSE(make_decoder("csv", {}, schema)->skips_header());

  decode_stats stats;
  batch first = dec->decode(chunk_of("\xEF\xBB\xBF" "name,n\nx,1\ny,2\n"), stats);
  REQUIRE(first.num_rows() == 2);
  CHECK(cell(first, 0, "name") == value{std::string("x")});
  CHECK(stats.malformed == 0);

  batch later = dec->decode(chunk_of("z,3\nw,4\n", 20), stats);
  REQUIRE(later.num_rows() == 2);
  CHECK(cell(later, 0, "name") == value{std::string("z")});
  CHECK(stats.rows == 4);
  CHECK(stats.malformed == 0);

  // With multiLine, a header with a quoted newline is one record.
  batch quoted = make_decoder("csv", make_options({{"header", "true"}, {"multiLine", "true"}}), schema)
                     ->decode(chunk_of("\"na\nme\",n\nq,9\n"), stats);
  REQUIRE(quoted.num_rows() == 1);
  CHECK(cell(quoted, 0, "n") == value{std::int64_t{9}});
}

TEST_CASE("csv: malformed records in PERMISSIVE mode", "[formats][csv][malformed]") {
  auto schema = make_schema({{"s", type_id::string},
                             {"i", type_id::int64},
                             {"d", type_id::float64},
                             {"_corrupt_record", type_id::string}});
  const std::string input =
      "ok,1,1.5\n"
      "short,2\n"
      "long,3,3.5,extra\n"
      "badint,x4,4.5\n"
      "baddouble,5,five\n"
      "\"after\"quote,6,6.5\n"
      "good,7,7.5\n"
      "\"open,8,8.5\n";
  decode_stats stats;
  batch b = decode_csv(input, schema, {}, &stats);
  REQUIRE(b.num_rows() == 8);
  CHECK(stats.rows == 8);
  CHECK(stats.malformed == 6);
  CHECK(stats.bytes == input.size());

  CHECK(is_null(cell(b, 0, "_corrupt_record")));
  CHECK(cell(b, 1, "i") == value{std::int64_t{2}});
  CHECK(is_null(cell(b, 1, "d")));
  CHECK(cell(b, 1, "_corrupt_record") == value{std::string("short,2")});
  CHECK(cell(b, 2, "d") == value{3.5});
  CHECK(cell(b, 2, "_corrupt_record") == value{std::string("long,3,3.5,extra")});
  CHECK(is_null(cell(b, 3, "i")));
  CHECK(cell(b, 3, "d") == value{4.5});
  CHECK(cell(b, 3, "_corrupt_record") == value{std::string("badint,x4,4.5")});
  CHECK(cell(b, 4, "i") == value{std::int64_t{5}});
  CHECK(is_null(cell(b, 4, "d")));
  CHECK(cell(b, 4, "_corrupt_record") == value{std::string("baddouble,5,five")});
  CHECK(cell(b, 5, "s") == value{std::string("after")});
  CHECK(cell(b, 5, "_corrupt_record") == value{std::string("\"after\"quote,6,6.5")});
  CHECK(cell(b, 6, "s") == value{std::string("good")});
  CHECK(is_null(cell(b, 6, "_corrupt_record")));
  // A quote not closed on its line: the field runs to the line's end, one malformed record.
  CHECK(cell(b, 7, "s") == value{std::string("open,8,8.5")});
  CHECK(is_null(cell(b, 7, "i")));
  CHECK(cell(b, 7, "_corrupt_record") == value{std::string("\"open,8,8.5")});

  // Without a corrupt record column the rows are kept the same way.
  auto plain = make_schema({{"s", type_id::string}, {"i", type_id::int64}, {"d", type_id::float64}});
  decode_stats plain_stats;
  batch p = decode_csv(input, plain, {}, &plain_stats);
  CHECK(p.num_rows() == 8);
  CHECK(p.num_columns() == 3);
  CHECK(plain_stats.malformed == 6);

  // The corrupt record column may be renamed, and must be a string.
  auto renamed = make_schema({{"s", type_id::string}, {"i", type_id::int64}, {"bad", type_id::string}});
  batch r = decode_csv("a,1\nb,x\n", renamed, make_options({{"columnNameOfCorruptRecord", "bad"}}));
  CHECK(is_null(cell(r, 0, "bad")));
  CHECK(cell(r, 1, "bad") == value{std::string("b,x")});
  auto wrong = make_schema({{"s", type_id::string}, {"_corrupt_record", type_id::int64}});
  CHECK(error_of([&] { make_decoder("csv", {}, wrong); }).find("must have type string") != std::string::npos);
}

TEST_CASE("csv: malformed records in DROPMALFORMED mode", "[formats][csv][malformed]") {
  auto schema = make_schema({{"s", type_id::string}, {"i", type_id::int64}, {"d", type_id::float64}});
  decode_stats stats;
  batch b = decode_csv(
      "ok,1,1.5\nshort,2\nlong,3,3.5,extra\nbadint,x4,4.5\nbaddouble,5,five\n\"after\"quote,6,6.5\ngood,7,7.5\n"
      "\"open,8,8.5\n",
      schema, make_options({{"mode", "DROPMALFORMED"}}), &stats);
  REQUIRE(b.num_rows() == 2);
  CHECK(stats.rows == 2);
  CHECK(stats.malformed == 6);
  CHECK(cell(b, 0, "s") == value{std::string("ok")});
  CHECK(cell(b, 1, "s") == value{std::string("good")});
  CHECK(cell(b, 1, "i") == value{std::int64_t{7}});
  CHECK(cell(b, 1, "d") == value{7.5});
}

TEST_CASE("csv: FAILFAST names origin, line, field and value", "[formats][csv][malformed]") {
  auto schema = make_schema({{"s", type_id::string}, {"qty", type_id::int64}});
  auto failfast = make_options({{"mode", "FAILFAST"}, {"multiLine", "true"}});
  auto dec = make_decoder("csv", failfast, schema);

  decode_stats stats;
  batch ok = dec->decode(chunk_of("a,1\nb,2\n"), stats);
  CHECK(ok.num_rows() == 2);

  // Line numbers count from the chunk's first_line and include newlines inside quoted fields.
  std::string message;
  try {
    dec->decode(chunk_of("a,1\n\"multi\nline\",2\nb,oops\n", 0, "day.csv", 40), stats);
  } catch (const flow::error& e) {
    message = e.what();
  }
  CHECK(message.find("day.csv line 43") != std::string::npos);
  CHECK(message.find("'qty'") != std::string::npos);
  CHECK(message.find("'oops'") != std::string::npos);
  CHECK(message.find("int64") != std::string::npos);
  CHECK(message.find("PERMISSIVE") != std::string::npos);
  CHECK(message.find("DROPMALFORMED") != std::string::npos);
  CHECK(stats.malformed == 1);

  std::string count_message = error_of([&] { dec->decode(chunk_of("a,1\nb\n", 0, "f.csv"), stats); });
  CHECK(count_message.find("f.csv line 2") != std::string::npos);
  CHECK(count_message.find("expected 2 fields, found 1") != std::string::npos);

  std::string quote_message = error_of([&] { dec->decode(chunk_of("\"a,1\n", 0, "q.csv"), stats); });
  CHECK(quote_message.find("q.csv line 1") != std::string::npos);
  CHECK(quote_message.find("not closed") != std::string::npos);
  CHECK(stats.malformed == 3);
}

TEST_CASE("csv: converting only some columns gives their values exactly and null in the others",
          "[formats][csv][pruned][retail]") {
  const std::string content = test::read_file(retail_dir() / "2010-12-01.csv");
  auto buffer = std::make_shared<const std::string>(content);
  const raw_chunk chunk{buffer, 0, buffer->size(), "2010-12-01.csv", 1};
  auto whole = make_decoder("csv", make_options({{"header", "true"}, {"mode", "FAILFAST"}}), retail_schema());
  const std::vector<std::size_t> read{0, 1, 3, 5, 7};  // InvoiceNo, StockCode, Quantity, UnitPrice, Country
  auto pruned = whole->converting_only(read);
  REQUIRE(pruned);
  CHECK(pruned->output_schema() == whole->output_schema());
  decode_stats whole_stats, pruned_stats;
  const batch all = whole->decode(chunk, whole_stats);
  const batch some = pruned->decode(chunk, pruned_stats);
  REQUIRE(some.num_rows() == 3108);
  CHECK(pruned_stats.rows == whole_stats.rows);
  CHECK(pruned_stats.bytes == whole_stats.bytes);
  for (std::size_t c = 0; c < all.num_columns(); ++c) {
    INFO("column " << all.schema()[c].name);
    if (std::find(read.begin(), read.end(), c) == read.end()) {
      CHECK(some.col(c).data()->null_count == some.num_rows());  // not converted
      continue;
    }
    for (std::size_t i = 0; i < all.num_rows(); ++i) CHECK(some.at(i, c) == all.at(i, c));
  }
  // Nothing to skip, or a column out of the schema.
  CHECK_FALSE(whole->converting_only({0, 1, 2, 3, 4, 5, 6, 7}));
  CHECK(error_of([&] { whole->converting_only({0, 8}); }) ==
        "CSV decoder: column 8 to convert is not in its schema (" + retail_schema()->to_string() + ")");
  // Formats without columns to skip decode every column.
  CHECK_FALSE(make_decoder("json", {}, retail_schema())->converting_only({0}));
}

TEST_CASE("csv: a bad value in a column not converted spoils nothing, a malformed record still fails (Spark 2.4+)",
          "[formats][csv][pruned][malformed]") {
  auto schema = make_schema({{"s", type_id::string}, {"qty", type_id::int64}, {"when", type_id::timestamp}});
  const std::string input = "a,1,2010-12-01 08:26:00\nb,2,not a time\nc,x3,2010-12-01 08:27:00\n";
  for (const std::string mode : {"PERMISSIVE", "DROPMALFORMED", "FAILFAST"}) {
    INFO("mode " << mode);
    auto dec = make_decoder("csv", make_options({{"mode", mode}}), schema)->converting_only({0, 2});
    REQUIRE(dec);
    // Row 2's quantity is not converted: no row is malformed, every row is kept in every mode.
    decode_stats stats;
    const std::string good_times = "a,1,2010-12-01 08:26:00\nb,x2,2010-12-01 08:27:00\n";
    const batch b = dec->decode(chunk_of(good_times), stats);
    REQUIRE(b.num_rows() == 2);
    CHECK(stats.malformed == 0);
    CHECK(cell(b, 1, "s") == value{std::string("b")});
    CHECK(is_null(cell(b, 1, "qty")));
    CHECK(cell(b, 1, "when") == value{*parse_timestamp("2010-12-01 08:27:00")});
    // A bad value in a converted column counts as it always did.
    if (mode == "FAILFAST") {
      const std::string message = error_of([&] { dec->decode(chunk_of(input, 0, "day.csv"), stats); });
      CHECK(message.find("day.csv line 2") != std::string::npos);
      CHECK(message.find("'when' (field 3) has value 'not a time'") != std::string::npos);
    } else {
      decode_stats bad_stats;
      const batch bad = dec->decode(chunk_of(input), bad_stats);
      CHECK(bad_stats.malformed == 1);
      CHECK(bad.num_rows() == (mode == "PERMISSIVE" ? 3u : 2u));
    }
    // Records with fields missing or extra, or a broken quote, are malformed whatever is converted.
    decode_stats shape_stats;
    if (mode == "FAILFAST") {
      const std::string message = error_of([&] { dec->decode(chunk_of("a,1,2010-12-01 08:26:00\nb,2\n", 0, "f.csv"), shape_stats); });
      CHECK(message.find("f.csv line 2") != std::string::npos);
      CHECK(message.find("expected 3 fields, found 2") != std::string::npos);
    } else {
      const batch shaped = dec->decode(chunk_of("a,1,2010-12-01 08:26:00\nb,2\nc,3,2010-12-01 08:27:00,extra\n"), shape_stats);
      CHECK(shape_stats.malformed == 2);
      CHECK(shaped.num_rows() == (mode == "PERMISSIVE" ? 3u : 1u));
    }
  }
}

TEST_CASE("csv: reading the corrupt record column converts every column", "[formats][csv][pruned][malformed]") {
  auto schema = make_schema({{"s", type_id::string}, {"qty", type_id::int64}, {"_corrupt_record", type_id::string}});
  auto dec = make_decoder("csv", {}, schema);
  CHECK_FALSE(dec->converting_only({0, 2}));  // the record's every value decides whether it is corrupt
  auto pruned = dec->converting_only({0});
  REQUIRE(pruned);
  decode_stats stats;
  const batch b = pruned->decode(chunk_of("a,1\nb,x\n"), stats);
  CHECK(stats.malformed == 0);
  CHECK(is_null(cell(b, 1, "_corrupt_record")));
  CHECK(cell(b, 1, "s") == value{std::string("b")});
}

// 100,000 lines "<i>,v<i>", line 2 (i = 1) opening a quote that no later line closes.
std::string lines_with_stray_quote() {
  std::string text;
  for (int i = 0; i < 100000; ++i) {
    text += std::to_string(i) + (i == 1 ? ",\"v" : ",v") + std::to_string(i) + "\n";
  }
  return text;
}

TEST_CASE("csv: without multiLine a record is one line, and a stray quote spoils only its own line",
          "[formats][csv][malformed]") {
  auto schema = make_schema({{"id", type_id::int64}, {"v", type_id::string}, {"_corrupt_record", type_id::string}});
  const std::string text = lines_with_stray_quote();

  decode_stats permissive;
  batch kept = decode_csv(text, schema, {}, &permissive);
  REQUIRE(kept.num_rows() == 100000);
  CHECK(permissive.malformed == 1);
  CHECK(cell(kept, 1, "_corrupt_record") == value{std::string("1,\"v1")});
  CHECK(cell(kept, 1, "v") == value{std::string("v1")});  // the field runs to the line's end
  CHECK(is_null(cell(kept, 2, "_corrupt_record")));
  CHECK(cell(kept, 2, "id") == value{std::int64_t{2}});
  CHECK(cell(kept, 99999, "v") == value{std::string("v99999")});

  decode_stats dropping;
  batch dropped = decode_csv(text, schema, make_options({{"mode", "DROPMALFORMED"}}), &dropping);
  REQUIRE(dropped.num_rows() == 99999);
  CHECK(dropping.malformed == 1);
  CHECK(cell(dropped, 1, "id") == value{std::int64_t{2}});

  decode_stats failing;
  std::string message = error_of([&] { decode_csv(text, schema, make_options({{"mode", "FAILFAST"}}), &failing); });
  CHECK_THAT(message, Catch::Contains("test.csv line 2") && Catch::Contains("not closed"));

  // With multiLine the quote spans lines: it takes the rest of the input as one malformed record.
  decode_stats spanning;
  batch joined = decode_csv(text, schema, make_options({{"multiLine", "true"}}), &spanning);
  REQUIRE(joined.num_rows() == 2);
  CHECK(spanning.malformed == 1);
  CHECK(std::get<std::string>(cell(joined, 1, "v")).ends_with("99999,v99999\n"));

  CHECK_THAT(error_of([] { make_decoder("csv", make_options({{"multiLine", "yes"}}), strings({"a"})); }),
             Catch::Contains("option 'multiLine' must be true or false"));
  CHECK_THAT(error_of([] { make_decoder("json", make_options({{"multiLine", "true"}}), strings({"a"})); }),
             Catch::Contains("'multiLine' applies to csv only"));
}

TEST_CASE("csv: without multiLine record_boundary is the last line end, quotes or not", "[formats][csv]") {
  auto dec = make_decoder("csv", {}, strings({"a", "b"}));
  CHECK(dec->record_boundary("a,b") == 0);
  CHECK(dec->record_boundary("a,b\nc,\"x\ny") == 9);
  CHECK(dec->record_boundary("\"a\nb,c\nd") == 7);
  CHECK(make_decoder("csv", make_options({{"multiLine", "true"}}), strings({"a", "b"}))
            ->record_boundary("\"a\nb,c\nd") == 0);
}

TEST_CASE("csv: record_boundary respects quotes with multiLine", "[formats][csv]") {
  auto dec = make_decoder("csv", make_options({{"multiLine", "true"}}), strings({"a", "b"}));
  CHECK(dec->record_boundary("") == 0);
  CHECK(dec->record_boundary("a,b") == 0);
  CHECK(dec->record_boundary("a,b\n") == 4);
  CHECK(dec->record_boundary("a,b\nc,d") == 4);
  // The newline inside the quoted field is not a boundary.
  CHECK(dec->record_boundary("a,b\nc,\"x\ny") == 4);
  CHECK(dec->record_boundary("a,b\nc,\"x\ny\"\n") == 12);
  CHECK(dec->record_boundary("\"a\"\"\nb\",c\nd") == 10);
  // A quote inside an unquoted field is a literal character, as the decoder reads it.
  CHECK(dec->record_boundary("7\" frame,b\nc,d\n") == 15);
  CHECK(dec->record_boundary("a,\"\"\nb,c\n") == 9);
  CHECK(dec->record_boundary("x\r\ny\r\n") == 6);
}

TEST_CASE("csv: multiLine chunks cut at record_boundary decode like the whole input", "[formats][csv]") {
  auto schema = strings({"a", "b", "c"});
  std::string text;
  for (int i = 0; i < 200; ++i) {
    std::string number = std::to_string(i);
    text.append("r").append(number).append(",\"q,\"\"").append(number).append("\"\"\nnext\",");
    text.append(std::string(i % 7, ' ')).append("\r\n");
  }
  auto dec = make_decoder("csv", make_options({{"multiLine", "true"}}), schema);
  decode_stats whole_stats;
  batch whole = dec->decode(chunk_of(text), whole_stats);
  REQUIRE(whole.num_rows() == 200);

  for (std::size_t target : {7u, 50u, 333u}) {
    auto buffer = std::make_shared<const std::string>(text);
    std::vector<batch> parts;
    decode_stats stats;
    std::size_t begin = 0;
    while (begin < text.size()) {
      std::size_t want = std::min(text.size() - begin, target);
      std::size_t cut = dec->record_boundary(std::string_view(text).substr(begin, want));
      while (cut == 0 && begin + want < text.size()) {
        want = std::min(text.size() - begin, want * 2);
        cut = dec->record_boundary(std::string_view(text).substr(begin, want));
      }
      if (cut == 0) cut = text.size() - begin;
      parts.push_back(dec->decode(raw_chunk{buffer, begin, begin + cut, "t", 1}, stats));
      begin += cut;
    }
    CHECK(stats.malformed == 0);
    CHECK(concat(parts) == whole);
  }
}

TEST_CASE("csv: schema inference", "[formats][csv][infer]") {
  auto opts = make_options({{"header", "true"}});
  std::string sample =
      "id,price,flag,when,name,empty,mixed\n"
      "1,2,true,2010-12-01 08:26:00,a,,1\n"
      "2,2.5,FALSE,2010-12-01 09:00:00,b,,x\n"
      ",,,,,,\n";
  schema_ptr s = infer_schema("csv", opts, {sample});
  CHECK(s->to_string() == schema({{"id", type_id::int64},
                                  {"price", type_id::float64},
                                  {"flag", type_id::boolean},
                                  {"when", type_id::timestamp},
                                  {"name", type_id::string},
                                  {"empty", type_id::string},
                                  {"mixed", type_id::string}})
                              .to_string());
  for (const auto& f : s->fields()) CHECK(f.nullable);

  // No header: _c0, _c1...; later samples add records, and a header in every sample is skipped.
  schema_ptr no_header = infer_schema("csv", {}, {"1,x\n2,y\n"});
  CHECK(no_header->names() == std::vector<std::string>{"_c0", "_c1"});
  CHECK((*no_header)[0].type == type_id::int64);
  schema_ptr two = infer_schema("csv", opts, {"n\n1\n", "n\n1.5\n"});
  CHECK((*two)[0].type == type_id::float64);

  // Empty and duplicate header names (Spark: _c<i>, and the index appended to every duplicate).
  schema_ptr names = infer_schema("csv", opts, {"a,,A,b\n1,2,3,4\n"});
  CHECK(names->names() == std::vector<std::string>{"a0", "_c1", "A2", "b"});

  // A multiLine sample cut at a line end inside a quoted field: that tail does not spoil the types.
  schema_ptr cut = infer_schema("csv", make_options({{"header", "true"}, {"multiLine", "true"}}),
                                {"n,s\n1,\"a\nb\"\nx,\"cut\n"});
  CHECK((*cut)[0].type == type_id::int64);

  // Very large integers widen to float64; numbers with a text suffix stay strings.
  CHECK((*infer_schema("csv", {}, {"99999999999999999999\n"}))[0].type == type_id::float64);
  CHECK((*infer_schema("csv", {}, {"1.5d\n"}))[0].type == type_id::string);
  CHECK((*infer_schema("csv", {}, {"inf\n"}))[0].type == type_id::string);

  CHECK(error_of([] { infer_schema("csv", {}, {""}); }).find("no records") != std::string::npos);
}

TEST_CASE("csv: inferSchema counts the last record of a file without a final newline", "[formats][csv][infer]") {
  auto header = make_options({{"header", "true"}});
  const std::string text = "a,c\n1,3\n4,x";
  schema_ptr s = infer_schema("csv", header, {text});
  CHECK(s->to_string() == "a: int64, c: string");
  auto failfast = make_options({{"header", "true"}, {"mode", "FAILFAST"}});
  decode_stats stats;
  batch b = make_decoder("csv", failfast, s)->decode(chunk_of(text), stats);
  REQUIRE(b.num_rows() == 2);
  CHECK(cell(b, 1, "c") == value{std::string("x")});

  // csv-spectrum's utf8.csv: a multi-byte last value, no final newline.
  const std::string utf8 = "a,b,c\n1,2,3\n4,5,\xCA\xA4";
  schema_ptr u = infer_schema("csv", header, {utf8});
  CHECK(u->to_string() == "a: int64, b: int64, c: string");
  batch ub = make_decoder("csv", failfast, u)->decode(chunk_of(utf8), stats);
  REQUIRE(ub.num_rows() == 2);
  CHECK(cell(ub, 1, "c") == value{std::string("\xCA\xA4")});
  CHECK(stats.malformed == 0);
}

TEST_CASE("csv: retail 2010-12-01 schema inference matches Spark", "[formats][csv][retail]") {
  std::string content = test::read_file(retail_dir() / "2010-12-01.csv");
  schema_ptr s = infer_schema("csv", make_options({{"header", "true"}}), {content});
  CHECK(*s == *retail_schema());
}

TEST_CASE("csv: retail 2010-12-01 decodes completely and exactly", "[formats][csv][retail]") {
  std::string content = test::read_file(retail_dir() / "2010-12-01.csv");
  auto opts = make_options({{"header", "true"}, {"mode", "FAILFAST"}});
  schema_ptr s = infer_schema("csv", opts, {content});
  auto buffer = std::make_shared<const std::string>(content);
  decode_stats stats;
  batch b = make_decoder("csv", opts, s)->decode(raw_chunk{buffer, 0, buffer->size(), "2010-12-01.csv", 1}, stats);
  REQUIRE(b.num_rows() == 3108);
  CHECK(stats.malformed == 0);
  CHECK(stats.bytes == content.size());

  // Independent count of empty CustomerID fields: the second-to-last field of each data line.
  std::istringstream lines(content);
  std::string line;
  std::getline(lines, line);
  std::size_t empty_ids = 0;
  while (std::getline(lines, line)) {
    std::size_t last = line.rfind(',');
    std::size_t before = line.rfind(',', last - 1);
    if (last == before + 1) ++empty_ids;
  }
  CHECK(empty_ids > 0);
  CHECK(b.col("CustomerID").data()->null_count == empty_ids);

  auto find_row = [&](std::string_view invoice, std::string_view stock) -> std::size_t {
    const column& inv = b.col("InvoiceNo");
    const column& code = b.col("StockCode");
    for (std::size_t i = 0; i < b.num_rows(); ++i) {
      if (inv.str(i) == invoice && code.str(i) == stock) return i;
    }
    FAIL("row " << invoice << "/" << stock << " not found");
    return 0;
  };
  // grep: 536381,82567,"AIRLINE LOUNGE,METAL SIGN",2,2010-12-01 09:41:00,2.1,15311.0,United Kingdom
  std::size_t lounge = find_row("536381", "82567");
  CHECK(b.at(lounge, 2) == value{std::string("AIRLINE LOUNGE,METAL SIGN")});
  CHECK(b.at(lounge, 3) == value{std::int64_t{2}});
  CHECK(b.at(lounge, 4) == value{*parse_timestamp("2010-12-01 09:41:00")});
  CHECK(b.at(lounge, 5) == value{2.1});
  CHECK(b.at(lounge, 6) == value{15311.0});
  CHECK(b.at(lounge, 7) == value{std::string("United Kingdom")});
  // grep: 536394,21506,"FANCY FONT BIRTHDAY CARD, ",24,... (comma and trailing space kept)
  CHECK(b.at(find_row("536394", "21506"), 2) == value{std::string("FANCY FONT BIRTHDAY CARD, ")});
  // grep: 536477,22041,"RECORD FRAME 7"" SINGLE SIZE ",48,...
  CHECK(b.at(find_row("536477", "22041"), 2) == value{std::string("RECORD FRAME 7\" SINGLE SIZE ")});
  // grep: 536540,85071C,"CHARLIE+LOLA""EXTREMELY BUSY"" SIGN",6,...
  CHECK(b.at(find_row("536540", "85071C"), 2) == value{std::string("CHARLIE+LOLA\"EXTREMELY BUSY\" SIGN")});
  // grep: 536544,90214D,"LETTER ""D"" BLING KEY RING",1,2010-12-01 14:32:00,0.85,,United Kingdom
  std::size_t letter = find_row("536544", "90214D");
  CHECK(b.at(letter, 2) == value{std::string("LETTER \"D\" BLING KEY RING")});
  CHECK(is_null(b.at(letter, 6)));
  CHECK(b.at(letter, 5) == value{0.85});

  // Cancelled invoices keep their 'C' and negative quantities parse.
  bool saw_cancel = false;
  for (std::size_t i = 0; i < b.num_rows(); ++i) {
    if (b.col("InvoiceNo").str(i).starts_with("C")) {
      saw_cancel = true;
      CHECK(b.col("Quantity").ints()[i] < 0);
    }
  }
  CHECK(saw_cancel);
}

TEST_CASE("csv: all 305 retail files decode to 541,909 rows", "[formats][csv][retail]") {
  auto opts = make_options({{"header", "true"}, {"mode", "PERMISSIVE"}});
  auto dec = make_decoder("csv", opts, retail_schema());
  decode_stats stats;
  std::size_t files = 0;
  std::size_t null_ids = 0;
  for (const auto& entry : std::filesystem::directory_iterator(retail_dir())) {
    if (entry.path().extension() != ".csv") continue;
    ++files;
    auto buffer = std::make_shared<const std::string>(test::read_file(entry.path()));
    batch b = dec->decode(raw_chunk{buffer, 0, buffer->size(), entry.path().filename().string(), 1}, stats);
    null_ids += b.col("CustomerID").data()->null_count;
    CHECK(b.col("Quantity").data()->null_count == 0);
    CHECK(b.col("InvoiceDate").data()->null_count == 0);
    CHECK(b.col("UnitPrice").data()->null_count == 0);
  }
  CHECK(files == 305);
  CHECK(stats.rows == 541909);
  CHECK(stats.malformed == 0);
  CHECK(null_ids == 135080);
}

TEST_CASE("csv: random input never crashes, and chunking at record_boundary never changes the result",
          "[formats][csv][fuzz]") {
  auto schema = make_schema({{"s", type_id::string}, {"i", type_id::int64}, {"_corrupt_record", type_id::string}});
  const std::string alphabet = ",,\"\"\n\n\r a1";
  std::uint64_t state = 42;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>(state >> 33);
  };
  for (const auto& [mode, multi_line] : {std::pair{"PERMISSIVE", "false"}, {"PERMISSIVE", "true"},
                                          {"DROPMALFORMED", "false"}, {"DROPMALFORMED", "true"}}) {
    auto dec = make_decoder("csv", make_options({{"mode", mode}, {"multiLine", multi_line}}), schema);
    for (int round = 0; round < 400; ++round) {
      std::string text;
      std::size_t length = next() % 120;
      for (std::size_t k = 0; k < length; ++k) text += alphabet[next() % alphabet.size()];
      auto buffer = std::make_shared<const std::string>(text);
      decode_stats whole_stats;
      batch whole = dec->decode(raw_chunk{buffer, 0, text.size(), "fuzz", 1}, whole_stats);
      CHECK(whole.num_rows() == whole_stats.rows);

      std::vector<batch> parts;
      decode_stats part_stats;
      std::size_t begin = 0;
      std::size_t target = 1 + next() % 40;
      while (begin < text.size()) {
        std::size_t cut = dec->record_boundary(std::string_view(text).substr(begin, target));
        if (cut == 0) cut = dec->record_boundary(std::string_view(text).substr(begin));
        if (cut == 0) cut = text.size() - begin;
        parts.push_back(dec->decode(raw_chunk{buffer, begin, begin + cut, "fuzz", 1}, part_stats));
        begin += cut;
      }
      INFO("mode " << mode << ", multiLine " << multi_line << ", input: " << text);
      CHECK(part_stats.rows == whole_stats.rows);
      CHECK(part_stats.malformed == whole_stats.malformed);
      if (!parts.empty()) CHECK(concat(parts) == whole);
    }
  }
}

TEST_CASE("csv: a schema with an array column is refused up front, naming the column and what to do", "[formats][csv]") {
  auto schema = make_schema({{"id", type_id::int64, true}, {"tags", type_id::string_list, true}});
  auto message = flow::test::error_of([&] { make_decoder("csv", {}, schema); });
  CHECK_THAT(message, Catch::Contains("CSV cannot read column 'tags' of type array<string>"));
  CHECK_THAT(message, Catch::Contains("Declare the column as string and split it"));
  CHECK_THAT(message, Catch::Contains("read the data as json"));
  // Refused whatever the mode: no per-row failures.
  CHECK_THAT(flow::test::error_of([&] { make_decoder("csv", make_options({{"mode", "DROPMALFORMED"}}), schema); }),
             Catch::Contains("column 'tags'"));
}

TEST_CASE("csv: timestamps with a zone offset, long fractions and single-digit fields, with and without "
          "timestampFormat", "[formats][csv][timestamp]") {
  auto schema = make_schema({{"id", type_id::int64}, {"t", type_id::timestamp}});
  const std::string text =
      "1,2010-12-01T08:26:00+01:00\n"
      "2,2010-12-01 08:26:00Z\n"
      "3,2010-12-01 08:26:00.123456789\n"
      "4,2010-12-1 8:26:00\n"
      "5,2010-12-01T08:26:00.5-0130\n";
  const std::vector<value> expected{*parse_timestamp("2010-12-01 07:26:00"), *parse_timestamp("2010-12-01 08:26:00"),
                                    *parse_timestamp("2010-12-01 08:26:00.123456"),
                                    *parse_timestamp("2010-12-01 08:26:00"), *parse_timestamp("2010-12-01 09:56:00.5")};
  for (std::string format : {"", "yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss",
                             "yyyy-MM-dd HH:mm:ss.SSSSSS", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "yyyy-M-d H:mm:ss",
                             "yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd HH:mm:ssZ"}) {
    INFO(format);
    options opts = format.empty() ? options{} : make_options({{"timestampFormat", format}, {"mode", "FAILFAST"}});
    decode_stats stats;
    batch b = decode_csv(text, schema, opts, &stats);
    CHECK(stats.malformed == 0);
    REQUIRE(b.num_rows() == expected.size());
    for (std::size_t r = 0; r < expected.size(); ++r) CHECK(cell(b, r, "t") == expected[r]);
  }
  // A pattern that describes other text is refused, saying what is read instead.
  CHECK_THAT(error_of([&] { make_decoder("csv", make_options({{"timestampFormat", "dd/MM/yyyy HH:mm"}}), schema); }),
             Catch::Contains("option 'timestampFormat' 'dd/MM/yyyy HH:mm' is not supported") &&
                 Catch::Contains("yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]"));
  // inferSchema takes these forms as timestamps too.
  auto inferred = infer_schema("csv", make_options({{"inferSchema", "true"}}), {text});
  REQUIRE(inferred->size() == 2);
  CHECK((*inferred)[1].type == type_id::timestamp);
}

TEST_CASE("csv: a timestamp repeated from the previous row, quoted, blank-padded, or after a bad one, reads as "
          "parsed afresh", "[formats][csv][timestamp]") {
  auto schema = make_schema({{"t", type_id::timestamp}, {"u", type_id::timestamp}});
  const std::string text =
      "2010-12-01 08:26:00,2010-12-01 08:26:00\n"
      "2010-12-01 08:26:00,\"2010-12-01 08:26:00\"\n"
      "2010-12-01 08:26:00 ,2010-12-01 08:26:01\n"
      "2010-12-01 08:26:0x,2010-12-01 08:26:01\n"
      "2010-12-01 08:26:00,2010-12-01 08:26:00\n"
      ",2010-12-01 08:26:00\n";
  decode_stats stats;
  batch b = decode_csv(text, schema, {}, &stats);
  CHECK(stats.malformed == 1);
  const value t0 = *parse_timestamp("2010-12-01 08:26:00"), t1 = *parse_timestamp("2010-12-01 08:26:01");
  const value none{null_value{}};
  const std::vector<std::vector<value>> expected{{t0, t0}, {t0, t0}, {t0, t1}, {none, t1}, {t0, t0}, {none, t0}};
  REQUIRE(b.num_rows() == expected.size());
  for (std::size_t r = 0; r < expected.size(); ++r) {
    CHECK(cell(b, r, "t") == expected[r][0]);
    CHECK(cell(b, r, "u") == expected[r][1]);
  }
}
