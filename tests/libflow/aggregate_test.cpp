#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "flow/formats.hpp"
#include "flow/operators.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::sorted_rows;

namespace {

using rows_t = std::vector<std::vector<value>>;

timestamp ts(const char* text) { return *parse_timestamp(text); }
window_value win(const char* start, const char* end) { return {ts(start), ts(end)}; }
const value null{null_value{}};

schema_ptr sales_schema() {
  return make_schema({{"CustomerID", type_id::float64, true},
                      {"Quantity", type_id::int64, true},
                      {"UnitPrice", type_id::float64, true},
                      {"InvoiceDate", type_id::timestamp, true},
                      {"Country", type_id::string, true}});
}

batch sales() {
  return make_batch(sales_schema(),
                    {{17850.0, std::int64_t{6}, 2.5, ts("2010-12-01 08:26:00"), std::string("UK")},
                     {17850.0, std::int64_t{2}, null, ts("2010-12-01 08:50:00"), std::string("UK")},
                     {null, std::int64_t{3}, 1.0, ts("2010-12-01 08:10:00"), std::string("FR")},
                     {null, null, 4.0, ts("2010-12-01 09:10:00"), null},
                     {13047.0, std::int64_t{-1}, 10.0, ts("2010-12-01 09:59:59"), std::string("FR")},
                     {17850.0, std::int64_t{1}, 1.5, ts("2010-12-01 09:00:00"), std::string("UK")}});
}

agg_spec sum_of(expr e) { return {agg_kind::sum, std::move(e), {}}; }

}  // namespace

TEST_CASE("aggregate: schemas and Spark names", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("CustomerID"), window(col("InvoiceDate"), "1 hour")},
                        {sum_of(col("Quantity")), {agg_kind::count, expr{}, {}}, {agg_kind::count, col("UnitPrice"), {}},
                         {agg_kind::min, col("Country"), {}}, {agg_kind::max, col("UnitPrice"), {}},
                         {agg_kind::avg, col("Quantity"), "mean_q"}});
  CHECK(op.output_schema()->to_string() ==
        make_schema({{"CustomerID", type_id::float64, true}, {"window", type_id::window, true},
                     {"sum(Quantity)", type_id::int64, true}, {"count(1)", type_id::int64, false},
                     {"count(UnitPrice)", type_id::int64, false}, {"min(Country)", type_id::string, true},
                     {"max(UnitPrice)", type_id::float64, true}, {"mean_q", type_id::float64, true}})
            ->to_string());
  CHECK(op.state_schema()->names() ==
        std::vector<std::string>{"CustomerID", "window", "__sum_0", "__cnt_0", "__cnt_1", "__cnt_2", "__min_3",
                                 "__max_4", "__sum_5", "__cnt_5"});
  CHECK(op.window_key_index() == 1);
  CHECK(op.key_names() == std::vector<std::string>{"CustomerID", "window"});
  CHECK(op.describe() ==
        "Aggregate [CustomerID, window], [sum(Quantity), count(1), count(UnitPrice), min(Country), max(UnitPrice), "
        "mean_q]");
}

TEST_CASE("aggregate: every kind, with null inputs and a null key", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("CustomerID")},
                        {sum_of(col("Quantity")), {agg_kind::count, expr{}, {}}, {agg_kind::count, col("UnitPrice"), {}},
                         {agg_kind::min, col("UnitPrice"), {}}, {agg_kind::max, col("Country"), {}},
                         {agg_kind::avg, col("UnitPrice"), {}}, sum_of(col("UnitPrice"))});
  auto state = op.make_state();
  state->update(sales());
  CHECK(state->num_groups() == 3);
  auto rows = sorted_rows(state->emit(output_mode::complete));
  // The null key sorts first (null_value is the variant's first alternative).
  CHECK(rows == rows_t{{null, std::int64_t{3}, std::int64_t{2}, std::int64_t{2}, 1.0, std::string("FR"), 2.5, 5.0},
                       {13047.0, std::int64_t{-1}, std::int64_t{1}, std::int64_t{1}, 10.0, std::string("FR"), 10.0, 10.0},
                       {17850.0, std::int64_t{9}, std::int64_t{3}, std::int64_t{2}, 1.5, std::string("UK"), 2.0, 4.0}});

  // A group whose inputs are all null: sum/min/max/avg are null, counts are 0.
  auto all_null = make_batch(sales_schema(), {{1.0, null, null, null, null}});
  auto s2 = op.make_state();
  s2->update(all_null);
  CHECK(sorted_rows(s2->emit(output_mode::complete)) ==
        rows_t{{1.0, null, std::int64_t{1}, std::int64_t{0}, null, null, null, null}});
}

TEST_CASE("aggregate: global aggregation without keys", "[aggregate]") {
  aggregate_operator op(sales_schema(), {}, {{agg_kind::count, expr{}, {}}, sum_of(col("Quantity"))});
  auto state = op.make_state();
  state->update(sales());
  state->update(sales().slice(0, 2));
  CHECK(sorted_rows(state->emit(output_mode::complete)) == rows_t{{std::int64_t{8}, std::int64_t{19}}});
}

TEST_CASE("aggregate: string keys use the generic table", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("Country"), col("CustomerID")}, {{agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  state->update(sales());
  state->update(sales());
  CHECK(sorted_rows(state->emit(output_mode::complete)) ==
        rows_t{{null, null, std::int64_t{2}},
               {std::string("FR"), null, std::int64_t{2}},
               {std::string("FR"), 13047.0, std::int64_t{2}},
               {std::string("UK"), 17850.0, std::int64_t{6}}});
}

TEST_CASE("aggregate: one string key: null and empty are two groups, many groups grow the table, snapshots restore",
          "[aggregate]") {
  auto words_schema = make_schema({{"word", type_id::string, true}});
  aggregate_operator op(words_schema, {col("word")}, {{agg_kind::count, expr{}, {}}});
  column_builder words(type_id::string);
  std::map<std::string, std::int64_t> expected;
  for (int i = 0; i < 3000; ++i) {  // 1000 distinct words (some longer than a short string), three times each
    const std::string word = std::to_string(i % 1000) + (i % 7 == 0 ? std::string(20, 'x') : std::string());
    words.append_string(word);
    ++expected[word];
  }
  words.append_string("");
  words.append_null();
  words.append_null();
  const batch input(words_schema, {words.finish()});
  auto state = op.make_state();
  state->update(input.slice(0, 1500));
  state->update(input.slice(1500, input.num_rows() - 1500));
  rows_t want{{null, std::int64_t{2}}, {std::string(""), std::int64_t{1}}};
  for (const auto& [word, count] : expected) want.push_back({word, count});
  std::sort(want.begin() + 2, want.end());
  CHECK(state->num_groups() == expected.size() + 2);
  CHECK(sorted_rows(state->emit(output_mode::complete)) == want);
  auto restored = op.make_state();
  restored->restore(state->snapshot());
  restored->update(input.slice(input.num_rows() - 1, 1));  // one more null
  want[0][1] = std::int64_t{3};
  CHECK(sorted_rows(restored->emit(output_mode::complete)) == want);
}

TEST_CASE("aggregate: a null key as the first group stays null, and keys stay apart from it", "[aggregate]") {
  auto schema = make_schema({{"word", type_id::string, true}, {"n", type_id::int64, true}});
  aggregate_operator op(schema, {col("word"), col("n")}, {{agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  state->update(make_batch(schema, {{null, null}, {std::string(""), std::int64_t{0}}, {null, null}}));
  state->update(make_batch(schema, {{std::string(""), null}, {null, std::int64_t{0}}}));
  CHECK(sorted_rows(state->emit(output_mode::complete)) ==
        rows_t{{null, null, std::int64_t{2}},
               {null, std::int64_t{0}, std::int64_t{1}},
               {std::string(""), null, std::int64_t{1}},
               {std::string(""), std::int64_t{0}, std::int64_t{1}}});
}

// The raw bytes of a group are its key's and its count's; the table (slots, keys, accumulators, change
// tracking, room to grow) stays within twice that, for fixed-width and string keys.
TEST_CASE("aggregate: the state of a count by key takes at most twice the raw key and count bytes", "[aggregate][memory]") {
  constexpr std::int64_t keys = 300000;
  for (const type_id key_type : {type_id::int64, type_id::string}) {
    INFO("key type " << type_name(key_type));
    auto schema = make_schema({{"k", key_type, false}});
    aggregate_operator op(schema, {col("k")}, {{agg_kind::count, expr{}, {}}});
    auto state = op.make_state();
    std::size_t key_bytes = 0;
    for (std::int64_t first = 0; first < keys; first += 10000) {
      column_builder column(key_type);
      for (std::int64_t i = first; i < first + 10000; ++i) {
        if (key_type == type_id::int64) {
          column.append_int(i * 7919);
          key_bytes += 8;
        } else {
          const std::string key = "key-" + std::to_string(10000000 + i);
          column.append_string(key);
          key_bytes += key.size();
        }
      }
      state->update(batch(schema, {column.finish()}));
    }
    REQUIRE(state->num_groups() == static_cast<std::size_t>(keys));
    const double raw_bytes = static_cast<double>(key_bytes) + 8.0 * keys;
    CHECK(static_cast<double>(state->memory_bytes()) <= 2.0 * raw_bytes);
    CHECK(state->emit(output_mode::update).num_rows() == static_cast<std::size_t>(keys));
  }
}

TEST_CASE("aggregate: tumbling window keys", "[aggregate]") {
  aggregate_operator op(sales_schema(), {window(col("InvoiceDate"), "1 hour")}, {{agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  state->update(sales());
  CHECK(sorted_rows(state->emit(output_mode::complete)) ==
        rows_t{{win("2010-12-01 08:00:00", "2010-12-01 09:00:00"), std::int64_t{3}},
               {win("2010-12-01 09:00:00", "2010-12-01 10:00:00"), std::int64_t{3}}});

  // Rows with a null event time join no window (Spark filters them out).
  auto with_null_time = make_batch(sales_schema(), {{1.0, std::int64_t{1}, 1.0, null, null},
                                                    {1.0, std::int64_t{1}, 1.0, ts("1969-12-31 23:59:59"), null}});
  auto s2 = op.make_state();
  s2->update(with_null_time);
  CHECK(sorted_rows(s2->emit(output_mode::complete)) ==
        rows_t{{win("1969-12-31 23:00:00", "1970-01-01 00:00:00"), std::int64_t{1}}});
}

TEST_CASE("aggregate: sliding windows expand rows into every window containing them", "[aggregate]") {
  auto s = make_schema({{"t", type_id::timestamp, true}, {"v", type_id::int64, true}});
  auto input = make_batch(s, {{ts("1970-01-01 00:12:00"), std::int64_t{1}},
                              {ts("1969-12-31 23:55:00"), std::int64_t{10}},
                              {null, std::int64_t{100}}});
  aggregate_operator op(s, {window(col("t"), "10 minutes", "5 minutes")}, {sum_of(col("v"))});
  auto state = op.make_state();
  state->update(input);
  CHECK(sorted_rows(state->emit(output_mode::complete)) ==
        rows_t{{win("1969-12-31 23:50:00", "1970-01-01 00:00:00"), std::int64_t{10}},
               {win("1969-12-31 23:55:00", "1970-01-01 00:05:00"), std::int64_t{10}},
               {win("1970-01-01 00:05:00", "1970-01-01 00:15:00"), std::int64_t{1}},
               {win("1970-01-01 00:10:00", "1970-01-01 00:20:00"), std::int64_t{1}}});
  // A row on a window boundary belongs to the window starting there, not the one ending there.
  auto edge = make_batch(s, {{ts("1970-01-01 00:10:00"), std::int64_t{1}}});
  auto s2 = op.make_state();
  s2->update(edge);
  CHECK(sorted_rows(s2->emit(output_mode::complete)) ==
        rows_t{{win("1970-01-01 00:05:00", "1970-01-01 00:15:00"), std::int64_t{1}},
               {win("1970-01-01 00:10:00", "1970-01-01 00:20:00"), std::int64_t{1}}});
  // Length not a multiple of the slide.
  aggregate_operator odd(s, {window(col("t"), "10 minutes", "3 minutes")}, {{agg_kind::count, expr{}, {}}});
  auto s3 = odd.make_state();
  s3->update(make_batch(s, {{ts("1970-01-01 00:12:00"), std::int64_t{1}}}));
  CHECK(sorted_rows(s3->emit(output_mode::complete)) ==
        rows_t{{win("1970-01-01 00:03:00", "1970-01-01 00:13:00"), std::int64_t{1}},
               {win("1970-01-01 00:06:00", "1970-01-01 00:16:00"), std::int64_t{1}},
               {win("1970-01-01 00:09:00", "1970-01-01 00:19:00"), std::int64_t{1}},
               {win("1970-01-01 00:12:00", "1970-01-01 00:22:00"), std::int64_t{1}}});
}

TEST_CASE("aggregate: a sliding window as the last key folds every row into its windows in row order",
          "[aggregate][sliding]") {
  // The sliding fast path (no window column) and the general path (the batch with null event times) fold
  // into one state; the sums of doubles match a hand fold in the same order bit for bit.
  auto s = make_schema({{"name", type_id::string, true}, {"t", type_id::timestamp, true}, {"x", type_id::int64, true},
                        {"y", type_id::float64, false}});
  const std::int64_t minute = 60'000'000, hour = 60 * minute, slide = 15 * minute, length = hour, offset = 5 * minute;
  std::mt19937_64 rng(7);
  rows_t rows;
  struct sums {
    std::int64_t x = 0, x_count = 0, rows = 0;
    double y = 0;
  };
  std::map<std::pair<std::string, std::int64_t>, sums> expected;  // (name or "<null>", window start)
  for (int i = 0; i < 3000; ++i) {
    const bool null_name = rng() % 9 == 0, null_time = i >= 1000 && i < 1100 && rng() % 3 == 0;
    const std::string name(1 + rng() % 3, static_cast<char>('a' + rng() % 6));
    const std::int64_t t = (static_cast<std::int64_t>(rng() % (6 * 3600)) - 3 * 3600) * 1'000'000;
    const bool null_x = rng() % 5 == 0;
    const std::int64_t x = static_cast<std::int64_t>(rng() % 1000) - 500;
    const double y = std::ldexp(static_cast<double>(rng() % 100000), static_cast<int>(rng() % 40) - 20);
    rows.push_back({null_name ? null : value{name}, null_time ? null : value{timestamp{t}}, null_x ? null : value{x}, y});
    if (null_time) continue;
    const std::int64_t last_start = t - (((t - offset) % slide) + slide) % slide;
    for (std::int64_t start = last_start - length + slide; start <= last_start; start += slide) {
      sums& g = expected[{null_name ? "<null>" : name, start}];
      if (!null_x) {
        g.x += x;
        ++g.x_count;
      }
      g.y += y;
      ++g.rows;
    }
  }
  const auto input = make_batch(s, rows);
  aggregate_operator op(s, {col("name"), window(col("t"), "1 hour", "15 minutes", "5 minutes")},
                        {sum_of(col("x")), sum_of(col("y")), {agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  for (std::size_t from : {0, 1000, 1100}) {  // [1000, 1100) has null event times: the general path
    const std::size_t to = from == 0 ? 1000 : from == 1000 ? 1100 : input.num_rows();
    state->update(input.slice(from, to - from));
  }
  rows_t want;
  for (const auto& [key, g] : expected) {
    want.push_back({key.first == "<null>" ? null : value{key.first}, window_value{timestamp{key.second}, timestamp{key.second + length}},
                    g.x_count ? value{g.x} : null, g.y, g.rows});
  }
  CHECK(state->num_groups() == expected.size());
  CHECK(sorted_rows(state->emit(output_mode::complete)) == sorted_rows(make_batch(op.output_schema(), want)));

  // A watermark that closes a row's first window sends the batch down the general path: late rows are counted.
  auto late = op.make_state();
  CHECK(late->update(input.slice(0, 1000), timestamp{-3 * hour + length}) > 0);
  CHECK(op.make_state()->update(input.slice(0, 1000), timestamp{-4 * hour}) == 0);
}

TEST_CASE("aggregate: groups_since gives the groups added since the table held a given number", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("Country")}, {{agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  auto b = sales();
  state->update(b.slice(0, 2));  // UK
  CHECK(state->groups_since(1).num_rows() == 0);
  state->update(b.slice(0, 4));  // UK again, FR, null: two new groups
  CHECK(sorted_rows(state->groups_since(1)) == rows_t{{null, std::int64_t{1}}, {std::string("FR"), std::int64_t{1}}});
  CHECK(sorted_rows(state->groups_since(0)) == sorted_rows(state->snapshot()));
}

TEST_CASE("aggregate: update mode emits only changed groups, append emits closed windows once", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("CustomerID"), window(col("InvoiceDate"), "1 hour")},
                        {{agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  auto b = sales();
  state->update(b.slice(0, 2));  // 17850 @ 08:00
  CHECK(state->changed_since_emit().num_rows() == 1);
  CHECK(state->emit(output_mode::update).num_rows() == 1);
  CHECK(state->emit(output_mode::update).num_rows() == 0);
  state->update(b.slice(2, 4));
  auto changed = sorted_rows(state->emit(output_mode::update));
  CHECK(changed.size() == 4);
  CHECK(state->emit(output_mode::complete).num_rows() == 5);

  state->update(b.slice(0, 1));
  auto closed = sorted_rows(state->emit(output_mode::append, ts("2010-12-01 09:00:00")));
  CHECK(closed == rows_t{{null, win("2010-12-01 08:00:00", "2010-12-01 09:00:00"), std::int64_t{1}},
                         {17850.0, win("2010-12-01 08:00:00", "2010-12-01 09:00:00"), std::int64_t{3}}});
  CHECK(state->num_groups() == 3);
  CHECK(state->emit(output_mode::append, ts("2010-12-01 09:00:00")).num_rows() == 0);
  CHECK(state->emit(output_mode::update).num_rows() == 0);

  aggregate_operator no_window(sales_schema(), {col("CustomerID")}, {{agg_kind::count, expr{}, {}}});
  CHECK_THROWS_WITH(no_window.make_state()->emit(output_mode::append, ts("2011-01-01 00:00:00")),
                    Catch::Contains("append output mode needs a window"));
}

TEST_CASE("aggregate: evict_groups drops windows ending at or before the watermark", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("CustomerID"), window(col("InvoiceDate"), "1 hour")},
                        {sum_of(col("Quantity"))});
  auto state = op.make_state();
  state->update(sales());
  REQUIRE(state->num_groups() == 5);
  CHECK(state->evict_groups(ts("2010-12-01 08:59:59")).num_rows() == 0);
  CHECK(state->evict_groups(ts("2010-12-01 09:00:00")).num_rows() == 2);
  CHECK(state->num_groups() == 3);
  // The table still works after compaction: same keys fold into the surviving groups.
  state->update(sales());
  CHECK(state->num_groups() == 5);
  auto rows = sorted_rows(state->emit(output_mode::complete));
  CHECK(rows[2] == std::vector<value>{13047.0, win("2010-12-01 09:00:00", "2010-12-01 10:00:00"), std::int64_t{-2}});
  CHECK(state->evict_groups(ts("2011-01-01 00:00:00")).num_rows() == 5);
  CHECK(state->num_groups() == 0);
}

TEST_CASE("aggregate: merging partial aggregates equals aggregating everything at once", "[aggregate]") {
  auto s = make_schema({{"k", type_id::int64, true}, {"name", type_id::string, true}, {"t", type_id::timestamp, false},
                        {"x", type_id::int64, true}});
  std::mt19937_64 rng(42);
  rows_t rows;
  for (int i = 0; i < 3000; ++i) {
    value k = rng() % 10 == 0 ? null : value{static_cast<std::int64_t>(rng() % 50)};
    value name = rng() % 7 == 0 ? null : value{std::string(1, static_cast<char>('a' + rng() % 5))};
    value x = rng() % 5 == 0 ? null : value{static_cast<std::int64_t>(rng() % 1000) - 500};
    rows.push_back({k, name, timestamp{static_cast<std::int64_t>(rng() % 7200) * 1000000}, x});
  }
  auto input = make_batch(s, rows);
  std::vector<agg_spec> aggs{sum_of(col("x")), {agg_kind::count, expr{}, {}}, {agg_kind::count, col("x"), {}},
                             {agg_kind::min, col("name"), {}}, {agg_kind::max, col("x"), {}},
                             {agg_kind::avg, col("x"), {}}};
  for (auto keys : {std::vector<expr>{col("k"), window(col("t"), "20 minutes", "5 minutes")},
                    std::vector<expr>{col("name"), col("k")}}) {
    aggregate_operator op(s, keys, aggs);
    auto direct = op.make_state();
    direct->update(input);
    auto merged = op.make_state();
    for (std::size_t offset = 0; offset < input.num_rows(); offset += 700) {
      auto partial = op.make_state();
      partial->update(input.slice(offset, std::min<std::size_t>(700, input.num_rows() - offset)));
      merged->merge(partial->snapshot());
    }
    CHECK(merged->num_groups() == direct->num_groups());
    CHECK(sorted_rows(merged->emit(output_mode::complete)) == sorted_rows(direct->emit(output_mode::complete)));
    CHECK(sorted_rows(merged->snapshot()) == sorted_rows(direct->snapshot()));

    // Partitioning: every key lands in exactly one part, the same one every time.
    auto snapshot = direct->snapshot();
    auto parts = op.partition(snapshot, 4);
    REQUIRE(parts.size() == 4);
    std::size_t total = 0;
    std::map<std::vector<value>, std::size_t> part_of;
    for (std::size_t p = 0; p < parts.size(); ++p) {
      total += parts[p].num_rows();
      for (auto& row : sorted_rows(parts[p])) part_of[{row.begin(), row.begin() + 2}] = p;
    }
    CHECK(total == snapshot.num_rows());
    CHECK(part_of.size() == snapshot.num_rows());
    auto partial = op.make_state();
    partial->update(input.slice(0, 500));
    auto again = op.partition(partial->snapshot(), 4);
    for (std::size_t p = 0; p < again.size(); ++p) {
      for (auto& row : sorted_rows(again[p])) CHECK(part_of.at({row.begin(), row.begin() + 2}) == p);
    }
    CHECK(parts[0].num_rows() < snapshot.num_rows());  // the hash actually spreads keys
  }
}

TEST_CASE("aggregate: snapshot, restore, snapshot round trip", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("Country"), window(col("InvoiceDate"), "1 hour")},
                        {sum_of(col("UnitPrice")), {agg_kind::min, col("Quantity"), {}}, {agg_kind::avg, col("Quantity"), {}}});
  auto state = op.make_state();
  state->update(sales());
  auto snapshot = state->snapshot();
  CHECK(snapshot.schema() == *op.state_schema());
  auto restored = op.make_state();
  restored->update(sales());  // replaced by restore
  restored->restore(snapshot);
  CHECK(restored->num_groups() == state->num_groups());
  CHECK(sorted_rows(restored->snapshot()) == sorted_rows(snapshot));
  CHECK(restored->changed_since_emit().num_rows() == 0);
  CHECK(sorted_rows(restored->emit(output_mode::complete)) == sorted_rows(state->emit(output_mode::complete)));
  CHECK(restored->memory_bytes() > 0);
  restored->clear();
  CHECK(restored->num_groups() == 0);
  CHECK(restored->snapshot().num_rows() == 0);
}

TEST_CASE("aggregate: update mode keeps rows aligned when every group changed in another order", "[aggregate]") {
  auto input = make_schema({{"k", type_id::string, true}, {"v", type_id::int64, true}});
  aggregate_operator op(input, {col("k")}, {sum_of(col("v")), {agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  state->update(make_batch(input, {{std::string("a"), std::int64_t{1}}, {std::string("b"), std::int64_t{10}}}));
  state->emit(output_mode::update);
  // Both groups change again, b first: the changed list is every group, not in group order.
  state->update(make_batch(input, {{std::string("b"), std::int64_t{20}}, {std::string("b"), std::int64_t{5}},
                                   {std::string("a"), std::int64_t{2}}}));
  const rows_t expected{{std::string("a"), std::int64_t{3}, std::int64_t{2}},
                        {std::string("b"), std::int64_t{35}, std::int64_t{3}}};
  auto changed = op.make_state();
  changed->restore(state->changed_since_emit());
  CHECK(sorted_rows(changed->emit(output_mode::complete)) == expected);
  CHECK(sorted_rows(state->emit(output_mode::update)) == expected);
}

TEST_CASE("aggregate: replace_groups applies each epoch's changed groups to a copy of the table", "[aggregate]") {
  aggregate_operator op(sales_schema(), {col("Country")},
                        {sum_of(col("UnitPrice")), sum_of(col("Quantity")), {agg_kind::count, expr{}, {}},
                         {agg_kind::min, col("Quantity"), {}}, {agg_kind::max, col("UnitPrice"), {}},
                         {agg_kind::min, col("Country"), {}}, {agg_kind::avg, col("Quantity"), {}}});
  auto live = op.make_state();
  auto copy = op.make_state();
  const auto all = sales();
  // Epochs of one row each, so groups change again and again, and a new group appears late.
  for (std::size_t r = 0; r < all.num_rows(); ++r) {
    live->update(all.slice(r, 1));
    copy->replace_groups(live->changed_since_emit());
    live->emit(output_mode::update);
    CHECK(sorted_rows(copy->snapshot()) == sorted_rows(live->snapshot()));
  }
  CHECK(copy->num_groups() == 3);
  copy->replace_groups(live->changed_since_emit());  // nothing changed: nothing to do
  CHECK(sorted_rows(copy->snapshot()) == sorted_rows(live->snapshot()));
  CHECK_THROWS_WITH(copy->replace_groups(all), Catch::Contains("replace_groups"));
}

TEST_CASE("aggregate: bad plans and bad batches are clear errors", "[aggregate]") {
  CHECK_THROWS_WITH(aggregate_operator(sales_schema(), {col("CustomerID")}, {sum_of(col("Country"))}),
                    Catch::Contains("sum needs a numeric") && Catch::Contains("'Country' is string"));
  CHECK_THROWS_WITH(aggregate_operator(sales_schema(), {col("Customer")}, {{agg_kind::count, expr{}, {}}}),
                    Catch::Contains("cannot resolve column 'Customer'"));
  CHECK_THROWS_WITH(aggregate_operator(sales_schema(), {col("CustomerID")}, {{agg_kind::sum, expr{}, {}}}),
                    Catch::Contains("only count accepts *"));
  CHECK_THROWS_WITH(aggregate_operator(sales_schema(),
                                       {window(col("InvoiceDate"), "1 hour"), window(col("InvoiceDate"), "1 day")},
                                       {{agg_kind::count, expr{}, {}}}),
                    Catch::Contains("only one window"));
  aggregate_operator op(sales_schema(), {col("CustomerID")}, {{agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  auto wrong = make_batch(make_schema({{"CustomerID", type_id::string, true}}), {{std::string("x")}});
  CHECK_THROWS_WITH(state->update(wrong), Catch::Contains("the aggregation expects"));
  CHECK_THROWS_WITH(state->merge(sales()), Catch::Contains("the aggregation expects"));
  CHECK_THROWS_AS(op.partition(sales(), 2), error);
  CHECK_THROWS_AS(op.partition(state->snapshot(), 0), error);
}

TEST_CASE("aggregate: retail 2010-12-01 matches the expected result", "[aggregate][data]") {
  const auto csv_path = test::shared_data_dir() / "retail-by-day" / "2010-12-01.csv";
  auto text = std::make_shared<const std::string>(test::read_file(csv_path));
  auto input_schema = make_schema({{"InvoiceNo", type_id::string, true},
                                   {"StockCode", type_id::string, true},
                                   {"Description", type_id::string, true},
                                   {"Quantity", type_id::int64, true},
                                   {"InvoiceDate", type_id::timestamp, true},
                                   {"UnitPrice", type_id::float64, true},
                                   {"CustomerID", type_id::float64, true},
                                   {"Country", type_id::string, true}});
  options opts;
  opts.set("header", "true");
  opts.set("mode", "FAILFAST");
  auto decoder = make_decoder("csv", opts, input_schema);
  decode_stats stats;
  raw_chunk chunk{text, 0, text->size(), csv_path.string(), 1};
  auto decoded = decoder->decode(chunk, stats);
  REQUIRE(decoded.num_rows() == 3108);

  project_operator select(*input_schema, {col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"),
                                          col("InvoiceDate")});
  aggregate_operator op(select.output_schema(), {col("CustomerID"), window(col("InvoiceDate"), "1 hour")},
                        {sum_of(col("total_cost")), {agg_kind::count, expr{}, {}}});
  auto state = op.make_state();
  for (std::size_t offset = 0; offset < decoded.num_rows(); offset += 1000) {
    state->update(select.apply(decoded.slice(offset, std::min<std::size_t>(1000, decoded.num_rows() - offset))));
  }
  auto result = state->emit(output_mode::complete);
  REQUIRE(result.num_rows() == 106);

  std::map<std::pair<std::string, std::string>, std::pair<double, std::int64_t>> expected;
  std::istringstream lines(test::read_file(test::shared_data_dir() / "expected" / "result_2010-12-01.csv"));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string part; std::getline(ss, part, ',');) f.push_back(part);
    REQUIRE(f.size() == 6);
    expected[{f[0], f[1]}] = {std::stod(f[3]), std::stoll(f[5])};
  }
  REQUIRE(expected.size() == 106);
  for (std::size_t r = 0; r < result.num_rows(); ++r) {
    auto customer = result.at(r, 0);
    std::string id;
    if (!is_null(customer)) {
      std::ostringstream os;
      os.precision(1);
      os << std::fixed << std::get<double>(customer);
      id = os.str();
    }
    auto w = std::get<window_value>(result.at(r, 1));
    auto it = expected.find({id, format_timestamp(w.start)});
    REQUIRE(it != expected.end());
    CHECK(w.end.micros - w.start.micros == 3600LL * 1000000);
    CHECK(std::round(std::get<double>(result.at(r, 2)) * 100) == std::round(it->second.first * 100));
    CHECK(std::get<std::int64_t>(result.at(r, 3)) == it->second.second);
  }
}

TEST_CASE("aggregate: min/max order NaN above every number, whatever the row order", "[aggregate][nan]") {
  // Spark: max is NaN when any input is NaN; min ignores NaN unless every input is NaN.
  const double nan = std::nan("");
  const double inf = std::numeric_limits<double>::infinity();
  auto s = make_schema({{"k", type_id::string, true}, {"x", type_id::float64, true}});
  aggregate_operator op(s, {col("k")}, {{agg_kind::min, col("x"), {}}, {agg_kind::max, col("x"), {}}});
  const rows_t rows{{std::string("a"), nan},  {std::string("a"), 2.0},  {std::string("b"), nan},
                    {std::string("b"), nan},  {std::string("c"), -inf}, {std::string("c"), nan},
                    {std::string("c"), inf},  {std::string("c"), null}, {std::string("d"), 1.0}};
  // Group -> {min, max}; NaN compared through its text, since NaN != NaN.
  const std::map<std::string, std::pair<std::string, std::string>> expected{
      {"a", {"2.0", "NaN"}}, {"b", {"NaN", "NaN"}}, {"c", {"-Infinity", "NaN"}}, {"d", {"1.0", "1.0"}}};
  auto results_of = [](const batch& b) {
    std::map<std::string, std::pair<std::string, std::string>> out;
    for (std::size_t r = 0; r < b.num_rows(); ++r) {
      out[std::get<std::string>(b.at(r, 0))] = {to_string(b.at(r, 1)), to_string(b.at(r, 2))};
    }
    return out;
  };
  const rows_t reversed(rows.rbegin(), rows.rend());
  for (const rows_t* order : std::vector<const rows_t*>{&rows, &reversed}) {
    auto input = make_batch(s, *order);
    auto direct = op.make_state();
    direct->update(input);
    CHECK(results_of(direct->emit(output_mode::complete)) == expected);

    // One row per partial aggregate, merged in this order (stage combiners into the final aggregate).
    auto merged = op.make_state();
    for (std::size_t r = 0; r < input.num_rows(); ++r) {
      auto partial = op.make_state();
      partial->update(input.slice(r, 1));
      merged->merge(partial->snapshot());
    }
    CHECK(results_of(merged->emit(output_mode::complete)) == expected);

    // Restored from a snapshot of the first half, then fed the second half.
    const std::size_t half = input.num_rows() / 2;
    auto first = op.make_state();
    first->update(input.slice(0, half));
    auto restored = op.make_state();
    restored->restore(first->snapshot());
    restored->update(input.slice(half, input.num_rows() - half));
    CHECK(results_of(restored->emit(output_mode::complete)) == expected);
  }
}

TEST_CASE("aggregate: a -0.0 grouping key is normalized to 0.0, as Spark does", "[aggregate][nan]") {
  auto s = make_schema({{"x", type_id::float64, true}, {"name", type_id::string, true}});
  auto input = make_batch(s, {{-0.0, std::string("a")}, {0.0, std::string("b")}, {-0.0, std::string("c")}});
  // Fixed-width (one double key) and generic (with a string key) tables.
  for (auto keys : {std::vector<expr>{col("x")}, std::vector<expr>{col("x"), lit("all")}}) {
    aggregate_operator op(s, keys, {{agg_kind::count, expr{}, {}}});
    auto state = op.make_state();
    state->update(input);
    auto result = state->emit(output_mode::complete);
    REQUIRE(result.num_rows() == 1);
    CHECK(to_string(result.at(0, 0)) == "0.0");
    CHECK(std::get<std::int64_t>(result.at(0, keys.size())) == 3);
  }
}

TEST_CASE("aggregate: update leaves out windows the watermark closed and counts rows left with none",
          "[aggregate][watermark]") {
  // sales(): 08:26, 08:50, 08:10, 09:10, 09:59:59, 09:00.
  aggregate_operator tumbling(sales_schema(), {window(col("InvoiceDate"), "1 hour")}, {{agg_kind::count, expr{}, {}}});
  auto state = tumbling.make_state();
  CHECK(state->update(sales(), ts("2010-12-01 09:00:00")) == 3);  // the 08:00-09:00 window is closed
  auto rows = sorted_rows(state->emit(output_mode::complete));
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == std::vector<value>{win("2010-12-01 09:00:00", "2010-12-01 10:00:00"), std::int64_t{3}});

  // Sliding 1 hour every 30 minutes: 08:50 is in [08:00, 09:00) and [08:30, 09:30); a watermark of 09:00
  // closes only the first, so the row still counts; 08:26 and 08:10 are in closed windows alone.
  aggregate_operator sliding(sales_schema(), {window(col("InvoiceDate"), "1 hour", "30 minutes")},
                             {{agg_kind::count, expr{}, {}}});
  auto slid = sliding.make_state();
  CHECK(slid->update(sales(), ts("2010-12-01 09:00:00")) == 2);
  std::map<std::string, std::int64_t> counts;
  const auto out = slid->emit(output_mode::complete);
  for (std::size_t i = 0; i < out.num_rows(); ++i)
    counts[format_timestamp(out.col(0).window(i).start)] = out.col(1).ints()[i];
  CHECK(counts == std::map<std::string, std::int64_t>{{"2010-12-01 08:30:00", 3}, {"2010-12-01 09:00:00", 3},
                                                      {"2010-12-01 09:30:00", 1}});
  CHECK(sliding.make_state()->update(sales()) == 0);  // without a watermark nothing is late
}

TEST_CASE("aggregation: keys of a small domain per batch find the same groups as keys hashed row by row", "[aggregate]") {
  // Batches whose (window, id, shard) keys span a domain far smaller than their rows take the dense lookup
  // (ids -40..39, before and after 1970, windows offset by 3 s), the others the hashed one; both meet the
  // same groups in one table.
  const schema_ptr schema = make_schema({{"id", type_id::int64, false}, {"time", type_id::timestamp, false}, {"shard", type_id::int64, false}});
  const aggregate_operator op(schema, {window(col("time"), "10 seconds", "", "3 seconds"), col("id"), col("shard")},
                              {{agg_kind::count, {}, ""}, {agg_kind::sum, col("id"), ""}});
  auto state = op.make_state();
  std::mt19937_64 random(7);
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, std::pair<std::int64_t, std::int64_t>> expected;
  auto feed = [&](std::size_t rows, std::int64_t first_time, std::int64_t time_spread, std::int64_t ids) {
    std::vector<std::vector<value>> values;
    for (std::size_t i = 0; i < rows; ++i) {
      const auto id = static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(ids)) - ids / 2;
      const std::int64_t time = first_time + static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(time_spread));
      const std::int64_t shard = id % 3 == 0 ? 1'000'000 : 1'000'001;
      values.push_back({value{id}, value{timestamp{time}}, value{shard}});
      // The window's start: 3 s past a multiple of 10 s, at or before the time.
      const std::int64_t past = ((time - 3'000'000) % 10'000'000 + 10'000'000) % 10'000'000;
      auto& [count, sum] = expected[{time - past, id, shard}];
      ++count;
      sum += id;
    }
    state->update(make_batch(schema, values));
  };
  feed(4000, -25'000'000, 30'000'000, 80);        // 3-4 windows x 80 ids x 2 shards <= 1,000 entries: dense
  feed(4000, 40'000'000, 5'000'000, 80);          // one or two windows: dense
  feed(4000, -1'000'000'000, 2'000'000'000, 80);  // 200 windows: hashed
  feed(3, 0, 10'000'000, 80);                     // fewer rows than a dense array would need: hashed
  feed(4000, -25'000'000, 30'000'000, 80);        // dense again, over the groups the hashed batches added
  const batch out = state->emit(output_mode::complete);
  REQUIRE(out.num_rows() == expected.size());
  for (std::size_t r = 0; r < out.num_rows(); ++r) {
    const auto w = out.col(0).window(r);
    CHECK(w.end.micros - w.start.micros == 10'000'000);
    const auto& [count, sum] = expected.at({w.start.micros, out.col(1).ints()[r], out.col(2).ints()[r]});
    CHECK(out.col(3).ints()[r] == count);
    CHECK(out.col(4).ints()[r] == sum);
  }
}
