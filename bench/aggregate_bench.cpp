// Micro-benchmark of the hash aggregation on the retail data: group by (CustomerID, 1-hour window),
// sum(UnitPrice * Quantity), in batches of 4096 rows, against a hand-written loop over a hash map.
// Decoding is done up front and not timed. Prints one JSON line.
// Usage: aggregate_bench [DATA_DIR [REPEATS]] (default: the shared data's retail-by-day/, 5 repeats)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "bench_input.hpp"
#include "flow/formats.hpp"
#include "flow/operators.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

struct hand_key {
  std::uint64_t customer_bits;
  std::int64_t window_start;
  bool customer_null;
  bool operator==(const hand_key&) const = default;
};

struct hand_hash {
  std::size_t operator()(const hand_key& k) const {
    std::uint64_t h = (k.customer_bits ^ (static_cast<std::uint64_t>(k.window_start) * 0x9E3779B97F4A7C15ULL) ^
                       k.customer_null) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
  }
};

int run_bench(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path dir = argc > 1 ? fs::path(argv[1]) : bench::shared_data_dir() / "retail-by-day";
  const std::size_t repeats = argc > 2 ? bench::count_argument(argv[2], "the repeat count (second argument)") : 5;
  auto schema = flow::make_schema({{"InvoiceNo", flow::type_id::string, true},
                                   {"StockCode", flow::type_id::string, true},
                                   {"Description", flow::type_id::string, true},
                                   {"Quantity", flow::type_id::int64, true},
                                   {"InvoiceDate", flow::type_id::timestamp, true},
                                   {"UnitPrice", flow::type_id::float64, true},
                                   {"CustomerID", flow::type_id::float64, true},
                                   {"Country", flow::type_id::string, true}});
  flow::options opts;
  opts.set("header", "true");
  auto decoder = flow::make_decoder("csv", opts, schema);
  const std::string hint = bench::retail_data_hint("aggregate_bench [DATA_DIR [REPEATS]]");
  std::vector<flow::batch> decoded;
  for (const auto& file : bench::csv_files(dir, hint)) {
    auto text = std::make_shared<const std::string>(bench::read_file(file, hint));
    flow::decode_stats stats;
    decoded.push_back(decoder->decode(flow::raw_chunk{text, 0, text->size(), file.string(), 1}, stats));
  }
  auto all = flow::concat(decoded);
  const std::size_t rows = all.num_rows();
  const std::size_t batch_rows = 4096;
  std::vector<flow::batch> batches;
  for (std::size_t offset = 0; offset < rows; offset += batch_rows) {
    batches.push_back(all.slice(offset, std::min(batch_rows, rows - offset)));
  }

  flow::project_operator select(*schema, {flow::col("CustomerID"),
                                          (flow::col("UnitPrice") * flow::col("Quantity")).as("total_cost"),
                                          flow::col("InvoiceDate")});
  flow::aggregate_operator aggregate(select.output_schema(),
                                     {flow::col("CustomerID"), flow::window(flow::col("InvoiceDate"), "1 hour")},
                                     {{flow::agg_kind::sum, flow::col("total_cost"), {}}});

  double best_flow = 1e9, best_hand = 1e9;
  std::size_t flow_groups = 0, hand_groups = 0;
  double flow_total = 0, hand_total = 0;
  for (std::size_t r = 0; r < repeats; ++r) {
    auto start = clock_type::now();
    auto state = aggregate.make_state();
    for (const auto& b : batches) state->update(select.apply(b));
    auto result = state->emit(flow::output_mode::complete);
    best_flow = std::min(best_flow, seconds_since(start));
    flow_groups = result.num_rows();
    flow_total = 0;
    for (std::size_t i = 0; i < result.num_rows(); ++i) {
      if (result.col(2).valid(i)) flow_total += result.col(2).doubles()[i];
    }

    start = clock_type::now();
    std::unordered_map<hand_key, double, hand_hash> sums;
    const std::int64_t hour = 3600LL * 1000000;
    for (const auto& b : batches) {
      const auto& customer = b.col(6);
      const auto& quantity = b.col(3);
      const auto& price = b.col(5);
      const auto& date = b.col(4);
      for (std::size_t i = 0; i < b.num_rows(); ++i) {
        if (date.is_null(i)) continue;
        const std::int64_t t = date.ints()[i];
        const std::int64_t window_start = t - (((t % hour) + hour) % hour);
        const bool null_customer = customer.is_null(i);
        std::uint64_t bits = 0;
        if (!null_customer) std::memcpy(&bits, &customer.doubles()[i], 8);
        double& sum = sums[hand_key{bits, window_start, null_customer}];
        if (!price.is_null(i) && !quantity.is_null(i)) sum += price.doubles()[i] * static_cast<double>(quantity.ints()[i]);
      }
    }
    best_hand = std::min(best_hand, seconds_since(start));
    hand_groups = sums.size();
    hand_total = 0;
    for (const auto& [key, sum] : sums) hand_total += sum;
  }
  std::printf(
      "{\"bench\":\"aggregate\",\"rows\":%zu,\"batch_rows\":%zu,\"groups\":%zu,\"hand_groups\":%zu,"
      "\"flow_seconds\":%.6f,\"flow_rows_per_second\":%.0f,\"hand_seconds\":%.6f,\"hand_rows_per_second\":%.0f,"
      "\"flow_vs_hand\":%.3f,\"totals_match\":%s}\n",
      rows, batch_rows, flow_groups, hand_groups, best_flow, rows / best_flow, best_hand, rows / best_hand,
      best_flow / best_hand, std::fabs(flow_total - hand_total) < 1e-3 * std::max(1.0, std::fabs(hand_total)) ? "true" : "false");
  return flow_groups == hand_groups ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("aggregate_bench", [&] { return run_bench(argc, argv); });
}
