// Spark's StructuredNetworkWordCount in C++: lines from a TCP socket (`nc -lk 9999` in another terminal,
// or producers connecting to us with --listen), split into words, counted per batch and as a running
// total. One query in update mode: each epoch foreachBatch gets the running totals of the words the batch
// touched; a word's per-batch count is its new total minus the one it had before.
// With --dstream it is Spark Streaming's classic windowed word count instead, in the DStream API
// (flow/dstream.hpp): the counts of the last 30 s every 10 s, kept incrementally with an inverse function.
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "example_support.hpp"
#include "flow/connectors/socket.hpp"
#include "flow/dstream.hpp"
#include "flow/session.hpp"

namespace {

const char* const usage =
    "usage: network_wordcount --host H --port P [--listen] [--dstream] [--trigger T] [--output FILE.csv]\n"
    "  --host H, --port P  where to connect (or, with --listen, where to listen; port 0 picks a free one)\n"
    "  --listen            accept producers (e.g. `nc H P`) instead of connecting to a server (`nc -lk P`)\n"
    "  --dstream           the DStream word count: every 10 s the counts of the last 30 s (reduce_by_key_and_window\n"
    "                      with an inverse function); --trigger is then the batch interval (default 1s), dividing 10 s\n"
    "  --trigger T         fast (default: as soon as data is there), an interval such as 1s, once, available-now\n"
    "  --output FILE.csv   write the final running totals (--dstream: the last window's counts) as word,count when\n"
    "                      the query ends (SIGINT/SIGTERM)\n";

struct arguments {
  std::string host = "localhost";
  long long port = -1;
  bool listen = false;
  bool dstream = false;
  flow::examples::example_options common{flow::trigger{}, ""};  // --trigger (default: fast), --output
};

using word_counts = std::vector<std::pair<std::string, std::int64_t>>;

// Most frequent first, then by word: a stable order for the console and the output file.
flow::batch to_table(word_counts rows) {
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::string> words;
  std::vector<std::int64_t> counts;
  for (auto& [word, count] : rows) {
    words.push_back(word);
    counts.push_back(count);
  }
  auto schema = flow::make_schema({{"word", flow::type_id::string, false}, {"count", flow::type_id::int64, false}});
  return flow::batch(schema, {flow::make_string_column(words), flow::make_int_column(counts)});
}

// The running totals, updated from each epoch's changed groups.
class totals {
 public:
  void on_batch(const flow::batch& updated, std::int64_t epoch) {
    std::lock_guard<std::mutex> lock(mutex_);
    word_counts in_batch, running;
    std::int64_t words_in_batch = 0;
    for (std::size_t r = 0; r < updated.num_rows(); ++r) {
      std::string word(updated.col(0).str(r));
      std::int64_t total = updated.col(1).ints()[r];
      std::int64_t& before = totals_[word];
      in_batch.emplace_back(word, total - before);
      running.emplace_back(word, total);
      words_in_batch += total - before;
      words_so_far_ += total - before;
      before = total;
    }
    std::cout << "-------------------------------------------\n"
              << "Batch: " << epoch << " (" << words_in_batch << " words, " << in_batch.size() << " distinct)\n"
              << "-------------------------------------------\n"
              << "counts in this batch:\n"
              << flow::format_table(to_table(std::move(in_batch)), 10) << "running totals of these words:\n"
              << flow::format_table(to_table(std::move(running)), 10) << "total words so far: " << words_so_far_
              << std::endl;
  }

  flow::batch table() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return to_table(word_counts(totals_.begin(), totals_.end()));
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t> totals_;
  std::int64_t words_so_far_ = 0;
};

// The last window's counts (--dstream), most frequent first.
class window_counts {
 public:
  void on_window(word_counts counts) {
    std::int64_t words = 0;
    for (const auto& [word, n] : counts) words += n;
    std::lock_guard<std::mutex> lock(mutex_);
    std::cout << "words in the window: " << words << " (" << counts.size() << " distinct)" << std::endl;
    last_ = std::move(counts);
  }
  flow::batch table() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return to_table(last_);
  }

 private:
  mutable std::mutex mutex_;
  word_counts last_;
};

// Maximal runs of non-whitespace characters, as the structured query's split on \s+.
std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> words;
  const char* blanks = " \t\n\v\f\r";
  for (std::size_t pos = line.find_first_not_of(blanks); pos != std::string::npos; pos = line.find_first_not_of(blanks, pos)) {
    const std::size_t end = std::min(line.find_first_of(blanks, pos), line.size());
    words.push_back(line.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

// Spark's windowed NetworkWordCount: lines → words → (word, 1) → counts over 30 s every 10 s, the counts
// of the batches leaving the window subtracted (words whose count returns to 0 dropped).
int run_dstream(flow::session& session, const flow::data_frame& lines, const flow::trigger& when, const std::string& output,
                const std::function<void()>& announce, flow::examples::signal_stopper& stopper) {
  using namespace std::chrono_literals;
  if (when.kind != flow::trigger_kind::as_fast_as_possible && when.kind != flow::trigger_kind::processing_time)
    throw flow::cli::usage_error("--dstream needs an interval as --trigger (the batch interval, e.g. 1s)");
  const auto interval = when.kind == flow::trigger_kind::processing_time ? when.interval : std::chrono::milliseconds(1000);
  flow::streaming_context ssc(session.context(), interval);
  auto counts = ssc.stream<std::string>(lines)
                    .flat_map(words_of)
                    .map([](const std::string& word) { return std::pair<std::string, std::int64_t>(word, 1); })
                    .reduce_by_key_and_window(std::plus<std::int64_t>(), std::minus<std::int64_t>(), 30s, 10s,
                                              [](const std::pair<std::string, std::int64_t>& w) { return w.second > 0; })
                    .transform([](word_counts all) {
                      std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
                        return a.second != b.second ? a.second > b.second : a.first < b.first;
                      });
                      return all;
                    });
  counts.print();
  auto last = std::make_shared<window_counts>();
  counts.foreach_rdd([last](const word_counts& window, std::int64_t) { last->on_window(window); });
  ssc.start();
  stopper.stop_on_signal(ssc.query());
  announce();
  std::cout << "batches of " << interval.count() << " ms; the counts of the last 30 s every 10 s" << std::endl;
  ssc.await_termination();
  flow::examples::write_output(last->table(), output, "words");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using flow::col;
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .text("--host", args.host)
                 .number("--port", args.port, 0, 65535)
                 .toggle("--listen", args.listen)
                 .toggle("--dstream", args.dstream);
  return flow::examples::run_example("network_wordcount", argc, argv, cli, [&](flow::examples::signal_stopper& stopper) {
    // First: with --flow.role=worker the session serves its driver and never returns, whatever else is given.
    flow::session session{argc, argv};
    if (args.port < 0) throw flow::cli::usage_error("--port is required");
    auto lines = session.read_stream()
                     .format("socket")
                     .option("host", args.host)
                     .option("port", args.port)
                     .option("mode", args.listen ? "server" : "client")
                     .load();
    auto announce = [&] {
      if (args.listen) {
        auto ports = flow::connectors::listening_socket_ports();
        std::cout << "listening on " << args.host << ":" << (ports.empty() ? args.port : ports.back()) << std::endl;
      } else {
        std::cout << "reading lines from " << args.host << ":" << args.port << std::endl;
      }
    };
    if (args.dstream) return run_dstream(session, lines, args.common.when, args.common.output, announce, stopper);
    // Words are maximal runs of non-whitespace characters, counted as they are.
    auto counts = lines.select({flow::explode(flow::split(col("value"), "\\s+")).as("word")})
                      .group_by({col("word")})
                      .count();
    auto running = std::make_shared<totals>();
    auto query = counts.write_stream()
                     .output_mode("update")
                     .trigger(args.common.when)
                     .foreach_batch([running](const flow::batch& rows, std::int64_t epoch) { running->on_batch(rows, epoch); })
                     .start();
    stopper.stop_on_signal(query);
    announce();

    query.await_termination();
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";
    flow::examples::write_output(running->table(), args.common.output, "words");
    return 0;
  });
}
