// The deduplication operator, driven by hand: the first row of each key across batches and epochs, keys
// kept for ever or forgotten at the watermark, its state carried over a snapshot, and its descriptor.
#include <catch2/catch.hpp>

#include <set>

#include "collecting_context.hpp"
#include "flow/compile.hpp"
#include "flow/dataframe.hpp"
#include "flow/deduplicate.hpp"
#include "flow/operator_registry.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::error_of;

namespace {

constexpr std::int64_t minute = 60'000'000;

schema_ptr events_schema() {
  return make_schema({{"user", type_id::string, true}, {"page", type_id::int64, true}, {"at", type_id::timestamp, true},
                      {"seq", type_id::int64, false}});
}

// Row seq visits (user, page) at minute `at`.
batch events(const std::vector<std::tuple<std::string, std::int64_t, std::int64_t, std::int64_t>>& rows) {
  std::vector<std::vector<value>> values;
  for (const auto& [user, page, at, seq] : rows)
    values.push_back({user, page, timestamp{at * minute}, seq});
  return make_batch(events_schema(), values);
}

std::vector<std::int64_t> seqs(const batch& rows) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < rows.num_rows(); ++i) out.push_back(rows.col("seq").ints()[i]);
  return out;
}

// The operator as the runtime calls it.
const stream_operator& as_stream(const deduplicate_operator& op) { return op; }

// Feeds rows as one epoch (process, end_epoch, take_changes) and returns the seqs passed on.
std::vector<std::int64_t> run_epoch(const deduplicate_operator& op, operator_state& state, const batch& rows) {
  collecting_context ctx;
  as_stream(op).process(rows, 0, &state, ctx);
  as_stream(op).end_epoch(&state, ctx);
  state.take_changes();
  return seqs(ctx.take(op.output_schema()));
}

}  // namespace

TEST_CASE("drop_duplicates: the first row of each key passes, in the batch and in later epochs", "[dedup]") {
  const deduplicate_operator op(events_schema(), {.keys = {"user", "page"}});
  CHECK(*op.output_schema() == *events_schema());
  auto state = op.make_state();
  CHECK(run_epoch(op, *state, events({{"ann", 1, 0, 1}, {"bob", 1, 0, 2}, {"ann", 1, 5, 3}, {"ann", 2, 5, 4}})) ==
        std::vector<std::int64_t>{1, 2, 4});
  CHECK(run_epoch(op, *state, events({{"bob", 1, 9, 5}, {"cy", 1, 9, 6}, {"cy", 1, 9, 7}})) == std::vector<std::int64_t>{6});
  CHECK(state->num_rows() == 4);
  // Without a watermark column the keys stay, whatever the watermark.
  collecting_context ctx;
  as_stream(op).on_watermark(1000 * minute, state.get(), ctx);
  CHECK(state->num_rows() == 4);
  CHECK(run_epoch(op, *state, events({{"ann", 1, 2000, 8}})).empty());
}

TEST_CASE("drop_duplicates: null keys are keys like any other value (Spark's dropDuplicates)", "[dedup]") {
  const deduplicate_operator op(events_schema(), {.keys = {"user"}});
  auto state = op.make_state();
  const batch rows = make_batch(events_schema(), {{null_value{}, std::int64_t{1}, timestamp{0}, std::int64_t{1}},
                                                  {null_value{}, std::int64_t{2}, timestamp{0}, std::int64_t{2}},
                                                  {std::string("ann"), std::int64_t{2}, timestamp{0}, std::int64_t{3}}});
  CHECK(run_epoch(op, *state, rows) == std::vector<std::int64_t>{1, 3});
}

TEST_CASE("drop_duplicates_within_watermark: a key is forgotten once the watermark passes its first time plus the delay",
          "[dedup]") {
  const deduplicate_operator op(events_schema(), {.keys = {"user"}, .event_time_column = "at", .delay_micros = 10 * minute});
  auto state = op.make_state();
  CHECK(run_epoch(op, *state, events({{"ann", 1, 0, 1}, {"bob", 1, 5, 2}})) == std::vector<std::int64_t>{1, 2});
  collecting_context ctx;
  // ann expires at minute 10, bob at 15.
  as_stream(op).on_watermark(9 * minute, state.get(), ctx);
  CHECK(state->num_rows() == 2);
  as_stream(op).on_watermark(10 * minute, state.get(), ctx);
  CHECK(state->num_rows() == 1);
  CHECK(ctx.emitted.empty());
  state->take_changes();
  // ann is new again; bob still a duplicate (a later row does not extend the first row's expiry).
  CHECK(run_epoch(op, *state, events({{"ann", 1, 12, 3}, {"bob", 1, 14, 4}})) == std::vector<std::int64_t>{3});
  as_stream(op).on_watermark(15 * minute, state.get(), ctx);
  CHECK(state->num_rows() == 1);  // ann, until minute 22
}

TEST_CASE("drop_duplicates: the state carried to a restored instance keeps deduplicating", "[dedup]") {
  const deduplicate_operator op(events_schema(), {.keys = {"user", "page"}, .event_time_column = "at", .delay_micros = minute});
  auto running = op.make_state();
  collecting_context ctx;
  as_stream(op).process(events({{"ann", 1, 0, 1}, {"bob", 1, 3, 2}}), 0, running.get(), ctx);
  CHECK(ctx.emitted.size() == 1);
  // What the runtime does after each epoch: the changes folded into its copy, which a new instance restores.
  auto checkpoint = op.make_state();
  checkpoint->apply_changes(running->take_changes());
  auto restored = op.make_state();
  restored->restore(checkpoint->snapshot());
  CHECK(run_epoch(op, *restored, events({{"ann", 1, 1, 3}, {"bob", 2, 1, 4}})) == std::vector<std::int64_t>{4});
  // Expiries: ann/1 at minute 1, bob/2 at 2, bob/1 at 4.
  as_stream(op).on_watermark(minute + minute / 2, restored.get(), ctx);
  CHECK(restored->num_rows() == 2);
}

TEST_CASE("drop_duplicates: rebuilt from its descriptor, bad columns refused", "[dedup]") {
  const deduplicate_operator op(events_schema(), {.keys = {"user"}, .event_time_column = "at", .delay_micros = 7});
  const auto descriptor = op.descriptor();
  REQUIRE(descriptor);
  const auto rebuilt = std::dynamic_pointer_cast<const deduplicate_operator>(make_operator(*descriptor, events_schema()));
  REQUIRE(rebuilt);
  CHECK(rebuilt->spec().keys == std::vector<std::string>{"user"});
  CHECK(rebuilt->spec().event_time_column == "at");
  CHECK(rebuilt->spec().delay_micros == 7);
  CHECK(rebuilt->key_columns() == std::vector<std::string>{"user"});
  CHECK_THAT(error_of([] { deduplicate_operator(events_schema(), {.keys = {"nobody"}}); }),
             Catch::Contains("key column 'nobody' is not in its input"));
  CHECK_THAT(error_of([] { deduplicate_operator(events_schema(), {.keys = {"user"}, .event_time_column = "page"}); }),
             Catch::Contains("event-time column 'page' is not a timestamp column"));
  CHECK_THAT(error_of([] { deduplicate_operator(events_schema(), {.keys = {}}); }), Catch::Contains("at least one column"));
}

TEST_CASE("drop_duplicates: a vertex of its own, fed by a hash edge on its columns", "[dedup]") {
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/in/*.csv";
  scan.schema = events_schema();
  scan.streaming = true;
  const auto plan = make_deduplicate(make_scan(scan), {.keys = {"user", "page"}});
  CHECK_THAT(explain(*plan), Catch::StartsWith("drop_duplicates [user, page]\n"));
  sink_spec sink;
  const dataflow_graph graph = compile_graph(plan, sink);
  REQUIRE(graph.vertices().size() == 3);
  CHECK(graph.vertex(1).name == "deduplicate");
  const auto& edge = graph.edges()[graph.inputs_of(1).at(0)];
  CHECK(edge.kind == partitioning::hash);
  CHECK(edge.keys == std::vector<std::string>{"user", "page"});
}

namespace {

// Feeds rows as one epoch at a watermark (minutes); returns the seqs passed on and counts the dropped rows.
std::vector<std::int64_t> run_epoch_at(const deduplicate_operator& op, operator_state& state, const batch& rows,
                                       std::int64_t watermark_minutes, std::size_t& dropped) {
  collecting_context ctx;
  ctx.watermark_now = watermark_minutes * minute;
  as_stream(op).on_watermark(ctx.watermark_now, &state, ctx);
  as_stream(op).process(rows, 0, &state, ctx);
  as_stream(op).end_epoch(&state, ctx);
  state.take_changes();
  dropped += ctx.dropped_by_watermark;
  return seqs(ctx.take(op.output_schema()));
}

plan_ptr watermarked_events() {
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/in/*.csv";
  scan.schema = events_schema();
  scan.streaming = true;
  return make_watermark(make_scan(scan), "at", "10 minutes");
}

const deduplicate_spec& spec_of(const plan_ptr& plan) {
  return std::dynamic_pointer_cast<const deduplicate_operator>(plan->op)->spec();
}

}  // namespace

TEST_CASE("drop_duplicates_within_watermark: rows at or behind the watermark are late, dropped and counted",
          "[dedup]") {
  const deduplicate_operator op(events_schema(), {.keys = {"user"}, .event_time_column = "at", .delay_micros = 10 * minute});
  auto state = op.make_state();
  std::size_t dropped = 0;
  CHECK(run_epoch_at(op, *state, events({{"ann", 1, 20, 1}, {"bob", 1, 25, 2}}), 0, dropped) ==
        std::vector<std::int64_t>{1, 2});
  // At watermark 20: cy at 19 and dan at 20 are late (not kept, not counted as keys); eve at 21 passes.
  CHECK(run_epoch_at(op, *state, events({{"cy", 1, 19, 3}, {"dan", 1, 20, 4}, {"eve", 1, 21, 5}, {"ann", 1, 22, 6}}), 20,
                     dropped) == std::vector<std::int64_t>{5});
  CHECK(dropped == 2);
  CHECK(state->num_rows() == 3);
  // A row without an event time is never late.
  const batch no_time = make_batch(events_schema(), {{std::string("fay"), std::int64_t{1}, null_value{}, std::int64_t{7}}});
  CHECK(run_epoch_at(op, *state, no_time, 40, dropped) == std::vector<std::int64_t>{7});
  CHECK(dropped == 2);
}

TEST_CASE("drop_duplicates: with the watermarked column among the keys, keys are forgotten at the watermark and "
          "late rows dropped and counted",
          "[dedup]") {
  const auto plan = make_deduplicate(watermarked_events(), {.keys = {"user", "at"}});
  CHECK(spec_of(plan).event_time_column == "at");
  CHECK(spec_of(plan).delay_micros == 0);
  CHECK_THAT(explain(*plan), Catch::StartsWith("drop_duplicates [user, at]\n"));
  // Without the watermarked column among the keys, the keys stay for ever.
  CHECK(spec_of(make_deduplicate(watermarked_events(), {.keys = {"user"}})).event_time_column.empty());

  const auto& op = dynamic_cast<const deduplicate_operator&>(*plan->op);
  auto state = op.make_state();
  std::size_t dropped = 0;
  CHECK(run_epoch_at(op, *state, events({{"ann", 1, 5, 1}, {"ann", 1, 5, 2}, {"ann", 1, 8, 3}}), 0, dropped) ==
        std::vector<std::int64_t>{1, 3});
  CHECK(run_epoch_at(op, *state, events({{"ann", 1, 5, 4}, {"ann", 1, 8, 5}, {"ann", 1, 9, 6}}), 6, dropped) ==
        std::vector<std::int64_t>{6});
  CHECK(dropped == 1);
  CHECK(state->num_rows() == 2);  // (ann, 5) was forgotten at watermark 6
}

TEST_CASE("drop_duplicates_within_watermark without a column reads the frame's watermark", "[dedup]") {
  const data_frame frame(nullptr, watermarked_events());
  const auto plan = frame.drop_duplicates_within_watermark({"user"}).plan();
  CHECK(spec_of(plan).event_time_column == "at");
  CHECK(spec_of(plan).delay_micros == 10 * minute);
  CHECK_THAT(explain(*plan), Catch::StartsWith("drop_duplicates_within_watermark [user]\n"));
  scan_spec scan;
  scan.format = "csv";
  scan.path = "/in/*.csv";
  scan.schema = events_schema();
  scan.streaming = true;
  CHECK_THAT(error_of([&] { data_frame(nullptr, make_scan(scan)).drop_duplicates_within_watermark({"user"}); }),
             Catch::Contains("the frame has no watermark"));
}
