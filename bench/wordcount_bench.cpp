// Word count (split on whitespace, count per word) over 144 MiB of text made of copies of the shared
// data's text/quijote.txt: libflow's text file source -> explode(split(value, "\\s+")) -> count by word, at
// parallelism 1 and 2, against a hand-written single-threaded loop over the same bytes in this process
// (issue 12 targets: parallelism 1 at least 0.8x the loop's throughput, parallelism 2 at least 1.7x
// parallelism 1). The runs take turns, round by round; the median of each counts. Prints one JSON line per
// run (wall and process CPU seconds: on a busy machine the CPU ratio is the fairer one at parallelism 1);
// exits 1 when a result differs from the loop's, 2 on input it cannot use.
// Usage: wordcount_bench [TEXT_FILE [REPEATS [MIB]]] (default: the shared data's text/quijote.txt, 5, 144)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "bench_input.hpp"
#include "compare_runs.hpp"
#include "flow/session.hpp"

namespace fs = std::filesystem;

namespace {

using counts = std::unordered_map<std::string, std::int64_t>;

using run_figures = bench::timed_result<counts>;

bool is_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// The hand-written loop: one pass over the bytes, words as views into them, one hash map.
run_figures run_hand_loop(const std::string& text) {
  const double cpu_started = bench::process_cpu_seconds();
  auto started = std::chrono::steady_clock::now();
  std::unordered_map<std::string_view, std::int64_t> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_whitespace(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_whitespace(text[i])) ++i;
    if (i > start) ++words[std::string_view(text).substr(start, i - start)];
  }
  run_figures fig;
  fig.seconds = bench::seconds_since(started);
  fig.cpu_seconds = bench::process_cpu_seconds() - cpu_started;
  for (const auto& [word, count] : words) fig.result.emplace(word, count);
  return fig;
}

// The same count as a streaming query over the directory holding the text, one epoch (available-now).
run_figures run_libflow(const fs::path& dir, std::size_t parallelism) {
  flow::session_config config;
  config.parallelism = parallelism;
  flow::session session(config);
  auto lines = session.read_stream().format("text").load(dir.string());
  auto words = lines.select({flow::explode(flow::split(flow::col("value"), "\\s+")).as("word")});
  std::mutex mutex;
  run_figures fig;
  const double cpu_started = bench::process_cpu_seconds();
  auto started = std::chrono::steady_clock::now();
  auto query = words.group_by({flow::col("word")})
                   .count()
                   .write_stream()
                   .output_mode("update")
                   .trigger(flow::available_now())
                   .foreach_batch([&](const flow::batch& rows, std::int64_t) {
                     std::lock_guard<std::mutex> lock(mutex);
                     for (std::size_t r = 0; r < rows.num_rows(); ++r)
                       fig.result[std::string(rows.col(0).str(r))] = rows.col(1).ints()[r];
                   })
                   .start();
  query.await_termination();
  fig.seconds = bench::seconds_since(started);
  fig.cpu_seconds = bench::process_cpu_seconds() - cpu_started;
  if (auto failure = query.exception()) throw std::runtime_error("the query failed: " + *failure);
  return fig;
}

int run_bench(int argc, char** argv) {
  const std::string usage = "wordcount_bench [TEXT_FILE [REPEATS [MIB]]]";
  const fs::path corpus = argc > 1 ? fs::path(argv[1]) : bench::shared_data_dir() / "text" / "quijote.txt";
  const std::size_t repeats = argc > 2 ? bench::count_argument(argv[2], "the repeat count (second argument)") : 5;
  const std::size_t mib = argc > 3 ? bench::count_argument(argv[3], "the size in MiB (third argument)") : 144;
  std::string piece = bench::read_file(corpus, "name a text file (usage: " + usage + "), or " + bench::shared_data_hint());
  // The text source drops a byte-order mark at the start of a file; the copies have none at all.
  if (piece.starts_with("\xEF\xBB\xBF")) piece.erase(0, 3);
  if (piece.empty()) throw bench::input_error("the text file " + bench::shown(corpus) + " is empty; name another one");

  // Whole copies of the corpus up to the size, so that no word is cut.
  std::string text;
  text.reserve(mib * 1024 * 1024 + piece.size());
  while (text.size() < mib * 1024 * 1024) text += piece;
  const fs::path dir = fs::temp_directory_path() / ("flow-wordcount-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  struct remove_dir {
    fs::path dir;
    ~remove_dir() { std::error_code ec; fs::remove_all(dir, ec); }
  } cleanup{dir};
  {
    std::ofstream out(dir / "text.txt", std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) throw std::runtime_error("cannot write " + bench::shown(dir / "text.txt"));
  }
  // Dated a minute back: the file source would wait fileStableMs (1 s) for a file written just now.
  fs::last_write_time(dir / "text.txt", fs::last_write_time(dir / "text.txt") - std::chrono::minutes(1));

  const double text_mib = static_cast<double>(text.size()) / (1024.0 * 1024.0);
  counts expected;
  const auto runs = bench::compare_with_hand_loop(
      repeats, [&](std::size_t parallelism) { return parallelism == 0 ? run_hand_loop(text) : run_libflow(dir, parallelism); }, expected);
  const double hand_seconds = bench::median(runs[0].seconds);
  const double hand_cpu_seconds = bench::median(runs[0].cpu_seconds);
  const double p1_seconds = bench::median(runs[1].seconds);
  bool ok = true;
  for (const auto& run : runs) {
    const double seconds = bench::median(run.seconds);
    ok = ok && run.matches;
    std::printf("{\"bench\":\"wordcount\",\"run\":\"%s\",\"mib\":%.1f,\"distinct_words\":%zu,\"median_seconds\":%.4f,"
                "\"median_cpu_seconds\":%.4f,\"mib_per_s\":%.1f,\"ratio_to_hand_loop\":%.3f,\"cpu_ratio_to_hand_loop\":%.3f,\"speedup_over_parallelism_1\":%.3f,\"matches\":%s}\n",
                run.name, text_mib, expected.size(), seconds, bench::median(run.cpu_seconds), text_mib / seconds, hand_seconds / seconds,
                hand_cpu_seconds / bench::median(run.cpu_seconds),
                p1_seconds / seconds, run.matches ? "true" : "false");
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("wordcount_bench", [&] { return run_bench(argc, argv); });
}
