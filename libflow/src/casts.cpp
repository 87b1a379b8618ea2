// Casts between column types with Spark's (non-ANSI) rules: text is parsed like Spark parses it, and what
// does not parse (or does not fit) becomes null.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include "expr_detail.hpp"
#include "format_detail.hpp"

namespace flow::detail {

namespace {

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

}  // namespace

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

}  // namespace flow::detail
