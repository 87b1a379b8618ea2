#include "flow/connectors/push_source.hpp"

#include <charconv>
#include <cstring>

namespace flow::connectors {

namespace {

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------- record_log

record_log::record_log(record_framing framing, std::size_t max_bytes, std::size_t block_bytes, bool keep_arrival_times)
    : framing_(framing),
      max_bytes_(std::max<std::size_t>(max_bytes, 1)),
      block_bytes_(std::max<std::size_t>(block_bytes, 1)),
      keep_arrival_times_(keep_arrival_times) {}

bool record_log::append(std::string_view record) {
  std::unique_lock<std::mutex> lock(mutex_);
  space_.wait(lock, [&] { return closed_ || buffered_bytes_ < max_bytes_; });
  if (closed_) return false;
  if (!open_) {
    open_ = std::make_unique<log_block>();
    open_->first = next_offset_;
    open_->bytes.reserve(std::min(block_bytes_, max_bytes_) + record.size() + 8);
  }
  const std::size_t before = open_->bytes.size();
  if (framing_ == record_framing::lines) {
    open_->bytes.append(record);
    open_->bytes.push_back('\n');
  } else {
    auto size = static_cast<std::uint32_t>(record.size());
    char prefix[4] = {static_cast<char>(size & 0xff), static_cast<char>((size >> 8) & 0xff),
                      static_cast<char>((size >> 16) & 0xff), static_cast<char>((size >> 24) & 0xff)};
    open_->bytes.append(prefix, sizeof prefix);
    open_->bytes.append(record);
  }
  if (keep_arrival_times_) open_->arrival_micros.push_back(now_micros());
  ++open_->count;
  ++next_offset_;
  buffered_bytes_ += open_->bytes.size() - before;
  if (open_->bytes.size() >= block_bytes_) seal_locked();
  return true;
}

void record_log::seal_locked() {
  if (!open_ || open_->count == 0) return;
  sealed_.push_back(std::shared_ptr<const log_block>(std::move(open_)));
  open_.reset();
}

std::uint64_t record_log::seal() {
  std::lock_guard<std::mutex> lock(mutex_);
  seal_locked();
  return next_offset_;
}

std::vector<std::shared_ptr<const log_block>> record_log::blocks(std::uint64_t start, std::uint64_t end) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<const log_block>> out;
  for (const auto& b : sealed_) {
    if (b->first + b->count <= start) continue;
    if (b->first >= end) break;
    if (b->first < start || b->first + b->count > end)
      throw error("push source: offsets " + std::to_string(start) + ".." + std::to_string(end) +
                  " do not fall on block boundaries (internal error)");
    out.push_back(b);
  }
  std::uint64_t covered = 0;
  for (const auto& b : out) covered += b->count;
  if (covered != end - start)
    throw error("push source: records " + std::to_string(start) + ".." + std::to_string(end) +
                " are no longer buffered; they were committed already");
  return out;
}

void record_log::commit(std::uint64_t end) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!sealed_.empty() && sealed_.front()->first + sealed_.front()->count <= end) {
      buffered_bytes_ -= std::min(buffered_bytes_, sealed_.front()->bytes.size());
      sealed_.pop_front();
    }
  }
  space_.notify_all();
}

void record_log::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  space_.notify_all();
}

std::size_t record_log::buffered_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buffered_bytes_;
}

bool record_log::full() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buffered_bytes_ >= max_bytes_;
}

// ---------------------------------------------------------------- push_source

namespace {

bool wants_timestamp(const push_source_config& c) {
  return c.format == "text" && c.opts.get_bool("includeTimestamp", false);
}

record_framing framing_of(const std::string& format) {
  if (format == "text" || format == "csv" || format == "json") return record_framing::lines;
  if (format == "binary") return record_framing::length_prefixed;
  throw error("unknown message format '" + format + "'; supported: text, csv, json, binary");
}

schema_ptr schema_of(const push_source_config& c) {
  framing_of(c.format);  // rejects an unknown format first
  if (c.format == "text") return push_source::text_schema(wants_timestamp(c));
  if (!c.schema)
    throw error(c.description + ": format '" + c.format + "' needs a schema; call schema(...) on the reader");
  return c.schema;
}

}  // namespace

push_source::push_source(push_source_config config)
    : config_(std::move(config)),
      include_timestamp_(wants_timestamp(config_)),
      schema_(schema_of(config_)),
      log_(framing_of(config_.format), static_cast<std::size_t>(config_.opts.get_int("maxBufferedBytes", 64 << 20)),
           static_cast<std::size_t>(config_.opts.get_int("blockBytes", 256 << 10)), include_timestamp_) {
  if (config_.format == "csv" || config_.format == "json" || (config_.format == "text" && !include_timestamp_)) {
    options decoder_opts = config_.opts;
    decoder_opts.set("header", "false");  // every message is a record
    decoder_ = make_decoder(config_.format, decoder_opts, config_.format == "text" ? nullptr : schema_);
  }
}

push_source::~push_source() = default;

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
    started_ = true;
    start_receiving();
  }
  auto end = log_.seal();
  if (end <= parse_offset(start)) return std::nullopt;
  return offset_json(end);
}

void push_source::begin_read(const std::string& start, const std::string& end) {
  reading_ = log_.blocks(parse_offset(start), parse_offset(end));
  next_block_ = 0;
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
  if (decoder_) {
    // The chunk keeps the block alive through an aliasing pointer: no copy of the bytes.
    std::shared_ptr<const std::string> bytes(block, &block->bytes);
    return source_unit{raw_chunk{bytes, 0, bytes->size(), config_.description, block->first + 1}};
  }
  const std::string& bytes = block->bytes;
  if (config_.format == "text") {
    column_builder values(type_id::string, block->count);
    column_builder times(type_id::timestamp, block->count);
    std::size_t pos = 0;
    for (std::size_t i = 0; i < block->count; ++i) {
      std::size_t nl = bytes.find('\n', pos);
      values.append_string(std::string_view(bytes).substr(pos, nl - pos));
      times.append_timestamp(timestamp{block->arrival_micros[i]});
      pos = nl + 1;
    }
    return source_unit{batch(schema_, {values.finish(), times.finish()})};
  }
  // binary: each record is one encoded batch of the configured schema.
  std::vector<batch> decoded;
  std::size_t pos = 0;
  while (pos + 4 <= bytes.size()) {
    std::uint32_t size = static_cast<std::uint8_t>(bytes[pos]) | static_cast<std::uint8_t>(bytes[pos + 1]) << 8 |
                         static_cast<std::uint8_t>(bytes[pos + 2]) << 16 |
                         static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[pos + 3])) << 24;
    pos += 4;
    try {
      batch b = decode_batch(reinterpret_cast<const std::uint8_t*>(bytes.data() + pos), size);
      if (b.schema() == *schema_) decoded.push_back(std::move(b));
      else count_bad_record();
    } catch (const error&) {
      count_bad_record();
    }
    pos += size;
  }
  if (decoded.empty()) return std::nullopt;
  return source_unit{decoded.size() == 1 ? decoded.front() : concat(decoded)};
}

void push_source::commit(const std::string& end) { log_.commit(parse_offset(end)); }

connector_metrics push_source::metrics() const {
  connector_metrics m{{"numRecordsReceived", static_cast<std::int64_t>(received_records_.load())},
                      {"numBytesReceived", static_cast<std::int64_t>(received_bytes_.load())},
                      {"numBadRecords", static_cast<std::int64_t>(bad_records_.load())},
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
