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

const char* const usage =
    "usage: retail_by_day [--data DIR] [--trigger 1s|once|available-now] [--max-files-per-trigger N]\n"
    "                     [--output FILE.csv] [--refreshes N] [--checkpoint DIR]\n"
    "                     [--window LENGTH] [--slide SLIDE] [--watermark DELAY] [--output-mode append|update|complete]\n"
    "  --data DIR         directory of daily retail CSV files (default: the bundled sample)\n"
    "  --checkpoint DIR   the query's checkpoint: run again with the same flags after a crash, it continues\n"
    "  --window LENGTH    the event-time window per customer (default \"1 hour\")\n"
    "  --slide SLIDE      a sliding window's step (default: the length, tumbling windows)\n"
    "  --watermark DELAY  how late an invoice may arrive (default: none); append mode needs it\n"
    "  --output-mode M    append (each window once, when the watermark passes its end), update or complete\n"
    "                     (default complete)\n";

struct arguments {
  std::string data_dir = FLOW_RETAIL_SAMPLE_DIR;
  long long max_files_per_trigger = 1;
  long long refreshes = 20;
  std::string checkpoint;
  std::string window = "1 hour";
  std::string slide;      // empty: the window's length
  std::string watermark;  // empty: none
  flow::output_mode mode = flow::output_mode::complete;
  flow::examples::example_options common;  // --trigger (default: 1s), --output
};

// A flag's value checked with parse (which throws flow::error), reported as a usage error.
template <class Parse>
auto flag_value(const std::string& flag, const std::string& text, Parse parse) {
  try {
    return parse(text);
  } catch (const flow::error& e) {
    throw flow::cli::usage_error(flag + ": " + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  using flow::col;
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .text("--data", args.data_dir)
                 .number("--max-files-per-trigger", args.max_files_per_trigger, 1)
                 .number("--refreshes", args.refreshes, 1)
                 .text("--checkpoint", args.checkpoint)
                 .value("--window", [&](const std::string& text) {
                   flag_value("--window", text, flow::parse_duration_micros);
                   args.window = text;
                 })
                 .value("--slide", [&](const std::string& text) {
                   flag_value("--slide", text, flow::parse_duration_micros);
                   args.slide = text;
                 })
                 .value("--watermark", [&](const std::string& text) {
                   flag_value("--watermark", text, flow::parse_duration_micros);
                   args.watermark = text;
                 })
                 .value("--output-mode", [&](const std::string& text) {
                   args.mode = flag_value("--output-mode", text, flow::parse_output_mode);
                 });
  return flow::examples::run_example("retail_by_day", argc, argv, cli, [&](flow::examples::signal_stopper& stopper) {
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
    auto costs = sales.select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"),
                               col("InvoiceDate")});
    if (!args.watermark.empty()) costs = costs.with_watermark("InvoiceDate", args.watermark);
    auto per_hour = costs.group_by({col("CustomerID"), flow::window(col("InvoiceDate"), args.window, args.slide)})
                        .sum("total_cost");
    auto query = flow::examples::start_memory_table(per_hour, "compras_por_hora", args.common.when, stopper,
                                                    args.checkpoint, args.mode);

    const std::string top = "SELECT * FROM compras_por_hora ORDER BY `sum(total_cost)` DESC";
    for (long long i = 0; i < args.refreshes && query.is_active(); ++i) {
      query.await_termination(1s);
      session.sql(top).show(5, false);
    }
    const auto kind = args.common.when.kind;
    if (kind == flow::trigger_kind::once || kind == flow::trigger_kind::available_now) query.await_termination();
    query.stop();
    if (auto failure = query.exception()) throw flow::error(*failure);
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";

    auto result = session.sql(top).collect_batch();
    session.sql(top).show(5, false);
    flow::examples::write_output(result, args.common.output);
    return 0;
  });
}
