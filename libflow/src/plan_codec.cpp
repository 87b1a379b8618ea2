// The descriptor text of expressions and schemas. Grammar (items separated by one space):
//   string     := <decimal byte count> ':' <bytes>
//   expression := '(' word payload children ')', by kind:
//                 (col S) (lit L) (alias S E) (cast TYPE E) (window LENGTH SLIDE OFFSET E) (split S E),
//                 and (word E...) for the operators and functions without payload (add E E, not E, ...)
//   literal L  := null | boolean true|false | int64 I | float64 <16 hex digits of the bits> | string S |
//                 timestamp I | window I I | array<string> N S... (integers in decimal, microseconds)
//   schema     := (schema (field S TYPE true|false)...)
// Decoding builds expressions with the public constructors (col, lit, window, split, ...), so it checks
// what they check; the arity of every node is checked here.
#include "flow/plan_codec.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cstdint>

namespace flow {

namespace {

struct kind_spelling {
  expr_kind kind;
  std::string_view word;
  std::size_t children;
};

constexpr std::array<kind_spelling, 25> kind_spellings{{
    {expr_kind::column_ref, "col", 0},  {expr_kind::literal, "lit", 0},    {expr_kind::add, "add", 2},
    {expr_kind::sub, "sub", 2},         {expr_kind::mul, "mul", 2},        {expr_kind::div, "div", 2},
    {expr_kind::eq, "eq", 2},           {expr_kind::ne, "ne", 2},          {expr_kind::lt, "lt", 2},
    {expr_kind::le, "le", 2},           {expr_kind::gt, "gt", 2},          {expr_kind::ge, "ge", 2},
    {expr_kind::logical_and, "and", 2}, {expr_kind::logical_or, "or", 2},  {expr_kind::logical_not, "not", 1},
    {expr_kind::negate, "negate", 1},   {expr_kind::cast, "cast", 1},      {expr_kind::alias, "alias", 1},
    {expr_kind::window, "window", 1},   {expr_kind::split, "split", 1},    {expr_kind::lower, "lower", 1},
    {expr_kind::upper, "upper", 1},     {expr_kind::length, "length", 1},  {expr_kind::size, "size", 1},
    {expr_kind::explode, "explode", 1},
}};

const kind_spelling& spelling_of(expr_kind kind) {
  for (const auto& s : kind_spellings)
    if (s.kind == kind) return s;
  throw error("plan codec: expression kind " + std::to_string(static_cast<int>(kind)) + " has no encoding");
}

std::string hex_bits(double d) {
  std::array<char, 16> digits{};
  auto bits = std::bit_cast<std::uint64_t>(d);
  for (std::size_t i = digits.size(); i-- > 0; bits >>= 4) digits[i] = "0123456789abcdef"[bits & 0xf];
  return std::string(digits.data(), digits.size());
}

bool is_delimiter(char c) { return c == ' ' || c == '(' || c == ')'; }

}  // namespace

// ---------------------------------------------------------------- writing

void codec_writer::separate() {
  if (!text_.empty() && text_.back() != '(') text_ += ' ';
}

codec_writer& codec_writer::write(std::string_view text) {
  separate();
  text_ += std::to_string(text.size());
  text_ += ':';
  text_ += text;
  return *this;
}

codec_writer& codec_writer::write(const expr& e) {
  write_node(e, 1);
  return *this;
}

void codec_writer::write_node(const expr& e, std::size_t depth) {
  if (!e.valid()) throw error("plan codec: cannot encode an empty expression");
  if (depth > max_encoded_expr_depth)
    throw error("plan codec: the expression is nested deeper than " + std::to_string(max_encoded_expr_depth) +
                " levels; split it over several select() calls");
  const expr_node& node = e.node();
  const kind_spelling& spelling = spelling_of(node.kind);
  separate();
  text_ += '(';
  text_ += spelling.word;
  auto word = [&](std::string_view w) {
    text_ += ' ';
    text_ += w;
  };
  switch (node.kind) {
    case expr_kind::column_ref:
    case expr_kind::alias: write(node.name); break;
    case expr_kind::cast: word(type_name(node.cast_to)); break;
    case expr_kind::split:
      if (!std::holds_alternative<std::string>(node.literal)) throw error("plan codec: a split() without its pattern");
      write(std::get<std::string>(node.literal));
      break;
    case expr_kind::window:
      for (auto micros : {node.window_length, node.window_slide, node.window_offset}) word(std::to_string(micros));
      break;
    case expr_kind::literal:
      if (auto type = type_of(node.literal); !type) {
        word("null");
      } else {
        word(type_name(*type));
        if (auto* b = std::get_if<bool>(&node.literal)) word(*b ? "true" : "false");
        if (auto* i = std::get_if<std::int64_t>(&node.literal)) word(std::to_string(*i));
        if (auto* d = std::get_if<double>(&node.literal)) word(hex_bits(*d));
        if (auto* s = std::get_if<std::string>(&node.literal)) write(*s);
        if (auto* t = std::get_if<timestamp>(&node.literal)) word(std::to_string(t->micros));
        if (auto* w = std::get_if<window_value>(&node.literal)) {
          word(std::to_string(w->start.micros));
          word(std::to_string(w->end.micros));
        }
        if (auto* list = std::get_if<std::vector<std::string>>(&node.literal)) {
          word(std::to_string(list->size()));
          for (const auto& item : *list) write(item);
        }
      }
      break;
    default: break;
  }
  for (const auto& child : node.children) write_node(child, depth + 1);
  text_ += ')';
}

codec_writer& codec_writer::write(const schema& s) {
  separate();
  text_ += "(schema";
  for (const auto& f : s.fields()) {
    text_ += " (field";
    write(f.name);
    text_ += ' ';
    text_ += type_name(f.type);
    text_ += f.nullable ? " true)" : " false)";
  }
  text_ += ')';
  return *this;
}

std::string encode_expr(const expr& e) { return codec_writer().write(e).text(); }

// ---------------------------------------------------------------- reading

void codec_reader::fail(const std::string& why) const {
  throw error("cannot decode " + what_ + ": " + why + " at byte " + std::to_string(pos_) + " of " +
              std::to_string(text_.size()) + "; the text is truncated or was not written by flow::codec_writer");
}

void codec_reader::skip_spaces() {
  while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
}

bool codec_reader::at_end() {
  skip_spaces();
  return pos_ == text_.size();
}

void codec_reader::expect_end() {
  if (!at_end()) fail("unexpected text after the last item");
}

void codec_reader::expect(char c) {
  skip_spaces();
  if (pos_ >= text_.size()) fail(std::string("expected '") + c + "' but the text ended");
  if (text_[pos_] != c) fail(std::string("expected '") + c + "' but found '" + text_[pos_] + "'");
  ++pos_;
}

std::string_view codec_reader::read_word() {
  skip_spaces();
  const std::size_t begin = pos_;
  while (pos_ < text_.size() && !is_delimiter(text_[pos_])) ++pos_;
  if (pos_ == begin) fail(pos_ == text_.size() ? "expected a word but the text ended" : "expected a word");
  return text_.substr(begin, pos_ - begin);
}

std::int64_t codec_reader::read_int() {
  const std::string_view word = read_word();
  std::int64_t result = 0;
  auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), result);
  if (ec != std::errc{} || end != word.data() + word.size()) fail("expected an integer, found '" + std::string(word) + "'");
  return result;
}

std::string codec_reader::read_string() {
  skip_spaces();
  const std::size_t begin = pos_;
  while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
  std::size_t length = 0;
  auto [end, ec] = std::from_chars(text_.data() + begin, text_.data() + pos_, length);
  if (pos_ == begin || ec != std::errc{} || end != text_.data() + pos_) fail("expected a string's length");
  expect(':');
  if (length > text_.size() - pos_)
    fail("a string of " + std::to_string(length) + " bytes is longer than the rest of the text");
  std::string result(text_.substr(pos_, length));
  pos_ += length;
  return result;
}

std::int64_t codec_reader::read_number(std::string_view what) {
  const std::string text = read_string();
  std::int64_t result = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), result);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    fail(std::string(what) + " '" + text + "' is not a number");
  return result;
}

type_id codec_reader::read_type() {
  const std::string_view word = read_word();
  for (auto t : {type_id::boolean, type_id::int64, type_id::float64, type_id::string, type_id::timestamp,
                 type_id::window, type_id::string_list})
    if (word == type_name(t)) return t;
  fail("unknown type '" + std::string(word) + "'");
}

value codec_reader::read_literal() {
  const std::string_view type = read_word();
  if (type == "null") return null_value{};
  const auto boolean = [&] {
    const std::string_view word = read_word();
    if (word != "true" && word != "false") fail("expected true or false, found '" + std::string(word) + "'");
    return word == "true";
  };
  if (type == type_name(type_id::boolean)) return boolean();
  if (type == type_name(type_id::int64)) return read_int();
  if (type == type_name(type_id::string)) return read_string();
  if (type == type_name(type_id::timestamp)) return timestamp{read_int()};
  if (type == type_name(type_id::window)) {
    const timestamp start{read_int()};
    return window_value{start, timestamp{read_int()}};
  }
  if (type == type_name(type_id::float64)) {
    const std::string_view digits = read_word();
    std::uint64_t bits = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits, 16);
    if (digits.size() != 16 || ec != std::errc{} || end != digits.data() + digits.size())
      fail("expected the 16 hex digits of a double, found '" + std::string(digits) + "'");
    return std::bit_cast<double>(bits);
  }
  if (type == type_name(type_id::string_list)) {
    const std::int64_t count = read_int();
    // Each element takes at least 3 bytes ("0: "): a larger count is corrupt, and is not allocated.
    if (count < 0 || static_cast<std::uint64_t>(count) > (text_.size() - pos_) / 2)
      fail("a list of " + std::to_string(count) + " elements does not fit in the rest of the text");
    std::vector<std::string> items;
    for (std::int64_t i = 0; i < count; ++i) items.push_back(read_string());
    return items;
  }
  fail("unknown literal type '" + std::string(type) + "'");
}

expr codec_reader::read_expr() { return read_node(1); }

expr codec_reader::read_node(std::size_t depth) {
  if (depth > max_encoded_expr_depth)
    fail("the expression is nested deeper than " + std::to_string(max_encoded_expr_depth) + " levels");
  expect('(');
  const std::size_t start = pos_;
  const std::string_view word = read_word();
  const kind_spelling* spelling = nullptr;
  for (const auto& s : kind_spellings)
    if (s.word == word) spelling = &s;
  if (spelling == nullptr) {
    pos_ = start;
    fail("unknown expression kind '" + std::string(word) + "'");
  }
  // The payload, read before the children it precedes.
  std::string name;
  value literal;
  type_id cast_to = type_id::string;
  std::array<std::int64_t, 3> window_micros{};
  switch (spelling->kind) {
    case expr_kind::column_ref:
    case expr_kind::alias:
    case expr_kind::split: name = read_string(); break;
    case expr_kind::literal: literal = read_literal(); break;
    case expr_kind::cast: cast_to = read_type(); break;
    case expr_kind::window:
      for (auto& micros : window_micros) micros = read_int();
      break;
    default: break;
  }
  std::vector<expr> children;
  for (std::size_t i = 0; i < spelling->children; ++i) children.push_back(read_node(depth + 1));
  expect(')');
  try {
    switch (spelling->kind) {
      case expr_kind::column_ref: return col(std::move(name));
      case expr_kind::literal: return lit(std::move(literal));
      case expr_kind::alias: return children[0].as(std::move(name));
      case expr_kind::cast: return children[0].cast(cast_to);
      case expr_kind::split: return split(std::move(children[0]), std::move(name));
      case expr_kind::window: {
        // window() reads durations: microseconds spelled as such go through its checks unchanged.
        auto micros = [](std::int64_t us) { return std::to_string(us) + " us"; };
        return window(std::move(children[0]), micros(window_micros[0]), micros(window_micros[1]),
                      window_micros[2] == 0 ? std::string() : micros(window_micros[2]));
      }
      default: return expr(std::make_shared<const expr_node>(expr_node{spelling->kind, std::move(children), {}, {}, {}, 0, 0, 0}));
    }
  } catch (const error& e) {
    pos_ = start;
    fail(std::string(word) + ": " + e.what());
  }
}

schema_ptr codec_reader::read_schema() {
  expect('(');
  if (read_word() != "schema") fail("expected a schema");
  std::vector<field> fields;
  for (skip_spaces(); pos_ < text_.size() && text_[pos_] == '('; skip_spaces()) {
    expect('(');
    if (read_word() != "field") fail("expected a field");
    field f;
    f.name = read_string();
    f.type = read_type();
    const std::string_view nullable = read_word();
    if (nullable != "true" && nullable != "false") fail("expected true or false, found '" + std::string(nullable) + "'");
    f.nullable = nullable == "true";
    expect(')');
    fields.push_back(std::move(f));
  }
  expect(')');
  return make_schema(std::move(fields));
}

expr decode_expr(std::string_view text) {
  codec_reader reader(text, "an expression");
  expr e = reader.read_expr();
  reader.expect_end();
  return e;
}

}  // namespace flow
