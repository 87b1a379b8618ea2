// A lost worker is noticed: SIGKILL (the connection closes) and SIGSTOP (a hung process: only the
// middleman's heartbeats and connection timeout show it), each measured from the signal to the record.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <iostream>

#include "cluster_support.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;

namespace {

// Signals the worker and returns how long the driver took to record its loss (fails past `bound`).
std::chrono::milliseconds time_to_loss(session& driver, worker_process& worker, int signal_number,
                                       std::chrono::milliseconds bound) {
  const auto sent = std::chrono::steady_clock::now();
  worker.process->signal(signal_number);
  const auto member = driver.cluster().await_lost(worker.address, bound);
  REQUIRE(member);
  INFO("worker " << worker.address << " was not recorded as lost within " << bound.count() << " ms");
  REQUIRE_FALSE(member->joined);
  return std::chrono::duration_cast<std::chrono::milliseconds>(member->lost_at - sent);
}

}  // namespace

// The bounds are generous for a loaded machine (the suite runs two tests at once, also under the
// sanitizers); the printed figures are what the target of under 1 s is judged by (docs/deployment.md).
TEST_CASE("a worker killed with SIGKILL is recorded as lost within a bounded time", "[cluster][loss]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process doomed(dir, secret), survivor(dir, secret);
  session driver(driver_config({doomed.address, survivor.address}, secret));
  REQUIRE(driver.cluster().joined_count() == 2);
  const auto took = time_to_loss(driver, doomed, SIGKILL, 3000ms);
  std::cout << "SIGKILLed worker recorded as lost after " << took.count() << " ms" << std::endl;
  CHECK(took < 3000ms);
  const auto member = driver.cluster().member(doomed.address);
  CHECK_THAT(member->lost_reason, Catch::Contains("connection lost"));
  CHECK(driver.cluster().member(survivor.address)->joined);
  CHECK(driver.cluster().joined_count() == 1);
}

TEST_CASE("a hung worker (SIGSTOP) is recorded as lost by the heartbeat timeout", "[cluster][loss]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process hung(dir, secret);
  session driver(driver_config({hung.address}, secret));
  const auto took = time_to_loss(driver, hung, SIGSTOP, 5000ms);
  std::cout << "SIGSTOPped worker recorded as lost after " << took.count() << " ms" << std::endl;
  CHECK(took < 5000ms);
  hung.process->signal(SIGCONT);
}
