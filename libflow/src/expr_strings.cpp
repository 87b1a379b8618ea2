// The text handling of the string functions: split() patterns (Java's String.split rules) and the case
// mapping of lower() and upper().
#include <cctype>

#include "expr_detail.hpp"

namespace flow::detail {

namespace {

bool is_java_whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
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

}  // namespace

void splitter::split(std::string_view text, column_builder& out) const {
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

}  // namespace flow::detail
