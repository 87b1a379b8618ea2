// Cutting a push source's byte stream into records for its record_log.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "flow/connectors/record_log.hpp"

namespace flow::connectors {

// What a push source's receiver has taken in; shared with the line_splitter that updates it.
struct ingest_counters {
  std::atomic<std::uint64_t> records{0}, bytes{0}, bad_records{0};
  void received(std::size_t n, std::size_t payload_bytes) {
    records.fetch_add(n, std::memory_order_relaxed);
    bytes.fetch_add(payload_bytes, std::memory_order_relaxed);
  }
  void bad() { bad_records.fetch_add(1, std::memory_order_relaxed); }
};

// Cuts one connection's byte stream into lines and appends them to a record_log (lines framing). The
// complete lines of one read go in as one append_framed() run straight from the read buffer, with
// their '\r' (the text, csv and json decoders strip a trailing '\r'); only a line spread over reads,
// or the first one of a connection when a UTF-8 byte-order mark may open it, is assembled and appended
// alone. A line longer than max_line_bytes (without '\r' and mark) is a bad record, skipped up to its
// newline without buffering it. Not thread-safe: one splitter per connection, used by one thread.
class line_splitter {
 public:
  struct settings {
    std::size_t max_line_bytes = 1 << 20;
    bool strip_bom = false;           // drop a UTF-8 byte-order mark that opens the stream
    bool skip_blank = false;          // drop lines of only spaces and tabs (keep-alives)
    std::size_t keep_recent = 0;      // remember the last N lines appended (see recent())
  };
  line_splitter(record_log& log, ingest_counters& counters, settings s);

  // Appends the complete lines in data; keeps the unfinished rest. False once the log is closed.
  bool consume(const char* data, std::size_t size);
  // The stream ended: appends its last line if it lacks a newline (as Java's readLine sees it), and
  // resets for a new stream. False once the log is closed.
  bool finish();
  // Forgets an unfinished line and starts over as at a new stream's start.
  void reset();
  // The last keep_recent lines appended, oldest first (without '\r').
  const std::deque<std::string>& recent() const { return recent_; }
  void clear_recent() { recent_.clear(); }

 private:
  bool append_one(std::string_view line);
  bool flush_run(const char* run);
  void remember(std::string_view line);

  record_log* log_;
  ingest_counters* counters_;
  settings settings_;
  std::string partial_;
  bool discarding_ = false;  // inside an oversize line: skip to its newline
  bool at_start_ = true;     // the next line is the stream's first (a mark may open it)
  std::vector<std::uint32_t> ends_;  // of the current run
  std::size_t run_bytes_ = 0;        // payload bytes of the current run (no '\r', no '\n')
  std::deque<std::string> recent_;
};

}  // namespace flow::connectors
