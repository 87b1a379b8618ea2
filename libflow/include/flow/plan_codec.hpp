// The text operator descriptors carry (flow::operator_descriptor::arguments): expressions and schemas,
// encoded so that decoding gives back exactly what was encoded. The text is a readable s-expression,
// e.g. (alias 5:total (mul (col 9:UnitPrice) (col 8:Quantity))): strings are length-prefixed, so any
// bytes survive, and doubles travel as their IEEE-754 bits. Decoding throws flow::error on anything
// malformed, naming what was decoded and where it broke; it never reads past the text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "flow/expr.hpp"
#include "flow/schema.hpp"

namespace flow {

// Deeper expression trees are refused (when encoding and when decoding), so that decoding hostile text
// cannot exhaust the stack.
inline constexpr std::size_t max_encoded_expr_depth = 1000;

// Appends items, separated by a space.
class codec_writer {
 public:
  // Throws flow::error for an empty expression or one deeper than max_encoded_expr_depth.
  codec_writer& write(const expr& e);
  codec_writer& write(const schema& s);
  codec_writer& write(std::string_view text);
  const std::string& text() const { return text_; }

 private:
  void separate();
  void write_node(const expr& e, std::size_t depth);
  std::string text_;
};

// Reads back what a codec_writer wrote, item by item, in the same order. Refers to text, which must
// outlive it.
class codec_reader {
 public:
  // what names the text in errors, e.g. "its arguments".
  codec_reader(std::string_view text, std::string what) : text_(text), what_(std::move(what)) {}
  expr read_expr();
  schema_ptr read_schema();
  std::string read_string();
  // A string item holding a whole number (written as std::to_string(n)); what names it in the error.
  std::int64_t read_number(std::string_view what);
  // Whether every item has been read.
  bool at_end();
  // Throws unless every item has been read.
  void expect_end();

 private:
  expr read_node(std::size_t depth);
  value read_literal();
  type_id read_type();
  std::string_view read_word();
  std::int64_t read_int();
  void expect(char c);
  void skip_spaces();
  [[noreturn]] void fail(const std::string& why) const;
  std::string_view text_;
  std::string what_;
  std::size_t pos_ = 0;
};

std::string encode_expr(const expr& e);
// Throws flow::error unless text is exactly one encoded expression.
expr decode_expr(std::string_view text);

}  // namespace flow
