// The keyed operators of the custom_topology example, written as a user writes operators: against
// flow/keyed_operator.hpp alone. Each keeps one value per key and emits, at the end of each epoch, the keys
// the epoch changed (country_revenue and stock_units: with their values so far, update semantics;
// invoice_revenue: with what the epoch added, for country_revenue to sum).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flow/keyed_operator.hpp"

namespace retail {

// The columns of the retail CSV files.
inline flow::schema_ptr retail_schema() {
  using flow::type_id;
  return flow::make_schema({{"InvoiceNo", type_id::string, true},
                            {"StockCode", type_id::string, true},
                            {"Description", type_id::string, true},
                            {"Quantity", type_id::int64, true},
                            {"InvoiceDate", type_id::timestamp, true},
                            {"UnitPrice", type_id::float64, true},
                            {"CustomerID", type_id::float64, true},
                            {"Country", type_id::string, true}});
}

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

// Money summed exactly, in thousandths (every price of the data set has at most 3 decimals), so that a sum
// does not depend on the order rows arrive in, which changes with the parallelism; a product with more
// decimals goes to `rest` as a double.
struct money {
  std::int64_t thousandths = 0;
  double rest = 0.0;
  double value() const { return static_cast<double>(thousandths) / 1000.0 + rest; }
  void add(double price, std::int64_t quantity) {
    const double scaled = price * 1000.0;
    const double whole = std::nearbyint(scaled);
    if (std::abs(scaled - whole) < 1e-6 && std::abs(whole) < 9e15) {
      thousandths += static_cast<std::int64_t>(whole) * quantity;
    } else {
      rest += price * static_cast<double>(quantity);
    }
  }
};

// Per (Country, InvoiceNo): what the invoice's rows of this epoch add to its country's revenue, and whether
// the invoice is new. The country's distinct invoices are counted by counting new (Country, InvoiceNo) keys,
// so no operator keeps a set that grows with the data (and would be snapshotted whole after every epoch).
struct invoice_totals {
  money added;                     // by the rows of epoch `added_in`
  std::int64_t added_in = -1;
  std::int64_t first_seen_in = -1; // the epoch of the invoice's first row
  bool has_invoice = false;        // InvoiceNo is not null
};

// Emits per (Country, InvoiceNo) the epoch changed: revenue_thousandths, revenue_rest (what the epoch adds)
// and new_invoices (1 when the epoch saw the invoice first, else 0).
class invoice_revenue final : public flow::keyed_operator<invoice_totals> {
 public:
  explicit invoice_revenue(const flow::schema_ptr& input)
      : keyed_operator({.name = "invoice_revenue",
                        .input = input,
                        .keys = {"Country", "InvoiceNo"},
                        .output = {{"revenue_thousandths", flow::type_id::int64},
                                   {"revenue_rest", flow::type_id::float64},
                                   {"new_invoices", flow::type_id::int64}},
                        .state = {{"added_thousandths", flow::type_id::int64},
                                  {"added_rest", flow::type_id::float64},
                                  {"added_in", flow::type_id::int64},
                                  {"first_seen_in", flow::type_id::int64},
                                  {"has_invoice", flow::type_id::boolean}}}),
        invoice_(input_column(*input, "InvoiceNo", flow::type_id::string, "invoice_revenue")),
        quantity_(input_column(*input, "Quantity", flow::type_id::int64, "invoice_revenue")),
        price_(input_column(*input, "UnitPrice", flow::type_id::float64, "invoice_revenue")) {}

  void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<invoice_totals>& state,
               flow::operator_context& ctx) const override {
    const flow::column& invoice = rows.col(invoice_);
    const flow::column& quantity = rows.col(quantity_);
    const flow::column& price = rows.col(price_);
    const std::int64_t epoch = ctx.epoch();
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      invoice_totals& totals = state.get(keys[i]);
      if (totals.first_seen_in < 0) {
        totals.first_seen_in = epoch;
        totals.has_invoice = invoice.valid(i);
      }
      if (totals.added_in != epoch) {
        totals.added = money{};
        totals.added_in = epoch;
      }
      if (quantity.valid(i) && price.valid(i)) totals.added.add(price.doubles()[i], quantity.ints()[i]);
    }
  }
  void end_epoch(flow::keyed_state<invoice_totals>& state, flow::operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](flow::key_ref key, const invoice_totals& totals) {
      const bool is_new = totals.first_seen_in == ctx.epoch() && totals.has_invoice;
      out.add(key).add(totals.added.thousandths).add(totals.added.rest).add(std::int64_t{is_new ? 1 : 0});
    });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const invoice_totals& totals, flow::row_writer& out) const override {
    out.add(totals.added.thousandths).add(totals.added.rest).add(totals.added_in).add(totals.first_seen_in)
        .add(totals.has_invoice);
  }
  invoice_totals load(const flow::batch& saved, std::size_t row) const override {
    invoice_totals totals;
    totals.added.thousandths = saved.col(0).ints()[row];
    totals.added.rest = saved.col(1).doubles()[row];
    totals.added_in = saved.col(2).ints()[row];
    totals.first_seen_in = saved.col(3).ints()[row];
    totals.has_invoice = saved.col(4).bools()[row] != 0;
    return totals;
  }

 private:
  std::size_t invoice_, quantity_, price_;
};

struct country_totals {
  money revenue;
  std::int64_t invoices = 0;
};

// Per Country, over invoice_revenue's output: revenue = the sum of UnitPrice * Quantity (rows with either
// null add nothing) and invoices = the number of distinct non-null InvoiceNo.
class country_revenue final : public flow::keyed_operator<country_totals> {
 public:
  explicit country_revenue(const flow::schema_ptr& input)
      : keyed_operator({.name = "country_revenue",
                        .input = input,
                        .keys = {"Country"},
                        .output = {{"revenue", flow::type_id::float64}, {"invoices", flow::type_id::int64}},
                        .state = {{"revenue_thousandths", flow::type_id::int64},
                                  {"revenue_rest", flow::type_id::float64},
                                  {"invoices", flow::type_id::int64}}}),
        thousandths_(input_column(*input, "revenue_thousandths", flow::type_id::int64, "country_revenue")),
        rest_(input_column(*input, "revenue_rest", flow::type_id::float64, "country_revenue")),
        new_invoices_(input_column(*input, "new_invoices", flow::type_id::int64, "country_revenue")) {}

  void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<country_totals>& state,
               flow::operator_context&) const override {
    const std::int64_t* thousandths = rows.col(thousandths_).ints();
    const double* rest = rows.col(rest_).doubles();
    const std::int64_t* new_invoices = rows.col(new_invoices_).ints();
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      country_totals& totals = state.get(keys[i]);
      totals.revenue.thousandths += thousandths[i];
      totals.revenue.rest += rest[i];
      totals.invoices += new_invoices[i];
    }
  }
  void end_epoch(flow::keyed_state<country_totals>& state, flow::operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](flow::key_ref key, const country_totals& totals) {
      out.add(key).add(totals.revenue.value()).add(totals.invoices);
    });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const country_totals& totals, flow::row_writer& out) const override {
    out.add(totals.revenue.thousandths).add(totals.revenue.rest).add(totals.invoices);
  }
  country_totals load(const flow::batch& saved, std::size_t row) const override {
    country_totals totals;
    totals.revenue.thousandths = saved.col(0).ints()[row];
    totals.revenue.rest = saved.col(1).doubles()[row];
    totals.invoices = saved.col(2).ints()[row];
    return totals;
  }

 private:
  std::size_t thousandths_, rest_, new_invoices_;
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
