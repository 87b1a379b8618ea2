// State bytes per key of the built-in aggregation (count by key, parallelism 1, in-memory state store) for
// 1 M and 10 M distinct keys, int64 keys and 12-byte string keys, against the raw bytes of a key and its
// value (issue 12 target: at most 2x). The state's size is the query progress's memoryUsedBytes; the bench
// checks that every key was counted once. Prints one JSON line per run; exits 1 when a result is wrong, 2
// on input it cannot use.
// Usage: state_bench [KEYS...] (default: 1000000 10000000)
#include <cstdio>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "batches_source.hpp"
#include "bench_input.hpp"
#include "flow/session.hpp"

namespace {

constexpr std::size_t rows_per_batch = 65536;

flow::schema_ptr keys_schema(flow::type_id key_type) { return flow::make_schema({{"k", key_type, false}}); }

std::string string_key(std::size_t i) {
  char text[16];
  std::snprintf(text, sizeof text, "key-%08zu", i);
  return text;
}

// Every key once, in batches.
std::vector<flow::batch> make_keys(std::size_t keys, flow::type_id key_type) {
  std::vector<flow::batch> batches;
  for (std::size_t first = 0; first < keys; first += rows_per_batch) {
    const std::size_t rows = std::min(rows_per_batch, keys - first);
    flow::column_builder column(key_type, rows);
    for (std::size_t i = first; i < first + rows; ++i) {
      if (key_type == flow::type_id::int64) column.append_int(static_cast<std::int64_t>(i) * 7919);
      else column.append_string(string_key(i));
    }
    batches.emplace_back(keys_schema(key_type), std::vector<flow::column>{column.finish()});
  }
  return batches;
}

struct run_figures {
  double state_bytes = 0;
  std::size_t groups = 0;  // rows the sink received
  bool counts_right = true;
};

run_figures run_count(const std::string& format) {
  flow::session_config config;
  config.parallelism = 1;
  flow::session session(config);
  std::mutex mutex;
  run_figures fig;
  auto query = session.read_stream()
                   .format(format)
                   .load()
                   .group_by({flow::col("k")})
                   .count()
                   .write_stream()
                   .output_mode("update")
                   .trigger(flow::available_now())
                   .foreach_batch([&](const flow::batch& rows, std::int64_t) {
                     std::lock_guard<std::mutex> lock(mutex);
                     fig.groups += rows.num_rows();
                     for (std::size_t r = 0; r < rows.num_rows(); ++r) fig.counts_right = fig.counts_right && rows.col(1).ints()[r] == 1;
                   })
                   .start();
  query.await_termination();
  if (auto failure = query.exception()) throw std::runtime_error("the query failed: " + *failure);
  const auto progress = query.last_progress();
  if (!progress) throw std::runtime_error("the query made no progress report");
  fig.state_bytes = bench::json_number(*progress, "memoryUsedBytes");
  return fig;
}

int run_bench(int argc, char** argv) {
  std::vector<std::size_t> key_counts;
  for (int i = 1; i < argc; ++i) key_counts.push_back(bench::count_argument(argv[i], "a key count"));
  if (key_counts.empty()) key_counts = {1'000'000, 10'000'000};
  bench::batches_source int_keys("state-bench-int-keys", keys_schema(flow::type_id::int64));
  bench::batches_source string_keys("state-bench-string-keys", keys_schema(flow::type_id::string));
  bool ok = true;
  for (auto keys : key_counts) {
    for (auto key_type : {flow::type_id::int64, flow::type_id::string}) {
      const bool ints = key_type == flow::type_id::int64;
      auto& source = ints ? int_keys : string_keys;
      source.set(make_keys(keys, key_type));
      const run_figures fig = run_count(ints ? "state-bench-int-keys" : "state-bench-string-keys");
      source.set({});
      const double raw_bytes_per_key = (ints ? 8.0 : static_cast<double>(string_key(0).size())) + 8.0;  // key + count
      const double bytes_per_key = fig.state_bytes / static_cast<double>(keys);
      const bool right = fig.groups == keys && fig.counts_right;
      ok = ok && right;
      std::printf("{\"bench\":\"state\",\"keys\":%zu,\"key_type\":\"%s\",\"state_bytes\":%.0f,\"state_bytes_per_key\":%.1f,"
                  "\"raw_bytes_per_key\":%.1f,\"ratio_to_raw\":%.2f,\"results_right\":%s}\n",
                  keys, ints ? "int64" : "string", fig.state_bytes, bytes_per_key, raw_bytes_per_key,
                  bytes_per_key / raw_bytes_per_key, right ? "true" : "false");
      std::fflush(stdout);
    }
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("state_bench", [&] { return run_bench(argc, argv); });
}
