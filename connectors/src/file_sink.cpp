// The file sink: part files written under hidden temporary names, fsync'd and renamed at commit, then
// made visible by an atomically written commit log entry (Spark's FileStreamSink with its metadata log).
#include "flow/connectors/file_sink.hpp"

#include "flow/connectors/durable_file.hpp"
#include "flow/connectors/test_hooks.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

namespace flow::connectors {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t flush_threshold_bytes = std::size_t{1} << 20;

constexpr std::string_view owner = "file sink";

bool is_digits(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The commit log entries of a sink directory, by epoch.
std::map<std::int64_t, std::string> log_entries(const std::string& log_directory) {
  std::map<std::int64_t, std::string> entries;
  std::error_code ec;
  for (fs::directory_iterator it(log_directory, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::int64_t epoch = 0;
    auto [ptr, parse_error] = std::from_chars(name.data(), name.data() + name.size(), epoch);
    if (is_digits(name) && parse_error == std::errc{} && ptr == name.data() + name.size())
      entries[epoch] = it->path().string();
  }
  if (ec) throw error("file sink: cannot list commit log '" + log_directory + "': " + ec.message());
  return entries;
}

// ---------------------------------------------------------------- the commit log

const char* commit_log_format = "{\"epoch\":<n>,\"rows\":<n>,\"files\":[\"<name>\",...]}";

struct log_entry {
  std::optional<std::int64_t> rows;  // missing in entries written before libflow recorded it
  std::vector<std::string> files;
};

std::string log_entry_text(std::int64_t epoch, std::int64_t rows, const std::vector<std::string>& names) {
  std::string out = "{\"epoch\":" + std::to_string(epoch) + ",\"rows\":" + std::to_string(rows) + ",\"files\":[";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, names[i]);
  }
  return out + "]}\n";
}

// Reads what log_entry_text writes; file names hold no characters that need escaping beyond \" and \\.
log_entry parse_log_entry(std::string_view text, const std::string& origin) {
  auto corrupt = [&](const std::string& why) {
    return error("file sink: commit log entry '" + origin + "' is corrupt (" + why + "); expected " +
                 commit_log_format);
  };
  std::size_t pos = text.find("\"files\":[");
  if (text.rfind("{\"epoch\":", 0) != 0 || pos == std::string_view::npos) throw corrupt("no epoch or files field");
  log_entry entry;
  if (std::size_t rows_at = text.substr(0, pos).find("\"rows\":"); rows_at != std::string_view::npos) {
    std::int64_t rows = 0;
    const char* digits = text.data() + rows_at + 7;
    auto [end, ec] = std::from_chars(digits, text.data() + pos, rows);
    if (ec != std::errc{} || end == digits || rows < 0) throw corrupt("bad rows field");
    entry.rows = rows;
  }
  pos += 9;
  std::vector<std::string>& names = entry.files;
  while (pos < text.size() && text[pos] != ']') {
    if (!names.empty()) {
      if (text[pos] != ',') throw corrupt("a ',' is missing between file names");
      ++pos;
    }
    if (pos >= text.size() || text[pos] != '"') throw corrupt("a file name is not a string");
    std::string name;
    for (++pos; pos < text.size() && text[pos] != '"'; ++pos) {
      if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
      name.push_back(text[pos]);
    }
    if (pos >= text.size()) throw corrupt("a file name is not closed");
    ++pos;
    if (name.empty() || name.find('/') != std::string::npos) throw corrupt("bad file name '" + name + "'");
    names.push_back(std::move(name));
  }
  if (text.substr(pos).rfind("]}", 0) != 0) throw corrupt("the file list is not closed");
  return entry;
}

log_entry read_log_entry(const std::string& entry_path) {
  return parse_log_entry(connectors::read_file("file sink: commit log entry", entry_path), entry_path);
}

std::string log_directory_of(const std::string& path) { return (fs::path(path) / file_sink_log_directory).string(); }

// The epoch of a part file's name ("part-<epoch>-<n>.<ext>", or ".part-<epoch>-<n>.<ext>.tmp" while
// written), nullopt for any other name: the sink deletes such files, so another tool's (Spark's
// "part-00000-<uuid>-c000.csv") must never match.
std::optional<std::int64_t> part_file_epoch(std::string_view name, const std::string& extension) {
  if (name.starts_with('.')) {
    if (!name.ends_with(extension + ".tmp")) return std::nullopt;
    name.remove_prefix(1);
    name.remove_suffix(4);
  } else if (!name.ends_with(extension)) {
    return std::nullopt;
  }
  name.remove_suffix(extension.size());
  if (!name.starts_with("part-")) return std::nullopt;
  name.remove_prefix(5);
  std::int64_t epoch = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), epoch);
  if (ec != std::errc{} || end == name.data() || end == name.data() + name.size() || *end != '-') return std::nullopt;
  std::string_view file_number = name.substr(static_cast<std::size_t>(end - name.data()) + 1);
  if (!is_digits(file_number)) return std::nullopt;
  return epoch;
}

// ---------------------------------------------------------------- the sink

char csv_separator(const options& opts) {
  std::string sep = opts.has("sep") ? opts.get("sep") : opts.get("delimiter", ",");
  if (sep == "\\t") sep = "\t";
  if (sep.size() != 1 || sep[0] == '\n' || sep[0] == '\r' || sep[0] == '"')
    throw error("file sink: option 'sep' must be one character other than a line break or '\"' (or \\t), got '" +
                sep + "'");
  return sep[0];
}

std::string padded(std::int64_t number) {
  char text[32];
  std::snprintf(text, sizeof text, "%05lld", static_cast<long long>(number));
  return text;
}

struct part_file {
  std::string name;       // part-<epoch>-<n>.<ext>
  std::string temp_path;  // hidden while written: readers skip names starting with '.'
  std::string final_path;
  unique_fd fd;
  std::int64_t rows = 0;
  std::int64_t bytes = 0;
};

// FLOW_FILE_SINK_KILL_BEFORE_LOG=<epoch>: the process kills itself (SIGKILL) when that epoch's part files
// have their final names and its log entry is not written yet: the crash window, for tests.
constexpr const char* kill_before_log_variable = "FLOW_FILE_SINK_KILL_BEFORE_LOG";

struct epoch_output {
  bool committed_before = false;  // a replay of an epoch whose log entry exists: nothing to write
  std::int64_t replayed_rows = 0;  // rows of such a replay, compared with the entry's
  std::vector<part_file> files;
  std::string buffer;  // formatted rows not yet written to files.back()
};

class file_sink final : public sink_writer {
 public:
  file_sink(std::string format, const options& opts)
      : path_(opts.get("path")), extension_(format), max_records_per_file_(opts.get_int("maxRecordsPerFile", 0)) {
    kill_before_log_epoch_ = epoch_from_environment(kill_before_log_variable, "file sink");
    if (path_.empty())
      throw error("file sink (" + format + "): option 'path' is required: option(\"path\", \"/output/dir\")");
    if (max_records_per_file_ < 0)
      throw error("file sink: maxRecordsPerFile must not be negative (0: unlimited), got " +
                  std::to_string(max_records_per_file_));
    if (format == "csv") {
      encoding_ = text_encoding::csv;
      encoder_options_.separator = csv_separator(opts);
      encoder_options_.header = opts.get_bool("header", false);
    } else if (format == "json") {
      encoding_ = text_encoding::json;
    } else {
      throw error("file sink: unsupported format '" + format + "'; supported: csv, json");
    }
    log_directory_ = log_directory_of(path_);
  }

  ~file_sink() override {
    for (auto& [epoch, output] : pending_) close_files(output);
  }

  std::string description() const override { return "FileSink[" + path_ + "]"; }

  void open(const schema_ptr& input, output_mode mode, const std::vector<std::string>&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string& name = extension_;
    if (mode != output_mode::append) {
      throw error("Data source " + name + " does not support " +
                  (mode == output_mode::complete ? "Complete" : "Update") +
                  " output mode; the file sink only appends (use append mode, or foreachBatch / memory for "
                  "aggregation results)");
    }
    try {
      encoder_ = std::make_unique<row_encoder>(encoding_, input, encoder_options_);
    } catch (const error& e) {
      throw error("file sink '" + path_ + "': " + e.what() + " (format json)");
    }
    std::error_code ec;
    fs::create_directories(log_directory_, ec);
    if (ec) throw error("file sink: cannot create output directory '" + log_directory_ + "': " + ec.message());
    // A restart on an earlier run's output: its committed epochs stay (and are skipped when this run
    // replays them), the part files of epochs it did not log are deleted.
    earlier_run_rows_.clear();
    for (const auto& [epoch, entry] : log_entries(log_directory_)) earlier_run_rows_[epoch] = read_log_entry(entry).rows;
    remove_part_files([&](std::int64_t epoch) { return !earlier_run_rows_.contains(epoch); });
    schema_ = input;
    closed_ = false;
  }

  void write(std::int64_t epoch, const batch& rows) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!schema_) throw error("file sink '" + path_ + "': write before open");
    check_open(epoch);
    epoch_output& output = begin_epoch(epoch);
    if (output.committed_before) output.replayed_rows += static_cast<std::int64_t>(rows.num_rows());
    if (output.committed_before || rows.num_rows() == 0) return;
    check_schema(epoch, rows);
    for (std::size_t row = 0; row < rows.num_rows(); ++row) {
      if (output.files.empty() || (max_records_per_file_ > 0 && output.files.back().rows == max_records_per_file_)) {
        start_part(epoch, output);
      }
      encoder_->append_row(output.buffer, rows, row);
      output.buffer.push_back('\n');
      ++output.files.back().rows;
      if (output.buffer.size() >= flush_threshold_bytes) flush(output);
    }
  }

  void commit(std::int64_t epoch) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!schema_) throw error("file sink '" + path_ + "': commit before open");
    check_open(epoch);
    epoch_output& output = begin_epoch(epoch);
    if (output.committed_before) {
      check_same_as_earlier_run(epoch, output.replayed_rows);
    } else {
      if (!output.files.empty()) finish_part(output);
      std::vector<std::string> names;
      std::int64_t rows = 0;
      for (auto& file : output.files) {
        rename_file(owner, file.temp_path, file.final_path);
        names.push_back(file.name);
        rows += file.rows;
      }
      if (!output.files.empty()) sync_directory(owner, path_);
      if (kill_before_log_epoch_ == epoch) ::kill(::getpid(), SIGKILL);
      write_file_atomically(owner, log_directory_, std::to_string(epoch), log_entry_text(epoch, rows, names));
      for (const auto& file : output.files) {
        ++files_written_;
        rows_written_ += file.rows;
        bytes_written_ += file.bytes;
      }
    }
    pending_.erase(epoch);
  }

  void abort(std::int64_t epoch) override {
    std::lock_guard<std::mutex> lock(mutex_);
    discard(epoch);
  }

  connector_metrics metrics() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return {{"numFiles", files_written_}, {"numOutputRows", rows_written_}, {"numOutputBytes", bytes_written_}};
  }

  void close() override {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!pending_.empty()) discard(pending_.begin()->first);
    closed_ = true;
  }

 private:
  // A closed sink takes nothing more: the rows of an epoch written after close() (close discarded the
  // earlier ones) must never be committed as the whole epoch.
  void check_open(std::int64_t epoch) const {
    if (closed_)
      throw error("file sink '" + path_ + "': epoch " + std::to_string(epoch) + " comes after the sink was closed "
                  "(the query ended); it is not committed");
  }

  std::string log_path(std::int64_t epoch) const { return log_directory_ + "/" + std::to_string(epoch); }

  epoch_output& begin_epoch(std::int64_t epoch) {
    auto found = pending_.find(epoch);
    if (found != pending_.end()) return found->second;
    epoch_output output;
    output.committed_before = fs::exists(log_path(epoch));
    if (!output.committed_before) remove_uncommitted_files(epoch);
    return pending_.emplace(epoch, std::move(output)).first->second;
  }

  // A restarted query replays the epochs the earlier run committed: each must have the rows it had then,
  // else this run planned other epochs (it restarted at epoch 0 over other input) and skipping would lose rows.
  void check_same_as_earlier_run(std::int64_t epoch, std::int64_t rows) const {
    auto earlier = earlier_run_rows_.find(epoch);
    if (earlier == earlier_run_rows_.end() || !earlier->second || *earlier->second == rows) return;
    throw error("file sink '" + path_ + "': epoch " + std::to_string(epoch) + " was committed by an earlier run with " +
                std::to_string(*earlier->second) + " rows, this run's epoch " + std::to_string(epoch) + " has " +
                std::to_string(rows) + ": the query plans other epochs than the run that wrote this directory "
                "(a query without its checkpoint, or on another one, starts again at epoch 0); run it on the "
                "checkpointLocation that wrote this directory, write to a new directory, or delete the old output");
  }

  void remove_uncommitted_files(std::int64_t epoch) const {
    remove_part_files([&](std::int64_t of) { return of == epoch; });
  }

  // Part files of epochs without a log entry: left by an attempt that failed before its commit.
  void remove_part_files(const std::function<bool(std::int64_t epoch)>& of_epoch) const {
    std::vector<fs::path> stray;
    std::error_code ec;
    for (fs::directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec)) {
      auto epoch = part_file_epoch(it->path().filename().string(), "." + extension_);
      if (epoch && of_epoch(*epoch)) stray.push_back(it->path());
    }
    if (ec) throw error("file sink: cannot list output directory '" + path_ + "': " + ec.message());
    for (const auto& file : stray) {
      if (!fs::remove(file, ec) && ec)
        throw error("file sink: cannot delete stray file '" + file.string() + "': " + ec.message());
    }
  }

  void discard(std::int64_t epoch) {
    auto found = pending_.find(epoch);
    if (found == pending_.end()) return;
    close_files(found->second);
    for (const auto& file : found->second.files) ::unlink(file.temp_path.c_str());
    bool committed_before = found->second.committed_before;
    pending_.erase(found);
    if (!committed_before && !fs::exists(log_path(epoch))) remove_uncommitted_files(epoch);
  }

  static void close_files(epoch_output& output) {
    for (auto& file : output.files) file.fd.reset();
  }

  void check_schema(std::int64_t epoch, const batch& rows) const {
    bool same_types = rows.num_columns() == schema_->size();
    for (std::size_t c = 0; same_types && c < rows.num_columns(); ++c)
      same_types = rows.col(c).type() == (*schema_)[c].type;
    if (!same_types) {
      throw error("file sink '" + path_ + "': epoch " + std::to_string(epoch) + " has rows of schema (" +
                  rows.schema().to_string() + "), the query declared (" + schema_->to_string() + ")");
    }
  }

  void start_part(std::int64_t epoch, epoch_output& output) {
    if (!output.files.empty()) finish_part(output);
    part_file file;
    file.name = "part-" + padded(epoch) + "-" + padded(static_cast<std::int64_t>(output.files.size())) + "." + extension_;
    file.temp_path = path_ + "/." + file.name + ".tmp";
    file.final_path = path_ + "/" + file.name;
    file.fd = create_file(owner, file.temp_path);
    output.files.push_back(std::move(file));
    output.buffer = encoder_->header();
  }

  void flush(epoch_output& output) {
    part_file& file = output.files.back();
    write_all(owner, file.fd.get(), output.buffer, file.temp_path);
    file.bytes += static_cast<std::int64_t>(output.buffer.size());
    output.buffer.clear();
  }

  void finish_part(epoch_output& output) {
    flush(output);
    part_file& file = output.files.back();
    sync_file(owner, file.fd.get(), file.temp_path);
    file.fd.reset();
  }

  std::string path_;
  std::string extension_;  // the format: csv or json
  std::string log_directory_;
  std::int64_t max_records_per_file_;
  text_encoding encoding_ = text_encoding::csv;
  encoder_options encoder_options_;
  std::unique_ptr<row_encoder> encoder_;  // made at open, for the query's schema
  schema_ptr schema_;
  // close() may come from the coordinator while the sink actor still finishes a commit.
  mutable std::mutex mutex_;
  std::map<std::int64_t, epoch_output> pending_;
  std::map<std::int64_t, std::optional<std::int64_t>> earlier_run_rows_;  // epochs logged before open, their rows
  std::optional<std::int64_t> kill_before_log_epoch_;
  bool closed_ = false;
  std::int64_t files_written_ = 0;
  std::int64_t rows_written_ = 0;
  std::int64_t bytes_written_ = 0;
};

}  // namespace

std::unique_ptr<sink_writer> make_file_sink(std::string format, options opts) {
  return std::make_unique<file_sink>(std::move(format), opts);
}

bool has_commit_log(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(log_directory_of(path), ec);
}

std::vector<std::int64_t> committed_epochs(const std::string& path) {
  if (!has_commit_log(path)) {
    throw error("file sink output '" + path + "' has no commit log (" + file_sink_log_directory +
                "): it was not written by a file sink, or the path is wrong");
  }
  std::vector<std::int64_t> epochs;
  for (const auto& [epoch, entry] : log_entries(log_directory_of(path))) epochs.push_back(epoch);
  return epochs;
}

std::vector<std::string> committed_epoch_files(const std::string& path, std::int64_t epoch) {
  return read_log_entry(log_directory_of(path) + "/" + std::to_string(epoch)).files;
}

std::vector<std::string> committed_files(const std::string& path) {
  std::vector<std::string> files;
  for (std::int64_t epoch : committed_epochs(path)) {
    for (const auto& name : committed_epoch_files(path, epoch)) files.push_back((fs::path(path) / name).string());
  }
  return files;
}

}  // namespace flow::connectors
