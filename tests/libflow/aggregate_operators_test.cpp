#include <catch2/catch.hpp>

#include <memory>
#include <random>

#include "collecting_context.hpp"
#include "flow/aggregate_operators.hpp"
#include "flow/keys.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::error_of;
using flow::test::sorted_rows;

namespace {

schema_ptr input_schema() {
  return make_schema({{"k", type_id::string, true}, {"g", type_id::int64, true}, {"x", type_id::int64, true},
                      {"y", type_id::float64, true}});
}

std::shared_ptr<const aggregate_operator> make_aggregate() {
  return std::make_shared<const aggregate_operator>(
      input_schema(), std::vector<expr>{col("k"), col("g")},
      std::vector<agg_spec>{{agg_kind::sum, col("x"), {}},
                            {agg_kind::count, expr{}, {}},
                            {agg_kind::avg, col("y"), {}},
                            {agg_kind::min, col("x"), {}},
                            {agg_kind::max, col("y"), {}}});
}

// Whole-numbered doubles, so that sums do not depend on the order rows are added in.
batch random_rows(std::mt19937& rng, std::size_t n, int distinct_keys) {
  std::vector<std::vector<value>> rows;
  for (std::size_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(rng() % static_cast<unsigned>(distinct_keys));
    rows.push_back({k % 7 == 0 ? value{null_value{}} : value{"key" + std::to_string(k)},
                    value{std::int64_t{k % 3}},
                    rng() % 8 == 0 ? value{null_value{}} : value{static_cast<std::int64_t>(rng() % 1000) - 500},
                    rng() % 8 == 0 ? value{null_value{}} : value{static_cast<double>(rng() % 100)}});
  }
  return make_batch(input_schema(), rows);
}

// Partial aggregation in `upstream` instances, hash-partitioned by the final operator's key columns into
// `downstream` final instances, as the runtime runs them; each epoch's output against one aggregate_state.
void check_against_one_table(output_mode mode, std::size_t upstream, std::size_t downstream) {
  const auto aggregate = make_aggregate();
  const partial_aggregate_operator partial(aggregate);
  const final_aggregate_operator final_op(aggregate, mode);
  CHECK(final_op.key_columns() == std::vector<std::string>{"k", "g"});
  std::vector<std::size_t> key_indexes;
  for (const auto& name : final_op.key_columns()) key_indexes.push_back(partial.output_schema()->index_of(name));

  std::vector<std::unique_ptr<operator_state>> partials, finals, copies;
  for (std::size_t i = 0; i < upstream; ++i) partials.push_back(partial.make_state());
  for (std::size_t i = 0; i < downstream; ++i) {
    finals.push_back(final_op.make_state());
    copies.push_back(final_op.make_state());
  }
  CHECK(!partials[0]->durable());
  CHECK(finals[0]->durable());
  auto reference = aggregate->make_state();
  std::mt19937 rng(11);
  for (std::int64_t epoch = 1; epoch <= 4; ++epoch) {
    INFO("epoch " << epoch);
    collecting_context shuffle(epoch);
    for (std::size_t b = 0; b < 6; ++b) {
      const batch rows = random_rows(rng, 40, 30);
      partial.process(rows, 0, partials[b % upstream].get(), shuffle);
      reference->update(rows);
    }
    for (auto& state : partials) partial.end_epoch(state.get(), shuffle);
    for (auto& state : partials) CHECK(state->num_rows() == 0);
    collecting_context out(epoch);
    for (const batch& partial_rows : shuffle.emitted) {
      const auto parts = hash_partition(partial_rows, key_indexes, downstream);
      for (std::size_t i = 0; i < downstream; ++i) final_op.process(parts[i], 0, finals[i].get(), out);
    }
    CHECK(out.emitted.empty());
    for (auto& state : finals) final_op.end_epoch(state.get(), out);
    const batch expected = reference->emit(mode);
    REQUIRE(expected.num_rows() > 0);
    CHECK(sorted_rows(out.take(final_op.output_schema())) == sorted_rows(expected));
    // A copy fed each epoch's changes holds what the instance holds.
    for (std::size_t i = 0; i < downstream; ++i) {
      copies[i]->apply_changes(finals[i]->take_changes());
      CHECK(finals[i]->take_changes().num_rows() == 0);
      CHECK(sorted_rows(copies[i]->snapshot()) == sorted_rows(finals[i]->snapshot()));
    }
  }
  // An instance restored from its copy continues like the original.
  auto restored = final_op.make_state();
  restored->restore(copies[0]->snapshot());
  CHECK(restored->num_rows() == finals[0]->num_rows());
  collecting_context shuffle;
  auto scratch = partial.make_state();
  partial.process(random_rows(rng, 40, 30), 0, scratch.get(), shuffle);
  partial.end_epoch(scratch.get(), shuffle);
  const batch more = hash_partition(shuffle.take(partial.output_schema()), key_indexes, downstream)[0];
  REQUIRE(more.num_rows() > 0);
  collecting_context a(5), b(5);
  final_op.process(more, 0, finals[0].get(), a);
  final_op.process(more, 0, restored.get(), b);
  final_op.end_epoch(finals[0].get(), a);
  final_op.end_epoch(restored.get(), b);
  CHECK(sorted_rows(b.take(final_op.output_schema())) == sorted_rows(a.take(final_op.output_schema())));
}

}  // namespace

TEST_CASE("aggregation operators: partial + final over hash-partitioned data equal one table, complete mode",
          "[aggregate_operators]") {
  check_against_one_table(output_mode::complete, 3, 2);
  check_against_one_table(output_mode::complete, 1, 1);
}

TEST_CASE("aggregation operators: partial + final over hash-partitioned data equal one table, update mode",
          "[aggregate_operators]") {
  check_against_one_table(output_mode::update, 3, 2);
  check_against_one_table(output_mode::update, 2, 4);
}

TEST_CASE("partial aggregation hands its groups on before the epoch ends once it holds 65,536", "[aggregate_operators]") {
  const auto aggregate = std::make_shared<const aggregate_operator>(
      input_schema(), std::vector<expr>{col("g")}, std::vector<agg_spec>{{agg_kind::count, expr{}, {}}});
  const partial_aggregate_operator partial(aggregate);
  auto state = partial.make_state();
  collecting_context ctx;
  auto ids = [](std::int64_t from, std::int64_t to) {
    std::vector<std::vector<value>> rows;
    for (std::int64_t g = from; g < to; ++g) rows.push_back({null_value{}, g, null_value{}, null_value{}});
    return make_batch(input_schema(), rows);
  };
  const auto limit = static_cast<std::int64_t>(partial_aggregate_operator::partial_flush_groups);
  partial.process(ids(0, limit - 1), 0, state.get(), ctx);
  CHECK(ctx.emitted.empty());
  CHECK(state->num_rows() == static_cast<std::size_t>(limit - 1));
  partial.process(ids(limit - 1, limit + 9), 0, state.get(), ctx);
  REQUIRE(ctx.emitted.size() == 1);
  CHECK(ctx.emitted[0].num_rows() == static_cast<std::size_t>(limit + 9));
  CHECK(ctx.emitted[0].schema() == *aggregate->state_schema());
  CHECK(state->num_rows() == 0);
  partial.end_epoch(state.get(), ctx);
  CHECK(ctx.emitted.size() == 1);  // nothing left to hand on
}

TEST_CASE("aggregation operators: bad inputs are clear errors", "[aggregate_operators]") {
  const auto aggregate = make_aggregate();
  const final_aggregate_operator final_op(aggregate, output_mode::append);
  auto state = final_op.make_state();
  collecting_context ctx;
  CHECK_THAT(error_of([&] { final_op.end_epoch(state.get(), ctx); }),
             Catch::Contains("append output mode needs a window(...) grouping key"));
  CHECK_THAT(error_of([&] { final_op.process(batch::empty(aggregate->state_schema()), 1, state.get(), ctx); }),
             Catch::Contains("has one input"));
  const partial_aggregate_operator partial(aggregate);
  CHECK_THAT(error_of([&] { partial.process(batch::empty(input_schema()), 0, nullptr, ctx); }),
             Catch::Contains("was called without the state its make_state() makes"));
  CHECK_THAT(error_of([] { partial_aggregate_operator(nullptr); }), Catch::Contains("the aggregate is missing"));
}

TEST_CASE("aggregation operators: the watermark drops late rows, closes windows once and evicts them in the copy too",
          "[aggregate][watermark]") {
  const auto mode = GENERATE(output_mode::append, output_mode::update);
  INFO("mode " << to_string(mode));
  const auto events = make_schema({{"k", type_id::string, true}, {"ts", type_id::timestamp, true}});
  const auto aggregate = std::make_shared<const aggregate_operator>(
      events, std::vector<expr>{col("k"), window(col("ts"), "1 minute")},
      std::vector<agg_spec>{{agg_kind::count, expr{}, {}}});
  const partial_aggregate_operator partial(aggregate);
  const final_aggregate_operator final_op(aggregate, mode);
  auto scratch = partial.make_state();
  auto live = final_op.make_state(), copy = final_op.make_state();
  constexpr std::int64_t minute = 60'000'000;
  auto at = [&](std::vector<std::pair<const char*, std::int64_t>> rows) {
    std::vector<std::vector<value>> values;
    for (const auto& [k, m] : rows) values.push_back({value{std::string(k)}, value{timestamp{m * minute + 1}}});
    return make_batch(events, values);
  };
  // Epoch by epoch: the rows and the watermark the epoch runs with (minutes).
  const std::vector<std::pair<batch, std::int64_t>> epochs{
      {at({{"a", 0}, {"b", 0}, {"a", 1}}), operator_context::no_watermark},
      {at({{"a", 0}, {"a", 2}, {"b", 3}}), 1 * minute},   // a@0 is late: its window ended at 1
      {at({{"b", 3}}), 3 * minute},                        // closes the windows at 1 and 2
      {batch::empty(events), 10 * minute}};                // a no-data epoch closes the rest
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> closed;
  std::size_t dropped = 0;
  for (std::size_t e = 0; e < epochs.size(); ++e) {
    INFO("epoch " << e);
    collecting_context shuffle(static_cast<std::int64_t>(e)), out(static_cast<std::int64_t>(e));
    shuffle.watermark_now = out.watermark_now = epochs[e].second;
    partial.process(epochs[e].first, 0, scratch.get(), shuffle);
    partial.end_epoch(scratch.get(), shuffle);
    dropped += shuffle.dropped_by_watermark;
    for (const auto& rows : shuffle.emitted) final_op.process(rows, 0, live.get(), out);
    final_op.end_epoch(live.get(), out);
    const batch emitted = out.take(final_op.output_schema());
    for (std::size_t i = 0; i < emitted.num_rows() && mode == output_mode::append; ++i) {
      auto key = std::make_pair(std::get<std::string>(emitted.col(0).at(i)), emitted.col(1).window(i).start.micros / minute);
      CHECK(closed.count(key) == 0);  // once
      closed[key] = emitted.col(2).ints()[i];
    }
    copy->apply_changes(live->take_changes());
    CHECK(sorted_rows(copy->snapshot()) == sorted_rows(live->snapshot()));
    CHECK(copy->num_rows() == live->num_rows());
  }
  CHECK(dropped == 1);
  CHECK(live->num_rows() == 0);  // every window closed and evicted
  if (mode == output_mode::append)
    CHECK(closed == std::map<std::pair<std::string, std::int64_t>, std::int64_t>{
                        {{"a", 0}, 1}, {{"b", 0}, 1}, {{"a", 1}, 1}, {{"a", 2}, 1}, {{"b", 3}, 2}});
}
