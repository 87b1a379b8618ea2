#include <catch2/catch.hpp>

#include "flow/batch.hpp"
#include "test_support.hpp"

using namespace flow;

namespace {

timestamp ts(std::string_view text) { return *parse_timestamp(text); }

window_value hour_window(std::string_view start, std::string_view end) { return {ts(start), ts(end)}; }

std::vector<value> column_values(const column& c) {
  std::vector<value> out;
  for (std::size_t i = 0; i < c.size(); ++i) out.push_back(c.at(i));
  return out;
}

schema_ptr retail_schema() {
  return make_schema({{"CustomerID", type_id::float64},
                      {"Quantity", type_id::int64},
                      {"Description", type_id::string},
                      {"cancelled", type_id::boolean},
                      {"InvoiceDate", type_id::timestamp},
                      {"window", type_id::window}});
}

batch retail_batch() {
  auto w = hour_window("2010-12-01 08:00:00", "2010-12-01 09:00:00");
  return make_batch(retail_schema(),
                    {{17850.0, std::int64_t{6}, std::string("WHITE HANGING HEART T-LIGHT HOLDER"), false,
                      ts("2010-12-01 08:26:00"), w},
                     {value{}, std::int64_t{-1}, std::string(""), true, ts("2010-12-01 08:28:00"), w},
                     {13047.0, value{}, value{}, value{}, value{}, value{}},
                     {12583.0, std::int64_t{24}, std::string("ALARM CLOCK"), false, ts("2010-12-01 08:45:00"), w}});
}

}  // namespace

TEST_CASE("column_builder appends every type and finish() hands over the buffers", "[column]") {
  column_builder b(type_id::int64, 4);
  b.append_int(1);
  b.append_int(2);
  CHECK(b.size() == 2);
  auto c = b.finish();
  CHECK(c.type() == type_id::int64);
  CHECK(c.size() == 2);
  CHECK_FALSE(c.has_nulls());
  CHECK(c.data()->validity.empty());
  CHECK(c.ints()[1] == 2);
  CHECK(b.size() == 0);
  b.append_int(7);
  CHECK(b.finish().at(0) == value{std::int64_t{7}});
  CHECK(c.size() == 2);

  auto doubles = make_double_column({1.5, -2.0});
  CHECK(column_values(doubles) == std::vector<value>{1.5, -2.0});
  auto strings = make_string_column({"a", "", "xyz"});
  CHECK(strings.str(0) == "a");
  CHECK(strings.str(1).empty());
  CHECK(strings.str(2) == "xyz");
  CHECK(strings.data()->offsets == std::vector<std::uint32_t>{0, 1, 1, 4});
}

TEST_CASE("an empty string builder starts its offsets at a single 0", "[column]") {
  column_builder b(type_id::string);
  auto c = b.finish();
  CHECK(c.size() == 0);
  CHECK(c.data()->offsets == std::vector<std::uint32_t>{0});
  CHECK(c.byte_size() == 4);
}

TEST_CASE("the validity bitmap appears at the first null and back-fills earlier rows", "[column]") {
  column_builder b(type_id::int64);
  for (int i = 0; i < 70; ++i) b.append_int(i);
  b.append_null();
  b.append_int(71);
  b.append_null();
  auto c = b.finish();
  REQUIRE(c.size() == 73);
  CHECK(c.data()->null_count == 2);
  CHECK(c.has_nulls());
  CHECK(c.data()->ints.size() == 73);
  for (int i = 0; i < 70; ++i) CHECK(c.valid(static_cast<std::size_t>(i)));
  CHECK(c.is_null(70));
  CHECK(c.valid(71));
  CHECK(c.ints()[71] == 71);
  CHECK(c.is_null(72));
  CHECK(c.at(70) == value{});
}

TEST_CASE("a null at row 0 and at a word boundary", "[column]") {
  column_builder b(type_id::float64);
  b.append_null();
  for (int i = 1; i < 64; ++i) b.append_double(i);
  b.append_null();
  b.append_double(65);
  auto c = b.finish();
  CHECK(c.is_null(0));
  CHECK(c.valid(1));
  CHECK(c.valid(63));
  CHECK(c.is_null(64));
  CHECK(c.valid(65));
  CHECK(c.data()->null_count == 2);
}

TEST_CASE("append_null keeps every data vector aligned", "[column]") {
  column_builder strings(type_id::string);
  strings.append_string("ab");
  strings.append_null();
  strings.append_string("cde");
  auto s = strings.finish();
  CHECK(s.data()->offsets == std::vector<std::uint32_t>{0, 2, 2, 5});
  CHECK(column_values(s) == std::vector<value>{std::string("ab"), value{}, std::string("cde")});

  column_builder windows(type_id::window);
  windows.append_null();
  windows.append_window(hour_window("2010-12-01 08:00:00", "2010-12-01 09:00:00"));
  auto w = windows.finish();
  CHECK(w.data()->ints.size() == 2);
  CHECK(w.data()->ends.size() == 2);
  CHECK(w.window(1).end == ts("2010-12-01 09:00:00"));

  column_builder bools(type_id::boolean);
  bools.append_null();
  bools.append_bool(true);
  auto b = bools.finish();
  CHECK(b.data()->bools.size() == 2);
  CHECK(column_values(b) == std::vector<value>{value{}, true});
}

TEST_CASE("append_value converts numbers where that is lossless and rejects the rest", "[column]") {
  column_builder doubles(type_id::float64);
  doubles.append_value(std::int64_t{3});
  doubles.append_value(2.5);
  doubles.append_value(value{});
  CHECK(column_values(doubles.finish()) == std::vector<value>{3.0, 2.5, value{}});

  column_builder ints(type_id::int64);
  ints.append_value(4.0);
  ints.append_value(std::int64_t{-9});
  CHECK_THROWS_AS(ints.append_value(4.5), flow::error);
  CHECK_THROWS_AS(ints.append_value(std::nan("")), flow::error);
  CHECK_THROWS_WITH(ints.append_value(std::string("x")),
                    "cannot append a string value to a int64 column; convert the value first");
  CHECK(column_values(ints.finish()) == std::vector<value>{std::int64_t{4}, std::int64_t{-9}});

  column_builder stamps(type_id::timestamp);
  stamps.append_value(ts("2010-12-01 08:26:00"));
  CHECK_THROWS_AS(stamps.append_value(std::int64_t{1}), flow::error);
  CHECK_THROWS_AS(column_builder(type_id::boolean).append_value(std::int64_t{1}), flow::error);
  CHECK_THROWS_AS(column_builder(type_id::window).append_value(ts("2010-12-01")), flow::error);
  CHECK_THROWS_AS(column_builder(type_id::string).append_value(true), flow::error);
}

TEST_CASE("append_from copies values and nulls and checks the type", "[column]") {
  auto source = make_column(type_id::string, {std::string("x"), value{}, std::string("yz")});
  column_builder b(type_id::string);
  for (std::size_t i = 0; i < source.size(); ++i) b.append_from(source, 2 - i);
  CHECK(column_values(b.finish()) == std::vector<value>{std::string("yz"), value{}, std::string("x")});
  column_builder wrong(type_id::int64);
  CHECK_THROWS_AS(wrong.append_from(source, 0), flow::error);
}

TEST_CASE("column slices are zero-copy views, also of slices and of strings", "[column]") {
  auto c = make_column(type_id::string, {std::string("a"), std::string("bb"), value{}, std::string("dddd"),
                                         std::string("eeeee")});
  auto s = c.slice(1, 4);
  CHECK(s.data() == c.data());
  CHECK(s.offset() == 1);
  CHECK(column_values(s) == std::vector<value>{std::string("bb"), value{}, std::string("dddd"), std::string("eeeee")});
  auto ss = s.slice(1, 2);
  CHECK(ss.offset() == 2);
  CHECK(column_values(ss) == std::vector<value>{value{}, std::string("dddd")});
  CHECK(ss.is_null(0));
  CHECK(ss.str(1) == "dddd");
  CHECK(s.slice(4, 0).size() == 0);
  CHECK_THROWS_AS(s.slice(3, 2), flow::error);
  CHECK_THROWS_AS(s.slice(5, 0), flow::error);
  CHECK_THROWS_AS(s.at(4), flow::error);

  // byte_size counts only the visible rows: validity bits, offsets and characters.
  CHECK(ss.byte_size() == 1 + 4 * 3 + 4);
  CHECK(make_int_column({1, 2, 3}).slice(1, 2).byte_size() == 16);
}

TEST_CASE("window and timestamp columns", "[column]") {
  auto w1 = hour_window("2010-12-01 08:00:00", "2010-12-01 09:00:00");
  auto w2 = hour_window("2010-12-01 09:00:00", "2010-12-01 10:00:00");
  auto c = make_column(type_id::window, {w1, value{}, w2});
  CHECK(c.type() == type_id::window);
  CHECK(column_values(c.slice(1, 2)) == std::vector<value>{value{}, w2});
  CHECK(c.window(0) == w1);
  CHECK(c.byte_size() == 1 + 3 * 16);
  auto t = make_column(type_id::timestamp, {ts("2010-12-01 08:26:00")});
  CHECK(t.at(0) == value{ts("2010-12-01 08:26:00")});
}

TEST_CASE("the batch constructor validates its arguments", "[batch]") {
  auto s = make_schema({{"a", type_id::int64}, {"b", type_id::string}});
  auto ints = make_int_column({1, 2});
  auto strings = make_string_column({"x", "y"});
  batch ok(s, {ints, strings});
  CHECK(ok.num_rows() == 2);
  CHECK(ok.num_columns() == 2);
  CHECK(ok.col("b").str(1) == "y");
  CHECK(ok.at(0, 0) == value{std::int64_t{1}});
  CHECK_THROWS_WITH(batch(s, {ints}), Catch::Contains("1 columns for a schema of 2 fields"));
  CHECK_THROWS_WITH(batch(s, {strings, ints}), Catch::Contains("column 'a' is string but the schema says int64"));
  CHECK_THROWS_WITH(batch(s, {ints, make_string_column({"x"})}), Catch::Contains("column 'b' has 1 rows"));
  CHECK_THROWS_AS(batch(nullptr, {}), flow::error);
  CHECK_THROWS_AS(batch(s, {ints, column()}), flow::error);
  CHECK_THROWS_AS(ok.col("c"), flow::error);
}

TEST_CASE("default and empty batches", "[batch]") {
  batch none;
  CHECK(none.valid());
  CHECK(none.num_rows() == 0);
  CHECK(none.num_columns() == 0);
  auto e = batch::empty(retail_schema());
  CHECK(e.num_rows() == 0);
  CHECK(e.num_columns() == 6);
  CHECK(e.col("window").type() == type_id::window);
  CHECK(e == batch::empty(retail_schema()));
  CHECK_FALSE(e == none);
}

TEST_CASE("batch slices, slices of slices, byte_size and equality", "[batch]") {
  auto b = retail_batch();
  CHECK(b.num_rows() == 4);
  auto s = b.slice(1, 3);
  CHECK(s.num_rows() == 3);
  CHECK(s.col(0).data() == b.col(0).data());
  CHECK(s.at(0, 0) == value{});
  CHECK(s.at(1, 0) == value{13047.0});
  auto ss = s.slice(1, 2);
  CHECK(ss.at(1, 2) == value{std::string("ALARM CLOCK")});
  CHECK(ss == b.slice(2, 2));
  CHECK_FALSE(ss == b.slice(1, 2));
  CHECK(b.slice(0, 4) == b);
  CHECK_THROWS_AS(b.slice(2, 3), flow::error);
  CHECK(b.slice(4, 0).num_rows() == 0);
  CHECK(b.byte_size() > s.byte_size());
  CHECK(s.byte_size() > ss.byte_size());

  // Equality is deep: same values built separately are equal, one changed value is not.
  CHECK(b == retail_batch());
  auto other = make_batch(retail_schema(), {{17850.0, std::int64_t{6}, std::string("x"), false,
                                             ts("2010-12-01 08:26:00"), value{}}});
  CHECK_FALSE(other == b.slice(0, 1));
  auto renamed = make_schema({{"x", type_id::int64}});
  CHECK_FALSE(make_batch(renamed, {{std::int64_t{1}}}) ==
              make_batch(make_schema({{"y", type_id::int64}}), {{std::int64_t{1}}}));
  auto nan_batch = make_batch(make_schema({{"d", type_id::float64}}), {{std::nan("")}});
  CHECK(nan_batch == make_batch(make_schema({{"d", type_id::float64}}), {{std::nan("")}}));
}

TEST_CASE("concat copies rows of equal schemas, including slices", "[batch]") {
  auto b = retail_batch();
  auto joined = concat({b.slice(2, 2), b.slice(0, 2)});
  REQUIRE(joined.num_rows() == 4);
  CHECK(joined.slice(0, 2) == b.slice(2, 2));
  CHECK(joined.slice(2, 2) == b.slice(0, 2));
  CHECK(joined.col(0).data() != b.col(0).data());
  CHECK(concat({b}) == b);
  CHECK(concat({}).num_columns() == 0);
  CHECK(concat({batch::empty(retail_schema()), b, batch::empty(retail_schema())}) == b);
  auto other = make_batch(make_schema({{"a", type_id::int64}}), {{std::int64_t{1}}});
  CHECK_THROWS_WITH(concat({b, other}), Catch::Contains("schemas differ"));
}

TEST_CASE("concat_columns equals appending row by row, for every type, nulls and slices", "[batch]") {
  const type_id types[] = {type_id::boolean, type_id::int64,  type_id::float64,    type_id::string,
                           type_id::timestamp, type_id::window, type_id::string_list};
  for (type_id type : types) {
    CAPTURE(type_name(type));
    // 150 rows (three bitmap words), every seventh null, built row by row.
    column_builder source(type);
    for (std::int64_t i = 0; i < 150; ++i) {
      if (i % 7 == 3) {
        source.append_null();
        continue;
      }
      switch (type) {
        case type_id::boolean: source.append_bool(i % 2 == 0); break;
        case type_id::int64: source.append_int(i * 3); break;
        case type_id::float64: source.append_double(i * 0.5); break;
        case type_id::string: source.append_string(std::string(static_cast<std::size_t>(i % 5), 'a' + i % 26)); break;
        case type_id::timestamp: source.append_timestamp(timestamp{i * 1000}); break;
        case type_id::window: source.append_window({timestamp{i}, timestamp{i + 10}}); break;
        case type_id::string_list:
          source.begin_list();
          for (std::int64_t j = 0; j < i % 3; ++j) source.append_list_item(std::to_string(i + j));
          source.end_list();
          break;
      }
    }
    column whole = source.finish();
    column_builder all_valid(type);
    for (std::int64_t i = 0; i < 70; ++i) all_valid.append_from(whole, static_cast<std::size_t>(i % 7 == 3 ? 0 : i));  // row 0 for each null row
    const std::vector<column> parts{whole.slice(101, 49), all_valid.finish(), whole.slice(0, 0), whole.slice(5, 60)};
    column_builder expected(type);
    for (const auto& part : parts)
      for (std::size_t i = 0; i < part.size(); ++i) expected.append_from(part, i);
    auto schema = make_schema({{"c", type, true}});
    CHECK(batch(schema, {concat_columns(type, parts)}) == batch(schema, {expected.finish()}));
  }
  CHECK_THROWS_WITH(concat_columns(type_id::int64, {make_string_column({"x"})}),
                    Catch::Contains("cannot concatenate a string column to a int64 column"));
}

TEST_CASE("filter_rows keeps the selected rows with their nulls", "[batch]") {
  auto b = retail_batch();
  auto kept = filter_rows(b, {0, 1, 1, 0});
  CHECK(kept == b.slice(1, 2));
  CHECK(filter_rows(b, {1, 1, 1, 1}) == b);
  CHECK(filter_rows(b, {0, 0, 0, 0}).num_rows() == 0);
  CHECK(filter_rows(b.slice(1, 3), {1, 0, 1}) == concat({b.slice(1, 1), b.slice(3, 1)}));
  CHECK_THROWS_AS(filter_rows(b, {1, 0}), flow::error);
  CHECK_THAT(flow::test::error_of([&] { take_rows(b.col(0), {0, 7, 1, 9}); }),
             Catch::Contains("row 7 out of range for a column of 4 rows"));
}

TEST_CASE("take_rows equals appending row by row, for every type, with and without nulls, of slices", "[batch]") {
  const type_id types[] = {type_id::boolean, type_id::int64,  type_id::float64,    type_id::string,
                           type_id::timestamp, type_id::window, type_id::string_list};
  for (type_id type : types) {
    for (bool with_nulls : {false, true}) {
      CAPTURE(type_name(type), with_nulls);
      column_builder source(type);
      for (std::int64_t i = 0; i < 100; ++i) {
        if (with_nulls && i % 7 == 3) {
          source.append_null();
          continue;
        }
        switch (type) {
          case type_id::boolean: source.append_bool(i % 3 == 0); break;
          case type_id::int64: source.append_int(i * 3); break;
          case type_id::float64: source.append_double(i * 0.5); break;
          case type_id::string: source.append_string(std::string(static_cast<std::size_t>(i % 5), 'a' + i % 26)); break;
          case type_id::timestamp: source.append_timestamp(timestamp{i * 1000}); break;
          case type_id::window: source.append_window({timestamp{i}, timestamp{i + 10}}); break;
          case type_id::string_list:
            source.begin_list();
            for (std::int64_t j = 0; j < i % 3; ++j) source.append_list_item(std::to_string(i + j));
            source.end_list();
            break;
        }
      }
      const column slice = source.finish().slice(10, 80);
      const std::vector<std::uint32_t> rows{79, 0, 0, 13, 42, 42, 7, 1};  // out of order, repeated (explode)
      column_builder expected(type);
      for (auto r : rows) expected.append_from(slice, r);
      auto schema = make_schema({{"c", type, true}});
      CHECK(batch(schema, {take_rows(slice, rows)}) == batch(schema, {expected.finish()}));
      CHECK(take_rows(slice, {}).size() == 0);
    }
  }
  CHECK_THROWS_WITH(take_rows(make_int_column({1, 2}), {2}), Catch::Contains("row 2 out of range"));
}

TEST_CASE("make_batch checks row widths and value types", "[batch]") {
  auto s = make_schema({{"a", type_id::int64}, {"b", type_id::string}});
  CHECK_THROWS_WITH(make_batch(s, {{std::int64_t{1}}}), Catch::Contains("row 0 has 1 values for 2 columns"));
  CHECK_THROWS_WITH(make_batch(s, {{std::int64_t{1}, std::string("x")}, {std::string("y"), std::string("x")}}),
                    Catch::Contains("row 1, column 'a'"));
  CHECK(make_batch(s, {}).num_rows() == 0);
}

TEST_CASE("format_table prints Spark's show() with truncation", "[batch][show]") {
  auto s = make_schema({{"CustomerID", type_id::float64}, {"window", type_id::window}});
  auto w = hour_window("2010-12-01 16:00:00", "2010-12-01 17:00:00");
  auto b = make_batch(s, {{13777.0, w}});
  CHECK(format_table(b) ==
        "+----------+--------------------+\n"
        "|CustomerID|              window|\n"
        "+----------+--------------------+\n"
        "|   13777.0|{2010-12-01 16:00...|\n"
        "+----------+--------------------+\n");
  CHECK(format_table(b, 20, false) ==
        "+----------+------------------------------------------+\n"
        "|CustomerID|window                                    |\n"
        "+----------+------------------------------------------+\n"
        "|13777.0   |{2010-12-01 16:00:00, 2010-12-01 17:00:00}|\n"
        "+----------+------------------------------------------+\n");
}

TEST_CASE("format_table prints every type, nulls and narrow columns", "[batch][show]") {
  auto s = make_schema({{"b", type_id::boolean},
                        {"n", type_id::int64},
                        {"d", type_id::float64},
                        {"s", type_id::string},
                        {"t", type_id::timestamp}});
  auto b = make_batch(s, {{true, std::int64_t{-5}, 1.0, std::string("exactly twenty chars"), ts("2010-12-01 08:26:00")},
                          {value{}, value{}, value{}, value{}, value{}},
                          {false, std::int64_t{123456}, 0.1, std::string("twenty-one characters"),
                           ts("2010-12-01 08:26:00.25")}});
  CHECK(format_table(b) ==
        "+-----+------+----+--------------------+--------------------+\n"
        "|    b|     n|   d|                   s|                   t|\n"
        "+-----+------+----+--------------------+--------------------+\n"
        "| true|    -5| 1.0|exactly twenty chars| 2010-12-01 08:26:00|\n"
        "| null|  null|null|                null|                null|\n"
        "|false|123456| 0.1|twenty-one charac...|2010-12-01 08:26:...|\n"
        "+-----+------+----+--------------------+--------------------+\n");
}

TEST_CASE("format_table limits rows and reports the rest", "[batch][show]") {
  auto s = make_schema({{"x", type_id::int64}});
  auto b = make_batch(s, {{std::int64_t{1}}, {std::int64_t{22}}, {std::int64_t{333}}});
  CHECK(format_table(b, 2) ==
        "+---+\n"
        "|  x|\n"
        "+---+\n"
        "|  1|\n"
        "| 22|\n"
        "+---+\n"
        "only showing top 2 rows\n");
  CHECK(format_table(b, 3).find("only showing") == std::string::npos);
  CHECK(format_table(b, 1, false) ==
        "+---+\n"
        "|x  |\n"
        "+---+\n"
        "|1  |\n"
        "+---+\n"
        "only showing top 1 row\n");
  CHECK(format_table(batch::empty(s)) ==
        "+---+\n"
        "|  x|\n"
        "+---+\n"
        "+---+\n");
}

TEST_CASE("format_table treats a vector of batches as one table", "[batch][show]") {
  auto s = make_schema({{"word", type_id::string}, {"count", type_id::int64}});
  auto first = make_batch(s, {{std::string("la"), std::int64_t{10}}});
  auto second = make_batch(s, {{std::string("quijote"), std::int64_t{2}}, {std::string("y"), std::int64_t{1}}});
  CHECK(format_table(std::vector<batch>{first, batch::empty(s), second}, 2) ==
        "+-------+-----+\n"
        "|   word|count|\n"
        "+-------+-----+\n"
        "|     la|   10|\n"
        "|quijote|    2|\n"
        "+-------+-----+\n"
        "only showing top 2 rows\n");
  CHECK(format_table(std::vector<batch>{first, second}) == format_table(concat({first, second})));
  auto other = make_batch(make_schema({{"x", type_id::int64}}), {{std::int64_t{1}}});
  CHECK_THROWS_AS(format_table(std::vector<batch>{first, other}), flow::error);
}

TEST_CASE("format_table measures characters, not bytes", "[batch][show]") {
  auto s = make_schema({{"name", type_id::string}});
  auto b = make_batch(s, {{std::string("Señor")}, {std::string("ñññññññññññññññññññññ")}});
  CHECK(format_table(b) ==
        "+--------------------+\n"
        "|                name|\n"
        "+--------------------+\n"
        "|               Señor|\n"
        "|ñññññññññññññññññ...|\n"
        "+--------------------+\n");
}
