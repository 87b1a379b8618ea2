#include "flow/connectors/record_log.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "flow/formats.hpp"
#include "flow/line_scan.hpp"

namespace flow::connectors {

namespace {

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

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

void record_log::notify_if_armed(std::unique_lock<std::mutex>& lock) {
  if (!armed_at_ || next_offset_ <= *armed_at_) return;
  armed_at_.reset();
  lock.unlock();
  listener_();
}

bool record_log::append(std::string_view record) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!wait_for_space(lock)) return false;
  append_locked(record, keep_arrival_times_ ? now_micros() : 0);
  notify_if_armed(lock);
  return true;
}

void record_log::append_locked(std::string_view record, std::int64_t arrival_micros) {
  if (!open_) open_locked(record.size());
  if (framing_ == record_framing::string_column) store_value_locked(record);
  else frame(open_->bytes, record);
  const std::size_t framed_size = record.size() + (framing_ == record_framing::length_prefixed ? 4 : 1);
  if (keep_arrival_times_) open_->arrival_micros.push_back(arrival_micros);
  ++open_->count;
  ++next_offset_;
  open_->framed_bytes += framed_size;
  buffered_bytes_ += framed_size;
  if (open_->framed_bytes >= block_bytes_) seal_locked();
}

void record_log::resume_at(std::uint64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_ || !sealed_.empty())
    throw error("record_log::resume_at after records were appended (internal error)");
  next_offset_ = offset;
}

void record_log::restore_block(std::span<const std::string> records, std::span<const std::int64_t> arrival_micros) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::size_t i = 0; i < records.size(); ++i)
    append_locked(records[i], i < arrival_micros.size() ? arrival_micros[i] : 0);
  seal_locked();
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
      notify_if_armed(lock);
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
    notify_if_armed(lock);  // before a wait for space, so that an epoch can free it
    if (!lock.owns_lock()) lock.lock();
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
    notify_if_armed(lock);  // before a wait for space, so that an epoch can free it
    if (!lock.owns_lock()) lock.lock();
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

std::uint64_t record_log::seal_and_arm() {
  std::lock_guard<std::mutex> lock(mutex_);
  seal_locked();
  if (listener_) armed_at_ = next_offset_;
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

}  // namespace flow::connectors
