// The common part of sources whose peer pushes data (TCP sockets, ZeroMQ, HTTP feeds): a receiver
// thread appends records to a bounded log; epochs read sealed blocks of it by record offset, and a
// block is dropped when the epoch that read it commits, so a failed epoch replays the same records.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flow/column.hpp"
#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// How records sit in a block: '\n'-terminated lines (json: the stages decode them), a little-endian
// u32 length followed by the bytes (csv: the stages decode each message on its own; binary: libflow's
// batch encoding), or a string column (text: the block's values are the rows, so an epoch reads them
// without decoding or copying). append_framed and
// frame() take lines for the string column too; it keeps each line without its '\n' and trailing '\r'.
enum class record_framing { lines, length_prefixed, string_column };

// Immutable once sealed; epochs share it by pointer.
struct log_block {
  std::uint64_t first = 0;  // offset of the first record
  std::uint64_t count = 0;
  std::string bytes;        // framed records (lines, length_prefixed)
  column_data values;       // string_column: the records
  std::size_t framed_bytes = 0;  // the records' size as framed on arrival: what the log's bounds count
  std::vector<std::int64_t> arrival_micros;  // per record, when arrival times are kept
};

// Bounded: when the blocks held reach max_bytes, append() waits until a commit frees space, so the
// receiver stops reading and the peer is pushed back (TCP window, ZeroMQ high-water mark).
class record_log {
 public:
  record_log(record_framing framing, std::size_t max_bytes, std::size_t block_bytes, bool keep_arrival_times);

  // Appends one record (a line without its '\n'). Waits while the log is full; false once closed.
  bool append(std::string_view record);
  // Appends a run of records already framed (see frame()): record i is framed[ends[i - 1], ends[i])
  // (ends[-1] = 0), ends ascending. One lock and one copy per block instead of per record; blocks and
  // the bound come out exactly as from one append() per record. Waits while full; false once closed
  // (records before the wait may have been appended).
  bool append_framed(std::string_view framed, std::span<const std::uint32_t> ends);
  // string_column framing: appends complete lines ('\n'-terminated; a last line without one is taken
  // whole), each a record, scanning and copying them in one pass: blocks and the bound come out as from
  // one append() per line. Waits while full; open is false once closed (lines before may be appended).
  struct appended {
    std::size_t records = 0;
    std::size_t payload_bytes = 0;  // without '\r' and '\n'
    bool open = true;
  };
  appended append_lines(std::string_view lines);
  record_framing framing() const { return framing_; }
  // Appends record to out as this log frames it (a line and '\n', or the length prefix and the bytes).
  void frame(std::string& out, std::string_view record) const;
  // Seals the open block; returns the offset after the last record appended so far.
  std::uint64_t seal();
  // The sealed blocks holding records [start, end); start and end must be offsets seal() returned.
  std::vector<std::shared_ptr<const log_block>> blocks(std::uint64_t start, std::uint64_t end) const;
  // Drops blocks whose records all lie before end, and wakes a waiting append().
  void commit(std::uint64_t end);
  // Wakes a waiting append() and makes every later one return false.
  void close();
  std::size_t buffered_bytes() const;
  bool full() const;
  // How often an append found the log full and waited, and for how long in all.
  std::int64_t waits() const { return waits_.load(std::memory_order_relaxed); }
  std::int64_t waited_micros() const { return waited_micros_.load(std::memory_order_relaxed); }

 private:
  void seal_locked();
  void open_locked(std::size_t at_least);
  // string_column: puts one line (without '\n'; a trailing '\r' is dropped) into the open block.
  void store_value_locked(std::string_view line);
  bool wait_for_space(std::unique_lock<std::mutex>& lock);
  // Framed bytes a run may place before its last record in the open block (under the bound and the block size).
  std::size_t room_locked() const;
  record_framing framing_;
  std::size_t max_bytes_;
  std::size_t block_bytes_;
  bool keep_arrival_times_;
  mutable std::mutex mutex_;
  std::condition_variable space_;
  std::deque<std::shared_ptr<const log_block>> sealed_;
  std::unique_ptr<log_block> open_;
  // Byte buffers of released blocks, reused for new ones (fresh memory costs a page fault per 4 KiB).
  struct buffer_pool;
  std::shared_ptr<buffer_pool> pool_;
  std::uint64_t next_offset_ = 0;
  std::size_t buffered_bytes_ = 0;
  std::size_t open_chars_ = 0;  // string_column: characters of the open block in use (its string is larger)
  bool closed_ = false;
  std::atomic<std::int64_t> waits_{0}, waited_micros_{0};
};

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

// Options every push source shares: maxBufferedBytes (default 64 MiB), blockBytes (256 KiB), and for
// format "text" includeTimestamp (adds the arrival time as column "timestamp").
struct push_source_config {
  std::string description;
  std::string format = "text";  // text, csv, json, binary
  options opts;
  schema_ptr schema;            // required for csv and json; text's is value[, timestamp]; binary's is the batches'
};

// A source_reader over a record_log that a subclass's receiver thread fills. Offsets: {"offset":N}.
// Units are raw chunks over whole blocks for csv and json (decoded by the stages in parallel), or
// batches: for text the block's own string column (no decoding, no copy), for binary the decoded batches.
class push_source : public source_reader {
 public:
  explicit push_source(push_source_config config);
  ~push_source() override;

  std::string description() const override { return config_.description; }
  schema_ptr output_schema() const override { return schema_; }
  std::shared_ptr<const decoder> chunk_decoder() const override { return decoder_; }
  std::string initial_offset() override { return offset_json(0); }
  std::optional<std::string> latest_offset(const std::string& start) override;
  void begin_read(const std::string& start, const std::string& end) override;
  std::optional<source_unit> next() override;
  void commit(const std::string& end) override;
  connector_metrics metrics() const override;
  void stop() override;

  static std::string offset_json(std::uint64_t offset);
  static std::uint64_t parse_offset(const std::string& json);  // throws flow::error when malformed
  // value: string, plus timestamp: timestamp when include_timestamp.
  static schema_ptr text_schema(bool include_timestamp);

 protected:
  // Called once, at the first latest_offset: start the receiver thread.
  virtual void start_receiving() = 0;
  // Stop and join the receiver; the log is closed before, so a waiting append returns. Subclasses
  // call stop() from their destructor, while their members still exist.
  virtual void stop_receiving() = 0;
  virtual connector_metrics extra_metrics() const { return {}; }

  record_log& log() { return log_; }
  const record_log& log() const { return log_; }
  const push_source_config& config() const { return config_; }
  ingest_counters& counters() { return counters_; }
  void count_bad_record() { counters_.bad(); }
  void count_received(std::size_t bytes) { counters_.received(1, bytes); }

 private:
  std::optional<source_unit> unit_from(const std::shared_ptr<const log_block>& block);

  push_source_config config_;
  bool include_timestamp_ = false;
  schema_ptr schema_;
  std::shared_ptr<const decoder> decoder_;  // records the stages decode; null when units are batches
  record_log log_;
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::shared_ptr<const log_block>> reading_;
  std::size_t next_block_ = 0;
  ingest_counters counters_;
};

}  // namespace flow::connectors
