// The cluster over real links: each worker in a network namespace of its own, joined to the driver (this
// test process) by a veth pair. A link cut mid-query (no FIN, no RST: only the heartbeats show it) and a
// link cut before the join; a link throttled with tc tbf while much data crosses it, watching the driver's
// memory. Skipped, saying why, without root or iproute2.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <thread>

#include "../actors/key_sum_files.hpp"
#include "checkpoint_log.hpp"
#include "cluster_support.hpp"
#include "netns_support.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Ends the test, passed with a printed reason, where this process cannot make network namespaces.
#define SKIP_WITHOUT_NETNS()                                                \
  if (const auto unavailable = netns_unavailable(); !unavailable.empty()) { \
    WARN("skipped: " << unavailable);                                       \
    return;                                                                 \
  }

namespace {

// A worker (the small worker program) listening inside ns.
std::unique_ptr<worker_process> worker_in(const network_namespace& ns, const temp_dir& dir, const std::string& secret) {
  return std::make_unique<worker_process>(dir, secret, std::vector<std::string>{}, FLOW_CLUSTER_WORKER,
                                          ns.address() + ":0", ns.launcher());
}

// sum(v) by k over input's files, one file an epoch, on the checkpoint, into the memory table "sums"
// (complete mode), to its end; during_run runs while the query does. Returns the table.
key_totals run_key_sums(session& driver, const fs::path& input, const fs::path& checkpoint,
                        const std::function<void(const streaming_query&)>& during_run = {}) {
  const auto schema = make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}});
  auto query = driver.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
                   .schema(schema).load(input.string())
                   .group_by({col("k")})
                   .agg({{agg_kind::sum, col("v"), "total"}})
                   .write_stream().format("memory").query_name("sums").output_mode("complete")
                   .option("checkpointLocation", checkpoint.string()).trigger(available_now()).start();
  if (during_run) during_run(query);
  REQUIRE(query.await_termination(300s));
  INFO("the query failed: " << query.exception().value_or(""));
  REQUIRE_FALSE(query.exception());
  const batch table = driver.sql("SELECT k, total FROM sums").collect_batch();
  key_totals sums;
  for (std::size_t r = 0; r < table.num_rows(); ++r)
    sums[std::get<std::int64_t>(table.at(r, 0))] = std::get<std::int64_t>(table.at(r, 1));
  return sums;
}

// This process's resident set (VmRSS), in KiB.
std::int64_t resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// The largest resident set seen since construction, sampled every 5 ms by a thread of its own.
class peak_rss {
 public:
  peak_rss() : sampler_([this] {
    while (!done_) {
      const auto now = resident_kib();
      auto peak = peak_.load();
      while (now > peak && !peak_.compare_exchange_weak(peak, now)) {}
      std::this_thread::sleep_for(5ms);
    }
  }) {}
  ~peak_rss() {
    done_ = true;
    sampler_.join();
  }
  std::int64_t kib() const { return peak_; }

 private:
  std::atomic<bool> done_{false};
  std::atomic<std::int64_t> peak_{resident_kib()};
  std::thread sampler_;
};

// The input of the tests that cut a link mid-query: dir/input holding cut_test_files files of key sums; their
// totals.
constexpr int cut_test_files = 60;
key_totals write_cut_test_input(const temp_dir& dir) {
  key_totals expected;
  fs::create_directories(dir / "input");
  write_key_sum_files(dir / "input", cut_test_files, 0, 5000, 500, expected);
  return expected;
}

}  // namespace

// The cut falls after a random number of commits. The bound of the assertion is loose for a loaded 2-core
// machine; the printed figure is what the target (under 1 s) is judged by (docs/deployment.md).
TEST_CASE("a worker's link cut mid-query: the loss is detected, its instances move to the other worker, the sums are exact",
          "[cluster][netns]") {
  SKIP_WITHOUT_NETNS();
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const key_totals expected = write_cut_test_input(dir);
  network_namespace cut_link(0), kept_link(1);
  const auto doomed = worker_in(cut_link, dir, secret), survivor = worker_in(kept_link, dir, secret);
  auto config = driver_config({doomed->address, survivor->address}, secret);
  config.parallelism = 4;  // four aggregation instances, two on each worker
  {
    session whole(config);
    CHECK(run_key_sums(whole, dir / "input", dir / "checkpoint-whole") == expected);
  }
  session driver(config);
  std::mt19937 random(Catch::rngSeed());
  const std::int64_t cut_after = 3 + static_cast<std::int64_t>(random() % 10);
  std::int64_t committed_at_cut = -1;
  const auto checkpoint = dir / "checkpoint-cut";
  const auto sums = run_key_sums(driver, dir / "input", checkpoint, [&](const streaming_query& query) {
    REQUIRE(eventually([&] { return newest_commit(checkpoint) >= cut_after || !query.is_active(); }, 120s, 1ms));
    if (!query.is_active()) return;  // it failed: run_key_sums says why
    committed_at_cut = newest_commit(checkpoint);
    const auto cut_at = std::chrono::steady_clock::now();
    cut_link.cut();
    const auto lost = driver.cluster().await_lost(doomed->address, 10s);
    INFO("worker " << doomed->address << " was not recorded as lost within 10 s of the cut");
    REQUIRE(lost);
    REQUIRE_FALSE(lost->joined);
    const auto detected = std::chrono::duration_cast<std::chrono::milliseconds>(lost->lost_at - cut_at);
    std::cout << "link of worker " << doomed->address << " cut after epoch " << committed_at_cut
              << " committed; recorded as lost after " << detected.count() << " ms (" << lost->lost_reason << ")"
              << std::endl;
    CHECK(detected < 3000ms);
  });
  CHECK(committed_at_cut < cut_test_files - 1);  // the cut fell mid-query
  CHECK(sums == expected);
  CHECK(driver.cluster().joined_count() == 1);
  CHECK(driver.cluster().member(survivor->address)->joined);
}

// Workers that reach each other connect directly (their shuffle's batches do not go through the driver);
// that link cut while both still reach the driver, which therefore loses no worker: both workers report
// it, the query restarts from its checkpoint with the batches going through the driver, and the sums
// are exact.
TEST_CASE("the direct link between two workers cut mid-query: the query restarts, the sums are exact",
          "[cluster][netns]") {
  SKIP_WITHOUT_NETNS();
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const key_totals expected = write_cut_test_input(dir);
  network_namespace first(0), second(1);
  namespace_link between(first, second);
  const auto a = worker_in(first, dir, secret), b = worker_in(second, dir, secret);
  auto config = driver_config({a->address, b->address}, secret);
  config.parallelism = 4;  // the shuffle to the aggregation crosses between the workers
  session driver(config);
  const auto connected = [&] {
    const std::string logs = a->log() + b->log();
    return logs.find("connected to its peer") != std::string::npos;
  };
  std::mt19937 random(Catch::rngSeed());
  const std::int64_t cut_after = 3 + static_cast<std::int64_t>(random() % 10);
  std::int64_t committed_at_cut = -1;
  bool restarted = false;
  const auto checkpoint = dir / "checkpoint";
  const auto sums = run_key_sums(driver, dir / "input", checkpoint, [&](const streaming_query& query) {
    REQUIRE(eventually([&] { return newest_commit(checkpoint) >= cut_after || !query.is_active(); }, 120s, 1ms));
    if (!query.is_active()) return;  // it failed: run_key_sums says why
    INFO("worker logs: " << a->log() << b->log());
    REQUIRE(connected());
    committed_at_cut = newest_commit(checkpoint);
    between.cut();
    // Both ends see the cut, each through its own heartbeats: until the second has, its messages to the
    // first (a restarted generation's too) would go into the dead link.
    REQUIRE(eventually([&] {
      const auto lost = [](const std::string& log) { return log.find("lost its direct link to its peer") != std::string::npos; };
      return lost(a->log()) && lost(b->log());
    }, 10s, 10ms));
    // The report restarted the dataflow (an epoch's progress counts the restart).
    eventually([&] {
      for (const auto& p : query.recent_progress()) restarted |= json_int(p, "numRestarts").value_or(0) > 0;
      return restarted || !query.is_active();
    }, 60s, 10ms);
  });
  CHECK(restarted);
  CHECK(committed_at_cut < cut_test_files - 1);  // the cut fell mid-query
  CHECK(sums == expected);
  CHECK(driver.cluster().joined_count() == 2);  // no worker was taken for lost
}

// The same cut, then the link working again: at the next join (a third worker announcing itself) the
// driver names the peers again, the workers link directly again under the running query, whose messages
// took the route through the driver until then; so they restart it again from its checkpoint. The query
// runs on a processing-time trigger while the test adds files; the sums stay exact.
TEST_CASE("a direct link between two workers cut and working again: linked again at the next join, the query restarts, the sums are exact",
          "[cluster][netns]") {
  SKIP_WITHOUT_NETNS();
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  key_totals expected;
  std::int64_t next_row = 0;
  // Files appear whole in the input: written beside it, then renamed into it.
  const auto add_files = [&](int files) {
    const auto staging = dir / ("staging-" + std::to_string(next_row));
    fs::create_directories(staging);
    write_key_sum_files(staging, files, next_row, 2000, 500, expected);
    next_row += files * 2000;
    for (const auto& file : fs::directory_iterator(staging)) fs::rename(file.path(), dir / "input" / file.path().filename());
  };
  fs::create_directories(dir / "input");
  add_files(5);
  network_namespace first(0), second(1);
  namespace_link between(first, second);
  const auto a = worker_in(first, dir, secret), b = worker_in(second, dir, secret);
  auto config = driver_config({a->address, b->address}, secret);
  config.parallelism = 4;  // the shuffle to the aggregation crosses between the workers
  config.listen = free_address();
  session driver(config);
  const auto checkpoint = dir / "checkpoint";
  const auto schema = make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}});
  auto query = driver.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1LL)
                   .schema(schema).load((dir / "input").string())
                   .group_by({col("k")})
                   .agg({{agg_kind::sum, col("v"), "total"}})
                   .write_stream().format("memory").query_name("sums").output_mode("complete")
                   .option("checkpointLocation", checkpoint.string()).trigger(processing_time(20ms)).start();
  const auto logs = [&] { return a->log() + b->log(); };
  const auto count_in_logs = [&](const std::string& text) {
    const std::string all = logs();
    int n = 0;
    for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++n;
    return n;
  };
  const auto sums_now = [&] {
    const batch table = driver.sql("SELECT k, total FROM sums").collect_batch();
    key_totals sums;
    for (std::size_t r = 0; r < table.num_rows(); ++r)
      sums[std::get<std::int64_t>(table.at(r, 0))] = std::get<std::int64_t>(table.at(r, 1));
    return sums;
  };
  // The logs as they are when an assertion fails.
  const auto require = [&](bool holds, const std::string& what) {
    INFO(what << "\nthe query's failure: " << query.exception().value_or("none") << "\nworker logs:\n" << logs());
    REQUIRE(holds);
  };
  // Each end of the link between a and b logs it.
  const auto links_between = [&] {
    return std::min(count_in_logs("connected to its peer " + a->address), count_in_logs("connected to its peer " + b->address));
  };
  require(eventually([&] { return newest_commit(checkpoint) >= 2 || !query.is_active(); }, 120s, 1ms) && query.is_active(),
          "two epochs committed");
  require(links_between() == 1, "a and b linked directly");
  between.cut();
  require(eventually([&] { return count_in_logs("lost its direct link to its peer") == 2; }, 10s, 10ms), "both ends saw the cut");
  add_files(5);  // through the driver's route
  require(eventually([&] { return sums_now() == expected || !query.is_active(); }, 120s, 100ms) && query.is_active(),
          "the sums caught up after the cut");

  const auto before_relink = json_int(query.last_progress().value_or(""), "batchId").value_or(-1);
  between.restore();
  worker_process third(dir, secret, {"--flow.join=" + config.listen});
  require(eventually([&] { return driver.cluster().joined_count() == 3; }, 30s, 10ms), "the third worker joined");
  require(eventually([&] { return links_between() == 2 || !query.is_active(); }, 60s, 10ms), "a and b linked again");
  // The end that opened the link reports it (once: one relink, one restart).
  require(eventually([&] { return count_in_logs("has a direct link to its peer") == 1 || !query.is_active(); }, 10s, 10ms),
          "the relink reported");
  add_files(5);  // through the direct link again
  require(eventually([&] { return sums_now() == expected || !query.is_active(); }, 120s, 100ms) && query.is_active(),
          "the sums caught up after the relink");
  bool restarted = false;
  for (const auto& p : query.recent_progress())
    restarted |= json_int(p, "batchId").value_or(-1) > before_relink && json_int(p, "numRestarts").value_or(0) > 0;
  CHECK(restarted);
  // Nothing counted twice afterwards: two more files, and the sums again exactly those of every file.
  add_files(2);
  CHECK(eventually([&] { return sums_now() == expected || !query.is_active(); }, 60s, 100ms));
  CHECK(sums_now() == expected);
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("a worker's link cut before the join: the driver fails fast naming the worker", "[cluster][netns]") {
  SKIP_WITHOUT_NETNS();
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  network_namespace link(0);
  const auto worker = worker_in(link, dir, secret);
  link.cut();
  auto config = driver_config({worker->address}, secret);
  config.join_timeout = session_config{}.join_timeout;
  const auto start = std::chrono::steady_clock::now();
  const std::string message = error_of([&] { session driver(config); });
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::cout << "driver with its worker's link cut failed after " << took.count() << " ms: " << message << std::endl;
  CHECK_THAT(message, Catch::Contains("cannot reach worker " + worker->address + ": no answer"));
  CHECK(took < 8s);
}

// Credits hold within the driver; across the link nothing but the bound on epochs in flight holds the
// source back: a throttled worker's share of every epoch queues in the driver's middleman until the
// link takes it, at most max_epochs_in_flight epochs of it. The driver's peak memory over the run, above
// its idle size, must stay well below what queueing the whole input would take.
TEST_CASE("a throttled worker link: the driver's memory stays bounded while the input streams through it",
          "[cluster][netns]") {
  SKIP_WITHOUT_NETNS();
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  key_totals expected;
  constexpr int files = 48;
  fs::create_directories(dir / "input");
  // 20000 keys a file: the partial sums crossing to the workers are as many rows as the keys, while the
  // state (and the memory table) stays at 20000 rows.
  write_key_sum_files(dir / "input", files, 0, 40000, 20000, expected);
  network_namespace slow_link(0), fast_link(1);
  slow_link.throttle("8mbit");
  const auto slow = worker_in(slow_link, dir, secret), fast = worker_in(fast_link, dir, secret);
  auto config = driver_config({slow->address, fast->address}, secret);
  config.parallelism = 4;
  session driver(config);
  peak_rss peak;
  const auto idle_kib = resident_kib();
  std::int64_t early_peak_kib = 0;
  const auto checkpoint = dir / "checkpoint";
  const auto started = std::chrono::steady_clock::now();
  const auto sums = run_key_sums(driver, dir / "input", checkpoint, [&](const streaming_query& query) {
    REQUIRE(eventually([&] { return newest_commit(checkpoint) >= files / 4 || !query.is_active(); }, 240s, 5ms));
    early_peak_kib = peak.kib();
  });
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  const auto growth_kib = peak.kib() - idle_kib;
  std::cout << "throttled link: " << files << " epochs in " << took.count() << " ms; driver RSS " << idle_kib / 1024
            << " MiB joined and idle, peak " << early_peak_kib / 1024 << " MiB in the first " << files / 4
            << " epochs, " << peak.kib() / 1024 << " MiB in all (+" << growth_kib / 1024 << " MiB)" << std::endl;
  CHECK(sums == expected);
#ifdef __SANITIZE_ADDRESS__
  WARN("the memory bound is not checked under AddressSanitizer: its quarantine keeps freed memory resident");
#else
  // Measured here: +18 MiB with the default 4 epochs in flight, +68 MiB with 1000 (every epoch queued).
  CHECK(growth_kib < 32 * 1024);
#endif
}
