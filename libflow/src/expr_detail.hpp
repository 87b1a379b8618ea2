// What the expression files share. Private. expr.cpp builds and names the tree, expr_bind.cpp binds it to a
// schema (type rules) as a tree of bnodes, expr_kernels.cpp evaluates bnodes over a batch, casts.cpp
// converts columns between types, expr_strings.cpp holds the string functions' text handling.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "flow/expr.hpp"

namespace flow::detail {

// ---------------------------------------------------------------- names (expr.cpp)

std::string sql_type_name(type_id t);
// The SQL spelling of a binary operator ("+", "AND", ...).
std::string_view operator_text(expr_kind k);

// ---------------------------------------------------------------- string functions (expr_strings.cpp)

// How split() cuts a string. Spark passes the pattern to Java's String.split(regex, -1), which keeps an
// empty leading element for a leading separator and empty trailing ones ("  a b " -> ["", "a", "b", ""]).
// For the whitespace patterns, the ones word counts use, we deliberately return only the words (maximal
// runs of non-separator characters, like awk): no empty element anywhere, and a blank string gives an
// empty list, so explode never yields an empty "word". Literal and regex patterns follow Java exactly.
struct splitter {
  enum class mode { whitespace_runs, space_runs, literal, regex };
  mode kind = mode::literal;
  std::string separator;  // literal
  std::regex pattern;     // regex

  // Appends text's pieces to out as one list.
  void split(std::string_view text, column_builder& out) const;
};

// Throws flow::error for an invalid regular expression.
splitter make_splitter(const std::string& pattern);

// lower() or upper() of UTF-8 text, into out.
void change_case(std::string_view text, bool to_upper, std::string& out);
std::size_t count_code_points(std::string_view s);

// ---------------------------------------------------------------- the bound tree (expr_bind.cpp builds it)

struct bnode {
  expr_kind kind = expr_kind::literal;
  type_id type = type_id::int64;
  bool nullable = true;
  std::vector<std::shared_ptr<const bnode>> children;
  std::size_t index = 0;  // column_ref
  value literal;          // literal
  std::int64_t length = 0, slide = 0, offset = 0;  // window
  std::string text;       // the node's name, for error messages at evaluation time
  std::shared_ptr<const splitter> split;  // split
};
using bnode_ptr = std::shared_ptr<const bnode>;

// ---------------------------------------------------------------- columns under construction (expr_kernels.cpp)

// Storage for n rows of type t, zeroed, for a kernel to fill in.
std::shared_ptr<column_data> make_data(type_id t, std::size_t n);

// The validity of c's visible rows as a bitmap aligned to row 0; empty when none is null.
std::vector<std::uint64_t> validity_of(const column& c);
std::vector<std::uint64_t> all_valid(std::size_t n);
inline void clear_bit(std::vector<std::uint64_t>& bits, std::size_t i) { bits[i >> 6] &= ~(std::uint64_t{1} << (i & 63)); }
inline bool test_bit(const std::vector<std::uint64_t>& bits, std::size_t i) {
  return bits.empty() || ((bits[i >> 6] >> (i & 63)) & 1u);
}

// Installs validity (tail masked, dropped when nothing is null) and freezes d into a column.
column finish(std::shared_ptr<column_data> d, std::vector<std::uint64_t> validity);

// Two's-complement wrapping int64 arithmetic, as Java's long.
inline std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}
inline std::int64_t wrap_sub(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
inline std::int64_t wrap_mul(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b));
}

// The start of the tumbling window (slide = length) that holds event time t (Spark: t - (t - offset) mod slide).
inline std::int64_t tumbling_window_start(std::int64_t t, std::int64_t slide, std::int64_t offset) {
  const std::int64_t r = wrap_sub(t, offset) % slide;
  return t - (r < 0 ? r + slide : r);
}

// Java's (long) conversion: truncation, NaN -> 0, saturation at the range ends.
inline std::int64_t double_to_long(double d) {
  if (std::isnan(d)) return 0;
  if (d >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
  if (d <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(d);
}

// ---------------------------------------------------------------- casts (casts.cpp)

// c converted to type to, with Spark's (non-ANSI) cast rules; text that does not parse becomes null.
column cast_column(const column& c, type_id to);

}  // namespace flow::detail

namespace flow {

struct bound_expr::impl {
  detail::bnode_ptr root;
};

}  // namespace flow
