#include "flow/connectors/push_source.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "flow/line_scan.hpp"

namespace flow::connectors {

namespace {

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------- record_log

// Holds at most max_bytes of buffers: never more than the log itself held at its fullest, so a log
// that drained keeps the memory of its peak (up to maxBufferedBytes) for the next burst.
struct record_log::buffer_pool {
  std::mutex mutex;
  std::vector<std::string> free;
  std::size_t free_bytes = 0;
  std::size_t max_bytes = 0;
  std::size_t max_capacity = 0;  // larger buffers (a block that took a huge record) are not kept

  std::string take() {
    std::lock_guard<std::mutex> lock(mutex);
    if (free.empty()) return {};
    std::string s = std::move(free.back());
    free.pop_back();
    free_bytes -= s.capacity();
    return s;
  }
  // Buffers keep their contents: a string column's characters are resized, not appended to, and
  // resizing over what is already there costs no zero-filling.
  void give(std::string&& s) {
    if (s.capacity() > max_capacity) return;
    std::lock_guard<std::mutex> lock(mutex);
    if (free_bytes + s.capacity() > max_bytes) return;
    free_bytes += s.capacity();
    free.push_back(std::move(s));
  }
};

record_log::record_log(record_framing framing, std::size_t max_bytes, std::size_t block_bytes, bool keep_arrival_times)
    : framing_(framing),
      max_bytes_(std::max<std::size_t>(max_bytes, 1)),
      block_bytes_(std::max<std::size_t>(block_bytes, 1)),
      keep_arrival_times_(keep_arrival_times),
      pool_(std::make_shared<buffer_pool>()) {
  pool_->max_capacity = 2 * std::min(block_bytes_, max_bytes_) + (64 << 10);
  pool_->max_bytes = max_bytes_;
}

void record_log::open_locked(std::size_t at_least) {
  open_ = std::make_unique<log_block>();
  open_->first = next_offset_;
  const std::size_t expected = std::min(block_bytes_, max_bytes_) + at_least + 8;
  if (framing_ != record_framing::string_column) {
    open_->bytes = pool_->take();
    open_->bytes.clear();
    open_->bytes.reserve(expected);
    return;
  }
  open_->values.type = type_id::string;
  open_->values.chars = pool_->take();
  if (open_->values.chars.size() < expected) open_->values.chars.resize(expected);
  open_->values.offsets.reserve(1024);
  open_->values.offsets.push_back(0);
  open_chars_ = 0;
}

void record_log::store_value_locked(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  std::string& chars = open_->values.chars;
  if (chars.size() < open_chars_ + line.size()) chars.resize(open_chars_ + line.size());
  std::memcpy(chars.data() + open_chars_, line.data(), line.size());
  open_chars_ += line.size();
  open_->values.offsets.push_back(static_cast<std::uint32_t>(open_chars_));
}

void record_log::frame(std::string& out, std::string_view record) const {
  if (framing_ != record_framing::length_prefixed) {
    out.append(record);
    out.push_back('\n');
  } else {
    append_length_prefixed(out, record);
  }
}

std::size_t record_log::room_locked() const {
  // append() takes a record while the log is under its bound and seals the block once it reaches
  // block_bytes: a run may start records while this many framed bytes come before them.
  const std::size_t open_size = open_->framed_bytes;
  return std::min(max_bytes_ - buffered_bytes_, open_size < block_bytes_ ? block_bytes_ - open_size : std::size_t{1});
}

bool record_log::wait_for_space(std::unique_lock<std::mutex>& lock) {
  auto has_room = [&] { return closed_ || buffered_bytes_ < max_bytes_; };
  if (!has_room()) {
    waits_.fetch_add(1, std::memory_order_relaxed);
    auto since = std::chrono::steady_clock::now();
    space_.wait(lock, has_room);
    waited_micros_.fetch_add(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - since).count(),
        std::memory_order_relaxed);
  }
  return !closed_;
}

bool record_log::append(std::string_view record) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!wait_for_space(lock)) return false;
  if (!open_) open_locked(record.size());
  if (framing_ == record_framing::string_column) store_value_locked(record);
  else frame(open_->bytes, record);
  const std::size_t framed_size = record.size() + (framing_ == record_framing::length_prefixed ? 4 : 1);
  if (keep_arrival_times_) open_->arrival_micros.push_back(now_micros());
  ++open_->count;
  ++next_offset_;
  open_->framed_bytes += framed_size;
  buffered_bytes_ += framed_size;
  if (open_->framed_bytes >= block_bytes_) seal_locked();
  return true;
}

record_log::appended record_log::append_lines(std::string_view lines) {
  if (framing_ != record_framing::string_column)
    throw error("record_log::append_lines needs the string_column framing (internal error)");
  appended done;
  const char* p = lines.data();
  const char* const end = p + lines.size();
  std::unique_lock<std::mutex> lock(mutex_);
  while (p < end) {
    if (!wait_for_space(lock)) {
      done.open = false;
      return done;
    }
    if (!open_) open_locked(0);
    // Lines are taken while the bytes before them stay under both limits: the one that crosses is the last.
    const std::size_t room = room_locked();
    const char* const limit = p + std::min(room, static_cast<std::size_t>(end - p));
    std::string& chars = open_->values.chars;
    std::vector<std::uint32_t>& offsets = open_->values.offsets;
    if (chars.size() < open_chars_ + static_cast<std::size_t>(limit - p) + line_copy_slack)
      chars.resize(open_chars_ + static_cast<std::size_t>(limit - p) + line_copy_slack);
    const char* line = p;
    std::size_t records = 0;
    auto take = [&](const char* nl) {
      auto length = static_cast<std::size_t>(nl - line);
      if (length > 0 && nl[-1] == '\r') --length;
      if (chars.size() < open_chars_ + length + line_copy_slack) chars.resize(open_chars_ + length + line_copy_slack);
      copy_line(chars.data() + open_chars_, line, length, static_cast<std::size_t>(end - line));
      open_chars_ += length;
      offsets.push_back(static_cast<std::uint32_t>(open_chars_));
      done.payload_bytes += length;
      ++records;
      line = nl + 1;
    };
    for_each_newline(p, limit, take);
    if (line < limit) {
      const char* nl = static_cast<const char*>(std::memchr(limit, '\n', static_cast<std::size_t>(end - limit)));
      take(nl ? nl : end);  // lines end with '\n'; a last one without is taken whole
      if (!nl) line = end;
    }
    const auto framed = static_cast<std::size_t>(line - p);
    if (keep_arrival_times_) open_->arrival_micros.insert(open_->arrival_micros.end(), records, now_micros());
    open_->count += records;
    next_offset_ += records;
    done.records += records;
    open_->framed_bytes += framed;
    buffered_bytes_ += framed;
    p = line;
    if (open_->framed_bytes >= block_bytes_) seal_locked();
  }
  return done;
}

bool record_log::append_framed(std::string_view framed, std::span<const std::uint32_t> ends) {
  // A string column's records are lines: the framing says where they end.
  if (framing_ == record_framing::string_column) return append_lines(framed).open;
  std::size_t done = 0;        // records appended
  std::size_t done_bytes = 0;  // where the next record starts in framed
  std::unique_lock<std::mutex> lock(mutex_);
  while (done < ends.size()) {
    if (!wait_for_space(lock)) return false;
    if (!open_) open_locked(ends[done] - done_bytes);
    // Records are taken while the bytes before them stay under both limits (see room_locked).
    const std::size_t room = room_locked();
    const auto last = std::lower_bound(ends.begin() + static_cast<std::ptrdiff_t>(done), ends.end(), done_bytes + room);
    const std::size_t taken_end = last == ends.end() ? ends.size() : static_cast<std::size_t>(last - ends.begin()) + 1;
    const std::size_t bytes_end = ends[taken_end - 1];
    open_->bytes.append(framed.data() + done_bytes, bytes_end - done_bytes);
    const std::size_t n = taken_end - done;
    if (keep_arrival_times_) open_->arrival_micros.insert(open_->arrival_micros.end(), n, now_micros());
    open_->count += n;
    next_offset_ += n;
    open_->framed_bytes += bytes_end - done_bytes;
    buffered_bytes_ += bytes_end - done_bytes;
    done = taken_end;
    done_bytes = bytes_end;
    if (open_->framed_bytes >= block_bytes_) seal_locked();
  }
  return true;
}

void record_log::seal_locked() {
  if (!open_ || open_->count == 0) return;
  if (framing_ == record_framing::string_column) {
    open_->values.chars.resize(open_chars_);  // shrinking: no copy, and the capacity stays for reuse
    open_->values.length = open_->count;
  }
  // The block's buffer goes back to the pool when the last epoch, chunk or column holding it lets go.
  const bool column = framing_ == record_framing::string_column;
  sealed_.push_back(std::shared_ptr<const log_block>(open_.release(), [pool = pool_, column](const log_block* block) {
    auto* owned = const_cast<log_block*>(block);
    pool->give(std::move(column ? owned->values.chars : owned->bytes));
    delete block;
  }));
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
      buffered_bytes_ -= std::min(buffered_bytes_, sealed_.front()->framed_bytes);
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

// ---------------------------------------------------------------- line_splitter

namespace {

bool blank(const char* p, std::size_t length) {
  for (std::size_t i = 0; i < length; ++i)
    if (p[i] != ' ' && p[i] != '\t') return false;
  return true;
}

// Room beyond max_line_bytes an unfinished line may take: its '\r' and a byte-order mark.
constexpr std::size_t line_slack = 4;
// consume() cuts larger inputs so run offsets fit in 32 bits.
constexpr std::size_t max_consume = std::size_t{1} << 30;

}  // namespace

line_splitter::line_splitter(record_log& log, ingest_counters& counters, settings s)
    : log_(&log), counters_(&counters), settings_(s) {}

void line_splitter::reset() {
  partial_.clear();
  discarding_ = false;
  at_start_ = true;
}

bool line_splitter::finish() {
  bool ok = true;
  if (!discarding_ && !partial_.empty()) {
    std::string last = std::move(partial_);
    partial_.clear();
    ok = append_one(last);
  }
  reset();
  return ok;
}

bool line_splitter::consume(const char* data, std::size_t size) {
  while (size > max_consume) {
    if (!consume(data, max_consume)) return false;
    data += max_consume;
    size -= max_consume;
  }
  const char* p = data;
  const char* const end = data + size;
  auto keep_unfinished = [&] {
    const auto rest = static_cast<std::size_t>(end - p);
    if (!discarding_ && partial_.size() + rest > settings_.max_line_bytes + line_slack) {
      counters_->bad();
      discarding_ = true;
      partial_.clear();
    }
    if (!discarding_) partial_.append(p, rest);
  };
  // A line the previous input left unfinished, or a stream's first line that may open with a mark:
  // assembled in partial_ and appended alone.
  while (p < end && (discarding_ || !partial_.empty() || (at_start_ && settings_.strip_bom))) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (!nl) {
      keep_unfinished();
      return true;
    }
    if (discarding_) {
      discarding_ = false;
      at_start_ = false;
    } else {
      partial_.append(p, nl);
      bool ok = append_one(partial_);
      partial_.clear();
      if (!ok) return false;
    }
    p = nl + 1;
  }
  // A string column takes the complete lines that follow in one pass of its own when none can be dropped:
  // no blank lines to skip, none to remember, and none oversize, since the input is not longer than the limit.
  if (log_->framing() == record_framing::string_column && !settings_.skip_blank && settings_.keep_recent == 0 &&
      static_cast<std::size_t>(end - p) <= settings_.max_line_bytes) {
    if (const auto* last = static_cast<const char*>(memrchr(p, '\n', static_cast<std::size_t>(end - p)))) {
      const auto appended = log_->append_lines(std::string_view(p, static_cast<std::size_t>(last + 1 - p)));
      counters_->received(appended.records, appended.payload_bytes);
      if (!appended.open) return false;
      p = last + 1;
      at_start_ = false;
    }
    if (p < end) keep_unfinished();
    return true;
  }
  // The complete lines that follow go in as runs straight from data, cut only around lines dropped.
  const char* run = p;
  bool open = true;
  for_each_newline(p, end, [&](const char* nl) {
    auto length = static_cast<std::size_t>(nl - p);
    if (length > 0 && nl[-1] == '\r') --length;
    const bool oversize = length > settings_.max_line_bytes;
    if (oversize || (settings_.skip_blank && blank(p, length))) {
      open = open && flush_run(run);
      if (oversize) counters_->bad();
      run = nl + 1;
    } else {
      ends_.push_back(static_cast<std::uint32_t>(nl + 1 - run));
      run_bytes_ += length;
    }
    p = nl + 1;
  });
  if (!open) {
    ends_.clear();
    run_bytes_ = 0;
    return false;
  }
  if (p != data) at_start_ = false;
  if (!flush_run(run)) return false;
  if (p < end) keep_unfinished();
  return true;
}

bool line_splitter::flush_run(const char* run) {
  if (ends_.empty()) return true;
  bool ok = log_->append_framed(std::string_view(run, ends_.back()), ends_);
  if (ok) {
    counters_->received(ends_.size(), run_bytes_);
    if (settings_.keep_recent > 0) {
      std::size_t from = ends_.size() - std::min(ends_.size(), settings_.keep_recent);
      for (std::size_t i = from; i < ends_.size(); ++i) {
        std::size_t begin = i == 0 ? 0 : ends_[i - 1];
        std::string_view line(run + begin, ends_[i] - 1 - begin);
        if (line.ends_with('\r')) line.remove_suffix(1);
        remember(line);
      }
    }
  }
  ends_.clear();
  run_bytes_ = 0;
  return ok;
}

bool line_splitter::append_one(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (at_start_ && settings_.strip_bom && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  at_start_ = false;
  if (settings_.skip_blank && blank(line.data(), line.size())) return true;
  if (line.size() > settings_.max_line_bytes) {
    counters_->bad();
    return true;
  }
  if (!log_->append(line)) return false;
  counters_->received(1, line.size());
  remember(line);
  return true;
}

void line_splitter::remember(std::string_view line) {
  if (settings_.keep_recent == 0) return;
  recent_.emplace_back(line);
  while (recent_.size() > settings_.keep_recent) recent_.pop_front();
}

// ---------------------------------------------------------------- push_source

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

}  // namespace

push_source::push_source(push_source_config config)
    : config_(std::move(config)),
      include_timestamp_(wants_timestamp(config_)),
      schema_(schema_of(config_)),
      log_(framing_of(config_.format), static_cast<std::size_t>(config_.opts.get_int("maxBufferedBytes", 64 << 20)),
           static_cast<std::size_t>(config_.opts.get_int("blockBytes", 256 << 10)), include_timestamp_) {
  if (config_.format != "csv" && config_.format != "json") return;  // text and binary blocks become batches here
  options decoder_opts = config_.opts;
  decoder_opts.set("header", "false");  // every message is a record
  decoder_ = make_decoder(config_.format, decoder_opts, schema_);
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

void push_source::commit(const std::string& end) { log_.commit(parse_offset(end)); }

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
