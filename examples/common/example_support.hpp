// What every example shares: a graceful stop on SIGINT/SIGTERM and the --output CSV of a result table.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "flow/batch.hpp"

namespace flow::examples {

// Construct first in main(), before any thread starts: it blocks SIGINT and SIGTERM in every thread
// and waits for them in its own, calling on_signal once (e.g. query.stop(): the running epoch
// finishes, sinks flush, the program exits 0).
class signal_stopper {
 public:
  signal_stopper();
  ~signal_stopper();
  signal_stopper(const signal_stopper&) = delete;
  signal_stopper& operator=(const signal_stopper&) = delete;
  void on_signal(std::function<void()> action);
  bool signalled() const;

 private:
  struct state;
  state* state_;
  std::thread waiter_;
};

// Writes a result table as CSV with a header line: RFC 4180 quoting, null as an empty field,
// timestamps as YYYY-MM-DD HH:MM:SS, a window column as two columns <name>_start,<name>_end.
void write_result_csv(const batch& result, const std::string& path);

}  // namespace flow::examples
