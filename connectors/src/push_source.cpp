#include "flow/connectors/push_source.hpp"

#include <unistd.h>

#include <charconv>

#include "flow/connectors/durable_file.hpp"
#include "receiver_wal.hpp"

namespace flow::connectors {

namespace {

bool wants_timestamp(const push_source_config& c) {
  return c.format == "text" && c.opts.get_bool("includeTimestamp", false);
}

record_framing framing_of(const std::string& format) {
  if (format == "text") return record_framing::string_column;
  if (format == "json") return record_framing::lines;
  // A csv message may hold line breaks (in quoted fields): framed whole, it is decoded on its own.
  if (format == "csv" || format == "binary") return record_framing::length_prefixed;
  throw error("unknown message format '" + format + "'; supported: text, csv, json, binary");
}

schema_ptr schema_of(const push_source_config& c) {
  framing_of(c.format);  // rejects an unknown format first
  if (c.format == "text") return push_source::text_schema(wants_timestamp(c));
  if (!c.schema)
    throw error(c.description + ": format '" + c.format + "' needs a schema; call schema(...) on the reader");
  return c.schema;
}

// Without a write-ahead log, the checkpoint keeps only where numbering continues after a restart.
constexpr std::string_view next_offset_file = "next-offset";
constexpr std::string_view owner = "push source";

}  // namespace

push_source::push_source(push_source_config config)
    : config_(std::move(config)),
      include_timestamp_(wants_timestamp(config_)),
      wal_enabled_(config_.opts.get_bool("walEnabled", false)),
      schema_(schema_of(config_)),
      log_(framing_of(config_.format), static_cast<std::size_t>(config_.opts.get_int("maxBufferedBytes", 64 << 20)),
           static_cast<std::size_t>(config_.opts.get_int("blockBytes", 256 << 10)), include_timestamp_) {
  if (config_.format != "csv" && config_.format != "json") return;  // text and binary blocks become batches here
  options decoder_opts = config_.opts;
  decoder_opts.set("header", "false");  // every message is a record
  decoder_ = make_decoder(config_.format, decoder_opts, schema_);
}

push_source::~push_source() = default;

void push_source::use_checkpoint(const std::string& directory) {
  std::optional<std::uint64_t> numbered;  // where a run without walEnabled left the numbering
  const std::string next_offset_path = directory + "/" + std::string(next_offset_file);
  if (::access(next_offset_path.c_str(), F_OK) == 0) {
    std::string why;
    auto text = unseal(read_file(owner, next_offset_path), why);
    if (!text) {
      throw error(config_.description + ": '" + next_offset_path + "' is damaged (" + why +
                  "), so the offsets its earlier run reported are unknown; start the query on a new checkpoint "
                  "location");
    }
    numbered = parse_offset(*text);
  }
  if (wal_enabled_) {
    wal_ = std::make_unique<receiver_wal>(directory);
    first_offset_ = reported_end_ = wal_->segment_count() == 0 && numbered ? *numbered : wal_->end();
    if (!wal_->recovered().empty()) first_offset_ = wal_->recovered().front().first;
    log_.resume_at(first_offset_);
    for (const auto& block : wal_->recovered()) log_.restore_block(block.records, block.arrival_micros);
    if (!wal_->recovered().empty()) recovered_records(wal_->recovered().back().records);
    wal_->release_recovered();
    return;
  }
  if (receiver_wal::present_in(directory)) {
    throw error(config_.description +
                ": the checkpoint holds the write-ahead log of a run with walEnabled=true, whose records this run "
                "would lose; keep option walEnabled=true, or start the query on a new checkpoint location");
  }
  numbering_directory_ = directory;
  if (!numbered) return;
  first_offset_ = reported_end_ = *numbered;
  log_.resume_at(first_offset_);
}

std::string push_source::offset_json(std::uint64_t offset) { return "{\"offset\":" + std::to_string(offset) + "}"; }

std::uint64_t push_source::parse_offset(const std::string& json) {
  constexpr std::string_view key = "\"offset\":";
  auto at = json.find(key);
  std::uint64_t value = 0;
  if (at != std::string::npos) {
    const char* begin = json.data() + at + key.size();
    auto [ptr, ec] = std::from_chars(begin, json.data() + json.size(), value);
    if (ec == std::errc{} && ptr != begin) return value;
  }
  throw error("push source: malformed offset '" + json + "'; expected {\"offset\":N}");
}

schema_ptr push_source::text_schema(bool include_timestamp) {
  std::vector<field> fields{{"value", type_id::string, true}};
  if (include_timestamp) fields.push_back({"timestamp", type_id::timestamp, true});
  return make_schema(std::move(fields));
}

std::optional<std::string> push_source::latest_offset(const std::string& start) {
  if (stopped_) return std::nullopt;
  if (!started_) {
    // As Spark's receivers: a write-ahead log outside a checkpoint would be lost with the process anyway.
    if (wal_enabled_ && !wal_)
      throw error(config_.description +
                  ": option walEnabled needs a checkpoint location; set checkpointLocation on the query or "
                  "the session, or drop walEnabled");
    started_ = true;
    start_receiving();
  }
  auto end = log_.seal_and_arm();
  if (end <= parse_offset(start)) return std::nullopt;
  if (end > reported_end_) {
    // Before the range is reported: its records (with a WAL) or at least its numbering are on disk.
    if (wal_) wal_->append(log_, log_.blocks(reported_end_, end));
    else if (!numbering_directory_.empty())
      write_file_atomically(owner, numbering_directory_, std::string(next_offset_file), seal(offset_json(end)));
    reported_end_ = end;
  }
  return offset_json(end);
}

// The receiver's next append after any plan calls arrived (record_log::seal_and_arm).
bool push_source::notify_when_data(std::function<void()> arrived) {
  log_.set_append_listener(std::move(arrived));
  return true;
}

void push_source::begin_read(const std::string& start, const std::string& end) {
  next_block_ = 0;
  // Without a write-ahead log the records before first_offset_ died with an earlier process: a range
  // reported then reads as empty, and one planned from an earlier start after the restart reads from there.
  auto from = parse_offset(start);
  const auto to = parse_offset(end);
  if (!wal_) from = std::max(from, first_offset_);
  if (to <= from) {
    reading_.clear();
    return;
  }
  reading_ = log_.blocks(from, to);
}

std::optional<source_unit> push_source::next() {
  while (next_block_ < reading_.size()) {
    auto unit = unit_from(reading_[next_block_++]);
    if (unit) return unit;
  }
  reading_.clear();
  return std::nullopt;
}

std::optional<source_unit> push_source::unit_from(const std::shared_ptr<const log_block>& block) {
  // The chunk keeps the block alive through an aliasing pointer: no copy of the bytes. A block never
  // starts a file: a byte-order mark was the receiver's business, so a record that opens with one keeps
  // it (file_offset only has to be non-zero for that).
  auto chunk = [&] {
    std::shared_ptr<const std::string> bytes(block, &block->bytes);
    raw_chunk unit{bytes, 0, bytes->size(), config_.description, block->first + 1, block->first + 1};
    unit.framed_messages = log_.framing() == record_framing::length_prefixed;
    return unit;
  };
  if (decoder_) return source_unit{chunk()};
  if (config_.format == "text") {
    // The rows are the block's string column, shared through an aliasing pointer.
    std::vector<column> columns{column(std::shared_ptr<const column_data>(block, &block->values))};
    if (include_timestamp_) {
      column_builder times(type_id::timestamp, block->count);
      for (std::int64_t micros : block->arrival_micros) times.append_timestamp(timestamp{micros});
      columns.push_back(times.finish());
    }
    return source_unit{batch(schema_, std::move(columns))};
  }
  // binary: each record is one encoded batch of the configured schema.
  std::vector<batch> decoded;
  for_each_length_prefixed(block->bytes, [&](std::string_view record) {
    try {
      batch b = decode_batch(reinterpret_cast<const std::uint8_t*>(record.data()), record.size());
      if (b.schema() == *schema_) decoded.push_back(std::move(b));
      else count_bad_record();
    } catch (const error&) {
      count_bad_record();
    }
  });
  if (decoded.empty()) return std::nullopt;
  return source_unit{decoded.size() == 1 ? decoded.front() : concat(decoded)};
}

void push_source::commit(const std::string& end) {
  log_.commit(parse_offset(end));
  if (wal_) wal_->drop_before(parse_offset(end));
}

connector_metrics push_source::metrics() const {
  connector_metrics m{{"numRecordsReceived", static_cast<std::int64_t>(counters_.records.load())},
                      {"numBytesReceived", static_cast<std::int64_t>(counters_.bytes.load())},
                      {"numBadRecords", static_cast<std::int64_t>(counters_.bad_records.load())},
                      {"bufferedBytes", static_cast<std::int64_t>(log_.buffered_bytes())}};
  for (auto& extra : extra_metrics()) m.push_back(std::move(extra));
  return m;
}

void push_source::stop() {
  if (stopped_) return;
  stopped_ = true;
  log_.close();
  if (started_) stop_receiving();
}

}  // namespace flow::connectors
