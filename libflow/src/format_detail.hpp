// Helpers shared by the format decoders (csv.cpp, json_lines.cpp, text_lines.cpp, formats.cpp) and, for
// the text-to-number conversions, casts.cpp. Private.
#pragma once

#include <charconv>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flow/formats.hpp"

namespace flow::detail {

std::shared_ptr<const decoder> make_csv_decoder(const options& opts, schema_ptr schema);
std::shared_ptr<const decoder> make_json_decoder(const options& opts, schema_ptr schema);
std::shared_ptr<const decoder> make_text_decoder(const options& opts, schema_ptr schema);

schema_ptr infer_csv_schema(const options& opts, const std::vector<std::string_view>& samples);
schema_ptr infer_json_schema(const options& opts, const std::vector<std::string_view>& samples);

// ASCII lower case, for option keys and mode names.
inline std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Just past the last newline, or 0: where line-oriented formats (JSON lines, text) may cut.
inline std::size_t last_line_boundary(std::string_view bytes) {
  std::size_t at = bytes.rfind('\n');
  return at == std::string_view::npos ? 0 : at + 1;
}

// Spaces and tabs removed from both ends (numbers, booleans and timestamps tolerate them).
inline std::string_view trim_blanks(std::string_view text) {
  std::size_t b = 0, e = text.size();
  while (b < e && (text[b] == ' ' || text[b] == '\t')) ++b;
  while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t')) --e;
  return text.substr(b, e - b);
}

// Whole-text conversions; nullopt when the text is not a valid value of the type. Inline: the CSV
// decoder calls them once per field.
inline std::optional<std::int64_t> parse_int64(std::string_view text) {
  // from_chars rejects a leading '+', which Spark (Java's Long.parseLong) accepts.
  if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// A plain decimal of at most 15 digits ("-12.345"), or nullopt for any other text. Exact (Clinger's
// fast path): the digits as an integer below 2^53 and a power of ten up to 1e15 are both doubles, and
// one division rounds correctly, so this is the double from_chars gives, at a fraction of its cost.
inline std::optional<double> short_decimal_to_double(std::string_view text) {
  static constexpr double powers[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  const bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  std::uint64_t digits = 0;
  std::size_t count = 0, point = text.size(), i = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = digits * 10 + static_cast<unsigned>(c - '0');
      if (++count > 15) return std::nullopt;
    } else if (c == '.' && point == text.size() && i > 0 && i + 1 < text.size()) {
      point = i;
    } else {
      return std::nullopt;
    }
  }
  if (count == 0) return std::nullopt;
  const std::size_t decimals = point == text.size() ? 0 : text.size() - point - 1;
  const double v = static_cast<double>(digits) / powers[decimals];
  return negative ? -v : v;
}

// The double of the whole text as from_chars reads it (an optional '-', a decimal number, nan, inf), or
// nullopt. As Java's Double.parseDouble, a number past the largest double is infinite and one below the
// smallest is zero, where from_chars reports result_out_of_range. (casts.cpp uses it too.)
inline std::optional<double> decimal_to_double(std::string_view text) {
  if (auto exact = short_decimal_to_double(text)) return *exact;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || end != text.data() + text.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    // Which end: the decimal exponent of the leading digit, the mantissa's place plus the written exponent.
    const bool negative = text.front() == '-';
    const std::string_view number = text.substr(negative ? 1 : 0);
    const std::size_t e = std::min(number.find_first_of("eE"), number.size());
    const std::string_view mantissa = number.substr(0, e);
    const std::size_t point = std::min(mantissa.find('.'), mantissa.size());
    const std::size_t lead = std::min(mantissa.find_first_not_of("0."), mantissa.size());
    long long exponent = 0;
    std::string_view written = number.substr(std::min(e + 1, number.size()));
    const bool exponent_negative = !written.empty() && written.front() == '-';
    if (!written.empty() && (written.front() == '-' || written.front() == '+')) written.remove_prefix(1);
    for (char c : written) exponent = std::min(exponent * 10 + (c - '0'), 1'000'000'000LL);
    if (exponent_negative) exponent = -exponent;
    const long long place = lead < point ? static_cast<long long>(point - lead) - 1
                                         : -static_cast<long long>(lead - point);
    const double magnitude = place + exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
    return negative ? -magnitude : magnitude;
  }
  if (ec != std::errc{}) return std::nullopt;
  return v;
}

inline std::optional<double> parse_float64(std::string_view text) {
  if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);
  return decimal_to_double(text);
}

std::optional<bool> parse_boolean(std::string_view text);

// Spark's type widening for schema inference: nullopt stands for "only nulls so far".
std::optional<type_id> merge_inferred(std::optional<type_id> seen, type_id next);
// The narrowest type a non-null CSV text fits: int64, float64, boolean, timestamp, else string.
type_id infer_text_type(std::string_view text);

// The corrupt-record column (columnNameOfCorruptRecord, default "_corrupt_record") if the schema has one;
// throws flow::error if it exists but is not a string.
std::optional<std::size_t> corrupt_record_index(const options& opts, const schema& s);

// "<origin> line <n>" for error messages; the line counts '\n' in chunk bytes before offset.
std::string describe_position(const raw_chunk& chunk, std::size_t offset);
// Cut long raw text for error messages.
std::string excerpt(std::string_view text, std::size_t limit = 120);

// Rows expected in bytes, from the newline density of a prefix (to reserve column buffers once).
std::size_t estimate_rows(std::string_view bytes);

inline constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

}  // namespace flow::detail
