// Input for the checkpointed key-sum tests: CSV files of (k, v) rows and the sums an independent count
// expects. Header-only test helper.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "test_support.hpp"

namespace flow::test {

using key_totals = std::map<std::int64_t, std::int64_t>;

// files CSV files (one epoch each) of rows k = i % keys, v = i % 13 + 1, i counting on from first; adds
// their sums to expected.
inline void write_key_sum_files(const std::filesystem::path& dir, int files, std::int64_t first,
                                std::int64_t rows_per_file, std::int64_t keys, key_totals& expected) {
  std::int64_t i = first;
  for (int f = 0; f < files; ++f) {
    std::string text = "k,v\n";
    for (std::int64_t r = 0; r < rows_per_file; ++r, ++i) {
      text += std::to_string(i % keys) + "," + std::to_string(i % 13 + 1) + "\n";
      expected[i % keys] += i % 13 + 1;
    }
    write_file(dir / ("part-" + std::to_string(1000000 + i) + ".csv"), text);
  }
}

}  // namespace flow::test
