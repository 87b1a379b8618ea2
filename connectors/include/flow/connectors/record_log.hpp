// A push source's bounded record log: a receiver appends records, epochs read sealed blocks of it by
// record offset, and a commit drops the blocks an epoch has read.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flow/column.hpp"
#include "flow/formats.hpp"

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
  // A restarted source: numbering starts at offset (before anything is appended).
  void resume_at(std::uint64_t offset);
  // A restarted source's write-ahead log: appends records (with their arrival times when the log keeps
  // them) without waiting for space, and seals them as one block (or more, where append() would seal).
  void restore_block(std::span<const std::string> records, std::span<const std::int64_t> arrival_micros);
  // Calls f(record) for each record of block, as appended (a line without its '\n').
  template <class F>
  void for_each_record(const log_block& block, F&& f) const;
  // Seals the open block; returns the offset after the last record appended so far.
  std::uint64_t seal();
  // seal(), and the next append calls the listener (once): a plan learns of any record past its end.
  std::uint64_t seal_and_arm();
  // What seal_and_arm's next append calls, from the appending thread without the log's lock. Set before
  // the first append.
  void set_append_listener(std::function<void()> listener) { listener_ = std::move(listener); }
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
  void append_locked(std::string_view record, std::int64_t arrival_micros);
  void seal_locked();
  void open_locked(std::size_t at_least);
  // string_column: puts one line (without '\n'; a trailing '\r' is dropped) into the open block.
  void store_value_locked(std::string_view line);
  bool wait_for_space(std::unique_lock<std::mutex>& lock);
  // After an append: calls the listener if seal_and_arm armed it and records came since.
  void notify_if_armed(std::unique_lock<std::mutex>& lock);
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
  std::function<void()> listener_;
  std::optional<std::uint64_t> armed_at_;  // seal_and_arm's offset while the listener waits for a record
  std::atomic<std::int64_t> waits_{0}, waited_micros_{0};
};

template <class F>
void record_log::for_each_record(const log_block& block, F&& f) const {
  if (framing_ == record_framing::string_column) {
    for (std::uint64_t i = 0; i < block.count; ++i)
      f(std::string_view(block.values.chars).substr(block.values.offsets[i],
                                                     block.values.offsets[i + 1] - block.values.offsets[i]));
  } else if (framing_ == record_framing::length_prefixed) {
    for_each_length_prefixed(block.bytes, f);
  } else {
    std::string_view bytes = block.bytes;
    for (std::size_t at = 0; at < bytes.size();) {
      std::size_t end = std::min(bytes.find('\n', at), bytes.size());  // every record ends with one
      f(bytes.substr(at, end - at));
      at = end + 1;
    }
  }
}

}  // namespace flow::connectors
