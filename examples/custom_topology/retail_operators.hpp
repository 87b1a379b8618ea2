// The two keyed operators of the custom_topology example, written as a user writes operators: against
// flow/keyed_operator.hpp alone. Each keeps one value per key and emits, at the end of each epoch, the keys
// the epoch changed with their values so far (update semantics: the key columns, then the values).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "flow/keyed_operator.hpp"

namespace retail {

// The index of column `name` of the input, which must have type `type`.
inline std::size_t input_column(const flow::schema& input, const std::string& name, flow::type_id type,
                                const std::string& op) {
  const std::size_t index = input.index_of(name);
  if (input[index].type != type) {
    throw flow::error(op + " needs column " + name + " as " + std::string(flow::type_name(type)) + ", but it is " +
                      std::string(flow::type_name(input[index].type)) + " in (" + input.to_string() + ")");
  }
  return index;
}

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Revenue is summed exactly, in thousandths (every price of the data set has at most 3 decimals), so the
// result does not depend on the order rows arrive in, which changes with the parallelism; a product with
// more decimals goes to `rest` as a double.
struct country_totals {
  std::int64_t revenue_thousandths = 0;
  double rest = 0.0;
  double revenue() const { return static_cast<double>(revenue_thousandths) / 1000.0 + rest; }
  void add(double price, std::int64_t quantity) {
    const double thousandths = price * 1000.0;
    const double whole = std::nearbyint(thousandths);
    if (std::abs(thousandths - whole) < 1e-6 && std::abs(whole) < 9e15) {
      revenue_thousandths += static_cast<std::int64_t>(whole) * quantity;
    } else {
      rest += price * static_cast<double>(quantity);
    }
  }
  std::unordered_set<std::string, string_hash, std::equal_to<>> invoices;  // distinct InvoiceNo
};

// Per Country: revenue = the sum of UnitPrice * Quantity (rows with either null add nothing) and invoices =
// the number of distinct non-null InvoiceNo. Its snapshot holds the invoice numbers (array<string>).
class country_revenue final : public flow::keyed_operator<country_totals> {
 public:
  explicit country_revenue(const flow::schema_ptr& input)
      : keyed_operator({.name = "country_revenue",
                        .input = input,
                        .keys = {"Country"},
                        .output = {{"revenue", flow::type_id::float64}, {"invoices", flow::type_id::int64}},
                        .state = {{"revenue_thousandths", flow::type_id::int64},
                                  {"revenue_rest", flow::type_id::float64},
                                  {"invoices", flow::type_id::string_list}}}),
        invoice_(input_column(*input, "InvoiceNo", flow::type_id::string, "country_revenue")),
        quantity_(input_column(*input, "Quantity", flow::type_id::int64, "country_revenue")),
        price_(input_column(*input, "UnitPrice", flow::type_id::float64, "country_revenue")) {}

  void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<country_totals>& state,
               flow::operator_context&) const override {
    const flow::column& invoice = rows.col(invoice_);
    const flow::column& quantity = rows.col(quantity_);
    const flow::column& price = rows.col(price_);
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      country_totals& totals = state.get(keys[i]);
      if (quantity.valid(i) && price.valid(i)) {
        totals.add(price.doubles()[i], quantity.ints()[i]);
      }
      if (invoice.valid(i) && !totals.invoices.contains(invoice.str(i))) totals.invoices.emplace(invoice.str(i));
    }
  }
  void end_epoch(flow::keyed_state<country_totals>& state, flow::operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](flow::key_ref key, const country_totals& totals) {
      out.add(key).add(totals.revenue()).add(totals.invoices.size());
    });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const country_totals& totals, flow::row_writer& out) const override {
    std::vector<std::string_view> invoices(totals.invoices.begin(), totals.invoices.end());
    std::sort(invoices.begin(), invoices.end());
    out.add(totals.revenue_thousandths).add(totals.rest).add_list(invoices);
  }
  country_totals load(const flow::batch& saved, std::size_t row) const override {
    country_totals totals;
    totals.revenue_thousandths = saved.col(0).ints()[row];
    totals.rest = saved.col(1).doubles()[row];
    const flow::column& invoices = saved.col(2);
    for (std::size_t j = 0; j < invoices.list_size(row); ++j) totals.invoices.emplace(invoices.list_item(row, j));
    return totals;
  }

 private:
  std::size_t invoice_, quantity_, price_;
};

// Per StockCode: units = the sum of Quantity (null quantities add nothing).
class stock_units final : public flow::keyed_operator<std::int64_t> {
 public:
  explicit stock_units(const flow::schema_ptr& input)
      : keyed_operator({.name = "stock_units",
                        .input = input,
                        .keys = {"StockCode"},
                        .output = {{"units", flow::type_id::int64}},
                        .state = {{"units", flow::type_id::int64}}}),
        quantity_(input_column(*input, "Quantity", flow::type_id::int64, "stock_units")) {}

  void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<std::int64_t>& state,
               flow::operator_context&) const override {
    const flow::column& quantity = rows.col(quantity_);
    const std::int64_t* q = quantity.ints();
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      std::int64_t& units = state.get(keys[i]);
      if (quantity.valid(i)) units += q[i];
    }
  }
  void end_epoch(flow::keyed_state<std::int64_t>& state, flow::operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](flow::key_ref key, const std::int64_t& units) { out.add(key).add(units); });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const std::int64_t& units, flow::row_writer& out) const override { out.add(units); }
  std::int64_t load(const flow::batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }

 private:
  std::size_t quantity_;
};

}  // namespace retail
