#include "dataflow.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <map>
#include <optional>

#include "flow/connectors/file_source.hpp"
#include "flow/plan_logging_source.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/runtime/epoch_release.hpp"
#include "flow/runtime/output_router.hpp"

namespace flow::runtime {

namespace {

// Reports the exception to the coordinator (which restarts the dataflow, or fails the query for a
// permanent error) and ends the actor.
// role() names the actor (and what it was running) in the message.
template <class Self, class Role>
void report_failures(Self* self, const supervision& sup, Role role) {
  self->set_exception_handler([sup, role](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    caf::anon_send(sup.coordinator, failed_atom::value, sup.generation, role() + ": " + exception_message(eptr),
                   is_permanent(eptr));
    return caf::sec::runtime_error;
  });
}

template <class Self>
void report_failures(Self* self, const supervision& sup, std::string role) {
  report_failures(self, sup, [role] { return role; });
}

struct connector_metrics_lists {
  std::vector<std::string> names;
  std::vector<std::int64_t> values;
};

connector_metrics_lists metric_lists(const connector_metrics& metrics) {
  connector_metrics_lists out;
  for (auto& [name, v] : metrics) {
    out.names.push_back(name);
    out.values.push_back(v);
  }
  return out;
}

// A source's metrics, carried to the progress report by a barrier (which sums those of one name: the
// driver's reader and, on workers, the instances reading the source's ranges each report what they read).
void add_source_metrics(epoch_stats& stats, std::uint32_t source, const connector_metrics& metrics) {
  for (const auto& [name, value] : metrics) {
    stats.source_metric_names.push_back(name);
    stats.source_metric_values.push_back(value);
    stats.source_metric_sources.push_back(source);
  }
}

// A unit's seq: the source's index above bit 48, then its position in the epoch, so that a sink writes an
// epoch's rows source by source, each in the order its reader cut them. Rows emitted at an epoch's end
// (aggregations) come after all of them, instance by instance.
constexpr int source_seq_shift = 48;
constexpr std::uint64_t end_of_epoch_seq = std::uint64_t{1} << 63;

// The source instance that an epoch's unit at position (in the epoch) goes to: round-robin from an instance
// that turns with the epoch, so that epochs of one unit (a small file each) are decoded by every instance in
// turn, and a replay deals an epoch's units to the same instances.
std::size_t instance_of_unit(std::int64_t epoch, std::uint64_t position, std::size_t parallelism) {
  return static_cast<std::size_t>((static_cast<std::uint64_t>(epoch) + position) % parallelism);
}

// Several epochs may be in flight: an upstream instance may already send epoch N+1 while another
// still sends N. The aligner hands on data of the oldest open epoch at once, holds back later epochs'
// data, and completes an epoch when every upstream instance has sent its barrier (Flink's alignment).
// What upstream instances emit at an epoch's end (a partial aggregation's partial sums) is held until
// the epoch's alignment and handed on in upstream-instance order (their seq): a final aggregation then
// folds an epoch's partial sums (doubles) in the same order whatever their arrival order, so embedded,
// cluster and recovered runs give the same bytes.
class epoch_aligner {
 public:
  explicit epoch_aligner(std::size_t upstream_count) : upstream_count_(upstream_count) {}

  template <class OnData>
  void data(std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const batch& rows, OnData&& on_data) {
    if (!active_) active_ = epoch;
    if (seq >= end_of_epoch_seq) waiting_[epoch].at_end.push_back({seq, input, rows});
    else if (epoch == *active_) on_data(epoch, seq, input, rows);
    else waiting_[epoch].data.push_back({seq, input, rows});
  }

  template <class OnData, class OnComplete>
  void barrier(std::int64_t epoch, const epoch_stats& stats, OnData&& on_data, OnComplete&& on_complete) {
    if (!active_) active_ = epoch;
    auto& open = waiting_[epoch];
    ++open.barriers;
    open.stats.add(stats);
    while (active_ && waiting_[*active_].barriers == upstream_count_) {
      std::int64_t done = *active_;
      auto node = waiting_.extract(done);
      auto& at_end = node.mapped().at_end;
      std::stable_sort(at_end.begin(), at_end.end(), [](const held_data& a, const held_data& b) { return a.seq < b.seq; });
      for (const auto& d : at_end) on_data(done, d.seq, d.input, d.rows);
      on_complete(done, node.mapped().stats);
      if (waiting_.empty()) {
        active_.reset();
        break;
      }
      active_ = waiting_.begin()->first;
      auto held = std::move(waiting_.begin()->second.data);
      waiting_.begin()->second.data.clear();
      for (const auto& d : held) on_data(*active_, d.seq, d.input, d.rows);
    }
  }

 private:
  struct held_data {
    std::uint64_t seq;
    std::uint32_t input;
    batch rows;
  };
  struct open_epoch {
    std::vector<held_data> data, at_end;
    std::size_t barriers = 0;
    epoch_stats stats;
  };
  std::size_t upstream_count_;
  std::optional<std::int64_t> active_;
  std::map<std::int64_t, open_epoch> waiting_;
};

// ---------------------------------------------------------------- source reader

struct source_state {
  std::shared_ptr<source_reader> reader;
  std::uint32_t source_index = 0;  // among the graph's sources
  std::uint64_t first_seq = 0;     // source_index, shifted
  std::vector<vertex_actor> instances;
  std::vector<std::size_t> credits;
  std::size_t next_instance = 0;
  bool instances_read = false;  // they read the files or ranges of an epoch themselves (in a cluster)
  std::int64_t epoch = -1;
  std::uint64_t next_seq = 0;  // position of the next unit in the epoch: sinks keep source order
  bool reading = false;
  std::deque<source_unit> ahead;  // units read but not sent yet: the next one and the one after it
  bool read_all = false;          // the epoch's range has no units beyond those in ahead
  struct run_request {
    std::int64_t epoch;
    std::string start, end;
    std::int64_t watermark, processing_time;
  };
  std::deque<run_request> queued;  // epochs asked for while another is being read
};

using source_pointer = source_actor::stateful_pointer<source_state>;

void start_next_run(source_pointer self);

void end_read(source_pointer self) {
  auto& st = self->state;
  st.reading = false;
  epoch_stats with_metrics;
  add_source_metrics(with_metrics, st.source_index, st.reader->metrics());
  for (std::size_t i = 0; i < st.instances.size(); ++i)
    self->send(st.instances[i], barrier_atom::value, st.epoch, i == 0 ? with_metrics : epoch_stats{});
  start_next_run(self);
}

// Reads until two units are ahead or the read is over (the second tells whether the first is the last).
void read_ahead(source_state& st) {
  while (!st.read_all && st.ahead.size() < 2) {
    if (auto unit = st.reader->next()) st.ahead.push_back(std::move(*unit));
    else st.read_all = true;
  }
}

// Hands units to the instances in turn, each unit to the next instance once that one has credit (not to
// whichever has: an instance's partial aggregates then hold the same units in every run, whatever the
// timing); ends the epoch with a barrier to every instance. An epoch's last unit (known by reading one
// unit ahead) takes no credit and is not acked: an epoch of one unit (a small file, a push source's
// arrivals) then costs no ack and no wake-up of this thread, and the epoch window bounds how many such
// units an instance holds.
void pump(source_pointer self) {
  auto& st = self->state;
  while (st.reading) {
    read_ahead(st);
    if (st.ahead.empty()) return end_read(self);
    const bool last = st.read_all && st.ahead.size() == 1;
    const std::size_t target = st.next_instance;
    if (!last) {
      if (st.credits[target] == 0) return;  // wait for its ack
      --st.credits[target];
    }
    st.next_instance = (target + 1) % st.instances.size();
    auto seq = st.next_seq++;
    auto unit = std::move(st.ahead.front());
    st.ahead.pop_front();
    const bool acked = !last;
    if (auto* b = std::get_if<batch>(&unit))
      self->send(st.instances[target], data_atom::value, st.epoch, seq, std::uint32_t{0}, std::move(*b), acked);
    else
      self->send(st.instances[target], data_atom::value, st.epoch, seq, std::uint32_t{0},
                 std::move(std::get<raw_chunk>(unit)), acked);
  }
}

void start_next_run(source_pointer self) {
  auto& st = self->state;
  if (st.reading || st.queued.empty()) return;
  auto run = std::move(st.queued.front());
  st.queued.pop_front();
  st.epoch = run.epoch;
  st.next_seq = st.first_seq;
  st.next_instance = instance_of_unit(run.epoch, 0, st.instances.size());
  // The clocks leave right before the epoch's first units or its barriers (the units ahead are read first):
  // an instance gets them in one burst and is woken once, not once for the clocks and again for the data.
  auto send_clocks = [&] {
    for (const auto& instance : st.instances)
      self->send(instance, clocks_atom::value, run.epoch, run.watermark, run.processing_time);
  };
  st.reading = true;
  if (run.start == run.end) {  // another source of the graph has data in this epoch, this one none
    send_clocks();
    return end_read(self);
  }
  if (!st.instances_read) {
    st.read_all = false;
    st.reader->begin_read(run.start, run.end);
    read_ahead(st);
    send_clocks();
    return pump(self);
  }
  if (st.reader->instances_can_read_ranges()) {
    auto plan = st.reader->plan_range_reads(run.start, run.end);
    std::vector<std::string> starts, ends;
    for (auto& [start, end] : plan.ranges) {
      starts.push_back(std::move(start));
      ends.push_back(std::move(end));
    }
    send_clocks();
    for (const auto& instance : st.instances)
      self->send(instance, read_ranges_atom::value, run.epoch, st.first_seq, starts, ends,
                 static_cast<std::uint64_t>(plan.max_unit_bytes));
    return end_read(self);
  }
  auto plan = st.reader->plan_file_reads(run.start, run.end);
  send_clocks();
  for (const auto& instance : st.instances)
    self->send(instance, read_files_atom::value, run.epoch, st.first_seq, plan.files,
               static_cast<std::uint64_t>(plan.max_chunk_bytes));
  end_read(self);
}

source_actor::behavior_type source_fun(source_pointer self, std::shared_ptr<source_reader> reader,
                                       std::size_t source_index, std::vector<vertex_actor> instances,
                                       bool instances_read, std::size_t credits, supervision sup) {
  auto& st = self->state;
  st.reader = std::move(reader);
  st.instances_read = instances_read;
  st.source_index = static_cast<std::uint32_t>(source_index);
  st.first_seq = static_cast<std::uint64_t>(source_index) << source_seq_shift;
  st.instances = std::move(instances);
  st.credits.assign(st.instances.size(), credits);
  report_failures(self, sup, "source " + st.reader->description());
  return {
      [=](plan_atom, const std::string& start)
          -> caf::result<int, std::string, std::vector<std::string>, std::vector<std::int64_t>> {
        auto& reader = *self->state.reader;
        try {
          if (auto end = reader.latest_offset(start)) {
            auto* logging = dynamic_cast<plan_logging_source*>(&reader);
            auto record = logging ? logging->plan_record(start, *end) : std::string();
            return {1, *end, record.empty() ? std::vector<std::string>{} : std::vector<std::string>{std::move(record)},
                    std::vector<std::int64_t>{}};
          }
          auto lists = metric_lists(reader.metrics());
          return {0, reader.status(), std::move(lists.names), std::move(lists.values)};
        } catch (const std::exception& e) {
          return {-1, reader.description() + ": " + e.what(), std::vector<std::string>{}, std::vector<std::int64_t>{}};
        }
      },
      [=](run_atom, std::int64_t epoch, const std::string& start, const std::string& end, std::int64_t watermark,
          std::int64_t processing_time) {
        self->state.queued.push_back({epoch, start, end, watermark, processing_time});
        start_next_run(self);
      },
      [=](ack_atom) {
        auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
        auto& s = self->state;
        for (std::size_t i = 0; i < s.instances.size(); ++i)
          if (s.instances[i].address() == sender) ++s.credits[i];
        pump(self);
      },
      [=](commit_atom, const std::string& end) { self->state.reader->commit(end); },
  };
}

// ---------------------------------------------------------------- vertex instance

struct instance_state {
  std::optional<chain_runner> chain;
  std::optional<output_router> router;
  std::optional<epoch_aligner> inputs;
  instance_setup setup;
  std::int64_t epoch = -1;  // of the data being processed
  epoch_stats stats;        // counted here since the last barrier
  struct epoch_clocks {
    std::int64_t watermark, processing_time;
  };
  std::map<std::int64_t, epoch_clocks> clocks;  // per epoch not started yet, as received
  std::int64_t clocks_started = -1;             // the newest epoch whose clocks the chain has
  // Per target on another node, the sizes of the batches sent to it and not acked yet (acks come in order).
  struct unacked_batches {
    std::deque<std::size_t> sizes;
    std::size_t bytes = 0;
  };
  std::map<caf::actor_addr, unacked_batches> unacked;
  std::size_t full_targets = 0;  // targets with remote_edge_bytes or more unacked: no input is taken up
  // Inputs waiting for credit, in arrival order; each runs until it returns true (false: out of credit
  // midway, it resumes where it stopped).
  std::deque<std::function<bool()>> waiting;
};

using instance_pointer = vertex_actor::stateful_pointer<instance_state>;

void count_unacked(instance_pointer self, const caf::actor_addr& target, std::size_t bytes) {
  auto& st = self->state;
  auto& u = st.unacked[target];
  if (u.bytes < remote_edge_bytes && u.bytes + bytes >= remote_edge_bytes) ++st.full_targets;
  u.sizes.push_back(bytes);
  u.bytes += bytes;
  if (st.setup.guard) st.setup.guard->unacknowledged(u.bytes);
}

void send_on(instance_pointer self, std::uint64_t seq, const batch& rows) {
  auto& st = self->state;
  st.router->route(rows, [&](std::size_t edge, std::size_t target, const batch& part) {
    const auto& to = st.setup.targets[edge][target];
    if (to.node() != self->node()) count_unacked(self, to.address(), part.byte_size());
    self->send(to, data_atom::value, st.epoch, seq, static_cast<std::uint32_t>(st.router->input_of(edge)), part);
  });
}

// Runs the inputs that waited for credit, in order, while it lasts.
void drain(instance_pointer self) {
  auto& st = self->state;
  while (!st.waiting.empty() && st.full_targets == 0) {
    if (!st.waiting.front()()) return;
    st.waiting.pop_front();
  }
}

// Runs an input now, or once those before it ran and the targets on other nodes acked enough.
template <class Input>
void in_order(instance_pointer self, Input input) {
  auto& st = self->state;
  if (st.waiting.empty() && st.full_targets == 0 && input()) return;
  st.waiting.emplace_back(std::move(input));
}

// A batch from an instance on another node has been processed (or held for its epoch): its credit back.
template <class Self>
void ack_remote(Self* self, const caf::strong_actor_ptr& sender) {
  if (sender && sender->node() != self->node()) self->send(caf::actor_cast<vertex_actor>(sender), ack_atom::value);
}

void acked(instance_pointer self) {
  auto& st = self->state;
  auto it = st.unacked.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
  if (it == st.unacked.end() || it->second.sizes.empty()) return;
  auto& u = it->second;
  const bool was_full = u.bytes >= remote_edge_bytes;
  u.bytes -= u.sizes.front();
  u.sizes.pop_front();
  if (was_full && u.bytes < remote_edge_bytes) {
    --st.full_targets;
    drain(self);
  }
}

// The first upstream to send an epoch's clocks has them passed on at once (ahead of any of the epoch's rows
// this instance sends); the chain takes them when the epoch's first rows or its end arrive. Sinks run no
// operators: they get none (each would wake a sink's thread once more per epoch).
void receive_clocks(instance_pointer self, std::int64_t epoch, std::int64_t watermark, std::int64_t processing_time) {
  auto& st = self->state;
  if (epoch <= st.clocks_started) return;
  if (!st.clocks.emplace(epoch, instance_state::epoch_clocks{watermark, processing_time}).second) return;
  const auto& graph = *st.setup.graph;
  st.router->barrier([&](std::size_t edge, std::size_t target) {
    if (graph.vertex(st.router->target_vertex(edge)).kind == vertex_kind::sink) return;
    self->send(st.setup.targets[edge][target], clocks_atom::value, epoch, watermark, processing_time);
  });
}

void start_clocks(instance_pointer self, std::int64_t epoch) {
  auto& st = self->state;
  if (epoch <= st.clocks_started) return;
  st.clocks_started = epoch;
  auto it = st.clocks.find(epoch);
  if (it == st.clocks.end()) return;
  // What on_watermark emits goes ahead of the epoch's rows.
  st.chain->start_epoch_clocks(epoch, 0, it->second.watermark, it->second.processing_time);
  st.clocks.erase(st.clocks.begin(), std::next(it));
}

// Every input's barrier arrived: end the epoch in the chain, report the state's changes to the
// coordinator (which commits the epoch once it has them and every sink's commit, in any order), pass the
// barrier on.
void complete_epoch(instance_pointer self, std::int64_t epoch, epoch_stats stats) {
  auto& st = self->state;
  st.epoch = epoch;
  start_clocks(self, epoch);
  st.chain->end_epoch(epoch, end_of_epoch_seq + st.setup.instance);
  st.chain->take_event_time_figures(stats, st.setup.first_state_operator);
  auto changes = st.chain->take_changes();
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const std::size_t op = st.setup.first_state_operator + i;
    epoch_stats::add_at(stats.state_rows_updated, op,
                        static_cast<std::int64_t>(st.chain->state_rows_updated(i, changes[i])));
    epoch_stats::add_at(stats.state_rows_removed, op, static_cast<std::int64_t>(st.chain->state_rows_removed(i, changes[i])));
    epoch_stats::add_at(stats.state_rows_total, op, static_cast<std::int64_t>(st.chain->state_rows(i)));
    epoch_stats::add_at(stats.state_memory_bytes, op, static_cast<std::int64_t>(st.chain->state_memory_bytes(i)));
    epoch_stats::add_at(stats.state_update_micros, op, st.chain->take_update_time(i).count());
    self->send(st.setup.sup.coordinator, state_changes_atom::value, st.setup.sup.generation, epoch,
               st.setup.slots[i], std::move(changes[i]));
  }
  stats.add(st.stats);
  st.stats = epoch_stats{};
  // A worker's instance reading its source's ranges (Kafka's partitions) reads what the driver's reader does
  // not: its figures so far go with every epoch, summed with the other readers' in the progress report.
  if (st.setup.range_reader)
    add_source_metrics(stats, static_cast<std::uint32_t>(st.setup.source_index), st.setup.range_reader->metrics());
  if (st.setup.guard) st.setup.guard->completed(epoch);
  bool first = true;
  st.router->barrier([&](std::size_t edge, std::size_t target) {
    self->send(st.setup.targets[edge][target], barrier_atom::value, epoch, first ? stats : epoch_stats{});
    first = false;  // counted once, at the first downstream instance
  });
}

// Decodes a source's raw records and processes them.
// What an instance does with rows its inputs release in order: the chain processes them, after the epoch's
// clocks.
auto in_chain(instance_pointer self) {
  return [self](std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const batch& rows) {
    self->state.epoch = epoch;
    start_clocks(self, epoch);
    self->state.chain->process(epoch, seq, input, rows);
  };
}

void process_chunk(instance_pointer self, std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const raw_chunk& chunk) {
  auto& s = self->state;
  if (!s.setup.chunk_decoder) throw error("vertex received raw records but its source has no decoder");
  decode_stats ds;
  batch decoded = s.setup.chunk_decoder->decode(chunk, ds);
  s.stats.count_input(s.setup.source_index, static_cast<std::int64_t>(ds.rows));
  s.stats.count_malformed(s.setup.source_index, static_cast<std::int64_t>(ds.malformed));
  s.stats.input_bytes += static_cast<std::int64_t>(chunk.end - chunk.begin);
  if (s.setup.guard) s.setup.guard->received(ds.rows);
  s.inputs->data(epoch, seq, input, decoded, in_chain(self));
}

// An instance's share of an epoch's files (read_files_atom) and how far it is read.
struct file_share {
  std::int64_t epoch = 0;
  std::uint64_t first_seq = 0;
  std::vector<std::string> files;
  std::uint64_t max_chunk_bytes = 0;
  std::size_t file = 0, chunk = 0;        // the next chunk to look at
  std::uint64_t position = 0;             // of the file's first chunk in the epoch
  std::optional<file_chunk_index> chunks;  // the file's, once opened
};

// The instance's share of an epoch's files (flow::file_read_plan): the chunks the reader's round-robin
// would have dealt it, cut as the reader cuts them and with the same seqs. Only those chunks are read
// (file_chunk_index): a file of line records is read once over all instances, not once per instance.
// Returns false when a target on another node ran out of credit before the share's end.
bool read_files(instance_pointer self, file_share& share) {
  auto& s = self->state;
  const auto& vertex = s.setup.graph->vertex(s.setup.vertex);
  const std::size_t parallelism = vertex.parallelism;
  const bool line_records = records_end_at_line_ends(vertex.scan.format, vertex.scan.opts);
  auto read_error = [](const error& e) {
    return error(std::string(e.what()) + " (a file source's instances read its files on the nodes they run on: "
                 "the files must lie on the same path on every node, as on the driver)");
  };
  for (; share.file < share.files.size(); ++share.file, share.chunk = 0) {
    if (!share.chunks) {
      try {
        share.chunks.emplace(share.files[share.file], *s.setup.chunk_decoder,
                             static_cast<std::size_t>(share.max_chunk_bytes), line_records);
      } catch (const error& e) {
        throw read_error(e);
      }
    }
    for (; share.chunk < share.chunks->size(); ++share.chunk) {
      if (instance_of_unit(share.epoch, share.position + share.chunk, parallelism) != s.setup.instance) continue;
      if (s.full_targets > 0) return false;
      raw_chunk chunk;
      try {
        chunk = share.chunks->chunk(share.chunk);
      } catch (const error& e) {
        throw read_error(e);
      }
      process_chunk(self, share.epoch, share.first_seq + share.position + share.chunk, 0, chunk);
      if (s.setup.guard) s.setup.guard->read_from_files(chunk.end - chunk.begin);
    }
    share.position += share.chunks->size();
    share.chunks.reset();
  }
  return true;
}

// A source's batch: counted as the source's input, then processed.
void process_source_batch(instance_pointer self, std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const batch& rows) {
  auto& s = self->state;
  if (s.setup.guard) s.setup.guard->received(rows.num_rows());
  s.stats.count_input(s.setup.source_index, static_cast<std::int64_t>(rows.num_rows()));
  s.stats.input_bytes += static_cast<std::int64_t>(rows.byte_size());
  s.inputs->data(epoch, seq, input, rows, in_chain(self));
}

// A unit's seq within a range-reading source's epoch: the range's position above this bit, then the unit's
// in the range, so that a sink writes the epoch's rows range by range, each in its reader's order.
constexpr int range_seq_shift = 24;

// An instance's share of an epoch's ranges (read_ranges_atom) and how far it is read.
struct range_share {
  std::int64_t epoch = 0;
  std::uint64_t first_seq = 0;
  std::vector<std::string> starts, ends;
  std::uint64_t max_unit_bytes = 0;
  std::size_t range = 0;  // the next range to read: instance, instance + parallelism, ...
  bool begun = false;     // the reader is within it
  std::uint64_t seq = 0;  // of its next unit
};

// The instance's share of an epoch's ranges (flow::range_read_plan): ranges instance, instance +
// parallelism, ..., each read to its end with the instance's own reader of the source. Returns false when a
// target on another node ran out of credit before the share's end.
bool read_ranges(instance_pointer self, range_share& share) {
  auto& s = self->state;
  const std::size_t parallelism = s.setup.graph->vertex(s.setup.vertex).parallelism;
  auto& reader = *s.setup.range_reader;
  for (; share.range < share.starts.size(); share.range += parallelism, share.begun = false) {
    if (!share.begun) {
      reader.set_max_unit_bytes(static_cast<std::size_t>(share.max_unit_bytes));
      reader.begin_read(share.starts[share.range], share.ends[share.range]);
      share.seq = share.first_seq + (static_cast<std::uint64_t>(share.range) << range_seq_shift);
      share.begun = true;
    }
    for (;;) {
      if (s.full_targets > 0) return false;
      auto unit = reader.next();
      if (!unit) break;
      if (auto* rows = std::get_if<batch>(&*unit)) process_source_batch(self, share.epoch, share.seq++, 0, *rows);
      else process_chunk(self, share.epoch, share.seq++, 0, std::get<raw_chunk>(*unit));
    }
  }
  return true;
}

vertex_actor::behavior_type instance_fun(instance_pointer self, instance_setup setup) {
  auto& st = self->state;
  st.setup = std::move(setup);
  const auto& vertex = st.setup.graph->vertex(st.setup.vertex);
  const bool source = vertex.kind == vertex_kind::source;
  st.chain.emplace(vertex.chain, st.setup.instance, vertex.parallelism,
                   [self](std::uint64_t seq, batch rows) { send_on(self, seq, rows); }, st.setup.states);
  for (std::size_t i = 0; i < st.setup.restored.size(); ++i) st.chain->restore(i, st.setup.restored[i]);
  st.setup.restored.clear();
  st.router.emplace(*st.setup.graph, st.setup.vertex, st.setup.instance);
  st.inputs.emplace(source ? 1 : output_router::expected_barriers(*st.setup.graph, st.setup.vertex, st.setup.instance));
  report_failures(self, st.setup.sup, [self, name = vertex.name] {
    auto op = self->state.chain->running_operator();
    return "vertex '" + name + "'" + (op.empty() ? std::string() : ", operator '" + op + "'");
  });
  auto process = in_chain(self);
  auto complete = [self](std::int64_t epoch, const epoch_stats& stats) { complete_epoch(self, epoch, stats); };
  // A source's reader gets back the credit a unit took.
  auto ack = [self](const caf::strong_actor_ptr& reader, bool acked) {
    if (acked) self->send(caf::actor_cast<source_actor>(reader), ack_atom::value);
  };
  // Every input waits in order while a target on another node is out of credit (in_order).
  return {
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const raw_chunk& chunk, bool acked) {
        in_order(self, [=, reader = self->current_sender()] {
          process_chunk(self, epoch, seq, input, chunk);
          ack(reader, acked);
          return true;
        });
      },
      // A source's unit of rows.
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const batch& rows, bool acked) {
        if (self->state.setup.guard && !self->state.setup.guard->admits(self->current_sender())) return;
        in_order(self, [=, reader = self->current_sender()] {
          process_source_batch(self, epoch, seq, input, rows);
          ack(reader, acked);
          return true;
        });
      },
      [=](read_files_atom, std::int64_t epoch, std::uint64_t first_seq, const std::vector<std::string>& files,
          std::uint64_t max_chunk_bytes) {
        if (self->state.setup.guard && !self->state.setup.guard->admits(self->current_sender())) return;
        auto share = std::make_shared<file_share>();
        share->epoch = epoch;
        share->first_seq = first_seq;
        share->files = files;
        share->max_chunk_bytes = max_chunk_bytes;
        in_order(self, [self, share] { return read_files(self, *share); });
      },
      [=](read_ranges_atom, std::int64_t epoch, std::uint64_t first_seq, const std::vector<std::string>& starts,
          const std::vector<std::string>& ends, std::uint64_t max_unit_bytes) {
        auto& s = self->state;
        if (s.setup.guard && !s.setup.guard->admits(self->current_sender())) return;
        if (!s.setup.range_reader) throw error("vertex received ranges to read but has no reader of its source");
        if (starts.size() != ends.size())
          throw error("ranges to read with " + std::to_string(starts.size()) + " starts and " + std::to_string(ends.size()) +
                      " ends");
        auto share = std::make_shared<range_share>();
        share->epoch = epoch;
        share->first_seq = first_seq;
        share->starts = starts;
        share->ends = ends;
        share->max_unit_bytes = max_unit_bytes;
        share->range = s.setup.instance;
        in_order(self, [self, share] { return read_ranges(self, *share); });
      },
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const batch& rows) {
        auto& s = self->state;
        if (s.setup.guard) {
          if (!s.setup.guard->admits(self->current_sender())) return;
          s.setup.guard->received(rows.num_rows());
        }
        in_order(self, [=, sender = self->current_sender()] {
          self->state.inputs->data(epoch, seq, input, rows, process);
          ack_remote(self, sender);
          return true;
        });
      },
      [=](barrier_atom, std::int64_t epoch, const epoch_stats& upstream) {
        if (self->state.setup.guard && !self->state.setup.guard->admits(self->current_sender())) return;
        in_order(self, [=] {
          self->state.inputs->barrier(epoch, upstream, process, complete);
          return true;
        });
      },
      [=](clocks_atom, std::int64_t epoch, std::int64_t watermark, std::int64_t processing_time) {
        if (self->state.setup.guard && !self->state.setup.guard->admits(self->current_sender())) return;
        in_order(self, [=] {
          receive_clocks(self, epoch, watermark, processing_time);
          return true;
        });
      },
      [=](ack_atom) { acked(self); },
  };
}

// ---------------------------------------------------------------- sink

struct sink_state {
  std::shared_ptr<sink_writer> writer;
  std::optional<epoch_aligner> inputs;
  // Per epoch, written in source order at its commit: complete epochs wait there for their release.
  std::map<std::int64_t, std::vector<std::pair<std::uint64_t, batch>>> epoch_rows;
  std::map<std::int64_t, epoch_stats> complete;  // complete epochs not released yet
  std::optional<epoch_release> release;
  std::uint32_t index = 0;                                  // among the graph's sinks
  std::string metric_prefix;  // "<vertex>." when the graph has several sinks, so their metrics stay apart
  supervision sup;
};

using sink_pointer = sink_actor::stateful_pointer<sink_state>;

void commit_epoch(sink_pointer self, std::int64_t epoch, epoch_stats stats) {
  auto& s = self->state;
  auto held = s.epoch_rows.extract(epoch);
  if (held) {
    auto& rows_of_epoch = held.mapped();
    std::stable_sort(rows_of_epoch.begin(), rows_of_epoch.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [seq, rows] : rows_of_epoch) {
      stats.output_rows += static_cast<std::int64_t>(rows.num_rows());
      s.writer->write(epoch, rows);
    }
  }
  s.writer->commit(epoch);
  auto lists = metric_lists(s.writer->metrics());
  for (auto& name : lists.names) name = s.metric_prefix + name;
  self->send(s.sup.coordinator, committed_atom::value, s.sup.generation, s.index, epoch, stats,
             std::move(lists.names), std::move(lists.values));
}

// await_release: a durable query's sink, which commits an epoch only once the coordinator released it.
sink_actor::behavior_type sink_fun(sink_pointer self, std::shared_ptr<sink_writer> writer, std::size_t upstream_count,
                                   std::uint32_t index, std::string metric_prefix, supervision sup, bool await_release) {
  auto& st = self->state;
  st.writer = std::move(writer);
  st.inputs.emplace(upstream_count);
  st.index = index;
  st.metric_prefix = std::move(metric_prefix);
  st.sup = sup;
  st.release.emplace(await_release);
  report_failures(self, sup, "sink " + st.writer->description());
  auto hold = [self](std::int64_t epoch, std::uint64_t seq, std::uint32_t, const batch& rows) {
    self->state.epoch_rows[epoch].emplace_back(seq, rows);
  };
  auto complete = [self](std::int64_t epoch, epoch_stats stats) {
    if (self->state.release->complete(epoch)) return commit_epoch(self, epoch, std::move(stats));
    self->state.complete.emplace(epoch, std::move(stats));
  };
  return {
      [=](data_atom, std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const batch& rows) {
        self->state.inputs->data(epoch, seq, input, rows, hold);
        ack_remote(self, self->current_sender());
      },
      [=](barrier_atom, std::int64_t epoch, const epoch_stats& upstream) {
        self->state.inputs->barrier(epoch, upstream, hold, complete);
      },
      [](clocks_atom, std::int64_t, std::int64_t, std::int64_t) {},  // not sent to sinks (receive_clocks)
      [=](release_atom, std::int64_t through) {
        for (auto epoch : self->state.release->release(through)) {
          auto stats = self->state.complete.extract(epoch);
          commit_epoch(self, epoch, std::move(stats.mapped()));
        }
      },
  };
}


}  // namespace

vertex_actor spawn_instance(caf::actor_system& sys, instance_setup setup) { return sys.spawn(instance_fun, std::move(setup)); }

std::vector<caf::actor_addr> running_graph::addresses() const {
  std::vector<caf::actor_addr> out;
  for (const auto& a : readers) out.push_back(a.address());
  for (const auto& a : instances) out.push_back(a.address());
  for (const auto& a : remote_instances) out.push_back(a.address());
  for (const auto& a : sinks) out.push_back(a.address());
  return out;
}

std::vector<caf::actor> running_graph::handles() const {
  std::vector<caf::actor> out;
  for (const auto& a : readers) out.push_back(caf::actor_cast<caf::actor>(a));
  for (const auto& a : instances) out.push_back(caf::actor_cast<caf::actor>(a));
  for (const auto& a : remote_instances) out.push_back(caf::actor_cast<caf::actor>(a));
  for (const auto& a : sinks) out.push_back(caf::actor_cast<caf::actor>(a));
  return out;
}

std::vector<std::size_t> self_reading_sources(const graph_setup& setup) {
  std::vector<std::size_t> out;
  const auto sources = setup.graph->sources();
  for (std::size_t k = 0; k < sources.size(); ++k)
    if (setup.readers.at(k)->instances_can_read_files() || setup.readers.at(k)->instances_can_read_ranges())
      out.push_back(sources[k]);
  return out;
}

std::vector<std::unique_ptr<operator_state>> state_slots(const dataflow_graph& graph, const state_placement& placement) {
  std::vector<std::unique_ptr<operator_state>> slots;
  for (const auto& vertex : graph.vertices())
    for (std::size_t i = 0; i < vertex.parallelism; ++i)
      for (const auto& op : vertex.chain)
        if (auto state = placement.make_state(*op, "slot-" + std::to_string(slots.size())); state && state->durable())
          slots.push_back(std::move(state));  // as durable_states counts
  return slots;
}

// The source and the sink call connectors and user code that block: file reads and the file source's
// stability wait, Kafka metadata requests and flushes, fsync, SQLite, foreachBatch functions. Each runs
// detached, on a thread of its own, so a blocked one holds no scheduler thread that the coordinators and
// vertex instances of the session's queries need; any fixed pool could be filled by as many blocked
// queries. See docs/architecture.md (Threads) for what it costs.
namespace {

void spawn_actors(running_graph& running, caf::actor_system& sys, const graph_setup& setup,
                  const std::function<state_copy(std::size_t slot, bool as_rows)>& restored, supervision sup,
                  const remote_placement* remote) {
  const auto& graph = *setup.graph;
  const auto& vertices = graph.vertices();
  // Targets first: sinks, then the other vertices against the order they feed each other.
  std::vector<std::vector<batch_input_actor>> inputs(vertices.size());
  std::vector<std::vector<vertex_actor>> vertex_instances(vertices.size());
  auto sinks = graph.sinks();
  for (std::size_t k = 0; k < sinks.size(); ++k) {
    auto sink = sys.spawn<caf::detached>(sink_fun, setup.writers.at(k),
                                         output_router::expected_barriers(graph, sinks[k], 0),
                                         static_cast<std::uint32_t>(k),
                                         sinks.size() > 1 ? graph.vertex(sinks[k]).name + "." : std::string(), sup,
                                         setup.sinks_await_release);
    running.sinks.push_back(sink);
    inputs[sinks[k]].push_back(sink);
  }
  // Slot numbers: vertex by vertex in index order, as state_slots counts them; stateful operators likewise.
  std::vector<std::size_t> first_slot(vertices.size(), 0), first_state_operator(vertices.size(), 0);
  for (std::size_t v = 0, next = 0, next_operator = 0; v < vertices.size(); ++v) {
    first_slot[v] = next;
    first_state_operator[v] = next_operator;
    next += vertices[v].parallelism * durable_states(vertices[v]);
    next_operator += durable_states(vertices[v]);
  }
  auto order = graph.topological_order();
  auto source_list = graph.sources();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const std::size_t v = *it;
    const auto& vertex = vertices[v];
    if (vertex.kind == vertex_kind::sink) continue;
    std::shared_ptr<const decoder> chunk_decoder;
    std::size_t source_index = 0;
    if (vertex.kind == vertex_kind::source) {
      source_index = static_cast<std::size_t>(std::find(source_list.begin(), source_list.end(), v) - source_list.begin());
      chunk_decoder = chain_decoder(setup.readers.at(source_index)->chunk_decoder(), vertex);
    }
    const std::size_t durable = durable_states(vertex);
    for (std::size_t i = 0; i < vertex.parallelism; ++i) {
      const std::size_t worker = remote ? remote->placement.worker_of(v, i) : instance_placement::here;
      const bool local = worker == instance_placement::here;
      instance_setup is;
      is.graph = setup.graph;
      is.vertex = v;
      is.instance = i;
      is.chunk_decoder = chunk_decoder;
      is.source_index = source_index;
      is.first_state_operator = first_state_operator[v];
      for (auto e : graph.outputs_of(v)) is.targets.push_back(inputs[graph.edges()[e].to]);
      for (std::size_t d = 0; d < durable; ++d) {
        auto slot = first_slot[v] + i * durable + d;
        is.slots.push_back(slot);
        is.restored.push_back(restored(slot, !local));
      }
      is.states = setup.states;
      is.states.directory += "/vertex-" + std::to_string(v) + "-" + std::to_string(i);
      is.sup = sup;
      if (!local) {
        auto instance = remote->deploy(worker, is);
        inputs[v].push_back(instance);
        running.remote_instances.push_back(instance);
        if (vertex.kind == vertex_kind::source) vertex_instances[v].push_back(caf::actor_cast<vertex_actor>(instance));
        continue;
      }
      auto instance = sys.spawn(instance_fun, std::move(is));
      vertex_instances[v].push_back(instance);
      inputs[v].push_back(instance);
      running.instances.push_back(instance);
    }
  }
  for (std::size_t k = 0; k < source_list.size(); ++k) {
    const bool instances_read = remote && remote->placement.worker_of(source_list[k], 0) != instance_placement::here;
    running.readers.push_back(sys.spawn<caf::detached>(source_fun, setup.readers.at(k), k, vertex_instances[source_list[k]],
                                                       instances_read, setup.credits_per_instance, sup));
  }
}

}  // namespace

running_graph spawn_graph(caf::actor_system& sys, const graph_setup& setup,
                          const std::function<state_copy(std::size_t slot, bool as_rows)>& restored, supervision sup,
                          const remote_placement* remote) {
  running_graph running;
  try {
    spawn_actors(running, sys, setup, restored, sup, remote);
  } catch (...) {
    // A worker could not take an instance: what was spawned must not wait for data forever.
    for (const auto& handle : running.handles()) caf::anon_send_exit(handle, caf::exit_reason::kill);
    throw;
  }
  return running;
}

}  // namespace flow::runtime
