// Decodes all retail-by-day CSV files (read into memory first) with a fixed schema, single-threaded.
// Prints {"bench":"csv_parse","mb_per_s":...,"rows_per_s":...} for the best of several runs.
// Usage: csv_parse_bench [DATA_DIR [RUNS [decoder]]] (default: the shared data's retail-by-day/, 5 runs)
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>

#include "bench_input.hpp"
#include "flow/formats.hpp"

namespace fs = std::filesystem;

namespace {

// The yardstick: a hand-written parser for exactly this file layout into plain vectors, no options,
// no error handling beyond skipping what does not convert.
struct baseline_parser {
  std::vector<std::uint32_t> offsets[4];
  std::string chars[4];
  std::vector<std::int64_t> quantity, invoice_date;
  std::vector<double> unit_price, customer_id;
  std::vector<std::uint8_t> customer_valid;
  std::string unescaped;

  void reserve(std::size_t rows) {
    for (auto& o : offsets) o.reserve(rows);
    quantity.reserve(rows);
    invoice_date.reserve(rows);
    unit_price.reserve(rows);
    customer_id.reserve(rows);
    customer_valid.reserve(rows);
  }

  std::size_t parse(std::string_view text) {
    const char* p = text.data();
    const char* end = p + text.size();
    p = static_cast<const char*>(std::memchr(p, '\n', text.size())) + 1;  // header
    std::size_t rows = 0;
    std::string_view fields[8];
    while (p < end) {
      unescaped.clear();
      for (int f = 0; f < 8; ++f) {
        if (*p == '"') {
          const char* start = ++p;
          for (;;) {
            const char* q = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
            if (q + 1 < end && q[1] == '"') {
              unescaped.append(p, static_cast<std::size_t>(q + 1 - p));
              p = q + 2;
              continue;
            }
            if (unescaped.empty()) {
              fields[f] = std::string_view(start, static_cast<std::size_t>(q - start));
            } else {
              unescaped.append(p, static_cast<std::size_t>(q - p));
              fields[f] = unescaped;
            }
            p = q + 1;
            break;
          }
        } else {
          const char* start = p;
          while (p < end && *p != ',' && *p != '\n') ++p;
          fields[f] = std::string_view(start, static_cast<std::size_t>(p - start));
        }
        ++p;  // ',' or '\n'
      }
      for (int s = 0; s < 3; ++s) {
        chars[s].append(fields[s]);
        offsets[s].push_back(static_cast<std::uint32_t>(chars[s].size()));
      }
      chars[3].append(fields[7]);
      offsets[3].push_back(static_cast<std::uint32_t>(chars[3].size()));
      std::int64_t q = 0;
      std::from_chars(fields[3].data(), fields[3].data() + fields[3].size(), q);
      quantity.push_back(q);
      invoice_date.push_back(flow::parse_timestamp(fields[4]).value_or(flow::timestamp{}).micros);
      double d = 0;
      std::from_chars(fields[5].data(), fields[5].data() + fields[5].size(), d);
      unit_price.push_back(d);
      d = 0;
      customer_valid.push_back(!fields[6].empty());
      std::from_chars(fields[6].data(), fields[6].data() + fields[6].size(), d);
      customer_id.push_back(d);
      ++rows;
    }
    return rows;
  }
};

int run_bench(int argc, char** argv) {
  fs::path dir = argc > 1 ? fs::path(argv[1]) : bench::shared_data_dir() / "retail-by-day";
  const std::size_t runs = argc > 2 ? bench::count_argument(argv[2], "the run count (second argument)") : 5;
  // A third argument "decoder" skips the hand-written yardstick (for profiling).
  const std::size_t baseline_runs = argc > 3 && std::string(argv[3]) == "decoder" ? 0 : runs;
  std::vector<flow::raw_chunk> chunks;
  std::size_t total_bytes = 0;
  const std::string hint = bench::retail_data_hint("csv_parse_bench [DATA_DIR [RUNS [decoder]]]");
  for (const auto& path : bench::csv_files(dir, hint)) {
    auto buffer = std::make_shared<const std::string>(bench::read_file(path, hint));
    total_bytes += buffer->size();
    chunks.push_back(flow::raw_chunk{buffer, 0, buffer->size(), path.filename().string(), 1});
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
  for (std::size_t run = 0; run < runs; ++run) {
    flow::decode_stats stats;
    auto start = std::chrono::steady_clock::now();
    for (const auto& chunk : chunks) decoder->decode(chunk, stats);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best_seconds = std::min(best_seconds, seconds);
    rows = stats.rows;
  }
  double baseline_seconds = 1e300;
  std::size_t baseline_rows = 0;
  for (std::size_t run = 0; run < baseline_runs; ++run) {
    auto start = std::chrono::steady_clock::now();
    std::size_t run_rows = 0;
    for (const auto& chunk : chunks) {
      baseline_parser parser;
      parser.reserve(chunk.buffer->size() / 64);
      run_rows += parser.parse(chunk.bytes());
    }
    baseline_seconds = std::min(baseline_seconds,
                                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    baseline_rows = run_rows;
  }
  if (baseline_runs > 0 && baseline_rows != rows) std::fprintf(stderr, "baseline rows %zu != decoder rows\n", baseline_rows);

  std::printf("{\"bench\":\"csv_parse\",\"files\":%zu,\"bytes\":%zu,\"rows\":%llu,\"seconds\":%.4f,"
              "\"mb_per_s\":%.1f,\"rows_per_s\":%.0f,\"hand_written_mb_per_s\":%.1f}\n",
              chunks.size(), total_bytes, static_cast<unsigned long long>(rows), best_seconds,
              static_cast<double>(total_bytes) / 1e6 / best_seconds, static_cast<double>(rows) / best_seconds,
              static_cast<double>(total_bytes) / 1e6 / baseline_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("csv_parse_bench", [&] { return run_bench(argc, argv); });
}
