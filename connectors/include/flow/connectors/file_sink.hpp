// Spark's file sink (writeStream.format("csv" | "json")): exactly-once part files, committed per epoch
// through a metadata log that readers consult.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// Name of the commit log directory under the sink's path: one entry per committed epoch, named by the
// epoch number, holding {"epoch":N,"rows":R,"files":["part-...",...]}.
inline constexpr const char* file_sink_log_directory = "_flow_metadata";

// format: "csv" or "json" (JSON lines). Options: path (required; created if missing), maxRecordsPerFile
// (default 0: unlimited), checkpointLocation (the query's, read by the runtime: docs/fault-tolerance.md);
// csv only: header (default false, as in Spark), sep (default ",", one character or \t).
// Append mode only. Each epoch's rows go to part-<epoch:05>-<n:05>.<format>, written under a hidden
// temporary name, fsync'd and renamed at commit, then the epoch's log entry is written atomically.
// A part file has its final name before the entry is written: readers go through the log (committed_files;
// libflow's file source does so for any directory with a log). A replayed epoch that has a log entry is
// skipped; one without is rewritten after its stray files are deleted. open() on a directory with a log
// (a restart) deletes the part files of every epoch without an entry; the restarted query's epochs that
// the log holds are skipped, and fail with flow::error when their row count differs from the entry's (the
// query planned other epochs: it ran without the checkpoint that wrote the directory). open() also throws flow::error when
// the path cannot be created or a column cannot be written (csv: window and array<string> columns, as
// Spark refuses struct and array columns in CSV). FLOW_FILE_SINK_KILL_BEFORE_LOG=<epoch> in the environment
// makes the process SIGKILL itself between that epoch's part files and its log entry (for crash tests).
// Metrics: numFiles, numOutputRows, numOutputBytes (since the sink was made).
std::unique_ptr<flow::sink_writer> make_file_sink(std::string format, flow::options opts);

// The files of path's committed epochs, in epoch order then part order (full paths): what a consumer of
// the sink's output should read. Files of uncommitted or failed epochs never appear. Throws flow::error
// when path has no commit log or an entry is unreadable.
std::vector<std::string> committed_files(const std::string& path);

// True when path is a file sink's output directory (it has a commit log).
bool has_commit_log(const std::string& path);
// The epochs path's commit log holds, in order (throws as committed_files).
std::vector<std::int64_t> committed_epochs(const std::string& path);
// The part-file names (not paths) path's commit log lists for a committed epoch.
std::vector<std::string> committed_epoch_files(const std::string& path, std::int64_t epoch);

}  // namespace flow::connectors

namespace flow {
using connectors::committed_files;
using connectors::make_file_sink;
}  // namespace flow
