// Vectorized evaluation of bound expressions: a column at a time, nulls as validity bitmaps, Spark's
// (non-ANSI) semantics for overflow, division by zero and three-valued logic.
#include <algorithm>
#include <bit>
#include <cstring>

#include "expr_detail.hpp"

namespace flow::detail {

namespace {

std::size_t words_for(std::size_t n) { return (n + 63) / 64; }

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

}  // namespace

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

std::vector<std::uint64_t> all_valid(std::size_t n) { return std::vector<std::uint64_t>(words_for(n), ~std::uint64_t{0}); }

column finish(std::shared_ptr<column_data> d, std::vector<std::uint64_t> validity) {
  set_validity(*d, std::move(validity));
  return column(std::shared_ptr<const column_data>(std::move(d)));
}

namespace {

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

// (In)equality of a string column's rows with one value: out[i] = (row i == value) == equal. A value of
// Length (1 to 8) bytes is compared with a length known to the compiler, which inlines the comparison, and
// without a branch on the row's length (rows of random lengths mispredict it): Length bytes from the row's
// start are read whatever its length wherever the characters go on that far. Length 0: any length, memcmp
// where the lengths agree.
template <std::size_t Length>
void equal_to_value(const std::uint32_t* offsets, const char* chars, std::size_t chars_size, std::string_view value,
                    std::size_t n, bool equal, std::uint8_t* out) {
  const std::size_t length = Length != 0 ? Length : value.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t start = offsets[i];
    bool same;
    if (Length != 0 && start + Length <= chars_size)
      same = (offsets[i + 1] - start == Length) & (std::memcmp(chars + start, value.data(), Length) == 0);
    else
      same = offsets[i + 1] - start == length && std::memcmp(chars + start, value.data(), length) == 0;
    out[i] = same == equal;
  }
}

// Compares row i of a with row i of b, or with b's only row when b_is_literal (a non-null literal's value,
// not broadcast to every row).
column compare(expr_kind kind, const column& a, const column& b, bool b_is_literal = false) {
  const std::size_t n = a.size();
  auto d = make_data(type_id::boolean, n);
  auto* out = d->bools.data();
  const std::size_t b_step = b_is_literal ? 0 : 1;
  switch (a.type()) {
    case type_id::boolean: {
      const auto *x = a.bools(), *y = b.bools();
      compare_loop(kind, n, [x](std::size_t i) { return x[i]; }, [y, b_step](std::size_t i) { return y[i * b_step]; }, out);
      break;
    }
    case type_id::int64:
    case type_id::timestamp: {
      const auto *x = a.ints(), *y = b.ints();
      compare_loop(kind, n, [x](std::size_t i) { return x[i]; }, [y, b_step](std::size_t i) { return y[i * b_step]; }, out);
      break;
    }
    case type_id::float64: {
      const auto *x = a.doubles(), *y = b.doubles();
      compare_loop(kind, n, [x](std::size_t i) { return x[i]; }, [y, b_step](std::size_t i) { return y[i * b_step]; }, out);
      break;
    }
    case type_id::string: {
      const std::string_view literal = b_is_literal ? b.str(0) : std::string_view{};
      if (b_is_literal && (kind == expr_kind::eq || kind == expr_kind::ne)) {
        const std::uint32_t* offsets = a.data()->offsets.data() + a.offset();
        const char* chars = a.data()->chars.data();
        const std::size_t chars_size = a.data()->chars.size();
        const bool equal = kind == expr_kind::eq;
        switch (literal.size()) {
          case 1: equal_to_value<1>(offsets, chars, chars_size, literal, n, equal, out); break;
          case 2: equal_to_value<2>(offsets, chars, chars_size, literal, n, equal, out); break;
          case 3: equal_to_value<3>(offsets, chars, chars_size, literal, n, equal, out); break;
          case 4: equal_to_value<4>(offsets, chars, chars_size, literal, n, equal, out); break;
          case 5: equal_to_value<5>(offsets, chars, chars_size, literal, n, equal, out); break;
          case 6: equal_to_value<6>(offsets, chars, chars_size, literal, n, equal, out); break;
          case 7: equal_to_value<7>(offsets, chars, chars_size, literal, n, equal, out); break;
          case 8: equal_to_value<8>(offsets, chars, chars_size, literal, n, equal, out); break;
          default: equal_to_value<0>(offsets, chars, chars_size, literal, n, equal, out);
        }
      } else if (b_is_literal)
        compare_loop(kind, n, [&a](std::size_t i) { return a.str(i); }, [literal](std::size_t) { return literal; }, out);
      else
        compare_loop(kind, n, [&a](std::size_t i) { return a.str(i); }, [&b](std::size_t i) { return b.str(i); }, out);
      break;
    }
    case type_id::window:
      compare_loop(kind, n, [&a](std::size_t i) { return a.window(i); },
                   [&b, b_step](std::size_t i) { return b.window(i * b_step); }, out);
      break;
    case type_id::string_list: {
      auto items = [](const column& c, std::size_t i) {
        std::vector<std::string_view> out(c.list_size(i));
        for (std::size_t j = 0; j < out.size(); ++j) out[j] = c.list_item(i, j);
        return out;
      };
      compare_loop(kind, n, [&](std::size_t i) { return items(a, i); }, [&](std::size_t i) { return items(b, i * b_step); },
                   out);
      break;
    }
  }
  return finish(std::move(d), b_is_literal ? validity_of(a) : and_validity(validity_of(a), validity_of(b)));
}

// The comparison with its operands swapped: a < b is b > a.
expr_kind mirrored(expr_kind kind) {
  switch (kind) {
    case expr_kind::lt: return expr_kind::gt;
    case expr_kind::le: return expr_kind::ge;
    case expr_kind::gt: return expr_kind::lt;
    case expr_kind::ge: return expr_kind::le;
    default: return kind;  // eq, ne
  }
}

bool is_non_null_literal(const bnode& n) { return n.kind == expr_kind::literal && !is_null(n.literal); }

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

column tumbling_windows(const column& ts, std::int64_t length, std::int64_t slide, std::int64_t offset) {
  const std::size_t n = ts.size();
  auto d = make_data(type_id::window, n);
  const auto* t = ts.ints();
  auto* start = d->ints.data();
  auto* end = d->ends.data();
  for (std::size_t i = 0; i < n; ++i) {
    start[i] = tumbling_window_start(t[i], slide, offset);
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
    case expr_kind::ge: {
      const bnode &left = *n.children[0], &right = *n.children[1];
      if (is_non_null_literal(right) && !is_non_null_literal(left))
        return compare(n.kind, eval(left, input), broadcast(right.literal, right.type, 1), true);
      if (is_non_null_literal(left) && !is_non_null_literal(right))
        return compare(mirrored(n.kind), eval(right, input), broadcast(left.literal, left.type, 1), true);
      return compare(n.kind, eval(left, input), eval(right, input));
    }
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

}  // namespace flow::detail

namespace flow {

column bound_expr::evaluate_generator_input(const batch& input) const {
  if (!is_generator()) throw error("evaluate_generator_input(): '" + name_ + "' is not a generator (explode)");
  auto out = detail::eval(*impl_->root->children[0], input);
  if (out.size() != input.num_rows()) throw error("internal: '" + name_ + "' produced a column of the wrong length");
  return out;
}

column bound_expr::evaluate(const batch& input) const {
  if (!impl_) throw error("evaluate(): the expression is not bound; call bind(expr, schema) first");
  auto out = detail::eval(*impl_->root, input);
  if (out.size() != input.num_rows()) throw error("internal: '" + name_ + "' produced a column of the wrong length");
  return out;
}

}  // namespace flow
