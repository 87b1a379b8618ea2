// flow::dstream through flow::session: a DStream job over text files (one file per batch) whose every
// output is checked against a plain loop over the same lines, batch by batch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "flow/dstream.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace std::chrono_literals;
using flow::test::error_of;
using flow::test::temp_dir;
using word_count = std::pair<std::string, std::int64_t>;
using counts = std::map<std::string, std::int64_t>;

namespace {

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// What each foreach_rdd of a job received, in batch order.
template <class T>
struct collected {
  std::mutex mutex;
  std::vector<std::vector<T>> batches;
  std::vector<std::int64_t> times;
  void attach(const dstream<T>& stream) {
    stream.foreach_rdd([this](const std::vector<T>& items, std::int64_t time_ms) {
      std::lock_guard<std::mutex> lock(mutex);
      batches.push_back(items);
      times.push_back(time_ms);
    });
  }
};

counts as_counts(const std::vector<word_count>& items) {
  counts out;
  for (const auto& [word, n] : items) {
    CHECK(out.count(word) == 0);
    out[word] = n;
  }
  return out;
}

}  // namespace

TEST_CASE("a DStream word count job over text files matches plain loops batch by batch", "[dstream][actors]") {
  // Six files of Don Quijote's lines: one batch each (maxFilesPerTrigger 1).
  std::string quijote = flow::test::read_file(flow::test::shared_data_dir() / "text" / "quijote.txt");
  if (quijote.starts_with("\xEF\xBB\xBF")) quijote.erase(0, 3);  // the text source drops a byte-order mark
  std::istringstream text(quijote);
  constexpr std::size_t files = 6, lines_per_file = 40;
  std::vector<std::vector<std::string>> lines(files);
  temp_dir dir;
  for (std::size_t f = 0; f < files; ++f) {
    std::string content;
    for (std::string line; lines[f].size() < lines_per_file && std::getline(text, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      lines[f].push_back(line);
      content += line + "\n";
    }
    flow::test::write_file(dir / ("part-" + std::to_string(f) + ".txt"), content);
  }

  session s(session_config{.threads = 2, .parallelism = 2});
  streaming_context ssc(s.context(), 10s);
  auto input = ssc.stream<std::string>(
      s.read_stream().format("text").option("maxFilesPerTrigger", 1).load(dir.path().string()));
  auto words = input.flat_map(words_of);
  auto pairs = words.map([](const std::string& w) { return word_count(w, 1); });
  const auto plus = [](std::int64_t a, std::int64_t b) { return a + b; };
  collected<word_count> per_batch, by_value, windowed, running;
  collected<std::int64_t> long_words, in_window, window_counts, line_counts;
  collected<std::string> top, first_sightings;
  per_batch.attach(pairs.reduce_by_key(plus));
  by_value.attach(words.count_by_value());
  long_words.attach(words.filter([](const std::string& w) { return w.size() > 8; }).union_with(words.filter([](const std::string& w) {
                                 return w.size() > 10;
                               })).count());
  top.attach(words.transform([](std::vector<std::string> all) {
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    all.resize(std::min<std::size_t>(all.size(), 3));
    return all;
  }));
  in_window.attach(words.window(20s).count());
  windowed.attach(pairs.reduce_by_key_and_window(plus, std::minus<std::int64_t>(), 30s, 10s,
                                                  [](const word_count& w) { return w.second > 0; }));
  window_counts.attach(words.count_by_window(30s, 20s));
  running.attach(pairs.update_state_by_key<std::int64_t>(
      [](const std::vector<std::int64_t>& values, const std::optional<std::int64_t>& state) -> std::optional<std::int64_t> {
        std::int64_t total = state.value_or(0);
        for (auto v : values) total += v;
        return total;
      }));
  first_sightings.attach(pairs.map_with_state(state_spec<std::string, std::int64_t, bool, std::string>{
      [](const std::string& word, const std::optional<std::int64_t>&, dstream_state<bool>& seen) {
        const bool first = !seen.exists();
        seen.update(true);
        return first ? word : std::string();
      },
      std::nullopt}));
  line_counts.attach(input.count());
  std::ostringstream printed;
  words.print(10, printed);

  query_options options;
  options.trigger = available_now();
  ssc.start(options);
  REQUIRE(ssc.await_termination(60s));
  REQUIRE_FALSE(ssc.query().exception());

  // The plain loops.
  std::vector<counts> expected_batches(files);
  std::vector<std::vector<std::string>> batch_words(files);
  for (std::size_t f = 0; f < files; ++f) {
    for (const auto& line : lines[f]) {
      for (const auto& w : words_of(line)) {
        ++expected_batches[f][w];
        batch_words[f].push_back(w);
      }
    }
  }
  REQUIRE(per_batch.batches.size() == files);
  REQUIRE(window_counts.batches.size() == files / 2);
  counts totals;
  std::set<std::string> seen;
  for (std::size_t f = 0; f < files; ++f) {
    CAPTURE(f);
    const std::int64_t b = static_cast<std::int64_t>(f) + 1;
    CHECK(per_batch.times[f] == per_batch.times[0] + static_cast<std::int64_t>(f) * 10000);
    CHECK(per_batch.times[f] % 10000 == 0);
    CHECK(as_counts(per_batch.batches[f]) == expected_batches[f]);
    CHECK(as_counts(by_value.batches[f]) == expected_batches[f]);
    std::int64_t long_expected = 0;
    for (const auto& w : batch_words[f]) long_expected += (w.size() > 8) + (w.size() > 10);
    CHECK(long_words.batches[f] == std::vector<std::int64_t>{long_expected});
    std::set<std::string> distinct(batch_words[f].begin(), batch_words[f].end());
    CHECK(top.batches[f] == std::vector<std::string>(distinct.begin(), std::next(distinct.begin(), 3)));
    CHECK(line_counts.batches[f] == std::vector<std::int64_t>{static_cast<std::int64_t>(lines[f].size())});
    // window(20 s): this batch and the one before; sliding every batch.
    const std::size_t window_words = batch_words[f].size() + (f > 0 ? batch_words[f - 1].size() : 0);
    CHECK(in_window.batches[f] == std::vector<std::int64_t>{static_cast<std::int64_t>(window_words)});
    counts last_three;
    for (std::size_t g = f >= 2 ? f - 2 : 0; g <= f; ++g) {
      for (const auto& [w, n] : expected_batches[g]) last_three[w] += n;
    }
    CHECK(as_counts(windowed.batches[f]) == last_three);
    // count_by_window(30 s, 20 s): a batch every second batch (the only ones foreach_rdd sees), the words of
    // the last three.
    std::int64_t three_batches = 0;
    for (const auto& [w, n] : last_three) three_batches += n;
    if (b % 2 == 0) CHECK(window_counts.batches[f / 2] == std::vector<std::int64_t>{three_batches});
    for (const auto& [w, n] : expected_batches[f]) totals[w] += n;
    CHECK(as_counts(running.batches[f]) == totals);
    std::vector<std::string> new_words;
    for (const auto& w : batch_words[f]) {
      if (seen.insert(w).second) new_words.push_back(w);
    }
    auto firsts = first_sightings.batches[f];
    std::erase(firsts, std::string());
    std::sort(firsts.begin(), firsts.end());
    std::sort(new_words.begin(), new_words.end());
    CHECK(firsts == new_words);
  }
  // print(): Spark's header with the batch time, ten elements, then "..." for the rest of the batch.
  std::ostringstream first_batch;
  first_batch << "-------------------------------------------\nTime: " << per_batch.times[0]
              << " ms\n-------------------------------------------\n";
  for (std::size_t i = 0; i < 10; ++i) first_batch << batch_words[0][i] << "\n";
  first_batch << "...\n\n";
  CHECK(printed.str().starts_with(first_batch.str()));
}

TEST_CASE("dstream refuses windows off the batch interval and a job without outputs", "[dstream][actors]") {
  session s(session_config{.threads = 1, .parallelism = 1});
  temp_dir dir;
  streaming_context ssc(s.context(), 10s);
  auto lines = ssc.text_file_stream(dir.path().string());
  CHECK(error_of([&] { lines.window(25s); }) ==
        "dstream: the window length (25000 ms) must be a positive multiple of the batch interval (10000 ms)");
  CHECK(error_of([&] { lines.count_by_window(30s, 15s); }).find("the slide (15000 ms) must be") != std::string::npos);
  auto sliding = lines.window(40s, 20s);
  CHECK(error_of([&] { sliding.window(30s); }) ==
        "dstream: the window length (30000 ms) must be a multiple of the stream's slide (20000 ms)");
  CHECK(error_of([&] { lines.union_with(sliding); }).find("the streams slide differently (1 and 2 batches)") != std::string::npos);
  streaming_context other(s.context(), 10s);
  CHECK(error_of([&] { lines.union_with(other.text_file_stream(dir.path().string())); })
            .find("different streaming contexts") != std::string::npos);
  CHECK(error_of([&] { ssc.start(); }).find("no output operations registered") != std::string::npos);
  CHECK(error_of([&] { ssc.query(); }).find("call start() first") != std::string::npos);
  CHECK(error_of([&] { streaming_context(s.context(), 0ms); }).find("batch interval must be positive") != std::string::npos);
  CHECK(error_of([&] { ssc.stream<std::int64_t>(s.read_stream().format("text").load(dir.path().string())); })
            .find("do not start with the element's (int64)") != std::string::npos);
}

TEST_CASE("dstream batches run at every interval: a window empties while the socket is idle", "[dstream][actors][socket]") {
  flow::test::listener server;
  session s(session_config{.threads = 2, .parallelism = 2});
  streaming_context ssc(s.context(), 100ms);
  auto pairs = ssc.socket_text_stream("127.0.0.1", server.port()).flat_map(words_of).map([](const std::string& w) {
    return word_count(w, 1);
  });
  collected<word_count> windowed;
  windowed.attach(pairs.reduce_by_key_and_window(
      [](std::int64_t a, std::int64_t b) { return a + b; }, std::minus<std::int64_t>(), 300ms, 100ms,
      [](const word_count& w) { return w.second > 0; }));
  ssc.start();
  auto peer = server.accept();
  REQUIRE(peer.is_open());
  REQUIRE(peer.send("to be or not to be\n"));
  const counts sent{{"to", 2}, {"be", 2}, {"or", 1}, {"not", 1}};
  auto seen_at = [&](const counts& wanted) -> std::optional<std::size_t> {
    std::lock_guard<std::mutex> lock(windowed.mutex);
    for (std::size_t i = 0; i < windowed.batches.size(); ++i) {
      if (as_counts(windowed.batches[i]) == wanted) return i;
    }
    return std::nullopt;
  };
  REQUIRE(flow::test::eventually([&] { return seen_at(sent).has_value(); }));
  // Nothing more arrives: three batches later the words have left the window and their keys are gone.
  const std::size_t first = *seen_at(sent);
  REQUIRE(flow::test::eventually([&] {
    std::lock_guard<std::mutex> lock(windowed.mutex);
    return windowed.batches.size() >= first + 5;
  }));
  ssc.stop();
  std::lock_guard<std::mutex> lock(windowed.mutex);
  // The words came in one batch (or were split between two): the window held them for three batches.
  for (std::size_t i = first + 3; i < windowed.batches.size(); ++i) CHECK(windowed.batches[i].empty());
  for (std::size_t i = 1; i < windowed.times.size(); ++i) CHECK(windowed.times[i] - windowed.times[i - 1] == 100);
}

namespace {

// File f of the restart test: "common" f + 1 times, then its own word and the one of the file before.
std::vector<std::string> restart_file_words(std::size_t f) {
  std::vector<std::string> words(f + 1, "common");
  // Appended, not "w" + std::to_string(f): GCC 12 warns wrongly (-Wrestrict) about that form.
  words.emplace_back("w").append(std::to_string(f));
  if (f > 0) words.emplace_back("w").append(std::to_string(f - 1));
  return words;
}

// Runs the restart test's job over what dir holds now to its end, on the checkpoint: the windowed counts
// (30 s every 10 s, incremental) and the running totals of each batch.
void run_restartable_job(const temp_dir& dir, const std::string& checkpoint, collected<word_count>& windowed,
                         collected<word_count>& running) {
  session s(session_config{.threads = 2, .parallelism = 2});
  streaming_context ssc(s.context(), 10s);
  auto pairs = ssc.stream<std::string>(s.read_stream().format("text").option("maxFilesPerTrigger", 1).load(dir.path().string()))
                   .map([](const std::string& w) { return word_count(w, 1); });
  windowed.attach(pairs.reduce_by_key_and_window([](std::int64_t a, std::int64_t b) { return a + b; },
                                                 std::minus<std::int64_t>(), 30s, 10s,
                                                 [](const word_count& w) { return w.second > 0; }));
  running.attach(pairs.update_state_by_key<std::int64_t>(
      [](const std::vector<std::int64_t>& values, const std::optional<std::int64_t>& state) {
        return std::optional<std::int64_t>(state.value_or(0) + static_cast<std::int64_t>(values.size()));
      }));
  query_options options;
  options.trigger = available_now();
  options.checkpoint_location = checkpoint;
  ssc.start(options);
  REQUIRE(ssc.await_termination(60s));
  REQUIRE_FALSE(ssc.query().exception());
}

}  // namespace

TEST_CASE("a DStream job restarted on its checkpoint continues its windows and states", "[dstream][actors]") {
  temp_dir dir, checkpoint;
  auto write_files = [&](std::size_t first, std::size_t last) {
    for (std::size_t f = first; f < last; ++f) {
      std::string content;
      for (const auto& w : restart_file_words(f)) content += w + "\n";
      flow::test::write_file(dir / ("part-" + std::to_string(f) + ".txt"), content);
    }
  };
  collected<word_count> windowed, running;
  write_files(0, 3);
  run_restartable_job(dir, checkpoint.path().string(), windowed, running);
  REQUIRE(windowed.batches.size() == 3);
  write_files(3, 6);
  collected<word_count> windowed_after, running_after;
  run_restartable_job(dir, checkpoint.path().string(), windowed_after, running_after);
  // The restarted job ran batches 4 to 6 only, its windows reaching back into the first run's batches.
  REQUIRE(windowed_after.batches.size() == 3);
  counts totals;
  for (std::size_t f = 0; f < 6; ++f) {
    CAPTURE(f);
    for (const auto& w : restart_file_words(f)) ++totals[w];
    counts last_three;
    for (std::size_t g = f >= 2 ? f - 2 : 0; g <= f; ++g) {
      for (const auto& w : restart_file_words(g)) ++last_three[w];
    }
    const auto& window_batches = f < 3 ? windowed.batches : windowed_after.batches;
    const auto& running_batches = f < 3 ? running.batches : running_after.batches;
    CHECK(as_counts(window_batches[f % 3]) == last_three);
    CHECK(as_counts(running_batches[f % 3]) == totals);
  }
}

TEST_CASE("a DStream job's output functions run one at a time, as Spark's, never interleaved", "[dstream][actors]") {
  temp_dir dir;
  for (int day = 0; day < 6; ++day)
    flow::test::write_file(dir / ("day" + std::to_string(day) + ".txt"), "to be or not to be\n");
  session s(session_config{.threads = 4, .parallelism = 2});
  streaming_context ssc(s.context(), 10s);
  auto words = ssc.stream<std::string>(s.read_stream().format("text").option("maxFilesPerTrigger", 1).load(dir.path().string()));
  std::atomic<int> running{0}, most_at_once{0}, calls{0};
  auto slow_output = [&](const std::vector<std::string>&, std::int64_t) {
    const int now = ++running;
    int seen = most_at_once.load();
    while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {}
    std::this_thread::sleep_for(20ms);  // long enough for the other outputs' sinks to call theirs meanwhile
    --running;
    ++calls;
  };
  for (int output = 0; output < 3; ++output) words.foreach_rdd(slow_output);
  query_options options;
  options.trigger = available_now();
  ssc.start(options);
  REQUIRE(ssc.await_termination(60s));
  REQUIRE_FALSE(ssc.query().exception());
  CHECK(calls.load() == 3 * 6);
  CHECK(most_at_once.load() == 1);
}
