// The retail-by-day notebook of "Spark: The Definitive Guide", in C++: a static read of one day,
// then the whole directory as a stream, aggregated per customer and hour into a memory table that
// is queried with SQL while the query runs.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "example_support.hpp"
#include "flow/session.hpp"

namespace {

struct arguments {
  std::string data_dir = FLOW_RETAIL_SAMPLE_DIR;
  std::string trigger = "1s";
  long long max_files_per_trigger = 1;
  std::string output;
  int refreshes = 20;
};

void usage(std::ostream& out) {
  out << "usage: retail_by_day [--data DIR] [--trigger 1s|once|available-now] [--max-files-per-trigger N]\n"
         "                     [--output FILE.csv] [--refreshes N]\n"
         "  --data DIR   directory of daily retail CSV files (default: the bundled sample)\n";
}

arguments parse_arguments(int argc, char** argv) {
  arguments args;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.rfind("--flow.", 0) == 0) continue;  // session options
    if (flag == "--help" || flag == "-h") {
      usage(std::cout);
      std::exit(0);
    }
    if (i + 1 >= argc) throw flow::error("missing value after " + flag + "; see --help");
    std::string value = argv[++i];
    if (flag == "--data") args.data_dir = value;
    else if (flag == "--trigger") args.trigger = value;
    else if (flag == "--output") args.output = value;
    else if (flag == "--max-files-per-trigger" || flag == "--refreshes") {
      try {
        std::size_t used = 0;
        long long n = std::stoll(value, &used);
        if (used != value.size() || n < 1) throw std::invalid_argument(value);
        if (flag == "--refreshes") args.refreshes = static_cast<int>(n);
        else args.max_files_per_trigger = n;
      } catch (const std::exception&) {
        throw flow::error(flag + " needs a positive whole number, got '" + value + "'");
      }
    } else {
      throw flow::error("unknown flag " + flag + "; see --help");
    }
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  using flow::col;
  flow::examples::signal_stopper stopper;
  try {
    arguments args = parse_arguments(argc, argv);
    flow::session session{argc, argv};
    const std::string first_day = args.data_dir + "/2010-12-01.csv";

    // The static read of one day: schema, rows, partitions, a look at the data.
    auto static_df = session.read().format("csv").option("header", true).option("inferSchema", true).load(first_day);
    std::cout << static_df.schema().tree_string() << "\n";
    std::cout << "rows: " << static_df.count() << ", partitions: " << static_df.num_partitions() << "\n";
    static_df.show(5);

    // The same files as a stream, one file per trigger.
    auto sales = session.read_stream()
                     .format("csv")
                     .option("header", true)
                     .schema(static_df.schema())
                     .option("maxFilesPerTrigger", args.max_files_per_trigger)
                     .load(args.data_dir + "/*.csv");
    auto per_hour = sales
                        .select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"),
                                 col("InvoiceDate")})
                        .group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")})
                        .sum("total_cost");
    auto query = per_hour.write_stream()
                     .format("memory")
                     .query_name("compras_por_hora")
                     .output_mode("complete")
                     .trigger(flow::parse_trigger(args.trigger))
                     .start();
    stopper.on_signal([query]() mutable { query.stop(); });

    const std::string top = "SELECT * FROM compras_por_hora ORDER BY `sum(total_cost)` DESC";
    for (int i = 0; i < args.refreshes && query.is_active(); ++i) {
      query.await_termination(1s);
      session.sql(top).show(5, false);
    }
    if (args.trigger == "once" || args.trigger == "available-now") query.await_termination();
    query.stop();
    if (auto failure = query.exception()) throw flow::error(*failure);
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";

    auto result = session.sql(top).collect_batch();
    session.sql(top).show(5, false);
    if (!args.output.empty()) {
      flow::examples::write_result_csv(result, args.output);
      std::cout << "wrote " << result.num_rows() << " rows to " << args.output << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "retail_by_day: " << e.what() << "\n";
    return 1;
  }
}
