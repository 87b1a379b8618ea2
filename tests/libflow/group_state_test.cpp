// map_groups_with_state / flat_map_groups_with_state's operator over the retail data, driven by hand, against
// plain loops over the same rows: running totals, an idle timeout on a controllable clock, event-time
// timeouts, a restart from the state's checkpoint copy, and bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "collecting_context.hpp"
#include "flow/formats.hpp"
#include "flow/group_state.hpp"
#include "retail_day.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::retail_day;
using retail::retail_schema;

namespace {



const std::vector<std::string> days{"2010-12-01", "2010-12-02", "2010-12-03", "2010-12-05"};

std::int64_t quantity_of(const batch& rows, std::size_t r) {
  const column& q = rows.col("Quantity");
  return q.valid(r) ? q.ints()[r] : 0;
}

// Per customer: the quantity bought so far and the rows seen so far (state and output).
const map_groups_function running_totals = [](const group_key& key, const batch& rows, group_state<state_row>& state) {
  std::int64_t units = state.exists() ? std::get<std::int64_t>(state.get()[0]) : 0;
  std::int64_t seen = state.exists() ? std::get<std::int64_t>(state.get()[1]) : 0;
  for (std::size_t r = 0; r < rows.num_rows(); ++r) units += quantity_of(rows, r);
  seen += static_cast<std::int64_t>(rows.num_rows());
  state.update({units, seen});
  return state_row{key[0], units, seen};
};

group_state_spec totals_spec() {
  return {.state = {{"units", type_id::int64}, {"rows", type_id::int64}},
          .output = {{"CustomerID", type_id::float64}, {"units", type_id::int64}, {"rows", type_id::int64}}};
}

operator_ptr map_operator(map_groups_function fn, group_state_spec spec) {
  return make_group_state_operator(
      retail_schema(), {"CustomerID"},
      [fn = std::move(fn)](const group_key& key, const batch& rows, group_state<state_row>& state) {
        return std::vector<state_row>{fn(key, rows, state)};
      },
      std::move(spec), output_mode::update, true);
}

// One epoch through op at processing_time (ms): the rows, then the epoch's end; what it emitted, sorted.
std::vector<std::vector<value>> run_epoch(const stream_operator& op, operator_state& state, std::int64_t epoch,
                                          const batch& rows, std::int64_t processing_time = 0) {
  collecting_context ctx(epoch);
  ctx.processing_time_now = processing_time;
  op.process(rows, 0, &state, ctx);
  op.end_epoch(&state, ctx);
  return test::sorted_rows(ctx.take(op.output_schema()));
}

// The plain loop: after each day, (customer, units so far, rows so far) of the customers with rows that day.
std::vector<std::vector<std::vector<value>>> expected_totals(const std::vector<batch>& inputs) {
  std::map<value, std::pair<std::int64_t, std::int64_t>> totals;
  std::vector<std::vector<std::vector<value>>> per_epoch;
  for (const auto& rows : inputs) {
    std::set<value> touched;
    for (std::size_t r = 0; r < rows.num_rows(); ++r) {
      const value customer = rows.col("CustomerID").at(r);
      totals[customer].first += quantity_of(rows, r);
      ++totals[customer].second;
      touched.insert(customer);
    }
    std::vector<std::vector<value>> out;
    for (const auto& c : touched) out.push_back({c, totals[c].first, totals[c].second});
    std::sort(out.begin(), out.end());
    per_epoch.push_back(out);
  }
  return per_epoch;
}

}  // namespace

TEST_CASE("map_groups_with_state: running totals per customer match a plain loop over the retail days",
          "[group_state][data]") {
  std::vector<batch> inputs;
  for (const auto& day : days) inputs.push_back(retail_day(day));
  const auto expected = expected_totals(inputs);
  const auto op = map_operator(running_totals, totals_spec());
  auto state = op->make_state();
  for (std::size_t e = 0; e < inputs.size(); ++e) {
    INFO("day " << days[e]);
    CHECK(run_epoch(*op, *state, static_cast<std::int64_t>(e), inputs[e]) == expected[e]);
  }
  CHECK(state->num_rows() == expected_totals({concat(inputs)}).front().size());
}

TEST_CASE("map_groups_with_state: a state restored from its checkpoint copy mid-stream gives the uninterrupted output",
          "[group_state][data]") {
  std::vector<batch> inputs;
  for (const auto& day : days) inputs.push_back(retail_day(day));
  const auto op = map_operator(running_totals, totals_spec());
  auto uninterrupted = op->make_state();
  std::vector<std::vector<std::vector<value>>> expected;
  for (std::size_t e = 0; e < inputs.size(); ++e)
    expected.push_back(run_epoch(*op, *uninterrupted, static_cast<std::int64_t>(e), inputs[e]));

  // The runtime's way: a checkpoint copy fed each epoch's changes, restored into a new instance.
  auto first = op->make_state();
  auto checkpoint = op->make_state();
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(run_epoch(*op, *first, static_cast<std::int64_t>(e), inputs[e]) == expected[e]);
    checkpoint->apply_changes(first->take_changes());
  }
  auto restarted = op->make_state();
  restarted->restore(checkpoint->snapshot());
  for (std::size_t e = 2; e < inputs.size(); ++e)
    CHECK(run_epoch(*op, *restarted, static_cast<std::int64_t>(e), inputs[e]) == expected[e]);
}

TEST_CASE("flat_map_groups_with_state: sessions closed by a 1 hour processing-time timeout match a plain loop",
          "[group_state][data]") {
  // Each distinct InvoiceDate of two days is one epoch, whose processing time (the operator context's)
  // is that date: a customer's session ends when no invoice came for more than an hour.
  const batch all = concat({retail_day("2010-12-01"), retail_day("2010-12-02")});
  std::map<std::int64_t, std::vector<std::uint8_t>> by_time;
  const column& dates = all.col("InvoiceDate");
  for (std::size_t r = 0; r < all.num_rows(); ++r) {
    auto& keep = by_time[dates.ints()[r] / 1000];
    keep.resize(all.num_rows(), 0);
    keep[r] = 1;
  }
  constexpr std::int64_t hour_ms = 3'600'000;

  // The plain loop: per customer (start, last, rows); at each time, customers idle over an hour close.
  struct session {
    std::int64_t start, last, rows;
  };
  std::map<value, session> open;
  std::vector<std::vector<value>> expected;
  for (const auto& [time, keep] : by_time) {
    const batch rows = filter_rows(all, keep);
    std::set<value> with_rows;
    for (std::size_t r = 0; r < rows.num_rows(); ++r) {
      const value customer = rows.col("CustomerID").at(r);
      with_rows.insert(customer);
      auto [at, added] = open.try_emplace(customer, session{time, time, 0});
      at->second.last = time;
      ++at->second.rows;
    }
    for (auto it = open.begin(); it != open.end();) {
      if (!with_rows.count(it->first) && it->second.last + hour_ms < time) {
        expected.push_back({it->first, it->second.start, it->second.last, it->second.rows});
        it = open.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::sort(expected.begin(), expected.end());
  REQUIRE(expected.size() > 100);

  const auto op = make_group_state_operator(
      retail_schema(), {"CustomerID"},
      [](const group_key& key, const batch& rows, group_state<state_row>& state) {
        if (state.has_timed_out()) {
          CHECK(rows.num_rows() == 0);
          const auto& s = state.get();
          std::vector<state_row> closed{{key[0], s[0], s[1], s[2]}};
          state.remove();
          return closed;
        }
        const std::int64_t now = state.get_current_processing_time_ms();
        const std::int64_t start = state.exists() ? std::get<std::int64_t>(state.get()[0]) : now;
        const std::int64_t seen = state.exists() ? std::get<std::int64_t>(state.get()[2]) : 0;
        state.update({start, now, seen + static_cast<std::int64_t>(rows.num_rows())});
        state.set_timeout_duration(std::chrono::hours(1));
        return std::vector<state_row>{};
      },
      {.state = {{"start", type_id::int64}, {"last", type_id::int64}, {"rows", type_id::int64}},
       .output = {{"CustomerID", type_id::float64}, {"start", type_id::int64}, {"last", type_id::int64}, {"rows", type_id::int64}},
       .timeout = group_state_timeout::processing_time},
      output_mode::append, false);
  auto state = op->make_state();
  std::vector<std::vector<value>> closed;
  std::int64_t epoch = 0;
  for (const auto& [time, keep] : by_time)
    for (auto& row : run_epoch(*op, *state, epoch++, filter_rows(all, keep), time)) closed.push_back(std::move(row));
  std::sort(closed.begin(), closed.end());
  CHECK(closed == expected);
  CHECK(state->num_rows() == open.size());
}

TEST_CASE("flat_map_groups_with_state: an event-time timeout fires when the watermark passes it, not before",
          "[group_state]") {
  const auto input = make_schema({{"user", type_id::string}, {"at_ms", type_id::int64}});
  const auto op = make_group_state_operator(
      input, {"user"},
      [](const group_key& key, const batch& rows, group_state<state_row>& state) {
        if (state.has_timed_out()) {
          state.remove();
          return std::vector<state_row>{{key[0], std::string("expired"), state.get_current_watermark_ms()}};
        }
        std::int64_t latest = 0;
        for (std::size_t r = 0; r < rows.num_rows(); ++r) latest = std::max(latest, rows.col(1).ints()[r]);
        state.update({latest});
        state.set_timeout_timestamp(latest + 1000);
        return std::vector<state_row>{};
      },
      {.state = {{"latest", type_id::int64}},
       .output = {{"user", type_id::string}, {"event", type_id::string}, {"watermark", type_id::int64}},
       .timeout = group_state_timeout::event_time},
      output_mode::append, false);
  auto state = op->make_state();
  CHECK(run_epoch(*op, *state, 0, make_batch(input, {{std::string("a"), std::int64_t{5000}}, {std::string("b"), std::int64_t{7000}}})).empty());
  collecting_context ctx(1);
  op->on_watermark(6000 * 1000, state.get(), ctx);  // a's timeout (6000) is not passed yet: strictly less
  CHECK(ctx.emitted.empty());
  op->on_watermark(6001 * 1000, state.get(), ctx);
  CHECK(test::sorted_rows(ctx.take(op->output_schema())) ==
        std::vector<std::vector<value>>{{std::string("a"), std::string("expired"), std::int64_t{6001}}});
  CHECK(state->num_rows() == 1);
  // Behind the watermark a timeout is refused.
  CHECK_THAT(test::error_of([&] {
               run_epoch(*op, *state, 2, make_batch(input, {{std::string("c"), std::int64_t{1000}}}));
             }),
             Catch::Contains("cannot be earlier than the current watermark (6001)"));
}

TEST_CASE("map_groups_with_state: a state or output row not of the declared columns, or a throwing function, is a clear error",
          "[group_state]") {
  const batch rows = make_batch(retail_schema(), {{std::string("1"), std::string("A"), std::string("d"), std::int64_t{2},
                                                   timestamp{0}, 1.5, 17850.0, std::string("UK")}});
  auto run = [&](map_groups_function fn) {
    const auto op = map_operator(std::move(fn), totals_spec());
    auto state = op->make_state();
    return test::error_of([&] { run_epoch(*op, *state, 0, rows); });
  };
  CHECK_THAT(run([](const group_key& key, const batch&, group_state<state_row>& state) {
               state.update({std::string("many"), std::int64_t{1}});
               return state_row{key[0], std::int64_t{1}, std::int64_t{1}};
             }),
             Catch::Contains("mapGroupsWithState: the state of key [17850.0]: column 'units' was declared int64, but the value is string"));
  CHECK_THAT(run([](const group_key& key, const batch&, group_state<state_row>& state) {
               state.update({std::int64_t{1}});
               return state_row{key[0], std::int64_t{1}, std::int64_t{1}};
             }),
             Catch::Contains("the state of key [17850.0] has 1 values, but 2 columns were declared"));
  CHECK_THAT(run([](const group_key&, const batch&, group_state<state_row>&) { return state_row{1.0}; }),
             Catch::Contains("the output row of key [17850.0] has 1 values, but 3 columns were declared"));
  CHECK_THAT(run([](const group_key&, const batch&, group_state<state_row>& state) -> state_row {
               return {state.get()};
             }),
             Catch::Contains("mapGroupsWithState: the function failed for key [17850.0]: mapGroupsWithState: get() of a state that does not exist"));
  CHECK_THAT(run([](const group_key&, const batch&, group_state<state_row>& state) -> state_row {
               state.set_timeout_duration(std::chrono::minutes(1));
               return {};
             }),
             Catch::Contains("Cannot set timeout duration without enabling processing time timeout"));
  CHECK_THAT(test::error_of([] {
               make_group_state_operator(retail_schema(), {"CustomerID"}, {}, totals_spec(), output_mode::complete, false);
             }),
             Catch::Contains("The output mode of function should be append or update"));
}

TEST_CASE("map_groups_with_state: the timeout is reset at every call, and a timed-out key keeps the state it was not "
          "told to remove", "[group_state]") {
  const auto input = make_schema({{"user", type_id::string}});
  std::vector<std::string> calls;
  const auto op = make_group_state_operator(
      input, {"user"},
      [&calls](const group_key& key, const batch& rows, group_state<state_row>& state) {
        const std::string user = std::get<std::string>(key[0]);
        calls.push_back(user + (state.has_timed_out() ? " timed out" : " rows " + std::to_string(rows.num_rows())));
        if (!state.has_timed_out()) state.update({std::int64_t{1}});
        // "a" asks for a timeout at its first call only; "b" never.
        if (user == "a" && !state.has_timed_out() && state.get_current_processing_time_ms() == 0)
          state.set_timeout_duration(std::chrono::milliseconds(10));
        return std::vector<state_row>{};
      },
      {.state = {{"seen", type_id::int64}},
       .output = {{"user", type_id::string}},
       .timeout = group_state_timeout::processing_time},
      output_mode::update, false);
  auto state = op->make_state();
  auto rows_of = [&](std::vector<std::string> users) {
    std::vector<std::vector<value>> rows;
    for (auto& u : users) rows.push_back({u});
    return make_batch(input, rows);
  };
  run_epoch(*op, *state, 0, rows_of({"a", "b"}), 0);
  run_epoch(*op, *state, 1, rows_of({}), 10);  // not past a's timeout (10): strictly later only
  run_epoch(*op, *state, 2, rows_of({}), 11);
  run_epoch(*op, *state, 3, rows_of({}), 1000);  // a's timeout went with the timed-out call
  CHECK(calls == std::vector<std::string>{"a rows 1", "b rows 1", "a timed out"});
  CHECK(state->num_rows() == 2);
  calls.clear();
  run_epoch(*op, *state, 4, rows_of({"a"}), 1000);  // a later row without a new timeout: none is kept
  run_epoch(*op, *state, 5, rows_of({}), 5000);
  CHECK(calls == std::vector<std::string>{"a rows 1"});
}
