// The zmq source and sink through flow::session: a word count from a test's PUSH socket, two sessions
// chained by ZeroMQ in the binary batch format against the same result computed directly, and the
// zmq_pipeline example as two processes against the reference result.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "flow/connectors/zeromq.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using flow::col;

namespace {

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

fs::path retail_day() { return flow::test::shared_data_dir() / "retail-by-day" / "2010-12-01.csv"; }

using result_map = std::map<std::pair<std::string, std::string>, double>;  // (customer, window start) -> sum

// CustomerID, window, sum columns of a batch.
result_map result_of(const flow::batch& table) {
  result_map rows;
  for (std::size_t r = 0; r < table.num_rows(); ++r) {
    auto customer = table.at(r, 0);
    auto window = std::get<flow::window_value>(table.at(r, 1));
    rows[{flow::is_null(customer) ? "" : flow::to_string(customer), flow::format_timestamp(window.start)}] =
        std::get<double>(table.at(r, 2));
  }
  return rows;
}

}  // namespace

TEST_CASE("words sent to a zmq PULL source are counted; bad options fail at load", "[actors][zmq]") {
  flow::session session;
  CHECK_THAT(flow::test::error_of([&] {
               session.read_stream().format("zmq").option("endpoint", "tcp://127.0.0.1:1")
                   .option("messageFormat", "json").load("");
             }),
             Catch::Contains("messageFormat json needs a schema"));
  CHECK_THAT(flow::test::error_of([&] { session.read_stream().format("zmq").load(""); }),
             Catch::Contains("'endpoint' is required"));

  auto words = session.read_stream()
                   .format("zmq")
                   .option("endpoint", "tcp://127.0.0.1:*")
                   .option("socketType", "PULL")
                   .option("bind", true)
                   .load("")
                   .select({flow::explode(flow::split(col("value"), " ")).as("word")})
                   .group_by({col("word")})
                   .count();
  auto query = words.write_stream().format("memory").query_name("zmq_words").output_mode("complete").start();
  auto endpoints = flow::connectors::bound_zmq_source_endpoints();
  REQUIRE(endpoints.size() == 1);

  zmq::context_t context;
  zmq::socket_t producer(context, zmq::socket_type::push);
  producer.set(zmq::sockopt::linger, 0);
  producer.connect(endpoints[0]);
  for (int i = 0; i < 1000; ++i) REQUIRE(producer.send(zmq::str_buffer("to be or not to be"), zmq::send_flags::none));

  std::map<std::string, std::int64_t> counts;
  REQUIRE(eventually([&] {
    auto table = session.sql("SELECT word, `count(1)` FROM zmq_words").collect_batch();
    counts.clear();
    for (std::size_t r = 0; r < table.num_rows(); ++r)
      counts[std::get<std::string>(table.at(r, 0))] = std::get<std::int64_t>(table.at(r, 1));
    return counts["be"] == 2000;
  }));
  CHECK(counts == std::map<std::string, std::int64_t>{{"to", 2000}, {"be", 2000}, {"or", 1000}, {"not", 1000}});
  auto progress = query.last_progress();
  REQUIRE(progress);
  CHECK_THAT(*progress, Catch::Contains("ZeroMQSource[endpoint: tcp://127.0.0.1:*, socketType: PULL, bind]") &&
                            Catch::Contains("\"numMessagesReceived\":1000") && Catch::Contains("\"numBadRecords\":0"));
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("two sessions chained by zmq in binary format give the directly computed result", "[actors][zmq]") {
  flow::test::temp_dir dir;
  fs::create_directory(dir / "data");
  fs::copy_file(retail_day(), dir / "data" / "2010-12-01.csv");
  auto per_hour = [](const flow::data_frame& costs) {
    return costs.group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")}).sum("total_cost");
  };
  auto select_costs = [](const flow::data_frame& sales) {
    return sales.select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"), col("InvoiceDate")});
  };

  flow::session producer_session, consumer_session;
  auto static_sales = producer_session.read().format("csv").option("header", true).option("inferSchema", true)
                          .load(retail_day().string());
  auto expected = result_of(per_hour(select_costs(static_sales)).collect_batch());
  auto wire_schema = select_costs(static_sales).schema();

  // The consumer binds; the producer's PUSH sink connects to it.
  auto consumer = per_hour(consumer_session.read_stream()
                               .format("zmq")
                               .option("endpoint", "tcp://127.0.0.1:*")
                               .option("socketType", "PULL")
                               .option("bind", true)
                               .option("messageFormat", "binary")
                               .schema(wire_schema)
                               .load(""))
                      .write_stream()
                      .format("memory")
                      .query_name("chained")
                      .output_mode("complete")
                      .start();
  auto endpoints = flow::connectors::bound_zmq_source_endpoints();
  REQUIRE(endpoints.size() == 1);
  auto producer = select_costs(producer_session.read_stream().format("csv").option("header", true)
                                   .schema(static_sales.schema()).load((dir / "data" / "*.csv").string()))
                      .write_stream()
                      .format("zmq")
                      .option("endpoint", endpoints[0])
                      .option("socketType", std::string("PUSH"))
                      .option("messageFormat", std::string("binary"))
                      .trigger(flow::available_now())
                      .start();
  producer.await_termination();
  CHECK_FALSE(producer.exception());

  result_map actual;
  REQUIRE(eventually([&] {
    actual = result_of(consumer_session.sql("SELECT * FROM chained").collect_batch());
    return actual.size() == expected.size();
  }));
  consumer.process_all_available();
  actual = result_of(consumer_session.sql("SELECT * FROM chained").collect_batch());
  REQUIRE(actual.size() == expected.size());
  for (const auto& [key, sum] : expected) {
    INFO(key.first << " " << key.second);
    REQUIRE(actual.count(key));
    CHECK(actual.at(key) == Approx(sum).epsilon(1e-9));
  }
  auto progress = consumer.last_progress();
  REQUIRE(progress);
  CHECK_THAT(*progress, Catch::Contains("\"numBadRecords\":0"));
  consumer.stop();
  CHECK_FALSE(consumer.exception());
}

namespace {

struct child {
  pid_t pid = -1;
  fs::path log;
  ~child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

void start_example(child& c, std::vector<std::string> args, const fs::path& log) {
  c.log = log;
  c.pid = fork();
  if (c.pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (!out) _exit(126);
    std::vector<char*> argv{const_cast<char*>(FLOW_ZMQ_PIPELINE_EXAMPLE)};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(FLOW_ZMQ_PIPELINE_EXAMPLE, argv.data());
    _exit(127);
  }
}

// SIGTERM, then the exit status within 30 s (-1 when it did not exit normally).
int stop_example(child& c) {
  kill(c.pid, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (waitpid(c.pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &status, 0);
      c.pid = -1;
      FAIL("the example did not end within 30 s of SIGTERM");
    }
    std::this_thread::sleep_for(10ms);
  }
  c.pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string log_of(const fs::path& log) { return fs::exists(log) ? flow::test::read_file(log) : std::string(); }

std::map<std::pair<std::string, std::string>, double> read_result(const fs::path& csv, std::size_t sum_column) {
  std::istringstream in(flow::test::read_file(csv));
  std::string line;
  std::getline(in, line);
  std::map<std::pair<std::string, std::string>, double> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    REQUIRE(f.size() > sum_column);
    rows[{f[0], f[1]}] = std::stod(f[sum_column]);
  }
  return rows;
}

}  // namespace

TEST_CASE("zmq_pipeline produce | consume as two processes writes the reference result", "[actors][zmq][example]") {
  flow::test::temp_dir dir;
  fs::create_directory(dir / "data");
  fs::copy_file(retail_day(), dir / "data" / "2010-12-01.csv");
  auto out = dir / "result.csv";
  const auto expected = read_result(flow::test::shared_data_dir() / "expected" / "result_2010-12-01.csv", 4);
  std::int64_t expected_rows = 0;
  {
    std::istringstream in(flow::test::read_file(flow::test::shared_data_dir() / "expected" / "result_2010-12-01.csv"));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) expected_rows += std::stoll(line.substr(line.rfind(',') + 1));
  }

  child consumer, producer;
  start_example(consumer, {"consume", "--endpoint", "tcp://127.0.0.1:*", "--trigger", "200ms", "--output", out.string(),
                           "--flow.threads=2"},
                dir / "consumer.log");
  std::smatch match;
  const std::regex listening("listening on (tcp://127\\.0\\.0\\.1:[0-9]+)");
  std::string log;
  REQUIRE(eventually([&] {
    log = log_of(consumer.log);
    return std::regex_search(log, match, listening);
  }));
  start_example(producer, {"produce", "--endpoint", match[1].str(), "--data", (dir / "data").string(), "--trigger",
                           "200ms", "--flow.threads=2"},
                dir / "producer.log");
  const std::string done = "rows so far: " + std::to_string(expected_rows) + "\n";
  bool all_there = eventually([&] { return log_of(consumer.log).find(done) != std::string::npos; });
  INFO("consumer: " << log_of(consumer.log).substr(0, 3000) << "\nproducer: " << log_of(producer.log).substr(0, 3000));
  CHECK(all_there);
  CHECK(stop_example(producer) == 0);
  CHECK(stop_example(consumer) == 0);
  REQUIRE(fs::exists(out));
  CHECK(flow::test::read_file(out).rfind("CustomerID,window_start,window_end,sum(total_cost)\n", 0) == 0);
  auto actual = read_result(out, 3);
  REQUIRE(actual.size() == expected.size());
  for (const auto& [key, sum] : expected) {
    INFO(key.first << " " << key.second);
    REQUIRE(actual.count(key));
    CHECK(std::round(actual.at(key) * 100) == std::round(sum * 100));
  }
}
