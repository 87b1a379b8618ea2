// Expression trees: construction, Spark-style names, binding (type rules) and vectorized evaluation.
#include "flow/expr.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <regex>

#include "format_detail.hpp"

namespace flow {

// ---------------------------------------------------------------- construction and names

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

std::string literal_name(const value& v) {
  if (is_null(v)) return "NULL";
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return format_double(*d);
  if (auto* t = std::get_if<timestamp>(&v)) return "TIMESTAMP '" + format_timestamp(*t) + "'";
  return to_string(v);
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

std::string node_name(const expr_node& n) {
  switch (n.kind) {
    case expr_kind::column_ref:
    case expr_kind::alias: return n.name;
    case expr_kind::literal: return literal_name(n.literal);
    case expr_kind::window: return "window";
    case expr_kind::logical_not: return "(NOT " + n.children[0].name() + ")";
    case expr_kind::negate: return "(- " + n.children[0].name() + ")";
    case expr_kind::cast: return "CAST(" + n.children[0].name() + " AS " + sql_type_name(n.cast_to) + ")";
    case expr_kind::ne: return "(NOT (" + n.children[0].name() + " = " + n.children[1].name() + "))";
    case expr_kind::split: return "split(" + n.children[0].name() + ", " + literal_name(n.literal) + ", -1)";
    case expr_kind::lower: return "lower(" + n.children[0].name() + ")";
    case expr_kind::upper: return "upper(" + n.children[0].name() + ")";
    case expr_kind::length: return "length(" + n.children[0].name() + ")";
    case expr_kind::size: return "size(" + n.children[0].name() + ")";
    case expr_kind::explode: return "col";  // Spark's name for explode's output column
    default:
      return "(" + n.children[0].name() + " " + std::string(operator_text(n.kind)) + " " +
             n.children[1].name() + ")";
  }
}

// ---------------------------------------------------------------- split patterns and case mapping

bool is_java_whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

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

  void split(std::string_view text, column_builder& out) const {
    out.begin_list();
    switch (kind) {
      case mode::whitespace_runs:
      case mode::space_runs: {
        const bool spaces_only = kind == mode::space_runs;
        auto is_separator = [spaces_only](char c) { return spaces_only ? c == ' ' : is_java_whitespace(c); };
        std::size_t i = 0;
        while (i < text.size()) {
          while (i < text.size() && is_separator(text[i])) ++i;
          const std::size_t start = i;
          while (i < text.size() && !is_separator(text[i])) ++i;
          if (i > start) out.append_list_item(text.substr(start, i - start));
        }
        break;
      }
      case mode::literal: {
        std::size_t pos = 0;
        for (std::size_t hit = text.find(separator); hit != std::string_view::npos; hit = text.find(separator, pos)) {
          out.append_list_item(text.substr(pos, hit - pos));
          pos = hit + separator.size();
        }
        out.append_list_item(text.substr(pos));
        break;
      }
      case mode::regex: {
        std::size_t pos = 0;
        try {
          for (std::cregex_iterator it(text.data(), text.data() + text.size(), pattern), end; it != end; ++it) {
            const auto start = static_cast<std::size_t>(it->position(0));
            const auto length = static_cast<std::size_t>(it->length(0));
            if (start == 0 && length == 0) continue;  // Java: no empty leading element for a zero-width match
            out.append_list_item(text.substr(pos, start - pos));
            pos = start + length;
          }
        } catch (const std::regex_error& e) {
          throw error("split(): the regular expression failed on a " + std::to_string(text.size()) +
                      "-byte string: " + e.what());
        }
        out.append_list_item(text.substr(pos));
        break;
      }
    }
    out.end_list();
  }
};

splitter make_splitter(const std::string& pattern) {
  splitter s;
  if (pattern == "\\s+" || pattern == "\\s") {
    s.kind = splitter::mode::whitespace_runs;
    return s;
  }
  if (pattern == " +") {
    s.kind = splitter::mode::space_runs;
    return s;
  }
  // Java's String.split takes the same shortcut for patterns free of these characters.
  constexpr std::string_view metacharacters = ".$|()[{^?*+\\";
  if (!pattern.empty() && pattern.find_first_of(metacharacters) == std::string::npos) {
    s.separator = pattern;
    return s;
  }
  if (pattern.size() == 2 && pattern[0] == '\\' && !std::isalnum(static_cast<unsigned char>(pattern[1]))) {
    s.separator = pattern.substr(1);
    return s;
  }
  try {
    s.pattern = std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw error("split(): invalid regular expression '" + pattern + "': " + e.what());
  }
  s.kind = splitter::mode::regex;
  return s;
}

// Case mapping of ASCII, Latin-1, Latin Extended-A, basic Greek and Cyrillic (every pair keeps its UTF-8
// length); other characters stay as they are.
char32_t lower_code_point(char32_t c) {
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3AB && c != 0x3A2) ||
      (c >= 0x410 && c <= 0x42F)) {
    return c + 0x20;
  }
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x137 && c != 0x130) || (c >= 0x14A && c <= 0x177)) return c | 1u;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1u) ? c + 1 : c;
  return c;
}

char32_t upper_code_point(char32_t c) {
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7) || (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) ||
      (c >= 0x430 && c <= 0x44F)) {
    return c - 0x20;
  }
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  if (c == 0xFF) return 0x178;
  if ((c >= 0x100 && c <= 0x137 && c != 0x131) || (c >= 0x14A && c <= 0x177)) return c & ~char32_t{1};
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1u) ? c : c - 1;
  return c;
}

void change_case(std::string_view text, bool to_upper, std::string& out) {
  out.clear();
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      const bool upper_letter = c >= 'A' && c <= 'Z', lower_letter = c >= 'a' && c <= 'z';
      out.push_back(static_cast<char>(to_upper && lower_letter ? c - 0x20 : !to_upper && upper_letter ? c + 0x20 : c));
      continue;
    }
    const bool two_bytes = (c & 0xE0) == 0xC0 && i + 1 < text.size() && (text[i + 1] & 0xC0) == 0x80;
    if (!two_bytes) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    const char32_t cp = (char32_t{c & 0x1Fu} << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
    const char32_t mapped = to_upper ? upper_code_point(cp) : lower_code_point(cp);
    if (mapped == cp) {
      out.append(text.substr(i, 2));
    } else {
      out.push_back(static_cast<char>(0xC0 | (mapped >> 6)));
      out.push_back(static_cast<char>(0x80 | (mapped & 0x3F)));
    }
    ++i;
  }
}

std::size_t count_code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
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
  make_splitter(pattern);  // a bad regex fails here, where the user wrote it
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

// ---------------------------------------------------------------- binding

namespace {

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

bool is_null_literal(const bnode& n) { return n.kind == expr_kind::literal && is_null(n.literal); }

bool cast_allowed(type_id from, type_id to) {
  if (from == to) return true;
  if (from == type_id::string_list || to == type_id::string_list) return to == type_id::string;
  if (from == type_id::window || to == type_id::window) return from == type_id::window && to == type_id::string;
  if (to == type_id::timestamp) return from != type_id::boolean;
  if (from == type_id::timestamp) return to != type_id::boolean;
  return true;
}

bnode_ptr make_cast(bnode_ptr child, type_id to) {
  if (child->type == to) return child;
  if (is_null_literal(*child)) {
    auto copy = std::make_shared<bnode>(*child);
    copy->type = to;
    return copy;
  }
  auto n = std::make_shared<bnode>();
  n->kind = expr_kind::cast;
  n->type = to;
  n->nullable = child->nullable || child->type == type_id::string ||
                (child->type == type_id::float64 && to == type_id::timestamp);
  n->text = "CAST(" + child->text + " AS " + sql_type_name(to) + ")";
  n->children.push_back(std::move(child));
  return n;
}

std::string names_list(const schema& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + s[i].name;
  return out.empty() ? "(none)" : out;
}

// Counts the nesting depth of the node being bound; aliases do not count.
class depth_guard {
 public:
  depth_guard(std::size_t& depth, bool counted) : depth_(depth), counted_(counted) { depth_ += counted_; }
  ~depth_guard() { depth_ -= counted_; }
  depth_guard(const depth_guard&) = delete;
  depth_guard& operator=(const depth_guard&) = delete;

 private:
  std::size_t& depth_;
  bool counted_;
};

class binder {
 public:
  binder(const schema& input, std::string root) : input_(input), root_(std::move(root)) {}

  bnode_ptr bind(const expr& e) {
    if (!e.valid()) throw error("cannot bind an empty expression in '" + root_ + "'");
    const expr_node& src = e.node();
    const bool top_level = depth_ == 0;
    depth_guard guard(depth_, src.kind != expr_kind::alias);
    auto n = std::make_shared<bnode>();
    n->kind = src.kind;
    n->text = e.name();
    switch (src.kind) {
      case expr_kind::column_ref: {
        auto idx = input_.find(src.name);
        if (!idx) {
          throw error("cannot resolve column '" + src.name + "' in expression '" + root_ +
                      "'; available columns: " + names_list(input_));
        }
        n->index = *idx;
        n->type = input_[*idx].type;
        n->nullable = input_[*idx].nullable;
        return n;
      }
      case expr_kind::literal: {
        n->literal = src.literal;
        n->type = type_of(src.literal).value_or(type_id::string);
        n->nullable = is_null(src.literal);
        return n;
      }
      case expr_kind::alias: {
        auto child = bind(src.children[0]);
        return child;
      }
      case expr_kind::add:
      case expr_kind::sub:
      case expr_kind::mul:
      case expr_kind::div: return bind_arithmetic(*n, e);
      case expr_kind::eq:
      case expr_kind::ne:
      case expr_kind::lt:
      case expr_kind::le:
      case expr_kind::gt:
      case expr_kind::ge: return bind_comparison(*n, e);
      case expr_kind::logical_and:
      case expr_kind::logical_or:
      case expr_kind::logical_not: {
        for (const auto& c : src.children) {
          auto child = bind(c);
          if (is_null_literal(*child)) child = make_cast(child, type_id::boolean);
          if (child->type != type_id::boolean) {
            throw error("'" + c.name() + "' is " + std::string(type_name(child->type)) + ", but " +
                        (src.kind == expr_kind::logical_not ? std::string("NOT")
                                                             : std::string(operator_text(src.kind))) +
                        " needs boolean operands, in expression '" + root_ + "'");
          }
          n->children.push_back(child);
        }
        n->type = type_id::boolean;
        n->nullable = std::any_of(n->children.begin(), n->children.end(), [](auto& c) { return c->nullable; });
        return n;
      }
      case expr_kind::negate: {
        auto child = bind(src.children[0]);
        if (is_null_literal(*child)) child = make_cast(child, type_id::int64);
        if (!is_numeric(child->type)) {
          throw error("cannot negate '" + src.children[0].name() + "' of type " +
                      std::string(type_name(child->type)) + " in expression '" + root_ +
                      "'; negation needs int64 or float64");
        }
        n->type = child->type;
        n->nullable = child->nullable;
        n->children.push_back(child);
        return n;
      }
      case expr_kind::cast: {
        auto child = bind(src.children[0]);
        if (is_null_literal(*child)) return make_cast(child, src.cast_to);
        if (!cast_allowed(child->type, src.cast_to)) {
          throw error("cannot cast '" + src.children[0].name() + "' from " + std::string(type_name(child->type)) +
                      " to " + std::string(type_name(src.cast_to)) + " in expression '" + root_ + "'");
        }
        return make_cast(child, src.cast_to);
      }
      case expr_kind::window: {
        auto child = bind(src.children[0]);
        if (child->type != type_id::timestamp) {
          throw error("window() needs a timestamp time column, but '" + src.children[0].name() + "' is " +
                      std::string(type_name(child->type)) + " in expression '" + root_ +
                      "'; cast it first, e.g. CAST(" + src.children[0].name() + " AS TIMESTAMP)");
        }
        n->type = type_id::window;
        n->nullable = child->nullable;
        n->length = src.window_length;
        n->slide = src.window_slide;
        n->offset = src.window_offset;
        n->children.push_back(child);
        return n;
      }
      case expr_kind::split: {
        n->children.push_back(bind_string_argument(src.children[0], "split"));
        n->split = std::make_shared<const splitter>(make_splitter(std::get<std::string>(src.literal)));
        n->type = type_id::string_list;
        n->nullable = n->children[0]->nullable;
        return n;
      }
      case expr_kind::lower:
      case expr_kind::upper:
      case expr_kind::length: {
        const char* function = src.kind == expr_kind::lower ? "lower" : src.kind == expr_kind::upper ? "upper" : "length";
        n->children.push_back(bind_string_argument(src.children[0], function));
        n->type = src.kind == expr_kind::length ? type_id::int64 : type_id::string;
        n->nullable = n->children[0]->nullable;
        return n;
      }
      case expr_kind::size: {
        n->children.push_back(bind_list_argument(src.children[0], "size", "size(split(value, \"\\\\s+\"))"));
        n->type = type_id::int64;
        n->nullable = false;  // a null list has size -1
        return n;
      }
      case expr_kind::explode: {
        const std::string call = "explode(" + src.children[0].name() + ")";
        if (!top_level) {
          throw error(call + " is nested in '" + root_ + "': explode is a generator and must be a select "
                      "expression by itself, optionally aliased (Spark: Generators are not supported when it's "
                      "nested in expressions); explode in one select, transform the column in the next");
        }
        n->children.push_back(bind_list_argument(src.children[0], "explode", "explode(split(value, \"\\\\s+\"))"));
        n->type = type_id::string;
        n->nullable = true;
        return n;
      }
    }
    throw error("unsupported expression '" + e.name() + "'");
  }

 private:
  // Spark casts atomic arguments of string functions to string implicitly.
  bnode_ptr bind_string_argument(const expr& argument, std::string_view function) {
    auto child = bind(argument);
    if (child->type == type_id::window || child->type == type_id::string_list) {
      throw error(std::string(function) + "() needs a string, but '" + argument.name() + "' is " +
                  std::string(type_name(child->type)) + ", in expression '" + root_ + "'" +
                  (child->type == type_id::string_list && function == "length" ? "; use size() for arrays" : ""));
    }
    return make_cast(child, type_id::string);
  }

  bnode_ptr bind_list_argument(const expr& argument, std::string_view function, std::string_view example) {
    auto child = bind(argument);
    if (is_null_literal(*child)) return make_cast(child, type_id::string_list);
    if (child->type != type_id::string_list) {
      throw error(std::string(function) + "() needs an array<string>, but '" + argument.name() + "' is " +
                  std::string(type_name(child->type)) + ", in expression '" + root_ + "'; split a string first, e.g. " +
                  std::string(example));
    }
    return child;
  }

  bnode_ptr bind_arithmetic(bnode& n, const expr& e) {
    const auto& src = e.node();
    auto a = bind(src.children[0]);
    auto b = bind(src.children[1]);
    if (is_null_literal(*a) && is_numeric(b->type)) a = make_cast(a, b->type);
    if (is_null_literal(*b) && is_numeric(a->type)) b = make_cast(b, a->type);
    if (is_null_literal(*a) && is_null_literal(*b)) {
      a = make_cast(a, type_id::int64);
      b = make_cast(b, type_id::int64);
    }
    if (!is_numeric(a->type) || !is_numeric(b->type)) {
      throw error("cannot apply '" + std::string(operator_text(src.kind)) + "' to " +
                  std::string(type_name(a->type)) + " and " + std::string(type_name(b->type)) + " in expression '" +
                  e.name() + "'" + (e.name() == root_ ? "" : " (in '" + root_ + "')") +
                  "; arithmetic needs int64 or float64 operands, cast the other side explicitly");
    }
    type_id result = (a->type == type_id::int64 && b->type == type_id::int64 && src.kind != expr_kind::div)
                         ? type_id::int64
                         : type_id::float64;
    n.type = result;
    n.nullable = a->nullable || b->nullable || src.kind == expr_kind::div;
    n.children = {make_cast(a, result), make_cast(b, result)};
    return std::make_shared<bnode>(n);
  }

  bnode_ptr bind_comparison(bnode& n, const expr& e) {
    const auto& src = e.node();
    auto a = bind(src.children[0]);
    auto b = bind(src.children[1]);
    if (is_null_literal(*a)) a = make_cast(a, b->type);
    if (is_null_literal(*b)) b = make_cast(b, a->type);
    if (a->type != b->type) {
      if (is_numeric(a->type) && is_numeric(b->type)) {
        a = make_cast(a, type_id::float64);
        b = make_cast(b, type_id::float64);
      } else if (a->type == type_id::timestamp && b->type == type_id::string) {
        b = make_cast(b, type_id::timestamp);
      } else if (a->type == type_id::string && b->type == type_id::timestamp) {
        a = make_cast(a, type_id::timestamp);
      } else {
        throw error("cannot compare " + std::string(type_name(a->type)) + " and " +
                    std::string(type_name(b->type)) + " in expression '" + e.name() + "'" +
                    (e.name() == root_ ? "" : " (in '" + root_ + "')") +
                    "; cast one side so both have the same type");
      }
    }
    n.type = type_id::boolean;
    n.nullable = a->nullable || b->nullable;
    n.children = {a, b};
    return std::make_shared<bnode>(n);
  }

  const schema& input_;
  std::string root_;
  std::size_t depth_ = 0;
};

// ---------------------------------------------------------------- evaluation helpers

std::shared_ptr<column_data> make_data(type_id t, std::size_t n) {
  auto d = std::make_shared<column_data>();
  d->type = t;
  d->length = n;
  switch (t) {
    case type_id::boolean: d->bools.resize(n); break;
    case type_id::int64:
    case type_id::timestamp: d->ints.resize(n); break;
    case type_id::float64: d->doubles.resize(n); break;
    case type_id::window:
      d->ints.resize(n);
      d->ends.resize(n);
      break;
    case type_id::string: d->offsets.assign(n + 1, 0); break;
    case type_id::string_list:
      d->offsets.assign(1, 0);
      d->list_offsets.assign(n + 1, 0);
      break;
  }
  return d;
}

std::size_t words_for(std::size_t n) { return (n + 63) / 64; }

// The validity of c's visible rows as a bitmap aligned to row 0; empty when none is null.
std::vector<std::uint64_t> validity_of(const column& c) {
  const auto& data = c.data();
  if (!data || data->null_count == 0 || data->validity.empty()) return {};
  const auto& src = data->validity;
  const std::size_t n = c.size(), shift = c.offset() & 63, base = c.offset() >> 6;
  std::vector<std::uint64_t> out(words_for(n));
  for (std::size_t w = 0; w < out.size(); ++w) {
    std::uint64_t bits = src[base + w] >> shift;
    if (shift && base + w + 1 < src.size()) bits |= src[base + w + 1] << (64 - shift);
    out[w] = bits;
  }
  return out;
}

// Installs bits as d's validity (tail masked), dropping it when nothing is null.
void set_validity(column_data& d, std::vector<std::uint64_t> bits) {
  const std::size_t n = d.length;
  if (bits.empty()) {
    d.validity.clear();
    d.null_count = 0;
    return;
  }
  bits.resize(words_for(n));
  if (n & 63) bits.back() &= (std::uint64_t{1} << (n & 63)) - 1;
  std::size_t valid = 0;
  for (auto w : bits) valid += static_cast<std::size_t>(std::popcount(w));
  d.null_count = n - valid;
  if (d.null_count == 0) {
    d.validity.clear();
  } else {
    d.validity = std::move(bits);
  }
}

std::vector<std::uint64_t> and_validity(std::vector<std::uint64_t> a, const std::vector<std::uint64_t>& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] &= b[i];
  return a;
}

std::vector<std::uint64_t> all_valid(std::size_t n) { return std::vector<std::uint64_t>(words_for(n), ~std::uint64_t{0}); }

inline void clear_bit(std::vector<std::uint64_t>& bits, std::size_t i) { bits[i >> 6] &= ~(std::uint64_t{1} << (i & 63)); }
inline bool test_bit(const std::vector<std::uint64_t>& bits, std::size_t i) {
  return bits.empty() || ((bits[i >> 6] >> (i & 63)) & 1u);
}

column finish(std::shared_ptr<column_data> d, std::vector<std::uint64_t> validity) {
  set_validity(*d, std::move(validity));
  return column(std::shared_ptr<const column_data>(std::move(d)));
}

column broadcast(const value& v, type_id type, std::size_t n) {
  if (type == type_id::string || type == type_id::string_list) {
    column_builder builder(type, n);
    for (std::size_t i = 0; i < n; ++i) builder.append_value(v);
    return builder.finish();
  }
  auto d = make_data(type, n);
  if (is_null(v)) return finish(std::move(d), std::vector<std::uint64_t>(words_for(n), 0));
  switch (type) {
    case type_id::boolean: std::fill(d->bools.begin(), d->bools.end(), std::get<bool>(v) ? 1 : 0); break;
    case type_id::int64: std::fill(d->ints.begin(), d->ints.end(), std::get<std::int64_t>(v)); break;
    case type_id::timestamp: std::fill(d->ints.begin(), d->ints.end(), std::get<timestamp>(v).micros); break;
    case type_id::float64: std::fill(d->doubles.begin(), d->doubles.end(), std::get<double>(v)); break;
    case type_id::window: {
      auto w = std::get<window_value>(v);
      std::fill(d->ints.begin(), d->ints.end(), w.start.micros);
      std::fill(d->ends.begin(), d->ends.end(), w.end.micros);
      break;
    }
    case type_id::string:
    case type_id::string_list: break;
  }
  return finish(std::move(d), {});
}

inline std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}
inline std::int64_t wrap_sub(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}
inline std::int64_t wrap_mul(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b));
}

// Java's (long) conversion: truncation, NaN -> 0, saturation at the range ends.
inline std::int64_t double_to_long(double d) {
  if (std::isnan(d)) return 0;
  if (d >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
  if (d <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(d);
}

inline std::int64_t floor_mod(std::int64_t x, std::int64_t m) {
  std::int64_t r = x % m;
  return r < 0 ? r + m : r;
}

column arithmetic(expr_kind kind, const column& a, const column& b) {
  const std::size_t n = a.size();
  auto validity = and_validity(validity_of(a), validity_of(b));
  if (a.type() == type_id::int64) {
    auto d = make_data(type_id::int64, n);
    const auto* x = a.ints();
    const auto* y = b.ints();
    auto* out = d->ints.data();
    switch (kind) {
      case expr_kind::add: for (std::size_t i = 0; i < n; ++i) out[i] = wrap_add(x[i], y[i]); break;
      case expr_kind::sub: for (std::size_t i = 0; i < n; ++i) out[i] = wrap_sub(x[i], y[i]); break;
      case expr_kind::mul: for (std::size_t i = 0; i < n; ++i) out[i] = wrap_mul(x[i], y[i]); break;
      default: throw error("internal: integer division is not bound");
    }
    return finish(std::move(d), std::move(validity));
  }
  auto d = make_data(type_id::float64, n);
  const auto* x = a.doubles();
  const auto* y = b.doubles();
  auto* out = d->doubles.data();
  switch (kind) {
    case expr_kind::add: for (std::size_t i = 0; i < n; ++i) out[i] = x[i] + y[i]; break;
    case expr_kind::sub: for (std::size_t i = 0; i < n; ++i) out[i] = x[i] - y[i]; break;
    case expr_kind::mul: for (std::size_t i = 0; i < n; ++i) out[i] = x[i] * y[i]; break;
    case expr_kind::div: {
      std::size_t zeros = 0;
      for (std::size_t i = 0; i < n; ++i) {
        out[i] = x[i] / y[i];
        zeros += y[i] == 0.0;
      }
      if (zeros) {  // Spark (non-ANSI): division by zero is null
        if (validity.empty()) validity = all_valid(n);
        for (std::size_t i = 0; i < n; ++i) {
          if (y[i] == 0.0) clear_bit(validity, i);
        }
      }
      break;
    }
    default: throw error("internal: bad arithmetic kind");
  }
  return finish(std::move(d), std::move(validity));
}

template <class GetA, class GetB>
void compare_loop(expr_kind kind, std::size_t n, GetA get_a, GetB get_b, std::uint8_t* out) {
  switch (kind) {
    case expr_kind::eq: for (std::size_t i = 0; i < n; ++i) out[i] = get_a(i) == get_b(i); break;
    case expr_kind::ne: for (std::size_t i = 0; i < n; ++i) out[i] = get_a(i) != get_b(i); break;
    case expr_kind::lt: for (std::size_t i = 0; i < n; ++i) out[i] = get_a(i) < get_b(i); break;
    case expr_kind::le: for (std::size_t i = 0; i < n; ++i) out[i] = get_a(i) <= get_b(i); break;
    case expr_kind::gt: for (std::size_t i = 0; i < n; ++i) out[i] = get_a(i) > get_b(i); break;
    case expr_kind::ge: for (std::size_t i = 0; i < n; ++i) out[i] = get_a(i) >= get_b(i); break;
    default: throw error("internal: bad comparison kind");
  }
}

column compare(expr_kind kind, const column& a, const column& b) {
  const std::size_t n = a.size();
  auto d = make_data(type_id::boolean, n);
  auto* out = d->bools.data();
  switch (a.type()) {
    case type_id::boolean: {
      const auto *x = a.bools(), *y = b.bools();
      compare_loop(kind, n, [x](std::size_t i) { return x[i]; }, [y](std::size_t i) { return y[i]; }, out);
      break;
    }
    case type_id::int64:
    case type_id::timestamp: {
      const auto *x = a.ints(), *y = b.ints();
      compare_loop(kind, n, [x](std::size_t i) { return x[i]; }, [y](std::size_t i) { return y[i]; }, out);
      break;
    }
    case type_id::float64: {
      const auto *x = a.doubles(), *y = b.doubles();
      compare_loop(kind, n, [x](std::size_t i) { return x[i]; }, [y](std::size_t i) { return y[i]; }, out);
      break;
    }
    case type_id::string:
      compare_loop(kind, n, [&a](std::size_t i) { return a.str(i); }, [&b](std::size_t i) { return b.str(i); }, out);
      break;
    case type_id::window:
      compare_loop(kind, n, [&a](std::size_t i) { return a.window(i); }, [&b](std::size_t i) { return b.window(i); },
                   out);
      break;
    case type_id::string_list: {
      auto items = [](const column& c, std::size_t i) {
        std::vector<std::string_view> out(c.list_size(i));
        for (std::size_t j = 0; j < out.size(); ++j) out[j] = c.list_item(i, j);
        return out;
      };
      compare_loop(kind, n, [&](std::size_t i) { return items(a, i); }, [&](std::size_t i) { return items(b, i); }, out);
      break;
    }
  }
  return finish(std::move(d), and_validity(validity_of(a), validity_of(b)));
}

// SQL three-valued AND / OR: a definite false (AND) or true (OR) on either side decides.
column logical(expr_kind kind, const column& a, const column& b) {
  const std::size_t n = a.size();
  auto d = make_data(type_id::boolean, n);
  auto* out = d->bools.data();
  const auto *x = a.bools(), *y = b.bools();
  auto va = validity_of(a), vb = validity_of(b);
  const bool is_and = kind == expr_kind::logical_and;
  if (va.empty() && vb.empty()) {
    if (is_and) {
      for (std::size_t i = 0; i < n; ++i) out[i] = x[i] & y[i];
    } else {
      for (std::size_t i = 0; i < n; ++i) out[i] = x[i] | y[i];
    }
    return finish(std::move(d), {});
  }
  auto validity = all_valid(n);
  for (std::size_t i = 0; i < n; ++i) {
    const bool a_valid = test_bit(va, i), b_valid = test_bit(vb, i);
    const bool a_val = x[i] != 0, b_val = y[i] != 0;
    if (is_and) {
      if ((a_valid && !a_val) || (b_valid && !b_val)) {
        out[i] = 0;
      } else if (a_valid && b_valid) {
        out[i] = 1;
      } else {
        out[i] = 0;
        clear_bit(validity, i);
      }
    } else {
      if ((a_valid && a_val) || (b_valid && b_val)) {
        out[i] = 1;
      } else if (a_valid && b_valid) {
        out[i] = 0;
      } else {
        out[i] = 0;
        clear_bit(validity, i);
      }
    }
  }
  return finish(std::move(d), std::move(validity));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Spark's cast to double: Java's Double.parseDouble (an optional sign, a decimal number with an optional
// exponent and an optional type suffix d, D, f or F: "1d" is 1.0; NaN; Infinity) and Spark's special
// words inf, infinity and nan in any case. Hexadecimal numbers are not read.
std::optional<double> parse_double(std::string_view s) {
  s = trim(s);
  const bool negative = !s.empty() && s.front() == '-';
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  if (!is_digit(s.front()) && s.front() != '.') {
    std::string word(s);
    std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
    if (word == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (word != "inf" && word != "infinity") return std::nullopt;
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  const bool suffixed = s.size() >= 2 && std::string_view("dDfF").find(s.back()) != std::string_view::npos &&
                        (is_digit(s[s.size() - 2]) || s[s.size() - 2] == '.');
  if (suffixed) s.remove_suffix(1);
  auto v = detail::decimal_to_double(s);
  if (!v) return std::nullopt;
  return negative ? -*v : *v;
}

// Spark's (non-ANSI) cast to long: an optional sign, digits and an optional fraction of digits, which is
// truncated ("1.9" is 1). Anything else ("1e3", "NaN") and values out of range are null.
std::optional<std::int64_t> parse_long(std::string_view s) {
  s = trim(s);
  const bool negative = !s.empty() && s.front() == '-';
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  const std::size_t point = s.find('.');
  const std::string_view integral = s.substr(0, point);
  const std::string_view fraction = point == std::string_view::npos ? std::string_view{} : s.substr(point + 1);
  auto all_digits = [](std::string_view text) { return std::all_of(text.begin(), text.end(), is_digit); };
  if (!all_digits(integral) || !all_digits(fraction)) return std::nullopt;
  std::uint64_t magnitude = 0;
  if (!integral.empty()) {
    auto [ptr, ec] = std::from_chars(integral.data(), integral.data() + integral.size(), magnitude);
    if (ec != std::errc()) return std::nullopt;
  }
  const std::uint64_t limit = std::uint64_t{std::numeric_limits<std::int64_t>::max()} + (negative ? 1 : 0);
  if (magnitude > limit) return std::nullopt;
  return negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
}

std::optional<bool> parse_bool(std::string_view s) {
  s = trim(s);
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "true" || lower == "t" || lower == "yes" || lower == "y" || lower == "1") return true;
  if (lower == "false" || lower == "f" || lower == "no" || lower == "n" || lower == "0") return false;
  return std::nullopt;
}

column cast_to_string(const column& c) {
  const std::size_t n = c.size();
  column_builder builder(type_id::string, n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!c.valid(i)) {
      builder.append_null();
      continue;
    }
    switch (c.type()) {
      case type_id::boolean: builder.append_string(c.bools()[i] ? "true" : "false"); break;
      case type_id::int64: builder.append_string(std::to_string(c.ints()[i])); break;
      case type_id::float64: builder.append_string(format_double(c.doubles()[i])); break;
      case type_id::timestamp: builder.append_string(format_timestamp(timestamp{c.ints()[i]})); break;
      case type_id::window: builder.append_string(to_string(value{c.window(i)})); break;
      case type_id::string: builder.append_string(c.str(i)); break;
      case type_id::string_list: builder.append_string(to_string(c.at(i))); break;
    }
  }
  return builder.finish();
}

column cast_from_string(const column& c, type_id to) {
  const std::size_t n = c.size();
  auto d = make_data(to, n);
  auto validity = validity_of(c);
  if (validity.empty()) validity = all_valid(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!test_bit(validity, i)) continue;
    const auto text = c.str(i);
    bool ok = false;
    switch (to) {
      case type_id::boolean:
        if (auto v = parse_bool(text)) d->bools[i] = *v, ok = true;
        break;
      case type_id::int64:
        if (auto v = parse_long(text)) d->ints[i] = *v, ok = true;
        break;
      case type_id::float64:
        if (auto v = parse_double(text)) d->doubles[i] = *v, ok = true;
        break;
      case type_id::timestamp:
        if (auto v = parse_timestamp(text)) d->ints[i] = v->micros, ok = true;
        break;
      default: throw error("internal: bad cast from string");
    }
    if (!ok) clear_bit(validity, i);
  }
  return finish(std::move(d), std::move(validity));
}

column cast_column(const column& c, type_id to) {
  const type_id from = c.type();
  if (from == to) return c;
  if (to == type_id::string) return cast_to_string(c);
  if (from == type_id::string) return cast_from_string(c, to);
  const std::size_t n = c.size();
  auto d = make_data(to, n);
  auto validity = validity_of(c);
  auto convert = [n](auto get, auto* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = get(i);
  };
  const auto* b = c.bools();
  const auto* ints = c.ints();
  const auto* dbl = c.doubles();
  switch (to) {
    case type_id::boolean:
      if (from == type_id::int64) convert([ints](std::size_t i) { return ints[i] != 0; }, d->bools.data());
      else convert([dbl](std::size_t i) { return dbl[i] != 0.0; }, d->bools.data());
      break;
    case type_id::int64:
      if (from == type_id::boolean) convert([b](std::size_t i) { return std::int64_t{b[i]}; }, d->ints.data());
      else if (from == type_id::float64) convert([dbl](std::size_t i) { return double_to_long(dbl[i]); }, d->ints.data());
      else {  // timestamp -> seconds, floored like Spark
        convert([ints](std::size_t i) { return ints[i] / 1000000 - (ints[i] % 1000000 < 0); }, d->ints.data());
      }
      break;
    case type_id::float64:
      if (from == type_id::boolean) convert([b](std::size_t i) { return b[i] ? 1.0 : 0.0; }, d->doubles.data());
      else if (from == type_id::int64) convert([ints](std::size_t i) { return static_cast<double>(ints[i]); }, d->doubles.data());
      else convert([ints](std::size_t i) { return static_cast<double>(ints[i]) / 1e6; }, d->doubles.data());
      break;
    case type_id::timestamp:
      if (from == type_id::int64) {
        convert([ints](std::size_t i) { return wrap_mul(ints[i], 1000000); }, d->ints.data());
      } else {
        if (validity.empty()) validity = all_valid(n);
        for (std::size_t i = 0; i < n; ++i) {
          const double micros = dbl[i] * 1e6;
          if (std::isfinite(micros)) {
            d->ints[i] = double_to_long(micros);
          } else {
            clear_bit(validity, i);
          }
        }
      }
      break;
    default: throw error("internal: unsupported cast");
  }
  return finish(std::move(d), std::move(validity));
}

column tumbling_windows(const column& ts, std::int64_t length, std::int64_t slide, std::int64_t offset) {
  const std::size_t n = ts.size();
  auto d = make_data(type_id::window, n);
  const auto* t = ts.ints();
  auto* start = d->ints.data();
  auto* end = d->ends.data();
  for (std::size_t i = 0; i < n; ++i) {
    start[i] = t[i] - floor_mod(wrap_sub(t[i], offset), slide);
    end[i] = start[i] + length;
  }
  return finish(std::move(d), validity_of(ts));
}

column eval(const bnode& n, const batch& input) {
  switch (n.kind) {
    case expr_kind::column_ref: {
      if (n.index >= input.num_columns() || input.col(n.index).type() != n.type) {
        throw error("expression '" + n.text + "' was bound to a different schema than the batch it is evaluated on (" +
                    input.schema().to_string() + "); rebind it against this schema");
      }
      return input.col(n.index);
    }
    case expr_kind::literal: return broadcast(n.literal, n.type, input.num_rows());
    case expr_kind::alias: return eval(*n.children[0], input);
    case expr_kind::add:
    case expr_kind::sub:
    case expr_kind::mul:
    case expr_kind::div: return arithmetic(n.kind, eval(*n.children[0], input), eval(*n.children[1], input));
    case expr_kind::eq:
    case expr_kind::ne:
    case expr_kind::lt:
    case expr_kind::le:
    case expr_kind::gt:
    case expr_kind::ge: return compare(n.kind, eval(*n.children[0], input), eval(*n.children[1], input));
    case expr_kind::logical_and:
    case expr_kind::logical_or: return logical(n.kind, eval(*n.children[0], input), eval(*n.children[1], input));
    case expr_kind::logical_not: {
      auto a = eval(*n.children[0], input);
      auto d = make_data(type_id::boolean, a.size());
      const auto* x = a.bools();
      for (std::size_t i = 0; i < a.size(); ++i) d->bools[i] = !x[i];
      return finish(std::move(d), validity_of(a));
    }
    case expr_kind::negate: {
      auto a = eval(*n.children[0], input);
      auto d = make_data(a.type(), a.size());
      if (a.type() == type_id::int64) {
        for (std::size_t i = 0; i < a.size(); ++i) d->ints[i] = wrap_sub(0, a.ints()[i]);
      } else {
        for (std::size_t i = 0; i < a.size(); ++i) d->doubles[i] = -a.doubles()[i];
      }
      return finish(std::move(d), validity_of(a));
    }
    case expr_kind::cast: return cast_column(eval(*n.children[0], input), n.type);
    case expr_kind::window: {
      if (n.slide != n.length) {
        throw error("'" + n.text + "' is a sliding window (slide shorter than the length): a row belongs to several "
                    "windows, so it can only be used as a group_by key, not evaluated as a column");
      }
      return tumbling_windows(eval(*n.children[0], input), n.length, n.slide, n.offset);
    }
    case expr_kind::split: {
      const column text = eval(*n.children[0], input);
      column_builder out(type_id::string_list, text.size());
      for (std::size_t i = 0; i < text.size(); ++i) {
        if (text.is_null(i)) {
          out.append_null();
        } else {
          n.split->split(text.str(i), out);
        }
      }
      return out.finish();
    }
    case expr_kind::lower:
    case expr_kind::upper: {
      const column text = eval(*n.children[0], input);
      column_builder out(type_id::string, text.size());
      std::string changed;
      for (std::size_t i = 0; i < text.size(); ++i) {
        if (text.is_null(i)) {
          out.append_null();
        } else {
          change_case(text.str(i), n.kind == expr_kind::upper, changed);
          out.append_string(changed);
        }
      }
      return out.finish();
    }
    case expr_kind::length: {
      const column text = eval(*n.children[0], input);
      auto d = make_data(type_id::int64, text.size());
      for (std::size_t i = 0; i < text.size(); ++i) {
        d->ints[i] = text.is_null(i) ? 0 : static_cast<std::int64_t>(count_code_points(text.str(i)));
      }
      return finish(std::move(d), validity_of(text));
    }
    case expr_kind::size: {
      const column lists = eval(*n.children[0], input);
      auto d = make_data(type_id::int64, lists.size());
      for (std::size_t i = 0; i < lists.size(); ++i) {
        d->ints[i] = lists.is_null(i) ? -1 : static_cast<std::int64_t>(lists.list_size(i));
      }
      return finish(std::move(d), {});
    }
    case expr_kind::explode:
      throw error("'" + n.text + "' is a generator (explode): only select() can evaluate it, one row per element");
  }
  throw error("internal: unknown expression kind in '" + n.text + "'");
}

}  // namespace

struct bound_expr::impl {
  bnode_ptr root;
};

bound_expr bind_select_item(const expr& e, const schema& input) {
  if (!e.valid()) throw error("cannot bind an empty expression");
  binder b(input, e.name());
  auto root = b.bind(e);
  bound_expr result;
  result.impl_ = std::make_shared<const bound_expr::impl>(bound_expr::impl{root});
  result.type_ = root->type;
  result.nullable_ = root->nullable;
  result.name_ = e.name();
  result.source_ = e;
  return result;
}

bound_expr bind(const expr& e, const schema& input) {
  auto result = bind_select_item(e, input);
  if (result.is_generator()) {
    throw error("'" + e.name() + "' is explode(" + result.impl_->root->children[0]->text +
                "), a generator: generators are only supported in select(), not in where, group_by or aggregates "
                "(Spark: Generators are not supported outside the SELECT clause); explode in a select first");
  }
  return result;
}

bool bound_expr::is_generator() const { return impl_ && impl_->root->kind == expr_kind::explode; }

column bound_expr::evaluate_generator_input(const batch& input) const {
  if (!is_generator()) throw error("evaluate_generator_input(): '" + name_ + "' is not a generator (explode)");
  auto out = eval(*impl_->root->children[0], input);
  if (out.size() != input.num_rows()) throw error("internal: '" + name_ + "' produced a column of the wrong length");
  return out;
}

column bound_expr::evaluate(const batch& input) const {
  if (!impl_) throw error("evaluate(): the expression is not bound; call bind(expr, schema) first");
  auto out = eval(*impl_->root, input);
  if (out.size() != input.num_rows()) throw error("internal: '" + name_ + "' produced a column of the wrong length");
  return out;
}

}  // namespace flow
