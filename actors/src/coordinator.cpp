#include "coordinator.hpp"

#include <set>

#include "dataflow.hpp"
#include "flow/runtime/epoch_log.hpp"

namespace flow::runtime {

namespace {

using clock = std::chrono::steady_clock;

std::int64_t millis_since(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t).count();
}

// What the progress report of an epoch needs besides its offsets.
struct epoch_info {
  clock::time_point trigger_start{}, run_start{};
  std::int64_t latest_offset_ms = 0;
  double since_previous_trigger_s = 0;  // for inputRowsPerSecond; 0 for the first trigger
  epoch_stats stats;                    // from the sink's commit
  connector_metrics sink_metrics;
};

struct coordinator_state {
  query_setup setup;
  std::uint64_t generation = 0;
  running_graph dataflow;
  std::set<caf::actor_addr> alive;

  std::vector<std::string> planned_offsets;  // per source: end of the newest planned epoch, where the next plan starts
  struct source_plan {
    int outcome = 0;  // as source_actor's plan answer
    std::string text;
    std::vector<std::string> metric_names;
    std::vector<std::int64_t> metric_values;
  };
  std::vector<std::optional<source_plan>> plans;  // answers to the running plan, per source
  std::optional<epoch_log<epoch_info>> log;  // write-ahead offsets, commits, the state checkpoint
  std::deque<std::int64_t> replay;           // logged epochs to run again after a restart
  bool planning = false;
  bool source_drained = false;  // available-now/once: the source had nothing more
  bool trigger_pending = false;
  bool stop_requested = false;
  bool recovering = false;
  bool finished = false;  // the query is ending: no more epochs, restarts or reports
  bool closed = false;    // sink and source closed, outcome published
  std::optional<std::string> outcome;  // the failure the query ended with

  std::deque<clock::time_point> failures;
  std::string last_error;
  std::int64_t restarts_in_epoch = 0;  // restarts since the last new commit, reported with it
  std::chrono::milliseconds backoff{0};

  clock::time_point trigger_start{}, previous_trigger_start{};
  std::optional<clock::time_point> last_progress;  // when the last progress report was published
  epoch_stats last_state_stats;                    // the state figures of the last report
  std::string source_status;                       // why the source had no data at the last plan
};

using coordinator_pointer = coordinator_actor::stateful_pointer<coordinator_state>;

// Epochs running now: logged, not committed, not waiting for a replay.
std::size_t running(const coordinator_state& st) { return st.log->logged() - st.replay.size(); }

void on_trigger(coordinator_pointer self);
void planned(coordinator_pointer self, std::uint64_t plan_number);
void finish(coordinator_pointer self, std::optional<std::string> failure);
void after_idle(coordinator_pointer self);
void run_epoch(coordinator_pointer self, std::int64_t epoch);
void report_idle_progress(coordinator_pointer self);

void publish_status(coordinator_pointer self, std::string message, bool data_available, bool trigger_active) {
  auto& shared = *self->state.setup.shared;
  std::lock_guard<std::mutex> lock(shared.mutex);
  shared.status = {std::move(message), data_available, trigger_active};
  shared.changed.notify_all();
}

// Spark's waiting status, with the source's reason when it has one: "Waiting for data to arrive
// (HttpFeedSource[...]: HTTP 401 Unauthorized: ...)".
void publish_waiting(coordinator_pointer self, const std::string& message) {
  const auto& st = self->state;
  if (st.source_status.empty()) return publish_status(self, message, false, false);
  publish_status(self, message + " (" + st.source_status + ")", false, false);
}

std::string source_descriptions(const coordinator_state& st) {
  std::string out;
  for (const auto& reader : st.setup.readers) out += (out.empty() ? "" : ", ") + reader->description();
  return out;
}

void spawn_dataflow(coordinator_pointer self) {
  auto& st = self->state;
  supervision sup{coordinator_actor{self}, ++st.generation};
  graph_setup setup;
  setup.graph = st.setup.graph;
  setup.readers = st.setup.readers;
  setup.writers = st.setup.writers;
  setup.credits_per_instance = st.setup.credits_per_instance;
  st.dataflow = spawn_graph(self->system(), setup, [&](std::size_t slot) { return st.log->state(slot); }, sup);
  st.alive.clear();
  for (const auto& handle : st.dataflow.handles()) {
    self->monitor(handle);
    st.alive.insert(handle.address());
  }
}

// Closes the sinks and the sources and publishes how the query ended. Called once no actor of the
// dataflow is left, so none is still writing to a sink or reading a source.
void close_query(coordinator_pointer self) {
  auto& st = self->state;
  if (st.closed) return;
  st.closed = true;
  auto failure = st.outcome;
  for (auto& writer : st.setup.writers) {
    try {
      writer->close();
    } catch (const std::exception& e) {
      if (!failure) failure = std::string("closing the query: ") + e.what();
    }
  }
  for (auto& reader : st.setup.readers) {
    try {
      reader->stop();
    } catch (const std::exception& e) {
      if (!failure) failure = std::string("closing the query: ") + e.what();
    }
  }
  {
    auto& shared = *st.setup.shared;
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.active = false;
    shared.failure = failure;
    shared.status = {failure ? "Terminated with exception: " + *failure : "Stopped", false, false};
    shared.changed.notify_all();
  }
  self->quit();
}

// Ends the query: stops every actor of the dataflow and closes the query when the last one is gone.
void finish(coordinator_pointer self, std::optional<std::string> failure) {
  auto& st = self->state;
  if (st.finished) return;
  st.finished = true;
  st.outcome = std::move(failure);
  for (const auto& handle : st.dataflow.handles()) self->send_exit(handle, caf::exit_reason::user_shutdown);
  if (st.alive.empty()) close_query(self);
}

// A progress report with the query's names, the time, the sources' and sink's descriptions.
query_progress new_progress(coordinator_pointer self, std::int64_t batch_id) {
  auto& st = self->state;
  query_progress p;
  {
    auto& shared = *st.setup.shared;
    std::lock_guard<std::mutex> lock(shared.mutex);
    p.id = shared.id;
    p.run_id = shared.run_id;
    p.name = shared.name;
  }
  p.timestamp = iso8601_now();
  p.batch_id = batch_id;
  for (const auto& v : st.setup.graph->vertices())
    for (const auto& op : v.chain)
      if (auto state = op->make_state(); state && state->durable()) ++p.state_operators;
  for (const auto& reader : st.setup.readers) p.sources.push_back({reader->description(), {}, {}, 0, {}});
  for (const auto& writer : st.setup.writers)
    p.sink_description += (p.sink_description.empty() ? "" : ", ") + writer->description();
  return p;
}

void publish_progress(coordinator_pointer self, const query_progress& p) {
  auto& st = self->state;
  st.last_progress = clock::now();
  st.last_state_stats.state_rows_total = p.stats.state_rows_total;
  st.last_state_stats.state_memory_bytes = p.stats.state_memory_bytes;
  auto& shared = *st.setup.shared;
  std::lock_guard<std::mutex> lock(shared.mutex);
  shared.progress.push_back(to_json(p));
  while (shared.progress.size() > st.setup.progress_history) shared.progress.pop_front();
  shared.changed.notify_all();
}

void report_progress(coordinator_pointer self, std::int64_t epoch, epoch_log<epoch_info>::entry& logged) {
  auto& st = self->state;
  query_progress p = new_progress(self, epoch);
  const auto& info = logged.info;
  p.stats = std::move(logged.info.stats);
  const auto& stats = p.stats;
  p.trigger_execution_ms = millis_since(info.trigger_start);
  p.add_batch_ms = millis_since(info.run_start);
  p.latest_offset_ms = info.latest_offset_ms;
  double exec_seconds = std::max(1e-6, std::chrono::duration<double>(clock::now() - info.trigger_start).count());
  p.processed_rows_per_second = static_cast<double>(stats.input_rows) / exec_seconds;
  if (info.since_previous_trigger_s > 0)
    p.input_rows_per_second = static_cast<double>(stats.input_rows) / info.since_previous_trigger_s;
  p.restarts = st.restarts_in_epoch;
  for (std::size_t i = 0; i < p.sources.size(); ++i) {
    p.sources[i].start_offset = logged.start.at(i);
    p.sources[i].end_offset = logged.end.at(i);
    p.sources[i].input_rows = i < stats.input_rows_per_source.size() ? stats.input_rows_per_source[i] : 0;
  }
  p.sink_metrics = std::move(logged.info.sink_metrics);
  for (std::size_t i = 0; i < stats.source_metric_names.size() && i < stats.source_metric_values.size(); ++i)
    p.sources.front().metrics.emplace_back(stats.source_metric_names[i], stats.source_metric_values[i]);
  publish_progress(self, p);
}

// Spark's idle progress event: while no data arrives, a report without input at most every
// no_data_progress_interval, so that the sources' metrics (a refused token, a lost connection) reach
// the user. The first idle trigger of a query reports at once, later ones when the interval has
// passed since the last report, with data or without.
void report_idle_progress(coordinator_pointer self) {
  auto& st = self->state;
  if (st.last_progress && clock::now() - *st.last_progress < st.setup.no_data_progress_interval) return;
  query_progress p = new_progress(self, st.log->next_epoch());
  p.stats.state_rows_total = st.last_state_stats.state_rows_total;
  p.stats.state_memory_bytes = st.last_state_stats.state_memory_bytes;
  p.trigger_execution_ms = p.latest_offset_ms = millis_since(st.trigger_start);
  for (std::size_t i = 0; i < p.sources.size(); ++i) p.sources[i].start_offset = p.sources[i].end_offset = st.planned_offsets[i];
  for (std::size_t i = 0; i < st.plans.size(); ++i)
    if (st.plans[i])
      for (std::size_t m = 0; m < st.plans[i]->metric_names.size() && m < st.plans[i]->metric_values.size(); ++m)
        p.sources[i].metrics.emplace_back(st.plans[i]->metric_names[m], st.plans[i]->metric_values[m]);
  publish_progress(self, p);
}

void run_epoch(coordinator_pointer self, std::int64_t epoch) {
  auto& st = self->state;
  auto& logged = st.log->at(epoch);
  logged.info.run_start = clock::now();
  publish_status(self, "Processing new data", true, true);
  for (std::size_t i = 0; i < st.dataflow.readers.size(); ++i)
    self->send(st.dataflow.readers[i], run_atom::value, epoch, logged.start.at(i), logged.end.at(i));
}

// How many epochs may be in flight at once: pipelining overlaps reading epoch N+1 with committing N.
// A processing-time trigger runs one epoch per interval.
std::size_t epoch_window(const coordinator_state& st) {
  return st.setup.trigger.kind == trigger_kind::processing_time ? 1
                                                                : std::max<std::size_t>(1, st.setup.max_epochs_in_flight);
}

// Processing-time trigger: a tick that came while the query was busy fires now, else the next tick will.
void wait_for_next_tick(coordinator_pointer self) {
  auto& st = self->state;
  publish_waiting(self, "Waiting for next trigger");
  if (st.trigger_pending) {
    st.trigger_pending = false;
    on_trigger(self);
  }
}

void after_idle(coordinator_pointer self) {
  auto& st = self->state;
  if (running(st) > 0) {
    // Nothing new, but epochs are still running: decide when the last of them commits.
    if (st.setup.trigger.kind == trigger_kind::once || st.setup.trigger.kind == trigger_kind::available_now)
      st.source_drained = true;
    return;
  }
  if (st.stop_requested) return finish(self, std::nullopt);
  switch (st.setup.trigger.kind) {
    case trigger_kind::once:
    case trigger_kind::available_now: return finish(self, std::nullopt);
    case trigger_kind::as_fast_as_possible:
      publish_waiting(self, "Waiting for data to arrive");
      self->delayed_send(self, st.setup.poll_interval, poll_atom::value);
      return;
    case trigger_kind::processing_time: return wait_for_next_tick(self);
  }
}

void after_commit(coordinator_pointer self) {
  auto& st = self->state;
  if (!st.replay.empty()) {
    if (running(st) > 0) return;  // replays run one at a time
    auto epoch = st.replay.front();
    st.replay.pop_front();
    return run_epoch(self, epoch);
  }
  if (st.stop_requested || st.source_drained) {
    if (running(st) == 0 && !st.planning) finish(self, std::nullopt);
    return;
  }
  switch (st.setup.trigger.kind) {
    case trigger_kind::once:
      if (running(st) == 0) finish(self, std::nullopt);
      return;
    case trigger_kind::available_now:
    case trigger_kind::as_fast_as_possible: return on_trigger(self);
    case trigger_kind::processing_time: return wait_for_next_tick(self);
  }
}

void on_trigger(coordinator_pointer self) {
  auto& st = self->state;
  if (st.finished || st.source_drained || st.stop_requested) return;
  if (st.planning || st.recovering || !st.replay.empty() || running(st) >= epoch_window(st)) {
    st.trigger_pending = true;
    return;
  }
  if (st.setup.trigger.kind == trigger_kind::once && st.log->next_epoch() > 0) return;
  st.planning = true;
  st.previous_trigger_start = st.trigger_start;
  st.trigger_start = clock::now();
  std::uint64_t plan_number;
  {
    auto& shared = *st.setup.shared;
    std::lock_guard<std::mutex> lock(shared.mutex);
    plan_number = ++shared.plans_started;
  }
  publish_status(self, "Getting offsets from " + source_descriptions(st), false, true);
  const auto generation = st.generation;
  st.plans.assign(st.dataflow.readers.size(), std::nullopt);
  for (std::size_t i = 0; i < st.dataflow.readers.size(); ++i)
    self->request(st.dataflow.readers[i], caf::infinite, plan_atom::value, st.planned_offsets[i])
        .then(
            [=](int outcome, std::string& text, std::vector<std::string>& metric_names,
                std::vector<std::int64_t>& metric_values) {
              auto& s = self->state;
              if (s.generation != generation || s.finished || !s.planning) return;
              s.plans[i] = coordinator_state::source_plan{outcome, std::move(text), std::move(metric_names),
                                                          std::move(metric_values)};
              for (const auto& answer : s.plans)
                if (!answer) return;
              planned(self, plan_number);
            },
            [=](const caf::error&) {
              // The source died while planning: its down message starts the recovery.
              auto& s = self->state;
              if (s.generation == generation) s.planning = false;
            });
}

// Every source answered the plan: a broken one fails the query; with no new data anywhere the trigger
// was idle; else the next epoch is logged (write-ahead) and run, sources without new data reading an
// empty range.
void planned(coordinator_pointer self, std::uint64_t plan_number) {
  auto& s = self->state;
  s.planning = false;
  bool any_data = false;
  std::string status;
  for (std::size_t i = 0; i < s.plans.size(); ++i) {
    const auto& answer = *s.plans[i];
    if (answer.outcome < 0) return finish(self, answer.text);
    if (answer.outcome > 0) any_data = true;
    else if (!answer.text.empty())
      status += (status.empty() ? "" : "; ") + s.setup.readers[i]->description() + ": " + answer.text;
  }
  if (!any_data) {
    s.source_status = status;
    // Idle only once nothing planned earlier is still running: for process_all_available, and
    // for the idle report, which would otherwise precede the running epochs' own reports.
    if (s.log->logged() == 0) {
      {
        auto& shared = *s.setup.shared;
        std::lock_guard<std::mutex> lock(shared.mutex);
        shared.last_idle_plan = plan_number;
        shared.changed.notify_all();
      }
      if (s.setup.trigger.kind == trigger_kind::as_fast_as_possible ||
          s.setup.trigger.kind == trigger_kind::processing_time)
        report_idle_progress(self);
    }
    return after_idle(self);
  }
  s.source_status.clear();
  epoch_info info;
  info.trigger_start = s.trigger_start;
  info.latest_offset_ms = millis_since(s.trigger_start);
  if (s.previous_trigger_start != clock::time_point{})
    info.since_previous_trigger_s = std::chrono::duration<double>(s.trigger_start - s.previous_trigger_start).count();
  std::vector<std::string> ends = s.planned_offsets;
  for (std::size_t i = 0; i < s.plans.size(); ++i)
    if (s.plans[i]->outcome > 0) ends[i] = s.plans[i]->text;
  auto epoch = s.log->append(s.planned_offsets, ends, std::move(info));
  s.planned_offsets = std::move(ends);
  run_epoch(self, epoch);
  // Plan the next epoch while this one runs (as-fast-as-possible, available-now).
  if (s.setup.trigger.kind != trigger_kind::processing_time && s.setup.trigger.kind != trigger_kind::once)
    on_trigger(self);
}

// Epochs the log found committed: the source may free their data, their progress is published, and
// the next epoch may start.
void on_commits(coordinator_pointer self, std::vector<std::pair<std::int64_t, epoch_log<epoch_info>::entry>> done) {
  auto& st = self->state;
  for (auto& [epoch, logged] : done) {
    for (std::size_t i = 0; i < st.dataflow.readers.size(); ++i)
      if (logged.start.at(i) != logged.end.at(i)) self->send(st.dataflow.readers[i], commit_atom::value, logged.end[i]);
    report_progress(self, epoch, logged);
    st.restarts_in_epoch = 0;
    st.backoff = std::chrono::milliseconds{0};
  }
  after_commit(self);
  if (st.trigger_pending && !st.finished) {
    st.trigger_pending = false;
    on_trigger(self);
  }
}

void begin_recovery(coordinator_pointer self, const std::string& reason) {
  auto& st = self->state;
  if (st.finished || st.recovering) return;
  if (!reason.empty()) st.last_error = reason;
  auto now = clock::now();
  st.failures.push_back(now);
  while (!st.failures.empty() && now - st.failures.front() > st.setup.failure_window) st.failures.pop_front();
  if (static_cast<int>(st.failures.size()) > st.setup.max_failures)
    return finish(self, st.last_error + " (failed " + std::to_string(st.failures.size()) + " times within " +
                            std::to_string(st.setup.failure_window.count()) + " ms; giving up)");
  st.recovering = true;
  st.planning = false;
  ++st.restarts_in_epoch;
  st.backoff = st.backoff.count() == 0 ? st.setup.initial_backoff
                                       : std::min(st.setup.max_backoff, st.backoff * 2);
  publish_status(self, "Restarting after failure: " + st.last_error, false, false);
  for (const auto& handle : st.dataflow.handles())
    if (st.alive.count(handle.address())) self->send_exit(handle, caf::exit_reason::kill);
}

void restart(coordinator_pointer self) {
  auto& st = self->state;
  if (st.finished) return;
  // Committed epochs are never run again: the state is restored as of the last commit and only the
  // epochs after it are replayed, with their logged offsets.
  st.replay.clear();
  for (auto epoch : st.log->restart()) {
    for (auto& writer : st.setup.writers) writer->abort(epoch);
    st.replay.push_back(epoch);
  }
  spawn_dataflow(self);
  st.recovering = false;
  if (!st.replay.empty()) {
    auto epoch = st.replay.front();
    st.replay.pop_front();
    return run_epoch(self, epoch);
  }
  // Nothing to replay, and no new epoch will be planned: the query ends here.
  if (st.stop_requested || st.source_drained) return finish(self, std::nullopt);
  on_trigger(self);
}

coordinator_actor::behavior_type coordinator(coordinator_pointer self, query_setup setup,
                                             std::vector<std::string> initial_offsets) {
  auto& st = self->state;
  st.setup = std::move(setup);
  st.planned_offsets = std::move(initial_offsets);
  st.log.emplace(state_slots(*st.setup.graph), st.setup.writers.size());
  // A bug in the coordinator must end the query visibly, never leave its handle waiting forever.
  self->set_exception_handler([=](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    finish(self, "coordinator: " + exception_message(eptr));
    close_query(self);  // the coordinator ends now: it cannot wait for the dataflow's actors
    return caf::sec::runtime_error;
  });
  spawn_dataflow(self);

  self->set_down_handler([=](caf::down_msg& msg) {
    auto& s = self->state;
    if (!s.alive.erase(msg.source)) return;
    if (s.finished) {
      if (s.alive.empty()) close_query(self);
      return;
    }
    if (!s.recovering) {
      std::string reason = s.last_error.empty() ? "an actor of the dataflow ended: " + self->system().render(msg.reason)
                                                : s.last_error;
      begin_recovery(self, reason);
    }
    if (s.recovering && s.alive.empty() && !s.finished) self->delayed_send(self, s.backoff, restart_atom::value);
  });
  if (st.setup.trigger.kind == trigger_kind::processing_time) self->send(self, tick_atom::value);
  else self->send(self, poll_atom::value);

  return {
      [=](tick_atom) {
        auto& s = self->state;
        if (s.finished) return;
        self->delayed_send(self, s.setup.trigger.interval, tick_atom::value);
        on_trigger(self);
      },
      [=](poll_atom) { on_trigger(self); },
      [=](committed_atom, std::uint64_t generation, std::uint32_t sink, std::int64_t epoch, const epoch_stats& stats,
          const std::vector<std::string>& names, const std::vector<std::int64_t>& values) {
        auto& s = self->state;
        if (generation != s.generation || s.finished || s.recovering) return;
        if (epoch > s.log->last_committed()) {
          auto& info = s.log->at(epoch).info;
          info.stats.add(stats);
          for (std::size_t i = 0; i < names.size() && i < values.size(); ++i)
            info.sink_metrics.emplace_back(names[i], values[i]);
        }
        on_commits(self, s.log->sink_committed(epoch, sink));
      },
      [=](state_changes_atom, std::uint64_t generation, std::int64_t epoch, std::uint64_t slot, const batch& changed) {
        auto& s = self->state;
        if (generation != s.generation || s.finished || s.recovering) return;
        auto done = s.log->state_changes(epoch, static_cast<std::size_t>(slot), changed);
        if (!done.empty()) on_commits(self, std::move(done));
      },
      [=](failed_atom, std::uint64_t generation, const std::string& what, bool permanent) {
        auto& s = self->state;
        if (generation != s.generation) return;
        s.last_error = what;
        // A restart would read the same input and fail the same way.
        if (permanent) return finish(self, what);
        begin_recovery(self, what);
      },
      [=](restart_atom) { restart(self); },
      [=](stop_atom) {
        auto& s = self->state;
        s.stop_requested = true;
        if (running(s) == 0 && !s.planning) finish(self, std::nullopt);
      },
  };
}

}  // namespace

std::shared_ptr<query_control> start_query(caf::actor_system& sys, query_setup setup) {
  // Done here, in the caller's thread, so that a bad graph, sink or source option fails start() itself.
  setup.graph->resolve_parallelism(setup.parallelism);
  setup.graph->validate();
  const auto sources = setup.graph->sources();
  const auto sinks = setup.graph->sinks();
  if (setup.readers.size() != sources.size() || setup.writers.size() != sinks.size())
    throw error("start_query: the graph has " + std::to_string(sources.size()) + " sources and " +
                std::to_string(sinks.size()) + " sinks, but " + std::to_string(setup.readers.size()) + " readers and " +
                std::to_string(setup.writers.size()) + " writers were given");
  std::vector<std::string> initial_offsets;
  for (auto& reader : setup.readers) {
    reader->set_rate_limits_enabled(setup.trigger.kind != trigger_kind::once);
    reader->set_max_unit_bytes(setup.max_unit_bytes);
    initial_offsets.push_back(reader->initial_offset());
  }
  for (std::size_t k = 0; k < sinks.size(); ++k) {
    const auto& vertex = setup.graph->vertex(sinks[k]);
    setup.writers[k]->open(vertex.input, vertex.sink.mode, vertex.sink_keys);
  }
  auto shared = setup.shared;
  auto handle = sys.spawn(coordinator, std::move(setup), std::move(initial_offsets));
  return make_query_control(handle, std::move(shared));
}

}  // namespace flow::runtime
