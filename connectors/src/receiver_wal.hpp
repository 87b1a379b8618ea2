// A push source's receiver write-ahead log (option walEnabled, Spark's receiver WAL): the records each
// planned range takes are on disk before the range is reported, so a restarted source replays the ranges
// its crashed predecessor planned, with the same offsets. Private to the connectors library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flow/connectors/durable_file.hpp"
#include "flow/connectors/record_log.hpp"

namespace flow::connectors {

// Segment files directory/wal-<offset of its first record, 20 digits>, each a sealed_log of groups (one
// group per planned range: the blocks it seals), each appended durably. A commit rotates to a new segment at the
// next group and removes the segments that lie wholly before the committed offset; the newest segment
// always stays, its name and groups keep the numbering across restarts.
class receiver_wal {
 public:
  // A block as logged: its first record's offset, records and (when kept) arrival times.
  struct logged_block {
    std::uint64_t first = 0;
    std::vector<std::string> records;
    std::vector<std::int64_t> arrival_micros;
  };

  // Reads the log in directory. A torn group at the end of the newest segment (a crash mid-write; the
  // range was never reported) is cut off the file; damage anywhere else throws flow::error naming the file.
  explicit receiver_wal(std::string directory);
  // Whether directory holds segments of a write-ahead log.
  static bool present_in(const std::string& directory);

  const std::vector<logged_block>& recovered() const { return recovered_; }
  void release_recovered() { recovered_ = {}; }
  // The offset after the last logged record, and of the first record still logged.
  std::uint64_t end() const { return end_; }
  std::uint64_t first() const { return first_; }

  // Logs blocks (records [end(), ...), as sealed by log) as one group; durable once it returns.
  void append(const record_log& log, const std::vector<std::shared_ptr<const log_block>>& blocks);
  // Records before offset are committed: segments holding only such records are removed.
  void drop_before(std::uint64_t offset);
  // Segment files on disk (for tests and metrics).
  std::size_t segment_count() const { return segments_.size(); }

 private:
  // Reads the segment that starts at first; returns it, open for appending, when it is the newest.
  std::unique_ptr<sealed_log> read_segment(std::uint64_t first, bool newest);
  std::string segment_name(std::uint64_t first) const;

  std::string directory_;
  std::vector<std::uint64_t> segments_;  // first offsets, ascending; the last one is written to
  std::unique_ptr<sealed_log> current_;  // the newest segment
  bool rotate_ = false;                  // the next group starts a new segment
  std::uint64_t first_ = 0;
  std::uint64_t end_ = 0;
  std::vector<logged_block> recovered_;
};

}  // namespace flow::connectors
