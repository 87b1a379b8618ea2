// The contracts between the runtime and connectors. Connectors implement these; the runtime's
// source and sink actors drive them. No actors here, so connectors are unit-testable on their own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "flow/batch.hpp"
#include "flow/formats.hpp"
#include "flow/operators.hpp"

namespace flow {

// What a source hands downstream: a decoded batch, or raw records the first stage decodes.
using source_unit = std::variant<batch, raw_chunk>;

// An epoch's files for a source whose vertex instances read them themselves, each on its node (a cluster
// run; the files lie on a path every node sees, as in Spark): the files in reading order, and the size
// next() would cut their chunks at. Each instance cuts every file and decodes the chunks next() would have
// dealt it (the epoch's k-th chunk to instance k % parallelism), so the result is the same as the reader's.
struct file_read_plan {
  std::vector<std::string> files;
  std::size_t max_chunk_bytes = 0;
};

// An epoch's data cut into ranges for a source whose vertex instances read them themselves, each on its node
// (a cluster run; Kafka's partitions): each range is (start, end] in this source's offsets, which begin_read
// of another reader made from the same options reads; in reading order. Instance k reads ranges k,
// k + parallelism, ..., each in units of at most max_unit_bytes.
struct range_read_plan {
  std::vector<std::pair<std::string, std::string>> ranges;
  std::size_t max_unit_bytes = 0;
};

// Figures a connector adds to the query progress ("metrics" of the source entry).
using connector_metrics = std::vector<std::pair<std::string, std::int64_t>>;

// A replayable (or not) source of an unbounded table. Offsets are JSON text, as in Spark's
// progress reports and checkpoint logs: opaque to the runtime, compared only for equality.
class source_reader {
 public:
  virtual ~source_reader() = default;
  virtual std::string description() const = 0;
  // What offsets of this source refer to, for a checkpoint's compatibility check (flow/graph_fingerprint.hpp):
  // what it reads (path, topics, partitions), not how fast. Default: description().
  virtual std::string identity() const { return description(); }
  virtual schema_ptr output_schema() const = 0;
  // Set when the source emits raw_chunk units.
  virtual std::shared_ptr<const decoder> chunk_decoder() const { return nullptr; }
  // The query runs on a checkpoint location: directory (created; empty at the first run) is this source's
  // own and outlives the process. Called once, before initial_offset(). A source whose offsets would not
  // mean the same data in a restarted process keeps there what makes them do so (the file source its file
  // log, a push source with walEnabled its write-ahead log). Throws flow::error when it cannot.
  virtual void use_checkpoint(const std::string& /*directory*/) {}
  // The offset before any data.
  virtual std::string initial_offset() = 0;
  // Plans the next epoch: the end offset of the data available after start, within the source's
  // rate limits (maxFilesPerTrigger, ...), or nullopt when nothing new is available.
  // Throws flow::error when the source itself is broken (missing directory, ...).
  virtual std::optional<std::string> latest_offset(const std::string& start) = 0;
  // Data-driven epochs: the source calls arrived() once when data arrives after a latest_offset() that
  // found none, from any thread, so that the runtime plans the next epoch at once instead of polling.
  // arrived() must be cheap and may be called when nothing new is there. Called once, before the first
  // latest_offset(). Returns false (the default) when the source cannot tell: the runtime then polls it.
  virtual bool notify_when_data(std::function<void()> /*arrived*/) { return false; }
  // True when arrived() also follows a latest_offset() that found data: any data past the newest plan's end
  // is announced, so the runtime need not plan ahead of an epoch to find it.
  virtual bool notifies_after_any_plan() const { return false; }
  // Starts reading (start, end]; next() then yields units of bounded size until nullopt.
  // The same range always yields the same data (replay after a failure).
  virtual void begin_read(const std::string& start, const std::string& end) = 0;
  virtual std::optional<source_unit> next() = 0;
  // A source of files whose instances may read them (plan_file_reads) in a cluster run.
  virtual bool instances_can_read_files() const { return false; }
  // Instead of begin_read: the files of (start, end] for the instances to read (sources that can).
  virtual file_read_plan plan_file_reads(const std::string& /*start*/, const std::string& /*end*/) {
    throw error(description() + ": its instances cannot read its data themselves");
  }
  // A source whose epochs split into ranges its instances may read themselves (plan_range_reads) in a
  // cluster run, each instance with a reader of its own made from the same scan.
  virtual bool instances_can_read_ranges() const { return false; }
  // Instead of begin_read: (start, end] cut into ranges for the instances to read (sources that can).
  virtual range_read_plan plan_range_reads(const std::string& /*start*/, const std::string& /*end*/) {
    throw error(description() + ": its instances cannot read its data themselves");
  }
  // Everything up to end is committed downstream (clean up, acknowledge upstream).
  virtual void commit(const std::string& /*end*/) {}
  // Trigger.Once plans all available data as one epoch: rate limits (maxFilesPerTrigger, ...) are off.
  virtual void set_rate_limits_enabled(bool /*enabled*/) {}
  // Upper bound for one unit's size; the runtime lowers it so that small epochs still spread over cores.
  virtual void set_max_unit_bytes(std::size_t /*bytes*/) {}
  virtual connector_metrics metrics() const { return {}; }
  // Why the source delivers no data now (e.g. "HTTP 401 Unauthorized: ..." while a server refuses the
  // token), for the query's status; empty while it can deliver. Called while a receiver thread runs.
  virtual std::string status() const { return {}; }
  virtual void stop() {}
};

// Receives an epoch's result, possibly in several batches, then commits it atomically.
// A committed epoch may be replayed after a failure: commit must be idempotent per epoch.
class sink_writer {
 public:
  virtual ~sink_writer() = default;
  virtual std::string description() const = 0;
  // The query runs on a checkpoint location: directory (created) is this sink's own (DIR/sinks/<k>) and
  // outlives the process, for what a restarted sink must find again (the Kafka sink's transactional id).
  // Called once, before open(). Throws flow::error when it cannot.
  virtual void use_checkpoint(const std::string& /*directory*/) {}
  // Called once before the first epoch. key_columns are the grouping keys (update mode upserts by them).
  virtual void open(const schema_ptr& input, output_mode mode, const std::vector<std::string>& key_columns) = 0;
  virtual void write(std::int64_t epoch, const batch& rows) = 0;
  virtual void commit(std::int64_t epoch) = 0;
  // Drops what was written for an epoch that will be replayed.
  virtual void abort(std::int64_t /*epoch*/) {}
  virtual connector_metrics metrics() const { return {}; }
  virtual void close() {}
};

// One row of a batch, for row-at-a-time user code (foreach).
class row_view {
 public:
  row_view(const batch& rows, std::size_t index) : rows_(&rows), index_(index) {}
  const flow::schema& schema() const { return rows_->schema(); }
  std::size_t size() const { return rows_->num_columns(); }
  value get(std::size_t column) const { return rows_->at(index_, column); }
  value get(std::string_view column) const { return rows_->at(index_, rows_->schema().index_of(column)); }
  bool is_null(std::string_view column) const { return rows_->col(column).is_null(index_); }

 private:
  const batch* rows_;
  std::size_t index_;
};

// Spark's ForeachWriter: open(partition, epoch) (false skips the partition), process(row) for each row,
// close(error) with the error that ended processing, if any. Called from the sink actor's thread.
class foreach_writer {
 public:
  virtual ~foreach_writer() = default;
  virtual bool open(std::int64_t partition, std::int64_t epoch) = 0;
  virtual void process(const row_view& row) = 0;
  virtual void close(const std::optional<std::string>& error) = 0;
};

// Spark's foreachBatch: the epoch's whole result and its id.
using foreach_batch_function = std::function<void(const batch& rows, std::int64_t epoch)>;

}  // namespace flow
