// The session window operator, driven by hand: sessions that grow and merge across epochs, append and update
// mode, late rows dropped and counted, per-row gaps, its state carried over a snapshot; and the retail
// invoices per customer, shuffled across epochs with a small watermark, against a plain loop.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <tuple>

#include "collecting_context.hpp"
#include "flow/dataframe.hpp"
#include "flow/operator_registry.hpp"
#include "flow/session_window.hpp"
#include "retail_day.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::error_of;

namespace {

constexpr std::int64_t minute = 60'000'000;

schema_ptr clicks_schema() {
  return make_schema({{"user", type_id::string, true}, {"at", type_id::timestamp, true}, {"gap", type_id::string, true}});
}

// (user, minute, gap) rows.
batch clicks(const std::vector<std::tuple<std::string, std::int64_t, std::string>>& rows) {
  std::vector<std::vector<value>> values;
  for (const auto& [user, at, gap] : rows) values.push_back({user, timestamp{at * minute}, gap});
  return make_batch(clicks_schema(), values);
}

// (user, start minute, end minute, clicks), sorted.
using session_row = std::tuple<std::string, std::int64_t, std::int64_t, std::int64_t>;

std::vector<session_row> sessions_of(const batch& out) {
  std::vector<session_row> rows;
  for (std::size_t i = 0; i < out.num_rows(); ++i) {
    const column& w = out.col("session_window");
    rows.emplace_back(std::string(out.col("user").str(i)), w.ints()[i] / minute, w.ends()[i] / minute,
                      out.col("clicks").ints()[i]);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

const stream_operator& as_stream(const session_window_operator& op) { return op; }

session_window_operator clicks_per_session(output_mode mode, expr gap = {}) {
  return session_window_operator(clicks_schema(),
                                 {col("user"), gap.valid() ? session_window(col("at"), gap) : session_window(col("at"), "10 minutes")},
                                 {agg_spec{agg_kind::count, expr{}, "clicks"}},
                                 mode);
}

// One epoch (process, end_epoch, take_changes) at a watermark (minutes; none when absent).
std::vector<session_row> run_epoch(const session_window_operator& op, operator_state& state, std::int64_t epoch,
                                   const batch& rows, std::optional<std::int64_t> watermark_minutes,
                                   std::size_t* dropped = nullptr) {
  collecting_context ctx(epoch);
  if (watermark_minutes) ctx.watermark_now = *watermark_minutes * minute;
  if (rows.num_rows() > 0) as_stream(op).process(rows, 0, &state, ctx);
  as_stream(op).end_epoch(&state, ctx);
  state.take_changes();
  if (dropped) *dropped = ctx.dropped_by_watermark;
  return sessions_of(ctx.take(op.output_schema()));
}

}  // namespace

TEST_CASE("session windows: sessions grow, and merge when a row bridges two (update mode)", "[session_window]") {
  const auto op = clicks_per_session(output_mode::update);
  CHECK(op.output_schema()->names() == std::vector<std::string>{"user", "session_window", "clicks"});
  auto state = op.make_state();
  CHECK(run_epoch(op, *state, 0, clicks({{"ann", 0, ""}, {"ann", 30, ""}, {"bob", 5, ""}}), std::nullopt) ==
        std::vector<session_row>{{"ann", 0, 10, 1}, {"ann", 30, 40, 1}, {"bob", 5, 15, 1}});
  // Only the sessions an epoch changed are emitted; a row at the end of a session (touching) joins it.
  CHECK(run_epoch(op, *state, 1, clicks({{"ann", 8, ""}, {"ann", 18, ""}}), std::nullopt) ==
        std::vector<session_row>{{"ann", 0, 28, 3}});
  // 25 opens [25, 35), which overlaps both of ann's sessions: one session of five clicks.
  CHECK(run_epoch(op, *state, 2, clicks({{"ann", 25, ""}}), std::nullopt) == std::vector<session_row>{{"ann", 0, 40, 5}});
  CHECK(state->num_rows() == 2);
}

TEST_CASE("session windows: append mode emits a session once, when the watermark passes its end, and late rows are "
          "dropped and counted",
          "[session_window]") {
  const auto op = clicks_per_session(output_mode::append);
  auto state = op.make_state();
  std::size_t dropped = 0;
  CHECK(run_epoch(op, *state, 0, clicks({{"ann", 0, ""}, {"ann", 5, ""}, {"bob", 12, ""}}), std::nullopt).empty());
  CHECK(run_epoch(op, *state, 1, clicks({{"ann", 40, ""}}), 14).empty());
  // Watermark 15: ann's [0, 15) is closed; bob's [12, 22) is not.
  CHECK(run_epoch(op, *state, 2, batch::empty(clicks_schema()), 15) == std::vector<session_row>{{"ann", 0, 15, 2}});
  CHECK(run_epoch(op, *state, 3, batch::empty(clicks_schema()), 21).empty());
  // At watermark 30, a row at 19 ([19, 29)) is late and dropped; one at 21 ([21, 31)) joins bob's session.
  CHECK(run_epoch(op, *state, 4, clicks({{"ann", 19, ""}, {"bob", 21, ""}}), 30, &dropped) ==
        std::vector<session_row>{});
  CHECK(dropped == 1);
  CHECK(run_epoch(op, *state, 5, batch::empty(clicks_schema()), 60) ==
        std::vector<session_row>{{"ann", 40, 50, 1}, {"bob", 12, 31, 2}});
  CHECK(state->num_rows() == 0);
}

TEST_CASE("session windows: a gap per row from a string column: a null gap drops the row, and one that is no positive "
          "duration fails the query",
          "[session_window]") {
  const auto op = clicks_per_session(output_mode::update, col("gap"));
  auto state = op.make_state();
  CHECK(run_epoch(op, *state, 0,
                  clicks({{"ann", 0, "5 minutes"}, {"ann", 20, "1 hour"}, {"cy", 3, "2 minutes"}}),
                  std::nullopt) == std::vector<session_row>{{"ann", 0, 5, 1}, {"ann", 20, 80, 1}, {"cy", 3, 5, 1}});
  const batch with_null = make_batch(clicks_schema(), {{std::string("bob"), timestamp{0}, null_value{}}});
  CHECK(run_epoch(op, *state, 1, with_null, std::nullopt).empty());
  CHECK_THAT(error_of([&] { run_epoch(op, *state, 2, clicks({{"ann", 1, "soon"}}), std::nullopt); }),
             Catch::Contains("the gap 'soon' of a row is not a positive duration"));
  CHECK_THAT(error_of([&] { run_epoch(op, *state, 3, clicks({{"bob", 1, "0 seconds"}}), std::nullopt); }),
             Catch::Contains("the gap '0 seconds' of a row is not a positive duration"));
}

TEST_CASE("session windows: the state carries over a snapshot and restore", "[session_window]") {
  const auto op = clicks_per_session(output_mode::append);
  auto state = op.make_state();
  run_epoch(op, *state, 0, clicks({{"ann", 0, ""}, {"ann", 30, ""}, {"bob", 3, ""}}), std::nullopt);
  auto restarted = op.make_state();
  restarted->restore(state->snapshot());
  // A fresh copy fed the changes holds the same sessions too (the runtime's checkpoint copy).
  auto copy = op.make_state();
  copy->apply_changes(state->snapshot());
  for (auto* s : {restarted.get(), copy.get()}) {
    CHECK(run_epoch(op, *s, 1, clicks({{"ann", 9, ""}, {"ann", 19, ""}}), std::nullopt).empty());
    CHECK(run_epoch(op, *s, 2, batch::empty(clicks_schema()), 100) ==
          std::vector<session_row>{{"ann", 0, 29, 3}, {"ann", 30, 40, 1}, {"bob", 3, 13, 1}});
  }
}

TEST_CASE("session windows: the state stays bounded by the watermark while the input grows", "[session_window]") {
  const auto op = clicks_per_session(output_mode::append);
  auto state = op.make_state();
  // A new user every 10 minutes, each clicking every minute for 10 minutes (one session of 10 clicks), one
  // minute per epoch; the watermark trails the latest click by 5 minutes.
  std::size_t largest = 0, sessions = 0;
  for (std::int64_t at = 0; at < 2000; ++at) {
    const auto out = run_epoch(op, *state, at, clicks({{"user-" + std::to_string(at / 10), at, ""}}),
                               at == 0 ? std::nullopt : std::optional<std::int64_t>(at - 1 - 5));
    for (const auto& [user, start, end, count] : out) CHECK(count == 10);
    sessions += out.size();
    largest = std::max(largest, state->num_rows());
  }
  CHECK(sessions > 195);
  CHECK(largest <= 3);
}

TEST_CASE("session windows: bad keys, bad time columns and complete mode on a stream are refused", "[session_window]") {
  CHECK_THAT(error_of([] {
               session_window_operator(clicks_schema(), {session_window(col("at"), "5 minutes")}, {count_all()},
                                       output_mode::update);
             }),
             Catch::Contains("needs at least one key besides session_window"));
  CHECK_THAT(error_of([] {
               session_window_operator(clicks_schema(), {col("user"), session_window(col("gap"), "5 minutes")},
                                       {count_all()}, output_mode::update);
             }),
             Catch::Contains("needs a timestamp time column"));
  CHECK_THAT(error_of([] { session_window(col("at"), "0 seconds"); }), Catch::Contains("must be positive"));
  CHECK_THAT(error_of([] { bind(session_window(col("at"), "5 minutes"), *clicks_schema()); }),
             Catch::Contains("only allowed as a group_by key"));
  scan_spec scan;
  scan.format = "local";
  scan.schema = clicks_schema();
  scan.streaming = true;
  auto plan = make_aggregate(make_watermark(make_scan(scan), "at", "10 minutes"),
                             {col("user"), session_window(col("at"), "5 minutes")}, {count_all()});
  CHECK_THAT(error_of([&] { validate_output_mode(*plan, output_mode::complete); }),
             Catch::Contains("complete output mode not supported for session window"));
  CHECK_NOTHROW(validate_output_mode(*plan, output_mode::append));
  CHECK_NOTHROW(validate_output_mode(*plan, output_mode::update));
}

namespace {

// A plain loop over the same epochs: per customer its open sessions (start, end, rows, quantity); each epoch
// drops the rows whose own session ended at or before its watermark, merges the others in, then closes the
// sessions the watermark passed.
struct oracle_session {
  std::int64_t start, end, rows, quantity;
};

using retail_session = std::tuple<double, std::int64_t, std::int64_t, std::int64_t, std::int64_t>;

}  // namespace

TEST_CASE("session windows: retail invoices per customer, shuffled across epochs with a small watermark, against a "
          "plain loop",
          "[session_window]") {
  const std::int64_t gap = 30 * minute, delay = 20 * minute;
  batch all = concat({test::retail_day("2010-12-01"), test::retail_day("2010-12-02"), test::retail_day("2010-12-03")});
  std::vector<std::uint8_t> with_customer(all.num_rows());
  for (std::size_t i = 0; i < all.num_rows(); ++i) with_customer[i] = all.col("CustomerID").valid(i);
  all = filter_rows(all, with_customer);
  // Shuffled, but mostly in order: each row moves up to 90 minutes, so some are late and most are not.
  std::vector<std::size_t> order(all.num_rows());
  std::vector<double> sort_key(all.num_rows());
  std::mt19937 random(7);
  std::uniform_real_distribution<double> jitter(0, 1.5 * 3600e6);
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
    sort_key[i] = static_cast<double>(all.col("InvoiceDate").ints()[i]) + jitter(random);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return sort_key[a] < sort_key[b]; });
  const std::size_t epochs = 12;

  const session_window_operator op(all.schema_ref(),
                                   {session_window(col("InvoiceDate"), "30 minutes"), col("CustomerID")},
                                   {{agg_kind::count, expr{}, "rows"}, {agg_kind::sum, col("Quantity"), "quantity"}},
                                   output_mode::append);
  auto state = op.make_state();
  std::map<double, std::vector<oracle_session>> open;
  std::vector<retail_session> expected, got;
  std::size_t expected_dropped = 0, dropped = 0;
  std::int64_t max_seen = INT64_MIN;
  const column& times = all.col("InvoiceDate");
  const column& customers = all.col("CustomerID");
  const column& quantities = all.col("Quantity");
  auto close = [&](std::int64_t watermark) {
    for (auto& [customer, sessions] : open) {
      std::erase_if(sessions, [&](const oracle_session& s) {
        if (s.end > watermark) return false;
        expected.emplace_back(customer, s.start, s.end, s.rows, s.quantity);
        return true;
      });
    }
  };
  for (std::size_t e = 0; e <= epochs; ++e) {
    // The watermark lags one epoch: the latest event time of the earlier epochs minus the delay.
    const std::int64_t watermark = max_seen == INT64_MIN ? operator_context::no_watermark : max_seen - delay;
    const std::size_t first = order.size() * e / epochs, last = order.size() * (e + 1) / epochs;
    std::vector<std::uint8_t> in_epoch(all.num_rows(), 0);
    for (std::size_t k = first; k < std::min(last, order.size()); ++k) {
      const std::size_t i = order[k];
      in_epoch[i] = 1;
      max_seen = std::max(max_seen, times.ints()[i]);
      const std::int64_t t = times.ints()[i];
      if (watermark != operator_context::no_watermark && t + gap <= watermark) {
        ++expected_dropped;
        continue;
      }
      auto& sessions = open[customers.doubles()[i]];
      oracle_session merged{t, t + gap, 1, quantities.ints()[i]};
      std::erase_if(sessions, [&](const oracle_session& s) {
        if (s.start > merged.end || merged.start > s.end) return false;
        merged = {std::min(s.start, merged.start), std::max(s.end, merged.end), s.rows + merged.rows,
                  s.quantity + merged.quantity};
        return true;
      });
      sessions.push_back(merged);
    }
    if (watermark != operator_context::no_watermark) close(watermark);
    // The epoch's rows in shuffled order, in three batches.
    const batch rows = filter_rows(all, in_epoch);
    collecting_context ctx(static_cast<std::int64_t>(e));
    ctx.watermark_now = watermark;
    for (std::size_t part = 0; part < 3; ++part) {
      const std::size_t from = rows.num_rows() * part / 3, to = rows.num_rows() * (part + 1) / 3;
      as_stream(op).process(rows.slice(from, to - from), 0, state.get(), ctx);
    }
    as_stream(op).end_epoch(state.get(), ctx);
    state->take_changes();
    if (e == epochs / 2) {  // a restart from the checkpoint
      auto restarted = op.make_state();
      restarted->restore(state->snapshot());
      state = std::move(restarted);
    }
    dropped += ctx.dropped_by_watermark;
    const batch out = ctx.take(op.output_schema());
    for (std::size_t i = 0; i < out.num_rows(); ++i) {
      const column& w = out.col("session_window");
      got.emplace_back(out.col("CustomerID").doubles()[i], w.ints()[i], w.ends()[i], out.col("rows").ints()[i],
                       out.col("quantity").ints()[i]);
    }
  }
  // A final watermark past everything closes the rest.
  collecting_context last(static_cast<std::int64_t>(epochs + 1));
  last.watermark_now = INT64_MAX;
  as_stream(op).end_epoch(state.get(), last);
  const batch out = last.take(op.output_schema());
  for (std::size_t i = 0; i < out.num_rows(); ++i) {
    const column& w = out.col("session_window");
    got.emplace_back(out.col("CustomerID").doubles()[i], w.ints()[i], w.ends()[i], out.col("rows").ints()[i],
                     out.col("quantity").ints()[i]);
  }
  close(INT64_MAX);
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  CHECK(expected_dropped > 0);
  CHECK(expected_dropped < all.num_rows() / 3);
  CHECK(dropped == expected_dropped);
  CHECK(expected.size() > 100);
  CHECK(got == expected);
  CHECK(state->num_rows() == 0);
}

TEST_CASE("session windows: rebuilt from its descriptor, with a constant gap, a gap per row and an alias",
          "[session_window]") {
  for (const auto& session : {session_window(col("at"), "10 minutes"), session_window(col("at"), col("gap")).as("visit")}) {
    const session_window_operator op(clicks_schema(), {col("user"), session}, {{agg_kind::count, expr{}, "clicks"}},
                                     output_mode::append);
    const auto descriptor = op.descriptor();
    REQUIRE(descriptor);
    CHECK(descriptor->name == "session_window");
    const auto rebuilt = make_operator(*descriptor, clicks_schema());
    REQUIRE(rebuilt);
    CHECK(*rebuilt->output_schema() == *op.output_schema());
    CHECK(rebuilt->descriptor() == descriptor);
    CHECK(rebuilt->key_columns() == std::vector<std::string>{"user"});
    // Both give the same sessions.
    const batch rows = clicks({{"ann", 0, "10 minutes"}, {"ann", 5, "10 minutes"}, {"bob", 3, "10 minutes"}});
    std::vector<batch> outputs;
    for (const stream_operator* each : {static_cast<const stream_operator*>(&op), rebuilt.get()}) {
      auto state = each->make_state();
      collecting_context ctx;
      each->process(rows, 0, state.get(), ctx);
      ctx.watermark_now = 100 * minute;
      each->end_epoch(state.get(), ctx);
      outputs.push_back(ctx.take(each->output_schema()));
    }
    CHECK(outputs[0].num_rows() == 2);
    CHECK(test::sorted_rows(outputs[0]) == test::sorted_rows(outputs[1]));
  }
  CHECK_THAT(error_of([] { make_operator({"session_window", "nonsense"}, clicks_schema()); }),
             Catch::Contains("session_window"));
}
