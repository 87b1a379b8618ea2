// A topology composed by hand with the builder and user-written keyed operators (retail_operators.hpp): one
// source vertex reads the retail files (one file per epoch by default) and feeds two branches,
//   keyed by Country (through invoice_revenue, keyed by Country and InvoiceNo, which finds each country's
//   new invoices): revenue = sum of UnitPrice * Quantity, invoices = distinct InvoiceNo -> OUT/country_revenue.csv
//   keyed by StockCode: units = sum of Quantity                                        -> OUT/stock_units.csv
// Each branch's last operator emits the keys an epoch changed; its sink keeps the newest row per key, and
// the files are written when the query ends, sorted by key. The results do not depend on --parallelism.
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "example_support.hpp"
#include "flow/session.hpp"
#include "flow/topology.hpp"
#include "retail_topology.hpp"

namespace {

const char* const usage =
    "usage: custom_topology --data DIR [--parallelism N] --output-dir OUT [--trigger T]\n"
    "  --data DIR         directory of daily retail CSV files (default: the bundled sample)\n"
    "  --parallelism N    instances of the source and of each keyed operator (default: 2)\n"
    "  --output-dir OUT   where country_revenue.csv and stock_units.csv are written when the query ends\n"
    "  --trigger T        available-now (default), once, fast or an interval such as 1s (then the query\n"
    "                     runs until SIGINT or SIGTERM)\n";

struct arguments {
  std::string data_dir = FLOW_RETAIL_SAMPLE_DIR;
  std::string output_dir;
  long long parallelism = 2;
  flow::trigger when = flow::available_now();
};

// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string cell(const flow::value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    char text[64];
    std::snprintf(text, sizeof text, "%.2f", *d);
    return text;
  }
  return "";
}

void write_csv(const std::filesystem::path& path, const std::string& header,
               const std::map<std::string, std::vector<flow::value>>& rows) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw flow::error("cannot write " + path.string() + ": check that the directory is writable");
  out << header << "\n";
  for (const auto& [key, values] : rows) {
    out << csv_field(key);
    for (const auto& v : values) out << "," << cell(v);
    out << "\n";
  }
  out.close();
  if (!out) throw flow::error("writing " + path.string() + " failed (disk full?)");
  std::cout << "wrote " << rows.size() << " rows to " << path.string() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  arguments args;
  flow::cli::command_line cli(usage);
  cli.pass_over("--flow.")
      .text("--data", args.data_dir)
      .text("--output-dir", args.output_dir)
      .number("--parallelism", args.parallelism, 1, 256)
      .value("--trigger", [&args](const std::string& text) {
        try {
          args.when = flow::parse_trigger(text);
        } catch (const flow::error& e) {
          throw flow::cli::usage_error(e.what());
        }
      });
  return flow::examples::run_example("custom_topology", argc, argv, cli, [&](flow::examples::signal_stopper& stopper) {
    // First: with --flow.role=worker the session serves its driver and never returns, whatever else is given.
    flow::session session{argc, argv};
    if (args.output_dir.empty()) throw flow::cli::usage_error("--output-dir OUT is required");
    if (!std::filesystem::is_directory(args.data_dir))
      throw flow::error("--data " + args.data_dir + ": no such directory; give the directory of the retail CSV files");
    std::filesystem::create_directories(args.output_dir);
    const auto parallelism = static_cast<std::size_t>(args.parallelism);

    flow::topology topology(session.context());
    retail::latest_rows countries, stock;
    retail::build_topology(topology, retail::read_sales(session, args.data_dir), parallelism, countries, stock);
    std::cout << topology.explain();

    auto query = topology.start({"custom_topology", args.when});
    stopper.stop_on_signal(query);
    query.await_termination();
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";

    const std::filesystem::path out = args.output_dir;
    write_csv(out / "country_revenue.csv", "Country,revenue,invoices", countries.rows());
    write_csv(out / "stock_units.csv", "StockCode,units", stock.rows());
    return 0;
  });
}
