// Expression trees: construction and Spark-style names. Binding is in expr_bind.cpp, evaluation in
// expr_kernels.cpp.
#include "flow/expr.hpp"

#include <algorithm>

#include "expr_detail.hpp"

namespace flow {

namespace detail {

std::string sql_type_name(type_id t) {
  switch (t) {
    case type_id::boolean: return "BOOLEAN";
    case type_id::int64: return "BIGINT";
    case type_id::float64: return "DOUBLE";
    case type_id::string: return "STRING";
    case type_id::timestamp: return "TIMESTAMP";
    case type_id::window: return "STRUCT<start: TIMESTAMP, end: TIMESTAMP>";
    case type_id::string_list: return "ARRAY<STRING>";
  }
  return "?";
}

std::string_view operator_text(expr_kind k) {
  switch (k) {
    case expr_kind::add: return "+";
    case expr_kind::sub: return "-";
    case expr_kind::mul: return "*";
    case expr_kind::div: return "/";
    case expr_kind::eq: return "=";
    case expr_kind::ne: return "!=";
    case expr_kind::lt: return "<";
    case expr_kind::le: return "<=";
    case expr_kind::gt: return ">";
    case expr_kind::ge: return ">=";
    case expr_kind::logical_and: return "AND";
    case expr_kind::logical_or: return "OR";
    default: return "?";
  }
}

}  // namespace detail

namespace {

expr make_node(expr_node node) { return expr(std::make_shared<const expr_node>(std::move(node))); }

expr binary(expr_kind kind, expr a, expr b) {
  if (!a.valid() || !b.valid()) throw error("cannot build an expression from an empty expression");
  expr_node node{kind, {std::move(a), std::move(b)}, {}, {}, {}, 0, 0, 0};
  return make_node(std::move(node));
}

expr unary(expr_kind kind, expr a) {
  if (!a.valid()) throw error("cannot build an expression from an empty expression");
  expr_node node{kind, {std::move(a)}, {}, {}, {}, 0, 0, 0};
  return make_node(std::move(node));
}

std::string literal_name(const value& v) {
  if (is_null(v)) return "NULL";
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return format_double(*d);
  if (auto* t = std::get_if<timestamp>(&v)) return "TIMESTAMP '" + format_timestamp(*t) + "'";
  return to_string(v);
}

std::string node_name(const expr_node& n) {
  switch (n.kind) {
    case expr_kind::column_ref:
    case expr_kind::alias: return n.name;
    case expr_kind::literal: return literal_name(n.literal);
    case expr_kind::window: return n.window_slide == 0 ? "session_window" : "window";  // flow/session_window.hpp
    case expr_kind::logical_not: return "(NOT " + n.children[0].name() + ")";
    case expr_kind::negate: return "(- " + n.children[0].name() + ")";
    case expr_kind::cast: return "CAST(" + n.children[0].name() + " AS " + detail::sql_type_name(n.cast_to) + ")";
    case expr_kind::ne: return "(NOT (" + n.children[0].name() + " = " + n.children[1].name() + "))";
    case expr_kind::split: return "split(" + n.children[0].name() + ", " + literal_name(n.literal) + ", -1)";
    case expr_kind::lower: return "lower(" + n.children[0].name() + ")";
    case expr_kind::upper: return "upper(" + n.children[0].name() + ")";
    case expr_kind::length: return "length(" + n.children[0].name() + ")";
    case expr_kind::size: return "size(" + n.children[0].name() + ")";
    case expr_kind::explode: return "col";  // Spark's name for explode's output column
    default:  // '(' rather than "(": GCC 12 reports a false -Wrestrict for "(" + std::string&& here
      return '(' + n.children[0].name() + " " + std::string(detail::operator_text(n.kind)) + " " +
             n.children[1].name() + ")";
  }
}

}  // namespace

std::string expr::name() const { return node_ ? node_name(*node_) : std::string("<empty>"); }

expr expr::as(std::string name) const {
  if (!valid()) throw error("cannot alias an empty expression as '" + name + "'");
  expr_node node{expr_kind::alias, {*this}, std::move(name), {}, {}, 0, 0, 0};
  return make_node(std::move(node));
}

expr expr::cast(type_id to) const {
  if (!valid()) throw error("cannot cast an empty expression");
  expr_node node{expr_kind::cast, {*this}, {}, {}, to, 0, 0, 0};
  return make_node(std::move(node));
}

expr expr::cast(std::string_view type_name) const {
  auto t = parse_type_name(type_name);
  if (!t) {
    throw error("unknown type '" + std::string(type_name) + "' in cast of '" + name() +
                "'; use boolean, long (bigint), double, string or timestamp");
  }
  return cast(*t);
}

expr col(std::string name) {
  if (name.empty()) throw error("col(): the column name is empty");
  expr_node node{expr_kind::column_ref, {}, std::move(name), {}, {}, 0, 0, 0};
  return make_node(std::move(node));
}

expr lit(value v) {
  expr_node node{expr_kind::literal, {}, {}, std::move(v), {}, 0, 0, 0};
  return make_node(std::move(node));
}

expr window(expr time_column, std::string_view length, std::string_view slide, std::string_view start_offset) {
  if (!time_column.valid()) throw error("window(): the time column expression is empty");
  const std::int64_t length_us = parse_duration_micros(length);
  const std::int64_t slide_us = slide.empty() ? length_us : parse_duration_micros(slide);
  const std::int64_t offset_us = start_offset.empty() ? 0 : parse_duration_micros(start_offset);
  if (length_us <= 0) throw error("window(): the window length '" + std::string(length) + "' must be positive");
  if (slide_us <= 0) throw error("window(): the slide '" + std::string(slide) + "' must be positive");
  if (slide_us > length_us) {
    throw error("window(): the slide '" + std::string(slide) + "' must be less than or equal to the window length '" +
                std::string(length) + "'");
  }
  if (offset_us <= -slide_us || offset_us >= slide_us) {
    throw error("window(): the start offset '" + std::string(start_offset) +
                "' must be smaller in magnitude than the slide");
  }
  expr_node node{expr_kind::window, {std::move(time_column)}, {}, {}, {}, length_us, slide_us, offset_us};
  return make_node(std::move(node));
}

expr operator+(expr a, expr b) { return binary(expr_kind::add, std::move(a), std::move(b)); }
expr operator-(expr a, expr b) { return binary(expr_kind::sub, std::move(a), std::move(b)); }
expr operator*(expr a, expr b) { return binary(expr_kind::mul, std::move(a), std::move(b)); }
expr operator/(expr a, expr b) { return binary(expr_kind::div, std::move(a), std::move(b)); }
expr operator==(expr a, expr b) { return binary(expr_kind::eq, std::move(a), std::move(b)); }
expr operator!=(expr a, expr b) { return binary(expr_kind::ne, std::move(a), std::move(b)); }
expr operator<(expr a, expr b) { return binary(expr_kind::lt, std::move(a), std::move(b)); }
expr operator<=(expr a, expr b) { return binary(expr_kind::le, std::move(a), std::move(b)); }
expr operator>(expr a, expr b) { return binary(expr_kind::gt, std::move(a), std::move(b)); }
expr operator>=(expr a, expr b) { return binary(expr_kind::ge, std::move(a), std::move(b)); }
expr operator&&(expr a, expr b) { return binary(expr_kind::logical_and, std::move(a), std::move(b)); }
expr operator||(expr a, expr b) { return binary(expr_kind::logical_or, std::move(a), std::move(b)); }
expr operator!(expr a) { return unary(expr_kind::logical_not, std::move(a)); }
expr operator-(expr a) { return unary(expr_kind::negate, std::move(a)); }

expr split(expr str, std::string pattern) {
  if (!str.valid()) throw error("split(): the string expression is empty");
  detail::make_splitter(pattern);  // a bad regex fails here, where the user wrote it
  expr_node node{expr_kind::split, {std::move(str)}, {}, value{std::move(pattern)}, {}, 0, 0, 0};
  return make_node(std::move(node));
}

expr lower(expr str) { return unary(expr_kind::lower, std::move(str)); }
expr upper(expr str) { return unary(expr_kind::upper, std::move(str)); }
expr length(expr str) { return unary(expr_kind::length, std::move(str)); }
expr size(expr list) { return unary(expr_kind::size, std::move(list)); }
expr explode(expr list) { return unary(expr_kind::explode, std::move(list)); }

const expr_node* find_window(const expr& e) {
  if (!e.valid()) return nullptr;
  for (const auto& child : e.node().children) {
    if (const auto* found = find_window(child)) return found;
  }
  return e.node().kind == expr_kind::window ? &e.node() : nullptr;
}

bool collect_columns_read(const expr& e, const schema& input, std::set<std::size_t>& read) {
  const expr_node& n = e.node();
  if (n.kind == expr_kind::column_ref) {
    auto index = input.find(n.name);
    if (!index) return false;
    for (std::size_t i = 0; i < input.size(); ++i)
      if (i != *index && input.find(input[i].name) == index) return false;  // another field of that name
    read.insert(*index);
    return true;
  }
  return std::all_of(n.children.begin(), n.children.end(),
                     [&](const expr& child) { return collect_columns_read(child, input, read); });
}

}  // namespace flow
