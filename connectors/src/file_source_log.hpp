// The file source's file log in a checkpoint (Spark's sources/<i> metadata log): the files each planned
// batch takes, one sealed entry per batch, so that {"logOffset":N} names the same files after a restart.
// Private to the connectors library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
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

// Entries are sealed records appended to directory/batches.log (sealed_log: one fdatasync per planned batch);
// a batch that takes no file writes nothing. Checkpoints written before 2026-11-30 hold an atomically written
// file directory/<end> per entry: those are read first, and later entries appended to the log.
class file_source_log {
 public:
  // Opens the log; throws flow::error naming the file when it is damaged before its last record.
  explicit file_source_log(std::string directory);

  // The logged batches in order, each starting where the one before ends. Throws flow::error naming the
  // entry when one is damaged (checksum, truncation), malformed or missing from the sequence.
  std::vector<logged_batch> load();
  // Durable once it returns.
  void append(const logged_batch& batch);
  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
  sealed_log log_;
};

}  // namespace flow::connectors
