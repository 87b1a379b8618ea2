#include <catch2/catch.hpp>

#include "collecting_context.hpp"
#include "flow/operators.hpp"

using namespace flow;

namespace {

schema_ptr items_schema() {
  return make_schema({{"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, false},
                      {"CustomerID", type_id::float64, true}});
}

batch items() {
  return make_batch(items_schema(), {{std::int64_t{6}, 2.5, 17850.0},
                                     {std::int64_t{-1}, 4.0, null_value{}},
                                     {null_value{}, 1.0, 13047.0},
                                     {std::int64_t{2}, 3.0, 13047.0}});
}

}  // namespace

TEST_CASE("project: names, types and values", "[operators]") {
  project_operator project(*items_schema(), {col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"),
                                             col("Quantity") + lit(1)});
  const auto& out = *project.output_schema();
  REQUIRE(out.size() == 3);
  CHECK(out[0] == field{"CustomerID", type_id::float64, true});
  CHECK(out[1] == field{"total_cost", type_id::float64, true});
  CHECK(out[2].name == "(Quantity + 1)");
  CHECK(out[2].type == type_id::int64);
  auto result = project.apply(items());
  REQUIRE(result.num_rows() == 4);
  CHECK(result.at(0, 1) == value{15.0});
  CHECK(result.at(1, 1) == value{-4.0});
  CHECK(is_null(result.at(2, 1)));
  CHECK(result.at(3, 2) == value{std::int64_t{3}});
  CHECK(project.describe() == "Project [CustomerID, (UnitPrice * Quantity) AS total_cost, (Quantity + 1)]");
  // Spark allows duplicate output names.
  project_operator twice(*items_schema(), {col("Quantity"), col("Quantity")});
  CHECK(twice.output_schema()->names() == std::vector<std::string>{"Quantity", "Quantity"});
}

TEST_CASE("filter: keeps true rows, drops false and null", "[operators]") {
  filter_operator filter(items_schema(), col("Quantity") > lit(0));
  CHECK(*filter.output_schema() == *items_schema());
  auto result = filter.apply(items());
  REQUIRE(result.num_rows() == 2);
  CHECK(result.at(0, 0) == value{std::int64_t{6}});
  CHECK(result.at(1, 0) == value{std::int64_t{2}});
  CHECK(filter.describe() == "Filter (Quantity > 0)");

  filter_operator all(items_schema(), col("UnitPrice") > lit(0));
  CHECK(all.apply(items()) == items());
  filter_operator none(items_schema(), col("UnitPrice") > lit(100));
  auto empty = none.apply(items());
  CHECK(empty.num_rows() == 0);
  CHECK(empty.schema() == *items_schema());
}

TEST_CASE("filter: the predicate must be boolean", "[operators]") {
  CHECK_THROWS_WITH(filter_operator(items_schema(), col("Quantity") + lit(1)),
                    Catch::Contains("'(Quantity + 1)' is int64, not boolean"));
  CHECK_THROWS_WITH(filter_operator(items_schema(), col("Nope") > lit(1)), Catch::Contains("cannot resolve column 'Nope'"));
}

TEST_CASE("stateless operators are stream operators: process emits what apply returns, and nothing for no rows", "[operators]") {
  filter_operator positive(items_schema(), col("Quantity") > lit(0));
  filter_operator none(items_schema(), col("Quantity") > lit(1000));
  flow::test::collecting_context ctx;
  CHECK_FALSE(positive.make_state());
  CHECK(positive.key_columns().empty());
  CHECK(positive.name() == "Filter (Quantity > 0)");
  positive.process(items(), 0, nullptr, ctx);
  none.process(items(), 0, nullptr, ctx);
  REQUIRE(ctx.emitted.size() == 1);
  CHECK(ctx.emitted[0] == positive.apply(items()));
  CHECK(ctx.emitted[0].num_rows() == 2);
}

TEST_CASE("output modes and aggregate names", "[operators]") {
  CHECK(parse_output_mode("Update") == output_mode::update);
  CHECK(parse_output_mode("complete") == output_mode::complete);
  CHECK(to_string(parse_output_mode("APPEND")) == "append");
  CHECK_THROWS_WITH(parse_output_mode("upsert"), Catch::Contains("append, update or complete"));
  CHECK(to_string(agg_kind::avg) == "avg");
}
