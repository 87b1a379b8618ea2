#include "example_support.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <utility>

#include "flow/formats.hpp"

namespace flow::examples {

struct signal_stopper::state {
  sigset_t signals{};
  std::mutex mutex;
  std::function<void()> action;
  bool unanswered = false;  // a signal came before there was an action: on_signal answers it with its action
  std::atomic<bool> signalled{false};
  std::atomic<bool> closing{false};
};

signal_stopper::signal_stopper() : state_(new state) {
  sigemptyset(&state_->signals);
  sigaddset(&state_->signals, SIGINT);
  sigaddset(&state_->signals, SIGTERM);
  sigaddset(&state_->signals, SIGUSR1);  // wakes the waiter at destruction
  pthread_sigmask(SIG_BLOCK, &state_->signals, nullptr);
  waiter_ = std::thread([s = state_] {
    for (;;) {
      int received = 0;
      if (sigwait(&s->signals, &received) != 0) continue;
      if (s->closing) return;
      if (received == SIGUSR1) continue;
      s->signalled = true;
      std::function<void()> action;
      {
        std::lock_guard<std::mutex> lock(s->mutex);
        action = s->action;
        s->unanswered = !action;
      }
      if (action) action();
    }
  });
}

signal_stopper::~signal_stopper() {
  state_->closing = true;
  pthread_kill(waiter_.native_handle(), SIGUSR1);
  waiter_.join();
  delete state_;
}

void signal_stopper::on_signal(std::function<void()> action) {
  std::function<void()> answer;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->action = std::move(action);
    if (std::exchange(state_->unanswered, false)) answer = state_->action;
  }
  if (answer) answer();
}

void signal_stopper::stop_on_signal(streaming_query query) {
  on_signal([query]() mutable { query.stop(); });
}

streaming_query start_memory_table(const data_frame& df, const std::string& name, const trigger& when,
                                   signal_stopper& stopper, const std::string& checkpoint, output_mode mode) {
  auto writer = df.write_stream().format("memory").query_name(name).output_mode(mode).trigger(when);
  if (!checkpoint.empty()) writer.option("checkpointLocation", checkpoint);
  auto query = writer.start();
  stopper.stop_on_signal(query);
  return query;
}

bool signal_stopper::signalled() const { return state_->signalled; }

cli::command_line example_command_line(std::string usage, example_options& options) {
  cli::command_line line(std::move(usage));
  line.pass_over("--flow.").text("--output", options.output).value("--trigger", [&options](const std::string& text) {
    try {
      options.when = parse_trigger(text);
    } catch (const error& e) {
      throw cli::usage_error(e.what());
    }
  });
  return line;
}

int run_example(const std::string& program, int argc, char** argv, const cli::command_line& cli,
                const std::function<int(signal_stopper&)>& body) {
  // std::cout writes through stdout's buffer (synced with stdio), which is a block buffer for a file or pipe.
  std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
  signal_stopper stopper;
  return cli::run_main(program, argc, argv, cli, [&] { return body(stopper); });
}

namespace {

// The result with each window column split into <name>_start and <name>_end timestamps, as CSV has no
// struct type.
batch with_windows_split(const batch& result) {
  std::vector<field> fields;
  std::vector<column> columns;
  for (std::size_t c = 0; c < result.num_columns(); ++c) {
    const field& f = result.schema()[c];
    const column& col = result.col(c);
    if (f.type != type_id::window) {
      fields.push_back(f);
      columns.push_back(col);
      continue;
    }
    column_builder starts(type_id::timestamp, col.size()), ends(type_id::timestamp, col.size());
    for (std::size_t row = 0; row < col.size(); ++row) {
      if (col.is_null(row)) {
        starts.append_null();
        ends.append_null();
      } else {
        starts.append_timestamp(col.window(row).start);
        ends.append_timestamp(col.window(row).end);
      }
    }
    fields.push_back({f.name + "_start", type_id::timestamp, true});
    fields.push_back({f.name + "_end", type_id::timestamp, true});
    columns.push_back(starts.finish());
    columns.push_back(ends.finish());
  }
  return batch(make_schema(std::move(fields)), std::move(columns));
}

}  // namespace

void write_output(const batch& result, const std::string& path, const std::string& rows_are) {
  if (path.empty()) return;
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw error("cannot write --output file '" + path + "': check the directory exists and is writable");
  batch rows = with_windows_split(result);
  out << row_encoder(text_encoding::csv, rows.schema_ref(), {.header = true}).encode(rows);
  out.close();
  if (!out) throw error("writing --output file '" + path + "' failed");
  std::cout << "wrote " << result.num_rows() << " " << rows_are << " to " << path << std::endl;
}

}  // namespace flow::examples
