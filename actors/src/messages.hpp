// The messages of the epoch protocol. Included only by the runtime's .cpp files (CAF stays out of
// public headers).
#pragma once

#include <caf/all.hpp>

#include "caf_types.hpp"
#include "flow/runtime/progress.hpp"

namespace flow::runtime {

using plan_atom = caf::atom_constant<caf::atom("plan")>;          // coordinator -> source
using run_atom = caf::atom_constant<caf::atom("run")>;            // coordinator -> source
using commit_atom = caf::atom_constant<caf::atom("commit")>;      // coordinator -> source
using data_atom = caf::atom_constant<caf::atom("data")>;          // along the dataflow
using ack_atom = caf::atom_constant<caf::atom("ack")>;            // stage -> source (one credit back)
using barrier_atom = caf::atom_constant<caf::atom("barrier")>;    // end of an epoch's data
using committed_atom = caf::atom_constant<caf::atom("committed")>;  // sink -> coordinator
using state_changes_atom = caf::atom_constant<caf::atom("changes")>;  // aggregate -> coordinator
using failed_atom = caf::atom_constant<caf::atom("failed")>;      // any -> coordinator
using tick_atom = caf::atom_constant<caf::atom("tick")>;          // coordinator's trigger clock
using restart_atom = caf::atom_constant<caf::atom("restart")>;    // coordinator, after backoff
using stop_atom = caf::atom_constant<caf::atom("stop")>;          // query handle -> coordinator
using poll_atom = caf::atom_constant<caf::atom("poll")>;          // coordinator: look for new data

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, epoch_stats& x) {
  return f(caf::meta::type_name("flow::epoch_stats"), x.input_rows, x.input_bytes, x.malformed_rows,
           x.output_rows, x.state_rows_total, x.state_rows_updated, x.state_memory_bytes,
           x.source_metric_names, x.source_metric_values);
}

}  // namespace flow::runtime
