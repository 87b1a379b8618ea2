// Group payload: for each block, u64 first offset, u64 record count, u8 1 when arrival times follow, then
// each record as u32 length and bytes, then (when flagged) one i64 arrival time per record; native byte order.
#include "receiver_wal.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace flow::connectors {

namespace {

constexpr std::string_view owner = "push source write-ahead log";
constexpr std::string_view segment_prefix = "wal-";

template <class T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Reads a T at in[pos] and moves pos past it; false when in is too short.
template <class T>
bool get(std::string_view in, std::size_t& pos, T& value) {
  if (in.size() - pos < sizeof value) return false;
  std::memcpy(&value, in.data() + pos, sizeof value);
  pos += sizeof value;
  return true;
}

bool parse_group(std::string_view payload, std::vector<receiver_wal::logged_block>& out) {
  std::size_t pos = 0;
  while (pos < payload.size()) {
    receiver_wal::logged_block block;
    std::uint64_t count = 0;
    std::uint8_t with_times = 0;
    if (!get(payload, pos, block.first) || !get(payload, pos, count) || !get(payload, pos, with_times)) return false;
    if (count > payload.size()) return false;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint32_t length = 0;
      if (!get(payload, pos, length) || payload.size() - pos < length) return false;
      block.records.emplace_back(payload.substr(pos, length));
      pos += length;
    }
    for (std::uint64_t i = 0; with_times && i < count; ++i) {
      std::int64_t micros = 0;
      if (!get(payload, pos, micros)) return false;
      block.arrival_micros.push_back(micros);
    }
    out.push_back(std::move(block));
  }
  return true;
}

[[noreturn]] void damaged(const std::string& path, const std::string& why) {
  throw error("push source: write-ahead log segment '" + path + "' is damaged (" + why +
              ") before its last record, so records of planned epochs are lost; restore the file from a backup "
              "or start the query on a new checkpoint location");
}

}  // namespace

receiver_wal::receiver_wal(std::string directory) : directory_(std::move(directory)) {
  for (const auto& item : std::filesystem::directory_iterator(directory_)) {
    std::string name = item.path().filename().string();
    if (!name.starts_with(segment_prefix)) continue;
    std::uint64_t first = 0;
    const char* digits = name.data() + segment_prefix.size();
    auto [end, ec] = std::from_chars(digits, name.data() + name.size(), first);
    if (ec != std::errc{} || end != name.data() + name.size())
      throw error("push source: unexpected file '" + item.path().string() +
                  "' in the write-ahead log; only the source writes there: remove it");
    segments_.push_back(first);
  }
  std::sort(segments_.begin(), segments_.end());
  if (segments_.empty()) return;
  first_ = end_ = segments_.front();
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (segments_[i] != end_)
      throw error("push source: the write-ahead log in '" + directory_ + "' misses records " + std::to_string(end_) +
                  ".." + std::to_string(segments_[i]) + "; start the query on a new checkpoint location");
    current_ = read_segment(segments_[i], i + 1 == segments_.size());
  }
}

bool receiver_wal::present_in(const std::string& directory) {
  for (const auto& item : std::filesystem::directory_iterator(directory))
    if (item.path().filename().string().starts_with(segment_prefix)) return true;
  return false;
}

std::string receiver_wal::segment_name(std::uint64_t first) const {
  char name[32];
  std::snprintf(name, sizeof name, "%s%020llu", segment_prefix.data(), static_cast<unsigned long long>(first));
  return name;
}

std::unique_ptr<sealed_log> receiver_wal::read_segment(std::uint64_t first, bool newest) {
  auto segment = std::make_unique<sealed_log>(owner, directory_, segment_name(first));
  const std::string& path = segment->path();
  if (!segment->torn_tail().empty()) {
    // A crash while the newest segment's last group was written: that range was never reported, so the
    // group is cut off, never read as data. An older segment was whole when the next one began.
    if (!newest) damaged(path, segment->torn_tail());
    segment->cut_torn_tail();
  }
  for (const auto& payload : segment->recovered()) {
    std::vector<logged_block> blocks;
    if (!parse_group(payload, blocks)) damaged(path, "malformed group");
    for (auto& block : blocks) {
      if (block.first != end_) damaged(path, "records out of sequence");
      end_ = block.first + block.records.size();
      recovered_.push_back(std::move(block));
    }
  }
  segment->release_recovered();
  return segment;
}

void receiver_wal::append(const record_log& log, const std::vector<std::shared_ptr<const log_block>>& blocks) {
  if (blocks.empty()) return;
  std::string payload;
  for (const auto& block : blocks) {
    put<std::uint64_t>(payload, block->first);
    put<std::uint64_t>(payload, block->count);
    put<std::uint8_t>(payload, block->arrival_micros.empty() ? 0 : 1);
    log.for_each_record(*block, [&](std::string_view record) {
      put<std::uint32_t>(payload, static_cast<std::uint32_t>(record.size()));
      payload.append(record);
    });
    for (std::int64_t micros : block->arrival_micros) put<std::int64_t>(payload, micros);
  }
  if (!current_ || rotate_) {
    current_ = std::make_unique<sealed_log>(owner, directory_, segment_name(blocks.front()->first));
    if (segments_.empty()) first_ = blocks.front()->first;
    segments_.push_back(blocks.front()->first);
    rotate_ = false;
  }
  current_->append(payload);
  end_ = blocks.back()->first + blocks.back()->count;
}

void receiver_wal::drop_before(std::uint64_t offset) {
  if (!segments_.empty() && end_ > segments_.back()) rotate_ = true;
  std::size_t removable = 0;
  while (removable + 1 < segments_.size() && segments_[removable + 1] <= offset) ++removable;
  if (removable == 0) return;
  for (std::size_t i = 0; i < removable; ++i) {
    const std::string path = directory_ + "/" + segment_name(segments_[i]);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw error(std::string(owner) + ": cannot remove '" + path + "': " + std::strerror(errno));
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(removable));
  sync_directory(owner, directory_);
  first_ = segments_.front();
}

}  // namespace flow::connectors
