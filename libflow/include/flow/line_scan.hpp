// Finding newlines and copying lines fast: shared by the text decoder and the record log of push sources.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace flow {

// Calls f(pointer to '\n') for each newline in [p, end), in order: 64 bytes per step where SSE2 is
// available, which beats one memchr call per line when lines are short.
template <class F>
void for_each_newline(const char* p, const char* const end, F&& f) {
#ifdef __SSE2__
  const __m128i newline = _mm_set1_epi8('\n');
  auto mask16 = [&](const char* at) {
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)), newline))));
  };
  for (; end - p >= 64; p += 64) {
    std::uint64_t found = mask16(p) | mask16(p + 16) << 16 | mask16(p + 32) << 32 | mask16(p + 48) << 48;
    for (; found != 0; found &= found - 1) f(p + __builtin_ctzll(found));
  }
#endif
  while (const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))) {
    f(nl);
    p = nl + 1;
  }
}

// The number of '\n' in [p, end): 16 bytes per step where SSE2 is available, each byte's matches
// counted in a byte lane and the lanes summed every 255 steps (std::count's vectorized loop widens every
// byte's match to 64 bits and was most of a file reader's thread).
inline std::size_t count_newlines(const char* p, const char* const end) {
  std::size_t count = 0;
#ifdef __SSE2__
  const __m128i newline = _mm_set1_epi8('\n');
  while (end - p >= 16) {
    const auto whole = static_cast<std::size_t>(end - p) / 16;
    const std::size_t steps = whole < 255 ? whole : 255;
    __m128i lanes = _mm_setzero_si128();
    for (std::size_t i = 0; i < steps; ++i, p += 16)  // a match is -1: subtracting it counts it
      lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), newline));
    const __m128i sums = _mm_sad_epu8(lanes, _mm_setzero_si128());  // two sums of 8 lanes, each < 2^11
    count += static_cast<std::size_t>(_mm_cvtsi128_si32(sums)) + static_cast<std::size_t>(_mm_cvtsi128_si32(_mm_srli_si128(sums, 8)));
  }
#endif
  for (; p < end; ++p) count += *p == '\n';
  return count;
}

// Room a copy_line destination needs past the line's end.
constexpr std::size_t line_copy_slack = 16;

// Copies a line of length bytes to out, in 16-byte pieces when the source has line_copy_slack bytes past
// the line (source_room: bytes readable from line on), which beats a memcpy call for short lines. out
// must have room for length + line_copy_slack bytes.
inline void copy_line(char* out, const char* line, std::size_t length, std::size_t source_room) {
  if (source_room >= length + line_copy_slack) {
    for (std::size_t i = 0; i < length; i += line_copy_slack) std::memcpy(out + i, line + i, line_copy_slack);
  } else {
    std::memcpy(out, line, length);
  }
}

}  // namespace flow
