// map_groups_with_state in a running query (an in-process session) over the retail days: the running
// totals per customer against a plain loop, a restart from the checkpoint mid-stream giving the
// uninterrupted run's output on the memory and RocksDB backends, processing-time timeouts of a replayed
// epoch as in its first run, and Spark's output-mode rules at start.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "flow/group_state.hpp"
#include "flow/session.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace flow::test;
using flow::value;

namespace {

flow::schema_ptr retail_schema() {
  using flow::type_id;
  return flow::make_schema({{"InvoiceNo", type_id::string, true},  {"StockCode", type_id::string, true},
                            {"Description", type_id::string, true}, {"Quantity", type_id::int64, true},
                            {"InvoiceDate", type_id::timestamp, true}, {"UnitPrice", type_id::float64, true},
                            {"CustomerID", type_id::float64, true},  {"Country", type_id::string, true}});
}

flow::data_frame retail_stream(flow::session& session, const fs::path& dir) {
  return session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
      .schema(retail_schema()).load(dir.string());
}

// Per customer: the units bought and the rows seen so far.
flow::data_frame running_totals(const flow::data_frame& rows) {
  return rows.group_by_key({"CustomerID"}).map_groups_with_state(
      [](const flow::group_key& key, const flow::batch& group, flow::group_state<flow::state_row>& state) {
        std::int64_t units = state.exists() ? std::get<std::int64_t>(state.get()[0]) : 0;
        std::int64_t seen = state.exists() ? std::get<std::int64_t>(state.get()[1]) : 0;
        const flow::column& quantity = group.col("Quantity");
        for (std::size_t r = 0; r < group.num_rows(); ++r) units += quantity.valid(r) ? quantity.ints()[r] : 0;
        seen += static_cast<std::int64_t>(group.num_rows());
        state.update({units, seen});
        return flow::state_row{key[0], units, seen};
      },
      {.state = {{"units", flow::type_id::int64}, {"rows", flow::type_id::int64}},
       .output = {{"CustomerID", flow::type_id::float64}, {"units", flow::type_id::int64}, {"rows", flow::type_id::int64}}});
}

using epoch_rows = std::map<std::int64_t, std::vector<std::vector<value>>>;

// The running totals of the days in dir to the end, on the checkpoint, in a new session (a restarted
// process): each epoch's rows, sorted.
epoch_rows run_to_end(const fs::path& dir, const fs::path& checkpoint, const std::string& backend) {
  flow::session_config config;
  config.state_backend = backend;
  flow::session session(config);
  std::mutex mutex;
  epoch_rows out;
  auto query = running_totals(retail_stream(session, dir))
                   .write_stream().output_mode("update").option("checkpointLocation", checkpoint.string())
                   .foreach_batch([&](const flow::batch& rows, std::int64_t epoch) {
                     std::lock_guard lock(mutex);
                     out[epoch] = sorted_rows(rows);
                   })
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());
  return out;
}

// The plain loop over the same files: each day's customers with their totals so far.
epoch_rows expected_totals(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::map<value, std::pair<std::int64_t, std::int64_t>> totals;
  epoch_rows expected;
  for (std::size_t day = 0; day < files.size(); ++day) {
    std::map<value, bool> touched;
    const std::string text = read_file(files[day]);
    std::size_t at = text.find('\n') + 1;  // after the header
    while (at < text.size()) {
      const std::size_t end = text.find('\n', at);
      std::string line = text.substr(at, end - at);
      at = end == std::string::npos ? text.size() : end + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      // Quantity is the 4th field, CustomerID the 7th; the Description may be quoted and hold commas.
      std::vector<std::string> fields(1);
      bool quoted = false;
      for (char c : line) {
        if (c == '"') quoted = !quoted;
        else if (c == ',' && !quoted) fields.emplace_back();
        else fields.back() += c;
      }
      REQUIRE(fields.size() == 8);
      const value customer = fields[6].empty() ? value{} : value{std::stod(fields[6])};
      totals[customer].first += fields[3].empty() ? 0 : std::stoll(fields[3]);
      ++totals[customer].second;
      touched[customer] = true;
    }
    for (const auto& [customer, unused] : touched)
      expected[static_cast<std::int64_t>(day)].push_back({customer, totals[customer].first, totals[customer].second});
  }
  return expected;
}

// Per customer: a row per call with the call's processing time; a customer without rows for 90 minutes of
// processing time times out and is forgotten.
flow::data_frame idle_customers(const flow::data_frame& rows) {
  return rows.group_by_key({"CustomerID"}).map_groups_with_state(
      [](const flow::group_key& key, const flow::batch& group, flow::group_state<flow::state_row>& state) {
        const std::int64_t now = state.get_current_processing_time_ms();
        if (state.has_timed_out()) {
          state.remove();
          return flow::state_row{key[0], std::string("timed out"), now};
        }
        const std::int64_t seen = state.exists() ? std::get<std::int64_t>(state.get()[0]) : 0;
        state.update({seen + static_cast<std::int64_t>(group.num_rows())});
        state.set_timeout_duration(90min);
        return flow::state_row{key[0], std::string("rows"), now};
      },
      {.state = {{"rows", flow::type_id::int64}},
       .output = {{"CustomerID", flow::type_id::float64}, {"event", flow::type_id::string},
                  {"at_ms", flow::type_id::int64}},
       .timeout = flow::group_state_timeout::processing_time});
}

// idle_customers over the days in dir on the checkpoint, in a new session whose epochs' processing times come
// from clock, into out (each epoch's rows, sorted). The sink fails for good at epoch fail_at (-1: never):
// the epoch is then logged but not committed. Returns the query's failure, empty if none.
std::string run_idle_customers(const fs::path& dir, const fs::path& checkpoint, std::function<std::int64_t()> clock,
                               epoch_rows& out, std::int64_t fail_at = -1) {
  flow::session_config config;
  config.processing_clock = std::move(clock);
  config.max_failures = 0;
  flow::session session(config);
  std::mutex mutex;
  auto query = idle_customers(retail_stream(session, dir))
                   .write_stream().output_mode("update").option("checkpointLocation", checkpoint.string())
                   .foreach_batch([&](const flow::batch& rows, std::int64_t epoch) {
                     if (epoch == fail_at)
                       throw std::runtime_error("the sink is down at epoch " + std::to_string(epoch));
                     std::lock_guard lock(mutex);
                     out[epoch] = sorted_rows(rows);
                   })
                   .trigger(flow::available_now()).start();
  bool ended = true;  // a failure is rethrown by await_termination, and kept in exception()
  error_of([&] { ended = query.await_termination(120s); });
  REQUIRE(ended);
  return query.exception().value_or("");
}

}  // namespace

TEST_CASE("map_groups_with_state query: a restart replays a logged epoch with its logged processing time, so its "
          "processing-time timeouts are the uninterrupted run's even when the clock has moved far on",
          "[group_state][checkpoint][data]") {
  constexpr std::int64_t hour_ms = 3600 * 1000;
  constexpr std::int64_t start_ms = 1606780800000;  // 2020-12-01
  // The epochs' processing times: one hour apart, one clock call per planned epoch.
  auto hourly = [] {
    auto calls = std::make_shared<std::atomic<std::int64_t>>(0);
    return [calls] { return start_ms + ++*calls * hour_ms; };
  };
  temp_dir whole, parts;
  const fs::path days = retail_days(whole, 3);
  epoch_rows uninterrupted;
  REQUIRE(run_idle_customers(days, whole.path() / "checkpoint", hourly(), uninterrupted).empty());
  REQUIRE(uninterrupted.size() == 3);
  // Epoch 2 (3 hours in): the customers of the first day only time out (their timeout: 2.5 hours in), the
  // second day's do not (3.5 hours in).
  std::size_t timed_out = 0;
  for (const auto& row : uninterrupted[2]) {
    CHECK(row[2] == value{start_ms + 3 * hour_ms});
    timed_out += row[1] == value{std::string("timed out")} ? 1 : 0;
  }
  CHECK(timed_out > 10);
  CHECK(timed_out < uninterrupted[0].size());

  // The same days, failing at epoch 2 once its offsets (and processing time) are logged; the restart comes
  // 1000 days later.
  epoch_rows interrupted;
  CHECK_THAT(run_idle_customers(days, parts.path() / "checkpoint", hourly(), interrupted, 2),
             Catch::Contains("the sink is down at epoch 2"));
  CHECK_FALSE(interrupted.count(2));
  const auto much_later = [] { return start_ms + 1000 * 24 * hour_ms; };
  epoch_rows replayed;
  REQUIRE(run_idle_customers(days, parts.path() / "checkpoint", much_later, replayed).empty());
  REQUIRE(replayed.count(2));
  for (auto& [epoch, rows] : replayed) interrupted[epoch] = rows;
  CHECK(interrupted == uninterrupted);
}

TEST_CASE("map_groups_with_state query: running totals per customer match a plain loop, and a restart from the "
          "checkpoint mid-stream gives the uninterrupted run's output",
          "[group_state][checkpoint][rocksdb][data]") {
  for (const std::string backend : {"memory", "rocksdb"}) {
    INFO("state backend " << backend);
    temp_dir whole, parts;
    const fs::path all_days = retail_days(whole, 4);
    const epoch_rows uninterrupted = run_to_end(all_days, whole.path() / "checkpoint", backend);
    CHECK(uninterrupted == expected_totals(all_days));

    // The same days, two before a stop and two more after the restart.
    const fs::path some_days = parts.path() / "data";
    fs::create_directories(some_days);
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(all_days)) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (std::size_t i = 0; i < 2; ++i) fs::copy_file(files[i], some_days / files[i].filename());
    epoch_rows interrupted = run_to_end(some_days, parts.path() / "checkpoint", backend);
    for (std::size_t i = 2; i < 4; ++i) fs::copy_file(files[i], some_days / files[i].filename());
    for (auto& [epoch, rows] : run_to_end(some_days, parts.path() / "checkpoint", backend)) interrupted[epoch] = rows;
    CHECK(interrupted == uninterrupted);
  }
}

TEST_CASE("map_groups_with_state query: output modes other than Spark's are refused at start with Spark's message",
          "[group_state]") {
  temp_dir dir;
  const fs::path days = retail_days(dir, 1);
  flow::session session;
  auto start = [&](const flow::data_frame& frame, const char* mode) {
    return error_of([&] {
      frame.write_stream().format("memory").query_name("out").output_mode(mode).trigger(flow::available_now()).start();
    });
  };
  CHECK_THAT(start(running_totals(retail_stream(session, days)), "append"),
             Catch::Contains("mapGroupsWithState is not supported with append output mode on a streaming DataFrame/Dataset"));
  const auto appending = retail_stream(session, days).group_by_key({"Country"}).flat_map_groups_with_state(
      [](const flow::group_key& key, const flow::batch&, flow::group_state<flow::state_row>&) {
        return std::vector<flow::state_row>{{key[0]}};
      },
      flow::output_mode::append, {.state = {}, .output = {{"Country", flow::type_id::string}}});
  CHECK_THAT(start(appending, "update"),
             Catch::Contains("flatMapGroupsWithState in append mode is not supported with update output mode"));
  CHECK_THAT(error_of([&] { running_totals(session.read().format("csv").schema(retail_schema()).load(days.string())); }),
             Catch::Contains("mapGroupsWithState: the frame is static"));
  CHECK_THAT(error_of([&] { retail_stream(session, days).group_by_key({"Nation"}); }), Catch::Contains("Nation"));
}

TEST_CASE("map_groups_with_state query: an event-time timeout without with_watermark upstream is refused at start "
          "with Spark's message", "[group_state]") {
  temp_dir dir;
  const fs::path days = retail_days(dir, 1);
  flow::session session;
  auto by_country = [](const flow::data_frame& rows) {
    return rows.group_by_key({"Country"}).map_groups_with_state(
        [](const flow::group_key& key, const flow::batch&, flow::group_state<flow::state_row>& state) {
          state.set_timeout_timestamp(state.get_current_watermark_ms() + 1000);
          return flow::state_row{key[0]};
        },
        {.state = {}, .output = {{"Country", flow::type_id::string}}, .timeout = flow::group_state_timeout::event_time});
  };
  auto start = [&](const flow::data_frame& frame, const char* name) {
    return frame.write_stream().format("memory").query_name(name).output_mode("update")
        .trigger(flow::available_now()).start();
  };
  CHECK_THAT(error_of([&] { start(by_country(retail_stream(session, days)), "unwatermarked"); }),
             Catch::Contains("Watermark must be specified in the query using '[Dataset/DataFrame].withWatermark()' for "
                             "using event-time timeout in a [map|flatMap]GroupsWithState. Event-time timeout not "
                             "supported without watermark.") &&
                 Catch::Contains("mapGroupsWithState"));
  auto watermarked = start(by_country(retail_stream(session, days).with_watermark("InvoiceDate", "1 hour")), "watermarked");
  REQUIRE(watermarked.await_termination(60s));
  CHECK_FALSE(watermarked.exception());
}

TEST_CASE("map_groups_with_state query: a throwing function or a state of undeclared types fails the query naming "
          "the key and the cause", "[group_state]") {
  temp_dir dir;
  const fs::path days = retail_days(dir, 1);
  auto failure = [&](flow::map_groups_function fn) {
    flow::session session;
    auto query = retail_stream(session, days).group_by_key({"Country"})
                     .map_groups_with_state(std::move(fn), {.state = {{"rows", flow::type_id::int64}},
                                                            .output = {{"Country", flow::type_id::string}}})
                     .write_stream().format("memory").query_name("out").output_mode("update")
                     .trigger(flow::available_now()).start();
    return error_of([&] { query.await_termination(60s); });  // rethrows the query's failure
  };
  CHECK_THAT(failure([](const flow::group_key& key, const flow::batch&, flow::group_state<flow::state_row>&) {
               if (key[0] == value{std::string("France")}) throw std::runtime_error("no French invoices expected");
               return flow::state_row{key[0]};
             }),
             Catch::Contains("mapGroupsWithState: the function failed for key [France]: no French invoices expected"));
  CHECK_THAT(failure([](const flow::group_key& key, const flow::batch& rows, flow::group_state<flow::state_row>& state) {
               state.update({static_cast<double>(rows.num_rows())});
               return flow::state_row{key[0]};
             }),
             Catch::Contains("column 'rows' was declared int64, but the value is float64"));
}
