// Binding: an expression resolved against a schema (column names to indexes) and type-checked with
// Spark's rules (implicit casts, null literals typed by their context), as a tree of bnodes.
#include <algorithm>

#include "expr_detail.hpp"

namespace flow {

namespace detail {

namespace {

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
        if (src.window_slide == 0)  // a session window (flow/session_window.hpp)
          throw error("session_window() is only allowed as a group_by key, not in expression '" + root_ + "'");
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

}  // namespace

}  // namespace detail

bound_expr bind_select_item(const expr& e, const schema& input) {
  if (!e.valid()) throw error("cannot bind an empty expression");
  detail::binder b(input, e.name());
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

}  // namespace flow
