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
  caf::actor source;
  std::vector<caf::actor> stages, aggregates;
  caf::actor sink;
  std::set<caf::actor_addr> alive;

  std::string planned_offset;   // end of the newest planned epoch: where the next plan starts
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

using coordinator_actor = caf::stateful_actor<coordinator_state>;

// Epochs running now: logged, not committed, not waiting for a replay.
std::size_t running(const coordinator_state& st) { return st.log->logged() - st.replay.size(); }

void on_trigger(coordinator_actor* self);

void publish_status(coordinator_actor* self, std::string message, bool data_available, bool trigger_active) {
  auto& shared = *self->state.setup.shared;
  std::lock_guard<std::mutex> lock(shared.mutex);
  shared.status = {std::move(message), data_available, trigger_active};
  shared.changed.notify_all();
}

// Spark's waiting status, with the source's reason when it has one: "Waiting for data to arrive
// (HttpFeedSource[...]: HTTP 401 Unauthorized: ...)".
void publish_waiting(coordinator_actor* self, const std::string& message) {
  const auto& st = self->state;
  if (st.source_status.empty()) return publish_status(self, message, false, false);
  publish_status(self, message + " (" + st.setup.reader->description() + ": " + st.source_status + ")", false, false);
}

void spawn_dataflow(coordinator_actor* self) {
  auto& st = self->state;
  auto& sys = self->system();
  const auto& plan = st.setup.plan;
  const std::size_t n = std::max<std::size_t>(1, st.setup.parallelism);
  supervision sup{caf::actor_cast<caf::actor>(self), ++st.generation};

  st.aggregates.clear();
  st.stages.clear();
  std::size_t sink_inputs = n;
  st.sink = spawn_sink(sys, st.setup.writer, sink_inputs, sup);
  std::vector<caf::actor> stage_targets;
  if (plan.aggregate) {
    for (std::size_t i = 0; i < n; ++i) {
      st.aggregates.push_back(
          spawn_aggregate(sys, plan.aggregate, st.log->state(i), plan.post, st.setup.mode, st.sink, n, i, sup));
    }
    stage_targets = st.aggregates;
  } else {
    stage_targets = {st.sink};
  }
  for (std::size_t i = 0; i < n; ++i)
    st.stages.push_back(spawn_stage(sys, st.setup.reader->chunk_decoder(), plan.pre, plan.aggregate, stage_targets, sup));
  st.source = spawn_source(sys, st.setup.reader, st.stages, st.setup.credits_per_stage, sup);

  st.alive.clear();
  auto watch = [&](const caf::actor& a) {
    self->monitor(a);
    st.alive.insert(a.address());
  };
  watch(st.sink);
  for (auto& a : st.aggregates) watch(a);
  for (auto& a : st.stages) watch(a);
  watch(st.source);
}

// Closes the sink and the source and publishes how the query ended. Called once no actor of the
// dataflow is left, so none is still writing to the sink or reading the source.
void close_query(coordinator_actor* self) {
  auto& st = self->state;
  if (st.closed) return;
  st.closed = true;
  auto failure = st.outcome;
  try {
    st.setup.writer->close();
    st.setup.reader->stop();
  } catch (const std::exception& e) {
    if (!failure) failure = std::string("closing the query: ") + e.what();
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
void finish(coordinator_actor* self, std::optional<std::string> failure) {
  auto& st = self->state;
  if (st.finished) return;
  st.finished = true;
  st.outcome = std::move(failure);
  for (auto& a : st.stages) self->send_exit(a, caf::exit_reason::user_shutdown);
  for (auto& a : st.aggregates) self->send_exit(a, caf::exit_reason::user_shutdown);
  if (st.sink) self->send_exit(st.sink, caf::exit_reason::user_shutdown);
  if (st.source) self->send_exit(st.source, caf::exit_reason::user_shutdown);
  if (st.alive.empty()) close_query(self);
}

// A progress report with the query's names, the time, the sources' and sink's descriptions.
query_progress new_progress(coordinator_actor* self, std::int64_t batch_id) {
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
  p.has_state_operator = static_cast<bool>(st.setup.plan.aggregate);
  p.source_description = st.setup.reader->description();
  p.sink_description = st.setup.writer->description();
  return p;
}

void publish_progress(coordinator_actor* self, const query_progress& p) {
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

void report_progress(coordinator_actor* self, std::int64_t epoch, epoch_log<epoch_info>::entry& logged) {
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
  p.start_offset = logged.start;
  p.end_offset = logged.end;
  p.sink_metrics = std::move(logged.info.sink_metrics);
  for (std::size_t i = 0; i < stats.source_metric_names.size() && i < stats.source_metric_values.size(); ++i)
    p.source_metrics.emplace_back(stats.source_metric_names[i], stats.source_metric_values[i]);
  publish_progress(self, p);
}

// Spark's idle progress event: while no data arrives, a report without input at most every
// no_data_progress_interval, so that the sources' metrics (a refused token, a lost connection) reach
// the user. The first idle trigger of a query reports at once, later ones when the interval has
// passed since the last report, with data or without.
void report_idle_progress(coordinator_actor* self, const std::vector<std::string>& names,
                          const std::vector<std::int64_t>& values) {
  auto& st = self->state;
  if (st.last_progress && clock::now() - *st.last_progress < st.setup.no_data_progress_interval) return;
  query_progress p = new_progress(self, st.log->next_epoch());
  p.stats.state_rows_total = st.last_state_stats.state_rows_total;
  p.stats.state_memory_bytes = st.last_state_stats.state_memory_bytes;
  p.trigger_execution_ms = p.latest_offset_ms = millis_since(st.trigger_start);
  p.start_offset = p.end_offset = st.planned_offset;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) p.source_metrics.emplace_back(names[i], values[i]);
  publish_progress(self, p);
}

void run_epoch(coordinator_actor* self, std::int64_t epoch) {
  auto& st = self->state;
  auto& logged = st.log->at(epoch);
  logged.info.run_start = clock::now();
  publish_status(self, "Processing new data", true, true);
  self->send(st.source, run_atom::value, epoch, logged.start, logged.end);
}

// How many epochs may be in flight at once: pipelining overlaps reading epoch N+1 with committing N.
// A processing-time trigger runs one epoch per interval.
std::size_t epoch_window(const coordinator_state& st) {
  return st.setup.trigger.kind == trigger_kind::processing_time ? 1
                                                                : std::max<std::size_t>(1, st.setup.max_epochs_in_flight);
}

// Processing-time trigger: a tick that came while the query was busy fires now, else the next tick will.
void wait_for_next_tick(coordinator_actor* self) {
  auto& st = self->state;
  publish_waiting(self, "Waiting for next trigger");
  if (st.trigger_pending) {
    st.trigger_pending = false;
    on_trigger(self);
  }
}

void after_idle(coordinator_actor* self) {
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

void after_commit(coordinator_actor* self) {
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

void on_trigger(coordinator_actor* self) {
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
  publish_status(self, "Getting offsets from " + st.setup.reader->description(), false, true);
  auto generation = st.generation;
  self->request(st.source, caf::infinite, plan_atom::value, st.planned_offset)
      .then(
          [=](int outcome, const std::string& text, const std::vector<std::string>& metric_names,
              const std::vector<std::int64_t>& metric_values) {
            auto& s = self->state;
            if (s.generation != generation || s.finished) return;
            s.planning = false;
            if (outcome < 0) return finish(self, text);
            if (outcome == 0) {
              s.source_status = text;
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
                  report_idle_progress(self, metric_names, metric_values);
              }
              return after_idle(self);
            }
            s.source_status.clear();
            epoch_info info;
            info.trigger_start = s.trigger_start;
            info.latest_offset_ms = millis_since(s.trigger_start);
            if (s.previous_trigger_start != clock::time_point{})
              info.since_previous_trigger_s =
                  std::chrono::duration<double>(s.trigger_start - s.previous_trigger_start).count();
            auto epoch = s.log->append(s.planned_offset, text, std::move(info));
            s.planned_offset = text;
            run_epoch(self, epoch);
            // Plan the next epoch while this one runs (as-fast-as-possible, available-now).
            if (s.setup.trigger.kind != trigger_kind::processing_time && s.setup.trigger.kind != trigger_kind::once)
              on_trigger(self);
          },
          [=](const caf::error&) {
            // The source died while planning: its down message starts the recovery.
            auto& s = self->state;
            if (s.generation == generation) s.planning = false;
          });
}

// Epochs the log found committed: the source may free their data, their progress is published, and
// the next epoch may start.
void on_commits(coordinator_actor* self, std::vector<std::pair<std::int64_t, epoch_log<epoch_info>::entry>> done) {
  auto& st = self->state;
  for (auto& [epoch, logged] : done) {
    self->send(st.source, commit_atom::value, logged.end);
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

void begin_recovery(coordinator_actor* self, const std::string& reason) {
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
  auto kill = [&](const caf::actor& a) {
    if (a && st.alive.count(a.address())) self->send_exit(a, caf::exit_reason::kill);
  };
  kill(st.source);
  for (auto& a : st.stages) kill(a);
  for (auto& a : st.aggregates) kill(a);
  kill(st.sink);
}

void restart(coordinator_actor* self) {
  auto& st = self->state;
  if (st.finished) return;
  // Committed epochs are never run again: the state is restored as of the last commit and only the
  // epochs after it are replayed, with their logged offsets.
  st.replay.clear();
  for (auto epoch : st.log->restart()) {
    st.setup.writer->abort(epoch);
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

caf::behavior coordinator(coordinator_actor* self, query_setup setup, std::string initial_offset) {
  auto& st = self->state;
  st.setup = std::move(setup);
  st.planned_offset = std::move(initial_offset);
  st.log.emplace(st.setup.plan.aggregate, std::max<std::size_t>(1, st.setup.parallelism));
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
      [=](committed_atom, std::uint64_t generation, std::int64_t epoch, const epoch_stats& stats,
          const std::vector<std::string>& names, const std::vector<std::int64_t>& values) {
        auto& s = self->state;
        if (generation != s.generation || s.finished || s.recovering) return;
        if (epoch > s.log->last_committed()) {
          auto& info = s.log->at(epoch).info;
          info.stats = stats;
          for (std::size_t i = 0; i < names.size() && i < values.size(); ++i)
            info.sink_metrics.emplace_back(names[i], values[i]);
        }
        on_commits(self, s.log->sink_committed(epoch));
      },
      [=](state_changes_atom, std::uint64_t generation, std::int64_t epoch, std::uint64_t partition,
          const batch& changed) {
        auto& s = self->state;
        if (generation != s.generation || s.finished || s.recovering) return;
        auto done = s.log->state_changes(epoch, static_cast<std::size_t>(partition), changed);
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

caf::actor spawn_coordinator(caf::actor_system& sys, query_setup setup) {
  // Done here, in the caller's thread, so that a bad sink or source option fails start() itself.
  setup.reader->set_rate_limits_enabled(setup.trigger.kind != trigger_kind::once);
  setup.reader->set_max_unit_bytes(setup.max_unit_bytes);
  std::string initial_offset = setup.reader->initial_offset();
  setup.writer->open(setup.plan.output_schema, setup.mode, setup.plan.key_columns);
  return sys.spawn(coordinator, std::move(setup), std::move(initial_offset));
}

}  // namespace flow::runtime
