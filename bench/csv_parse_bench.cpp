// Decodes all retail-by-day CSV files (read into memory first) with a fixed schema, single-threaded.
// Prints {"bench":"csv_parse","mb_per_s":...,"rows_per_s":...} for the best of several runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "flow/formats.hpp"

namespace fs = std::filesystem;

// The shared data sits next to the project: <project>/../shared/data, or FLOW_SHARED_DATA.
fs::path default_data_dir() {
  if (const char* env = std::getenv("FLOW_SHARED_DATA")) return fs::path(env) / "retail-by-day";
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "data" / "retail-by-day";
}

int main(int argc, char** argv) {
  fs::path dir = argc > 1 ? fs::path(argv[1]) : default_data_dir();
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  std::vector<flow::raw_chunk> chunks;
  std::size_t total_bytes = 0;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".csv") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    auto buffer = std::make_shared<const std::string>(content.str());
    total_bytes += buffer->size();
    chunks.push_back(flow::raw_chunk{buffer, 0, buffer->size(), path.filename().string(), 1});
  }
  if (chunks.empty()) {
    std::cerr << "no .csv files in " << dir << "\n";
    return 1;
  }
  using flow::type_id;
  auto schema = flow::make_schema({{"InvoiceNo", type_id::string},
                                   {"StockCode", type_id::string},
                                   {"Description", type_id::string},
                                   {"Quantity", type_id::int64},
                                   {"InvoiceDate", type_id::timestamp},
                                   {"UnitPrice", type_id::float64},
                                   {"CustomerID", type_id::float64},
                                   {"Country", type_id::string}});
  flow::options opts;
  opts.set("header", "true");
  auto decoder = flow::make_decoder("csv", opts, schema);

  double best_seconds = 1e300;
  std::uint64_t rows = 0;
  for (int run = 0; run < runs; ++run) {
    flow::decode_stats stats;
    auto start = std::chrono::steady_clock::now();
    for (const auto& chunk : chunks) decoder->decode(chunk, stats);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best_seconds = std::min(best_seconds, seconds);
    rows = stats.rows;
  }
  std::printf("{\"bench\":\"csv_parse\",\"files\":%zu,\"bytes\":%zu,\"rows\":%llu,\"seconds\":%.4f,"
              "\"mb_per_s\":%.1f,\"rows_per_s\":%.0f}\n",
              chunks.size(), total_bytes, static_cast<unsigned long long>(rows), best_seconds,
              static_cast<double>(total_bytes) / 1e6 / best_seconds, static_cast<double>(rows) / best_seconds);
  return 0;
}
