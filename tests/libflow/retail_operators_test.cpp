// The custom_topology example's keyed operators over a real retail file, against a computation written here.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "../../examples/custom_topology/retail_operators.hpp"
#include "collecting_context.hpp"
#include "retail_day.hpp"
#include "flow/formats.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::retail_day;

namespace {

using retail::retail_schema;


using row_key = std::vector<value>;

row_key key_of(const batch& rows, const std::vector<std::size_t>& columns, std::size_t row) {
  row_key key;
  for (auto c : columns) key.push_back(rows.at(row, c));
  return key;
}

std::vector<std::size_t> indexes(const schema& s, const std::vector<std::string>& names) {
  std::vector<std::size_t> out;
  for (const auto& name : names) out.push_back(s.index_of(name));
  return out;
}

// Runs the chain of keyed operators, each as `instances` instances, over the rows split into `epochs`
// epochs (each epoch's rows in batches of 500, hash-partitioned by the first operator's keys; each operator's
// output by the next one's); restores every instance from its snapshot after the second epoch, as after a
// failure. Returns the last row the last operator emitted per key (update semantics) and checks that each
// operator emitted each key at most once per epoch (a key lives in one instance only), and the first one
// exactly the keys the epoch's rows hold.
std::map<row_key, std::vector<value>> run(const std::vector<const stream_operator*>& chain, const batch& rows,
                                          std::size_t instances, std::size_t epochs) {
  std::vector<std::vector<std::unique_ptr<operator_state>>> states(chain.size());
  for (std::size_t k = 0; k < chain.size(); ++k)
    for (std::size_t i = 0; i < instances; ++i) states[k].push_back(chain[k]->make_state());
  std::map<row_key, std::vector<value>> latest;
  const std::size_t per_epoch = (rows.num_rows() + epochs - 1) / epochs;
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    const std::size_t begin = epoch * per_epoch, end = std::min(rows.num_rows(), begin + per_epoch);
    std::vector<batch> input;
    for (std::size_t offset = begin; offset < end; offset += 500)
      input.push_back(rows.slice(offset, std::min<std::size_t>(500, end - offset)));
    for (std::size_t k = 0; k < chain.size(); ++k) {
      const auto& op = *chain[k];
      const std::size_t key_count = op.key_columns().size();
      std::set<row_key> epoch_keys;
      std::vector<collecting_context> contexts;
      for (std::size_t i = 0; i < instances; ++i) contexts.emplace_back(static_cast<std::int64_t>(epoch), i, instances);
      for (const auto& part_input : input) {
        const auto keys = indexes(part_input.schema(), op.key_columns());
        for (std::size_t r = 0; r < part_input.num_rows(); ++r) epoch_keys.insert(key_of(part_input, keys, r));
        const auto parts = hash_partition(part_input, keys, instances);
        for (std::size_t i = 0; i < instances; ++i) op.process(parts[i], 0, states[k][i].get(), contexts[i]);
      }
      std::set<row_key> emitted_keys;
      std::vector<batch> output;
      std::vector<std::size_t> out_keys(key_count);
      for (std::size_t c = 0; c < key_count; ++c) out_keys[c] = c;
      for (std::size_t i = 0; i < instances; ++i) {
        op.end_epoch(states[k][i].get(), contexts[i]);
        const batch out = contexts[i].take(op.output_schema());
        for (std::size_t r = 0; r < out.num_rows(); ++r) {
          CHECK(emitted_keys.insert(key_of(out, out_keys, r)).second);
          if (k + 1 == chain.size()) {
            std::vector<value> values;
            for (std::size_t c = key_count; c < out.num_columns(); ++c) values.push_back(out.at(r, c));
            latest[key_of(out, out_keys, r)] = values;
          }
        }
        if (out.num_rows() > 0) output.push_back(out);
        states[k][i]->take_changes();
      }
      if (k == 0) CHECK(emitted_keys == epoch_keys);
      input = std::move(output);
    }
    if (epoch == 1) {
      for (std::size_t k = 0; k < chain.size(); ++k)
        for (auto& state : states[k]) {
          auto restored = chain[k]->make_state();
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
  const retail::invoice_revenue invoice_op(retail_schema());
  const retail::country_revenue revenue_op(invoice_op.output_schema());
  const retail::stock_units units_op(retail_schema());
  for (std::size_t instances : {1, 2, 4}) {
    INFO(instances << " instances");
    const auto revenue = run({&invoice_op, &revenue_op}, rows, instances, 3);
    REQUIRE(revenue.size() == countries.size());
    for (const auto& [country, expected] : countries) {
      INFO(to_string(country));
      const auto& got = revenue.at(row_key{country});
      CHECK(std::get<double>(got[0]) == Approx(expected.first).epsilon(1e-12));
      CHECK(std::get<std::int64_t>(got[1]) == static_cast<std::int64_t>(expected.second.size()));
    }
    const auto stock = run({&units_op}, rows, instances, 3);
    REQUIRE(stock.size() == units.size());
    for (const auto& [code, expected] : units) CHECK(std::get<std::int64_t>(stock.at(row_key{code})[0]) == expected);
  }
}

TEST_CASE("retail operators: an input without the needed columns is a clear error", "[retail_operators]") {
  auto wrong = make_schema({{"StockCode", type_id::string, true}, {"Country", type_id::string, true},
                            {"Quantity", type_id::float64, true}});
  CHECK_THAT(test::error_of([&] { retail::stock_units{wrong}; }),
             Catch::Contains("stock_units needs column Quantity as int64, but it is float64"));
  CHECK_THAT(test::error_of([&] { retail::invoice_revenue{wrong}; }), Catch::Contains("InvoiceNo"));
  CHECK_THAT(test::error_of([&] { retail::country_revenue{wrong}; }), Catch::Contains("revenue_thousandths"));
}

TEST_CASE("retail operators: revenue is summed exactly in thousandths whatever the order", "[retail_operators]") {
  retail::money forward, backward;
  const std::vector<std::pair<double, std::int64_t>> sales = {{0.001, 3}, {2.55, 2}, {1e6 + 0.123, 7}, {0.1, 10}, {0.29, -4}};
  for (auto [price, quantity] : sales) forward.add(price, quantity);
  for (auto it = sales.rbegin(); it != sales.rend(); ++it) backward.add(it->first, it->second);
  CHECK(forward.thousandths == 3 + 5100 + 7000000861 + 1000 - 1160);
  CHECK(forward.thousandths == backward.thousandths);
  CHECK(forward.rest == 0.0);
  retail::money finer;
  finer.add(0.0001, 10);  // more than 3 decimals: kept as a double
  CHECK(finer.thousandths == 0);
  CHECK(finer.value() == Approx(0.001));
}
