// What the hand-written baselines of the benches parse CSV with: records split into field views (quotes
// handled, no copies) and numbers read with std::from_chars.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// Splits one CSV record starting at pos into field views (quotes handled); returns the position after it.
inline std::size_t split_record(const std::string& text, std::size_t pos, std::vector<std::string_view>& fields) {
  fields.clear();
  const std::size_t n = text.size();
  while (true) {
    std::size_t start = pos;
    if (pos < n && text[pos] == '"') {
      ++pos;
      while (pos < n) {
        if (text[pos] == '"') {
          if (pos + 1 < n && text[pos + 1] == '"') pos += 2;
          else break;
        } else {
          ++pos;
        }
      }
      ++pos;
    }
    while (pos < n && text[pos] != ',' && text[pos] != '\n') ++pos;
    fields.emplace_back(text.data() + start, pos - start);
    if (pos >= n || text[pos] == '\n') return pos + 1;
    ++pos;
  }
}

inline double to_double(std::string_view text) {
  double v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

inline std::int64_t to_int(std::string_view text) {
  std::int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

}  // namespace bench
