// The socket source and sink through flow::session, and the network_wordcount example as a user runs it:
// real TCP peers on 127.0.0.1 that the tests run, word counts checked against an independent count.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "flow/connectors/socket.hpp"
#include "flow/registry.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using flow::col;
using namespace flow::test;

namespace {

// The first `count` lines of Don Quijote with their CRLF, the byte-order mark included.
std::string quijote_lines(std::size_t count) {
  const std::string text = flow::test::read_file(flow::test::shared_data_dir() / "text" / "quijote.txt");
  std::size_t end = 0;
  for (std::size_t i = 0; i < count; ++i) end = text.find('\n', end) + 1;
  return text.substr(0, end);
}

// The independent count: maximal runs of bytes other than ASCII whitespace, after the byte-order mark.
std::map<std::string, std::int64_t> count_words(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::map<std::string, std::int64_t> counts;
  std::size_t pos = 0;
  const char* blanks = " \t\n\v\f\r";
  while ((pos = text.find_first_not_of(blanks, pos)) != std::string_view::npos) {
    std::size_t end = std::min(text.find_first_of(blanks, pos), text.size());
    ++counts[std::string(text.substr(pos, end - pos))];
    pos = end;
  }
  return counts;
}

std::int64_t total_of(const std::map<std::string, std::int64_t>& counts) {
  std::int64_t total = 0;
  for (const auto& [word, n] : counts) total += n;
  return total;
}

}  // namespace

TEST_CASE("word count over a socket stream matches an independent count of Don Quijote", "[actors][socket]") {
  const std::string text = quijote_lines(400);
  const auto expected = count_words(text);
  listener server;
  flow::session session;
  auto counts = session.read_stream()
                    .format("socket")
                    .option("host", "127.0.0.1")
                    .option("port", static_cast<int>(server.port()))
                    .load()
                    .select({flow::explode(flow::split(col("value"), "\\s+")).as("word")})
                    .group_by({col("word")})
                    .count();
  auto query = counts.write_stream().format("memory").query_name("socket_words").output_mode("complete").start();
  auto peer = server.accept();
  REQUIRE(peer.is_open());
  // In uneven pieces, so lines straddle reads and epochs.
  for (std::size_t at = 0; at < text.size(); at += 7919) REQUIRE(peer.send(std::string_view(text).substr(at, 7919)));

  std::map<std::string, std::int64_t> actual;
  REQUIRE(eventually([&] {
    actual = counts_of(session.sql("SELECT word, count FROM socket_words").collect_batch());
    return total_of(actual) == total_of(expected);
  }));
  CHECK(actual == expected);
  CHECK(expected.size() > 1000);
  query.process_all_available();  // the table is written before the epoch's progress
  auto progress = query.last_progress();
  REQUIRE(progress);
  CHECK_THAT(*progress, Catch::Contains("\"connected\":1") && Catch::Contains("TextSocketSource[host: 127.0.0.1"));
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("a socket source that cannot connect says so in its status and idle progress", "[actors][socket][progress]") {
  std::uint16_t closed_port;
  {
    listener gone;
    closed_port = gone.port();
  }
  flow::session_config config;
  config.no_data_progress_interval = std::chrono::milliseconds(100);
  flow::session session(config);
  auto query = session.read_stream()
                   .format("socket")
                   .option("host", "127.0.0.1")
                   .option("port", static_cast<int>(closed_port))
                   .option("reconnectInitialMs", 20)
                   .option("reconnectMaxMs", 50)
                   .load()
                   .write_stream()
                   .format("noop")
                   .start();
  const std::string refused = "cannot connect to 127.0.0.1:" + std::to_string(closed_port);
  REQUIRE(eventually([&] { return query.status().message.find(refused) != std::string::npos; }));
  CHECK_THAT(query.status().message, Catch::StartsWith("Waiting for data to arrive (TextSocketSource["));
  REQUIRE(eventually([&] {
    auto last = query.last_progress();
    return last && last->find("\"numConnectFailures\":0") == std::string::npos;
  }));
  CHECK_THAT(*query.last_progress(), Catch::Contains("\"connected\":0") && Catch::Contains("\"numInputRows\":0"));
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("a listening socket source feeds several producers' lines to a socket sink", "[actors][socket]") {
  listener consumer;
  flow::session session;
  auto lines = session.read_stream().format("socket").option("host", "127.0.0.1").option("port", 0)
                   .option("mode", "server").load();
  auto query = lines.where(col("value") != flow::lit(std::string("skip")))
                   .write_stream()
                   .format("socket")
                   .option("host", std::string("127.0.0.1"))  // a const char* would pick the bool overload
                   .option("port", static_cast<long long>(consumer.port()))
                   .start();
  auto ports = flow::connectors::listening_socket_ports();
  REQUIRE(ports.size() == 1);

  constexpr int producers = 3, per_producer = 500;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([p, port = ports.back()] {
      auto peer = connect_to(port);
      for (int i = 0; i < per_producer; ++i)
        peer.send(std::string("p").append(std::to_string(p)).append("-").append(std::to_string(i)).append("\nskip\n"));
    });
  for (auto& t : threads) t.join();  // a few kilobytes each: the kernel takes them at once
  auto out = consumer.accept();
  INFO("query failure: " << query.exception().value_or("none") << ", progress: " << query.last_progress().value_or("none"));
  REQUIRE(out.is_open());
  auto received = out.receive_lines(producers * per_producer);
  std::map<std::string, int> seen;
  std::istringstream in(received);
  for (std::string line; std::getline(in, line);) ++seen[line];
  CHECK(seen.size() == producers * per_producer);
  CHECK(seen.count("skip") == 0);
  CHECK(seen["p2-499"] == 1);
  query.stop();
  CHECK_FALSE(query.exception());
}

namespace {

struct finished {
  int status;       // the exit status, -1 when the example did not end within 30 s
  std::string log;  // its stdout
};

// Runs the example with its stdout in log; `drive` gets it while it runs and must end it.
finished run_wordcount(std::vector<std::string> args, const fs::path& log, const std::function<void(child_process&)>& drive) {
  child_process example(FLOW_NETWORK_WORDCOUNT_EXAMPLE, std::move(args), log);
  drive(example);
  int status = example.wait_exit(30s);
  return {status, example.output()};
}

std::map<std::string, std::int64_t> read_word_counts(const fs::path& csv) {
  std::istringstream in(flow::test::read_file(csv));
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "word,count");
  std::map<std::string, std::int64_t> counts;
  while (std::getline(in, line)) {
    auto comma = line.rfind(',');
    std::string word = line.substr(0, comma);
    if (word.size() >= 2 && word.front() == '"') word = std::regex_replace(word.substr(1, word.size() - 2), std::regex("\"\""), "\"");
    counts[word] = std::stoll(line.substr(comma + 1));
  }
  return counts;
}

}  // namespace

TEST_CASE("network_wordcount counts what a server sends and writes its totals on SIGTERM", "[actors][socket][example]") {
  const std::string text = quijote_lines(300);
  const auto expected = count_words(text);
  flow::test::temp_dir dir;
  listener server;
  auto out = dir / "counts.csv";
  auto run = run_wordcount({"--host", "127.0.0.1", "--port", std::to_string(server.port()), "--output", out.string(),
                            "--flow.threads=2"},
                           dir / "log.txt", [&](child_process& example) {
                             auto peer = server.accept();
                             CHECK(peer.is_open());
                             if (peer.is_open()) CHECK(peer.send(text));
                             const std::string done = "total words so far: " + std::to_string(total_of(expected)) + "\n";
                             CHECK(eventually([&] { return example.output().find(done) != std::string::npos; }));
                             example.signal(SIGTERM);
                           });
  INFO(run.log.substr(0, 2000));
  CHECK(run.status == 0);
  REQUIRE(fs::exists(out));
  CHECK(read_word_counts(out) == expected);
}

TEST_CASE("network_wordcount --listen takes producers on the port it reports", "[actors][socket][example]") {
  flow::test::temp_dir dir;
  auto out = dir / "counts.csv";
  auto run = run_wordcount({"--host", "127.0.0.1", "--port", "0", "--listen", "--output", out.string()}, dir / "log.txt",
                           [&](child_process& example) {
                             const std::string listening = example.await_output("listening on 127\\.0\\.0\\.1:([0-9]+)");
                             CHECK(!listening.empty());
                             if (!listening.empty()) {
                               auto port = static_cast<std::uint16_t>(std::stoi(listening));
                               auto first = connect_to(port), second = connect_to(port);
                               CHECK(first.send("to be or not\n"));
                               CHECK(second.send("to be\r\n"));
                               CHECK(eventually([&] {
                                 return example.output().find("total words so far: 6\n") != std::string::npos;
                               }));
                             }
                             example.signal(SIGTERM);
                           });
  INFO(run.log.substr(0, 2000));
  CHECK(run.status == 0);
  REQUIRE(fs::exists(out));
  CHECK(read_word_counts(out) == std::map<std::string, std::int64_t>{{"to", 2}, {"be", 2}, {"or", 1}, {"not", 1}});
}

TEST_CASE("network_wordcount --dstream counts the last 30 s of what a server sends, every 10 s", "[actors][socket][example][dstream]") {
  const std::string text = quijote_lines(300);
  const auto expected = count_words(text);
  flow::test::temp_dir dir;
  listener server;
  auto out = dir / "counts.csv";
  auto run = run_wordcount({"--dstream", "--trigger", "1s", "--host", "127.0.0.1", "--port", std::to_string(server.port()),
                            "--output", out.string(), "--flow.threads=2"},
                           dir / "log.txt", [&](child_process& example) {
                             auto peer = server.accept();
                             CHECK(peer.is_open());
                             if (peer.is_open()) CHECK(peer.send(text));
                             // The first window (after 10 batches of 1 s) holds everything sent.
                             const std::string window = "words in the window: " + std::to_string(total_of(expected)) +
                                                        " (" + std::to_string(expected.size()) + " distinct)\n";
                             CHECK(eventually([&] { return example.output().find(window) != std::string::npos; }, 60s));
                             example.signal(SIGTERM);
                           });
  INFO(run.log.substr(0, 3000));
  CHECK(run.status == 0);
  // print(): Spark's header, then the ten most frequent words as (word,count).
  CHECK(std::regex_search(run.log, std::regex("-------------------------------------------\nTime: [0-9]+ ms\n"
                                              "-------------------------------------------\n(\\([^\n]+,[0-9]+\\)\n){10}\\.\\.\\.\n")));
  REQUIRE(fs::exists(out));
  CHECK(read_word_counts(out) == expected);
}

namespace {

// A socket source that counts the plans which found no new data; everything else is the socket source's.
class plan_counting_reader final : public flow::source_reader {
 public:
  plan_counting_reader(std::unique_ptr<flow::source_reader> inner, std::shared_ptr<std::atomic<int>> empty_plans)
      : inner_(std::move(inner)), empty_plans_(std::move(empty_plans)) {}
  std::string description() const override { return inner_->description(); }
  flow::schema_ptr output_schema() const override { return inner_->output_schema(); }
  std::shared_ptr<const flow::decoder> chunk_decoder() const override { return inner_->chunk_decoder(); }
  std::string initial_offset() override { return inner_->initial_offset(); }
  bool notify_when_data(std::function<void()> arrived) override { return inner_->notify_when_data(std::move(arrived)); }
  std::optional<std::string> latest_offset(const std::string& start) override {
    auto end = inner_->latest_offset(start);
    if (!end) ++*empty_plans_;
    return end;
  }
  void begin_read(const std::string& start, const std::string& end) override { inner_->begin_read(start, end); }
  std::optional<flow::source_unit> next() override { return inner_->next(); }
  void commit(const std::string& end) override { inner_->commit(end); }
  void set_max_unit_bytes(std::size_t bytes) override { inner_->set_max_unit_bytes(bytes); }
  void stop() override { inner_->stop(); }

 private:
  std::unique_ptr<flow::source_reader> inner_;
  std::shared_ptr<std::atomic<int>> empty_plans_;
};

}  // namespace

TEST_CASE("a socket query with the default trigger plans when a line arrives, not by polling while idle",
          "[actors][socket][notify]") {
  static const auto empty_plans = [] {
    auto counter = std::make_shared<std::atomic<int>>(0);
    flow::source_format format;
    format.resolve = [](flow::scan_spec& scan) {
      flow::connectors::validate_socket_source_options(scan.opts);
      scan.schema = flow::connectors::socket_source_schema(scan.opts);
    };
    format.make = [counter](const flow::scan_spec& scan) -> std::unique_ptr<flow::source_reader> {
      return std::make_unique<plan_counting_reader>(flow::connectors::make_socket_source(scan.opts), counter);
    };
    flow::register_source_format("test-plan-counting-socket", format);
    return counter;
  }();
  listener producer;
  flow::session session;
  std::mutex mutex;
  std::vector<std::string> delivered;
  auto query = session.read_stream()
                   .format("test-plan-counting-socket")
                   .option("host", std::string("127.0.0.1"))
                   .option("port", static_cast<long long>(producer.port()))
                   .load()
                   .write_stream()
                   .foreach_batch([&](const flow::batch& rows, std::int64_t) {
                     std::lock_guard<std::mutex> lock(mutex);
                     for (std::size_t r = 0; r < rows.num_rows(); ++r)
                       delivered.push_back(std::get<std::string>(rows.at(r, 0)));
                   })
                   .start();
  auto peer = producer.accept();
  REQUIRE(peer.is_open());
  REQUIRE(eventually([&] {
    return *empty_plans >= 1 && query.status().message.starts_with("Waiting for data to arrive");
  }));
  const int idle_plans = *empty_plans;
  // A coordinator polling every 10 ms would plan about 20 times here.
  std::this_thread::sleep_for(200ms);
  CHECK(*empty_plans == idle_plans);

  REQUIRE(peer.send("hello\n"));
  CHECK(eventually([&] {
    std::lock_guard<std::mutex> lock(mutex);
    return !delivered.empty();
  }, 10s));
  query.stop();
  CHECK_FALSE(query.exception());
  CHECK(delivered == std::vector<std::string>{"hello"});
}
