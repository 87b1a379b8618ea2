// End-to-end: the file, foreach and foreachBatch sinks through the runtime, with failures and replays.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "flow/connectors/file_sink.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
using flow::lit;
namespace fs = std::filesystem;

namespace {

using strings = std::vector<std::string>;

flow::schema_ptr order_schema() {
  return flow::make_schema({{"id", flow::type_id::int64, true},
                            {"customer", flow::type_id::string, true},
                            {"amount", flow::type_id::float64, true},
                            {"at", flow::type_id::timestamp, true}});
}

// Four input files of orders (one epoch each with maxFilesPerTrigger 1), with names that need quoting.
void write_orders(const fs::path& dir) {
  fs::create_directories(dir);
  const strings customers = {"ana", "bo, the second", "\"cy\"", "dee\nlines", ""};
  std::int64_t id = 0;
  for (int file = 0; file < 4; ++file) {
    std::string text = "id,customer,amount,at\n";
    for (int row = 0; row < 25; ++row, ++id) {
      std::string customer = customers[static_cast<std::size_t>(id) % customers.size()];
      std::string quoted = "\"";
      for (char c : customer) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      text += std::to_string(id) + "," + (id % 7 == 3 ? std::string() : quoted + "\"") + "," +
              std::to_string(static_cast<double>(id) * 1.25) + ",2010-12-0" + std::to_string(file + 1) + " 08:" +
              (row < 10 ? "0" : "") + std::to_string(row) + ":00\n";
    }
    flow::test::write_file(dir / ("orders-" + std::to_string(file) + ".csv"), text);
  }
}

flow::data_frame orders_stream(flow::session& session, const fs::path& dir) {
  return session.read_stream().format("csv").option("header", true).option("multiLine", true).schema(order_schema())
      .option("maxFilesPerTrigger", 1).load(dir.string());
}

// A batch read of order files, or of the CSV a sink wrote of them: customers hold line breaks (multiLine).
flow::data_frame read_orders(flow::session& session, const fs::path& path,
                             const flow::schema_ptr& schema = order_schema()) {
  return session.read().format("csv").option("header", true).option("multiLine", true).schema(schema)
      .load(path.string());
}

flow::data_frame big_orders(const flow::data_frame& orders) {
  return orders.where(col("amount") > lit(20.0)).select({col("id"), col("customer"), col("amount"), col("at")});
}

// Every row as text, in order.
strings rows_of(const std::vector<flow::batch>& batches) {
  strings out;
  for (const auto& b : batches) {
    for (std::size_t r = 0; r < b.num_rows(); ++r) {
      std::string row;
      for (std::size_t c = 0; c < b.num_columns(); ++c) {
        if (c) row += '|';
        row += b.col(c).is_null(r) ? std::string("null") : flow::to_string(b.at(r, c));
      }
      out.push_back(row);
    }
  }
  return out;
}

// What a consumer of the file sink reads: the committed files, decoded by libflow's own reader.
strings committed_rows(flow::session& session, const fs::path& out, const flow::schema_ptr& schema) {
  std::vector<flow::batch> batches;
  for (const auto& file : flow::committed_files(out.string())) {
    for (auto& b : read_orders(session, file, schema).collect())
      batches.push_back(b);
  }
  return rows_of(batches);
}

}  // namespace

TEST_CASE("a CSV stream filtered into the CSV file sink gives exactly the input rows, epoch by epoch",
          "[actors][sinks]") {
  flow::session session;
  flow::test::temp_dir dir;
  write_orders(dir / "in");
  auto query = big_orders(orders_stream(session, dir / "in"))
                   .write_stream().format("csv").option("path", (dir / "out").string()).option("header", true)
                   .option("checkpointLocation", (dir / "checkpoint").string())
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  CHECK(query.recent_progress().size() == 4);
  CHECK_THAT(*query.last_progress(), Catch::Contains("FileSink[") && Catch::Contains("\"numFiles\":4"));

  auto expected = rows_of(big_orders(read_orders(session, dir / "in")).collect());
  REQUIRE(expected.size() > 50);
  CHECK(committed_rows(session, dir / "out", order_schema()) == expected);
  CHECK(flow::committed_files((dir / "out").string()).size() == 4);
  CHECK(fs::exists(dir / "out" / "_flow_metadata" / "3"));
  for (const auto& entry : fs::directory_iterator(dir / "out"))
    CHECK_FALSE(entry.path().filename().string().ends_with(".tmp"));
}

TEST_CASE("a stage failure replays epochs and the file sink output stays exactly-once", "[actors][sinks][recovery]") {
  flow::session session;
  flow::test::temp_dir dir;
  write_orders(dir / "in");
  auto failures = std::make_shared<std::atomic<int>>(0);
  // Fails the first time it sees an order of the third file (epoch 2), then works.
  auto flaky = [failures](const flow::batch& b) {
    const auto& ids = b.col("id");
    for (std::size_t i = 0; i < b.num_rows(); ++i)
      if (ids.valid(i) && ids.ints()[i] >= 50 && failures->fetch_add(1) == 0) throw std::runtime_error("injected failure");
    return b;
  };
  auto query = big_orders(orders_stream(session, dir / "in").map_batches(flaky, nullptr, "flaky"))
                   .write_stream().format("csv").option("path", (dir / "out").string()).option("header", true)
                   .option("maxRecordsPerFile", 10LL).trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  CHECK(failures->load() > 1);
  bool restarted = false;
  for (const auto& p : query.recent_progress()) restarted |= p.find("\"numRestarts\":0") == std::string::npos;
  CHECK(restarted);

  auto expected = rows_of(big_orders(read_orders(session, dir / "in")).collect());
  auto written = committed_rows(session, dir / "out", order_schema());
  CHECK(written == expected);  // no duplicate, no missing row, input order
  // Every part file on disk is a committed one: the failed attempt left nothing behind.
  std::set<std::string> on_disk, committed;
  for (const auto& entry : fs::directory_iterator(dir / "out"))
    if (entry.is_regular_file()) on_disk.insert(entry.path().string());
  for (const auto& f : flow::committed_files((dir / "out").string())) committed.insert(f);
  CHECK(on_disk == committed);
}

TEST_CASE("foreachBatch gets each epoch's rows once with consecutive epoch ids", "[actors][sinks]") {
  flow::session session;
  flow::test::temp_dir dir;
  write_orders(dir / "in");
  std::mutex mutex;
  std::vector<std::pair<std::int64_t, flow::batch>> seen;
  auto query = big_orders(orders_stream(session, dir / "in"))
                   .write_stream()
                   .foreach_batch([&](const flow::batch& rows, std::int64_t epoch) {
                     std::lock_guard<std::mutex> lock(mutex);
                     seen.emplace_back(epoch, rows);
                   })
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(seen.size() == 4);
  std::vector<flow::batch> batches;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].first == static_cast<std::int64_t>(i));
    CHECK(seen[i].second.schema().names() == strings{"id", "customer", "amount", "at"});
    batches.push_back(seen[i].second);
  }
  auto expected = big_orders(read_orders(session, dir / "in"));
  CHECK(rows_of(batches) == rows_of(expected.collect()));
}

namespace {

// A transactional writer: rows of an epoch become visible at close(no error), replacing any earlier
// attempt of the same epoch, so at-least-once delivery still stores each row once.
class epoch_table_writer final : public flow::foreach_writer {
 public:
  bool open(std::int64_t partition, std::int64_t epoch) override {
    std::lock_guard<std::mutex> lock(mutex_);
    opens.push_back(epoch);
    current_ = {partition, epoch};
    staged_.clear();
    return true;
  }
  void process(const flow::row_view& row) override {
    auto id = std::get<std::int64_t>(row.get("id"));
    if (id == 63 && !failed_) {
      failed_ = true;
      throw std::runtime_error("storage hiccup at id 63");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    staged_.push_back(id);
    ++rows_processed;
  }
  void close(const std::optional<std::string>& error) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error) {
      errors.push_back(*error);
      return;
    }
    stored[current_] = staged_;
  }

  std::vector<std::int64_t> stored_ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::int64_t> ids;
    for (const auto& [key, rows] : stored) ids.insert(ids.end(), rows.begin(), rows.end());
    return ids;
  }

  mutable std::mutex mutex_;
  std::vector<std::int64_t> opens;
  strings errors;
  std::int64_t rows_processed = 0;
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::int64_t>> stored;  // (partition, epoch) -> ids

 private:
  std::pair<std::int64_t, std::int64_t> current_;
  std::vector<std::int64_t> staged_;
  bool failed_ = false;
};

}  // namespace

TEST_CASE("a foreach writer that throws once is closed with the error and its epoch replayed",
          "[actors][sinks][recovery]") {
  flow::session session;
  flow::test::temp_dir dir;
  write_orders(dir / "in");
  auto writer = std::make_shared<epoch_table_writer>();
  auto query = big_orders(orders_stream(session, dir / "in")).write_stream().foreach(writer)
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());

  std::vector<std::int64_t> expected;
  for (const auto& row : rows_of(big_orders(read_orders(session, dir / "in")).collect()))
    expected.push_back(std::stoll(row.substr(0, row.find('|'))));
  CHECK(writer->stored_ids() == expected);  // each row stored once, none missing
  std::lock_guard<std::mutex> lock(writer->mutex_);
  CHECK(writer->errors == strings{"storage hiccup at id 63"});
  CHECK(std::count(writer->opens.begin(), writer->opens.end(), 2) == 2);  // epoch 2 was given twice
  CHECK(writer->rows_processed > static_cast<std::int64_t>(expected.size()));  // at-least-once: rows before id 63 twice
}

TEST_CASE("file sinks refuse what Spark refuses when the query starts", "[actors][sinks]") {
  flow::session session;
  flow::test::temp_dir dir;
  write_orders(dir / "in");
  auto orders = orders_stream(session, dir / "in");
  auto per_window = orders.group_by({flow::window(col("at"), "1 hour")}).count();
  CHECK_THROWS_WITH(per_window.write_stream().format("csv").option("path", (dir / "a").string())
                        .output_mode("complete").start(),
                    Catch::Contains("Data source csv does not support Complete output mode"));
  CHECK_THROWS_WITH(per_window.write_stream().format("csv").option("path", (dir / "b").string())
                        .output_mode("update").start(),
                    Catch::Contains("Data source csv does not support Update output mode"));
  CHECK_THROWS_WITH(orders.select({col("id"), flow::window(col("at"), "1 hour").as("w")}).write_stream()
                        .format("csv").option("path", (dir / "c").string()).start(),
                    Catch::Contains("CSV data source does not support window data type (column 'w')"));
  CHECK_THROWS_WITH(orders.write_stream().format("json").start(), Catch::Contains("json sink needs an output directory"));
}

TEST_CASE("a stream into the noop sink runs every epoch and counts its rows", "[actors][sinks]") {
  flow::session session;
  flow::test::temp_dir dir;
  write_orders(dir / "in");
  auto query = big_orders(orders_stream(session, dir / "in")).write_stream().format("noop")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  auto expected = big_orders(read_orders(session, dir / "in")).count();
  REQUIRE(expected > 50);
  CHECK_THAT(*query.last_progress(), Catch::Contains("NoopSink") && Catch::Contains("\"numEpochs\":4") &&
                                         Catch::Contains("\"numOutputRows\":" + std::to_string(expected)));
}

TEST_CASE("a query that fails for good ends only after its sink has finished the epoch it was delivering",
          "[actors][sinks][recovery]") {
  flow::session_config config;
  config.threads = 3;
  config.max_failures = 0;
  flow::session session(config);
  flow::test::temp_dir dir;
  write_orders(dir / "in");
  std::atomic<bool> delivering{false}, ended{false};
  std::atomic<int> deliveries_after_end{0};
  // Epoch 2 (ids 50..74) fails in the stage, and only while the sink delivers an earlier epoch.
  auto failing = orders_stream(session, dir / "in").map_batches([&](const flow::batch& rows) {
    for (std::size_t r = 0; r < rows.num_rows(); ++r) {
      if (rows.col(0).ints()[r] >= 50) {
        flow::test::eventually([&] { return delivering.load(); }, 10s);
        throw std::runtime_error("broken at id 50");
      }
    }
    return rows;
  });
  auto query = failing.write_stream().foreach_batch([&](const flow::batch&, std::int64_t) {
    if (ended) ++deliveries_after_end;
    delivering = true;
    std::this_thread::sleep_for(300ms);
    delivering = false;
  }).start();
  CHECK_THROWS_WITH(query.await_termination(20s), Catch::Contains("broken at id 50"));
  ended = true;
  CHECK_FALSE(delivering);  // terminated means the sink is done: no user code of it runs any more
  std::this_thread::sleep_for(400ms);
  CHECK(deliveries_after_end == 0);
}
