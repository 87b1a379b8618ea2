// The coordinator actor: a thin shell around flow::runtime::query_lifecycle. It turns messages into the
// lifecycle's events and carries out the actions the lifecycle returns (messages to the dataflow, the
// sinks' and sources' calls, publishing to query_shared); it decides nothing itself.
#include "coordinator.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <iostream>
#include <set>

#include "cluster_driver.hpp"
#include "dataflow.hpp"
#include "progress_report.hpp"
#include "flow/graph_description.hpp"
#include "flow/graph_fingerprint.hpp"
#include "flow/plan_logging_source.hpp"
#include "flow/runtime/checkpoint_writer.hpp"
#include "flow/runtime/query_lifecycle.hpp"

namespace flow::runtime {

namespace {

namespace act = lifecycle_actions;

// An epoch's offsets handed to the writer, for its durationMs.walCommit.
struct offsets_in_writing {
  std::uint64_t job = 0;
  std::int64_t epoch = 0;
  lifecycle_clock::time_point handed_over{};
};

struct coordinator_state {
  query_setup setup;
  std::shared_ptr<checkpoint_store> checkpoint;  // null: no durable checkpoint
  // The checkpoint's writes run on the writer's thread (declared after checkpoint: it goes first). Every
  // action that follows a write waits, in order, until that write is durable.
  std::unique_ptr<checkpoint_writer> writer;
  std::uint64_t handed_over = 0;  // the newest write job given to the writer
  std::uint64_t durable = 0;      // every write job up to this one is durable
  std::deque<std::pair<std::uint64_t, lifecycle_action>> waiting;  // (write job awaited, action)
  std::deque<offsets_in_writing> offsets_writing;
  // Every epoch up to this one has its offsets durable: its sinks may commit it (release_sinks).
  std::int64_t offsets_durable = -1;
  bool writes_stopped = false;  // a write failed, or the coordinator is ending: nothing awaits a write
  // The query closed (the coordinator quit): actions that a list or the waiting queue still holds are
  // dropped. A failed spawn closes the query from inside a list.
  bool closed = false;
  std::optional<query_lifecycle> lifecycle;
  std::optional<progress_reporter> reporter;
  running_graph dataflow;
  std::set<caf::actor_addr> alive;  // actors of the current dataflow not down yet
  std::vector<std::size_t> placed_slots;  // the workers' slots the dataflow was placed over (a cluster's)
  // Per source: the end offset of its newest plan with data and the plan record that came with it.
  std::vector<std::pair<std::string, std::string>> plan_records;
};

using coordinator_pointer = coordinator_actor::stateful_pointer<coordinator_state>;

void perform(coordinator_pointer self, lifecycle_actions_list actions, lifecycle_clock::time_point now);

// The sinks may commit every epoch whose offsets are durable.
void release_sinks(coordinator_pointer self) {
  auto& st = self->state;
  if (st.offsets_durable < 0) return;
  for (const auto& sink : st.dataflow.sinks) self->send(sink, release_atom::value, st.offsets_durable);
}

// Carries out one action of the lifecycle.
struct performer {
  coordinator_pointer self;
  lifecycle_clock::time_point now;

  coordinator_state& st() const { return self->state; }

  void operator()(const act::spawn_dataflow& a) const {
    graph_setup setup;
    setup.graph = st().setup.graph;
    setup.readers = st().setup.readers;
    setup.writers = st().setup.writers;
    setup.credits_per_instance = st().setup.credits_per_instance;
    setup.states = {st().setup.state_backend, generation_directory(a.generation)};
    setup.sinks_await_release = st().checkpoint != nullptr;
    // The previous generation's actors are all down: its working files are of no use any more.
    if (a.generation > 1 && !st().setup.state_directory.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(generation_directory(a.generation - 1), ignored);
    }
    // The instances restore from copies as of the last commit: rows, or directories in this generation's
    // (hard links to the coordinator's copy: a large on-disk state never passes through memory).
    // Instances on a worker get rows: the driver's directories are not visible there.
    const std::string copies = generation_directory(a.generation) + "/restored";
    auto& lifecycle = *st().lifecycle;
    st().alive.clear();
    std::optional<remote_placement> remote;
    if (auto cluster = st().setup.cluster) {
      // A graph that cannot be shipped (rows in this process's memory, an operator without a descriptor)
      // runs here, as embedded.
      std::optional<graph_description> description;
      try {
        description = describe(*setup.graph);
      } catch (const std::exception& e) {
        if (a.generation == 1) std::cerr << "libflow: the query runs in the driver, not on the workers: " << e.what() << "\n";
      }
      if (description) {
        try {
          remote.emplace();
          st().placed_slots = cluster->available_slots();
          remote->placement = instance_placement(*setup.graph, st().placed_slots, self_reading_sources(setup));
          remote->deploy = [cluster, graph = std::move(*description)](std::size_t worker, const instance_setup& instance) {
            return cluster->deploy(worker, graph, instance);
          };
        } catch (const std::exception& e) {
          return spawn_failed(a.generation, e.what(), true);
        }
      }
    }
    try {
      st().dataflow = spawn_graph(
          self->system(), setup,
          [&](std::size_t slot, bool as_rows) {
            const auto& state = lifecycle.slot_state(slot);
            if (as_rows) return state_copy(state.snapshot());
            return copy_state(state, copies + "/slot-" + std::to_string(slot));
          },
          supervision{coordinator_actor{self}, a.generation}, remote ? &*remote : nullptr);
    } catch (const std::exception& e) {
      // A worker lost since the placement, or refusing: a failure of this generation like an actor's.
      return spawn_failed(a.generation, e.what(), false);
    }
    for (const auto& handle : st().dataflow.handles()) {
      self->monitor(handle);
      st().alive.insert(handle.address());
    }
    if (st().checkpoint) release_sinks(self);
  }

  // The generation has no actors (spawn_graph ended those it had spawned): its failure, then its end.
  void spawn_failed(std::uint64_t generation, const std::string& what, bool permanent) const {
    st().dataflow = running_graph{};
    auto& lifecycle = *st().lifecycle;
    perform(self, lifecycle.actor_failed(generation, "starting the dataflow: " + what, permanent, now), now);
    perform(self, lifecycle.actor_down(what, true, now), now);
  }

  std::string generation_directory(std::uint64_t generation) const {
    return st().setup.state_directory + "/generation-" + std::to_string(generation);
  }

  void operator()(const act::plan_sources& a) const {
    st().setup.shared->update([&](query_shared& shared) { shared.plans_started = a.plan; });
    const auto coordinator = self;
    const auto plan = a.plan;
    for (std::size_t i = 0; i < st().dataflow.readers.size(); ++i)
      self->request(st().dataflow.readers[i], caf::infinite, plan_atom::value, a.from.at(i))
          .then(
              [=](int outcome, std::string& text, std::vector<std::string>& metric_names,
                  std::vector<std::int64_t>& metric_values) {
                if (outcome > 0) {  // metric_names: its plan record, if any (for write_offsets)
                  auto& planned = coordinator->state.plan_records.at(i);
                  planned = {text, metric_names.empty() ? std::string() : std::move(metric_names.front())};
                  metric_names.clear();
                }
                plan_answer answer{outcome, std::move(text), std::move(metric_names), std::move(metric_values)};
                const auto at = lifecycle_clock::now();
                perform(coordinator, coordinator->state.lifecycle->plan_answered(plan, i, std::move(answer), at), at);
              },
              // The source died while planning: its down message starts the recovery.
              [=](const caf::error&) { coordinator->state.lifecycle->plan_failed(plan); });
  }

  // Handed to the writer at once, so that the writes of several epochs share a sync round.
  void operator()(const act::write_offsets& a) const {
    if (st().writes_stopped) return;
    std::vector<std::string> plans(a.end.size());
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const auto& [end, record] = st().plan_records.at(i);
      if (a.start[i] != a.end[i] && end == a.end[i]) plans[i] = record;
    }
    st().handed_over =
        st().writer->submit(st().checkpoint->offsets_job({a.epoch, a.start, a.end, a.watermark, a.processing_time, std::move(plans)}));
    st().offsets_writing.push_back({st().handed_over, a.epoch, lifecycle_clock::now()});
  }
  void operator()(act::write_commit& a) const {
    if (st().writes_stopped) return;
    auto& lifecycle = *st().lifecycle;
    // Several epochs committed by one event leave the log's state as of the newest: an older one's
    // snapshot waits for a later commit.
    const auto epoch = a.epoch;
    // Rows are copied on the store's snapshot thread from the state lent to it, not on this one.
    auto snapshot = [&](std::size_t slot) -> std::optional<due_snapshot> {
      if (lifecycle.log().last_committed() != epoch) return std::nullopt;
      if (!lifecycle.slot_state(slot).snapshots_to_directory())
        return due_snapshot([loan = lifecycle.lend_slot_state(slot)] { return loan->copy(); });
      return st().checkpoint->stage_snapshot(slot, epoch, lifecycle.slot_state(slot));
    };
    st().handed_over = st().writer->submit(st().checkpoint->commit_job(a.epoch, std::move(a.changes), snapshot));
  }

  void operator()(const act::run_epoch& a) const {
    for (std::size_t i = 0; i < st().dataflow.readers.size(); ++i)
      self->send(st().dataflow.readers[i], run_atom::value, a.epoch, a.start.at(i), a.end.at(i), a.watermark,
                 a.processing_time);
  }

  void operator()(const act::commit_source& a) const {
    self->send(st().dataflow.readers.at(a.source), commit_atom::value, a.end);
  }

  void operator()(act::publish_progress& a) const {
    const auto written = st().checkpoint ? st().checkpoint->commit_stats(a.epoch) : std::nullopt;
    st().reporter->epoch_committed(std::move(a), now, written ? &*written : nullptr);
    // A worker that joined since the placement takes instances from the next generation on.
    if (st().setup.cluster && !st().placed_slots.empty() && st().setup.cluster->joined_since(st().placed_slots))
      perform(self, st().lifecycle->rebalance(), now);
  }
  void operator()(const act::publish_idle_progress& a) const { st().reporter->idle(a, now); }

  void operator()(const act::idle_plan& a) const {
    st().setup.shared->update([&](query_shared& shared) { shared.last_idle_plan = a.plan; });
  }

  void operator()(const act::publish_status& a) const {
    st().setup.shared->update([&](query_shared& shared) { shared.status = a.status; });
  }

  void operator()(const act::kill_dataflow&) const {
    for (const auto& handle : st().dataflow.handles())
      if (st().alive.count(handle.address())) self->send_exit(handle, caf::exit_reason::kill);
  }

  void operator()(const act::stop_dataflow&) const {
    for (const auto& handle : st().dataflow.handles()) self->send_exit(handle, caf::exit_reason::user_shutdown);
  }

  void operator()(const act::abort_epoch& a) const {
    for (auto& writer : st().setup.writers) writer->abort(a.epoch);
  }

  void operator()(const act::schedule& a) const {
    switch (a.what) {
      case act::timer::tick: return after(a.delay, tick_atom::value);
      case act::timer::poll: return after(a.delay, poll_atom::value);
      case act::timer::restart: return after(a.delay, restart_atom::value);
    }
  }

  template <class Atom>
  void after(std::chrono::milliseconds delay, Atom atom) const {
    if (delay.count() == 0) self->send(self, atom);
    else self->delayed_send(self, delay, atom);
  }

  // Closes the sinks and the sources (once no actor of the dataflow is left, so none is still writing to a
  // sink or reading a source) and publishes how the query ended.
  void operator()(const act::close_query& a) const {
    auto failure = a.failure;
    if (a.dataflow_gone) close_connectors(failure);
    remove_state_files();
    if (st().checkpoint && !st().writes_stopped) {
      // No error unless every write is durable: a failed background snapshot is otherwise reported only by
      // a next commit, and the writer's destructor drops the jobs it has not started.
      auto unwritten = st().writer->finish();
      if (!unwritten) unwritten = st().checkpoint->finish_snapshots();
      if (unwritten && !failure) failure = *unwritten;
    }
    st().writer.reset();
    st().checkpoint.reset();  // its lock: the same location may be started again as soon as this query ends
    st().setup.shared->update([&](query_shared& shared) {
      shared.active = false;
      shared.coordinator = nullptr;
      shared.failure = failure;
      shared.status = {failure ? "Terminated with exception: " + *failure : "Stopped", false, false};
    });
    st().closed = true;
    self->quit();
  }

  // The backend's working files (the checkpoint, if any, holds what must survive). Files still open
  // (a crashed coordinator's dataflow) live on until closed.
  void remove_state_files() const {
    if (st().setup.state_directory.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(st().setup.state_directory, ignored);
  }

  void close_connectors(std::optional<std::string>& failure) const {
    for (auto& writer : st().setup.writers) {
      try {
        writer->close();
      } catch (const std::exception& e) {
        if (!failure) failure = std::string("closing the query: ") + e.what();
      }
    }
    for (auto& reader : st().setup.readers) {
      try {
        reader->stop();
      } catch (const std::exception& e) {
        if (!failure) failure = std::string("closing the query: ") + e.what();
      }
    }
  }
};

// Actions that never wait for the checkpoint's writes: the writes themselves (handed over at once, so that
// several epochs share a round), and asking the sources for new offsets, which changes nothing a crash
// could expose and lets the next epochs' offsets join the round under way.
bool runs_at_once(const lifecycle_action& action) {
  return std::holds_alternative<act::write_offsets>(action) || std::holds_alternative<act::write_commit>(action) ||
         std::holds_alternative<act::plan_sources>(action);
}

// Actions that only report or let a source free committed data: an epoch's run may pass them.
bool reports_only(const lifecycle_action& action) {
  return std::holds_alternative<act::publish_progress>(action) ||
         std::holds_alternative<act::publish_idle_progress>(action) ||
         std::holds_alternative<act::idle_plan>(action) || std::holds_alternative<act::publish_status>(action) ||
         std::holds_alternative<act::commit_source>(action);
}

// An epoch runs before its offsets (and earlier commits) are durable: its sinks commit it only once its
// offsets are (release_sinks), so the offsets' sync overlaps the epoch's work instead of preceding it. It
// still waits behind anything that changes the dataflow (a spawn, kill, stop, abort) or an earlier run.
bool may_run_early(const coordinator_state& st, const lifecycle_action& action) {
  return std::holds_alternative<act::run_epoch>(action) &&
         std::all_of(st.waiting.begin(), st.waiting.end(), [](const auto& w) { return reports_only(w.second); });
}

void writes_failed(coordinator_pointer self, const std::string& what, lifecycle_clock::time_point now);

void perform(coordinator_pointer self, lifecycle_actions_list actions, lifecycle_clock::time_point now) {
  auto& st = self->state;
  for (std::size_t i = 0; i < actions.size(); ++i) {
    auto& action = actions[i];
    if (st.closed) return;
    const bool must_wait = !st.writes_stopped && (st.durable < st.handed_over || !st.waiting.empty());
    if (must_wait && !runs_at_once(action) && !may_run_early(st, action)) {
      st.waiting.emplace_back(st.handed_over, std::move(action));
      continue;
    }
    try {
      std::visit(performer{self, now}, action);
    } catch (const std::exception& e) {
      // Only a hand-over to the writer throws here (a snapshot staged on this thread: a full disk, a
      // read-only state directory). What follows it waits as if the write had been handed over and failed.
      if (!std::holds_alternative<act::write_commit>(action) && !std::holds_alternative<act::write_offsets>(action))
        throw;
      for (std::size_t j = i + 1; j < actions.size(); ++j) st.waiting.emplace_back(st.handed_over, std::move(actions[j]));
      return writes_failed(self, e.what(), now);
    }
  }
}

// The writer made every job up to `through` durable: the actions waiting for them follow, in order.
void writes_durable(coordinator_pointer self, std::uint64_t through, lifecycle_clock::time_point now) {
  auto& st = self->state;
  st.durable = through;
  const auto released = st.offsets_durable;
  while (!st.offsets_writing.empty() && st.offsets_writing.front().job <= through) {
    const auto& written = st.offsets_writing.front();
    st.lifecycle->offsets_written(written.epoch, millis_between(written.handed_over, now));
    st.offsets_durable = std::max(st.offsets_durable, written.epoch);
    st.offsets_writing.pop_front();
  }
  if (st.offsets_durable != released) release_sinks(self);
  while (!st.closed && !st.waiting.empty() && st.waiting.front().first <= through) {
    auto action = std::move(st.waiting.front().second);
    st.waiting.pop_front();
    std::visit(performer{self, now}, action);
  }
}

// What must not follow a write that never became durable: running an epoch whose offsets are not logged,
// letting a source free data, reporting a commit.
bool needs_durable_writes(const lifecycle_action& action) {
  return std::holds_alternative<act::run_epoch>(action) || std::holds_alternative<act::commit_source>(action) ||
         std::holds_alternative<act::publish_progress>(action) ||
         std::holds_alternative<act::publish_idle_progress>(action) || std::holds_alternative<act::idle_plan>(action);
}

// A write failed (a full disk, a read-only directory): the query fails with what. Of the waiting actions
// those that relied on the writes are dropped; the others (the dataflow's spawn, stop or kill, the close)
// are carried out, so that the query still ends.
void writes_failed(coordinator_pointer self, const std::string& what, lifecycle_clock::time_point now) {
  auto& st = self->state;
  st.writes_stopped = true;
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& [job, action] : waiting) {
    if (st.closed) return;
    if (needs_durable_writes(action)) continue;
    if (auto* close = std::get_if<act::close_query>(&action); close && !close->failure) close->failure = what;
    std::visit(performer{self, now}, action);
  }
  perform(self, st.lifecycle->checkpoint_failed(what), now);
}

// What start_query prepared from a durable checkpoint: the states restored as of its last commit, and
// where to resume.
struct recovery {
  std::shared_ptr<checkpoint_store> store;
  std::vector<std::unique_ptr<operator_state>> states;  // state_slots(), restored
  resume_point point;
  std::vector<std::vector<std::string>> source_plans;  // per source: for plan_logging_source::restore_plans
};

coordinator_actor::behavior_type coordinator(coordinator_pointer self, query_setup setup,
                                             std::vector<std::string> initial_offsets,
                                             std::shared_ptr<recovery> recovered) {
  auto& st = self->state;
  st.setup = std::move(setup);
  if (st.setup.cluster) self->attach_functor(st.setup.cluster->coordinator_started());
  st.checkpoint = recovered->store;
  st.plan_records.resize(initial_offsets.size());
  lifecycle_options options = st.setup.lifecycle;
  for (const auto& reader : st.setup.readers) options.source_descriptions.push_back(reader->description());
  options.initial_offsets = std::move(initial_offsets);
  options.sinks = st.setup.writers.size();
  options.watermark_delays = watermark_delays(*st.setup.graph);
  std::vector<std::string> sink_descriptions;
  for (const auto& writer : st.setup.writers) sink_descriptions.push_back(writer->description());
  st.reporter.emplace(st.setup.shared, *st.setup.graph, options.source_descriptions, std::move(sink_descriptions),
                      st.setup.progress_history);
  options.durable = st.checkpoint != nullptr;
  // Sources that say when data arrives spare the idle query its polls (weak: a source must not keep the
  // coordinator alive). Every source is asked, and only if all can tell does the poll stop.
  const caf::actor_addr notified = self->address();
  options.sources_notify = true;
  options.sources_notify_after_any_plan = true;
  for (const auto& reader : st.setup.readers) {
    const bool notifies = reader->notify_when_data([notified] {
      if (auto coordinator = caf::actor_cast<coordinator_actor>(notified)) caf::anon_send(coordinator, arrived_atom::value);
    });
    options.sources_notify = options.sources_notify && notifies;
    options.sources_notify_after_any_plan = options.sources_notify_after_any_plan && reader->notifies_after_any_plan();
  }
  if (st.checkpoint) {
    const caf::actor_addr coordinator_address = self->address();  // weak: the writer must not keep it alive
    auto on_round = [=](const checkpoint_writer::round_report& r) {
      if (auto coordinator = caf::actor_cast<coordinator_actor>(coordinator_address))
        caf::anon_send(coordinator, durable_atom::value, r.durable_through, r.failure.has_value(),
                       r.failure.value_or(""));
    };
    st.writer = std::make_unique<checkpoint_writer>("checkpoint", std::move(on_round), st.checkpoint->appender());
  }
  // Epochs the checkpoint logged are durable: a re-run of them may commit at once.
  st.offsets_durable = recovered->point.uncommitted.empty() ? recovered->point.last_committed
                                                             : recovered->point.uncommitted.back().epoch;
  st.lifecycle.emplace(std::move(options), std::move(recovered->states));
  st.lifecycle->resume(std::move(recovered->point));
  // A bug in the coordinator must end the query visibly, never leave its handle waiting forever.
  self->set_exception_handler([=](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    // The coordinator ends now: it cannot wait for its checkpoint writes either.
    self->state.writes_stopped = true;
    perform(self, self->state.lifecycle->crashed(exception_message(eptr)), lifecycle_clock::now());
    return caf::sec::runtime_error;
  });
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& s = self->state;
    if (!s.alive.erase(msg.source)) return;
    const auto now = lifecycle_clock::now();
    perform(self,
            s.lifecycle->actor_down("an actor of the dataflow ended: " + self->system().render(msg.reason),
                                    s.alive.empty(), now),
            now);
  });
  perform(self, st.lifecycle->start(), lifecycle_clock::now());

  const auto now = [] { return lifecycle_clock::now(); };
  return {
      [=](tick_atom) {
        const auto at = now();
        perform(self, self->state.lifecycle->tick(at), at);
      },
      [=](poll_atom) {
        const auto at = now();
        perform(self, self->state.lifecycle->poll(at), at);
      },
      [=](arrived_atom) {
        const auto at = now();
        perform(self, self->state.lifecycle->data_arrived(at), at);
      },
      [=](committed_atom, std::uint64_t generation, std::uint32_t sink, std::int64_t epoch, const epoch_stats& stats,
          const std::vector<std::string>& names, const std::vector<std::int64_t>& values) {
        connector_metrics sink_metrics;
        for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) sink_metrics.emplace_back(names[i], values[i]);
        const auto at = now();
        perform(self, self->state.lifecycle->sink_committed(generation, sink, epoch, stats, sink_metrics, at), at);
      },
      [=](state_changes_atom, std::uint64_t generation, std::int64_t epoch, std::uint64_t slot, const batch& changed) {
        const auto at = now();
        perform(self, self->state.lifecycle->state_changed(generation, epoch, static_cast<std::size_t>(slot), changed, at),
                at);
      },
      [=](failed_atom, std::uint64_t generation, const std::string& what, bool permanent) {
        const auto at = now();
        perform(self, self->state.lifecycle->actor_failed(generation, what, permanent, at), at);
      },
      [=](restart_atom) {
        const auto at = now();
        perform(self, self->state.lifecycle->restart_timer(at), at);
      },
      [=](stop_atom) { perform(self, self->state.lifecycle->stop(), now()); },
      [=](durable_atom, std::uint64_t through, bool failed, const std::string& what) {
        if (self->state.writes_stopped) return;
        if (failed) writes_failed(self, what, now());
        else writes_durable(self, through, now());
      },
  };
}

// Opens the query's checkpoint (creating it on the first run): refuses a query that is not the one the
// checkpoint was written for, restores the states and says where to resume. The query keeps its id.
void open_checkpoint(query_setup& setup, const std::optional<checkpoint_metadata>& metadata, recovery& recovered) {
  auto& store = recovered.store;
  std::vector<std::string> identities;
  for (const auto& reader : setup.readers) identities.push_back(reader->identity());
  const std::string fingerprint = graph_fingerprint(*setup.graph, identities);
  if (metadata) {
    if (auto why = checkpoint_incompatibility(metadata->graph, fingerprint, store->directory())) throw error(*why);
    setup.shared->id = metadata->query_id;
    // An older version's records stay readable; what this run writes is of this version.
    if (metadata->version != checkpoint_store::format_version)
      store->write_metadata({checkpoint_store::format_version, metadata->query_id, metadata->graph});
  } else {
    store->write_metadata({checkpoint_store::format_version, setup.shared->id, fingerprint});
  }
  std::vector<operator_state*> states;
  for (auto& state : recovered.states) states.push_back(state.get());
  auto checkpoint = store->recover(std::move(states));
  for (const auto& note : checkpoint.notes) std::cerr << "libflow: " << note << "\n";
  recovered.point.last_committed = checkpoint.last_committed;
  recovered.point.committed_end = std::move(checkpoint.committed_end);
  recovered.point.uncommitted = std::move(checkpoint.uncommitted);
  recovered.point.committed_watermark = checkpoint.committed_watermark;
  recovered.source_plans = std::move(checkpoint.source_plans);
  for (auto k : setup.graph->sinks())
    if (setup.graph->vertex(k).sink.mode == output_mode::complete) recovered.point.emit_restored_state = true;
}

}  // namespace

std::shared_ptr<query_control> start_query(caf::actor_system& sys, query_setup setup) {
  // Done here, in the caller's thread, so that a bad graph, sink or source option fails start() itself.
  auto recovered = std::make_shared<recovery>();
  std::optional<checkpoint_metadata> metadata;
  if (!setup.checkpoint_location.empty()) {
    recovered->store = std::make_shared<checkpoint_store>(setup.checkpoint_location, setup.checkpoint);
    metadata = recovered->store->read_metadata();
    // Vertices that set no parallelism keep the checkpoint's (its state is partitioned by it), as Spark
    // keeps a checkpoint's number of shuffle partitions.
    if (metadata)
      if (auto kept = checkpoint_parallelism(metadata->graph, recovered->store->directory())) setup.parallelism = *kept;
  }
  setup.graph->resolve_parallelism(setup.parallelism);
  // Holding the checkpoint's lock, no other run uses it: working files of earlier runs in it can go.
  if (recovered->store && !setup.state_directory.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(std::filesystem::path(setup.state_directory).parent_path(), ignored);
  }
  setup.graph->validate();
  const auto sources = setup.graph->sources();
  const auto sinks = setup.graph->sinks();
  if (setup.readers.size() != sources.size() || setup.writers.size() != sinks.size())
    throw error("start_query: the graph has " + std::to_string(sources.size()) + " sources and " +
                std::to_string(sinks.size()) + " sinks, but " + std::to_string(setup.readers.size()) + " readers and " +
                std::to_string(setup.writers.size()) + " writers were given");
  recovered->states = state_slots(*setup.graph, {setup.state_backend, setup.state_directory + "/checkpoint-copy"});
  if (recovered->store) open_checkpoint(setup, metadata, *recovered);
  std::vector<std::string> initial_offsets;
  for (std::size_t i = 0; i < setup.readers.size(); ++i) {
    auto& reader = setup.readers[i];
    reader->set_rate_limits_enabled(setup.lifecycle.trigger.kind != trigger_kind::once);
    reader->set_max_unit_bytes(setup.max_unit_bytes);
    if (recovered->store) {
      reader->use_checkpoint(recovered->store->source_directory(i));
      if (auto* logging = dynamic_cast<plan_logging_source*>(reader.get()); logging && i < recovered->source_plans.size())
        logging->restore_plans(recovered->source_plans[i]);
    }
    initial_offsets.push_back(reader->initial_offset());
  }
  for (std::size_t k = 0; k < sinks.size(); ++k) {
    const auto& vertex = setup.graph->vertex(sinks[k]);
    if (recovered->store) setup.writers[k]->use_checkpoint(recovered->store->sink_directory(k));
    setup.writers[k]->open(vertex.input, vertex.sink.mode, vertex.sink_keys);
  }
  auto shared = setup.shared;
  // A snapshot blocks for a while (a directory snapshot's copy; a change waiting for a lent state's copy):
  // such a coordinator gets a thread of its own.
  // A driver's coordinator waits for its workers' answers when it deploys a dataflow: likewise.
  auto handle = recovered->store || setup.cluster
                    ? sys.spawn<caf::detached>(coordinator, std::move(setup), std::move(initial_offsets), recovered)
                    : sys.spawn(coordinator, std::move(setup), std::move(initial_offsets), recovered);
  return make_query_control(handle, std::move(shared));
}

}  // namespace flow::runtime
