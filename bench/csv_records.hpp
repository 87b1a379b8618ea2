// What the hand-written baselines of the benches parse CSV with: records split into field views (quotes
// handled, no copies) and numbers read with std::from_chars.
#pragma once

#include <charconv>
#include <filesystem>
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

// Calls on_record(fields) for every record with all 8 columns of the retail files, file by file, header
// skipped; read(file) gives a file's text (bench::read_file with the bench's hint).
template <class Read, class OnRecord>
void for_each_retail_record(const std::vector<std::filesystem::path>& files, Read&& read, OnRecord&& on_record) {
  std::vector<std::string_view> fields;
  for (const auto& file : files) {
    const std::string text = read(file);
    std::size_t pos = text.find('\n') + 1;  // header
    while (pos < text.size()) {
      pos = split_record(text, pos, fields);
      if (fields.size() >= 8) on_record(fields);
    }
  }
}

}  // namespace bench
