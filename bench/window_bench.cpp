// A keyed sliding-window aggregation over every daily retail file: sum(Quantity) per Country per 1-hour
// window sliding by 15 minutes of InvoiceDate, update mode, one file per epoch (the custom_topology
// example's read_sales), at parallelism 1 and 2, against a hand-written single-threaded loop over the same
// files (issue 11 target: at most 1.5x its time at parallelism 2). The runs take turns, round by round; the
// median of each counts. Prints one JSON line per run; exits 1 when a result differs from the loop's, 2 on
// input it cannot use.
// Usage: window_bench [DATA_DIR [REPEATS]] (default: the shared data's retail-by-day/, 5 repeats)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_input.hpp"
#include "compare_runs.hpp"
#include "csv_records.hpp"
#include "flow/session.hpp"
#include "retail_topology.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t micros_per_minute = 60'000'000;
constexpr std::int64_t window_length = 60 * micros_per_minute;
constexpr std::int64_t window_slide = 15 * micros_per_minute;

const std::string data_hint = bench::retail_data_hint("window_bench [DATA_DIR [REPEATS]]");

// (Country, window start in micros) -> sum(Quantity)
using sums = std::map<std::pair<std::string, std::int64_t>, std::int64_t>;

using run_figures = bench::timed_result<sums>;

// "YYYY-MM-DD HH:MM:SS" (UTC) as microseconds since the epoch (days from the civil date, H. Hinnant's way).
std::int64_t to_micros(std::string_view text) {
  const std::int64_t y0 = bench::to_int(text.substr(0, 4)), m = bench::to_int(text.substr(5, 2)),
                     d = bench::to_int(text.substr(8, 2));
  const std::int64_t y = m <= 2 ? y0 - 1 : y0;
  const std::int64_t era = y / 400, yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
  const std::int64_t seconds = days * 86400 + bench::to_int(text.substr(11, 2)) * 3600 +
                               bench::to_int(text.substr(14, 2)) * 60 + bench::to_int(text.substr(17, 2));
  return seconds * 1'000'000;
}

run_figures run_hand_loop(const std::vector<fs::path>& files) {
  auto started = std::chrono::steady_clock::now();
  const double cpu_started = bench::process_cpu_seconds();
  std::unordered_map<std::string, std::unordered_map<std::int64_t, std::int64_t>> by_country;
  auto read = [](const fs::path& file) { return bench::read_file(file, data_hint); };
  bench::for_each_retail_record(files, read, [&](const std::vector<std::string_view>& fields) {
    const std::int64_t time = to_micros(fields[4]);
    const std::int64_t quantity = bench::to_int(fields[3]);
    auto& windows = by_country[std::string(fields[7])];
    const std::int64_t last_start = time - time % window_slide;  // times are after 1970: no negative remainder
    for (std::int64_t start = last_start; start > time - window_length; start -= window_slide) windows[start] += quantity;
  });
  run_figures fig;
  fig.seconds = bench::seconds_since(started);
  fig.cpu_seconds = bench::process_cpu_seconds() - cpu_started;
  for (const auto& [country, windows] : by_country)
    for (const auto& [start, sum] : windows) fig.result[{country, start}] = sum;
  return fig;
}

run_figures run_libflow(const fs::path& dir, std::size_t parallelism) {
  flow::session_config config;
  config.parallelism = parallelism;
  flow::session session(config);
  auto totals = retail::read_sales(session, dir.string())
                    .group_by({flow::col("Country"), flow::window(flow::col("InvoiceDate"), "1 hour", "15 minutes")})
                    .sum("Quantity");
  std::mutex mutex;
  run_figures fig;
  auto started = std::chrono::steady_clock::now();
  const double cpu_started = bench::process_cpu_seconds();
  auto query = totals.write_stream()
                   .output_mode("update")
                   .trigger(flow::available_now())
                   .foreach_batch([&](const flow::batch& rows, std::int64_t) {
                     std::lock_guard<std::mutex> lock(mutex);
                     for (std::size_t r = 0; r < rows.num_rows(); ++r)
                       fig.result[{std::string(rows.col(0).str(r)), rows.col(1).window(r).start.micros}] = rows.col(2).ints()[r];
                   })
                   .start();
  query.await_termination();
  fig.seconds = bench::seconds_since(started);
  fig.cpu_seconds = bench::process_cpu_seconds() - cpu_started;
  if (auto failure = query.exception()) throw std::runtime_error("the query failed: " + *failure);
  return fig;
}

int run_bench(int argc, char** argv) {
  auto input = bench::read_retail_arguments(argc, argv, data_hint);
  if (argc <= 2) input.repeats = 5;
  for (auto& f : input.files) bench::read_file(f, data_hint);  // warm the page cache for every run alike
  sums expected;
  const auto runs = bench::compare_with_hand_loop(
      input.repeats, [&](std::size_t parallelism) { return parallelism == 0 ? run_hand_loop(input.files) : run_libflow(input.dir, parallelism); }, expected);
  const double hand_seconds = bench::median(runs[0].seconds), hand_cpu_seconds = bench::median(runs[0].cpu_seconds);
  bool ok = true;
  for (const auto& run : runs) {
    const double seconds = bench::median(run.seconds), cpu_seconds = bench::median(run.cpu_seconds);
    ok = ok && run.matches;
    std::printf("{\"bench\":\"window\",\"run\":\"%s\",\"files\":%zu,\"groups\":%zu,\"median_seconds\":%.4f,"
                "\"time_ratio_to_hand_loop\":%.3f,\"median_cpu_seconds\":%.4f,\"cpu_ratio_to_hand_loop\":%.3f,\"matches\":%s}\n",
                run.name, input.files.size(), expected.size(), seconds, seconds / hand_seconds, cpu_seconds,
                cpu_seconds / hand_cpu_seconds,
                run.matches ? "true" : "false");
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("window_bench", [&] { return run_bench(argc, argv); });
}
