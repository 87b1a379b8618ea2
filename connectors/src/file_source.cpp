// FileStreamSource: a file log over a directory, refreshed by inotify events and periodic listings.
#include "flow/connectors/file_source.hpp"

#include "arrival_watch.hpp"
#include "file_source_log.hpp"
#include "flow/connectors/durable_file.hpp"
#include "flow/connectors/file_sink.hpp"
#include "flow/line_scan.hpp"
#include "flow/plan_logging_source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <functional>
#include <iostream>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>
#include <unordered_map>
#include <unordered_set>

namespace flow::connectors {

namespace {

struct file_entry {
  std::string path;
  std::string name;
  std::int64_t mtime_ns = 0;
  std::uint64_t size = 0;
};

bool older_first(const file_entry& a, const file_entry& b) {
  return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.name < b.name;
}

bool newer_first(const file_entry& a, const file_entry& b) {
  return a.mtime_ns != b.mtime_ns ? a.mtime_ns > b.mtime_ns : a.name < b.name;
}

std::string os_error(int code) { return std::strerror(code); }

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

std::int64_t wall_clock_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// Where the files of a path live and which of them belong to it.
struct input_location {
  std::string directory;
  std::string pattern;      // fnmatch pattern on names; empty: every file
  std::string single_file;  // set when path names one file
};

bool has_glob(std::string_view text) { return text.find_first_of("*?[") != std::string_view::npos; }

input_location locate(const std::string& path) {
  std::filesystem::path p(path);
  std::string last = p.filename().string();
  if (has_glob(last)) {
    std::string dir = p.parent_path().string();
    return {dir.empty() ? "." : dir, last, {}};
  }
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    std::string dir = p.parent_path().string();
    return {dir.empty() ? "." : dir, {}, last};
  }
  return {path, {}, {}};
}

// The path under which a file named `name` in `directory` is listed: relative when path was a bare name.
// Joined as std::filesystem::path's operator/ joins a bare name, without parsing the directory (every
// listing joins every name).
std::string entry_path(const std::string& path, const std::string& directory, const std::string& name) {
  if (directory.empty() || (directory == "." && path.find('/') == std::string::npos)) return name;
  std::string full;
  full.reserve(directory.size() + 1 + name.size());
  full.append(directory);
  if (full.back() != '/') full.push_back('/');
  full.append(name);
  return full;
}

std::string missing_path_message(const std::string& path) {
  return "file source: path '" + path + "' does not exist; create it or fix the path";
}

// known: tells the paths to leave out without a stat (files a source has taken), so re-listing stays cheap.
// committed: when set, the only names to list (a file sink's committed part files).
std::vector<file_entry> list_files(const std::string& path, const input_location& where,
                                   const std::function<bool(const std::string&)>& known = {},
                                   const std::unordered_set<std::string>* committed = nullptr) {
  std::vector<file_entry> files;
  DIR* dir = ::opendir(where.directory.c_str());
  if (!dir) {
    int code = errno;
    if (code == ENOENT) throw error(missing_path_message(path));
    throw error("file source: cannot list directory '" + where.directory + "' of path '" + path +
                "': " + os_error(code) + "; check that it is a readable directory");
  }
  while (const dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.' || name[0] == '_') continue;
    if (!where.single_file.empty() && name != where.single_file) continue;
    if (!where.pattern.empty() && ::fnmatch(where.pattern.c_str(), name.c_str(), 0) != 0) continue;
    if (committed && !committed->contains(name)) continue;
    std::string full = entry_path(path, where.directory, name);
    if (known && known(full)) continue;
    struct stat st{};
    if (::stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // vanished, or not a file
    files.push_back({std::move(full), std::move(name), mtime_ns(st), static_cast<std::uint64_t>(st.st_size)});
  }
  ::closedir(dir);
  std::sort(files.begin(), files.end(), older_first);
  return files;
}

std::string read_error(const std::string& file, int code) {
  std::string message = "file source: cannot read file '" + file + "': " + os_error(code);
  if (code == ENOENT) message += "; it was removed or renamed after it was listed (files must stay until read)";
  return message;
}

// Reads up to limit bytes of file (all of it when limit is npos).
std::string read_bytes(const std::string& file, std::size_t limit) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw error(read_error(file, errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    int code = errno;
    ::close(fd);
    throw error(read_error(file, code));
  }
  std::string contents;
  contents.resize(std::min(limit, static_cast<std::size_t>(st.st_size)));
  std::size_t filled = 0;
  for (;;) {
    if (filled == contents.size()) {
      if (filled >= limit) break;
      // The file grew since fstat: keep reading in steps.
      contents.resize(std::min(limit, filled + 65536));
    }
    ssize_t got = ::read(fd, contents.data() + filled, contents.size() - filled);
    if (got < 0) {
      if (errno == EINTR) continue;
      int code = errno;
      ::close(fd);
      throw error(read_error(file, code));
    }
    if (got == 0) break;
    filled += static_cast<std::size_t>(got);
  }
  ::close(fd);
  contents.resize(filled);
  return contents;
}

// Where the first chunk of bytes ends: at the decoder's last record boundary within limit bytes, or within
// a window doubled until it holds a whole record. complete: bytes run to the end of the file; otherwise 0
// when only more bytes can tell (so that a file read in pieces is cut exactly as one read whole).
std::size_t first_cut(std::string_view bytes, bool complete, const decoder& format_decoder, std::size_t limit) {
  if (bytes.size() <= limit) return complete ? bytes.size() : 0;
  for (std::size_t window = limit;; window *= 2) {
    if (complete) window = std::min(window, bytes.size());
    else if (window >= bytes.size()) return 0;
    if (std::size_t boundary = format_decoder.record_boundary(bytes.substr(0, window)); boundary > 0) return boundary;
    if (window == bytes.size()) return bytes.size();
  }
}

// A file read one chunk at a time (a read() of about the chunk limit each), so that the instances decode
// its first chunks while the rest is still to be read. Read, not mapped: pages of a mapping that a writer
// truncates raise SIGBUS in whichever thread touches them, and the file source cannot keep writers away.
class file_chunk_reader {
 public:
  file_chunk_reader(std::string path, const decoder& format_decoder, std::size_t limit)
      : path_(std::move(path)), decoder_(format_decoder), limit_(std::max<std::size_t>(limit, 1)) {
    fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) throw error(read_error(path_, errno));
    struct stat st{};
    if (::fstat(fd_.get(), &st) == 0) size_at_open_ = static_cast<std::uint64_t>(st.st_size);
  }

  // The next chunk, cut as cut_into_chunks cuts the whole file; nullopt at its end.
  std::optional<raw_chunk> next() {
    std::size_t wanted = limit_ + 1;  // one byte past the limit tells whether the rest fits in one chunk
    std::size_t cut = 0;
    while (true) {
      fill(wanted);
      cut = first_cut(pending_, at_end_, decoder_, limit_);
      if (cut > 0) break;
      if (at_end_) return std::nullopt;
      wanted = pending_.size() * 2;  // a record longer than the window: read on
    }
    auto buffer = std::make_shared<const std::string>(std::move(pending_));
    pending_.assign(*buffer, cut);  // the start of the next chunk
    raw_chunk chunk{buffer, 0, cut, path_, line_, offset_};
    if (!at_end_ || !pending_.empty())  // only a next chunk needs its first line number
      line_ += count_newlines(buffer->data(), buffer->data() + cut);
    offset_ += cut;
    return chunk;
  }

  std::uint64_t bytes_read() const { return offset_; }

 private:
  // Reads until pending_ holds wanted bytes or the file ends. A read asks for no more than the rest of the
  // file as fstat saw it at open and a page (the read that finds the end, or what the file has grown by
  // since), so that a small file's buffer is neither zeroed up to the chunk limit nor grown to see its end.
  void fill(std::size_t wanted) {
    constexpr std::uint64_t page = 4096;
    while (!at_end_ && pending_.size() < wanted) {
      const std::size_t filled = pending_.size();
      const std::uint64_t consumed = offset_ + filled;
      const std::uint64_t rest = size_at_open_ > consumed ? size_at_open_ - consumed : 0;
      const auto step = static_cast<std::size_t>(std::min<std::uint64_t>(wanted - filled, rest + page));
      pending_.resize(filled + step);
      const ssize_t got = ::read(fd_.get(), pending_.data() + filled, step);
      const int code = errno;
      pending_.resize(filled + static_cast<std::size_t>(std::max<ssize_t>(got, 0)));
      if (got < 0 && code != EINTR) throw error(read_error(path_, code));
      at_end_ = got == 0;
    }
  }

  std::string path_;
  const decoder& decoder_;
  std::size_t limit_;
  unique_fd fd_;
  std::string pending_;  // read, not yet handed out
  bool at_end_ = false;
  std::uint64_t offset_ = 0;  // of pending_'s first byte in the file
  std::uint64_t line_ = 1;
  std::uint64_t size_at_open_ = 0;
};

std::string make_offset(std::size_t log_offset) { return "{\"logOffset\":" + std::to_string(log_offset) + "}"; }

std::size_t parse_offset(const std::string& offset) {
  static constexpr std::string_view key = "\"logOffset\"";
  auto malformed = [&] {
    return error("file source: malformed offset '" + offset +
                 "'; expected {\"logOffset\":N} (was the checkpoint written by another source?)");
  };
  std::size_t at = offset.find(key);
  if (at == std::string::npos) throw malformed();
  at = offset.find_first_not_of(" \t\n", at + key.size());
  if (at == std::string::npos || offset[at] != ':') throw malformed();
  at = offset.find_first_not_of(" \t\n", at + 1);
  if (at == std::string::npos) throw malformed();
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(offset.data() + at, offset.data() + offset.size(), value);
  if (ec != std::errc{} || end == offset.data() + at) throw malformed();
  return value;
}

std::size_t positive_option(const options& opts, std::string_view key, std::int64_t fallback) {
  std::int64_t v = opts.get_int(key, fallback);
  if (v <= 0) {
    throw error("file source: option " + std::string(key) + " must be a positive integer, got " + std::to_string(v));
  }
  return static_cast<std::size_t>(v);
}

// How long a file written in place must stay unchanged before the stream takes it (option fileStableMs).
// Copies and loggers rarely pause for a second; a move into the directory is taken at once anyway.
constexpr std::int64_t default_file_stable_ms = 1000;

constexpr std::chrono::milliseconds longest_poll_interval = std::chrono::hours(24 * 365 * 100);

class file_stream_source final : public source_reader, public plan_logging_source {
  using clock = std::chrono::steady_clock;

 public:
  file_stream_source(std::string path, std::string format, options opts, schema_ptr schema)
      : path_(std::move(path)),
        decoder_(make_decoder(format, opts, std::move(schema))),
        latest_first_(opts.get_bool("latestFirst", false)),
        poll_interval_(opts.get_int("pollIntervalMs", 1000)),
        file_stable_(opts.get_int("fileStableMs", default_file_stable_ms)),
        max_chunk_bytes_(positive_option(opts, "maxBytesPerChunk", default_max_chunk_bytes)) {
    if (path_.empty()) throw error("file source: the path is empty; pass a directory, a glob or a file");
    if (opts.has("maxFilesPerTrigger")) max_files_per_trigger_ = positive_option(opts, "maxFilesPerTrigger", 1);
    if (opts.has("maxFileAge")) max_file_age_ns_ = parse_duration_micros(opts.get("maxFileAge")) * 1000;
    if (poll_interval_.count() < 0) throw error("file source: option pollIntervalMs must not be negative");
    // Longer is never; a deadline of the steady clock (nanoseconds) that far away would overflow.
    poll_interval_ = std::min(poll_interval_, longest_poll_interval);
    if (file_stable_.count() < 0)
      throw error("file source: option fileStableMs must not be negative, got " + std::to_string(file_stable_.count()));
  }

  ~file_stream_source() override { close_inotify(); }

  std::string description() const override { return "FileStreamSource[" + path_ + "]"; }
  schema_ptr output_schema() const override { return decoder_->output_schema(); }
  std::shared_ptr<const decoder> chunk_decoder() const override { return decoder_; }
  std::string initial_offset() override { return make_offset(0); }

  // The file log becomes durable in directory; the batches logged by an earlier process are its start.
  void use_checkpoint(const std::string& directory) override {
    durable_log_.emplace(directory);
    for (auto& batch : durable_log_->load()) take_logged(std::move(batch));
  }

  // The batch's files, logged in batches.log unsynced: the offsets record carries them durably.
  std::string plan_record(const std::string& /*start*/, const std::string& end) override {
    if (!durable_log_) return {};
    const std::size_t to = parse_offset(end);
    const auto logged = std::lower_bound(logged_ends_.begin(), logged_ends_.end(), to);
    if (logged == logged_ends_.end() || *logged != to) return {};
    return encode_logged_batch(batch_of(logged == logged_ends_.begin() ? 0 : *(logged - 1), to));
  }

  // The checkpoint's plan records continue batches.log where a crash of the machine cut it short.
  void restore_plans(const std::vector<std::string>& records) override {
    if (!durable_log_) return;
    for (const auto& record : records) {
      auto batch = decode_logged_batch(record);
      if (!batch)
        throw error("file source: a plan record in the checkpoint's offsets log is not a file batch; restore the "
                    "checkpoint from a backup or start the query on a new checkpoint location");
      if (batch->end <= logged_end()) continue;  // batches.log has it
      if (batch->start != logged_end())
        throw error("file source: the file log in '" + durable_log_->directory() + "' ends at log position " +
                    std::to_string(logged_end()) + ", the checkpoint's plan records go on from position " +
                    std::to_string(batch->start) + "; the files in between are unknown: start the query on a new " +
                    "checkpoint location");
      durable_log_->append(*batch);
      take_logged(std::move(*batch));
    }
  }

  // inotify's events, and the listings and stability checks that fall due, wake the query (arm_arrival).
  bool notify_when_data(std::function<void()> arrived) override {
    arrival_ = std::make_unique<arrival_watch>(std::move(arrived));
    return true;
  }

  std::optional<std::string> latest_offset(const std::string& start) override {
    std::size_t from = parse_offset(start);
    if (arrival_) arrival_->disarm();
    if (durable_log_) {
      // A batch logged before (by this process or one that crashed before its epoch ran) is planned again
      // as it was: its files are on record.
      auto logged = std::upper_bound(logged_ends_.begin(), logged_ends_.end(), from);
      if (logged != logged_ends_.end()) return make_offset(*logged);
      check_logged(from);
    }
    refresh(false);
    if (!planned_once_) {
      planned_once_ = true;
      await_young_files();
    }
    check_within_log(from);
    fix_order_up_to(from);
    std::size_t pending = log_.size() - from;
    if (pending == 0) {
      arm_arrival();
      return std::nullopt;
    }
    if (rate_limits_enabled_ && max_files_per_trigger_) pending = std::min(pending, *max_files_per_trigger_);
    fix_order_up_to(from + pending);
    if (durable_log_) log_batch(from, from + pending);
    return make_offset(from + pending);
  }

  void begin_read(const std::string& start, const std::string& end) override {
    std::tie(read_next_, read_end_) = files_of(start, end);
    reading_.reset();
  }

  bool instances_can_read_files() const override { return true; }

  // The files are read elsewhere: numFilesRead and numBytesRead stay those read here, and a file changed
  // after it was taken is not reported. Absolute paths: another node's working directory is another.
  file_read_plan plan_file_reads(const std::string& start, const std::string& end) override {
    const auto [from, to] = files_of(start, end);
    file_read_plan plan;
    for (std::size_t i = from; i < to; ++i) plan.files.push_back(std::filesystem::absolute(log_[i].path).string());
    plan.max_chunk_bytes = chunk_limit();
    return plan;
  }

  std::optional<source_unit> next() override {
    while (true) {
      if (!reading_) {
        if (read_next_ >= read_end_) return std::nullopt;
        reading_.emplace(log_[read_next_++].path, *decoder_, chunk_limit());
      }
      if (auto chunk = reading_->next()) {
        bytes_read_ += static_cast<std::int64_t>(chunk->end - chunk->begin);
        return source_unit{std::move(*chunk)};
      }
      const std::uint64_t size = reading_->bytes_read();
      if (auto known = known_.find(log_[read_next_ - 1].path);
          known != known_.end() && known->second.watch_changes && size != known->second.size)
        report_change(known, size);  // changed since it was taken: this read got the change
      ++files_read_;
      reading_.reset();
    }
  }

  void set_rate_limits_enabled(bool enabled) override { rate_limits_enabled_ = enabled; }
  void set_max_unit_bytes(std::size_t bytes) override { unit_limit_ = std::max<std::size_t>(bytes, 1); }

  connector_metrics metrics() const override {
    return {{"numFilesDiscovered", static_cast<std::int64_t>(log_.size())},
            {"numFilesRead", files_read_},
            {"numBytesRead", bytes_read_},
            {"numFilesChangedAfterRead", files_changed_after_read_}};
  }

  void stop() override { close_inotify(); }

 private:
  // What the source remembers of a file it has seen for good: taken into the log, or left out by age.
  struct known_file {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    bool watch_changes = false;  // taken into the log and not yet reported as changed
  };

  // A file not yet stable: what it looked like, and since when it has looked so.
  struct unstable_file {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    clock::time_point unchanged_since;
  };

  // What inotify reported since the last drain.
  struct directory_events {
    bool new_files = false;           // a file was closed after writing or moved in: worth a listing
    std::vector<std::string> touched;  // paths written, closed, moved in or whose attributes changed
  };

  std::size_t chunk_limit() const { return std::min(max_chunk_bytes_, unit_limit_); }

  // The file log's positions [from, to) of the read range (start, end].
  std::pair<std::size_t, std::size_t> files_of(const std::string& start, const std::string& end) {
    std::size_t from = parse_offset(start);
    std::size_t to = parse_offset(end);
    if (from > to) throw error("file source: read range " + start + " .. " + end + " is reversed");
    // Every range an epoch reads was logged before latest_offset returned it.
    if (durable_log_) check_logged(to);
    // A fresh source replaying a logged epoch rebuilds its file log from a listing first.
    if (to > log_.size()) refresh(true, true);
    check_within_log(to);
    fix_order_up_to(to);
    return {from, to};
  }

  std::size_t logged_end() const { return logged_ends_.empty() ? 0 : logged_ends_.back(); }

  void check_logged(std::size_t offset) const {
    if (offset > logged_end())
      throw error("file source: offset " + make_offset(offset) + " is beyond the " + std::to_string(logged_end()) +
                  " files of its file log in '" + durable_log_->directory() +
                  "'; the log lost entries: start the query on a new checkpoint location");
  }

  logged_batch batch_of(std::size_t start, std::size_t end) const {
    logged_batch batch{start, end, {}};
    for (std::size_t i = start; i < end; ++i) batch.files.push_back({log_[i].path, log_[i].mtime_ns, log_[i].size});
    return batch;
  }

  // Before latest_offset reports `end`, the batch's files are in batches.log (plan_record: durable with the
  // epoch's offsets).
  void log_batch(std::size_t start, std::size_t end) {
    durable_log_->append(batch_of(start, end));
    logged_ends_.push_back(end);
  }

  // A batch logged by an earlier process: planned again as it was, its files never taken again.
  void take_logged(logged_batch batch) {
    for (auto& f : batch.files) {
      newest_mtime_ns_ = std::max(newest_mtime_ns_, f.mtime_ns);
      known_.emplace(f.path, known_file{f.size, f.mtime_ns, true});
      std::string name = std::filesystem::path(f.path).filename().string();
      log_.push_back({std::move(f.path), std::move(name), f.mtime_ns, f.size});
    }
    logged_ends_.push_back(batch.end);
    fixed_ = log_.size();
  }

  void check_within_log(std::size_t offset) const {
    if (offset > log_.size()) {
      throw error("file source: offset " + make_offset(offset) + " is beyond the " + std::to_string(log_.size()) +
                  " files found in '" + path_ + "'; were processed files removed? Restore them or use a new checkpoint");
    }
  }

  // Files before `offset` keep their log position from now on; later ones may still be reordered
  // when older (or, with latestFirst, newer) files show up, as Spark picks among all unseen files.
  void fix_order_up_to(std::size_t offset) { fixed_ = std::max(fixed_, std::min(offset, log_.size())); }

  // rebuilding: the log is rebuilt for a replay of epochs planned before, whose files were stable then.
  void refresh(bool force, bool rebuilding = false) {
    directory_events events = drain_inotify();
    report_changes(events.touched);
    auto now = clock::now();
    bool stability_due = next_stable_check_ && now >= *next_stable_check_;
    bool must_list = force || !listed_once_ || events.new_files || watch_ < 0 || stability_due ||
                     now - last_listing_ >= poll_interval_;
    if (!must_list) return;
    input_location where = locate(path_);
    watch(where.directory);  // before listing, so nothing that arrives during the listing is missed
    read_commit_log(where.directory);
    std::vector<file_entry> files = list_files(path_, where, [&](const std::string& p) { return known_.contains(p); },
                                               sink_output_ ? &committed_names_ : nullptr);
    last_listing_ = now;
    bool first_listing = !listed_once_ && logged_ends_.empty();  // a restored log's files date the listing
    listed_once_ = true;

    std::int64_t wall_now = wall_clock_ns();
    std::unordered_map<std::string, unstable_file> still_unstable;
    next_stable_check_.reset();
    if (!rebuilding && !sink_output_)  // committed part files are complete
      std::erase_if(files, [&](const file_entry& f) { return !is_stable(f, now, wall_now, still_unstable); });
    unstable_ = std::move(still_unstable);  // a file that vanished is forgotten
    moved_in_.clear();

    std::int64_t newest = newest_mtime_ns_;
    for (const auto& f : files) newest = std::max(newest, f.mtime_ns);
    newest_mtime_ns_ = newest;
    bool age_filter = max_file_age_ns_ && !first_listing && !(latest_first_ && max_files_per_trigger_);
    bool added = false;
    for (auto& f : files) {
      bool too_old = age_filter && f.mtime_ns < newest - *max_file_age_ns_;
      known_.emplace(f.path, known_file{f.size, f.mtime_ns, !too_old});
      if (too_old) continue;
      log_.push_back(std::move(f));
      added = true;
    }
    if (added) {
      auto tail = log_.begin() + static_cast<std::ptrdiff_t>(fixed_);
      std::stable_sort(tail, log_.end(), latest_first_ ? newer_first : older_first);
    }
  }

  // A file sink's output directory is read through its commit log, as Spark reads _spark_metadata: only
  // part files of committed epochs, so a crash between a part file's rename and the log entry shows nothing.
  void read_commit_log(const std::string& directory) {
    if (!has_commit_log(directory)) return;
    sink_output_ = true;
    watch_commit_log(directory);  // before reading, so no entry written meanwhile is missed
    for (std::int64_t epoch : committed_epochs(directory)) {
      if (!epochs_read_.insert(epoch).second) continue;
      for (auto& name : committed_epoch_files(directory, epoch)) committed_names_.insert(std::move(name));
    }
  }

  // A file is stable when it was moved in, or has not changed for fileStableMs: by its modification
  // time (so files that were there long before the query are taken at once) or, for a modification time
  // in the future, as observed by this source. Unstable files go to `unstable`, next_stable_check_ says
  // when the first of them may be stable.
  bool is_stable(const file_entry& f, clock::time_point now, std::int64_t wall_now,
                 std::unordered_map<std::string, unstable_file>& unstable) {
    const std::int64_t stable_ns = std::chrono::nanoseconds(file_stable_).count();
    if (stable_ns == 0 || moved_in_.contains(f.path) || wall_now - f.mtime_ns >= stable_ns) return true;
    auto seen = unstable_.find(f.path);
    bool unchanged = seen != unstable_.end() && seen->second.size == f.size && seen->second.mtime_ns == f.mtime_ns;
    clock::time_point since = unchanged ? seen->second.unchanged_since : now;
    if (now - since >= file_stable_) return true;
    unstable.emplace(f.path, unstable_file{f.size, f.mtime_ns, since});
    clock::time_point due =
        std::min(since + file_stable_, now + std::chrono::nanoseconds(f.mtime_ns + stable_ns - wall_now));
    next_stable_check_ = next_stable_check_ ? std::min(*next_stable_check_, due) : due;
    return false;
  }

  // Files written just before the query started are most likely complete: the first plan waits for them
  // (at most fileStableMs) rather than leave them to a later plan, which an available-now query never makes.
  void await_young_files() {
    auto deadline = clock::now() + file_stable_;
    while (next_stable_check_ && clock::now() < deadline) {
      std::this_thread::sleep_until(std::min(*next_stable_check_, deadline));
      refresh(true);
    }
  }

  // Counts (once per file) and reports taken files whose size or modification time changed since.
  void report_changes(const std::vector<std::string>& paths) {
    for (const auto& p : paths) {
      auto found = known_.find(p);
      if (found == known_.end() || !found->second.watch_changes) continue;
      struct stat st{};
      if (::stat(p.c_str(), &st) != 0) continue;  // removed: nothing more to read from it
      auto size = static_cast<std::uint64_t>(st.st_size);
      if (size != found->second.size || mtime_ns(st) != found->second.mtime_ns) report_change(found, size);
    }
  }

  void report_change(std::unordered_map<std::string, known_file>::iterator file, std::uint64_t new_size) {
    file->second.watch_changes = false;
    ++files_changed_after_read_;
    std::cerr << "file source " << path_ << ": '" << file->first << "' changed after it was taken for an epoch ("
              << file->second.size << " -> " << new_size << " bytes); each file is read once, so what changes "
              << "later is missed: write files elsewhere and move them in, or raise fileStableMs\n";
  }

  void watch(const std::string& directory) {
    if (inotify_unavailable_) return;
    if (inotify_fd_ < 0) {
      inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (inotify_fd_ < 0) {
        inotify_unavailable_ = true;  // fall back to listing on every call
        return;
      }
    }
    if (watch_ >= 0 && watched_directory_ == directory) return;
    if (watch_ >= 0) ::inotify_rm_watch(inotify_fd_, watch_);
    if (log_watch_ >= 0) ::inotify_rm_watch(inotify_fd_, log_watch_);
    log_watch_ = -1;
    watch_ = ::inotify_add_watch(inotify_fd_, directory.c_str(),
                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                     IN_MOVE_SELF | IN_ONLYDIR);
    watched_directory_ = watch_ >= 0 ? directory : std::string();
  }

  void watch_commit_log(const std::string& directory) {
    if (inotify_fd_ < 0 || log_watch_ >= 0) return;
    std::string log_directory = (std::filesystem::path(directory) / file_sink_log_directory).string();
    log_watch_ = ::inotify_add_watch(inotify_fd_, log_directory.c_str(), IN_MOVED_TO | IN_ONLYDIR);
  }

  directory_events drain_inotify() {
    directory_events events;
    if (inotify_fd_ < 0 || watch_ < 0) return events;
    alignas(inotify_event) char buffer[4096];
    for (;;) {
      ssize_t got = ::read(inotify_fd_, buffer, sizeof buffer);
      if (got <= 0) break;
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        if (event->wd == log_watch_) {  // a commit log entry arrived, or the log is gone
          if (event->mask & IN_IGNORED) log_watch_ = -1;
          events.new_files = true;
          continue;
        }
        if (event->wd != watch_) continue;  // a watch given up earlier
        if (event->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) watch_ = -1;
        if (event->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) events.new_files = true;
        if (event->len == 0 || watched_directory_.empty()) continue;
        std::string path = entry_path(path_, watched_directory_, event->name);
        if (event->mask & IN_MOVED_TO) moved_in_.insert(path);
        events.touched.push_back(std::move(path));
      }
    }
    return events;
  }

  // A plan found nothing: the query hears of the next inotify event, or when a listing (pollIntervalMs)
  // or a file's stability check is due.
  void arm_arrival() {
    if (!arrival_) return;
    auto due = last_listing_ + poll_interval_;
    if (next_stable_check_) due = std::min(due, *next_stable_check_);
    // pollIntervalMs=0 lists at every plan: plans that find nothing then come every 10 ms, not back to back.
    due = std::max(due, clock::now() + std::chrono::milliseconds(10));
    arrival_->arm(watch_ >= 0 ? inotify_fd_ : -1, due);
  }

  void close_inotify() {
    arrival_.reset();  // its thread may be polling the inotify descriptor
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    inotify_fd_ = -1;
    watch_ = -1;
    log_watch_ = -1;
  }

  std::string path_;
  std::shared_ptr<const decoder> decoder_;
  std::optional<std::size_t> max_files_per_trigger_;
  std::optional<std::int64_t> max_file_age_ns_;
  bool latest_first_;
  std::chrono::milliseconds poll_interval_;
  std::chrono::milliseconds file_stable_;
  std::size_t max_chunk_bytes_;
  std::size_t unit_limit_ = std::numeric_limits<std::size_t>::max();
  bool rate_limits_enabled_ = true;

  std::vector<file_entry> log_;  // the file log: a file's index is its sequence number
  std::size_t fixed_ = 0;        // log_[0, fixed_) has been planned and never moves
  std::optional<file_source_log> durable_log_;  // set on a checkpoint: log_[0, logged_end()) is on disk
  std::vector<std::size_t> logged_ends_;         // the end of each logged batch, ascending
  std::unordered_map<std::string, known_file> known_;
  std::int64_t newest_mtime_ns_ = std::numeric_limits<std::int64_t>::min();
  std::unordered_map<std::string, unstable_file> unstable_;
  std::unordered_set<std::string> moved_in_;  // moved in since the last listing: stable at once
  std::optional<clock::time_point> next_stable_check_;
  std::unique_ptr<arrival_watch> arrival_;  // set by notify_when_data
  bool planned_once_ = false;
  bool sink_output_ = false;  // the directory has a file sink's commit log: read through it
  std::unordered_set<std::int64_t> epochs_read_;
  std::unordered_set<std::string> committed_names_;

  int inotify_fd_ = -1;
  int watch_ = -1;
  int log_watch_ = -1;  // the commit log of a file sink's output directory
  bool inotify_unavailable_ = false;
  std::string watched_directory_;
  bool listed_once_ = false;
  clock::time_point last_listing_;

  std::size_t read_next_ = 0;
  std::size_t read_end_ = 0;
  std::optional<file_chunk_reader> reading_;  // the file next() reads, log_[read_next_ - 1]
  std::int64_t files_read_ = 0;
  std::int64_t bytes_read_ = 0;
  std::int64_t files_changed_after_read_ = 0;
};
}  // namespace

std::unique_ptr<source_reader> make_file_source(std::string path, std::string format, options opts,
                                                schema_ptr schema) {
  return std::make_unique<file_stream_source>(std::move(path), std::move(format), std::move(opts), std::move(schema));
}

std::vector<std::string> list_input_files(const std::string& path) {
  input_location where = locate(path);
  std::optional<std::unordered_set<std::string>> committed;
  if (has_commit_log(where.directory)) {
    committed.emplace();
    for (std::int64_t epoch : committed_epochs(where.directory))
      for (auto& name : committed_epoch_files(where.directory, epoch)) committed->insert(std::move(name));
  }
  std::vector<std::string> paths;
  for (auto& f : list_files(path, where, {}, committed ? &*committed : nullptr)) paths.push_back(std::move(f.path));
  return paths;
}

std::vector<raw_chunk> cut_into_chunks(std::shared_ptr<const std::string> contents, const std::string& origin,
                                       const decoder& format_decoder, std::size_t max_chunk_bytes) {
  std::vector<raw_chunk> chunks;
  const std::string_view bytes(*contents);
  const std::size_t limit = std::max<std::size_t>(max_chunk_bytes, 1);
  std::size_t pos = 0;
  std::uint64_t line = 1;
  while (pos < bytes.size()) {
    const std::size_t end = pos + first_cut(bytes.substr(pos), true, format_decoder, limit);
    chunks.push_back(raw_chunk{contents, pos, end, origin, line});
    line += count_newlines(bytes.data() + pos, bytes.data() + end);
    pos = end;
  }
  return chunks;
}

namespace {

// Fills data[0, size) with the bytes of fd from offset on; throws when the file ends first (it shrank).
void read_exactly(int fd, const std::string& file, std::uint64_t offset, char* data, std::size_t size) {
  for (std::size_t filled = 0; filled < size;) {
    const ssize_t got = ::pread(fd, data + filled, size - filled, static_cast<off_t>(offset + filled));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw error(read_error(file, errno));
    if (got == 0)
      throw error("file source: file '" + file + "' shrank while it was read; files must not change after they are taken");
    filled += static_cast<std::size_t>(got);
  }
}

// The offset of the last '\n' in the bytes [from, to) of fd, read backwards a block at a time.
std::optional<std::uint64_t> last_newline(int fd, const std::string& file, std::uint64_t from, std::uint64_t to) {
  constexpr std::uint64_t block = 8192;
  char buffer[block];
  while (to > from) {
    const std::uint64_t start = to - std::min(block, to - from);
    read_exactly(fd, file, start, buffer, static_cast<std::size_t>(to - start));
    if (const void* nl = memrchr(buffer, '\n', static_cast<std::size_t>(to - start)))
      return start + static_cast<std::uint64_t>(static_cast<const char*>(nl) - buffer);
    to = start;
  }
  return std::nullopt;
}

// first_cut on a file of size bytes whose records end at line ends, read from fd only around the cuts.
std::vector<std::uint64_t> line_cuts(int fd, const std::string& file, std::uint64_t size, std::size_t limit) {
  std::vector<std::uint64_t> cuts{0};
  for (std::uint64_t pos = 0; pos < size;) {
    const std::uint64_t remaining = size - pos;
    std::uint64_t cut = size;
    if (remaining > limit) {
      std::uint64_t searched = 0;  // [pos, pos + searched) holds no line end
      for (std::uint64_t window = limit;; window *= 2) {
        window = std::min(window, remaining);
        if (auto nl = last_newline(fd, file, pos + searched, pos + window)) {
          cut = *nl + 1;
          break;
        }
        if (window == remaining) break;
        searched = window;
      }
    }
    cuts.push_back(cut);
    pos = cut;
  }
  return cuts;
}

}  // namespace

bool records_end_at_line_ends(std::string_view format, const options& opts) {
  return format != "csv" || !opts.get_bool("multiLine", false);
}

file_chunk_index::file_chunk_index(std::string file, const decoder& format_decoder, std::size_t max_chunk_bytes,
                                   bool line_records)
    : file_(std::move(file)) {
  fd_.reset(::open(file_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd_) throw error(read_error(file_, errno));
  struct stat st{};
  if (::fstat(fd_.get(), &st) != 0) throw error(read_error(file_, errno));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::size_t limit = std::max<std::size_t>(max_chunk_bytes, 1);
  if (size <= limit) cuts_ = size == 0 ? std::vector<std::uint64_t>{0} : std::vector<std::uint64_t>{0, size};
  else if (line_records) cuts_ = line_cuts(fd_.get(), file_, size, limit);
  else chunks_ = read_file_chunks(file_, format_decoder, limit);
}

raw_chunk file_chunk_index::chunk(std::size_t index) const {
  if (cuts_.empty()) return chunks_.at(index);
  const std::uint64_t begin = cuts_.at(index), end = cuts_.at(index + 1);
  auto bytes = std::make_shared<std::string>(static_cast<std::size_t>(end - begin), '\0');
  read_exactly(fd_.get(), file_, begin, bytes->data(), bytes->size());
  return raw_chunk{std::move(bytes), 0, static_cast<std::size_t>(end - begin), file_, begin == 0 ? 1u : 0u, begin};
}

std::vector<raw_chunk> read_file_chunks(const std::string& file, const decoder& format_decoder,
                                        std::size_t max_chunk_bytes) {
  auto contents = std::make_shared<const std::string>(read_bytes(file, std::string::npos));
  return cut_into_chunks(std::move(contents), file, format_decoder, max_chunk_bytes);
}

std::string read_sample(const std::string& file, std::size_t max_bytes) {
  if (max_bytes == std::string::npos) return read_bytes(file, max_bytes);
  std::string sample = read_bytes(file, max_bytes + 1);
  if (sample.size() <= max_bytes) return sample;
  sample.resize(max_bytes);
  std::size_t last_newline = sample.rfind('\n');
  if (last_newline != std::string::npos) sample.resize(last_newline + 1);
  return sample;
}

void resolve_file_scan(scan_spec& scan) {
  // A stream with a given schema lists its directory when it runs: a missing one fails the query.
  if (scan.streaming && scan.schema) return;
  auto files = list_input_files(scan.path);
  if (!scan.schema) {
    if (scan.format == "text") {
      scan.schema = infer_schema("text", scan.opts, {});
    } else {
      bool infer = scan.format == "json" || scan.opts.get_bool("inferSchema", false);
      if (scan.streaming && !infer)
        throw error("schema must be specified when creating a streaming source from '" + scan.path +
                    "': call schema(...) or set option inferSchema=true");
      if (files.empty())
        throw error("unable to infer the schema of '" + scan.path + "': no input files; give a schema");
      std::string sample = read_sample(files.front(), 1 << 20);
      scan.schema = infer_schema(scan.format, scan.opts, {sample});
      if (!infer) {
        std::vector<field> fields = scan.schema->fields();
        for (auto& f : fields) f.type = type_id::string;
        scan.schema = make_schema(std::move(fields));
      }
    }
  }
  if (!scan.streaming && files.empty()) throw error("path does not exist or holds no input files: " + scan.path);
}

}  // namespace flow::connectors
