// The epoch protocol: every message each actor of a query takes and what it answers, as one CAF
// typed_actor interface per actor (the compiler checks every send). Included only by the runtime's .cpp
// files (CAF stays out of public headers).
#pragma once

#include <caf/all.hpp>

#include "caf_types.hpp"
#include "flow/runtime/progress.hpp"

namespace flow::runtime {

using plan_atom = caf::atom_constant<caf::atom("plan")>;          // coordinator -> source
using run_atom = caf::atom_constant<caf::atom("run")>;            // coordinator -> source
using commit_atom = caf::atom_constant<caf::atom("commit")>;      // coordinator -> source
using data_atom = caf::atom_constant<caf::atom("data")>;          // along the dataflow
using read_files_atom = caf::atom_constant<caf::atom("readfiles")>;  // reader -> source vertex instance
using read_ranges_atom = caf::atom_constant<caf::atom("readranges")>;  // reader -> source vertex instance
using ack_atom = caf::atom_constant<caf::atom("ack")>;            // one credit back: to a reader, or to an instance on another node
using barrier_atom = caf::atom_constant<caf::atom("barrier")>;    // end of an epoch's data
using clocks_atom = caf::atom_constant<caf::atom("clocks")>;     // an epoch's watermark and processing time
using committed_atom = caf::atom_constant<caf::atom("committed")>;  // sink -> coordinator
using state_changes_atom = caf::atom_constant<caf::atom("changes")>;  // durable state slot -> coordinator
using failed_atom = caf::atom_constant<caf::atom("failed")>;      // any -> coordinator
using tick_atom = caf::atom_constant<caf::atom("tick")>;          // coordinator's trigger clock
using restart_atom = caf::atom_constant<caf::atom("restart")>;    // coordinator, after backoff
using stop_atom = caf::atom_constant<caf::atom("stop")>;          // query handle -> coordinator
using poll_atom = caf::atom_constant<caf::atom("poll")>;          // coordinator: look for new data
using durable_atom = caf::atom_constant<caf::atom("durable")>;    // checkpoint writer -> coordinator
using arrived_atom = caf::atom_constant<caf::atom("arrived")>;    // a source's notify_when_data -> coordinator
using release_atom = caf::atom_constant<caf::atom("release")>;    // coordinator -> sink

// An operator vertex instance and a sink: an epoch's rows (epoch, seq: the position the sink writes them
// in, input: which input of the vertex), its end (barrier, with the figures counted upstream), and the
// clocks it runs with (epoch, watermark, processing time: operator_context), sent down every edge to an
// operator vertex ahead of the epoch's rows (sinks run no operators and get none).
using batch_input_actor = caf::typed_actor<
    caf::reacts_to<data_atom, std::int64_t, std::uint64_t, std::uint32_t, batch>,
    caf::reacts_to<barrier_atom, std::int64_t, epoch_stats>,
    caf::reacts_to<clocks_atom, std::int64_t, std::int64_t, std::int64_t>>;

// An instance of a source vertex also takes the units its reader hands it, raw records to decode or
// batches (the last field: ack the unit once processed; an epoch's last unit is not acked), or reads its
// share of an epoch's files itself (read_files: epoch, the seq of the epoch's first unit, the files, the
// chunk size: flow::file_read_plan), or its share of an epoch's ranges (read_ranges: epoch, the seq of the
// epoch's first unit, the ranges' starts and ends, the unit size: flow::range_read_plan). ack: a target on
// another node has processed the oldest batch this instance sent it and not had acked yet (remote_edge_bytes).
using vertex_actor = batch_input_actor::extend<
    caf::reacts_to<ack_atom>,
    caf::reacts_to<data_atom, std::int64_t, std::uint64_t, std::uint32_t, raw_chunk, bool>,
    caf::reacts_to<data_atom, std::int64_t, std::uint64_t, std::uint32_t, batch, bool>,
    caf::reacts_to<read_files_atom, std::int64_t, std::uint64_t, std::vector<std::string>, std::uint64_t>,
    caf::reacts_to<read_ranges_atom, std::int64_t, std::uint64_t, std::vector<std::string>, std::vector<std::string>,
                   std::uint64_t>>;

// A sink also takes release (a durable query's): every epoch up to the number has its offsets durable, so it
// may commit them (flow/runtime/epoch_release.hpp).
using sink_actor = batch_input_actor::extend<caf::reacts_to<release_atom, std::int64_t>>;

// A source's reader. plan: the end offset of the data after start (outcome 1, with the reader's plan_record
// when it has one), nothing new (0, with the reader's status and metrics), or a broken source (-1,
// message). run: read (start, end] as epoch's data (start == end: an empty epoch) with the epoch's watermark
// and processing time. ack: an instance has processed a unit that took a credit. commit: data up to end is
// committed downstream.
using source_actor = caf::typed_actor<
    caf::replies_to<plan_atom, std::string>::with<int, std::string, std::vector<std::string>, std::vector<std::int64_t>>,
    caf::reacts_to<run_atom, std::int64_t, std::string, std::string, std::int64_t, std::int64_t>,
    caf::reacts_to<ack_atom>,
    caf::reacts_to<commit_atom, std::string>>;

// The coordinator. committed: sink (index) committed epoch, with the epoch's figures and the sink's
// metrics; changes: a state slot's take_changes() for an epoch; failed: an actor's error (permanent: a
// restart cannot fix it); tick/poll/restart: its own timers; stop: the query handle; durable: its
// checkpoint writer finished a round (every write job up to the number is durable, or the round failed);
// arrived: a source has new data (or process_all_available wants a plan).
using coordinator_actor = caf::typed_actor<
    caf::reacts_to<tick_atom>,
    caf::reacts_to<poll_atom>,
    caf::reacts_to<arrived_atom>,
    caf::reacts_to<restart_atom>,
    caf::reacts_to<stop_atom>,
    caf::reacts_to<committed_atom, std::uint64_t, std::uint32_t, std::int64_t, epoch_stats, std::vector<std::string>,
                   std::vector<std::int64_t>>,
    caf::reacts_to<state_changes_atom, std::uint64_t, std::int64_t, std::uint64_t, batch>,
    caf::reacts_to<failed_atom, std::uint64_t, std::string, bool>,
    caf::reacts_to<durable_atom, std::uint64_t, bool, std::string>>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, epoch_stats& x) {
  return f(caf::meta::type_name("flow::epoch_stats"), x.input_rows, x.input_rows_per_source, x.input_bytes, x.malformed_rows,
           x.malformed_rows_per_source,
           x.output_rows, x.state_rows_total, x.state_rows_updated, x.state_rows_removed, x.state_memory_bytes,
           x.state_update_micros, x.state_rows_dropped_by_watermark, x.event_times.min, x.event_times.max,
           x.event_times.sum, x.event_times.count, x.latest_event_time,
           x.source_metric_names, x.source_metric_values, x.source_metric_sources);
}

}  // namespace flow::runtime
