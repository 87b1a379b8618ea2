// Spark's StructuredNetworkWordCount in C++: lines from a TCP socket (`nc -lk 9999` in another terminal,
// or producers connecting to us with --listen), split into words, counted per batch and as a running
// total. One query in update mode: each epoch foreachBatch gets the running totals of the words the batch
// touched; a word's per-batch count is its new total minus the one it had before.
#include <algorithm>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "example_support.hpp"
#include "flow/connectors/socket.hpp"
#include "flow/session.hpp"

namespace {

const char* const usage =
    "usage: network_wordcount --host H --port P [--listen] [--trigger T] [--output FILE.csv]\n"
    "  --host H, --port P  where to connect (or, with --listen, where to listen; port 0 picks a free one)\n"
    "  --listen            accept producers (e.g. `nc H P`) instead of connecting to a server (`nc -lk P`)\n"
    "  --trigger T         fast (default: as soon as data is there), an interval such as 1s, once, available-now\n"
    "  --output FILE.csv   write the final running totals as word,count when the query ends (SIGINT/SIGTERM)\n";

struct arguments {
  std::string host = "localhost";
  long long port = -1;
  bool listen = false;
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

}  // namespace

int main(int argc, char** argv) {
  using flow::col;
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .text("--host", args.host)
                 .number("--port", args.port, 0, 65535)
                 .toggle("--listen", args.listen);
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
    if (args.listen) {
      auto ports = flow::connectors::listening_socket_ports();
      std::cout << "listening on " << args.host << ":" << (ports.empty() ? args.port : ports.back()) << std::endl;
    } else {
      std::cout << "reading lines from " << args.host << ":" << args.port << std::endl;
    }

    query.await_termination();
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";
    flow::examples::write_output(running->table(), args.common.output, "words");
    return 0;
  });
}
