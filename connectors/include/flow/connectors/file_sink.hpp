// Spark's file sink (writeStream.format("csv" | "json")): exactly-once part files, committed per epoch
// through a metadata log that readers consult.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// Name of the commit log directory under the sink's path: one entry per committed epoch, named by the
// epoch number, holding {"epoch":N,"files":["part-...",...]}.
inline constexpr const char* file_sink_log_directory = "_flow_metadata";

// format: "csv" or "json" (JSON lines). Options: path (required; created if missing), maxRecordsPerFile
// (default 0: unlimited), checkpointLocation (accepted for Spark compatibility, unused: offsets are kept
// in memory); csv only: header (default false, as in Spark), sep (default ",", one character or \t).
// Append mode only. Each epoch's rows go to part-<epoch:05>-<n:05>.<format>, written under a hidden
// temporary name, fsync'd and renamed at commit, then the epoch's log entry is written atomically.
// A replayed epoch that has a log entry is skipped; one without is rewritten after its stray files are
// deleted. open() throws flow::error when the path cannot be created, already holds a commit log (another
// run's output: a new run would restart at epoch 0), or a column cannot be written (csv: window and
// array<string> columns, as Spark refuses struct and array columns in CSV).
// Metrics: numFiles, numOutputRows, numOutputBytes (since the sink was made).
std::unique_ptr<flow::sink_writer> make_file_sink(std::string format, flow::options opts);

// The files of path's committed epochs, in epoch order then part order (full paths): what a consumer of
// the sink's output should read. Files of uncommitted or failed epochs never appear. Throws flow::error
// when path has no commit log or an entry is unreadable.
std::vector<std::string> committed_files(const std::string& path);

}  // namespace flow::connectors

namespace flow {
using connectors::committed_files;
using connectors::make_file_sink;
}  // namespace flow
