// A stream-stream join over two rate sources, as Spark's ad impressions and clicks: each side's rows are
// (id = value, time = timestamp), joined on the id with the right side's time within a second of the
// left's, both sides watermarked 2 s, inner, append mode, parallelism 2, a processing-time trigger of 1 s.
// The engine's time is the sum of its epochs' durations (progress durationMs.triggerExecution); the
// baseline is a hand-written hash join in this process over the very rows the engine read (rebuilt from
// its final offsets with the rate source's formula), target: at most 1.5x its time. The baseline's time
// includes making those rows, as the engine's includes its sources making them: the same work on the
// same input. Both also report CPU seconds (the engine's: the process's while the query ran), which a
// busy machine distorts less than wall time. The results (row count and a digest of the matched ids) must
// agree. Prints one JSON line per run and one with the ratio; exits 1 when a result differs.
// Usage: stream_join_bench [SECONDS [ROWS_PER_SECOND]] (default: 8 s at 128000 rows/s per side)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/resource.h>
#include <time.h>

#include "bench_input.hpp"
#include "compare_runs.hpp"
#include "flow/session.hpp"

using flow::col;
using flow::lit;

namespace {

struct join_result {
  std::int64_t rows = 0;
  std::int64_t digest = 0;  // sum of the matched ids
  bool operator==(const join_result&) const = default;
};

// A rate source's final offset: the seconds read and its start time.
struct rate_offset {
  std::int64_t seconds = 0, start_ms = 0;
};

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// The n-th {"seconds":N,"startTimeMs":T} of a progress report (its sources' end offsets, in order).
rate_offset end_offset(const std::string& progress, std::size_t n) {
  std::size_t at = 0;
  for (std::size_t i = 0; i <= n; ++i) {
    at = progress.find("\"endOffset\":", at);
    if (at == std::string::npos) return {};
    ++at;
  }
  const std::string rest = progress.substr(at);
  return {static_cast<std::int64_t>(bench::json_number(rest, "seconds")),
          static_cast<std::int64_t>(bench::json_number(rest, "startTimeMs"))};
}

// The rows a rate source with a constant rate read by `offset`: value v at start + round(v * 1000 / rate) ms
// (docs/connectors.md; exact for every epoch split when 1000 / rate is a binary fraction, as for 128000).
std::vector<std::int64_t> rate_times_ms(const rate_offset& offset, std::int64_t rows_per_second) {
  std::vector<std::int64_t> times(static_cast<std::size_t>(offset.seconds * rows_per_second));
  const double ms_per_value = 1000.0 / static_cast<double>(rows_per_second);
  for (std::size_t v = 0; v < times.size(); ++v)
    times[v] = offset.start_ms + static_cast<std::int64_t>(std::llround(static_cast<double>(v) * ms_per_value));
  return times;
}

// The baseline: the same join as a hash join over both sides' rows.
join_result hand_join(const std::vector<std::int64_t>& left_ms, const std::vector<std::int64_t>& right_ms) {
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> right_by_id;
  right_by_id.reserve(right_ms.size());
  for (std::size_t id = 0; id < right_ms.size(); ++id) right_by_id[static_cast<std::int64_t>(id)].push_back(right_ms[id]);
  join_result out;
  for (std::size_t id = 0; id < left_ms.size(); ++id) {
    const auto found = right_by_id.find(static_cast<std::int64_t>(id));
    if (found == right_by_id.end()) continue;
    for (const auto rt : found->second) {
      if (rt >= left_ms[id] - 1000 && rt <= left_ms[id] + 1000) {
        ++out.rows;
        out.digest += static_cast<std::int64_t>(id);
      }
    }
  }
  return out;
}

struct engine_run {
  double seconds = 0;  // the epochs' processing time
  double cpu_seconds = 0;
  join_result result;
  rate_offset left, right;
  std::size_t epochs = 0;
};

engine_run run_engine(double run_seconds, std::int64_t rows_per_second) {
  flow::session_config config;
  config.parallelism = 2;
  config.progress_history = 10000;
  flow::session session(config);
  auto rate = [&] {
    return session.read_stream().format("rate").option("rowsPerSecond", std::to_string(rows_per_second)).load();
  };
  auto left = rate().select({col("value").as("id"), col("timestamp").as("lt")}).with_watermark("lt", "2 seconds");
  auto right = rate().select({col("value").as("rid"), col("timestamp").as("rt")}).with_watermark("rt", "2 seconds");
  auto joined = left.join(right, (col("rid") == col("id")) && (col("rt") >= col("lt") - lit("1 second")) &&
                                     (col("rt") <= col("lt") + lit("1 second")));
  std::mutex lock;
  join_result result;
  const double cpu_at_start = bench::process_cpu_seconds();
  auto query = joined.write_stream()
                   .trigger(flow::processing_time(std::chrono::seconds(1)))
                   .foreach_batch([&](const flow::batch& rows, std::int64_t) {
                     const auto& ids = rows.col("id").ints();
                     std::int64_t digest = 0;
                     for (std::size_t i = 0; i < rows.num_rows(); ++i) digest += ids[i];
                     std::lock_guard guard(lock);
                     result.rows += static_cast<std::int64_t>(rows.num_rows());
                     result.digest += digest;
                   })
                   .start();
  std::this_thread::sleep_for(std::chrono::duration<double>(run_seconds));
  query.stop();
  const double cpu_seconds = bench::process_cpu_seconds() - cpu_at_start;
  if (query.exception()) {
    std::fprintf(stderr, "stream_join_bench: the query failed: %s\n", query.exception()->c_str());
    std::exit(1);
  }
  engine_run run;
  run.cpu_seconds = cpu_seconds;
  for (const auto& p : query.recent_progress()) {
    if (bench::json_number(p, "numInputRows") == 0) continue;
    run.seconds += bench::json_number(p, "triggerExecution") / 1000.0;
    ++run.epochs;
    const auto l = end_offset(p, 0), r = end_offset(p, 1);
    if (l.seconds > run.left.seconds) run.left = l;
    if (r.seconds > run.right.seconds) run.right = r;
  }
  std::lock_guard guard(lock);
  run.result = result;
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  const double run_seconds = argc > 1 ? std::atof(argv[1]) : 8.0;
  const std::int64_t rows_per_second = argc > 2 ? std::atoll(argv[2]) : 128000;
  if (run_seconds <= 0 || rows_per_second <= 0) {
    std::fprintf(stderr, "usage: stream_join_bench [SECONDS [ROWS_PER_SECOND]] (both positive)\n");
    return 2;
  }
  const engine_run engine = run_engine(run_seconds, rows_per_second);
  const auto started = std::chrono::steady_clock::now();
  const double cpu_at_start = thread_cpu_seconds();
  const auto left_ms = rate_times_ms(engine.left, rows_per_second);
  const auto right_ms = rate_times_ms(engine.right, rows_per_second);
  const double making_rows_seconds = bench::seconds_since(started);
  const join_result baseline = hand_join(left_ms, right_ms);
  const double baseline_seconds = bench::seconds_since(started);
  const double baseline_cpu_seconds = thread_cpu_seconds() - cpu_at_start;
  std::printf("{\"bench\":\"stream_join\",\"run\":\"engine\",\"parallelism\":2,\"left_rows\":%zu,\"right_rows\":%zu,"
              "\"epochs\":%zu,\"seconds\":%.4f,\"cpu_seconds\":%.4f,\"rows\":%lld}\n",
              left_ms.size(), right_ms.size(), engine.epochs, engine.seconds, engine.cpu_seconds,
              static_cast<long long>(engine.result.rows));
  std::printf("{\"bench\":\"stream_join\",\"run\":\"hand_loop\",\"seconds\":%.4f,\"making_rows_seconds\":%.4f,"
              "\"cpu_seconds\":%.4f,\"rows\":%lld}\n",
              baseline_seconds, making_rows_seconds, baseline_cpu_seconds, static_cast<long long>(baseline.rows));
  const bool same = engine.result == baseline;
  std::printf("{\"bench\":\"stream_join\",\"ratio\":%.2f,\"cpu_ratio\":%.2f,\"target\":1.5,\"same_result\":%s}\n",
              engine.seconds / std::max(baseline_seconds, 1e-9),
              engine.cpu_seconds / std::max(baseline_cpu_seconds, 1e-9), same ? "true" : "false");
  return same ? 0 : 1;
}
