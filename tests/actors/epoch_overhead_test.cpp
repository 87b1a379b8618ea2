// What an epoch costs besides its rows: the threads a query wakes per epoch. Counted with getrusage's
// voluntary context switches of one thread (a thread sleeping on a condition variable switches once per
// wake-up), so the checks do not depend on the machine's speed or load.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include "flow/session.hpp"
#include "retail_day.hpp"

namespace {

long voluntary_switches_of_this_thread() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nvcsw;
}

}  // namespace

TEST_CASE("a thread awaiting a query's end is not woken by every epoch's status and progress", "[epoch_overhead]") {
  flow::test::temp_dir dir;
  constexpr std::size_t days = 40;
  const auto data = flow::test::retail_days(dir, days);
  flow::session_config config;
  config.parallelism = 2;
  flow::session session(config);
  std::size_t rows = 0;
  auto query = session.read_stream()
                   .format("csv")
                   .option("header", true)
                   .option("maxFilesPerTrigger", 1)
                   .schema(retail::retail_schema())
                   .load((data / "*.csv").string())
                   .group_by({flow::col("Country")})
                   .sum("Quantity")
                   .write_stream()
                   .output_mode("update")
                   .trigger(flow::available_now())
                   .foreach_batch([&](const flow::batch& b, std::int64_t) { rows += b.num_rows(); })
                   .start();
  const long before = voluntary_switches_of_this_thread();
  query.await_termination();
  const long woken = voluntary_switches_of_this_thread() - before;
  REQUIRE_FALSE(query.exception());
  const auto last = query.last_progress();
  REQUIRE(last);
  CHECK(flow::test::json_int(*last, "batchId") == static_cast<std::int64_t>(days) - 1);  // one epoch per file
  CHECK(rows > 0);
  // Every epoch published statuses and a progress report; only the query's end concerns the waiter.
  CHECK(woken < static_cast<long>(days) / 4);
}
