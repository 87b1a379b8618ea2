// Finding and counting newlines (flow/line_scan.hpp): the 64-byte steps agree with a byte-by-byte scan
// at every length and alignment around the steps' edges, and over spans longer than a byte lane can count.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "flow/line_scan.hpp"

namespace {

// Bytes with newlines at irregular places (every 7th and every 61st byte, and the first), so that some
// 64-byte steps hold several, some one, some none.
std::string sample_bytes(std::size_t size) {
  std::string bytes(size, 'x');
  for (std::size_t i = 0; i < size; ++i)
    if (i % 7 == 3 || i % 61 == 0) bytes[i] = '\n';
  for (std::size_t i = 200; i < size && i < 400; ++i) bytes[i] = 'y';  // a long line: whole steps without one
  return bytes;
}

}  // namespace

TEST_CASE("count_newlines and for_each_newline agree with a byte-by-byte scan", "[line_scan]") {
  const std::string bytes = sample_bytes(700);
  for (std::size_t begin : {0, 1, 15, 63, 64, 65}) {
    for (std::size_t end = begin; end <= bytes.size(); ++end) {
      std::size_t expected = 0;
      std::vector<std::size_t> positions;
      for (std::size_t i = begin; i < end; ++i)
        if (bytes[i] == '\n') {
          ++expected;
          positions.push_back(i);
        }
      const char* data = bytes.data();
      REQUIRE(flow::count_newlines(data + begin, data + end) == expected);
      std::vector<std::size_t> found;
      flow::for_each_newline(data + begin, data + end, [&](const char* nl) { found.push_back(static_cast<std::size_t>(nl - data)); });
      REQUIRE(found == positions);
    }
  }
  // Past 255 16-byte steps the byte lanes are summed and start again; a lane of all newlines reaches 255.
  const std::string none(10000, 'a');
  CHECK(flow::count_newlines(none.data(), none.data() + none.size()) == 0);
  const std::string all(10000, '\n');
  for (std::size_t end : {4079, 4080, 4081, 4096, 8160, 10000})
    CHECK(flow::count_newlines(all.data(), all.data() + end) == end);
  const std::string longer = sample_bytes(10000);
  std::size_t expected = 0;
  for (char c : longer) expected += c == '\n';
  CHECK(flow::count_newlines(longer.data(), longer.data() + longer.size()) == expected);
}
