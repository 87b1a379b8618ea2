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
#include <string>
#include <string_view>
#include <vector>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// How records sit in a block: '\n'-terminated lines (text, csv, json), or a little-endian u32 length
// followed by the bytes (binary: libflow's batch encoding).
enum class record_framing { lines, length_prefixed };

// Immutable once sealed; epochs share it by pointer.
struct log_block {
  std::uint64_t first = 0;  // offset of the first record
  std::uint64_t count = 0;
  std::string bytes;        // framed records
  std::vector<std::int64_t> arrival_micros;  // per record, when arrival times are kept
};

// Bounded: when the blocks held reach max_bytes, append() waits until a commit frees space, so the
// receiver stops reading and the peer is pushed back (TCP window, ZeroMQ high-water mark).
class record_log {
 public:
  record_log(record_framing framing, std::size_t max_bytes, std::size_t block_bytes, bool keep_arrival_times);

  // Appends one record (a line without its '\n'). Waits while the log is full; false once closed.
  bool append(std::string_view record);
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

 private:
  void seal_locked();
  record_framing framing_;
  std::size_t max_bytes_;
  std::size_t block_bytes_;
  bool keep_arrival_times_;
  mutable std::mutex mutex_;
  std::condition_variable space_;
  std::deque<std::shared_ptr<const log_block>> sealed_;
  std::unique_ptr<log_block> open_;
  std::uint64_t next_offset_ = 0;
  std::size_t buffered_bytes_ = 0;
  bool closed_ = false;
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
// Units are raw chunks over whole blocks (decoded by the stages in parallel), or, for text with
// arrival times and for binary, batches built here.
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
  const push_source_config& config() const { return config_; }
  void count_bad_record() { bad_records_.fetch_add(1, std::memory_order_relaxed); }
  void count_received(std::size_t bytes) {
    received_records_.fetch_add(1, std::memory_order_relaxed);
    received_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }

 private:
  std::optional<source_unit> unit_from(const std::shared_ptr<const log_block>& block);

  push_source_config config_;
  bool include_timestamp_ = false;
  schema_ptr schema_;
  std::shared_ptr<const decoder> decoder_;
  record_log log_;
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::shared_ptr<const log_block>> reading_;
  std::size_t next_block_ = 0;
  std::atomic<std::uint64_t> received_records_{0}, received_bytes_{0}, bad_records_{0};
};

}  // namespace flow::connectors
