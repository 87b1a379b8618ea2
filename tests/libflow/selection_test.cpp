// A filter hands on its kept rows as a selection of its input's columns (batch::selected), and the operators
// after it (select, the stream-static join, the aggregation) read through the selection: the same rows as
// the copied rows would give, without copying the columns the filter's input had.
#include <catch2/catch.hpp>

#include <map>

#include "flow/join.hpp"
#include "flow/operators.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::sorted_rows;

namespace {

schema_ptr events_schema() {
  return make_schema({{"ad", type_id::int64, false},
                      {"kind", type_id::string, false},
                      {"time", type_id::timestamp, false},
                      {"user", type_id::int64, true}});
}

// Event i: ad i % 7, kind view/click/buy in turn, times out of order across 10 s windows (some before 1970),
// a null user every fifth row.
batch events(std::size_t n) {
  static const char* kinds[] = {"view", "click", "buy"};
  std::vector<std::vector<value>> rows;
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::int64_t>(i);
    const std::int64_t time = ((k * 7919) % 97 - 30) * 1'000'000;  // -30 s .. 66 s, in no order
    rows.push_back({value{k % 7}, value{std::string(kinds[i % 3])}, value{timestamp{time}},
                    i % 5 == 0 ? value{null_value{}} : value{k * 3}});
  }
  return make_batch(events_schema(), rows);
}

const std::int64_t ten_seconds = 10'000'000;

}  // namespace

TEST_CASE("filter: the kept rows are a selection of the input's columns, not a copy", "[selection]") {
  const batch input = events(100);
  const filter_operator views(input.schema_ref(), col("kind") == lit("view"));
  const batch kept = views.apply(input);
  REQUIRE(kept.selection() != nullptr);
  CHECK(kept.num_rows() == 34);
  for (std::size_t c = 0; c < input.num_columns(); ++c) CHECK(kept.base_col(c).data() == input.col(c).data());
  // Every accessor sees the selected rows only: the same batch as the copied rows.
  std::vector<std::uint8_t> keep(100);
  for (std::size_t i = 0; i < 100; ++i) keep[i] = i % 3 == 0;
  CHECK(kept == filter_rows(input, keep));
  CHECK(decode_batch(encode(kept)) == filter_rows(input, keep));
  CHECK(kept.slice(3, 5) == filter_rows(input, keep).slice(3, 5));
  CHECK(concat({kept, kept}).num_rows() == 68);
}

TEST_CASE("filter: chained filters select from the first input's columns", "[selection]") {
  const batch input = events(200);
  const filter_operator views(input.schema_ref(), col("kind") == lit("view"));
  const filter_operator late(input.schema_ref(), col("time") >= lit(timestamp{0}));
  const batch both = late.apply(views.apply(input));
  REQUIRE(both.selection() != nullptr);
  CHECK(both.base_col(2).data() == input.col(2).data());
  const filter_operator at_once(input.schema_ref(), col("kind") == lit("view") && col("time") >= lit(timestamp{0}));
  CHECK(both == at_once.apply(input));
  // A null in the condition drops the row, in a selection too.
  const filter_operator users(input.schema_ref(), col("user") > lit(0));
  CHECK(users.apply(both) == users.apply(at_once.apply(input)));
}

TEST_CASE("filter: a selection that keeps no rows, or all of them", "[selection]") {
  const batch input = events(30);
  const filter_operator views(input.schema_ref(), col("kind") == lit("view"));
  const filter_operator never(input.schema_ref(), col("ad") > lit(100));
  const filter_operator always(input.schema_ref(), col("ad") >= lit(0));
  const batch kept = views.apply(input);
  const batch none = never.apply(kept);
  CHECK(none.num_rows() == 0);
  CHECK(none.schema() == input.schema());
  CHECK(never.apply(input).num_rows() == 0);
  CHECK(always.apply(kept).selection() == kept.selection());  // every row kept: the batch as it came
}

TEST_CASE("select after a filter: columns pass the selection on, expressions see the selected rows", "[selection]") {
  const batch input = events(60);
  const filter_operator views(input.schema_ref(), col("kind") == lit("view"));
  const batch kept = views.apply(input);
  const project_operator columns(input.schema(), {col("time"), col("ad").as("ad_id")});
  const batch picked = columns.apply(kept);
  REQUIRE(picked.selection() != nullptr);
  CHECK(picked.base_col(0).data() == input.col(2).data());
  CHECK(picked.schema().names() == std::vector<std::string>{"time", "ad_id"});
  const project_operator computed(input.schema(), {col("ad"), (col("ad") + lit(1)).as("next")});
  const batch copied = filter_rows(input, [&] {
    std::vector<std::uint8_t> keep(60);
    for (std::size_t i = 0; i < 60; ++i) keep[i] = i % 3 == 0;
    return keep;
  }());
  CHECK(picked == columns.apply(copied));
  CHECK(computed.apply(kept) == computed.apply(copied));
  CHECK(computed.apply(kept).selection() == nullptr);
}

TEST_CASE("stream-static join after a filter: the key read through the selection, the rows as if copied", "[selection]") {
  const batch input = events(90);
  const filter_operator views(input.schema_ref(), col("kind") == lit("view"));
  const batch kept = views.apply(input);
  std::vector<std::vector<value>> ads;
  for (std::int64_t a = 0; a < 5; ++a) ads.push_back({value{a}, value{a * 10}});  // ads 5 and 6 match nothing
  const batch table = make_batch(make_schema({{"ad", type_id::int64, false}, {"campaign", type_id::int64, false}}), ads);
  REQUIRE(join_table(table, {"ad"}).direct());
  for (auto type : {join_type::inner, join_type::left_outer, join_type::left_semi, join_type::left_anti}) {
    INFO(to_string(type));
    const stream_static_join_operator join(input.schema_ref(), table, {"ad"}, type);
    const batch joined = join.apply(kept);
    CHECK(joined.selection() == nullptr);
    CHECK(sorted_rows(joined) == sorted_rows(join.apply(batch(kept.schema_ref(), kept.columns()))));
  }
}

TEST_CASE("aggregation after a filter: a tumbling window and a key read through the selection", "[selection]") {
  const batch input = events(500);
  const filter_operator views(input.schema_ref(), col("kind") == lit("view"));
  const batch kept = views.apply(input);
  const aggregate_operator op(input.schema_ref(), {window(col("time"), "10 seconds"), col("ad")},
                              {{agg_kind::count, {}, ""}, {agg_kind::sum, col("user"), ""}});
  auto state = op.make_state();
  state->update(kept.slice(0, 100));
  state->update(kept.slice(100, kept.num_rows() - 100));
  // By hand: window start = floor(time / 10 s) * 10 s, also before 1970.
  std::map<std::pair<std::int64_t, std::int64_t>, std::pair<std::int64_t, std::int64_t>> expected;
  for (std::size_t i = 0; i < 500; i += 3) {
    const std::int64_t time = input.col(2).ints()[i];
    const std::int64_t start = (time >= 0 ? time / ten_seconds : (time - ten_seconds + 1) / ten_seconds) * ten_seconds;
    auto& [count, sum] = expected[{start, input.col(0).ints()[i]}];
    ++count;
    if (input.col(3).valid(i)) sum += input.col(3).ints()[i];
  }
  const batch out = state->emit(output_mode::complete);
  REQUIRE(out.num_rows() == expected.size());
  for (std::size_t r = 0; r < out.num_rows(); ++r) {
    const auto w = out.col(0).window(r);
    CHECK(w.end.micros - w.start.micros == ten_seconds);
    const auto& [count, sum] = expected.at({w.start.micros, out.col(1).ints()[r]});
    CHECK(out.col(2).ints()[r] == count);
    CHECK(out.col(3).ints()[r] == sum);
  }
  // The same table as from the copied rows.
  auto copied = op.make_state();
  copied->update(batch(kept.schema_ref(), kept.columns()));
  CHECK(sorted_rows(copied->emit(output_mode::complete)) == sorted_rows(out));
}

TEST_CASE("batch::selected refuses a selection that is not ascending row indexes", "[selection]") {
  const batch input = events(4);
  auto select = [&](std::vector<std::uint32_t> rows) {
    return batch::selected(input.schema_ref(), input.columns(), std::make_shared<const std::vector<std::uint32_t>>(std::move(rows)));
  };
  CHECK(select({0, 2, 3}).num_rows() == 3);
  CHECK_THROWS_WITH(select({0, 4}), Catch::Contains("entry 1 of the selection (4) is not an ascending row index below the columns' 4 rows"));
  CHECK_THROWS_WITH(select({2, 1}), Catch::Contains("entry 1 of the selection (1)"));
  CHECK_THROWS_WITH(batch::selected(input.schema_ref(), input.columns(), nullptr), Catch::Contains("the selection is null"));
}

TEST_CASE("aggregation: word keys meet groups a null key or a late row sent through the general path", "[selection][aggregate]") {
  const schema_ptr schema = make_schema({{"id", type_id::int64, true}, {"time", type_id::timestamp, false}});
  auto rows = [&](std::vector<std::vector<value>> values) { return make_batch(schema, values); };
  const aggregate_operator op(schema, {col("id"), window(col("time"), "10 seconds")}, {{agg_kind::count, {}, ""}});
  auto state = op.make_state();
  const timestamp t5{5'000'000}, t15{15'000'000}, t25{25'000'000};
  // A null id: the general path, which adds a group whose id is null (stored as 0).
  state->update(rows({{null_value{}, value{t5}}, {value{std::int64_t{0}}, value{t5}}}));
  // No nulls: the word keys; id 0 must not meet the null id's group.
  state->update(rows({{value{std::int64_t{0}}, value{t5}}, {value{std::int64_t{0}}, value{t15}}, {value{std::int64_t{1}}, value{t5}}}));
  // A row behind the watermark: the general path drops it, the others count.
  CHECK(state->update(rows({{value{std::int64_t{0}}, value{t5}}, {value{std::int64_t{1}}, value{t25}}}), timestamp{10'000'000}) == 1);
  CHECK(sorted_rows(state->emit(output_mode::complete)) ==
        std::vector<std::vector<value>>{
            {null_value{}, value{window_value{timestamp{0}, timestamp{ten_seconds}}}, value{std::int64_t{1}}},
            {value{std::int64_t{0}}, value{window_value{timestamp{0}, timestamp{ten_seconds}}}, value{std::int64_t{2}}},
            {value{std::int64_t{0}}, value{window_value{timestamp{ten_seconds}, timestamp{2 * ten_seconds}}}, value{std::int64_t{1}}},
            {value{std::int64_t{1}}, value{window_value{timestamp{0}, timestamp{ten_seconds}}}, value{std::int64_t{1}}},
            {value{std::int64_t{1}}, value{window_value{timestamp{2 * ten_seconds}, timestamp{3 * ten_seconds}}}, value{std::int64_t{1}}}});
}
