// What every example shares: its main() frame, the --trigger and --output flags, a graceful stop on
// SIGINT/SIGTERM, output that reaches a file or pipe line by line and the --output CSV of a result table.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "command_line.hpp"
#include "flow/batch.hpp"
#include "flow/dataframe.hpp"

namespace flow::examples {

// Construct first in main(), before any thread starts: it blocks SIGINT and SIGTERM in every thread
// and waits for them in its own, running the on_signal action at each (e.g. query.stop(): the running
// epoch finishes, sinks flush, the program exits 0). A signal that comes before there is an action is
// kept: on_signal then runs its action at once, in the caller's thread, so a signal during start-up
// stops the query as soon as it is started.
class signal_stopper {
 public:
  signal_stopper();
  ~signal_stopper();
  signal_stopper(const signal_stopper&) = delete;
  signal_stopper& operator=(const signal_stopper&) = delete;
  void on_signal(std::function<void()> action);
  // on_signal: query.stop().
  void stop_on_signal(streaming_query query);
  bool signalled() const;

 private:
  struct state;
  state* state_;
  std::thread waiter_;
};

// The flags every example has.
struct example_options {
  trigger when = processing_time(std::chrono::seconds(1));  // --trigger T: fast, an interval such as 1s, once, available-now
  std::string output;  // --output FILE.csv
};

// A command line with --trigger and --output into options (options.when keeps its default when the flag
// is absent), passing over the session's --flow.* options; add the example's own flags to it.
cli::command_line example_command_line(std::string usage, example_options& options);

// An example's main(): stdout becomes line-buffered (each line reaches a file or pipe as it is printed,
// also when the program is killed later), SIGINT/SIGTERM are blocked and waited for before any thread
// starts (the signal_stopper given to body), then cli::run_main parses the command line, runs body and
// reports errors.
int run_example(const std::string& program, int argc, char** argv, const cli::command_line& cli,
                const std::function<int(signal_stopper&)>& body);

// Starts the aggregation df into the memory table `name` (complete mode unless given) with this trigger; a
// signal stops it. checkpoint: the query's checkpoint location (empty: none).
streaming_query start_memory_table(const data_frame& df, const std::string& name, const trigger& when,
                                   signal_stopper& stopper, const std::string& checkpoint = {},
                                   output_mode mode = output_mode::complete);

// --output: with a path, writes the result table there as CSV with a header line (RFC 4180 quoting,
// null as an empty field, timestamps as YYYY-MM-DD HH:MM:SS, a window column as two columns
// <name>_start,<name>_end) and prints "wrote N <rows_are> to <path>"; without one, does nothing.
void write_output(const batch& result, const std::string& path, const std::string& rows_are = "rows");

}  // namespace flow::examples
