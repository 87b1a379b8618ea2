// The text handling of the string functions: split() patterns (Java's String.split rules) and the case
// mapping of lower() and upper().
#include <cctype>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Every byte but a continuation byte (10xxxxxx) starts a code point: 16 bytes a step where SSE2 is
// available (the continuation bytes, -128..-65 as signed bytes, counted in byte lanes, summed at least every
// 255 steps), so that length() over long lines costs about a read of them.
std::size_t count_code_points(std::string_view s) {
  const char* p = s.data();
  const char* const end = p + s.size();
  std::size_t continuations = 0;
#if defined(__SSE2__)
  const __m128i below = _mm_set1_epi8(-64);
  while (end - p >= 16) {
    __m128i lanes = _mm_setzero_si128();  // 0 - continuation bytes seen, per byte lane
    for (int step = 0; step < 255 && end - p >= 16; ++step, p += 16) {
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      lanes = _mm_add_epi8(lanes, _mm_cmplt_epi8(block, below));
    }
    const __m128i sums = _mm_sad_epu8(_mm_sub_epi8(_mm_setzero_si128(), lanes), _mm_setzero_si128());
    continuations += static_cast<std::size_t>(_mm_cvtsi128_si32(sums)) +
                     static_cast<std::size_t>(_mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums)));
  }
#endif
  for (; p < end; ++p) continuations += (static_cast<unsigned char>(*p) & 0xC0) == 0x80;
  return s.size() - continuations;
}

}  // namespace flow::detail
