// Two libflow pipelines chained across processes by ZeroMQ, in libflow's binary batch format (no
// re-parsing between them):
//   zmq_pipeline consume --endpoint tcp://127.0.0.1:5557 [--output FILE.csv]   (PULL, binds)
//   zmq_pipeline produce --endpoint tcp://127.0.0.1:5557 --data DIR            (PUSH, connects)
// The producer streams the retail CSV files, keeps the sales columns and sends them as encoded batches;
// the consumer sums the cost per customer and hour, like retail_by_day.
// The schema on the wire is part of the program (wire_schema below): the producer casts its columns to
// it and the consumer declares it to the zmq source, which counts a batch of any other schema as a bad
// record instead of mixing it in.
#include <chrono>
#include <functional>
#include <iostream>
#include <string>

#include "example_support.hpp"
#include "flow/connectors/zeromq.hpp"
#include "flow/session.hpp"

namespace {

using flow::col;

const char* const usage =
    "usage: zmq_pipeline consume [--endpoint E] [--trigger T] [--output FILE.csv]\n"
    "       zmq_pipeline produce --data DIR [--endpoint E] [--trigger T]\n"
    "  --endpoint E   ZeroMQ endpoint (default tcp://127.0.0.1:5557); the consumer binds it (tcp://HOST:*\n"
    "                 picks a free port, printed as 'listening on ...'), the producer connects to it\n"
    "  --data DIR     directory of daily retail CSV files, read as a stream\n"
    "  --trigger T    an interval such as 1s (default), fast, once, available-now\n"
    "  --output FILE  consumer: write the final table as CustomerID,window_start,window_end,sum(total_cost)\n"
    "Both stop on SIGINT/SIGTERM after the running epoch and exit 0.\n";

struct arguments {
  std::string command;
  std::string endpoint = "tcp://127.0.0.1:5557";
  std::string data_dir;
  flow::examples::example_options common;  // --trigger (default: 1s), --output
};

flow::schema_ptr wire_schema() {
  return flow::make_schema({{"CustomerID", flow::type_id::float64, true},
                            {"total_cost", flow::type_id::float64, true},
                            {"InvoiceDate", flow::type_id::timestamp, true}});
}

// Waits for the end of the query (a signal stops it); refresh runs about once a second meanwhile.
void run_until_stopped(flow::streaming_query& query, const std::function<void()>& refresh) {
  using namespace std::chrono_literals;
  while (!query.await_termination(1s)) refresh();
  if (auto failure = query.exception()) throw flow::error(*failure);
}

int produce(flow::session& session, const arguments& args, flow::examples::signal_stopper& stopper) {
  auto sales = session.read_stream()
                   .format("csv")
                   .option("header", true)
                   .option("inferSchema", true)
                   .option("maxFilesPerTrigger", 1)
                   .load(args.data_dir + "/*.csv");
  auto costs = sales.where(col("Quantity") != flow::lit(std::int64_t{0}))  // a line without quantity sold nothing
                   .select({col("CustomerID").cast(flow::type_id::float64).as("CustomerID"),
                            (col("UnitPrice") * col("Quantity")).cast(flow::type_id::float64).as("total_cost"),
                            col("InvoiceDate").cast(flow::type_id::timestamp).as("InvoiceDate")});
  auto query = costs.write_stream()
                   .format("zmq")
                   .option("endpoint", args.endpoint)
                   .option("socketType", "PUSH")
                   .option("messageFormat", "binary")
                   .option("lingerMs", 10000LL)  // what is queued at exit still reaches the consumer
                   .trigger(args.common.when)
                   .start();
  stopper.stop_on_signal(query);
  std::cout << "sending to " << args.endpoint << std::endl;
  auto report = [&] {
    if (auto progress = query.last_progress()) std::cout << "progress: " << *progress << std::endl;
  };
  run_until_stopped(query, report);
  report();
  return 0;
}

int consume(flow::session& session, const arguments& args, flow::examples::signal_stopper& stopper) {
  auto sales = session.read_stream()
                   .format("zmq")
                   .option("endpoint", args.endpoint)
                   .option("socketType", "PULL")
                   .option("bind", true)
                   .option("messageFormat", "binary")
                   .schema(wire_schema())
                   .load();
  auto per_hour = sales.group_by({col("CustomerID"), flow::window(col("InvoiceDate"), "1 hour")})
                      .agg({flow::sum(col("total_cost")), flow::count_all()});
  auto query = flow::examples::start_memory_table(per_hour, "compras_por_hora", args.common.when, stopper);
  auto endpoints = flow::connectors::bound_zmq_source_endpoints();
  std::cout << "listening on " << (endpoints.empty() ? args.endpoint : endpoints.back()) << std::endl;

  // SELECT * keeps the window column typed (the memory table maps it back by its declared type).
  const std::string top = "SELECT * FROM compras_por_hora ORDER BY `sum(total_cost)` DESC";
  auto report = [&] {
    auto totals = session.sql("SELECT count(*), sum(`count(1)`) FROM compras_por_hora").collect_batch();
    std::cout << "groups: " << flow::to_string(totals.at(0, 0)) << ", rows so far: "
              << (flow::is_null(totals.at(0, 1)) ? "0" : flow::to_string(totals.at(0, 1))) << std::endl;
    session.sql(top).show(5, false);
  };
  run_until_stopped(query, report);
  report();
  if (!args.common.output.empty()) {
    auto table = session.sql(top).collect_batch();
    const auto& fields = table.schema().fields();
    flow::batch result(flow::make_schema({fields[0], fields[1], fields[2]}), {table.col(0), table.col(1), table.col(2)});
    flow::examples::write_output(result, args.common.output);  // without count(1)
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .command({"produce", "consume"}, args.command)
                 .text("--endpoint", args.endpoint)
                 .text("--data", args.data_dir);
  return flow::examples::run_example("zmq_pipeline", argc, argv, cli, [&](flow::examples::signal_stopper& stopper) {
    // First: with --flow.role=worker the session serves its driver and never returns, whatever else is given.
    flow::session session{argc, argv};
    if (args.command.empty()) throw flow::cli::usage_error("name a command, produce or consume");
    if (args.command == "produce" && args.data_dir.empty()) throw flow::cli::usage_error("produce needs --data DIR");
    return args.command == "produce" ? produce(session, args, stopper) : consume(session, args, stopper);
  });
}
