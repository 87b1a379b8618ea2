// The file source's file log in a checkpoint (Spark's sources/<i> metadata log): the files each planned
// batch takes, one sealed entry per batch, so that {"logOffset":N} names the same files after a restart.
// Private to the connectors library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flow/connectors/durable_file.hpp"

namespace flow::connectors {

struct logged_file {
  std::string path;
  std::int64_t mtime_ns = 0;
  std::uint64_t size = 0;
};

// The files of log positions [start, end).
struct logged_batch {
  std::size_t start = 0;
  std::size_t end = 0;
  std::vector<logged_file> files;
};

// A batch as a plan record (plan_logging_source::plan_record) and back; nullopt when text is not one.
std::string encode_logged_batch(const logged_batch& batch);
std::optional<logged_batch> decode_logged_batch(std::string_view text);

// Entries are sealed records appended to directory/batches.log without a sync: the same entry, as the plan
// record in the checkpoint's offsets record of its epoch, is durable before the epoch runs, and the checkpoint
// syncs this log before it drops that record (docs/fault-tolerance.md). A batch that takes no file writes
// nothing. Checkpoints written before 2026-11-30 hold an atomically written file directory/<end> per entry:
// those are read first, and later entries appended to the log.
class file_source_log {
 public:
  // Opens the log; throws flow::error naming the file when it is damaged before its last record.
  explicit file_source_log(std::string directory);

  // The logged batches in order, each starting where the one before ends. Throws flow::error naming the
  // entry when one is damaged (checksum, truncation), malformed or missing from the sequence.
  std::vector<logged_batch> load();
  // Written (it survives the process) once it returns, not synced.
  void append(const logged_batch& batch);
  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
  sealed_log log_;
};

}  // namespace flow::connectors
