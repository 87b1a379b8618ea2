#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "flow/expr.hpp"

using namespace flow;

namespace {

schema_ptr sales_schema() {
  return make_schema({{"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, true},
                      {"Description", type_id::string, true},
                      {"InvoiceDate", type_id::timestamp, true},
                      {"Flag", type_id::boolean, true}});
}

timestamp ts(const char* text) { return *parse_timestamp(text); }

batch sales() {
  return make_batch(sales_schema(),
                    {{std::int64_t{6}, 2.5, std::string("LANTERN"), ts("2010-12-01 08:26:00"), true},
                     {std::int64_t{-2}, 0.0, std::string("HEART"), ts("2010-12-01 09:00:00"), false},
                     {null_value{}, 3.0, null_value{}, null_value{}, null_value{}},
                     {std::int64_t{4}, null_value{}, std::string("CANDLE"), ts("1969-12-31 23:30:00"), true}});
}

std::vector<value> eval(const expr& e, const batch& b = sales()) {
  auto bound = bind(e, b.schema());
  column c = bound.evaluate(b);
  REQUIRE(c.size() == b.num_rows());
  REQUIRE(c.type() == bound.type());
  std::vector<value> out;
  for (std::size_t i = 0; i < c.size(); ++i) out.push_back(c.at(i));
  return out;
}

const value null{null_value{}};

}  // namespace

TEST_CASE("expr: Spark auto names", "[expr]") {
  CHECK(col("CustomerID").name() == "CustomerID");
  CHECK((col("UnitPrice") * col("Quantity")).name() == "(UnitPrice * Quantity)");
  CHECK((col("a") + lit(1)).name() == "(a + 1)");
  CHECK(lit(2.0).name() == "2.0");
  CHECK(lit(2.5).name() == "2.5");
  CHECK(lit("x").name() == "x");
  CHECK(lit(value{null_value{}}).name() == "NULL");
  CHECK(lit(value{true}).name() == "true");
  CHECK((col("UnitPrice") * col("Quantity")).as("total_cost").name() == "total_cost");
  CHECK(col("Quantity").cast(type_id::float64).name() == "CAST(Quantity AS DOUBLE)");
  CHECK(col("Quantity").cast("long").name() == "CAST(Quantity AS BIGINT)");
  CHECK(window(col("InvoiceDate"), "1 hour").name() == "window");
  CHECK((col("a") != col("b")).name() == "(NOT (a = b))");
  CHECK((col("a") >= lit(1) && !col("f")).name() == "((a >= 1) AND (NOT f))");
  CHECK((-col("a")).name() == "(- a)");
  CHECK((col("a") || col("b")).name() == "(a OR b)");
}

TEST_CASE("expr: arithmetic types and null propagation", "[expr]") {
  auto s = sales_schema();
  CHECK(bind(col("Quantity") + col("Quantity"), *s).type() == type_id::int64);
  CHECK(bind(col("Quantity") * col("UnitPrice"), *s).type() == type_id::float64);
  CHECK(bind(col("Quantity") / lit(2), *s).type() == type_id::float64);

  auto sum = eval(col("Quantity") + lit(1));
  CHECK(sum == std::vector<value>{std::int64_t{7}, std::int64_t{-1}, null, std::int64_t{5}});
  auto product = eval(col("UnitPrice") * col("Quantity"));
  CHECK(product == std::vector<value>{15.0, -0.0, null, null});
  auto diff = eval(col("Quantity") - lit(10));
  CHECK(diff[0] == value{std::int64_t{-4}});
  auto neg = eval(-col("Quantity"));
  CHECK(neg == std::vector<value>{std::int64_t{-6}, std::int64_t{2}, null, std::int64_t{-4}});
}

TEST_CASE("expr: division is double division, by zero is null", "[expr]") {
  auto q = eval(col("Quantity") / lit(4));
  CHECK(q == std::vector<value>{1.5, -0.5, null, 1.0});
  auto by_zero = eval(lit(1.0) / col("UnitPrice"));
  CHECK(by_zero[0] == value{0.4});
  CHECK(is_null(by_zero[1]));  // UnitPrice 0.0
  CHECK(by_zero[2] == value{1.0 / 3.0});
  CHECK(is_null(by_zero[3]));
  auto int_zero = eval(col("Quantity") / lit(0));
  for (auto& v : int_zero) CHECK(is_null(v));
}

TEST_CASE("expr: integer overflow wraps like Spark non-ANSI", "[expr]") {
  auto s = make_schema({{"x", type_id::int64, false}});
  auto b = make_batch(s, {{std::numeric_limits<std::int64_t>::max()}});
  CHECK(eval(col("x") + lit(1), b)[0] == value{std::numeric_limits<std::int64_t>::min()});
}

TEST_CASE("expr: comparisons per type", "[expr]") {
  CHECK(eval(col("Quantity") > lit(0)) == std::vector<value>{true, false, null, true});
  CHECK(eval(col("Quantity") == col("UnitPrice")) == std::vector<value>{false, false, null, null});
  CHECK(eval(col("Description") < lit("I")) == std::vector<value>{false, true, null, true});
  CHECK(eval(col("Description") != lit("HEART")) == std::vector<value>{true, false, null, true});
  CHECK(eval(col("InvoiceDate") >= lit(value{ts("2010-12-01 09:00:00")})) ==
        std::vector<value>{false, true, null, false});
  // A string literal compared with a timestamp is cast to timestamp, as in Spark.
  CHECK(eval(col("InvoiceDate") < lit("2010-12-01 09:00:00")) == std::vector<value>{true, false, null, true});
  CHECK(eval(col("Flag") == lit(value{true})) == std::vector<value>{true, false, null, true});
  CHECK(eval(col("Quantity") == lit(value{null_value{}})) == std::vector<value>{null, null, null, null});
}

TEST_CASE("expr: a literal on either side of a comparison, every kind, equals the column against column result",
          "[expr]") {
  const batch b = sales();
  const expr kinds_of[] = {col("Quantity"), col("UnitPrice"), col("Description"), col("InvoiceDate"), col("Flag")};
  const value literals[] = {value{std::int64_t{4}}, value{2.5}, value{std::string("HEART")},
                            value{ts("2010-12-01 08:26:00")}, value{true}};
  for (std::size_t k = 0; k < 5; ++k) {
    column_builder same(*type_of(literals[k]));
    for (std::size_t r = 0; r < b.num_rows(); ++r) same.append_value(literals[k]);
    auto columns = b.columns();
    columns.push_back(same.finish());
    auto fields = b.schema().fields();
    fields.push_back({"same", *type_of(literals[k]), false});
    const batch with_same(make_schema(fields), columns);
    // s: the literal's value in every row of a column, which takes the column against column path.
    const expr c = kinds_of[k], l = lit(literals[k]), s = col("same");
    CAPTURE(k);
    CHECK(eval(c == l, with_same) == eval(c == s, with_same));
    CHECK(eval(l != c, with_same) == eval(s != c, with_same));
    CHECK(eval(c < l, with_same) == eval(c < s, with_same));
    CHECK(eval(l < c, with_same) == eval(s < c, with_same));
    CHECK(eval(l <= c, with_same) == eval(s <= c, with_same));
    CHECK(eval(l > c, with_same) == eval(s > c, with_same));
    CHECK(eval(l >= c, with_same) == eval(s >= c, with_same));
    CHECK(eval(c >= l, with_same) == eval(c >= s, with_same));
  }
  CHECK(eval(lit(0) < col("Quantity")) == std::vector<value>{true, false, null, true});
  CHECK(eval(lit(1) < lit(2)) == std::vector<value>{true, true, true, true});
}

TEST_CASE("expr: three-valued AND, OR, NOT", "[expr]") {
  auto s = make_schema({{"a", type_id::boolean, true}, {"b", type_id::boolean, true}});
  std::vector<std::vector<value>> rows;
  const std::vector<value> values{true, false, null};
  for (auto& a : values)
    for (auto& b : values) rows.push_back({a, b});
  auto b = make_batch(s, rows);
  // Rows: TT TF TN FT FF FN NT NF NN
  CHECK(eval(col("a") && col("b"), b) == std::vector<value>{true, false, null, false, false, false, null, false, null});
  CHECK(eval(col("a") || col("b"), b) == std::vector<value>{true, true, true, true, false, null, true, null, null});
  CHECK(eval(!col("a"), b) == std::vector<value>{false, false, false, true, true, true, null, null, null});
  // Fast path without nulls.
  auto no_nulls = make_batch(make_schema({{"a", type_id::boolean, false}, {"b", type_id::boolean, false}}),
                             {{true, true}, {true, false}, {false, false}});
  CHECK(eval(col("a") && col("b"), no_nulls) == std::vector<value>{true, false, false});
  CHECK(eval(col("a") || col("b"), no_nulls) == std::vector<value>{true, true, false});
}

TEST_CASE("expr: casts", "[expr]") {
  CHECK(eval(col("Quantity").cast(type_id::float64)) == std::vector<value>{6.0, -2.0, null, 4.0});
  CHECK(eval(col("UnitPrice").cast(type_id::int64)) == std::vector<value>{std::int64_t{2}, std::int64_t{0},
                                                                            std::int64_t{3}, null});
  CHECK(eval(col("Quantity").cast(type_id::string)) ==
        std::vector<value>{std::string("6"), std::string("-2"), null, std::string("4")});
  CHECK(eval(col("UnitPrice").cast("string"))[2] == value{std::string("3.0")});
  CHECK(eval(col("Flag").cast(type_id::int64)) == std::vector<value>{std::int64_t{1}, std::int64_t{0}, null,
                                                                       std::int64_t{1}});
  CHECK(eval(col("Quantity").cast(type_id::boolean)) == std::vector<value>{true, true, null, true});
  // timestamp -> seconds, floored for times before the epoch (1969-12-31 23:30:00 = -1800 s).
  CHECK(eval(col("InvoiceDate").cast(type_id::int64))[3] == value{std::int64_t{-1800}});
  CHECK(eval(col("InvoiceDate").cast(type_id::string))[0] == value{std::string("2010-12-01 08:26:00")});

  auto s = make_schema({{"t", type_id::string, true}});
  auto b = make_batch(s, {{std::string(" 42 ")}, {std::string("1.9")}, {std::string("abc")}, {null},
                          {std::string("2010-12-01 10:00:00")}, {std::string("true")}});
  CHECK(eval(col("t").cast(type_id::int64), b) ==
        std::vector<value>{std::int64_t{42}, std::int64_t{1}, null, null, null, null});
  CHECK(eval(col("t").cast(type_id::float64), b) == std::vector<value>{42.0, 1.9, null, null, null, null});
  CHECK(eval(col("t").cast(type_id::timestamp), b) ==
        std::vector<value>{null, null, null, null, ts("2010-12-01 10:00:00"), null});
  CHECK(eval(col("t").cast(type_id::boolean), b) == std::vector<value>{null, null, null, null, null, true});

  auto d = make_schema({{"s", type_id::int64, false}, {"d", type_id::float64, false}});
  auto nums = make_batch(d, {{std::int64_t{3600}, std::nan("")}});
  CHECK(eval(col("s").cast(type_id::timestamp), nums)[0] == value{ts("1970-01-01 01:00:00")});
  CHECK(eval(col("d").cast(type_id::int64), nums)[0] == value{std::int64_t{0}});  // Java: NaN -> 0
  CHECK(is_null(eval(col("d").cast(type_id::timestamp), nums)[0]));
}

TEST_CASE("expr: literals broadcast and aliases evaluate their child", "[expr]") {
  CHECK(eval(lit(7)) == std::vector<value>(4, value{std::int64_t{7}}));
  CHECK(eval(lit("x")) == std::vector<value>(4, value{std::string("x")}));
  CHECK(eval((col("Quantity") * lit(2)).as("double_q"))[0] == value{std::int64_t{12}});
  auto bound = bind((col("Quantity") * lit(2)).as("double_q"), *sales_schema());
  CHECK(bound.name() == "double_q");
}

TEST_CASE("expr: evaluation over a sliced batch honours the offset", "[expr]") {
  auto b = sales().slice(2, 2);
  CHECK(eval(col("Quantity") + lit(1), b) == std::vector<value>{null, std::int64_t{5}});
  CHECK(eval(col("Description") == lit("CANDLE"), b) == std::vector<value>{null, true});
}

TEST_CASE("expr: a string column equal and unequal to values of every length, as std::string compares", "[expr]") {
  const std::vector<std::string> words = {"", "v", "vi", "view", "viex", "views", "purchase", "purchases", "purchasf",
                                          "abcdefghijklmnopq", "abcdefghijklmnopr", "click", "view"};
  const batch b(make_schema({{"w", type_id::string, false}}), {make_string_column(words)});
  for (const std::string literal : {"", "v", "vi", "vie", "view", "views", "click", "purchase", "purchases",
                                    "abcdefghijklmnopq"}) {
    INFO(literal);
    std::vector<value> equal, unequal;
    for (const auto& w : words) {
      equal.emplace_back(w == literal);
      unequal.emplace_back(w != literal);
    }
    CHECK(eval(col("w") == lit(literal), b) == equal);
    CHECK(eval(col("w") != lit(literal), b) == unequal);
    CHECK(eval(lit(literal) == col("w"), b.slice(3, 5)) == std::vector<value>(equal.begin() + 3, equal.begin() + 8));
  }
}

TEST_CASE("expr: tumbling windows aligned to the epoch", "[expr]") {
  auto w = eval(window(col("InvoiceDate"), "1 hour"));
  CHECK(w[0] == value{window_value{ts("2010-12-01 08:00:00"), ts("2010-12-01 09:00:00")}});
  CHECK(w[1] == value{window_value{ts("2010-12-01 09:00:00"), ts("2010-12-01 10:00:00")}});
  CHECK(is_null(w[2]));
  // Before the epoch the floor modulus still gives the window that contains the row.
  CHECK(w[3] == value{window_value{ts("1969-12-31 23:00:00"), ts("1970-01-01 00:00:00")}});
  auto shifted = eval(window(col("InvoiceDate"), "1 hour", "1 hour", "15 minutes"));
  CHECK(shifted[0] == value{window_value{ts("2010-12-01 08:15:00"), ts("2010-12-01 09:15:00")}});
  CHECK(shifted[3] == value{window_value{ts("1969-12-31 23:15:00"), ts("1970-01-01 00:15:00")}});
  CHECK(find_window(window(col("InvoiceDate"), "1 hour").as("w")) != nullptr);
  CHECK(find_window(col("InvoiceDate")) == nullptr);
}

TEST_CASE("expr: errors name the expression, the types and what to do", "[expr]") {
  auto s = sales_schema();
  try {
    bind(col("Price") * col("Quantity"), *s);
    FAIL("expected an error");
  } catch (const error& e) {
    std::string what = e.what();
    CHECK(what.find("cannot resolve column 'Price' in expression '(Price * Quantity)'") != std::string::npos);
    CHECK(what.find("available columns: Quantity, UnitPrice, Description, InvoiceDate, Flag") != std::string::npos);
  }
  CHECK_THROWS_WITH(bind(col("Description") + lit(1), *s),
                    Catch::Contains("string and int64") && Catch::Contains("(Description + 1)"));
  CHECK_THROWS_WITH(bind(col("Description") > lit(1), *s),
                    Catch::Contains("cannot compare string and int64") && Catch::Contains("(Description > 1)"));
  CHECK_THROWS_WITH(bind(col("Quantity") && col("Flag"), *s), Catch::Contains("needs boolean"));
  CHECK_THROWS_WITH(bind(window(col("Quantity"), "1 hour"), *s), Catch::Contains("needs a timestamp"));
  CHECK_THROWS_WITH(bind(col("Flag").cast(type_id::timestamp), *s), Catch::Contains("cannot cast"));
  CHECK_THROWS_WITH(col("x").cast("decimal(3)"), Catch::Contains("unknown type"));
  CHECK_THROWS_WITH(window(col("t"), "10 minutes", "1 hour"), Catch::Contains("less than or equal"));
  CHECK_THROWS_WITH(window(col("t"), "0 seconds"), Catch::Contains("positive"));
  CHECK_THROWS_AS(window(col("t"), "one hour"), error);
  auto sliding = bind(window(col("InvoiceDate"), "1 hour", "10 minutes"), *s);
  CHECK(sliding.type() == type_id::window);
  CHECK_THROWS_WITH(sliding.evaluate(sales()), Catch::Contains("sliding window"));
  CHECK_THROWS_WITH(bound_expr{}.evaluate(sales()), Catch::Contains("not bound"));
  // Evaluating against a batch of another schema is an error, not a crash.
  auto other = make_batch(make_schema({{"Quantity", type_id::string, true}}), {{std::string("x")}});
  CHECK_THROWS_WITH(bind(col("Quantity") + lit(1), *s).evaluate(other), Catch::Contains("different schema"));
}

TEST_CASE("expr: cast(double as string) prints like Java's Double.toString, as Spark does", "[expr][cast]") {
  auto s = make_schema({{"d", type_id::float64, false}});
  const std::vector<double> inputs{1e20,    1e-5, 0.001, 1e7, 9999999.0, 2.5, 17850.0, 123456789.5,
                                   std::nan(""), std::numeric_limits<double>::infinity(), -0.0, -2.5e-4};
  std::vector<std::vector<value>> rows;
  for (double d : inputs) rows.push_back({d});
  CHECK(eval(col("d").cast(type_id::string), make_batch(s, rows)) ==
        std::vector<value>{std::string("1.0E20"), std::string("1.0E-5"), std::string("0.001"), std::string("1.0E7"),
                           std::string("9999999.0"), std::string("2.5"), std::string("17850.0"),
                           std::string("1.234567895E8"), std::string("NaN"), std::string("Infinity"),
                           std::string("-0.0"), std::string("-2.5E-4")});
  // Literal names use the same text, as Spark's do.
  CHECK(lit(1e20).name() == "1.0E20");
  CHECK(lit(1e-5).name() == "1.0E-5");
}

TEST_CASE("expr: cast(string as long) reads what Spark reads, and only that", "[expr][cast]") {
  // Spark (non-ANSI): optional sign, digits, an optional fraction of digits that is truncated; anything
  // else, an exponent included, and values out of range are null.
  auto s = make_schema({{"t", type_id::string, true}});
  auto b = make_batch(s, {{std::string("1e3")}, {std::string(" -12 ")}, {std::string("+7")}, {std::string("1.9")},
                          {std::string("-1.9")}, {std::string("3.")}, {std::string("1.5e2")}, {std::string("NaN")},
                          {std::string("Infinity")}, {std::string("9223372036854775807")},
                          {std::string("9223372036854775808")}, {std::string("-9223372036854775808")},
                          {std::string("1.2.3")}, {std::string("-")}, {std::string("")}, {std::string("1d")}});
  CHECK(eval(col("t").cast(type_id::int64), b) ==
        std::vector<value>{null, std::int64_t{-12}, std::int64_t{7}, std::int64_t{1}, std::int64_t{-1},
                           std::int64_t{3}, null, null, null, std::int64_t{9223372036854775807},
                           null, std::numeric_limits<std::int64_t>::min(), null, null, null, null});
}

TEST_CASE("expr: cast(string as double) takes Java's d/f suffix and Spark's special words", "[expr][cast]") {
  const double inf = std::numeric_limits<double>::infinity();
  auto s = make_schema({{"t", type_id::string, true}});
  auto b = make_batch(s, {{std::string("1d")}, {std::string("1f")}, {std::string("1D")}, {std::string("2.5F")},
                          {std::string("1e3d")}, {std::string(" -3.d ")}, {std::string("1e3")}, {std::string("Infinity")},
                          {std::string("-inf")}, {std::string("d")}, {std::string("1dd")}, {std::string("Infinityd")},
                          {std::string("0x10")}, {std::string("1 d")}});
  CHECK(eval(col("t").cast(type_id::float64), b) ==
        std::vector<value>{1.0, 1.0, 1.0, 2.5, 1000.0, -3.0, 1000.0, inf, -inf, null, null, null, null, null});
  auto nan = eval(col("t").cast(type_id::float64), make_batch(s, {{std::string("NaN")}, {std::string("nan")}}));
  CHECK(std::isnan(std::get<double>(nan[0])));
  CHECK(std::isnan(std::get<double>(nan[1])));
}

TEST_CASE("expr: cast(string as double) past the double range is infinite, below it zero, as in Java", "[expr][cast]") {
  const double inf = std::numeric_limits<double>::infinity();
  auto s = make_schema({{"t", type_id::string, true}});
  const std::string huge = "1" + std::string(400, '0');
  const std::string tiny = "0." + std::string(400, '0') + "1";
  auto b = make_batch(s, {{std::string("1e400")}, {std::string("-1e400")}, {std::string("1e-400")}, {huge},
                          {tiny + "e-5"}, {huge + "e-50"}, {tiny + "e500"}, {std::string("1e99999999999999999999")},
                          {std::string("2e-324")}, {std::string("3e-324")}});
  auto out = eval(col("t").cast(type_id::float64), b);
  CHECK(out == std::vector<value>{inf, -inf, 0.0, inf, 0.0, inf, 1e99, inf, 0.0, 4.9e-324});
  CHECK(std::signbit(std::get<double>(eval(col("t").cast(type_id::float64),
                                           make_batch(s, {{std::string("-1e-400")}}))[0])));
}

TEST_CASE("expr: cast(string as timestamp) reads offsets, long fractions and single-digit fields", "[expr][cast]") {
  auto s = make_schema({{"t", type_id::string, true}});
  auto b = make_batch(s, {{std::string("2010-12-01T08:26:00+01:00")}, {std::string("2010-12-01 08:26:00Z")},
                          {std::string("2010-12-01T08:26:00.123456789")}, {std::string("2010-12-1 8:26:00")},
                          {std::string(" 2010-12-01 ")}, {std::string("2010-12-01T08:26:00+0100")},
                          {std::string("2010-12-01T08:26:00 Europe/Paris")}});
  CHECK(eval(col("t").cast(type_id::timestamp), b) ==
        std::vector<value>{ts("2010-12-01 07:26:00"), ts("2010-12-01 08:26:00"), ts("2010-12-01 08:26:00.123456"),
                           ts("2010-12-01 08:26:00"), ts("2010-12-01 00:00:00"), ts("2010-12-01 07:26:00"), null});
  // A string compared with a timestamp is cast the same way.
  auto times = make_batch(make_schema({{"at", type_id::timestamp, false}}), {{ts("2010-12-01 07:26:00")}});
  CHECK(eval(col("at") == lit("2010-12-01T08:26:00+01:00"), times) == std::vector<value>{true});
}
