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
#include <mutex>
#include <string>

#include "example_support.hpp"
#include "flow/session.hpp"
#include "flow/topology.hpp"
#include "retail_operators.hpp"

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

flow::schema_ptr retail_schema() {
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

// The newest row per key of an update-mode stream (the operators emit the keys each epoch changed).
class latest_rows {
 public:
  flow::foreach_batch_function sink() {
    return [this](const flow::batch& rows, std::int64_t) {
      std::lock_guard<std::mutex> lock(mutex_);
      for (std::size_t i = 0; i < rows.num_rows(); ++i) {
        std::vector<flow::value> row;
        for (std::size_t c = 1; c < rows.num_columns(); ++c) row.push_back(rows.at(i, c));
        rows_[rows.col(0).is_null(i) ? std::string() : std::string(rows.col(0).str(i))] = std::move(row);
      }
    };
  }
  // Sorted by key (byte order).
  std::map<std::string, std::vector<flow::value>> rows() {
    std::lock_guard<std::mutex> lock(mutex_);
    return rows_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<flow::value>> rows_;
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
    if (args.output_dir.empty()) throw flow::cli::usage_error("--output-dir OUT is required");
    if (!std::filesystem::is_directory(args.data_dir))
      throw flow::error("--data " + args.data_dir + ": no such directory; give the directory of the retail CSV files");
    std::filesystem::create_directories(args.output_dir);
    const auto parallelism = static_cast<std::size_t>(args.parallelism);

    flow::session session{argc, argv};
    auto schema = retail_schema();
    auto sales = session.read_stream()
                     .format("csv")
                     .option("header", true)
                     .option("maxFilesPerTrigger", 1)
                     .schema(schema)
                     .load(args.data_dir + "/*.csv");

    flow::topology topology(session.context());
    auto rows = topology.source("retail", sales, parallelism);
    latest_rows countries, stock;
    auto invoices = std::make_shared<retail::invoice_revenue>(schema);
    rows.key_by({"Country", "InvoiceNo"})
        .apply("invoice_revenue", invoices, parallelism)
        .key_by({"Country"})
        .apply("country_revenue", std::make_shared<retail::country_revenue>(invoices->output_schema()), parallelism)
        .sink("countries")
        .output_mode("update")
        .upsert_keys({"Country"})
        .foreach_batch(countries.sink());
    rows.key_by({"StockCode"})
        .apply("stock_units", std::make_shared<retail::stock_units>(schema), parallelism)
        .sink("stock")
        .output_mode("update")
        .upsert_keys({"StockCode"})
        .foreach_batch(stock.sink());
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
