// A query's checkpoint on disk (checkpointLocation): its metadata; one append-only log (DIR/log/, in
// segments) of the offsets written before an epoch runs, each stateful operator instance's per-epoch state
// deltas and the commit record written once every sink committed the epoch; and periodic full snapshots.
// Every record and file is sealed (checksummed), every file written atomically, so that recovery tells a
// damaged record from a valid one and falls back to the newest consistent epoch.
// Layout and rules: docs/fault-tolerance.md. A plain class doing file I/O; the coordinator drives it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flow/connectors/durable_file.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/runtime/checkpoint_writer.hpp"
#include "flow/runtime/epoch_log.hpp"
#include "flow/stream_operator.hpp"

namespace flow::runtime {

struct checkpoint_options {
  std::int64_t min_batches_to_retain = 100;  // Spark's minBatchesToRetain
  std::int64_t snapshot_interval = 10;       // at least N committed epochs between a slot's full snapshots
  bool snapshot_by_size = true;              // false: a snapshot every snapshot_interval epochs exactly
};

// Where a slot stands since its newest snapshot, as snapshot_due weighs it.
struct snapshot_progress {
  std::int64_t last_epoch = -1;       // of its newest snapshot (handed over), -1: none
  std::size_t last_bytes = 0;         // that row snapshot's size once written (until then the one before's),
                                      // 0: none, or a directory snapshot (its cost follows its new files)
  std::size_t delta_bytes_since = 0;  // of the deltas written for epochs after last_epoch
};

// A slot's snapshot is due at epoch once snapshot_interval epochs passed since its last one and (by size)
// the deltas written since weigh at least as much as that snapshot, or at the latest
// max_intervals_between_snapshots intervals after it (light or empty deltas, a state that shrank): recovery
// then replays at most interval - 1 deltas or one snapshot's worth and one delta, and never more than
// that many intervals of deltas (plus the epochs in flight). Spark's minDeltasForSnapshot is the
// interval's analogue.
inline constexpr std::int64_t max_intervals_between_snapshots = 10;
bool snapshot_due(const snapshot_progress& slot, std::int64_t epoch, const checkpoint_options& options);

struct checkpoint_metadata {
  int version = 1;
  std::string query_id;
  std::string graph;  // JSON text; stored and read back minified
};

struct recovered_checkpoint {
  std::int64_t last_committed = -1;          // -1: nothing committed yet
  std::vector<std::string> committed_end;    // end offsets of last_committed (empty when -1)
  std::int64_t committed_watermark = operator_context::no_watermark;  // the watermark last_committed ran with
  std::vector<logged_offsets> uncommitted;   // epochs after last_committed to re-run, oldest first, contiguous
  std::vector<std::string> notes;            // fall-backs taken, each a full sentence
  // Per source: the plan records of every intact offsets record the log keeps, oldest epoch first
  // (plan_logging_source::restore_plans).
  std::vector<std::vector<std::string>> source_plans;
};

// What an epoch's commit wrote, for the progress report (stateOperators' commitTimeMs, snapshot bytes).
struct checkpoint_commit_stats {
  std::int64_t epoch = -1;
  std::vector<std::size_t> delta_bytes;     // per slot
  std::vector<std::size_t> snapshot_bytes;  // per slot; 0 when none was written. A directory snapshot
                                            // counts its new files only (not hard links to the previous one)
                                            // and is reported with its epoch; a row snapshot (written in the
                                            // background) with the first commit made durable after it
  std::size_t total_bytes = 0;              // every file written, the commit file included
  double duration_ms = 0;                   // the write round that made it durable (retention runs after it)
};

// One segment of the checkpoint's log, as retention needs it.
struct checkpoint_log_segment {
  std::int64_t number = 0;                // DIR/log/<number>.log
  std::int64_t newest_epoch = -1;         // of its offsets and commit records
  std::vector<std::int64_t> newest_delta;  // per slot: of its deltas (-1: none)
  std::int64_t commits = 0;
};

// A due snapshot as a commit job takes it: a staged directory (stage_snapshot), or the slot's rows,
// copied by copy_rows on the store's snapshot thread (called there once).
struct due_snapshot {
  due_snapshot(std::function<batch()> copy) : copy_rows(std::move(copy)) {}
  due_snapshot(batch rows) : copy_rows([rows = std::move(rows)] { return rows; }) {}
  due_snapshot(state_copy staged);
  std::string directory;
  std::function<batch()> copy_rows;
};

class checkpoint_store {
 public:
  // 3: state deltas and row snapshots LZ4-compressed. 2: offsets, deltas and commits in one append-only log,
  // still read (and taken on as 3 by write_metadata at a query's start). 1: a file per record, no longer read.
  inline static constexpr int format_version = 3;
  inline static constexpr int oldest_readable_version = 2;

  // Creates directory when missing; throws flow::error ("checkpoint: cannot create directory '...': ...").
  explicit checkpoint_store(std::string directory, checkpoint_options options = {});
  // Finishes the snapshots being written, so that a query that stops leaves its newest one.
  ~checkpoint_store();
  checkpoint_store(const checkpoint_store&) = delete;
  checkpoint_store& operator=(const checkpoint_store&) = delete;

  const std::string& directory() const { return directory_; }
  const checkpoint_options& options() const { return options_; }

  // nullopt: a fresh checkpoint. A damaged file or another format version is a flow::error saying what to do.
  std::optional<checkpoint_metadata> read_metadata() const;
  // flow::error when m.graph is not JSON text.
  void write_metadata(const checkpoint_metadata& m);

  // Rebuilds every slot's state as of the last consistent committed epoch into states (empty states, one per
  // slot, from operator::make_state(): restore() or restore_from() the newest usable snapshot, a directory
  // snapshot only once its manifest matches every file, then apply_changes() of each later delta) and says
  // what to re-run. Removes what lies beyond that point (commits and deltas of later epochs, by removal
  // records appended to the log; snapshots of later epochs, leftover ".*.tmp" files and directories) and
  // damaged snapshots. The log's torn tails and damaged records: docs/fault-tolerance.md.
  recovered_checkpoint recover(const std::vector<operator_state*>& states);

  // Where the jobs' log records go: give it to the checkpoint_writer (called on its thread only).
  log_appender appender();
  // The intact entries of the log at directory by name ("offsets/3", "commits/3", "state/0/3.delta"), as
  // recovery would read them: for tools, tests and benches. Takes no lock; throws flow::error when unreadable.
  static std::map<std::string, std::string> read_log(const std::string& directory);

  // The writes of an epoch, as jobs for a checkpoint_writer (or run_write_job). Each call is made on the
  // thread that drives the store, in the lifecycle's order; the jobs' functions run on the writer's thread
  // and touch nothing the caller keeps.
  // The record offsets/<epoch>: written while the epoch runs, durable before its sinks commit it. A test
  // hook: with FLOW_CHECKPOINT_HOLD_OFFSETS=<e> in the environment, the writer stops for good before the
  // offsets of epoch e (a process to be killed with its epoch run but not logged).
  write_job offsets_job(const logged_offsets& epoch) const;
  // The epoch committed: for every slot its delta record (changes[slot]) and, when due, its snapshot, then
  // the record commits/<epoch> (after the snapshot files of the round); once durable, the retention rule
  // removes old segments and snapshots. snapshot(slot) is
  // called here, only when a snapshot is due, and returns the slot's state as of epoch (a staged directory,
  // or how to copy its rows); nullopt when the caller's state is already past epoch (the snapshot is then
  // taken at a later commit). A snapshot of rows is copied, encoded and written by a thread of the store's
  // own (the commit needs the delta, not the snapshot), so that none of that holds up the commit; a failure
  // to write it fails the next commit job.
  write_job commit_job(std::int64_t epoch, std::vector<batch> changes,
                       const std::function<std::optional<due_snapshot>(std::size_t slot)>& snapshot);
  // Waits for the row snapshots being written in the background; returns the failure to write one (which
  // only a next commit job would report), so that a query does not end cleanly after its last snapshot failed.
  std::optional<std::string> finish_snapshots();
  // The figures of epoch's commit once it is durable (the newest commits' are kept).
  std::optional<checkpoint_commit_stats> commit_stats(std::int64_t epoch) const;
  // The newest durable commit's figures (epoch -1 before the first).
  checkpoint_commit_stats last_commit() const;

  // The same, written at once on the calling thread (tests, tools), row snapshots included.
  void write_offsets(const logged_offsets& epoch);
  void write_commit(std::int64_t epoch, const std::vector<batch>& changes,
                    const std::function<state_copy(std::size_t slot)>& snapshot);

  // The first, cheap step of a due snapshot, on the thread that owns state (as of epoch): its rows, or for
  // a state that snapshots to a directory, snapshot_to state/<slot>/.<epoch>.snapshot.tmp (RocksDB: a
  // checkpoint of hard links). The commit job makes it durable on the writer's thread: each new file
  // fsynced, a sealed manifest of names, sizes and CRC32s, renamed to state/<slot>/<epoch>.snapshot.d.
  state_copy stage_snapshot(std::size_t slot, std::int64_t epoch, const operator_state& state);

  // DIR/sources/<source>, created: source_reader::use_checkpoint's directory.
  std::string source_directory(std::size_t source);
  // DIR/sinks/<sink>, created: sink_writer::use_checkpoint's directory.
  std::string sink_directory(std::size_t sink);

 private:
  // rows_snapshot_in_background false: a snapshot of rows is written in the job's round (write_commit).
  write_job commit_job(std::int64_t epoch, std::vector<batch> changes,
                       const std::function<std::optional<due_snapshot>(std::size_t slot)>& snapshot,
                       bool rows_snapshot_in_background);
  // Hands a row snapshot to snapshot_writer_, which encodes, seals and writes it.
  void write_snapshot_in_background(std::size_t slot, std::int64_t epoch, std::function<batch()> copy_rows);
  // Retention may take epoch's snapshot of slot for a base from now on; bytes weighs it for snapshot_due.
  void snapshot_is_durable(std::size_t slot, std::int64_t epoch, std::size_t bytes);
  std::string slot_directory(std::size_t slot) const;
  // Makes the staged directory snapshot of slot durable as <epoch>.snapshot.d; returns the bytes it wrote.
  std::size_t seal_directory_snapshot(std::size_t slot, std::int64_t epoch, const std::string& staged);
  // Removes the snapshots no epoch >= newest - min_batches_to_retain + 1 needs, and notes each slot's base.
  void apply_retention(std::int64_t newest, std::size_t slots);
  // Removes the oldest segments whose records no retained epoch needs (given the bases apply_retention noted),
  // after syncing the sources' own files (their plan records in the segments' offsets go with them).
  void remove_old_segments(std::int64_t newest);
  // On the writing thread: appends records to the open segment, opening a new one first when due.
  void append_records(const std::vector<std::string>& records);
  // On the writing thread, once epoch's commit is durable.
  void commit_durable(checkpoint_commit_stats stats);

  std::string directory_;
  checkpoint_options options_;
  std::optional<std::int64_t> hold_offsets_epoch_;  // FLOW_CHECKPOINT_HOLD_OFFSETS (offsets_job)
  bool retention_scanned_ = false;           // apply_retention ran in this process (writing thread)
  connectors::unique_fd lock_;               // flock on DIR/.lock while this store lives
  // The log (writing thread, after recover()): its segments oldest first, the last one open while log_ is.
  std::deque<checkpoint_log_segment> segments_;
  std::unique_ptr<connectors::sealed_log> log_;
  std::int64_t next_segment_ = 0;
  std::vector<std::int64_t> retention_base_;  // per slot: the snapshot retention keeps as base (-1: none yet)
  mutable std::mutex stats_mutex_;
  std::deque<checkpoint_commit_stats> recent_commits_;  // guarded by stats_mutex_
  std::mutex snapshot_mutex_;
  std::vector<snapshot_progress> snapshot_progress_;  // per slot (snapshot_mutex_)
  std::vector<std::int64_t> durable_snapshot_;  // per slot: its newest durable snapshot, -1: none (snapshot_mutex_)
  bool snapshot_durable_ = false;               // one became durable since the last retention scan (snapshot_mutex_)
  std::optional<std::string> snapshot_failure_;  // (snapshot_mutex_)
  // Per slot: bytes of row snapshots made durable since the last commit's figures were taken (snapshot_mutex_).
  std::vector<std::size_t> unreported_snapshot_bytes_;
  // Declared last: destroyed first, before the members its jobs use.
  std::unique_ptr<checkpoint_writer> snapshot_writer_;
};

}  // namespace flow::runtime
