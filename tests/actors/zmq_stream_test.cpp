// The zmq source and sink through flow::session: a word count from a test's PUSH socket, two sessions
// chained by ZeroMQ in the binary batch format against the same result computed directly, and the
// zmq_pipeline example as two processes against the reference result.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <map>
#include <sstream>
#include <thread>

#include "flow/connectors/zeromq.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using flow::col;
using namespace flow::test;

namespace {

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

TEST_CASE("words sent to a zmq PULL source are counted, and bad options fail at load", "[actors][zmq]") {
  flow::session session;
  CHECK_THAT(flow::test::error_of([&] {
               session.read_stream().format("zmq").option("endpoint", "tcp://127.0.0.1:1")
                   .option("messageFormat", "json").load();
             }),
             Catch::Contains("messageFormat json needs a schema"));
  CHECK_THAT(flow::test::error_of([&] { session.read_stream().format("zmq").load(""); }),
             Catch::Contains("'endpoint' is required"));

  auto words = session.read_stream()
                   .format("zmq")
                   .option("endpoint", "tcp://127.0.0.1:*")
                   .option("socketType", "PULL")
                   .option("bind", true)
                   .load()
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
    counts = counts_of(session.sql("SELECT word, count FROM zmq_words").collect_batch());
    return counts["be"] == 2000;
  }));
  CHECK(counts == std::map<std::string, std::int64_t>{{"to", 2000}, {"be", 2000}, {"or", 1000}, {"not", 1000}});
  query.process_all_available();  // the table is written before the epoch's progress
  auto progress = query.last_progress();
  REQUIRE(progress);
  CHECK_THAT(*progress, Catch::Contains("ZeroMQSource[endpoint: tcp://127.0.0.1:*, socketType: PULL, bind]") &&
                            Catch::Contains("\"numMessagesReceived\":1000") && Catch::Contains("\"numBadRecords\":0"));
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("two sessions chained by zmq in binary format give the directly computed result", "[actors][zmq]") {
  flow::test::temp_dir dir;
  const auto data = retail_day_dir(dir);
  auto per_hour = [](const flow::data_frame& costs) {
    return costs.group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")}).sum("total_cost");
  };
  auto select_costs = [](const flow::data_frame& sales) {
    return sales.select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"), col("InvoiceDate")});
  };

  flow::session producer_session, consumer_session;
  auto static_sales = producer_session.read().format("csv").option("header", true).option("inferSchema", true)
                          .load((data / "2010-12-01.csv").string());
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
                               .load())
                      .write_stream()
                      .format("memory")
                      .query_name("chained")
                      .output_mode("complete")
                      .start();
  auto endpoints = flow::connectors::bound_zmq_source_endpoints();
  REQUIRE(endpoints.size() == 1);
  auto producer = select_costs(producer_session.read_stream().format("csv").option("header", true)
                                   .schema(static_sales.schema()).load((data / "*.csv").string()))
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

TEST_CASE("zmq_pipeline produce | consume as two processes writes the reference result", "[actors][zmq][example]") {
  flow::test::temp_dir dir;
  const auto data = retail_day_dir(dir);
  auto out = dir / "result.csv";
  const auto expected =
      flow::test::read_customer_hour_sums(flow::test::shared_data_dir() / "expected" / "result_2010-12-01.csv", 4);
  std::int64_t expected_rows = 0;
  {
    std::istringstream in(flow::test::read_file(flow::test::shared_data_dir() / "expected" / "result_2010-12-01.csv"));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) expected_rows += std::stoll(line.substr(line.rfind(',') + 1));
  }

  child_process consumer(FLOW_ZMQ_PIPELINE_EXAMPLE, {"consume", "--endpoint", "tcp://127.0.0.1:*", "--trigger", "200ms",
                                                     "--output", out.string(), "--flow.threads=2"},
                         dir / "consumer.log");
  const std::string endpoint = consumer.await_output("listening on (tcp://127\\.0\\.0\\.1:[0-9]+)");
  REQUIRE(!endpoint.empty());
  child_process producer(FLOW_ZMQ_PIPELINE_EXAMPLE,
                         {"produce", "--endpoint", endpoint, "--data", data.string(), "--trigger", "200ms", "--flow.threads=2"},
                         dir / "producer.log");
  const std::string done = "rows so far: " + std::to_string(expected_rows) + "\n";
  bool all_there = eventually([&] { return consumer.output().find(done) != std::string::npos; });
  INFO("consumer: " << consumer.output().substr(0, 3000) << "\nproducer: " << producer.output().substr(0, 3000));
  CHECK(all_there);
  CHECK(producer.stop(30s) == 0);
  CHECK(consumer.stop(30s) == 0);
  REQUIRE(fs::exists(out));
  CHECK(flow::test::read_file(out).rfind("CustomerID,window_start,window_end,sum(total_cost)\n", 0) == 0);
  flow::test::check_same_sums(flow::test::read_customer_hour_sums(out, 3), expected);
}
