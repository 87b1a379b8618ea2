#include "flow/runtime/query_lifecycle.hpp"

#include <algorithm>

namespace flow::runtime {

namespace act = lifecycle_actions;

query_lifecycle::query_lifecycle(lifecycle_options options, std::vector<std::unique_ptr<operator_state>> states)
    : options_(std::move(options)),
      log_(std::move(states), options_.sinks),
      planned_offsets_(options_.initial_offsets),
      watermark_(options_.watermark_delays, options_.multiple_watermark_policy) {
  if (planned_offsets_.size() != options_.source_descriptions.size())
    throw error("query lifecycle: " + std::to_string(options_.source_descriptions.size()) + " sources but " +
                std::to_string(planned_offsets_.size()) + " initial offsets");
}

lifecycle_actions_list query_lifecycle::take() {
  lifecycle_actions_list actions;
  actions.swap(out_);
  return actions;
}

// Epochs running now: logged, not committed, not waiting for a replay.
std::size_t query_lifecycle::running() const { return log_.logged() - replay_.size(); }

// How many epochs may be in flight at once: pipelining overlaps reading epoch N+1 with committing N.
// A processing-time trigger runs one epoch per interval; a watermarked query one at a time, as Spark, so
// that each epoch's watermark covers every epoch before it.
std::size_t query_lifecycle::epoch_window() const {
  return options_.trigger.kind == trigger_kind::processing_time || watermark_.enabled()
             ? 1
             : std::max<std::size_t>(1, options_.max_epochs_in_flight);
}

// The continuous triggers plan one epoch ahead of a full window, so that an epoch's commit starts the next
// epoch at once instead of a round trip to the sources first. Not a watermarked query: it runs one epoch at
// a time, as Spark.
bool query_lifecycle::plans_ahead() const {
  return (options_.trigger.kind == trigger_kind::as_fast_as_possible ||
          options_.trigger.kind == trigger_kind::available_now) &&
         !watermark_.enabled();
}

// Sources that notify after any plan make a plan ahead of the epoch just started useless until a notification:
// it would find nothing (epochs come faster than data) or what the notification announces anyway.
bool query_lifecycle::plans_ahead_on_arrival() const {
  return options_.sources_notify && options_.sources_notify_after_any_plan &&
         options_.trigger.kind == trigger_kind::as_fast_as_possible && plans_ahead();
}

bool query_lifecycle::ends_when_drained() const {
  return options_.trigger.kind == trigger_kind::once || options_.trigger.kind == trigger_kind::available_now;
}

void query_lifecycle::publish_status(std::string message, bool data_available, bool trigger_active) {
  out_.push_back(act::publish_status{{std::move(message), data_available, trigger_active}});
}

// Spark's waiting status, with the sources' reason when they have one: "Waiting for data to arrive
// (HttpFeedSource[...]: HTTP 401 Unauthorized: ...)".
void query_lifecycle::publish_waiting(const std::string& message) {
  if (source_status_.empty()) return publish_status(message, false, false);
  publish_status(message + " (" + source_status_ + ")", false, false);
}

void query_lifecycle::spawn() {
  dataflow_alive_ = true;
  out_.push_back(act::spawn_dataflow{++generation_});
}

void query_lifecycle::resume(resume_point point) {
  if (generation_ != 0) throw error("query lifecycle: resume after start");
  if (point.last_committed >= 0 && point.committed_end.size() != planned_offsets_.size())
    throw error("query lifecycle: the checkpoint holds offsets of " + std::to_string(point.committed_end.size()) +
                " sources, the query has " + std::to_string(planned_offsets_.size()));
  if (point.last_committed >= 0) planned_offsets_ = point.committed_end;
  if (!point.uncommitted.empty()) planned_offsets_ = point.uncommitted.back().end;
  for (auto epoch : log_.resume(point.last_committed, point.uncommitted)) replay_.push_back(epoch);
  // A replayed epoch runs with the watermark it was logged with (exactly-once); later ones start from the newest.
  watermark_.restore(point.committed_watermark);
  // Its processing time too (Spark's batchTimestampMs); a log written without one gets the clock's.
  for (const auto& logged : point.uncommitted) {
    auto& info = log_.at(logged.epoch).info;
    info.watermark = logged.watermark;
    info.processing_time = logged.processing_time ? *logged.processing_time : options_.processing_clock();
    watermark_.restore(logged.watermark);
  }
  logged_watermark_ = watermark_.current();
  resumed_epochs_ = !replay_.empty();
  emit_restored_state_ = point.emit_restored_state && point.last_committed >= 0 && replay_.empty();
}

// Once runs one epoch per run: a planned one, or the uncommitted one a resumed run re-runs (as Spark).
bool query_lifecycle::once_done() const { return plans_started_ > 0 || resumed_epochs_; }

lifecycle_actions_list query_lifecycle::start() {
  out_.clear();
  spawn();
  const auto now = lifecycle_clock::now();
  if (!replay_.empty()) {
    run_next_replay(now);
  } else if (emit_restored_state_) {
    emit_restored_state_ = false;
    epoch_info info;
    info.trigger_start = now;
    log_and_run(planned_offsets_, planned_offsets_, std::move(info), now);
  }
  const bool ticks = options_.trigger.kind == trigger_kind::processing_time;
  out_.push_back(act::schedule{ticks ? act::timer::tick : act::timer::poll, std::chrono::milliseconds{0}});
  return take();
}

lifecycle_actions_list query_lifecycle::tick(time_point now) {
  out_.clear();
  if (finished_) return take();
  out_.push_back(act::schedule{act::timer::tick, options_.trigger.interval});
  fire(now);
  return take();
}

lifecycle_actions_list query_lifecycle::poll(time_point now) {
  out_.clear();
  idle_poll_scheduled_ = false;
  fire(now);
  return take();
}

lifecycle_actions_list query_lifecycle::data_arrived(time_point now) {
  out_.clear();
  // The other triggers plan at their own times: ticks, or once at the start.
  if (options_.trigger.kind != trigger_kind::as_fast_as_possible) return take();
  // While an epoch runs, what arrived waits for its commit (one epoch then takes all of it), or with sources
  // that notify after any plan, for the plan ahead that starts now.
  if (running() > 0 && !plans_ahead_on_arrival()) trigger_pending_ = true;
  else fire(now);
  return take();
}

// The trigger fired: plan the next epoch, or remember the trigger until the query can take one more.
void query_lifecycle::fire(time_point now) {
  if (finished_ || drained_ || stop_requested_) return;
  const std::size_t window = epoch_window() + (plans_ahead() ? 1 : 0);
  if (planning_ || recovering_ || rebalance_pending_ || !replay_.empty() || running() >= window) {
    trigger_pending_ = true;
    return;
  }
  if (options_.trigger.kind == trigger_kind::once && once_done()) return;
  planning_ = true;
  previous_trigger_start_ = trigger_start_;
  trigger_start_ = now;
  answers_.assign(planned_offsets_.size(), std::nullopt);
  out_.push_back(act::plan_sources{++plans_started_, planned_offsets_});
  std::string sources;
  for (const auto& description : options_.source_descriptions) sources += (sources.empty() ? "" : ", ") + description;
  publish_status("Getting offsets from " + sources, false, true);
}

lifecycle_actions_list query_lifecycle::plan_answered(std::uint64_t plan, std::size_t source, plan_answer answer,
                                                      time_point now) {
  out_.clear();
  if (plan != plans_started_ || finished_ || !planning_) return take();  // an older plan's, or too late
  answers_.at(source) = std::move(answer);
  if (std::all_of(answers_.begin(), answers_.end(), [](const auto& a) { return a.has_value(); })) planned(plan, now);
  return take();
}

void query_lifecycle::plan_failed(std::uint64_t plan) {
  if (plan == plans_started_) planning_ = false;
}

// Every source answered the plan: a broken one fails the query; with no new data anywhere the trigger
// was idle; else the next epoch is logged (write-ahead) and run, sources without new data reading an
// empty range (a plan made ahead of a full epoch window is held until an epoch commits).
void query_lifecycle::planned(std::uint64_t plan, time_point now) {
  planning_ = false;
  bool any_data = false;
  std::string status;
  for (std::size_t i = 0; i < answers_.size(); ++i) {
    const auto& answer = *answers_[i];
    if (answer.outcome < 0) return finish(answer.text);
    if (answer.outcome > 0) any_data = true;
    else if (!answer.text.empty())
      status += (status.empty() ? "" : "; ") + options_.source_descriptions[i] + ": " + answer.text;
  }
  const bool every_tick = options_.epoch_every_tick && options_.trigger.kind == trigger_kind::processing_time;
  if (!any_data && !every_tick) {
    sources_armed_ = true;
    source_status_ = status;
    if (log_.logged() == 0 && !stop_requested_ && run_no_data_epoch(now)) return;
    // Idle only once nothing planned earlier is still running: for process_all_available, and for the
    // idle report, which would otherwise precede the running epochs' own reports.
    // A plan ahead made on a notification found nothing (process_all_available's, or what an earlier plan
    // took): plan again when the running epochs have committed, so that an idle plan follows the request.
    if (log_.logged() > 0 && plans_ahead_on_arrival()) trigger_pending_ = true;
    if (log_.logged() == 0) {
      out_.push_back(act::idle_plan{plan});
      // Spark's idle progress event: while no data arrives, a report without input at most every
      // no_data_progress_interval, so that the sources' metrics (a refused token, a lost connection)
      // reach the user. The first idle trigger reports at once, later ones when the interval has passed
      // since the last report, with data or without.
      const bool continuous = options_.trigger.kind == trigger_kind::as_fast_as_possible ||
                              options_.trigger.kind == trigger_kind::processing_time;
      if (continuous && (!last_progress_ || now - *last_progress_ >= options_.no_data_progress_interval)) {
        last_progress_ = now;
        out_.push_back(act::publish_idle_progress{log_.next_epoch(), planned_offsets_, answers_, *trigger_start_});
      }
    }
    after_idle(now);
    return rebalance_when_idle();
  }
  source_status_.clear();
  if (running() >= epoch_window()) {
    plan_held_ = true;
    planning_ = true;
    held_plan_answered_ = now;
    return;
  }
  run_planned(now, now);
}

void query_lifecycle::run_held_plan(time_point now) {
  if (!plan_held_ || running() >= epoch_window()) return;
  plan_held_ = false;
  planning_ = false;
  if (!stop_requested_ && !finished_) run_planned(held_plan_answered_, now);  // a stopping query drops it
}

// The newest plan's answers (some with data) become the next epoch, logged and run; the next plan starts.
void query_lifecycle::run_planned(time_point answered, time_point now) {
  epoch_info info;
  info.trigger_start = *trigger_start_;
  info.latest_offset_ms = millis_between(*trigger_start_, answered);
  if (previous_trigger_start_)
    info.since_previous_trigger_s = std::chrono::duration<double>(*trigger_start_ - *previous_trigger_start_).count();
  std::vector<std::string> ends = planned_offsets_;
  for (std::size_t i = 0; i < answers_.size(); ++i)
    if (answers_[i]->outcome > 0) ends[i] = answers_[i]->text;
  auto start = planned_offsets_;
  planned_offsets_ = ends;
  log_and_run(std::move(start), std::move(ends), std::move(info), now);
  // Plan the next epoch while this one runs (as-fast-as-possible, available-now); with sources that notify
  // after any plan, once one does (every source is armed now), unless one did while this plan ran.
  if (plans_ahead_on_arrival()) {
    sources_armed_ = true;
    if (trigger_pending_) {
      trigger_pending_ = false;
      fire(now);
    }
  } else if (options_.trigger.kind != trigger_kind::processing_time && options_.trigger.kind != trigger_kind::once) {
    fire(now);
  }
}

// A new epoch: logged with the current watermark and its processing time (write-ahead: on disk first when
// durable), then run.
void query_lifecycle::log_and_run(std::vector<std::string> start, std::vector<std::string> end, epoch_info info,
                                  time_point now) {
  sources_armed_ = false;
  info.watermark = logged_watermark_ = watermark_.current();
  info.processing_time = options_.processing_clock();
  const auto processing_time = info.processing_time;
  const auto epoch = log_.append(start, end, std::move(info));
  if (options_.durable)
    out_.push_back(act::write_offsets{epoch, std::move(start), std::move(end), logged_watermark_, processing_time});
  run_epoch(epoch, now);
}

// Spark's no-data micro-batch: when nothing runs and the watermark moved past the newest epoch's, an epoch
// without new data lets the stateful operators emit and evict what the new watermark closed.
bool query_lifecycle::run_no_data_epoch(time_point now) {
  if (running() > 0 || watermark_.current() <= logged_watermark_) return false;
  epoch_info info;
  info.trigger_start = now;
  log_and_run(planned_offsets_, planned_offsets_, std::move(info), now);
  return true;
}

void query_lifecycle::run_epoch(std::int64_t epoch, time_point now) {
  auto& logged = log_.at(epoch);
  logged.info.run_start = now;
  // An epoch resumed from a checkpoint was triggered by an earlier process: its trigger is its run.
  if (logged.info.trigger_start == time_point{}) logged.info.trigger_start = now;
  publish_status("Processing new data", true, true);
  out_.push_back(act::run_epoch{epoch, logged.start, logged.end, logged.info.watermark, logged.info.processing_time});
}

// Replays run one at a time, oldest first.
void query_lifecycle::run_next_replay(time_point now) {
  auto epoch = replay_.front();
  replay_.pop_front();
  run_epoch(epoch, now);
}

// Processing-time trigger: a tick that came while the query was busy fires now, else the next tick will.
void query_lifecycle::wait_for_next_tick(time_point now) {
  publish_waiting("Waiting for next trigger");
  if (trigger_pending_) {
    trigger_pending_ = false;
    fire(now);
  }
}

void query_lifecycle::after_idle(time_point now) {
  if (running() > 0) {
    // Nothing new, but epochs are still running: decide when the last of them commits.
    if (ends_when_drained()) drained_ = true;
    return;
  }
  if (stop_requested_) return finish(std::nullopt);
  switch (options_.trigger.kind) {
    case trigger_kind::once:
    case trigger_kind::available_now: return finish(std::nullopt);
    case trigger_kind::as_fast_as_possible: return wait_for_data(now);
    case trigger_kind::processing_time: return wait_for_next_tick(now);
  }
}

// As-fast-as-possible, the newest plan found nothing and nothing runs: poll, or wait for a notification.
void query_lifecycle::wait_for_data(time_point now) {
  publish_waiting("Waiting for data to arrive");
  // Data that arrived while this plan ran may be past the offsets it found: plan again at once.
  if (trigger_pending_) {
    trigger_pending_ = false;
    return fire(now);
  }
  if (!options_.sources_notify) {
    out_.push_back(act::schedule{act::timer::poll, options_.poll_interval});
  } else if (!idle_poll_scheduled_) {
    // Data wakes the query; a plan per idle-report interval still refreshes the sources' status
    // (a lost connection) and Spark's idle progress report.
    idle_poll_scheduled_ = true;
    out_.push_back(act::schedule{act::timer::poll, options_.no_data_progress_interval});
  }
}

void query_lifecycle::after_commit(time_point now) {
  if (!replay_.empty()) {
    if (running() == 0) run_next_replay(now);
    return;
  }
  if (stop_requested_ || drained_) {
    if (running() == 0 && !planning_ && (stop_requested_ || !run_no_data_epoch(now))) finish(std::nullopt);
    return;
  }
  switch (options_.trigger.kind) {
    case trigger_kind::once:
      if (running() > 0 || planning_) return;
      if (once_done()) {
        if (!run_no_data_epoch(now)) finish(std::nullopt);
      }
      else fire(now);  // the epoch that re-emitted a resumed query's state is not Once's epoch
      return;
    case trigger_kind::as_fast_as_possible:
      // The plan made after the newest epoch found nothing, so every source is armed and a notification
      // (trigger_pending_, handled by on_commits) says when there is more: a plan now would find nothing.
      if (options_.sources_notify && sources_armed_) {
        if (running() == 0 && !planning_ && !trigger_pending_) wait_for_data(now);
        return;
      }
      return fire(now);
    case trigger_kind::available_now: return fire(now);
    case trigger_kind::processing_time: return wait_for_next_tick(now);
  }
}

lifecycle_actions_list query_lifecycle::sink_committed(std::uint64_t generation, std::size_t sink, std::int64_t epoch,
                                                       const epoch_stats& stats, const connector_metrics& sink_metrics,
                                                       time_point now) {
  out_.clear();
  if (generation != generation_ || finished_ || recovering_) return take();
  if (epoch > log_.last_committed()) {
    auto& info = log_.at(epoch).info;
    info.stats.add(stats);
    info.sink_metrics.insert(info.sink_metrics.end(), sink_metrics.begin(), sink_metrics.end());
  }
  on_commits(log_.sink_committed(epoch, sink), now);
  return take();
}

lifecycle_actions_list query_lifecycle::state_changed(std::uint64_t generation, std::int64_t epoch, std::size_t slot,
                                                      batch changed, time_point now) {
  out_.clear();
  if (generation != generation_ || finished_ || recovering_) return take();
  auto done = log_.state_changes(epoch, slot, std::move(changed));
  if (!done.empty()) on_commits(std::move(done), now);
  return take();
}

// Epochs the log found committed: the sources may free their data, their progress is published, and the
// next epoch may start.
void query_lifecycle::on_commits(std::vector<std::pair<std::int64_t, query_epoch_log::entry>> done, time_point now) {
  for (auto& [epoch, logged] : done) {
    watermark_.observe(logged.info.stats.latest_event_time);
    if (options_.durable) out_.push_back(act::write_commit{epoch, std::move(logged.changes)});
    for (std::size_t i = 0; i < logged.start.size(); ++i)
      if (logged.start[i] != logged.end.at(i)) out_.push_back(act::commit_source{i, logged.end[i]});
    last_progress_ = now;
    out_.push_back(act::publish_progress{epoch, std::move(logged), restarts_in_epoch_});
    restarts_in_epoch_ = 0;
    backoff_ = std::chrono::milliseconds{0};
  }
  const auto plans_before = plans_started_;
  run_held_plan(now);
  after_commit(now);
  if (plans_started_ != plans_before) trigger_pending_ = false;  // the plan just started sees what arrived
  if (trigger_pending_ && !finished_) {
    trigger_pending_ = false;
    fire(now);
  }
  rebalance_when_idle();
}

lifecycle_actions_list query_lifecycle::actor_failed(std::uint64_t generation, const std::string& what, bool permanent,
                                                     time_point now) {
  out_.clear();
  if (generation != generation_) return take();
  last_error_ = what;
  if (permanent) finish(what);  // a restart would read the same input and fail the same way
  else begin_recovery(what, now);
  return take();
}

lifecycle_actions_list query_lifecycle::actor_down(const std::string& reason, bool last, time_point now) {
  out_.clear();
  if (last) dataflow_alive_ = false;
  if (finished_) {
    if (last) close();
    return take();
  }
  if (!recovering_) begin_recovery(last_error_.empty() ? reason : last_error_, now);
  if (recovering_ && last && !finished_) out_.push_back(act::schedule{act::timer::restart, backoff_});
  return take();
}

// A failure: more than max_failures within failure_window fails the query; else every actor of the
// dataflow is killed, and once all are down a restart follows after an exponential backoff.
void query_lifecycle::begin_recovery(const std::string& reason, time_point now) {
  if (finished_ || recovering_) return;
  if (!reason.empty()) last_error_ = reason;
  failures_.push_back(now);
  while (!failures_.empty() && now - failures_.front() > options_.failure_window) failures_.pop_front();
  if (static_cast<int>(failures_.size()) > options_.max_failures)
    return finish(last_error_ + " (failed " + std::to_string(failures_.size()) + " times within " +
                  std::to_string(options_.failure_window.count()) + " ms; giving up)");
  recovering_ = true;
  planning_ = false;
  plan_held_ = false;
  ++restarts_in_epoch_;
  backoff_ = backoff_.count() == 0 ? options_.initial_backoff : std::min(options_.max_backoff, backoff_ * 2);
  publish_status("Restarting after failure: " + last_error_, false, false);
  out_.push_back(act::kill_dataflow{});
}

lifecycle_actions_list query_lifecycle::rebalance() {
  out_.clear();
  if (!finished_ && !recovering_) rebalance_pending_ = true;
  rebalance_when_idle();
  return take();
}

// A pending rebalance once nothing runs: the restart's path without a failure, backoff or replay.
void query_lifecycle::rebalance_when_idle() {
  if (!rebalance_pending_ || finished_ || recovering_ || planning_ || running() > 0 || !replay_.empty()) return;
  rebalance_pending_ = false;
  recovering_ = true;
  backoff_ = std::chrono::milliseconds{0};
  publish_status("Placing the dataflow again over the cluster's workers", false, false);
  out_.push_back(act::kill_dataflow{});
}

lifecycle_actions_list query_lifecycle::restart_timer(time_point now) {
  out_.clear();
  if (finished_) return take();
  // Committed epochs are never run again: the state is restored as of the last commit and only the
  // epochs after it are replayed, with their logged offsets.
  replay_.clear();
  for (auto epoch : log_.restart()) {
    out_.push_back(act::abort_epoch{epoch});
    replay_.push_back(epoch);
    // A sink that committed the epoch before the failure commits it again: count its figures once.
    auto& info = log_.at(epoch).info;
    info.stats = epoch_stats{};
    info.sink_metrics.clear();
  }
  spawn();
  recovering_ = false;
  rebalance_pending_ = false;  // the new generation is placed over the workers there are now
  sources_armed_ = false;  // replays are not plans: plan again after them
  if (!replay_.empty()) run_next_replay(now);
  // Nothing to replay, and no new epoch will be planned: the query ends here.
  else if (stop_requested_ || drained_) finish(std::nullopt);
  else fire(now);
  return take();
}

lifecycle_actions_list query_lifecycle::stop() {
  out_.clear();
  stop_requested_ = true;
  if (running() == 0 && !planning_) finish(std::nullopt);
  return take();
}

lifecycle_actions_list query_lifecycle::crashed(const std::string& what) {
  out_.clear();
  finish("coordinator: " + what);
  close(false);  // the coordinator ends now: it cannot wait for the dataflow's actors
  return take();
}

lifecycle_actions_list query_lifecycle::checkpoint_failed(const std::string& what) {
  out_.clear();
  // An epoch counts as committed here before its commit file is durable: a query may have finished without
  // error while that write was under way. It must not end "Stopped" now that the write failed.
  if (finished_ && !closed_ && !outcome_) outcome_ = what;
  finish(what);
  return take();
}

// Ends the query: every actor of the dataflow is asked to exit (handling what was sent to it first), and
// the query closes once the last one is down.
void query_lifecycle::finish(std::optional<std::string> failure) {
  if (finished_) return;
  finished_ = true;
  outcome_ = std::move(failure);
  out_.push_back(act::stop_dataflow{});
  if (!dataflow_alive_) close();
}

void query_lifecycle::close(bool dataflow_gone) {
  if (closed_) return;
  closed_ = true;
  out_.push_back(act::close_query{outcome_, dataflow_gone});
}

}  // namespace flow::runtime
