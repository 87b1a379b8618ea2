#include <catch2/catch.hpp>

#include "flow/schema.hpp"
#include "flow/types.hpp"

using namespace flow;

namespace {

timestamp ts(std::string_view text) {
  auto t = parse_timestamp(text);
  REQUIRE(t.has_value());
  return *t;
}

constexpr std::int64_t second = 1'000'000;

}  // namespace

TEST_CASE("type names round trip and accept Spark spellings", "[types]") {
  for (auto t : {type_id::boolean, type_id::int64, type_id::float64, type_id::string, type_id::timestamp,
                 type_id::window}) {
    CHECK(parse_type_name(type_name(t)) == t);
  }
  CHECK(parse_type_name("long") == type_id::int64);
  CHECK(parse_type_name("BIGINT") == type_id::int64);
  CHECK(parse_type_name("int") == type_id::int64);
  CHECK(parse_type_name("Integer") == type_id::int64);
  CHECK(parse_type_name("double") == type_id::float64);
  CHECK(parse_type_name("float") == type_id::float64);
  CHECK(parse_type_name("boolean") == type_id::boolean);
  CHECK(parse_type_name("String") == type_id::string);
  CHECK(parse_type_name("timestamp") == type_id::timestamp);
  CHECK_FALSE(parse_type_name("decimal").has_value());
  CHECK_FALSE(parse_type_name("").has_value());
  CHECK(is_numeric(type_id::int64));
  CHECK(is_numeric(type_id::float64));
  CHECK_FALSE(is_numeric(type_id::string));
  CHECK_FALSE(is_numeric(type_id::timestamp));
}

TEST_CASE("type_of reports the value's type", "[types]") {
  CHECK_FALSE(type_of(value{}).has_value());
  CHECK(type_of(value{true}) == type_id::boolean);
  CHECK(type_of(value{std::int64_t{3}}) == type_id::int64);
  CHECK(type_of(value{2.5}) == type_id::float64);
  CHECK(type_of(value{std::string("x")}) == type_id::string);
  CHECK(type_of(value{timestamp{5}}) == type_id::timestamp);
  CHECK(type_of(value{window_value{}}) == type_id::window);
  CHECK(is_null(value{}));
  CHECK_FALSE(is_null(value{0.0}));
}

TEST_CASE("doubles print like Java's Double.toString", "[types]") {
  CHECK(to_string(value{15.3}) == "15.3");
  CHECK(to_string(value{1.0}) == "1.0");
  CHECK(to_string(value{-1.0}) == "-1.0");
  CHECK(to_string(value{0.0}) == "0.0");
  CHECK(to_string(value{-0.0}) == "-0.0");
  CHECK(to_string(value{6953.740000000007}) == "6953.740000000007");
  CHECK(to_string(value{17850.0}) == "17850.0");
  CHECK(to_string(value{0.1 + 0.2}) == "0.30000000000000004");
  CHECK(to_string(value{0.001}) == "0.001");
  CHECK(to_string(value{9999999.0}) == "9999999.0");
  CHECK(to_string(value{1e7}) == "1.0E7");
  CHECK(to_string(value{1e10}) == "1.0E10");
  CHECK(to_string(value{123456789.5}) == "1.234567895E8");
  CHECK(to_string(value{0.0001}) == "1.0E-4");
  CHECK(to_string(value{-2.5e-4}) == "-2.5E-4");
  CHECK(to_string(value{1e-300}) == "1.0E-300");
  CHECK(to_string(value{std::numeric_limits<double>::infinity()}) == "Infinity");
  CHECK(to_string(value{-std::numeric_limits<double>::infinity()}) == "-Infinity");
  CHECK(to_string(value{std::nan("")}) == "NaN");
  CHECK(to_string(value{1.7976931348623157e308}) == "1.7976931348623157E308");
  // Java prints at least two digits and, among the two-digit decimals that read back as the double, the
  // closest: Double.MIN_VALUE is 4.9E-324, though 5.0E-324 would also read back.
  CHECK(to_string(value{std::numeric_limits<double>::denorm_min()}) == "4.9E-324");
  CHECK(to_string(value{-std::numeric_limits<double>::denorm_min()}) == "-4.9E-324");
}

TEST_CASE("other values print as Spark's show() does", "[types]") {
  CHECK(to_string(value{}) == "null");
  CHECK(to_string(value{true}) == "true");
  CHECK(to_string(value{false}) == "false");
  CHECK(to_string(value{std::int64_t{-42}}) == "-42");
  CHECK(to_string(value{std::string("Hello, World")}) == "Hello, World");
  CHECK(to_string(value{ts("2010-12-01 08:26:00")}) == "2010-12-01 08:26:00");
  CHECK(to_string(value{window_value{ts("2010-12-01 08:00:00"), ts("2010-12-01 09:00:00")}}) ==
        "{2010-12-01 08:00:00, 2010-12-01 09:00:00}");
}

TEST_CASE("parse_timestamp accepts Spark's default layouts", "[types]") {
  CHECK(ts("1970-01-01 00:00:00").micros == 0);
  CHECK(ts("1970-01-01").micros == 0);
  CHECK(ts("1970-01-02 00:00:01").micros == 86'401 * second);
  CHECK(ts("2010-12-01 08:26:00").micros == 1'291'191'960 * second);
  CHECK(ts("2010-12-01T08:26:00").micros == 1'291'191'960 * second);
  CHECK(ts("2010-12-01 08:26:00.5").micros == 1'291'191'960 * second + 500'000);
  CHECK(ts("2010-12-01 08:26:00.000001").micros == 1'291'191'960 * second + 1);
  CHECK(ts("2010-12-01 08:26:00.123456").micros == 1'291'191'960 * second + 123'456);
  CHECK(ts("2000-02-29 23:59:59").micros == (days_from_civil(2000, 3, 1) * 86'400 - 1) * second);
  CHECK(ts("1969-12-31 23:59:59").micros == -second);
}

TEST_CASE("parse_timestamp reads Spark's shorter forms, single-digit fields and surrounding blanks", "[types]") {
  CHECK(ts("2010-12-1 8:26:00").micros == ts("2010-12-01 08:26:00").micros);
  CHECK(ts("2010-1-2T3:4:5").micros == ts("2010-01-02 03:04:05").micros);
  CHECK(ts("2010").micros == ts("2010-01-01 00:00:00").micros);
  CHECK(ts("2010-12").micros == ts("2010-12-01 00:00:00").micros);
  CHECK(ts("2010-12-01 08").micros == ts("2010-12-01 08:00:00").micros);
  CHECK(ts("2010-12-01 08:26").micros == ts("2010-12-01 08:26:00").micros);
  CHECK(ts(" \t2010-12-01 08:26:00 \r").micros == ts("2010-12-01 08:26:00").micros);
}

TEST_CASE("parse_timestamp truncates more than 6 fraction digits to microseconds", "[types]") {
  const std::int64_t base = ts("2010-12-01 08:26:00").micros;
  CHECK(ts("2010-12-01 08:26:00.1234567").micros == base + 123'456);
  CHECK(ts("2010-12-01 08:26:00.12345678").micros == base + 123'456);
  CHECK(ts("2010-12-01 08:26:00.123456789").micros == base + 123'456);
  CHECK(ts("2010-12-01 08:26:00.999999999Z").micros == base + 999'999);
  CHECK(ts("1969-12-31 23:59:59.9999999").micros == -1);
  CHECK(ts("2010-12-01 08:26:00.").micros == base);  // Spark reads an empty fraction as 0
}

TEST_CASE("parse_timestamp converts a zone offset to UTC, libflow's session time zone", "[types]") {
  const std::int64_t utc = ts("2010-12-01 08:26:00").micros;
  constexpr std::int64_t hour = 3600 * second;
  // Z and the names of UTC, optionally followed by an offset, as java.time.ZoneId reads them.
  for (std::string_view text : {"2010-12-01T08:26:00Z", "2010-12-01 08:26:00Z", "2010-12-01T08:26:00 Z",
                                "2010-12-01T08:26:00UTC", "2010-12-01 08:26:00 GMT", "2010-12-01 08:26:00 UT",
                                "2010-12-01T08:26:00+00:00", "2010-12-01T08:26:00-00:00", "2010-12-01T08:26:00+0000",
                                "2010-12-01T08:26:00.000Z"}) {
    INFO(text);
    CHECK(ts(text).micros == utc);
  }
  // +|-h, hh, hh:mm, hhmm, hh:mm:ss, hhmmss, and Spark's h:mm and hh:m.
  for (std::string_view text : {"2010-12-01T09:26:00+01:00", "2010-12-01T09:26:00+0100", "2010-12-01T09:26:00+01",
                                "2010-12-01T09:26:00+1", "2010-12-01T09:26:00+1:00", "2010-12-01T09:26:00+01:0",
                                "2010-12-01 09:26:00 +01:00", "2010-12-01T09:26:00UTC+01:00",
                                "2010-12-01T09:26:00GMT+1", "2010-12-01T09:26:00UT+01:00",
                                "2010-12-01T09:26:00+01:00:00", "2010-12-01T09:26:00+010000"}) {
    INFO(text);
    CHECK(ts(text).micros == utc);
  }
  CHECK(ts("2010-12-01T08:26:00.5+01:00").micros == utc - hour + 500'000);
  CHECK(ts("2010-12-01T08:26:00.123456789-05:30").micros == utc + 5 * hour + 30 * 60 * second + 123'456);
  CHECK(ts("2010-12-01T08:26:00+01:00:30").micros == utc - hour - 30 * second);
  CHECK(ts("2010-12-01T00:30:00+01:00").micros == ts("2010-11-30 23:30:00").micros);
  CHECK(ts("2010-12-01T08:26:00+18:00").micros == utc - 18 * hour);
  CHECK(ts("2010-12-01T08:26:00-18:00").micros == utc + 18 * hour);
}

TEST_CASE("parse_timestamp rejects malformed text", "[types]") {
  for (std::string_view bad :
       {"", "  ", "10-12-01", "201-12-01", "20100-12-01", "2010-13-01 00:00:00", "2010-00-10", "2010-02-30",
        "2011-02-29", "2010-12-32", "2010-123-01", "2010-12-01 24:00:00", "2010-12-01 23:60:00",
        "2010-12-01 23:00:60", "2010-12-01 008:26:00", "2010/12/01", "2010-12-01x08:26:00", "2010-12-01T",
        "2010-12-01 08:", "2010-12-01 08:26:", "2010-12-01 08:26:0a", "abcd-ef-gh", "2010-12-01 08:26:00.12a",
        "2010-12-01Z", "2010-12-01T08:26Z", "2010-12-01T08:26+01:00", "2010-12-01T08:26:00ZZ",
        "2010-12-01T08:26:00z", "Z", "2010-12-01T08:26:00+", "2010-12-01T08:26:00UTC+", "2010-12-01T08:26:00+19",
        "2010-12-01T08:26:00+18:01", "2010-12-01T08:26:00+01:60", "2010-12-01T08:26:00+01:5:00",
        "2010-12-01T08:26:00+123", "2010-12-01T08:26:00+01:00 x", "2010-12-01T08:26:00UTC1",
        // Time-only text (Spark: today's date) and zone ids that need a time-zone database are not read.
        "08:26:00", "T08:26:00", "2010-12-01T08:26:00 Europe/Paris", "2010-12-01T08:26:00 PST"}) {
    INFO(bad);
    CHECK_FALSE(parse_timestamp(bad).has_value());
  }
}

TEST_CASE("format_timestamp prints the fraction only when there is one", "[types]") {
  CHECK(format_timestamp(timestamp{0}) == "1970-01-01 00:00:00");
  CHECK(format_timestamp(timestamp{-1}) == "1969-12-31 23:59:59.999999");
  CHECK(format_timestamp(timestamp{1'291'191'960 * second + 500'000}) == "2010-12-01 08:26:00.5");
  CHECK(format_timestamp(timestamp{1'291'191'960 * second + 120}) == "2010-12-01 08:26:00.00012");
  for (std::string_view text : {"2011-12-09 12:50:00", "1900-03-01 01:02:03", "2400-02-29 23:59:59.000001",
                                "0001-01-01 00:00:00"}) {
    CHECK(format_timestamp(ts(text)) == text);
  }
}

TEST_CASE("days_from_civil matches known dates", "[types]") {
  CHECK(days_from_civil(1970, 1, 1) == 0);
  CHECK(days_from_civil(1970, 1, 2) == 1);
  CHECK(days_from_civil(1969, 12, 31) == -1);
  CHECK(days_from_civil(2000, 3, 1) == 11'017);
  CHECK(days_from_civil(2010, 12, 1) == 14'944);
  CHECK(days_from_civil(1600, 1, 1) == -135'140);
}

TEST_CASE("parse_duration_micros understands long, short and interval forms", "[types]") {
  constexpr std::int64_t minute = 60 * second;
  constexpr std::int64_t hour = 60 * minute;
  CHECK(parse_duration_micros("1 hour") == hour);
  CHECK(parse_duration_micros("2 hours") == 2 * hour);
  CHECK(parse_duration_micros("10 minutes") == 10 * minute);
  CHECK(parse_duration_micros("1 minute") == minute);
  CHECK(parse_duration_micros("30 seconds") == 30 * second);
  CHECK(parse_duration_micros("1 day") == 24 * hour);
  CHECK(parse_duration_micros("2 days") == 48 * hour);
  CHECK(parse_duration_micros("2 weeks") == 14 * 24 * hour);
  CHECK(parse_duration_micros("500 milliseconds") == 500'000);
  CHECK(parse_duration_micros("500 ms") == 500'000);
  CHECK(parse_duration_micros("30s") == 30 * second);
  CHECK(parse_duration_micros("10m") == 10 * minute);
  CHECK(parse_duration_micros("1h") == hour);
  CHECK(parse_duration_micros("500ms") == 500'000);
  CHECK(parse_duration_micros("1d") == 24 * hour);
  CHECK(parse_duration_micros("100us") == 100);
  CHECK(parse_duration_micros("interval 1 hour") == hour);
  CHECK(parse_duration_micros("INTERVAL 10 MINUTES") == 10 * minute);
  CHECK(parse_duration_micros("  5 seconds ") == 5 * second);
  CHECK(parse_duration_micros("1 hour 30 minutes") == hour + 30 * minute);
  CHECK(parse_duration_micros("1h 30m") == hour + 30 * minute);
  CHECK(parse_duration_micros("interval 1 day 0 hours") == 24 * hour);
}

TEST_CASE("parse_duration_micros rejects malformed, zero and negative durations", "[types]") {
  for (std::string_view bad : {"", "hour", "10", "10 parsecs", "ten minutes", "0 seconds", "-5 minutes",
                               "1.5 hours", "interval", "10 minutes later", "99999999999999999999 days",
                               "9999999999999 weeks", "0 hours 0 minutes", "1 hour -5 minutes", "1 hour and",
                               "1 hour,", "30"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_duration_micros(bad), flow::error);
  }
  CHECK_THROWS_WITH(parse_duration_micros("10 parsecs"),
                    "invalid duration '10 parsecs': expected e.g. '10 minutes'");
  CHECK_THROWS_WITH(parse_duration_micros("-5 minutes"),
                    "invalid duration '-5 minutes': must be positive, e.g. '10 minutes'");
}

TEST_CASE("schema lookups, names and printing", "[schema]") {
  auto s = make_schema({{"InvoiceNo", type_id::string},
                        {"Quantity", type_id::int64},
                        {"InvoiceDate", type_id::timestamp},
                        {"CustomerID", type_id::float64},
                        {"cancelled", type_id::boolean, false},
                        {"window", type_id::window}});
  CHECK(s->size() == 6);
  CHECK(s->find("Quantity") == 1u);
  CHECK_FALSE(s->find("quantity").has_value());
  CHECK(s->index_of("window") == 5);
  CHECK_THROWS_WITH(s->index_of("Price"),
                    "column 'Price' not found; available columns: InvoiceNo, Quantity, InvoiceDate, "
                    "CustomerID, cancelled, window");
  CHECK(s->names() == std::vector<std::string>{"InvoiceNo", "Quantity", "InvoiceDate", "CustomerID",
                                               "cancelled", "window"});
  CHECK(s->to_string() ==
        "InvoiceNo: string, Quantity: int64, InvoiceDate: timestamp, CustomerID: float64, cancelled: boolean, "
        "window: window");
  CHECK(s->tree_string() ==
        "root\n"
        " |-- InvoiceNo: string (nullable = true)\n"
        " |-- Quantity: long (nullable = true)\n"
        " |-- InvoiceDate: timestamp (nullable = true)\n"
        " |-- CustomerID: double (nullable = true)\n"
        " |-- cancelled: boolean (nullable = false)\n"
        " |-- window: struct<start:timestamp,end:timestamp> (nullable = true)\n");
  CHECK(schema().tree_string() == "root\n");
  CHECK_THROWS_AS(schema().index_of("x"), flow::error);
  CHECK(*s == schema(s->fields()));
  CHECK_FALSE(*s == schema({{"InvoiceNo", type_id::string}}));
}
