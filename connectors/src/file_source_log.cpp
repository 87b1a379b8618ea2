// Entry format (a sealed record): a line {"start":S,"end":E}, then one line per file: <size> <mtime_ns>
// "<path as a JSON string>" (paths may hold any byte).
#include "file_source_log.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "flow/connectors/durable_file.hpp"
#include "flow/formats.hpp"
#include "json_string_array.hpp"

namespace flow::connectors {

namespace {

constexpr std::string_view owner = "file source";
constexpr std::string_view log_name = "batches.log";

// Reads an unsigned or signed integer at text[pos] and moves pos past it and one following blank.
template <class Int>
bool read_number(std::string_view text, std::size_t& pos, Int& value) {
  auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), value);
  if (ec != std::errc{} || end == text.data() + pos) return false;
  pos = static_cast<std::size_t>(end - text.data());
  if (pos < text.size() && text[pos] == ' ') ++pos;
  return true;
}

}  // namespace

std::optional<logged_batch> decode_logged_batch(std::string_view payload) {
  logged_batch batch;
  std::size_t line_end = payload.find('\n');
  std::string_view header = payload.substr(0, line_end);
  constexpr std::string_view start_key = "{\"start\":", end_key = ",\"end\":";
  std::size_t pos = start_key.size();
  if (!header.starts_with(start_key) || !read_number(header, pos, batch.start)) return std::nullopt;
  if (header.substr(pos, end_key.size()) != end_key) return std::nullopt;
  pos += end_key.size();
  if (!read_number(header, pos, batch.end) || header.substr(pos) != "}") return std::nullopt;
  while (line_end != std::string_view::npos && line_end + 1 < payload.size()) {
    std::size_t begin = line_end + 1;
    line_end = payload.find('\n', begin);
    std::string_view line = payload.substr(begin, line_end == std::string_view::npos ? line_end : line_end - begin);
    logged_file file;
    std::size_t at = 0;
    if (!read_number(line, at, file.size) || !read_number(line, at, file.mtime_ns)) return std::nullopt;
    std::string array = "[";  // appended piecewise: g++ 12 warns falsely (-Wrestrict) on "[" + ... + "]"
    array += line.substr(at);
    array += ']';
    auto path = parse_json_string_array(array);
    if (!path || path->size() != 1) return std::nullopt;
    file.path = std::move(path->front());
    batch.files.push_back(std::move(file));
  }
  if (batch.end < batch.start || batch.files.size() != batch.end - batch.start) return std::nullopt;
  return batch;
}

std::string encode_logged_batch(const logged_batch& batch) {
  std::string payload = "{\"start\":" + std::to_string(batch.start) + ",\"end\":" + std::to_string(batch.end) + "}";
  for (const auto& file : batch.files) {
    payload += '\n';
    payload += std::to_string(file.size) + ' ' + std::to_string(file.mtime_ns) + ' ';
    append_json_string(payload, file.path);
  }
  return payload;
}

namespace {

std::string damaged(const std::string& entry, const std::string& why) {
  return "file source: file log entry '" + entry + "' is damaged (" + why +
         "), so the files of its batch are unknown; restore the file from a backup or start the query on a new "
         "checkpoint location";
}

}  // namespace

file_source_log::file_source_log(std::string directory)
    : directory_(std::move(directory)), log_(owner, directory_, std::string(log_name)) {}

std::vector<logged_batch> file_source_log::load() {
  // Entries of the earlier layout: a file per entry, named by its end.
  std::vector<std::pair<std::size_t, std::string>> files;  // end, path
  for (const auto& item : std::filesystem::directory_iterator(directory_)) {
    std::string name = item.path().filename().string();
    if (name.starts_with('.') || name == log_name) continue;  // '.': a temporary file an interrupted write left
    std::size_t end = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), end);
    if (ec != std::errc{} || ptr != name.data() + name.size())
      throw error("file source: unexpected file '" + item.path().string() +
                  "' in the file log; only the source writes there: remove it");
    files.emplace_back(end, item.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<logged_batch> batches;
  std::size_t expected_start = 0;
  auto take = [&](const std::string& entry, const std::string& payload, std::optional<std::size_t> named_end) {
    auto batch = decode_logged_batch(payload);
    if (!batch || (named_end && batch->end != *named_end)) throw error(damaged(entry, "malformed entry"));
    if (batch->start != expected_start)
      throw error("file source: the file log in '" + directory_ + "' has no entry for log positions " +
                  std::to_string(expected_start) + ".." + std::to_string(batch->start) +
                  " (were entries removed?); restore them or start the query on a new checkpoint location");
    expected_start = batch->end;
    batches.push_back(std::move(*batch));
  };
  for (const auto& [end, path] : files) {
    std::string why;
    auto payload = unseal(read_file(owner, path), why);
    if (!payload) throw error(damaged(path, why));
    take(path, *payload, end);
  }
  for (std::size_t i = 0; i < log_.recovered().size(); ++i)
    take(log_.path() + " (entry " + std::to_string(i + 1) + ")", log_.recovered()[i], std::nullopt);
  log_.release_recovered();
  return batches;
}

void file_source_log::append(const logged_batch& batch) { log_.append_unsynced(encode_logged_batch(batch)); }

}  // namespace flow::connectors
