#include "dataflow.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <map>
#include <optional>

namespace flow::runtime {

namespace {

// Reports the exception to the coordinator (which restarts the dataflow, or fails the query for a
// permanent error) and ends the actor.
template <class Self>
void report_failures(Self* self, const supervision& sup, std::string role) {
  self->set_exception_handler([sup, role](caf::scheduled_actor* actor, std::exception_ptr& eptr) -> caf::error {
    caf::anon_send(sup.coordinator, failed_atom::value, sup.generation, role + ": " + exception_message(eptr),
                   is_permanent(eptr));
    (void)actor;
    return caf::sec::runtime_error;
  });
}

// Several epochs may be in flight: an upstream instance may already send epoch N+1 while another
// still sends N. The aligner hands on data of the oldest open epoch at once, holds back later epochs'
// data, and completes an epoch when every upstream instance has sent its barrier (Flink's alignment).
class epoch_aligner {
 public:
  explicit epoch_aligner(std::size_t upstream_count) : upstream_count_(upstream_count) {}

  template <class OnData>
  void data(std::int64_t epoch, std::uint64_t seq, const batch& rows, OnData&& on_data) {
    if (!active_) active_ = epoch;
    if (epoch == *active_) on_data(epoch, seq, rows);
    else waiting_[epoch].data.emplace_back(seq, rows);
  }

  template <class OnData, class OnComplete>
  void barrier(std::int64_t epoch, const epoch_stats& stats, OnData&& on_data, OnComplete&& on_complete) {
    if (!active_) active_ = epoch;
    auto& open = waiting_[epoch];
    ++open.barriers;
    open.stats.add(stats);
    while (active_ && waiting_[*active_].barriers == upstream_count_) {
      std::int64_t done = *active_;
      epoch_stats done_stats = waiting_[done].stats;
      waiting_.erase(done);
      on_complete(done, done_stats);
      if (waiting_.empty()) {
        active_.reset();
        break;
      }
      active_ = waiting_.begin()->first;
      auto held = std::move(waiting_.begin()->second.data);
      waiting_.begin()->second.data.clear();
      for (const auto& [seq, rows] : held) on_data(*active_, seq, rows);
    }
  }

 private:
  struct open_epoch {
    std::vector<std::pair<std::uint64_t, batch>> data;
    std::size_t barriers = 0;
    epoch_stats stats;
  };
  std::size_t upstream_count_;
  std::optional<std::int64_t> active_;
  std::map<std::int64_t, open_epoch> waiting_;
};

// ---------------------------------------------------------------- source

struct source_state {
  std::shared_ptr<source_reader> reader;
  std::vector<caf::actor> stages;
  std::vector<std::size_t> credits;
  std::size_t next_stage = 0;
  std::int64_t epoch = -1;
  std::uint64_t next_seq = 0;  // position of the next unit in the epoch: sinks keep source order
  bool reading = false;
  struct run_request {
    std::int64_t epoch;
    std::string start, end;
  };
  std::deque<run_request> queued;  // epochs asked for while another is being read
  supervision sup;
};

void start_next_run(caf::stateful_actor<source_state>* self);

// Hands units to stages that have credit, round-robin; ends the epoch with a barrier to every stage.
void pump(caf::stateful_actor<source_state>* self) {
  auto& st = self->state;
  const std::size_t n = st.stages.size();
  while (st.reading) {
    std::size_t target = n;
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = (st.next_stage + k) % n;
      if (st.credits[i] > 0) {
        target = i;
        break;
      }
    }
    if (target == n) return;  // every stage is busy: wait for an ack
    auto unit = st.reader->next();
    if (!unit) {
      st.reading = false;
      epoch_stats with_metrics;
      for (auto& [name, v] : st.reader->metrics()) {
        with_metrics.source_metric_names.push_back(name);
        with_metrics.source_metric_values.push_back(v);
      }
      for (std::size_t i = 0; i < n; ++i)
        self->send(st.stages[i], barrier_atom::value, st.epoch, i == 0 ? with_metrics : epoch_stats{});
      return start_next_run(self);
    }
    --st.credits[target];
    st.next_stage = (target + 1) % n;
    auto seq = st.next_seq++;
    if (auto* b = std::get_if<batch>(&*unit))
      self->send(st.stages[target], data_atom::value, st.epoch, seq, std::move(*b));
    else
      self->send(st.stages[target], data_atom::value, st.epoch, seq, std::move(std::get<raw_chunk>(*unit)));
  }
}

void start_next_run(caf::stateful_actor<source_state>* self) {
  auto& st = self->state;
  if (st.reading || st.queued.empty()) return;
  auto run = std::move(st.queued.front());
  st.queued.pop_front();
  st.epoch = run.epoch;
  st.next_seq = 0;
  st.reader->begin_read(run.start, run.end);
  st.reading = true;
  pump(self);
}

caf::behavior source_actor(caf::stateful_actor<source_state>* self, std::shared_ptr<source_reader> reader,
                           std::vector<caf::actor> stages, std::size_t credits_per_stage, supervision sup) {
  auto& st = self->state;
  st.reader = std::move(reader);
  st.stages = std::move(stages);
  st.credits.assign(st.stages.size(), credits_per_stage);
  st.sup = sup;
  report_failures(self, sup, "source " + st.reader->description());
  return {
      // Outcome 1: data up to the returned offset; 0: nothing new, with the source's status (why not)
      // and metrics for the idle progress report; -1: the source is broken (message).
      [=](plan_atom, const std::string& start)
          -> caf::result<int, std::string, std::vector<std::string>, std::vector<std::int64_t>> {
        auto& reader = *self->state.reader;
        using names_t = std::vector<std::string>;
        using values_t = std::vector<std::int64_t>;
        try {
          if (auto end = reader.latest_offset(start)) return {1, *end, names_t{}, values_t{}};
          names_t names;
          values_t values;
          for (auto& [name, v] : reader.metrics()) {
            names.push_back(name);
            values.push_back(v);
          }
          return {0, reader.status(), std::move(names), std::move(values)};
        } catch (const std::exception& e) {
          return {-1, reader.description() + ": " + e.what(), names_t{}, values_t{}};
        }
      },
      [=](run_atom, std::int64_t epoch, const std::string& start, const std::string& end) {
        self->state.queued.push_back({epoch, start, end});
        start_next_run(self);
      },
      [=](ack_atom) {
        auto sender = caf::actor_cast<caf::actor>(self->current_sender());
        auto& s = self->state;
        for (std::size_t i = 0; i < s.stages.size(); ++i)
          if (s.stages[i] == sender) ++s.credits[i];
        pump(self);
      },
      [=](commit_atom, const std::string& end) { self->state.reader->commit(end); },
  };
}

// ---------------------------------------------------------------- stage

struct stage_state {
  std::shared_ptr<const decoder> chunk_decoder;
  std::shared_ptr<const pipeline> pre;
  std::shared_ptr<const aggregate_operator> aggregate;
  std::unique_ptr<aggregate_state> partial;
  std::vector<caf::actor> downstream;
  epoch_stats stats;
};

constexpr std::size_t partial_flush_groups = 1 << 16;

void flush_partial(caf::stateful_actor<stage_state>* self, std::int64_t epoch) {
  auto& st = self->state;
  if (!st.partial || st.partial->num_groups() == 0) return;
  auto parts = st.aggregate->partition(st.partial->snapshot(), st.downstream.size());
  st.partial->clear();
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (parts[i].num_rows() > 0) self->send(st.downstream[i], data_atom::value, epoch, std::uint64_t{0}, std::move(parts[i]));
}

void process(caf::stateful_actor<stage_state>* self, std::int64_t epoch, std::uint64_t seq, const batch& input) {
  auto& st = self->state;
  batch out = st.pre->run(input);
  if (out.num_rows() == 0) return;
  if (st.aggregate) {
    st.partial->update(out);
    if (st.partial->num_groups() >= partial_flush_groups) flush_partial(self, epoch);
  } else {
    st.stats.output_rows += static_cast<std::int64_t>(out.num_rows());
    self->send(st.downstream.front(), data_atom::value, epoch, seq, std::move(out));
  }
}

caf::behavior stage_actor(caf::stateful_actor<stage_state>* self, std::shared_ptr<const decoder> chunk_decoder,
                          std::shared_ptr<const pipeline> pre, std::shared_ptr<const aggregate_operator> aggregate,
                          std::vector<caf::actor> downstream, supervision sup) {
  auto& st = self->state;
  st.chunk_decoder = std::move(chunk_decoder);
  st.pre = std::move(pre);
  st.aggregate = std::move(aggregate);
  if (st.aggregate) st.partial = st.aggregate->make_state();
  st.downstream = std::move(downstream);
  report_failures(self, sup, "stage");
  return {
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, const raw_chunk& chunk) {
        auto& s = self->state;
        if (!s.chunk_decoder) throw error("stage received raw records but the source has no decoder");
        decode_stats ds;
        batch decoded = s.chunk_decoder->decode(chunk, ds);
        s.stats.input_rows += static_cast<std::int64_t>(ds.rows);
        s.stats.malformed_rows += static_cast<std::int64_t>(ds.malformed);
        s.stats.input_bytes += static_cast<std::int64_t>(chunk.end - chunk.begin);
        process(self, epoch, seq, decoded);
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), ack_atom::value);
      },
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, const batch& input) {
        auto& s = self->state;
        s.stats.input_rows += static_cast<std::int64_t>(input.num_rows());
        s.stats.input_bytes += static_cast<std::int64_t>(input.byte_size());
        process(self, epoch, seq, input);
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), ack_atom::value);
      },
      [=](barrier_atom, std::int64_t epoch, const epoch_stats& upstream) {
        auto& s = self->state;
        flush_partial(self, epoch);
        s.stats.add(upstream);
        for (auto& next : s.downstream) {
          self->send(next, barrier_atom::value, epoch, s.stats);
          s.stats = epoch_stats{};  // counted once, at the first downstream actor
        }
      },
  };
}

// ---------------------------------------------------------------- aggregate

struct aggregate_actor_state {
  std::shared_ptr<const aggregate_operator> aggregate;
  std::unique_ptr<aggregate_state> table;
  std::shared_ptr<const pipeline> post;
  output_mode mode = output_mode::complete;
  caf::actor sink;
  std::optional<epoch_aligner> inputs;
  std::size_t partition = 0;
  supervision sup;
};

// Sends the epoch's state changes to the coordinator, emits the epoch's result to the sink and passes
// the barrier on. The changes are sent first: in one process they reach the coordinator before the
// sink's commit does.
void complete_aggregate_epoch(caf::stateful_actor<aggregate_actor_state>* self, std::int64_t epoch,
                              epoch_stats stats) {
  auto& s = self->state;
  auto changed = static_cast<std::int64_t>(s.table->num_changed());
  self->send(s.sup.coordinator, state_changes_atom::value, s.sup.generation, epoch,
             static_cast<std::uint64_t>(s.partition), s.table->changed_since_emit());
  batch out = s.table->emit(s.mode);
  if (s.post && !s.post->empty()) out = s.post->run(out);
  stats.state_rows_total += static_cast<std::int64_t>(s.table->num_groups());
  stats.state_rows_updated += changed;
  stats.state_memory_bytes += static_cast<std::int64_t>(s.table->memory_bytes());
  stats.output_rows += static_cast<std::int64_t>(out.num_rows());
  if (out.num_rows() > 0) self->send(s.sink, data_atom::value, epoch, static_cast<std::uint64_t>(s.partition), std::move(out));
  self->send(s.sink, barrier_atom::value, epoch, stats);
}

caf::behavior aggregate_actor(caf::stateful_actor<aggregate_actor_state>* self,
                              std::shared_ptr<const aggregate_operator> aggregate, batch restored_state,
                              std::shared_ptr<const pipeline> post, output_mode mode, caf::actor sink,
                              std::size_t upstream_count, std::size_t partition, supervision sup) {
  auto& st = self->state;
  st.aggregate = std::move(aggregate);
  st.table = st.aggregate->make_state();
  if (restored_state.valid() && restored_state.num_rows() > 0) st.table->restore(restored_state);
  st.post = std::move(post);
  st.mode = mode;
  st.sink = std::move(sink);
  st.inputs.emplace(upstream_count);
  st.partition = partition;
  st.sup = sup;
  report_failures(self, sup, "aggregate");
  auto merge = [self](std::int64_t, std::uint64_t, const batch& partial) { self->state.table->merge(partial); };
  auto complete = [self](std::int64_t epoch, const epoch_stats& stats) { complete_aggregate_epoch(self, epoch, stats); };
  return {
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, const batch& partial) {
        self->state.inputs->data(epoch, seq, partial, merge);
      },
      [=](barrier_atom, std::int64_t epoch, const epoch_stats& upstream) {
        self->state.inputs->barrier(epoch, upstream, merge, complete);
      },
  };
}

// ---------------------------------------------------------------- sink

struct sink_state {
  std::shared_ptr<sink_writer> writer;
  std::optional<epoch_aligner> inputs;
  std::vector<std::pair<std::uint64_t, batch>> epoch_rows;  // written in source order at the epoch's end
  supervision sup;
};

caf::behavior sink_actor(caf::stateful_actor<sink_state>* self, std::shared_ptr<sink_writer> writer,
                         std::size_t upstream_count, supervision sup) {
  auto& st = self->state;
  st.writer = std::move(writer);
  st.inputs.emplace(upstream_count);
  st.sup = sup;
  report_failures(self, sup, "sink " + st.writer->description());
  auto hold = [self](std::int64_t, std::uint64_t seq, const batch& rows) { self->state.epoch_rows.emplace_back(seq, rows); };
  auto commit = [self](std::int64_t epoch, const epoch_stats& stats) {
    auto& s = self->state;
    std::stable_sort(s.epoch_rows.begin(), s.epoch_rows.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [seq, rows] : s.epoch_rows) s.writer->write(epoch, rows);
    s.epoch_rows.clear();
    s.writer->commit(epoch);
    std::vector<std::string> names;
    std::vector<std::int64_t> values;
    for (auto& [name, v] : s.writer->metrics()) {
      names.push_back(name);
      values.push_back(v);
    }
    self->send(s.sup.coordinator, committed_atom::value, s.sup.generation, epoch, stats, std::move(names),
               std::move(values));
  };
  return {
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, const batch& rows) {
        self->state.inputs->data(epoch, seq, rows, hold);
      },
      [=](barrier_atom, std::int64_t epoch, const epoch_stats& upstream) {
        self->state.inputs->barrier(epoch, upstream, hold, commit);
      },
  };
}

}  // namespace

// The source and the sink call connectors and user code that block: file reads and the file source's
// stability wait, Kafka metadata requests and flushes, fsync, SQLite, foreachBatch functions. Each runs
// detached, on a thread of its own, so a blocked one holds no scheduler thread that the coordinators,
// stages and aggregates of the session's queries need; any fixed pool could be filled by as many
// blocked queries. See docs/architecture.md (Threads) for what it costs.
caf::actor spawn_source(caf::actor_system& sys, std::shared_ptr<source_reader> reader,
                        std::vector<caf::actor> stages, std::size_t credits_per_stage, supervision sup) {
  return sys.spawn<caf::detached>(source_actor, std::move(reader), std::move(stages), credits_per_stage, std::move(sup));
}

caf::actor spawn_stage(caf::actor_system& sys, std::shared_ptr<const decoder> chunk_decoder,
                       std::shared_ptr<const pipeline> pre, std::shared_ptr<const aggregate_operator> aggregate,
                       std::vector<caf::actor> downstream, supervision sup) {
  return sys.spawn(stage_actor, std::move(chunk_decoder), std::move(pre), std::move(aggregate),
                   std::move(downstream), std::move(sup));
}

caf::actor spawn_aggregate(caf::actor_system& sys, std::shared_ptr<const aggregate_operator> aggregate,
                           batch restored_state, std::shared_ptr<const pipeline> post, output_mode mode,
                           caf::actor sink, std::size_t upstream_count, std::size_t partition, supervision sup) {
  return sys.spawn(aggregate_actor, std::move(aggregate), std::move(restored_state), std::move(post), mode,
                   std::move(sink), upstream_count, partition, std::move(sup));
}

caf::actor spawn_sink(caf::actor_system& sys, std::shared_ptr<sink_writer> writer, std::size_t upstream_count,
                      supervision sup) {
  return sys.spawn<caf::detached>(sink_actor, std::move(writer), upstream_count, std::move(sup));
}

}  // namespace flow::runtime
