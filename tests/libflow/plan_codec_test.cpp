// The descriptor text of expressions and schemas: every expression kind, literal type and function comes
// back exactly; corrupt text is refused with flow::error, never a crash.
#include <catch2/catch.hpp>

#include <bit>
#include <limits>
#include <random>
#include <set>

#include "flow/plan_codec.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;

namespace {

bool same_value(const value& a, const value& b) {
  // Bits, so that NaN equals itself and -0.0 differs from 0.0.
  if (std::holds_alternative<double>(a) && std::holds_alternative<double>(b))
    return std::bit_cast<std::uint64_t>(std::get<double>(a)) == std::bit_cast<std::uint64_t>(std::get<double>(b));
  return a == b;
}

// Every field of every node, not just the names (which several trees share).
bool same_tree(const expr& a, const expr& b) {
  if (a.valid() != b.valid()) return false;
  if (!a.valid()) return true;
  const expr_node& x = a.node();
  const expr_node& y = b.node();
  if (x.kind != y.kind || x.name != y.name || !same_value(x.literal, y.literal) || x.cast_to != y.cast_to ||
      x.window_length != y.window_length || x.window_slide != y.window_slide || x.window_offset != y.window_offset ||
      x.children.size() != y.children.size())
    return false;
  for (std::size_t i = 0; i < x.children.size(); ++i)
    if (!same_tree(x.children[i], y.children[i])) return false;
  return true;
}

void collect_kinds(const expr& e, std::set<expr_kind>& kinds, std::set<type_id>& literal_types) {
  kinds.insert(e.node().kind);
  if (auto type = e.node().kind == expr_kind::literal ? type_of(e.node().literal) : std::nullopt) literal_types.insert(*type);
  for (const auto& child : e.node().children) collect_kinds(child, kinds, literal_types);
}

std::vector<value> every_literal() {
  return {null_value{},
          true,
          false,
          std::int64_t{0},
          std::numeric_limits<std::int64_t>::min(),
          std::numeric_limits<std::int64_t>::max(),
          0.1,
          -0.0,
          std::numeric_limits<double>::quiet_NaN(),
          -std::numeric_limits<double>::infinity(),
          std::numeric_limits<double>::denorm_min(),
          std::string(),
          std::string("a (b) 3:c\n\"quoted\" "),
          std::string("nul\0byte", 8),
          timestamp{-1},
          timestamp{1291192560000000},
          window_value{timestamp{0}, timestamp{3600000000}},
          std::vector<std::string>{},
          std::vector<std::string>{"", "two words", ")"}};
}

std::vector<expr> every_expression() {
  std::vector<expr> all;
  for (const auto& v : every_literal()) all.push_back(lit(v));
  const expr q = col("Quantity"), p = col("Unit Price (GBP)");
  all.insert(all.end(), {q + p, q - p, q * p, q / p, q == p, q != p, q < p, q <= p, q > p, q >= p,
                         (q > lit(0)) && (p < lit(1.5)), (q > lit(0)) || !(p < lit(1.5)), -q,
                         q.cast(type_id::string), p.cast(type_id::timestamp).cast("long"), (q * p).as("total cost"),
                         window(col("InvoiceDate"), "1 hour"), window(col("InvoiceDate"), "10 minutes", "5 minutes", "1 minute"),
                         split(col("line"), "\\s+"), split(col("line"), ","), lower(col("s")), upper(col("s")),
                         length(col("s")), size(split(col("line"), " ")), explode(split(col("line"), " ")).as("word"),
                         col("a:b")});
  return all;
}

}  // namespace

TEST_CASE("plan codec: every expression comes back exactly", "[plan_codec]") {
  std::set<expr_kind> kinds;
  std::set<type_id> literal_types;
  for (const auto& e : every_expression()) {
    INFO(e.name());
    const std::string text = encode_expr(e);
    INFO(text);
    const expr decoded = decode_expr(text);
    CHECK(same_tree(decoded, e));
    CHECK(encode_expr(decoded) == text);
    collect_kinds(e, kinds, literal_types);
  }
  // A kind or type added later without an encoding fails here.
  CHECK(kinds.size() == static_cast<std::size_t>(expr_kind::explode) + 1);
  CHECK(literal_types.size() == static_cast<std::size_t>(type_id::string_list) + 1);
  CHECK(encode_expr((col("UnitPrice") * col("Quantity")).as("total")) ==
        "(alias 5:total (mul (col 9:UnitPrice) (col 8:Quantity)))");
}

TEST_CASE("plan codec: schemas and strings come back exactly, in order", "[plan_codec]") {
  const schema s({{"Country", type_id::string, true},
                  {"revenue (GBP)", type_id::float64, false},
                  {"window", type_id::window, true},
                  {"words", type_id::string_list, false},
                  {"at", type_id::timestamp, true},
                  {"n", type_id::int64, false},
                  {"ok", type_id::boolean, true}});
  codec_writer writer;
  writer.write("map 1").write(s).write(schema{}).write(col("x")).write("");
  codec_reader reader(writer.text(), "a test text");
  CHECK(reader.read_string() == "map 1");
  CHECK(*reader.read_schema() == s);
  CHECK(reader.read_schema()->size() == 0);
  CHECK(reader.read_expr().name() == "x");
  CHECK(reader.read_string().empty());
  CHECK(reader.at_end());
  reader.expect_end();
}

TEST_CASE("plan codec: malformed text is refused saying what and where", "[plan_codec]") {
  CHECK_THAT(error_of([] { decode_expr("(col 9:UnitPrice"); }),
             Catch::Equals("cannot decode an expression: expected ')' but the text ended at byte 16 of 16; the text is "
                           "truncated or was not written by flow::codec_writer"));
  CHECK_THAT(error_of([] { decode_expr("(frobnicate (col 1:a))"); }),
             Catch::Contains("unknown expression kind 'frobnicate' at byte 1"));
  CHECK_THAT(error_of([] { decode_expr("(col 1:a) (col 1:b)"); }), Catch::Contains("unexpected text after the last item"));
  CHECK_THAT(error_of([] { decode_expr("(col 0:)"); }), Catch::Contains("col: col(): the column name is empty"));
  CHECK_THAT(error_of([] { decode_expr("(add (col 1:a))"); }), Catch::Contains("expected '(' but found ')'"));
  CHECK_THAT(error_of([] { decode_expr("(lit float64 3ff)"); }), Catch::Contains("expected the 16 hex digits of a double"));
  CHECK_THAT(error_of([] { decode_expr("(lit array<string> 99999999999 0:)"); }), Catch::Contains("does not fit"));
  CHECK_THAT(error_of([] { decode_expr("(col 99999999999999999999999:a)"); }), Catch::Contains("expected a string's length"));
  CHECK_THAT(error_of([] { decode_expr("(window 0 0 0 (col 1:t))"); }), Catch::Contains("must be positive"));
  CHECK_THAT(error_of([] { decode_expr("(split 2:[( (col 1:s))"); }), Catch::Contains("split:"));
  CHECK_THAT(error_of([] { decode_expr("(cast varchar2 (col 1:s))"); }), Catch::Contains("unknown type 'varchar2'"));
  CHECK_THAT(error_of([] { decode_expr(""); }), Catch::Contains("expected '(' but the text ended"));
  CHECK_THAT(error_of([] { codec_reader("(schema (field 1:a int64 maybe))", "a schema").read_schema(); }),
             Catch::Contains("cannot decode a schema: expected true or false, found 'maybe'"));

  // Nesting deeper than the limit is refused on both sides, before the stack runs out.
  expr deep = col("x");
  for (std::size_t i = 1; i < max_encoded_expr_depth; ++i) deep = -deep;
  CHECK(same_tree(decode_expr(encode_expr(deep)), deep));
  CHECK_THAT(error_of([&] { encode_expr(-deep); }), Catch::Contains("nested deeper than 1000 levels"));
  CHECK_THAT(error_of([] { std::string nested;
    for (int i = 0; i < 100000; ++i) nested += "(negate ";
    decode_expr(nested); }), Catch::Contains("nested deeper than 1000 levels"));
  CHECK_THAT(error_of([] { encode_expr(expr{}); }), Catch::Contains("cannot encode an empty expression"));
}

TEST_CASE("plan codec: truncated, flipped and random text is refused or decodes, never crashes", "[plan_codec]") {
  std::mt19937 random(20240611);
  std::size_t refused = 0, decoded = 0;
  // Decoding may only throw flow::error: anything else (bad_variant_access, out_of_range, ...) fails.
  auto attempt = [&](const std::string& text) {
    try {
      const expr e = decode_expr(text);
      CHECK(same_tree(decode_expr(encode_expr(e)), e));
      ++decoded;
    } catch (const error&) {
      ++refused;
    }
  };
  for (const auto& e : every_expression()) {
    const std::string text = encode_expr(e);
    for (std::size_t n = 0; n < text.size(); ++n)
      CHECK_THROWS_AS(decode_expr(text.substr(0, n)), error);  // a prefix never closes the outer node
    for (std::size_t i = 0; i < text.size(); ++i) {
      for (char replacement : {'(', ')', ' ', '0', '9', ':', 'x', static_cast<char>(random())}) {
        std::string mutated = text;
        mutated[i] = replacement;
        attempt(mutated);
      }
    }
  }
  const std::string alphabet = "() :0123456789abcdefglnot-";
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    for (std::size_t n = random() % 40; n > 0; --n) text += alphabet[random() % alphabet.size()];
    attempt(text);
  }
  CHECK(refused > 0);
  CHECK(decoded > 0);  // e.g. a column name with one letter changed
}
