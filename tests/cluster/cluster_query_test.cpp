// Queries run on the workers: driver and workers as separate processes on 127.0.0.1 (the examples
// themselves, or this test as the driver). Each result equals the embedded run's byte for byte; a worker SIGKILLed
// during a run costs a restart (its instances re-placed on the remaining worker, their state restored from
// the coordinator's copy of the last commit, the epochs since replayed), never a row.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <iostream>
#include <random>
#include <regex>
#include <thread>

#include "checkpoint_log.hpp"
#include "cluster_support.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> retail_args(const fs::path& data, const fs::path& output) {
  return {"--data", data.string(), "--trigger", "available-now", "--max-files-per-trigger", "1", "--output", output.string()};
}

std::string workers_flag(const std::vector<const worker_process*>& workers) {
  std::string list;
  for (const auto* w : workers) list += (list.empty() ? "" : ",") + w->address;
  return "--flow.workers=" + list;
}

// The file source's numBytesRead in the last progress a driver printed: the file bytes read in its process.
std::int64_t bytes_read_by_driver(const std::string& log) {
  std::smatch m;
  INFO("the driver's output: " << log);
  REQUIRE(std::regex_search(log, m, std::regex("\"numBytesRead\" ?: ?([0-9]+)")));
  return std::stoll(m[1]);
}

// The same result as the embedded run, byte for byte: the same rows in the same order with the same sums
// to the last bit (units go to source instances in turn and a final aggregation folds an epoch's partial
// sums in upstream-instance order, whatever the network's timing).
void check_same_result(const fs::path& actual, const fs::path& embedded) {
  const auto expected = read_file(embedded);
  REQUIRE(std::count(expected.begin(), expected.end(), '\n') > 100);
  CHECK(read_file(actual) == expected);
}

// Runs program with args to its end (status 0 required); returns its output.
std::string run_to_end(const std::string& program, const std::vector<std::string>& args, const fs::path& log) {
  child_process run(program, args, log);
  const int status = run.wait_exit(180s);
  INFO(program << " failed:\n" << read_file(log));
  REQUIRE(status == 0);
  return read_file(log);
}

}  // namespace

TEST_CASE("retail_by_day on a driver and two workers writes the embedded run's result",
          "[cluster][query]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 20);
  run_to_end(FLOW_RETAIL_EXAMPLE, retail_args(data, dir / "embedded.csv"), dir / "embedded.log");
  worker_process a(dir, secret, {}, FLOW_RETAIL_EXAMPLE), b(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  auto args = retail_args(data, dir / "cluster.csv");
  args.insert(args.end(), {workers_flag({&a, &b}), "--flow.secret-file", secret});
  run_to_end(FLOW_RETAIL_EXAMPLE, args, dir / "cluster.log");
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
  // The aggregation ran on the workers: both processed rows of every epoch (one file each).
  for (auto* w : {&a, &b}) {
    const auto figures = last_figures(*w);
    CHECK(figures.rows > 0);
    CHECK(figures.epochs == 20);
  }
}

// The file source's instances run on the workers and read the files there (on a path every node sees); the
// driver's reader only plans each epoch's files. Each instance takes the chunks the driver's reader would
// have dealt it, so the result is the embedded run's to the last bit.
TEST_CASE("retail_by_day on two workers: the workers read the files, the driver only plans them",
          "[cluster][query][split]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 6);
  std::int64_t file_bytes = 0;
  for (const auto& file : fs::directory_iterator(data)) file_bytes += static_cast<std::int64_t>(file.file_size());
  const auto embedded = run_to_end(FLOW_RETAIL_EXAMPLE, retail_args(data, dir / "embedded.csv"), dir / "embedded.log");
  CHECK(bytes_read_by_driver(embedded) == file_bytes);
  worker_process a(dir, secret, {}, FLOW_RETAIL_EXAMPLE), b(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  auto args = retail_args(data, dir / "cluster.csv");
  args.insert(args.end(), {workers_flag({&a, &b}), "--flow.secret-file", secret});
  const auto cluster = run_to_end(FLOW_RETAIL_EXAMPLE, args, dir / "cluster.log");
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
  CHECK(bytes_read_by_driver(cluster) == 0);
  const auto first = last_figures(a), second = last_figures(b);
  CHECK(first.file_bytes > 0);
  CHECK(second.file_bytes > 0);
  // The example's static look at the first day (count(), show()) reads it twice more, on the workers too.
  CHECK(first.file_bytes + second.file_bytes == file_bytes + 2 * static_cast<std::int64_t>(fs::file_size(data / "2010-12-01.csv")));
}

// The driver plans the files by the path it was given; the workers, in another working directory, read them
// by their absolute paths.
TEST_CASE("retail_by_day given a relative data path reads it on workers that run in another directory",
          "[cluster][query][split]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 3);
  REQUIRE(fs::current_path() != dir.path());  // where the workers run
  run_to_end(FLOW_RETAIL_EXAMPLE, retail_args(data, dir / "embedded.csv"), dir / "embedded.log");
  worker_process a(dir, secret, {}, FLOW_RETAIL_EXAMPLE), b(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  auto args = retail_args(fs::relative(data, dir.path()), dir / "cluster.csv");
  args.insert(args.end(), {workers_flag({&a, &b}), "--flow.secret-file", secret});
  args.insert(args.begin(), {"-C", dir.path().string(), FLOW_RETAIL_EXAMPLE});
  run_to_end("/usr/bin/env", args, dir / "cluster.log");
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
}

TEST_CASE("a word count's shuffle crosses the workers: hash partitions on both, the embedded result",
          "[cluster][query]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  fs::create_directories(dir / "words");
  const std::vector<std::string> words{"apple", "pear", "fig", "kiwi", "plum", "lime", "date", "sloe"};
  std::mt19937 random(7);
  for (int file = 0; file < 4; ++file) {
    std::string text = "word\n";
    for (int i = 0; i < 500; ++i) text += words[random() % words.size()] + "\n";
    write_file(dir / "words" / ("part-" + std::to_string(file) + ".csv"), text);
  }
  const auto schema = make_schema({{"word", type_id::string, true}});
  auto count_words = [&](session& s) {
    std::vector<std::vector<value>> rows;
    for (const auto& b : s.read().format("csv").option("header", "true").schema(schema).load((dir / "words").string())
                             .group_by({col("word")}).count().collect())
      for (auto& row : sorted_rows(b)) rows.push_back(std::move(row));
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  session_config embedded;
  embedded.parallelism = 4;
  session here(embedded);
  const auto expected = count_words(here);
  REQUIRE(expected.size() == words.size());
  worker_process a(dir, secret), b(dir, secret);
  {
    auto config = driver_config({a.address, b.address}, secret);
    config.parallelism = 4;  // four hash partitions, two on each worker
    session driver(config);
    CHECK(count_words(driver) == expected);
  }
  for (auto* w : {&a, &b}) CHECK(last_figures(*w).rows > 0);
}

// The example's operators are C++ classes without a descriptor (flow/stream_operator.hpp), which cannot be
// shipped to a worker: the query runs in the driver, says why, and writes the embedded run's files.
TEST_CASE("the custom topology example, whose operators cannot ship, runs in the driver with the embedded result",
          "[cluster][query]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 10);
  const std::vector<std::string> base{"--data", data.string(), "--parallelism", "3"};
  auto embedded = base;
  embedded.insert(embedded.end(), {"--output-dir", (dir / "embedded").string()});
  run_to_end(FLOW_CUSTOM_TOPOLOGY_EXAMPLE, embedded, dir / "embedded.log");
  worker_process a(dir, secret, {}, FLOW_CUSTOM_TOPOLOGY_EXAMPLE), b(dir, secret, {}, FLOW_CUSTOM_TOPOLOGY_EXAMPLE);
  auto cluster = base;
  cluster.insert(cluster.end(), {"--output-dir", (dir / "cluster").string(), workers_flag({&a, &b}), "--flow.secret-file", secret});
  child_process driver(FLOW_CUSTOM_TOPOLOGY_EXAMPLE, cluster, dir / "cluster.log", dir / "cluster.err");
  REQUIRE(driver.wait_exit(180s) == 0);
  CHECK_THAT(read_file(dir / "cluster.err"),
             Catch::Contains("the query runs in the driver, not on the workers: cannot ship the dataflow graph: vertex "
                             "'invoice_revenue' runs operator 'invoice_revenue', which has no descriptor"));
  for (const auto* file : {"country_revenue.csv", "stock_units.csv"}) {
    INFO(file);
    REQUIRE(fs::file_size(dir / "embedded" / file) > 0);
    CHECK(read_file(dir / "cluster" / file) == read_file(dir / "embedded" / file));
  }
  for (auto* w : {&a, &b}) CHECK(last_figures(*w).rows == 0);
}

// The kill falls at a random moment after the driver's first commits: while an epoch runs on the worker,
// between epochs, or during a commit.
TEST_CASE("a worker SIGKILLed during the retail run: its instances move to the other worker, the result is exact",
          "[cluster][query][loss]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 60);
  run_to_end(FLOW_RETAIL_EXAMPLE, retail_args(data, dir / "embedded.csv"), dir / "embedded.log");
  worker_process doomed(dir, secret, {}, FLOW_RETAIL_EXAMPLE), survivor(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  auto args = retail_args(data, dir / "cluster.csv");
  args.insert(args.end(), {workers_flag({&doomed, &survivor}), "--flow.secret-file", secret, "--checkpoint",
                           (dir / "checkpoint").string()});
  child_process driver(FLOW_RETAIL_EXAMPLE, args, dir / "driver.log");
  std::mt19937 random(Catch::rngSeed());
  const std::int64_t kill_after = 2 + static_cast<std::int64_t>(random() % 20);
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") >= kill_after; }, 120s, 1ms));
  std::this_thread::sleep_for(std::chrono::milliseconds(random() % 20));
  const auto killed_at = std::chrono::steady_clock::now();
  const auto committed_at_kill = newest_commit(dir / "checkpoint");
  doomed.process->signal(SIGKILL);
  // Recovery: from the kill to the next commit (detection, the restart's backoff, re-placement, replay).
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") > committed_at_kill + 1; }, 60s, 1ms));
  const auto recovered = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  std::cout << "worker SIGKILLed after epoch " << committed_at_kill << " committed; the query committed again "
            << recovered.count() << " ms later" << std::endl;
  const int status = driver.wait_exit(180s);
  INFO("the driver's log:\n" << read_file(dir / "driver.log"));
  REQUIRE(status == 0);
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
  // The survivor's source instances read the files, those of the replayed epochs too.
  const auto figures = last_figures(survivor);
  CHECK(figures.rows > 0);
  CHECK(figures.file_bytes > 0);
}

// Every worker lost: the query cannot be placed again and fails for good; the driver says why and exits
// (it used to hang: actions after the failed spawn's close, waiting behind checkpoint writes, ran on a
// coordinator that had quit and kept it alive).
TEST_CASE("a driver whose only worker is SIGKILLed fails with a clear error and exits", "[cluster][query][loss]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 60);
  worker_process only(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  auto args = retail_args(data, dir / "cluster.csv");
  args.insert(args.end(), {workers_flag({&only}), "--flow.secret-file", secret, "--checkpoint", (dir / "checkpoint").string()});
  child_process driver(FLOW_RETAIL_EXAMPLE, args, dir / "driver.log", dir / "driver.err");
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") >= 5; }, 120s, 1ms));
  only.process->signal(SIGKILL);
  CHECK(driver.wait_exit(60s) == 1);
  CHECK_THAT(read_file(dir / "driver.err"),
             Catch::Contains("cannot place vertex 'source': no worker of the cluster is available (all 1 lost)"));
}

// A worker that comes back joins the running query: the driver tries a lost worker again (at once, then
// with a backoff) and the next placement of the dataflow, here the recovery from the other worker's loss,
// puts instances on it. Epochs every 100 ms, so that the kills, the restart and the join fall in the run.
TEST_CASE("a SIGKILLed worker started again on its port rejoins and takes instances at the next placement",
          "[cluster][query][loss][rejoin]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const std::size_t days = 60;
  const auto data = retail_days(dir, days);
  run_to_end(FLOW_RETAIL_EXAMPLE, retail_args(data, dir / "embedded.csv"), dir / "embedded.log");
  worker_process first(dir, secret, {}, FLOW_RETAIL_EXAMPLE), second(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  const std::vector<std::string> args{"--data", data.string(), "--trigger", "100ms", "--max-files-per-trigger", "1",
                                      "--refreshes", "14", "--output", (dir / "cluster.csv").string(),
                                      workers_flag({&first, &second}), "--flow.secret-file", secret,
                                      "--checkpoint", (dir / "checkpoint").string()};
  child_process driver(FLOW_RETAIL_EXAMPLE, args, dir / "driver.log", dir / "driver.err");
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") >= 3; }, 60s, 1ms));
  first.process->signal(SIGKILL);
  const auto first_lost_at = newest_commit(dir / "checkpoint");
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") > first_lost_at + 1; }, 60s, 1ms));
  // The same address again: the driver's next try joins it.
  worker_process again(dir, secret, {}, FLOW_RETAIL_EXAMPLE, first.address);
  REQUIRE(eventually([&] { return again.log().find(" joined") != std::string::npos; }, 30s));
  CHECK(eventually([&] { return read_file(dir / "driver.err").find("worker " + first.address + " joined again") != std::string::npos; }, 10s));
  const auto second_lost_at = newest_commit(dir / "checkpoint");
  INFO("the run must still have epochs to go when the second worker is killed");
  REQUIRE(second_lost_at < static_cast<std::int64_t>(days) - 10);
  second.process->signal(SIGKILL);
  const int status = driver.wait_exit(180s);
  INFO("the driver's log:\n" << read_file(dir / "driver.log") << read_file(dir / "driver.err"));
  REQUIRE(status == 0);
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
  CHECK(last_figures(again).rows > 0);
}

// Before the rebalance a worker that joined a running query got instances only at the next failure's
// placement: without one it stayed idle to the end.
TEST_CASE("a worker that joins a running query takes instances at the next epoch boundary, no failure needed",
          "[cluster][query][rebalance]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const std::size_t days = 60;
  const auto data = retail_days(dir, days);
  run_to_end(FLOW_RETAIL_EXAMPLE, retail_args(data, dir / "embedded.csv"), dir / "embedded.log");
  worker_process present(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  const std::string late_address = free_address();
  const std::vector<std::string> args{"--data", data.string(), "--trigger", "100ms", "--max-files-per-trigger", "1",
                                      "--refreshes", "14", "--output", (dir / "cluster.csv").string(),
                                      "--flow.workers=" + present.address + "," + late_address, "--flow.secret-file", secret,
                                      "--checkpoint", (dir / "checkpoint").string()};
  child_process driver(FLOW_RETAIL_EXAMPLE, args, dir / "driver.log", dir / "driver.err");
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") >= 3; }, 60s, 1ms));
  worker_process late(dir, secret, {}, FLOW_RETAIL_EXAMPLE, late_address);
  REQUIRE(eventually([&] { return late.log().find(" joined") != std::string::npos; }, 30s));
  INFO("the run must still have epochs to go when the worker joins");
  REQUIRE(newest_commit(dir / "checkpoint") < static_cast<std::int64_t>(days) - 10);
  const int status = driver.wait_exit(180s);
  INFO("the driver's log:\n" << read_file(dir / "driver.log") << read_file(dir / "driver.err"));
  REQUIRE(status == 0);
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
  CHECK(last_figures(late).rows > 0);
  CHECK(last_figures(present).rows > 0);
}

// A worker that is not in --flow.workers joins a running driver by announcing itself on the driver's
// --flow.listen (--flow.join); one with another secret that announces itself is refused by both sides. The
// listed worker is then SIGKILLed: the query goes on with the announced one alone, the result exact.
TEST_CASE("a worker started with --flow.join joins a running driver, takes its instances and carries the query alone",
          "[cluster][query][rebalance][announce]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto other_secret = make_secret_file(dir, "other", "another-cluster-secret-4567");
  const std::size_t days = 60;
  const auto data = retail_days(dir, days);
  run_to_end(FLOW_RETAIL_EXAMPLE, retail_args(data, dir / "embedded.csv"), dir / "embedded.log");
  worker_process listed(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  const std::string driver_address = free_address();
  const std::vector<std::string> args{"--data", data.string(), "--trigger", "100ms", "--max-files-per-trigger", "1",
                                      "--refreshes", "14", "--output", (dir / "cluster.csv").string(),
                                      workers_flag({&listed}), "--flow.listen=" + driver_address, "--flow.secret-file", secret,
                                      "--checkpoint", (dir / "checkpoint").string()};
  child_process driver(FLOW_RETAIL_EXAMPLE, args, dir / "driver.log", dir / "driver.err");
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") >= 3; }, 60s, 1ms));

  worker_process impostor(dir, other_secret, {"--flow.join=" + driver_address}, FLOW_RETAIL_EXAMPLE);
  CHECK(eventually([&] {
    return read_file(dir / "driver.err").find("refused the worker that announced itself as " + impostor.address) != std::string::npos;
  }, 30s));
  CHECK(eventually([&] { return impostor.log().find("refused the join of") != std::string::npos; }, 10s));

  worker_process late(dir, secret, {"--flow.join=" + driver_address}, FLOW_RETAIL_EXAMPLE);
  REQUIRE(eventually([&] { return late.log().find(" joined") != std::string::npos; }, 30s));
  REQUIRE(eventually([&] {
    return read_file(dir / "driver.err").find("worker " + late.address + " joined (it announced itself)") != std::string::npos;
  }, 10s));
  // The rebalance at the next commit places instances on it; then the listed worker dies.
  const auto joined_at = newest_commit(dir / "checkpoint");
  REQUIRE(eventually([&] { return newest_commit(dir / "checkpoint") > joined_at + 2; }, 60s, 1ms));
  INFO("the run must still have epochs to go when the listed worker is killed");
  REQUIRE(newest_commit(dir / "checkpoint") < static_cast<std::int64_t>(days) - 10);
  listed.process->signal(SIGKILL);
  const int status = driver.wait_exit(180s);
  INFO("the driver's log:\n" << read_file(dir / "driver.log") << read_file(dir / "driver.err"));
  REQUIRE(status == 0);
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
  CHECK(last_figures(late).rows > 0);
  CHECK(last_figures(impostor).rows == 0);
}

// Sums of doubles depend on the order they are added in. Small units over four instances make many
// partial sums per group and epoch: with units handed to whichever instance had credit, or partial sums
// folded in their arrival order, the last bits differed from run to run. Now the same to the last bit:
// two embedded runs and a run on two workers.
TEST_CASE("an aggregation's sums of doubles are the same to the last bit embedded and on two workers",
          "[cluster][query][determinism]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 10);
  auto sums = [&](session_config config) {
    config.parallelism = 4;
    config.max_unit_bytes = 8 * 1024;
    session s(config);
    const auto sales = s.read().format("csv").option("header", true).option("inferSchema", true).load(data.string());
    std::vector<std::vector<value>> rows;
    for (const auto& b : sales.select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"), col("InvoiceDate")})
                             .group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")})
                             .sum("total_cost")
                             .collect())
      for (auto& row : sorted_rows(b)) rows.push_back(std::move(row));
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  const auto embedded = sums(session_config{});
  REQUIRE(embedded.size() > 500);
  CHECK(sums(session_config{}) == embedded);
  worker_process a(dir, secret), b(dir, secret);
  CHECK(sums(driver_config({a.address, b.address}, secret)) == embedded);
}

TEST_CASE("retail_by_day with a watermark in append mode on a driver and two workers: the embedded run's windows",
          "[cluster][query][event-time]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto data = retail_days(dir, 5);
  auto args = [&](const fs::path& output) {
    auto a = retail_args(data, output);
    a.insert(a.end(), {"--window", "1 hour", "--slide", "30 minutes", "--watermark", "2 hours", "--output-mode", "append"});
    return a;
  };
  run_to_end(FLOW_RETAIL_EXAMPLE, args(dir / "embedded.csv"), dir / "embedded.log");
  worker_process a(dir, secret, {}, FLOW_RETAIL_EXAMPLE), b(dir, secret, {}, FLOW_RETAIL_EXAMPLE);
  auto cluster = args(dir / "cluster.csv");
  cluster.insert(cluster.end(), {workers_flag({&a, &b}), "--flow.secret-file", secret});
  run_to_end(FLOW_RETAIL_EXAMPLE, cluster, dir / "cluster.log");
  // The watermark reached the aggregation's instances on the workers: windows were closed and emitted.
  CHECK(read_customer_hour_sums(dir / "embedded.csv", 3).size() > 100);
  check_same_result(dir / "cluster.csv", dir / "embedded.csv");
}

// A driver's query ships its coordinator's handle to the workers, so the driver's middleman watches the
// coordinator: the session must still end at once after its query, every time (it used to hang now and
// then, in the actor system's wait for the detached coordinator's thread).
TEST_CASE("a driver session ends promptly after its query ended in repeated runs", "[cluster][query][shutdown]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  fs::create_directories(dir / "words");
  write_file(dir / "words" / "part-0.csv", "word\napple\npear\napple\nfig\n");
  const auto schema = make_schema({{"word", type_id::string, true}});
  worker_process worker(dir, secret);
  for (int round = 1; round <= 8; ++round) {
    INFO("round " << round);
    // The session lives and ends on a thread of its own, so that a hang fails the test instead of stalling
    // it (made on one thread and ended on another, CAF's actor system would wait for the first one's hold
    // on its logger).
    auto rows = std::make_shared<std::promise<std::size_t>>();
    auto ended = rows->get_future();
    std::thread([rows, config = driver_config({worker.address}, secret), words = (dir / "words").string(), schema] {
      try {
        session driver(config);
        std::size_t count = 0;
        for (const auto& b : driver.read().format("csv").option("header", "true").schema(schema)
                                 .load(words).group_by({col("word")}).count().collect())
          count += b.num_rows();
        rows->set_value_at_thread_exit(count);  // once the session is gone
      } catch (...) {
        rows->set_exception_at_thread_exit(std::current_exception());
      }
    }).detach();
    REQUIRE(ended.wait_for(30s) == std::future_status::ready);
    CHECK(ended.get() == 3);
  }
}
