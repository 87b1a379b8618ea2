// The checkpoint's append-only log (DIR/log/<segment>.log) as tests look at it: which epochs it commits,
// and where a record is, to damage it the way a bad disk or a torn write would. For test binaries that
// link flow_runtime.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "flow/connectors/durable_file.hpp"
#include "flow/runtime/checkpoint_store.hpp"
#include "test_support.hpp"

namespace flow::test {

// The newest epoch a checkpoint's log commits (-1: none).
inline std::int64_t newest_commit(const std::filesystem::path& checkpoint) {
  std::int64_t newest = -1;
  if (!std::filesystem::exists(checkpoint / "log")) return newest;
  for (const auto& [name, content] : runtime::checkpoint_store::read_log(checkpoint.string())) {
    if (!name.starts_with("commits/")) continue;
    const std::string epoch = name.substr(std::string("commits/").size());
    if (!epoch.empty() && std::all_of(epoch.begin(), epoch.end(), [](char c) { return c >= '0' && c <= '9'; }))
      newest = std::max<std::int64_t>(newest, std::stoll(epoch));
  }
  return newest;
}

// Whether the log holds an intact, not removed record named name ("commits/3", "state/0/3.delta").
inline bool logged(const std::filesystem::path& checkpoint, const std::string& name) {
  return runtime::checkpoint_store::read_log(checkpoint.string()).contains(name);
}

// Where the newest intact record named name is: its segment and bytes [at, end).
struct log_place {
  std::filesystem::path segment;
  std::size_t at = 0, end = 0;
  bool last = false;  // the segment's last record
};

inline std::optional<log_place> find_record(const std::filesystem::path& checkpoint, const std::string& name) {
  std::optional<log_place> found;
  std::vector<std::filesystem::path> segments;
  for (const auto& entry : std::filesystem::directory_iterator(checkpoint / "log")) segments.push_back(entry.path());
  std::sort(segments.begin(), segments.end(), [](const auto& a, const auto& b) {
    return std::stoll(a.stem().string()) < std::stoll(b.stem().string());
  });
  for (const auto& segment : segments) {
    const auto records = connectors::scan_sealed_log(read_file(segment));
    for (std::size_t i = 0; i < records.size(); ++i)
      if (records[i].intact && records[i].payload.starts_with(name + "\n"))
        found = log_place{segment, records[i].at, records[i].end, i + 1 == records.size()};
  }
  return found;
}

// Replaces the bytes of the record at place with replacement.
inline void rewrite_record(const log_place& place, const std::string& replacement) {
  std::string content = read_file(place.segment);
  content.replace(place.at, place.end - place.at, replacement);
  write_file(place.segment, content);
}

}  // namespace flow::test
