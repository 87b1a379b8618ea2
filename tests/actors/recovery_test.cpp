// Recovery of every source: a query fails once mid-stream (in a stage or in the sink), stateless or
// with an aggregation, and must restart once, lose and duplicate nothing, and never run a committed
// epoch again (its rows do not pass the stages a second time). Real peers: files in a temp dir, a TCP
// server, a ZeroMQ PUSH socket, the feed server, librdkafka's mock cluster, the rate source. Results are
// checked against the ids the test sent, counted independently.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "feed_server.hpp"
#include "flow/connectors/zeromq.hpp"
#include "flow/session.hpp"
#include "kafka_support.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
using namespace flow::test;

namespace {

using ids = std::vector<std::int64_t>;

enum class failure_point { stage, sink };

struct variant {
  bool aggregate;
  failure_point fail_in;
};

std::string describe(const variant& v) {
  return std::string(v.aggregate ? "aggregation" : "stateless") + ", failure in the " +
         (v.fail_in == failure_point::stage ? "stage" : "sink");
}

auto every_variant() {
  return Catch::Generators::values<variant>({{false, failure_point::stage},
                                             {false, failure_point::sink},
                                             {true, failure_point::stage},
                                             {true, failure_point::sink}});
}

ids id_range(std::int64_t first, std::int64_t end) {
  ids out(static_cast<std::size_t>(end - first));
  std::iota(out.begin(), out.end(), first);
  return out;
}

// ids[at, at + count), cut at the end.
ids part_of(const ids& all, std::size_t at, std::size_t count) {
  return ids(all.begin() + static_cast<std::ptrdiff_t>(at),
             all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), at + count)));
}

// An int64 cell, or -1 (matching no count or sum) for anything else.
std::int64_t as_int(const flow::value& v) {
  auto i = std::get_if<std::int64_t>(&v);
  return i ? *i : -1;
}

// Per key ("k0".."k6": the id modulo 7): how many rows and the sum of their ids.
struct totals {
  std::int64_t count = 0, sum = 0;
};
using key_totals = std::map<std::string, totals>;

// "key: count/sum" lines, for comparing tables with a readable difference.
std::string text_of(const key_totals& table) {
  std::string text;
  for (const auto& [key, t] : table) text += key + ": " + std::to_string(t.count) + "/" + std::to_string(t.sum) + "\n";
  return text;
}

std::string key_of(std::int64_t id) { return "k" + std::to_string(id % 7); }

key_totals totals_of(const ids& all) {
  key_totals out;
  for (auto id : all) {
    auto& t = out[key_of(id)];
    ++t.count;
    t.sum += id;
  }
  return out;
}

std::int64_t rows_in(const key_totals& table) {
  std::int64_t n = 0;
  for (const auto& [key, t] : table) n += t.count;
  return n;
}

// Rows (key, count, sum) of an aggregation's output.
key_totals totals_from_table(const flow::batch& table) {
  key_totals out;
  for (std::size_t r = 0; r < table.num_rows(); ++r)
    out[flow::to_string(table.at(r, 0))] = {as_int(table.at(r, 1)), as_int(table.at(r, 2))};
  return out;
}

flow::schema_ptr keyed_schema() {
  return flow::make_schema({{"id", flow::type_id::int64, true}, {"key", flow::type_id::string, true}});
}

// What one run saw, shared by the test thread, the stage instances (map_batches) and the sink.
class run_log {
 public:
  run_log(variant v, std::int64_t fail_at) : variant_(v), fail_at_(fail_at) {}

  void watch(const flow::streaming_query& query) {
    std::lock_guard<std::mutex> lock(mutex_);
    query_ = query;
    watched_.notify_all();
  }

  // The stage: (id, key) of each row, the id read from id_column (int64, or a string holding it). Throws
  // once, at the first row with id >= fail_at, when the failure is to happen in the stage.
  flow::batch through_stage(const flow::batch& in, const std::string& id_column) {
    const auto& column = in.col(id_column);
    flow::column_builder id_out(flow::type_id::int64, in.num_rows()), key_out(flow::type_id::string, in.num_rows());
    ids batch_ids;
    for (std::size_t r = 0; r < in.num_rows(); ++r) {
      std::int64_t id = -1;  // a null or unreadable id: counted as such, never matches a sent one
      if (column.valid(r)) {
        if (column.type() == flow::type_id::string) {
          try {
            id = std::stoll(std::string(column.str(r)));
          } catch (const std::exception&) {
          }
        } else {
          id = column.ints()[r];
        }
      }
      batch_ids.push_back(id);
      id_out.append_int(id);
      key_out.append_string(key_of(id));
    }
    std::unique_lock<std::mutex> lock(mutex_);
    bool reaches_failure = std::any_of(batch_ids.begin(), batch_ids.end(), [&](auto id) { return id >= fail_at_; });
    armed_ |= reaches_failure;
    for (auto id : batch_ids) {
      (failed_ ? seen_after_ : seen_before_).push_back(id);
      distinct_seen_.insert(id);
    }
    if (reaches_failure && variant_.fail_in == failure_point::stage && !failed_) fail(lock, "injected stage failure");
    return flow::batch(keyed_schema(), {id_out.finish(), key_out.finish()});
  }

  // The foreachBatch sink of a stateless query: the epoch's ids, the last delivery of an epoch id wins.
  void deliver_rows(const flow::batch& rows, std::int64_t epoch) {
    ids epoch_ids;
    for (std::size_t r = 0; r < rows.num_rows(); ++r) epoch_ids.push_back(rows.col(0).ints()[r]);
    std::unique_lock<std::mutex> lock(mutex_);
    auto [at, fresh] = delivered_.try_emplace(epoch, epoch_ids);
    if (!fresh) {
      if (at->second != epoch_ids) ++changed_redeliveries_;
      at->second = epoch_ids;
    }
    maybe_fail_in_sink(lock);
  }

  // The foreachBatch sink of an aggregation in update mode: the epoch's changed (key, count, sum) rows.
  void deliver_updates(const flow::batch& rows, std::int64_t epoch) {
    auto epoch_totals = totals_from_table(rows);
    std::unique_lock<std::mutex> lock(mutex_);
    updates_[epoch] = epoch_totals;
    maybe_fail_in_sink(lock);
  }

  std::size_t distinct_seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return distinct_seen_.size();
  }

  // Stateless: every delivered id, epoch after epoch.
  ids delivered_ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    ids out;
    for (const auto& [epoch, epoch_ids] : delivered_) out.insert(out.end(), epoch_ids.begin(), epoch_ids.end());
    return out;
  }

  // Aggregation in update mode: the table the updates build, applied in epoch order.
  key_totals updated_table() const {
    std::lock_guard<std::mutex> lock(mutex_);
    key_totals table;
    for (const auto& [epoch, rows] : updates_)
      for (const auto& [key, t] : rows) table[key] = t;
    return table;
  }

  struct summary {
    bool failed = false;
    std::int64_t committed_at_failure = -1;  // batchId of the last progress when the failure was thrown
    std::size_t seen_before = 0;             // distinct ids through the stages before the failure
    std::size_t rows_through_stages = 0;     // all rows the stages took, before and after
    std::size_t read_again = 0;              // ids seen before the failure that passed the stages again
    std::size_t changed_redeliveries = 0;
  };
  summary summarize() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::set<std::int64_t> before(seen_before_.begin(), seen_before_.end());
    std::set<std::int64_t> after(seen_after_.begin(), seen_after_.end());
    std::size_t again = 0;
    for (auto id : after) again += before.count(id);
    return {failed_, committed_at_failure_, before.size(), seen_before_.size() + seen_after_.size(), again,
            changed_redeliveries_};
  }

 private:
  void maybe_fail_in_sink(std::unique_lock<std::mutex>& lock) {
    if (variant_.fail_in == failure_point::sink && armed_ && !failed_) fail(lock, "injected sink failure");
  }

  // Notes the last committed epoch (the query may get here before the test holds its handle) and throws.
  void fail(std::unique_lock<std::mutex>& lock, const std::string& what) {
    failed_ = true;
    if (watched_.wait_for(lock, 10s, [&] { return query_.has_value(); })) {
      if (auto progress = query_->last_progress()) committed_at_failure_ = json_int(*progress, "batchId").value_or(-1);
    }
    throw std::runtime_error(what);
  }

  const variant variant_;
  const std::int64_t fail_at_;
  mutable std::mutex mutex_;
  std::condition_variable watched_;
  std::optional<flow::streaming_query> query_;
  bool armed_ = false;   // the stages have seen an id >= fail_at
  bool failed_ = false;  // the failure was thrown
  std::int64_t committed_at_failure_ = -1;
  ids seen_before_, seen_after_;
  std::set<std::int64_t> distinct_seen_;
  std::map<std::int64_t, ids> delivered_;
  std::map<std::int64_t, key_totals> updates_;
  std::size_t changed_redeliveries_ = 0;
};

flow::session_config recovery_config() {
  flow::session_config config;
  config.threads = 2;
  config.parallelism = 2;
  config.progress_history = 100000;  // every epoch's report: restarts and input rows are summed over them
  return config;
}

// What the test feeds and how the run goes.
struct stream_plan {
  ids sent;                        // the ids of the rows the source will deliver; empty for the rate source:
  std::size_t open_ended_rows = 0;  // ... run until this many rows passed, the ids must be 0, 1, 2, ...
  std::int64_t fail_at = 0;        // the failure comes with the first row whose id is at least this
  flow::trigger trigger{};
  std::size_t min_epochs = 20;     // the data must come in at least this many epochs
};

// Handed to a feed: how far the query got.
class feed_context {
 public:
  feed_context(const run_log& log, const flow::streaming_query& query) : log_(log), query_(query) {}
  // Waits until the stages have seen `rows` distinct ids; false when the query ended first or 10 s passed.
  bool wait_until_seen(std::size_t rows) const {
    return eventually([&] { return log_.distinct_seen() >= rows || !query_.is_active(); }, 10s) && query_.is_active();
  }

 private:
  const run_log& log_;
  const flow::streaming_query& query_;
};

using feed_function = std::function<void(const feed_context&)>;

// Sends ids in bursts of burst_rows through send (false: the peer is gone), each after the stages have
// seen the previous one, so that every burst lands in an epoch of its own (or more).
void send_in_bursts(const ids& all, std::size_t burst_rows, const std::function<bool(const ids&)>& send,
                    const feed_context& context) {
  for (std::size_t at = 0; at < all.size(); at += burst_rows) {
    auto burst = part_of(all, at, burst_rows);
    if (!send(burst) || !context.wait_until_seen(at + burst.size())) return;
  }
}

std::string lines_of(const ids& some) {
  std::string text;
  for (auto id : some) text += std::to_string(id) + "\n";
  return text;
}

// Runs input through a stage that keys each row by its id (the id read from id_column), into the sink
// of the variant; feeds it; checks the result against plan.sent, a single restart, no failure, and that
// no epoch committed before the failure passed the stages again. Returns what the stages saw.
run_log::summary check_recovery(flow::session& session, const flow::data_frame& input, const std::string& id_column,
                                const variant& v, const stream_plan& plan, const feed_function& feed = {}) {
  INFO(describe(v));
  auto log = std::make_shared<run_log>(v, plan.fail_at);
  auto keyed = input.map_batches([log, id_column](const flow::batch& b) { return log->through_stage(b, id_column); },
                                 keyed_schema(), "keyed");
  static int runs = 0;  // memory tables are named per run
  const std::string table = "recovery_" + std::to_string(++runs);
  auto aggregated = keyed.group_by({col("key")}).agg({flow::count_all(), flow::sum(col("id"))});
  auto writer = v.aggregate ? aggregated.write_stream() : keyed.write_stream();
  if (!v.aggregate) {
    writer.foreach_batch([log](const flow::batch& rows, std::int64_t epoch) { log->deliver_rows(rows, epoch); });
  } else if (v.fail_in == failure_point::sink) {
    writer.output_mode("update").foreach_batch(
        [log](const flow::batch& rows, std::int64_t epoch) { log->deliver_updates(rows, epoch); });
  } else {
    writer.format("memory").query_name(table).output_mode("complete");
  }
  auto query = writer.trigger(plan.trigger).start();
  log->watch(query);
  if (feed) feed(feed_context(*log, query));

  const std::size_t expected_rows = plan.sent.empty() ? plan.open_ended_rows : plan.sent.size();
  auto result_rows = [&]() -> std::size_t {
    if (!v.aggregate) {
      auto delivered = log->delivered_ids();
      return std::set<std::int64_t>(delivered.begin(), delivered.end()).size();
    }
    if (v.fail_in == failure_point::sink) return static_cast<std::size_t>(rows_in(log->updated_table()));
    try {
      return static_cast<std::size_t>(rows_in(totals_from_table(session.sql("SELECT * FROM " + table).collect_batch())));
    } catch (const flow::error&) {
      return 0;  // the memory table before the first commit
    }
  };
  bool complete = eventually([&] { return result_rows() >= expected_rows || !query.is_active(); }, 20s);
  query.stop();
  INFO("query exception: " << query.exception().value_or("none") << "\nlast progress: " << query.last_progress().value_or("none"));
  CHECK(complete);
  REQUIRE_FALSE(query.exception());

  auto seen = log->summarize();
  CHECK(seen.failed);  // the failure was injected
  std::int64_t restarts = 0, committed_rows = 0;
  for (const auto& p : query.recent_progress()) {
    restarts += json_int(p, "numRestarts").value_or(0);
    if (json_int(p, "batchId").value_or(-1) <= seen.committed_at_failure)
      committed_rows += json_int(p, "numInputRows").value_or(0);
  }
  CHECK(restarts == 1);
  CHECK(query.recent_progress().size() >= plan.min_epochs);

  // Rows seen before the failure are those of committed epochs (committed_rows of them) and of epochs in
  // flight; only the latter may pass the stages again.
  INFO("committed at the failure: epochs 0.." << seen.committed_at_failure << " (" << committed_rows
                                              << " rows); ids through the stages before it " << seen.seen_before
                                              << ", rows in all " << seen.rows_through_stages << ", read again "
                                              << seen.read_again);
  CHECK(seen.committed_at_failure >= 0);
  CHECK(static_cast<std::int64_t>(seen.read_again) <= static_cast<std::int64_t>(seen.seen_before) - committed_rows);

  ids expected = plan.sent;
  if (!v.aggregate) {
    auto delivered = log->delivered_ids();
    std::sort(delivered.begin(), delivered.end());
    if (expected.empty()) expected = id_range(0, static_cast<std::int64_t>(delivered.size()));
    CHECK(delivered.size() >= expected_rows);
    CHECK(delivered == expected);  // every row once: no loss, no duplicate
    CHECK(seen.changed_redeliveries == 0);
  } else {
    auto actual = v.fail_in == failure_point::sink
                      ? log->updated_table()
                      : totals_from_table(session.sql("SELECT * FROM " + table).collect_batch());
    if (expected.empty()) expected = id_range(0, rows_in(actual));
    CHECK(static_cast<std::size_t>(rows_in(actual)) >= expected_rows);
    CHECK(text_of(actual) == text_of(totals_of(expected)));
  }
  return seen;
}

// all as CSV files (header "id") of rows_per_file ids each, named in id order.
void write_id_files(const std::filesystem::path& dir, const ids& all, std::size_t rows_per_file) {
  std::filesystem::create_directories(dir);
  for (std::size_t at = 0, file = 0; at < all.size(); at += rows_per_file, ++file) {
    char name[32];
    std::snprintf(name, sizeof name, "ids-%04zu.csv", file);
    write_file(dir / name, "id\n" + lines_of(part_of(all, at, rows_per_file)));
  }
}

flow::data_frame id_files_stream(flow::session& session, const std::filesystem::path& dir) {
  return session.read_stream().format("csv").option("header", true)
      .schema(flow::make_schema({{"id", flow::type_id::int64, true}}))
      .option("maxFilesPerTrigger", 1).load(dir.string());
}

}  // namespace

TEST_CASE("recovery: file source with 50 one-file epochs and one failure at epoch 32", "[actors][recovery][file]") {
  auto v = GENERATE(every_variant());
  temp_dir dir;
  const ids sent = id_range(0, 2000);
  write_id_files(dir / "in", sent, 40);
  flow::session session(recovery_config());
  check_recovery(session, id_files_stream(session, dir / "in"), "id", v, {sent, 0, 1300});
}

TEST_CASE("recovery: socket source with 50 paced bursts and one failure at the 33rd", "[actors][recovery][socket]") {
  auto v = GENERATE(every_variant());
  listener server;
  flow::session session(recovery_config());
  auto input = session.read_stream().format("socket").option("host", "127.0.0.1")
                   .option("port", static_cast<int>(server.port())).load();
  const ids sent = id_range(0, 2000);
  connection peer;
  check_recovery(session, input, "value", v, {sent, 0, 1300}, [&](const feed_context& context) {
    peer = server.accept();
    REQUIRE(peer.is_open());
    send_in_bursts(sent, 40, [&](const ids& burst) { return peer.send(lines_of(burst)); }, context);
  });
}

TEST_CASE("recovery: zmq PULL source with 50 paced bursts of messages and one failure at the 33rd", "[actors][recovery][zmq]") {
  auto v = GENERATE(every_variant());
  flow::session session(recovery_config());
  auto input = session.read_stream().format("zmq").option("endpoint", "tcp://127.0.0.1:*")
                   .option("socketType", "PULL").option("bind", true).load();
  const ids sent = id_range(0, 2000);
  zmq::context_t context;
  zmq::socket_t producer(context, zmq::socket_type::push);
  producer.set(zmq::sockopt::linger, 0);
  producer.set(zmq::sockopt::sndtimeo, 5000);  // a query that failed for good takes nothing more
  check_recovery(session, input, "value", v, {sent, 0, 1300}, [&](const feed_context& feed) {
    auto endpoints = flow::connectors::bound_zmq_source_endpoints();
    REQUIRE_FALSE(endpoints.empty());
    producer.connect(endpoints.back());
    send_in_bursts(sent, 40, [&](const ids& burst) {
      for (auto id : burst)
        if (!producer.send(zmq::buffer(std::to_string(id)), zmq::send_flags::none)) return false;
      return true;
    }, feed);
  });
}

TEST_CASE("recovery: http-feed source against the feed server with one failure after 1300 tweets", "[actors][recovery][http]") {
  auto v = GENERATE(every_variant());
  feed_server server({"--rate", "1000", "--count", "2000", "--token", "tok"});
  flow::session session(recovery_config());
  auto input = session.read_stream().format("http-feed").option("url", server.url()).option("bearerToken", "tok")
                   .schema(flow::make_schema({{"id", flow::type_id::int64, true}})).load();
  // The server's stream holds tweets 1..2000, arriving over 2 s; a 40 ms trigger makes about 50 epochs.
  check_recovery(session, input, "id", v, {id_range(1, 2001), 0, 1300, flow::processing_time(40ms)});
}

TEST_CASE("recovery: kafka source with maxOffsetsPerTrigger 40 over 2 partitions and one failure at epoch 32",
          "[actors][recovery][kafka]") {
  auto v = GENERATE(every_variant());
  mock_kafka kafka;
  kafka.create_topic("numbers", 2);
  const ids sent = id_range(0, 2000);
  for (auto id : sent) kafka.produce("numbers", static_cast<std::int32_t>(id % 2), "", std::to_string(id));
  kafka.flush();
  flow::session session(recovery_config());
  auto input = session.read_stream().format("kafka").option("kafka.bootstrap.servers", kafka.bootstraps())
                   .option("subscribe", "numbers").option("startingOffsets", "earliest")
                   .option("maxOffsetsPerTrigger", 40).option("kafka.timeoutMs", 5000).load();
  check_recovery(session, input, "value", v, {sent, 0, 1300});
}

TEST_CASE("recovery: rate source with one-second epochs and one failure in the second", "[actors][recovery][rate]") {
  auto v = GENERATE(every_variant());
  flow::session session(recovery_config());
  auto input = session.read_stream().format("rate").option("rowsPerSecond", 200).option("numPartitions", 2).load();
  // Epochs are whole seconds (200 rows each): ids 0..199, 200..399, ...; the run stops after 600 rows.
  check_recovery(session, input, "value", v, {{}, 600, 300, {}, 3});
}

TEST_CASE("recovery: a stateless file query failing at epoch 300 of 305 does not read the 300 committed epochs again",
          "[actors][recovery][file]") {
  temp_dir dir;
  const ids sent = id_range(0, 610);
  write_id_files(dir / "in", sent, 2);
  flow::session session(recovery_config());
  auto seen = check_recovery(session, id_files_stream(session, dir / "in"), "id", {false, failure_point::stage},
                             {sent, 0, 600});
  // Only epochs in flight at the failure (at most max_epochs_in_flight, 4, of 2 rows) may be read again.
  CHECK(seen.read_again <= 8);
  CHECK(seen.rows_through_stages <= sent.size() + 8);
}
