// Session windows over the retail invoices: per customer, the sessions of invoices no more than a gap
// (default 30 minutes) apart, with their length, number of invoices and spend. Rows without a CustomerID are
// skipped. The invoices are counted once each (distinct InvoiceNo) by a second read of the same files
// through drop_duplicates, unioned with the invoice lines.
#include <algorithm>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "example_support.hpp"
#include "flow/session.hpp"
#include "flow/session_window.hpp"

namespace {

const char* const usage =
    "usage: sessions --data DIR [--gap GAP] [--watermark DELAY] [--trigger T] --output OUT.csv\n"
    "  --data DIR         directory of daily retail CSV files\n"
    "  --gap GAP          the longest pause within a session (default \"30 minutes\")\n"
    "  --watermark DELAY  how late an invoice may arrive (default: none); sessions it closes leave the state\n"
    "  --trigger T        default available-now\n"
    "  --output OUT.csv   CustomerID,session_start,session_end,length_seconds,invoices,spend, sorted\n";

struct arguments {
  std::string data_dir;
  std::string gap = "30 minutes";
  std::string watermark;  // empty: none
  flow::examples::example_options common{.when = flow::available_now(), .output = {}};
};

flow::schema_ptr retail_schema() {
  using flow::type_id;
  return flow::make_schema({{"InvoiceNo", type_id::string, true}, {"StockCode", type_id::string, true},
                            {"Description", type_id::string, true}, {"Quantity", type_id::int64, true},
                            {"InvoiceDate", type_id::timestamp, true}, {"UnitPrice", type_id::float64, true},
                            {"CustomerID", type_id::float64, true}, {"Country", type_id::string, true}});
}

// The sessions as the update-mode table holds them: a session that later grew or merged with another is
// there in each of its versions; the final one is the one no other session of the customer contains.
// Sorted by customer and start, with the session's length in seconds.
flow::batch final_sessions(const flow::batch& table) {
  const auto& customers = table.col("CustomerID");
  const auto& windows = table.col("session_window");
  std::vector<std::size_t> rows(table.num_rows());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  auto key = [&](std::size_t i) { return std::make_tuple(customers.doubles()[i], windows.ints()[i], -windows.ends()[i]); };
  std::sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  using flow::type_id;
  auto schema = flow::make_schema({{"CustomerID", type_id::float64, false}, {"session_start", type_id::timestamp, false},
                                   {"session_end", type_id::timestamp, false}, {"length_seconds", type_id::int64, false},
                                   {"invoices", type_id::int64, true}, {"spend", type_id::float64, true}});
  std::vector<flow::column_builder> out;
  for (const auto& f : schema->fields()) out.emplace_back(f.type);
  // Sorted by start, longest first: a version is contained in the last kept session of its customer.
  std::size_t kept = rows.size();
  for (std::size_t i : rows) {
    if (kept != rows.size() && customers.doubles()[kept] == customers.doubles()[i] &&
        windows.ends()[i] <= windows.ends()[kept])
      continue;
    kept = i;
    out[0].append_double(customers.doubles()[i]);
    out[1].append_timestamp(flow::timestamp{windows.ints()[i]});
    out[2].append_timestamp(flow::timestamp{windows.ends()[i]});
    out[3].append_int((windows.ends()[i] - windows.ints()[i]) / 1'000'000);
    out[4].append_from(table.col("invoices"), i);
    out[5].append_from(table.col("spend"), i);
  }
  std::vector<flow::column> columns;
  for (auto& b : out) columns.push_back(b.finish());
  return flow::batch(schema, std::move(columns));
}

}  // namespace

int main(int argc, char** argv) {
  using flow::col;
  using flow::lit;
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .text("--data", args.data_dir)
                 .value("--gap", [&](const std::string& text) {
                   try {
                     flow::session_window(col("InvoiceDate"), text);
                   } catch (const flow::error& e) {
                     throw flow::cli::usage_error(std::string("--gap: ") + e.what());
                   }
                   args.gap = text;
                 })
                 .value("--watermark", [&](const std::string& text) {
                   try {
                     flow::parse_duration_micros(text);
                   } catch (const flow::error& e) {
                     throw flow::cli::usage_error(std::string("--watermark: ") + e.what());
                   }
                   args.watermark = text;
                 });
  return flow::examples::run_example("sessions", argc, argv, cli, [&](flow::examples::signal_stopper& stopper) {
    if (args.data_dir.empty()) throw flow::cli::usage_error("--data DIR is required");
    if (args.common.output.empty()) throw flow::cli::usage_error("--output OUT.csv is required");
    flow::session session{argc, argv};
    auto invoice_lines = [&] {
      // A null CustomerID compares as null: the rows without a customer are dropped.
      return session.read_stream()
          .format("csv")
          .option("header", true)
          .schema(retail_schema())
          .load(args.data_dir + "/*.csv")
          .where(col("CustomerID") > lit(0.0));
    };
    // Each line's spend, counting no invoice; then each invoice once (its first line), spending nothing.
    auto spend = invoice_lines().select({col("CustomerID"), col("InvoiceDate"),
                                         (col("UnitPrice") * col("Quantity")).as("spend"), lit(0).as("invoices")});
    auto invoices = invoice_lines().drop_duplicates({"InvoiceNo"}).select(
        {col("CustomerID"), col("InvoiceDate"), (col("UnitPrice") * lit(0.0)).as("spend"), lit(1).as("invoices")});
    auto events = spend.union_(invoices);
    if (!args.watermark.empty()) events = events.with_watermark("InvoiceDate", args.watermark);
    auto sessions = events.group_by({col("CustomerID"), flow::session_window(col("InvoiceDate"), args.gap)})
                        .agg({{flow::agg_kind::sum, col("invoices"), "invoices"}, {flow::agg_kind::sum, col("spend"), "spend"}});
    auto query = flow::examples::start_memory_table(sessions, "sessions", args.common.when, stopper, {},
                                                    flow::output_mode::update);
    query.await_termination();
    if (auto failure = query.exception()) throw flow::error(*failure);
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";
    auto result = final_sessions(session.sql("SELECT * FROM sessions").collect_batch());
    flow::examples::write_output(result, args.common.output, "sessions");
    return 0;
  });
}
