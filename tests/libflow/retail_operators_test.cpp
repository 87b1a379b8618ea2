// The custom_topology example's keyed operators over a real retail file, against a computation written here.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "../../examples/custom_topology/retail_operators.hpp"
#include "collecting_context.hpp"
#include "flow/formats.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;

namespace {

schema_ptr retail_schema() {
  return make_schema({{"InvoiceNo", type_id::string, true},
                      {"StockCode", type_id::string, true},
                      {"Description", type_id::string, true},
                      {"Quantity", type_id::int64, true},
                      {"InvoiceDate", type_id::timestamp, true},
                      {"UnitPrice", type_id::float64, true},
                      {"CustomerID", type_id::float64, true},
                      {"Country", type_id::string, true}});
}

batch retail_day(const std::string& day) {
  const auto path = test::shared_data_dir() / "retail-by-day" / (day + ".csv");
  auto text = std::make_shared<const std::string>(test::read_file(path));
  options opts;
  opts.set("header", "true");
  opts.set("mode", "FAILFAST");
  decode_stats stats;
  return make_decoder("csv", opts, retail_schema())->decode(raw_chunk{text, 0, text->size(), path.string(), 1}, stats);
}

// Runs op as `instances` instances over the rows split into `epochs` epochs (each epoch's rows in batches of
// 500, hash-partitioned by the operator's key); restores every instance from its snapshot after the second
// epoch, as after a failure. Returns the last row emitted per key (update semantics) and checks that each
// epoch emitted exactly the keys its rows hold.
std::map<value, std::vector<value>> run(const stream_operator& op, const batch& rows, std::size_t instances,
                                        std::size_t epochs) {
  const std::size_t key_column = rows.schema().index_of(op.key_columns().at(0));
  std::vector<std::unique_ptr<operator_state>> states;
  for (std::size_t i = 0; i < instances; ++i) states.push_back(op.make_state());
  std::map<value, std::vector<value>> latest;
  const std::size_t per_epoch = (rows.num_rows() + epochs - 1) / epochs;
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    const std::size_t begin = epoch * per_epoch, end = std::min(rows.num_rows(), begin + per_epoch);
    std::set<value> epoch_keys;
    std::vector<collecting_context> contexts;
    for (std::size_t i = 0; i < instances; ++i) contexts.emplace_back(static_cast<std::int64_t>(epoch), i, instances);
    for (std::size_t offset = begin; offset < end; offset += 500) {
      const batch slice = rows.slice(offset, std::min<std::size_t>(500, end - offset));
      for (std::size_t r = 0; r < slice.num_rows(); ++r) epoch_keys.insert(slice.at(r, key_column));
      const auto parts = hash_partition(slice, {key_column}, instances);
      for (std::size_t i = 0; i < instances; ++i) op.process(parts[i], 0, states[i].get(), contexts[i]);
    }
    std::set<value> emitted_keys;
    for (std::size_t i = 0; i < instances; ++i) {
      op.end_epoch(states[i].get(), contexts[i]);
      const batch out = contexts[i].take(op.output_schema());
      for (std::size_t r = 0; r < out.num_rows(); ++r) {
        std::vector<value> values;
        for (std::size_t c = 1; c < out.num_columns(); ++c) values.push_back(out.at(r, c));
        CHECK(emitted_keys.insert(out.at(r, 0)).second);  // a key lives in one instance only
        latest[out.at(r, 0)] = values;
      }
      states[i]->take_changes();
    }
    CHECK(emitted_keys == epoch_keys);
    if (epoch == 1) {
      for (auto& state : states) {
        auto restored = op.make_state();
        restored->restore(state->snapshot());
        CHECK(restored->snapshot() == state->snapshot());
        state = std::move(restored);
      }
    }
  }
  return latest;
}

}  // namespace

TEST_CASE("retail operators: country_revenue and stock_units match a direct computation", "[retail_operators][data]") {
  const batch rows = retail_day("2010-12-01");
  REQUIRE(rows.num_rows() == 3108);
  std::map<value, std::pair<double, std::set<std::string>>> countries;
  std::map<value, std::int64_t> units;
  for (std::size_t r = 0; r < rows.num_rows(); ++r) {
    auto& country = countries[rows.at(r, 7)];
    const value quantity = rows.at(r, 3), price = rows.at(r, 5), invoice = rows.at(r, 0);
    if (!is_null(quantity) && !is_null(price)) {
      country.first += std::get<double>(price) * static_cast<double>(std::get<std::int64_t>(quantity));
    }
    if (!is_null(invoice)) country.second.insert(std::get<std::string>(invoice));
    auto& code_units = units[rows.at(r, 1)];  // a row without a quantity still makes its code a key
    if (!is_null(quantity)) code_units += std::get<std::int64_t>(quantity);
  }
  REQUIRE(countries.size() > 1);
  const retail::country_revenue revenue_op(retail_schema());
  const retail::stock_units units_op(retail_schema());
  for (std::size_t instances : {1, 2, 4}) {
    INFO(instances << " instances");
    const auto revenue = run(revenue_op, rows, instances, 3);
    REQUIRE(revenue.size() == countries.size());
    for (const auto& [country, expected] : countries) {
      INFO(to_string(country));
      const auto& got = revenue.at(country);
      CHECK(std::get<double>(got[0]) == Approx(expected.first).epsilon(1e-12));
      CHECK(std::get<std::int64_t>(got[1]) == static_cast<std::int64_t>(expected.second.size()));
    }
    const auto stock = run(units_op, rows, instances, 3);
    REQUIRE(stock.size() == units.size());
    for (const auto& [code, expected] : units) CHECK(std::get<std::int64_t>(stock.at(code)[0]) == expected);
  }
}

TEST_CASE("retail operators: an input without the needed columns is a clear error", "[retail_operators]") {
  auto wrong = make_schema({{"StockCode", type_id::string, true}, {"Country", type_id::string, true},
                            {"Quantity", type_id::float64, true}});
  CHECK_THAT(test::error_of([&] { retail::stock_units{wrong}; }),
             Catch::Contains("stock_units needs column Quantity as int64, but it is float64"));
  CHECK_THAT(test::error_of([&] { retail::country_revenue{wrong}; }), Catch::Contains("InvoiceNo"));
}

TEST_CASE("retail operators: revenue is summed exactly in thousandths whatever the order", "[retail_operators]") {
  retail::country_totals forward, backward;
  const std::vector<std::pair<double, std::int64_t>> sales = {{0.001, 3}, {2.55, 2}, {1e6 + 0.123, 7}, {0.1, 10}, {0.29, -4}};
  for (auto [price, quantity] : sales) forward.add(price, quantity);
  for (auto it = sales.rbegin(); it != sales.rend(); ++it) backward.add(it->first, it->second);
  CHECK(forward.revenue_thousandths == 3 + 5100 + 7000000861 + 1000 - 1160);
  CHECK(forward.revenue_thousandths == backward.revenue_thousandths);
  CHECK(forward.rest == 0.0);
  retail::country_totals finer;
  finer.add(0.0001, 10);  // more than 3 decimals: kept as a double
  CHECK(finer.revenue_thousandths == 0);
  CHECK(finer.revenue() == Approx(0.001));
}
