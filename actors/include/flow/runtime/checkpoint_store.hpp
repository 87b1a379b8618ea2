// A query's checkpoint on disk (checkpointLocation): its metadata, the offset log written before an epoch
// runs, the commit log written once every sink committed it, and each stateful operator instance's state as
// per-epoch deltas plus periodic full snapshots. Every file is sealed (checksummed) and written atomically,
// so that recovery tells a damaged file from a valid one and falls back to the newest consistent epoch.
// Layout and rules: docs/fault-tolerance.md. A plain class doing file I/O; the coordinator drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flow/connectors/durable_file.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/runtime/epoch_log.hpp"
#include "flow/stream_operator.hpp"

namespace flow::runtime {

struct checkpoint_options {
  std::int64_t min_batches_to_retain = 100;  // Spark's minBatchesToRetain
  std::int64_t snapshot_interval = 10;       // a full snapshot per slot every N committed epochs
};

struct checkpoint_metadata {
  int version = 1;
  std::string query_id;
  std::string graph;  // JSON text; stored and read back minified
};

struct recovered_checkpoint {
  std::int64_t last_committed = -1;          // -1: nothing committed yet
  std::vector<std::string> committed_end;    // end offsets of last_committed (empty when -1)
  std::vector<logged_offsets> uncommitted;   // epochs after last_committed to re-run, oldest first, contiguous
  std::vector<std::string> notes;            // fall-backs taken, each a full sentence
};

// What the last write_commit wrote, for the progress report (stateOperators' commitTimeMs, snapshot bytes).
struct checkpoint_commit_stats {
  std::int64_t epoch = -1;
  std::vector<std::size_t> delta_bytes;     // per slot
  std::vector<std::size_t> snapshot_bytes;  // per slot; 0 when no snapshot was due. A directory snapshot
                                            // counts its new files only (not hard links to the previous one)
  std::size_t total_bytes = 0;              // every file written, the commit file included
  double duration_ms = 0;                   // the whole write_commit, retention included
};

class checkpoint_store {
 public:
  inline static constexpr int format_version = 1;

  // Creates directory when missing; throws flow::error ("checkpoint: cannot create directory '...': ...").
  explicit checkpoint_store(std::string directory, checkpoint_options options = {});

  const std::string& directory() const { return directory_; }
  const checkpoint_options& options() const { return options_; }

  // nullopt: a fresh checkpoint. A damaged file or another format version is a flow::error saying what to do.
  std::optional<checkpoint_metadata> read_metadata() const;
  // flow::error when m.graph is not JSON text.
  void write_metadata(const checkpoint_metadata& m);

  // Rebuilds every slot's state as of the last consistent committed epoch into states (empty states, one per
  // slot, from operator::make_state(): restore() or restore_from() the newest usable snapshot, a directory
  // snapshot only once its manifest matches every file, then apply_changes() of each later delta) and says
  // what to re-run. Deletes what lies beyond that point (commits and state files of later epochs, offsets
  // after the last re-run epoch, leftover ".*.tmp" files and directories) and damaged snapshots.
  recovered_checkpoint recover(const std::vector<operator_state*>& states);

  // Before the epoch runs.
  void write_offsets(const logged_offsets& epoch);
  // The epoch committed: for every slot its delta (changes[slot]) and, when due, its snapshot (snapshot(slot)
  // is called only then), then commits/<epoch>; then the retention rule removes old files. A snapshot is
  // rows (state/<slot>/<epoch>.snapshot) or a directory stage_snapshot staged, which write_commit makes
  // durable: each file fsynced, a sealed manifest of names, sizes and CRC32s, renamed to
  // state/<slot>/<epoch>.snapshot.d.
  void write_commit(std::int64_t epoch, const std::vector<batch>& changes,
                    const std::function<state_copy(std::size_t slot)>& snapshot);
  bool snapshot_due(std::size_t slot, std::int64_t epoch) const;
  // The first, cheap step of a due snapshot, on the thread that owns state (as of epoch): its rows, or for
  // a state that snapshots to a directory, snapshot_to state/<slot>/.<epoch>.snapshot.tmp (RocksDB: a
  // checkpoint of hard links). The rest, possibly on another thread, is write_commit's.
  state_copy stage_snapshot(std::size_t slot, std::int64_t epoch, const operator_state& state);
  const checkpoint_commit_stats& last_commit() const { return last_commit_; }

  // DIR/sources/<source>, created: source_reader::use_checkpoint's directory.
  std::string source_directory(std::size_t source);

 private:
  std::string slot_directory(std::size_t slot) const;
  // Makes the staged directory snapshot of slot durable as <epoch>.snapshot.d; returns the bytes it wrote.
  std::size_t seal_directory_snapshot(std::size_t slot, std::int64_t epoch, const std::string& staged);
  // Removes the files no epoch >= newest - min_batches_to_retain + 1 needs.
  void apply_retention(std::int64_t newest);

  std::string directory_;
  checkpoint_options options_;
  std::vector<std::int64_t> last_snapshot_;  // per slot: the epoch of its newest snapshot, -1 for none
  bool retention_scanned_ = false;           // apply_retention ran in this process
  connectors::unique_fd lock_;               // flock on DIR/.lock while this store lives
  checkpoint_commit_stats last_commit_;
};

}  // namespace flow::runtime
