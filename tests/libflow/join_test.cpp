// The stream-static join operator, driven by hand: every join type against a loop over the same rows,
// null keys on both sides, Spark's schema and refusals, and the operator rebuilt from its descriptor.
#include <catch2/catch.hpp>

#include <limits>
#include <optional>

#include "flow/compile.hpp"
#include "flow/join.hpp"
#include "flow/operator_registry.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;
using flow::test::sorted_rows;

namespace {

schema_ptr sales_schema() {
  return make_schema({{"invoice", type_id::int64, false}, {"country", type_id::string, true}, {"units", type_id::int64, true}});
}

schema_ptr regions_schema() {
  return make_schema({{"country", type_id::string, true}, {"region", type_id::string, false}});
}

batch sales() {
  return make_batch(sales_schema(), {{std::int64_t{1}, std::string("France"), std::int64_t{3}},
                                     {std::int64_t{2}, std::string("Spain"), std::int64_t{1}},
                                     {std::int64_t{3}, null_value{}, std::int64_t{7}},
                                     {std::int64_t{4}, std::string("Japan"), null_value{}},
                                     {std::int64_t{5}, std::string("France"), std::int64_t{2}}});
}

// Spain twice (two matches), France once, Japan not at all, and a null country that matches nothing.
batch regions() {
  return make_batch(regions_schema(), {{std::string("France"), std::string("EU")},
                                       {std::string("Spain"), std::string("EU")},
                                       {std::string("Spain"), std::string("Iberia")},
                                       {null_value{}, std::string("Nowhere")}});
}

// The join computed by a nested loop over the rows: (country, invoice, units[, region]) per output row.
std::vector<std::vector<value>> expected_rows(join_type type) {
  std::vector<std::vector<value>> rows;
  const batch left = sales(), right = regions();
  for (std::size_t l = 0; l < left.num_rows(); ++l) {
    std::vector<value> matched_regions;
    for (std::size_t r = 0; r < right.num_rows(); ++r) {
      const value a = left.at(l, 1), b = right.at(r, 0);
      if (!is_null(a) && !is_null(b) && a == b) matched_regions.push_back(right.at(r, 1));
    }
    const std::vector<value> left_row{left.at(l, 1), left.at(l, 0), left.at(l, 2)};
    auto with = [&](const value& region) {
      auto row = left_row;
      row.push_back(region);
      rows.push_back(row);
    };
    switch (type) {
      case join_type::inner:
        for (const auto& region : matched_regions) with(region);
        break;
      case join_type::left_outer:
        for (const auto& region : matched_regions) with(region);
        if (matched_regions.empty()) with(null_value{});
        break;
      case join_type::left_semi:
        if (!matched_regions.empty()) rows.push_back(left_row);
        break;
      case join_type::left_anti:
        if (matched_regions.empty()) rows.push_back(left_row);
        break;
      default: FAIL("not a stream-static join type");
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

}  // namespace

TEST_CASE("stream-static join: every join type gives the rows of a nested loop, nulls never match", "[join]") {
  for (auto type : {join_type::inner, join_type::left_outer, join_type::left_semi, join_type::left_anti}) {
    INFO(to_string(type));
    const stream_static_join_operator join(sales_schema(), regions(), {"country"}, type);
    // Two batches: the table is used again for every batch.
    const batch all = sales();
    auto rows = sorted_rows(join.apply(all.slice(0, 2)));
    const auto more = sorted_rows(join.apply(all.slice(2, 3)));
    rows.insert(rows.end(), more.begin(), more.end());
    std::sort(rows.begin(), rows.end());
    CHECK(rows == expected_rows(type));
  }
}

namespace {

// (id, payload) rows with int64 ids; a null id where the optional is empty.
batch id_rows(const std::string& payload, const std::vector<std::optional<std::int64_t>>& ids) {
  std::vector<std::vector<value>> rows;
  for (std::size_t i = 0; i < ids.size(); ++i)
    rows.push_back({ids[i] ? value{*ids[i]} : value{null_value{}}, value{payload + std::to_string(i)}});
  return make_batch(make_schema({{"id", type_id::int64, true}, {payload, type_id::string, false}}), rows);
}

// The join of left and right on "id" by a nested loop: (id, left payload[, right payload]) per output row.
std::vector<std::vector<value>> nested_loop_on_id(const batch& left, const batch& right, join_type type) {
  std::vector<std::vector<value>> rows;
  for (std::size_t l = 0; l < left.num_rows(); ++l) {
    std::vector<value> matched;
    for (std::size_t r = 0; r < right.num_rows(); ++r)
      if (!is_null(left.at(l, 0)) && left.at(l, 0) == right.at(r, 0)) matched.push_back(right.at(r, 1));
    const std::vector<value> left_row{left.at(l, 0), left.at(l, 1)};
    if (type == join_type::left_outer && matched.empty()) matched.push_back(null_value{});
    if (type == join_type::inner || type == join_type::left_outer) {
      for (const auto& m : matched) {
        rows.push_back(left_row);
        rows.back().push_back(m);
      }
    } else if ((type == join_type::left_semi) != matched.empty()) {
      rows.push_back(left_row);
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

}  // namespace

TEST_CASE("stream-static join on an integer id: the direct index of a dense id range gives the nested loop's rows", "[join]") {
  constexpr auto lowest = std::numeric_limits<std::int64_t>::min(), highest = std::numeric_limits<std::int64_t>::max();
  // Ids -3..7 with gaps, one twice, one null: a direct index; each id once: a direct index of one row per id;
  // ids far apart: the hash index.
  const batch dense = id_rows("ad", {-3, 0, 2, 2, 7, std::nullopt, 5});
  const batch unique = id_rows("ad", {7, 0, -3, std::nullopt, 2, 5});
  const batch sparse = id_rows("ad", {-3, 2, 2, std::int64_t{1} << 40, std::nullopt});
  CHECK(join_table(dense, {"id"}).direct());
  CHECK_FALSE(join_table(dense, {"id"}).direct_unique());
  CHECK(join_table(unique, {"id"}).direct_unique());
  CHECK_FALSE(join_table(sparse, {"id"}).direct());
  CHECK_FALSE(join_table(id_rows("ad", {lowest, highest}), {"id"}).direct());
  // Matches, gaps, ids below and above the range (the extremes too), nulls.
  const batch events = id_rows("event", {2, -3, 1, 7, std::nullopt, 8, -4, lowest, highest, 5, 2, std::int64_t{1} << 40});
  for (const auto& [table, name] : {std::pair{dense, "dense"}, std::pair{unique, "unique"}, std::pair{sparse, "sparse"}}) {
    for (auto type : {join_type::inner, join_type::left_outer, join_type::left_semi, join_type::left_anti}) {
      INFO(to_string(type) << " " << name);
      const stream_static_join_operator join(events.schema_ref(), table, {"id"}, type);
      CHECK(sorted_rows(join.apply(events)) == nested_loop_on_id(events, table, type));
      // Through a selection (a filter's output): the same rows as from the copied rows.
      auto every_other = std::make_shared<std::vector<std::uint32_t>>();
      for (std::uint32_t r = 1; r < events.num_rows(); r += 2) every_other->push_back(r);
      const batch selected = batch::selected(events.schema_ref(), events.columns(), every_other);
      const batch copied(selected.schema_ref(), selected.columns());
      CHECK(sorted_rows(join.apply(selected)) == nested_loop_on_id(copied, table, type));
    }
  }
}

TEST_CASE("stream-static join: when every stream row matches one static row, the stream's columns pass uncopied", "[join]") {
  const batch events = id_rows("event", {4, 0, 2, 2, 1});
  const stream_static_join_operator join(events.schema_ref(), id_rows("ad", {0, 1, 2, 3, 4}), {"id"}, join_type::inner);
  const batch joined = join.apply(events);
  CHECK(joined.col(0).data() == events.col(0).data());
  CHECK(joined.col(1).data() == events.col(1).data());
  CHECK(sorted_rows(joined) == nested_loop_on_id(events, id_rows("ad", {0, 1, 2, 3, 4}), join_type::inner));
}

TEST_CASE("stream-static join: Spark's schema, the key once and first", "[join]") {
  const stream_static_join_operator inner(sales_schema(), regions(), {"country"}, join_type::inner);
  CHECK(inner.output_schema()->to_string() == make_schema({{"country", type_id::string}, {"invoice", type_id::int64},
                                                           {"units", type_id::int64}, {"region", type_id::string}})->to_string());
  CHECK_FALSE((*inner.output_schema())[3].nullable);
  const stream_static_join_operator outer(sales_schema(), regions(), {"country"}, join_type::left_outer);
  CHECK((*outer.output_schema())[3].nullable);  // null where no row matched
  CHECK_FALSE((*outer.output_schema())[1].nullable);
  const stream_static_join_operator semi(sales_schema(), regions(), {"country"}, join_type::left_semi);
  CHECK(semi.output_schema()->size() == 3);
}

TEST_CASE("stream-static join: join types parsed with Spark's spellings, unknown ones refused", "[join]") {
  CHECK(parse_join_type("left") == join_type::left_outer);
  CHECK(parse_join_type("LeftOuter") == join_type::left_outer);
  CHECK(parse_join_type("semi") == join_type::left_semi);
  CHECK(parse_join_type("leftanti") == join_type::left_anti);
  CHECK(parse_join_type("outer") == join_type::full_outer);
  CHECK(parse_join_type("right_outer") == join_type::right_outer);
  CHECK_THAT(error_of([] { parse_join_type("sideways"); }),
             Catch::Contains("unsupported join type 'sideways'") && Catch::Contains("left_semi"));
}

TEST_CASE("stream-static join: bad keys and the outer joins a static right side cannot give are refused", "[join]") {
  CHECK_THAT(error_of([] { stream_static_join_operator(sales_schema(), regions(), {"region"}, join_type::inner); }),
             Catch::Contains("key column 'region' is not a column of the left (stream) side"));
  CHECK_THAT(error_of([] { stream_static_join_operator(sales_schema(), regions(), std::vector<std::string>{}, join_type::inner); }),
             Catch::Contains("at least one key column"));
  const batch numeric = make_batch(make_schema({{"country", type_id::int64, true}, {"code", type_id::int64, true}}),
                                   {{std::int64_t{1}, std::int64_t{2}}});
  CHECK_THAT(error_of([&] { stream_static_join_operator(sales_schema(), numeric, {"country"}, join_type::inner); }),
             Catch::Contains("'country' is string on the left and int64 on the right") && Catch::Contains("cast"));
  CHECK_THAT(error_of([] { stream_static_join_operator(sales_schema(), regions(), {"country"}, join_type::full_outer); }),
             Catch::Contains("full_outer is not supported with a static data frame on the right"));
}

TEST_CASE("stream-static join: rebuilt from its descriptor, with its static rows", "[join]") {
  const stream_static_join_operator join(sales_schema(), regions(), {"country"}, join_type::left_outer);
  const auto descriptor = join.descriptor();
  REQUIRE(descriptor);
  CHECK(descriptor->name == "stream_static_join");
  const auto rebuilt = std::dynamic_pointer_cast<const stream_static_join_operator>(make_operator(*descriptor, sales_schema()));
  REQUIRE(rebuilt);
  CHECK(*rebuilt->output_schema() == *join.output_schema());
  CHECK(rebuilt->apply(sales()) == join.apply(sales()));
  CHECK_THAT(error_of([&] { make_operator({"stream_static_join", "(bad"}, sales_schema()); }),
             Catch::Contains("stream_static_join"));
}

TEST_CASE("stream-static join on a condition: every join type gives the rows of a nested loop", "[join]") {
  // (name, min_units): a sale matches the rows of its country whose min_units it reaches; null units never do.
  const batch thresholds = make_batch(make_schema({{"name", type_id::string, true}, {"min_units", type_id::int64, true}}),
                                      {{std::string("France"), std::int64_t{1}},
                                       {std::string("France"), std::int64_t{3}},
                                       {std::string("Japan"), std::int64_t{0}},
                                       {null_value{}, std::int64_t{0}}});
  const expr condition = (col("country") == col("name")) && (col("units") >= col("min_units"));
  const batch left = sales();
  for (auto type : {join_type::inner, join_type::left_outer, join_type::left_semi, join_type::left_anti}) {
    INFO(to_string(type));
    std::vector<std::vector<value>> expected;
    for (std::size_t l = 0; l < left.num_rows(); ++l) {
      const std::vector<value> row{left.at(l, 0), left.at(l, 1), left.at(l, 2)};
      std::size_t matched = 0;
      for (std::size_t r = 0; r < thresholds.num_rows(); ++r) {
        const value country = left.at(l, 1), units = left.at(l, 2), name = thresholds.at(r, 0), min = thresholds.at(r, 1);
        if (is_null(country) || is_null(units) || is_null(name) || country != name) continue;
        if (std::get<std::int64_t>(units) < std::get<std::int64_t>(min)) continue;
        ++matched;
        if (type == join_type::inner || type == join_type::left_outer) {
          auto out = row;
          out.push_back(name);
          out.push_back(min);
          expected.push_back(out);
        }
      }
      if ((type == join_type::left_semi && matched > 0) || (type == join_type::left_anti && matched == 0))
        expected.push_back(row);
      if (type == join_type::left_outer && matched == 0) {
        auto out = row;
        out.resize(row.size() + 2);  // two nulls
        expected.push_back(out);
      }
    }
    std::sort(expected.begin(), expected.end());
    const stream_static_join_operator join(sales_schema(), thresholds, condition, type);
    CHECK(sorted_rows(join.apply(left)) == expected);
    // Rebuilt from its descriptor, it joins alike.
    const auto rebuilt = make_operator(*join.descriptor(), sales_schema());
    CHECK(std::dynamic_pointer_cast<const stateless_operator>(rebuilt)->apply(left) == join.apply(left));
  }
}

TEST_CASE("stream-static join on a condition: shared column names and non-boolean conditions are refused", "[join]") {
  CHECK_THAT(error_of([] { stream_static_join_operator(sales_schema(), regions(), col("country") == col("region"),
                                                       join_type::inner); }),
             Catch::Contains("both sides have a column 'country'"));
  const batch names = make_batch(make_schema({{"name", type_id::string, true}}), {{std::string("France")}});
  CHECK_THAT(error_of([&] { stream_static_join_operator(sales_schema(), names, col("units"), join_type::inner); }),
             Catch::Contains("is int64, not boolean"));
}

TEST_CASE("stream-static join: fused into the chain of the vertex before it, explained", "[join]") {
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/in/*.csv";
  scan.schema = sales_schema();
  scan.streaming = true;
  const auto plan = make_join(make_scan(scan), regions(), {"country"}, join_type::left_outer);
  CHECK_THAT(explain(*plan), Catch::StartsWith("StreamStaticJoin left_outer [country] with 4 static rows\n"));
  sink_spec sink;
  const dataflow_graph graph = compile_graph(plan, sink);
  REQUIRE(graph.vertices().size() == 2);  // the source (with the join in its chain) and the sink
  REQUIRE(graph.vertex(0).chain.size() == 1);
  CHECK(graph.vertex(0).chain[0]->name() == "StreamStaticJoin left_outer [country] with 4 static rows");
  CHECK_THAT(error_of([&] { make_join(make_scan(scan), regions(), {"country"}, join_type::right_outer); }),
             Catch::Contains("RightOuter join with a streaming DataFrame/Dataset on the left"));
}
