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
    "  --data DIR         directory of daily retail CSV files (default: the bundled sample)\n"
    "  --checkpoint DIR   the query's checkpoint: run again with the same flags after a crash, it continues\n";

struct arguments {
  std::string data_dir = FLOW_RETAIL_SAMPLE_DIR;
  long long max_files_per_trigger = 1;
  long long refreshes = 20;
  std::string checkpoint;
  flow::examples::example_options common;  // --trigger (default: 1s), --output
};

}  // namespace

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  using flow::col;
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .text("--data", args.data_dir)
                 .number("--max-files-per-trigger", args.max_files_per_trigger, 1)
                 .number("--refreshes", args.refreshes, 1)
                 .text("--checkpoint", args.checkpoint);
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
    auto per_hour = sales
                        .select({col("CustomerID"), (col("UnitPrice") * col("Quantity")).as("total_cost"),
                                 col("InvoiceDate")})
                        .group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")})
                        .sum("total_cost");
    auto query = flow::examples::start_memory_table(per_hour, "compras_por_hora", args.common.when, stopper,
                                                    args.checkpoint);

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
