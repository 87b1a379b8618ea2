// Every decision of a query's coordinator, as a plain class: when to plan the sources, which epoch to run
// with which offsets, when an epoch is committed, when to poll, tick, restart, give up or finish. It takes
// events (a trigger fired, a source answered a plan, a sink committed, an actor failed or went down, a
// timer fired, stop) and returns the actions the coordinator actor must carry out, in order. Time comes in
// as an argument and is never read here, so that every test of it is instant and deterministic; the
// actor (actors/src/coordinator.cpp) only feeds it messages and performs what it returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "flow/dataframe.hpp"
#include "flow/runtime/epoch_log.hpp"
#include "flow/runtime/progress.hpp"
#include "flow/trigger.hpp"
#include "flow/watermark.hpp"

namespace flow::runtime {

using lifecycle_clock = std::chrono::steady_clock;

inline std::int64_t millis_between(lifecycle_clock::time_point from, lifecycle_clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

// What the log keeps per epoch besides its offsets: timing and figures for the epoch's progress report.
struct epoch_info {
  lifecycle_clock::time_point trigger_start{}, run_start{};
  std::int64_t latest_offset_ms = 0;
  std::int64_t wal_commit_ms = 0;       // writing the epoch's offsets to the checkpoint
  double since_previous_trigger_s = 0;  // for inputRowsPerSecond; 0 for the first trigger
  std::int64_t watermark = operator_context::no_watermark;  // the epoch runs with (logged with its offsets)
  std::int64_t processing_time = 0;  // ms since the Unix epoch, fixed when planned (logged with its offsets)
  epoch_stats stats;                    // summed over the sinks' commits
  connector_metrics sink_metrics;
};

using query_epoch_log = epoch_log<epoch_info>;

// A source's answer to a plan: new data up to the offset `text` (outcome 1), nothing new (0; text: the
// source's reason, if it knows one), or a broken source (-1; text: the error).
struct plan_answer {
  int outcome = 0;
  std::string text;
  std::vector<std::string> metric_names;
  std::vector<std::int64_t> metric_values;
};

struct lifecycle_options {
  flow::trigger trigger;
  std::vector<std::string> source_descriptions;  // per source, for statuses
  std::vector<std::string> initial_offsets;      // per source: where the first plan starts
  std::size_t sinks = 1;
  std::size_t max_epochs_in_flight = 4;
  int max_failures = 3;  // restarts allowed within failure_window
  std::chrono::milliseconds failure_window{60000};
  std::chrono::milliseconds initial_backoff{20};
  std::chrono::milliseconds max_backoff{2000};
  // As-fast-as-possible trigger, no new data: plan again after poll_interval, unless every source
  // notifies when data arrives (source_reader::notify_when_data): then the next plan waits for data_arrived,
  // or at most no_data_progress_interval (for the sources' status and the idle progress report).
  std::chrono::milliseconds poll_interval{10};
  bool sources_notify = false;
  // Every source also notifies of data that arrives after a plan that found some
  // (source_reader::notifies_after_any_plan): the as-fast-as-possible trigger then plans ahead only when
  // data arrives during an epoch, not after every epoch's start (an empty plan is a round trip to every source).
  bool sources_notify_after_any_plan = false;
  std::chrono::milliseconds no_data_progress_interval{10000};  // idle progress reports at most this often
  bool durable = false;  // the query has a checkpoint location: offsets and commits are written to it
  bool epoch_every_tick = false;  // processing-time trigger: run an epoch at each tick, also without new data
  // Per with_watermark input (watermark_operator::input()), its delay in microseconds; empty: no watermark.
  std::vector<std::int64_t> watermark_delays;
  watermark_policy multiple_watermark_policy = watermark_policy::min;
  // An epoch's processing time (operator_context::processing_time, ms since the Unix epoch), read once when
  // the epoch is planned; a replayed epoch keeps its logged one. Tests give a controllable clock.
  std::function<std::int64_t()> processing_clock = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
};

// Where a query resumes from its durable checkpoint (see query_lifecycle::resume).
struct resume_point {
  std::int64_t last_committed = -1;
  std::vector<std::string> committed_end;  // end offsets of last_committed, per source
  std::vector<logged_offsets> uncommitted;
  std::int64_t committed_watermark = operator_context::no_watermark;  // last_committed's
  // Run one epoch without new data right away, so that complete-mode sinks get the restored result even
  // when no data arrives (a memory table re-created after a restart).
  bool emit_restored_state = false;
};

// The actions, in the order the coordinator performs them.
namespace lifecycle_actions {
// Spawn the dataflow's actors as this generation, each durable state restored from state(slot).
struct spawn_dataflow { std::uint64_t generation = 0; };
// Ask every source for its latest offset after from[i]; answers go to plan_answered(plan, ...).
struct plan_sources { std::uint64_t plan = 0; std::vector<std::string> from; };
// Write-ahead: record the epoch's offsets in the checkpoint before it runs (durable queries only).
struct write_offsets {
  std::int64_t epoch = 0;
  std::vector<std::string> start, end;
  std::int64_t watermark = 0, processing_time = 0;
};
// The epoch committed: record what it changed in every state slot, then its commit, in the checkpoint
// (durable queries only), before its sources may free its data.
struct write_commit { std::int64_t epoch = 0; std::vector<batch> changes; };
// Tell every source to read (start[i], end[i]] as the epoch's data (start == end: nothing), with its watermark
// and processing time.
struct run_epoch {
  std::int64_t epoch = 0;
  std::vector<std::string> start, end;
  std::int64_t watermark = 0, processing_time = 0;
};
// Data of the source up to end is committed downstream: the source may free it.
struct commit_source { std::size_t source = 0; std::string end; };
// The epoch committed: publish its progress report (restarts: while it ran).
struct publish_progress { std::int64_t epoch = 0; query_epoch_log::entry logged; std::int64_t restarts = 0; };
// Spark's progress report without input: batch id next_epoch, the sources at offsets, with the metrics of
// their last plan answers (empty for a source that has not answered).
struct publish_idle_progress {
  std::int64_t next_epoch = 0;
  std::vector<std::string> offsets;
  std::vector<std::optional<plan_answer>> answers;
  lifecycle_clock::time_point trigger_start{};
};
// A plan found no new data while nothing was running (process_all_available waits for this).
struct idle_plan { std::uint64_t plan = 0; };
struct publish_status { query_status status; };
// Kill every actor of the dataflow that is still alive (a restart follows once all are down).
struct kill_dataflow {};
// Ask every actor of the dataflow to finish what was sent to it and exit.
struct stop_dataflow {};
// An epoch that did not commit and will be run again: the sinks drop what they hold of it.
struct abort_epoch { std::int64_t epoch = 0; };
enum class timer { tick, poll, restart };
// Call the lifecycle's tick(), poll() or restart_timer() after delay (zero: as the next message).
struct schedule { timer what = timer::poll; std::chrono::milliseconds delay{0}; };
// Publish the end and stop. dataflow_gone: no actor of the dataflow is left, so close the sinks and
// sources first; otherwise (the coordinator itself failed) they may still be in use and are left to
// their last owner.
struct close_query { std::optional<std::string> failure; bool dataflow_gone = true; };
}  // namespace lifecycle_actions

using lifecycle_action =
    std::variant<lifecycle_actions::spawn_dataflow, lifecycle_actions::plan_sources,
                 lifecycle_actions::write_offsets, lifecycle_actions::write_commit, lifecycle_actions::run_epoch,
                 lifecycle_actions::commit_source, lifecycle_actions::publish_progress,
                 lifecycle_actions::publish_idle_progress, lifecycle_actions::idle_plan,
                 lifecycle_actions::publish_status, lifecycle_actions::kill_dataflow,
                 lifecycle_actions::stop_dataflow, lifecycle_actions::abort_epoch, lifecycle_actions::schedule,
                 lifecycle_actions::close_query>;
using lifecycle_actions_list = std::vector<lifecycle_action>;

class query_lifecycle {
 public:
  using time_point = lifecycle_clock::time_point;

  // states: an empty state per slot (the epoch log's), as the dataflow numbers them.
  query_lifecycle(lifecycle_options options, std::vector<std::unique_ptr<operator_state>> states);

  // Before start(), for a query whose durable checkpoint holds earlier epochs: the states given to the
  // constructor were restored as of point.last_committed; start() then re-runs the uncommitted epochs with
  // their logged offsets before planning from where they end.
  void resume(resume_point point);

  // The query begins: spawn the first dataflow and fire the trigger (or re-run what a resumed checkpoint
  // logged but did not commit).
  lifecycle_actions_list start();

  // Timers: the processing-time trigger's tick, the as-fast-as-possible trigger's poll, the end of a
  // restart's backoff.
  lifecycle_actions_list tick(time_point now);
  lifecycle_actions_list poll(time_point now);
  lifecycle_actions_list restart_timer(time_point now);

  // A source said that data arrived after a plan found none (or process_all_available asked): the
  // as-fast-as-possible trigger plans at once, or right after the running plan or epoch.
  lifecycle_actions_list data_arrived(time_point now);

  // Source `source` answered plan number `plan`; once all have, the epoch is planned.
  lifecycle_actions_list plan_answered(std::uint64_t plan, std::size_t source, plan_answer answer, time_point now);
  // The source died before answering plan: its actor's going down starts the recovery.
  void plan_failed(std::uint64_t plan);

  // Sink `sink` of generation committed epoch, with the figures counted along the dataflow and its metrics.
  lifecycle_actions_list sink_committed(std::uint64_t generation, std::size_t sink, std::int64_t epoch,
                                        const epoch_stats& stats, const connector_metrics& sink_metrics,
                                        time_point now);
  // A state slot of generation reported what it changed in epoch.
  lifecycle_actions_list state_changed(std::uint64_t generation, std::int64_t epoch, std::size_t slot, batch changed,
                                       time_point now);
  // An actor of generation failed; permanent: a restart would read the same input and fail the same way.
  lifecycle_actions_list actor_failed(std::uint64_t generation, const std::string& what, bool permanent,
                                      time_point now);
  // An actor of the current dataflow ended (reason: why, as text); last: no actor of it is left.
  lifecycle_actions_list actor_down(const std::string& reason, bool last, time_point now);
  // The dataflow should be placed again (a cluster's worker joined since its placement): once no epoch
  // runs or is being planned, its actors are killed and a new generation is spawned at once from the last
  // committed epoch's state, as after a failure but counted as none; no epoch is planned meanwhile.
  lifecycle_actions_list rebalance();
  // The query handle asked to stop.
  lifecycle_actions_list stop();
  // The coordinator itself threw: the query ends at once, without waiting for the dataflow.
  lifecycle_actions_list crashed(const std::string& what);
  // The epoch's offsets took ms to write (its progress's durationMs.walCommit).
  void offsets_written(std::int64_t epoch, std::int64_t ms) { log_.at(epoch).info.wal_commit_ms = ms; }
  // Writing the checkpoint failed (a full disk, a read-only directory): the query fails with what, even when
  // it had finished without error and is waiting for its actors to end; the actions that followed the
  // failed write must not be carried out.
  lifecycle_actions_list checkpoint_failed(const std::string& what);

  // A state slot as of the last committed epoch, for spawn_dataflow and the checkpoint's snapshots.
  const operator_state& slot_state(std::size_t slot) const { return log_.slot_state(slot); }
  // The same, lent for a row snapshot's copy on the checkpoint's thread (epoch_log::lend_slot_state).
  std::shared_ptr<state_loans::loan> lend_slot_state(std::size_t slot) { return log_.lend_slot_state(slot); }
  std::uint64_t generation() const { return generation_; }
  const query_epoch_log& log() const { return log_; }
  bool finished() const { return finished_; }
  bool closed() const { return closed_; }

 private:
  std::size_t running() const;
  std::size_t epoch_window() const;
  bool plans_ahead() const;
  bool plans_ahead_on_arrival() const;
  bool ends_when_drained() const;
  bool once_done() const;
  void publish_status(std::string message, bool data_available, bool trigger_active);
  void publish_waiting(const std::string& message);
  void spawn();
  void fire(time_point now);
  void planned(std::uint64_t plan, time_point now);
  void run_planned(time_point answered, time_point now);
  void run_held_plan(time_point now);
  void after_idle(time_point now);
  void after_commit(time_point now);
  void wait_for_data(time_point now);
  void wait_for_next_tick(time_point now);
  void log_and_run(std::vector<std::string> start, std::vector<std::string> end, epoch_info info, time_point now);
  bool run_no_data_epoch(time_point now);
  void run_epoch(std::int64_t epoch, time_point now);
  void run_next_replay(time_point now);
  void on_commits(std::vector<std::pair<std::int64_t, query_epoch_log::entry>> done, time_point now);
  void begin_recovery(const std::string& reason, time_point now);
  void rebalance_when_idle();
  void finish(std::optional<std::string> failure);
  void close(bool dataflow_gone = true);
  lifecycle_actions_list take();

  lifecycle_options options_;
  query_epoch_log log_;
  lifecycle_actions_list out_;  // the actions of the event being handled

  std::uint64_t generation_ = 0;
  bool dataflow_alive_ = false;              // some actor of the current generation has not gone down yet
  std::vector<std::string> planned_offsets_;  // per source: end of the newest planned epoch
  std::uint64_t plans_started_ = 0;
  std::vector<std::optional<plan_answer>> answers_;  // to the newest plan, per source
  std::deque<std::int64_t> replay_;                  // logged epochs to run again after a restart
  bool emit_restored_state_ = false;                 // resume_point::emit_restored_state, until done
  bool resumed_epochs_ = false;                      // resume() found uncommitted epochs to re-run
  bool planning_ = false;
  // A plan made ahead while the epoch window was full found data: its epoch runs when one commits (the
  // plan counts as planning until then). held_plan_answered: when its last answer came.
  bool plan_held_ = false;
  time_point held_plan_answered_{};
  bool drained_ = false;  // available-now/once: the sources had nothing more
  bool trigger_pending_ = false;
  bool idle_poll_scheduled_ = false;  // sources_notify: the idle-report interval's poll is scheduled
  // sources_notify: the newest plan found nothing and no epoch was planned since (or, with
  // sources_notify_after_any_plan, the newest plan ran), so every source will notify when data arrives
  // (a commit then needs no plan of its own)
  bool sources_armed_ = false;
  bool stop_requested_ = false;
  bool recovering_ = false;
  bool rebalance_pending_ = false;  // rebalance() asked while epochs ran or a plan did
  bool finished_ = false;  // the query is ending: no more epochs, restarts or reports
  bool closed_ = false;
  std::optional<std::string> outcome_;  // the failure the query ends with

  std::deque<time_point> failures_;  // within the failure window
  std::string last_error_;
  std::int64_t restarts_in_epoch_ = 0;  // restarts since the last commit, reported with the next one
  std::chrono::milliseconds backoff_{0};

  std::optional<time_point> trigger_start_, previous_trigger_start_;  // of the newest plan and the one before
  std::optional<time_point> last_progress_;  // when the last progress report was published
  std::string source_status_;                // why the sources had no data at the last plan
  watermark_tracker watermark_;              // fed by committed epochs
  std::int64_t logged_watermark_ = operator_context::no_watermark;  // the newest logged epoch's
};

}  // namespace flow::runtime
