// Batch functions by name: found again by the name they were registered under, each name once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include "flow/function_registry.hpp"
#include "test_support.hpp"

using flow::test::error_of;

TEST_CASE("a registered batch function is found by its name and runs", "[function_registry]") {
  flow::register_batch_function("test-double", [](const flow::batch& rows) {
    std::vector<std::int64_t> doubled;
    for (std::size_t r = 0; r < rows.num_rows(); ++r) doubled.push_back(2 * std::get<std::int64_t>(rows.at(r, 0)));
    return flow::batch(rows.schema_ref(), {flow::make_int_column(doubled)});
  });
  auto schema = flow::make_schema({{"value", flow::type_id::int64, false}});
  auto doubled = flow::find_batch_function("test-double")(flow::batch(schema, {flow::make_int_column({1, 2, 3})}));
  CHECK(std::get<std::int64_t>(doubled.at(2, 0)) == 6);
  const auto names = flow::batch_function_names();
  CHECK(std::find(names.begin(), names.end(), "test-double") != names.end());
}

TEST_CASE("batch functions: twice, empty and unknown names are clear errors", "[function_registry]") {
  auto identity = [](const flow::batch& rows) { return rows; };
  flow::register_batch_function("test-b", identity);
  flow::register_batch_function("test-a", identity);
  CHECK_THAT(error_of([&] { flow::register_batch_function("test-a", identity); }),
             Catch::Contains("flow::register_batch_function(\"test-a\"): a batch function named 'test-a' is already "
                             "registered; choose another name"));
  CHECK_THAT(error_of([&] { flow::register_batch_function("", identity); }), Catch::Contains("non-empty name"));
  CHECK_THAT(error_of([] { flow::register_batch_function("test-empty", nullptr); }),
             Catch::Contains("register_batch_function(\"test-empty\"): the function is empty"));
  const auto names = flow::batch_function_names();
  CHECK(std::is_sorted(names.begin(), names.end()));
  std::string listed;
  for (const auto& name : names) listed += (listed.empty() ? "" : ", ") + name;
  CHECK_THAT(error_of([] { flow::find_batch_function("Test-A"); }),
             Catch::Equals("unknown batch function 'Test-A'; registered: " + listed +
                           " (names are case-sensitive; flow::register_batch_function adds one)"));
  CHECK_THAT(listed, Catch::Contains("test-a, test-b"));
}

TEST_CASE("batch functions registered from several threads are all found", "[function_registry]") {
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([t] {
      for (int i = 0; i < 100; ++i)
        flow::register_batch_function("test-thread-" + std::to_string(t) + "-" + std::to_string(i),
                                      [](const flow::batch& rows) { return rows; });
    });
  for (auto& worker : workers) worker.join();
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 100; ++i) CHECK(flow::find_batch_function("test-thread-" + std::to_string(t) + "-" + std::to_string(i)));
}
