// Expressions: an immutable tree built by the user API, bound to a schema, evaluated a column at a time.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "flow/batch.hpp"

namespace flow {

enum class expr_kind {
  column_ref, literal, add, sub, mul, div, eq, ne, lt, le, gt, ge, logical_and, logical_or,
  logical_not, negate, cast, alias, window, split, lower, upper, length, size, explode
};

struct expr_node;

// A value-semantics handle on an immutable expression tree.
class expr {
 public:
  expr() = default;
  explicit expr(std::shared_ptr<const expr_node> node) : node_(std::move(node)) {}

  expr as(std::string name) const;          // alias
  expr cast(type_id to) const;
  expr cast(std::string_view type_name) const;
  // Spark's auto-generated column name: "CustomerID", "(UnitPrice * Quantity)", "window", alias name.
  std::string name() const;
  std::string to_string() const { return name(); }
  const expr_node& node() const { return *node_; }
  bool valid() const { return static_cast<bool>(node_); }

 private:
  std::shared_ptr<const expr_node> node_;
};

struct expr_node {
  expr_kind kind;
  std::vector<expr> children;
  std::string name;          // column_ref: column name; alias: new name
  value literal;             // literal; split: the pattern (a string)
  type_id cast_to = type_id::string;          // cast
  std::int64_t window_length = 0;             // window: microseconds
  std::int64_t window_slide = 0;              // window: microseconds (== length when tumbling)
  std::int64_t window_offset = 0;             // window: start offset, microseconds
};

expr col(std::string name);
expr lit(value v);
inline expr lit(const char* s) { return lit(value{std::string(s)}); }
inline expr lit(int v) { return lit(value{static_cast<std::int64_t>(v)}); }
// Exact overloads: without them lit(2.5) and lit(true) would pick lit(int) and truncate.
inline expr lit(std::int64_t v) { return lit(value{v}); }
inline expr lit(double v) { return lit(value{v}); }
inline expr lit(bool v) { return lit(value{v}); }
// window(timeColumn, "1 hour"[, "10 minutes"]): tumbling or sliding, aligned to 1970-01-01 UTC as in Spark.
expr window(expr time_column, std::string_view length, std::string_view slide = {},
            std::string_view start_offset = {});

// String and list functions, named like Spark's: split(value, \s+, -1), lower(x), size(words).
// split(str, pattern) -> array<string>. Spark's pattern is a Java regex. Here (patterns written as C++
// literals) "\\s+" and "\\s" split on runs of whitespace and " +" on runs of spaces, giving no empty
// elements at all (see expr_strings.cpp); a pattern without regex metacharacters, or one escaped
// character such as "\\|", splits on that literal text exactly like Java's String.split(pattern, -1);
// anything else is an ECMAScript std::regex, split with the same Java rules.
expr split(expr str, std::string pattern);
expr lower(expr str);
expr upper(expr str);
expr length(expr str);   // int64: characters (UTF-8 code points) of a string
expr size(expr list);    // int64: elements of an array<string>; -1 for null (Spark's legacy sizeOfNull)
// explode(list): a generator, only allowed as a top-level select() expression (at most one per select):
// one output row per element, the other expressions of the select repeated; null or empty lists give no
// row. Its output column is named "col" unless aliased, as in Spark.
expr explode(expr list);

expr operator+(expr a, expr b);
expr operator-(expr a, expr b);
expr operator*(expr a, expr b);
expr operator/(expr a, expr b);
expr operator==(expr a, expr b);
expr operator!=(expr a, expr b);
expr operator<(expr a, expr b);
expr operator<=(expr a, expr b);
expr operator>(expr a, expr b);
expr operator>=(expr a, expr b);
expr operator&&(expr a, expr b);
expr operator||(expr a, expr b);
expr operator!(expr a);
expr operator-(expr a);

// An expression resolved against an input schema: column names turned into indexes, types checked.
// Evaluation is vectorized over a whole batch. Immutable and thread-safe.
class bound_expr {
 public:
  bound_expr() = default;
  type_id type() const { return type_; }
  bool nullable() const { return nullable_; }
  const std::string& name() const { return name_; }
  const expr& source() const { return source_; }
  column evaluate(const batch& input) const;
  // A generator (explode) cannot be evaluated as a column: select() evaluates its list argument with
  // evaluate_generator_input() and emits one row per element.
  bool is_generator() const;
  column evaluate_generator_input(const batch& input) const;

 private:
  friend bound_expr bind(const expr& e, const schema& input);
  friend bound_expr bind_select_item(const expr& e, const schema& input);
  struct impl;
  std::shared_ptr<const impl> impl_;
  type_id type_ = type_id::int64;
  bool nullable_ = true;
  std::string name_;
  expr source_;
};

// Throws flow::error naming the expression and the reason (unknown column with the available ones,
// type mismatch, ...).
bound_expr bind(const expr& e, const schema& input);
// Like bind, but e may be a generator (explode, possibly aliased): what select() binds.
bound_expr bind_select_item(const expr& e, const schema& input);

// The innermost window(...) call in e, or nullptr.
const expr_node* find_window(const expr& e);

// Adds the indexes of the input columns e reads to `read`; false when a name does not resolve to exactly one
// column of input (then binding e reports the error).
bool collect_columns_read(const expr& e, const schema& input, std::set<std::size_t>& read);

}  // namespace flow
