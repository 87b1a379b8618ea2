// The common part of sources whose peer pushes data (TCP sockets, ZeroMQ, HTTP feeds): a receiver
// thread appends records to a bounded log; epochs read sealed blocks of it by record offset, and a
// block is dropped when the epoch that read it commits, so a failed epoch replays the same records.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/connectors/line_splitter.hpp"
#include "flow/connectors/record_log.hpp"
#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// Options every push source shares: maxBufferedBytes (default 64 MiB), blockBytes (256 KiB), walEnabled
// (default false: on a checkpoint, keep received records in a write-ahead log there), and for format "text"
// includeTimestamp (adds the arrival time as column "timestamp").
struct push_source_config {
  std::string description;
  std::string format = "text";  // text, csv, json, binary
  options opts;
  schema_ptr schema;            // required for csv and json; text's is value[, timestamp]; binary's is the batches'
};

class receiver_wal;

// A source_reader over a record_log that a subclass's receiver thread fills. Offsets: {"offset":N}.
// On a checkpoint (use_checkpoint) offsets keep counting across restarts. With walEnabled the records of
// every reported range are in the write-ahead log before latest_offset returns, and a restarted source
// replays them for the same offsets; without it, a restarted source numbers its records after every offset
// its predecessor reported, so the old ranges replay as empty (what a crashed receiver held is lost, as in
// Spark). See docs/fault-tolerance.md.
// Units are raw chunks over whole blocks for csv and json (decoded by the stages in parallel), or
// batches: for text the block's own string column (no decoding, no copy), for binary the decoded batches.
class push_source : public source_reader {
 public:
  explicit push_source(push_source_config config);
  ~push_source() override;

  std::string description() const override { return config_.description; }
  schema_ptr output_schema() const override { return schema_; }
  std::shared_ptr<const decoder> chunk_decoder() const override { return decoder_; }
  void use_checkpoint(const std::string& directory) override;
  std::string initial_offset() override { return offset_json(first_offset_); }
  std::optional<std::string> latest_offset(const std::string& start) override;
  bool notify_when_data(std::function<void()> arrived) override;
  bool notifies_after_any_plan() const override { return true; }
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
  // Called from use_checkpoint with the records a restarted source recovered from its write-ahead log,
  // before the receiver starts (the HTTP feed resumes after the last of them).
  virtual void recovered_records(const std::vector<std::string>& /*last_block*/) {}

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
  bool wal_enabled_ = false;
  schema_ptr schema_;
  std::shared_ptr<const decoder> decoder_;  // records the stages decode; null when units are batches
  record_log log_;
  bool started_ = false;
  bool stopped_ = false;
  std::unique_ptr<receiver_wal> wal_;  // set on a checkpoint with walEnabled
  std::string numbering_directory_;    // set on a checkpoint without walEnabled: where the next offset is kept
  std::uint64_t first_offset_ = 0;     // the first offset this process's log holds (or starts at)
  std::uint64_t reported_end_ = 0;     // the highest end offset reported and kept on disk
  std::vector<std::shared_ptr<const log_block>> reading_;
  std::size_t next_block_ = 0;
  ingest_counters counters_;
};

}  // namespace flow::connectors
