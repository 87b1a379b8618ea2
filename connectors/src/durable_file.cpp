#include "flow/connectors/durable_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>
#include <zlib.h>

#include "flow/types.hpp"

namespace flow::connectors {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(std::string_view owner, std::string_view doing, const std::string& path, int code) {
  throw error(std::string(owner) + ": cannot " + std::string(doing) + " '" + path + "': " + std::strerror(code));
}

// CRC-32 (the one of zip and Boost.CRC's crc_32_type), fed in pieces that fit zlib's length type; continues
// from crc (a running checksum of the bytes before).
std::uint32_t crc32_of(std::string_view bytes, uLong crc = ::crc32(0L, Z_NULL, 0)) {
  while (!bytes.empty()) {
    const auto piece = static_cast<uInt>(std::min<std::size_t>(bytes.size(), 1u << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), piece);
    bytes.remove_prefix(piece);
  }
  return static_cast<std::uint32_t>(crc);
}

constexpr std::string_view seal_magic = "FLOWSEAL1 ";

// fsyncs the descriptors concurrently: a journaling file system (ext4) makes concurrent fsyncs durable with
// one journal commit, so n files cost about one sync instead of n in a row. At most max_sync_threads run
// at once (each takes every max_sync_threads-th file), so a round of many slots' files stays cheap.
void sync_all(std::string_view owner, std::string_view doing, const std::vector<int>& fds,
              const std::vector<std::string>& paths) {
  constexpr std::size_t max_sync_threads = 16;
  std::vector<int> errors(fds.size(), 0);
  const std::size_t threads = std::min(fds.size(), max_sync_threads);
  auto sync_every = [&](std::size_t first) {
    for (std::size_t i = first; i < fds.size(); i += threads)
      if (::fsync(fds[i]) != 0) errors[i] = errno;
  };
  {
    std::vector<std::jthread> others;
    for (std::size_t t = 1; t < threads; ++t) others.emplace_back(sync_every, t);
    if (threads > 0) sync_every(0);
  }
  for (std::size_t i = 0; i < fds.size(); ++i)
    if (errors[i] != 0) fail(owner, doing, paths[i], errors[i]);
}

unique_fd open_directory(std::string_view owner, const std::string& directory) {
  unique_fd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) fail(owner, "open directory", directory, errno);
  return fd;
}

// Reads path from start to end, handing each chunk read to on_chunk.
void read_chunks(std::string_view owner, const std::string& path, const std::function<void(std::string_view)>& on_chunk) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail(owner, "read", path, errno);
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(owner, "read", path, errno);
    }
    if (n == 0) break;
    on_chunk(std::string_view(chunk, static_cast<std::size_t>(n)));
  }
}

}  // namespace

void unique_fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

unique_fd create_file(std::string_view owner, const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) fail(owner, "create", path, errno);
  return fd;
}

void write_all(std::string_view owner, int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(owner, "write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void sync_file(std::string_view owner, int fd, const std::string& path) {
  if (::fsync(fd) != 0) fail(owner, "fsync", path, errno);
}

void sync_directory(std::string_view owner, const std::string& directory) {
  const unique_fd fd = open_directory(owner, directory);
  if (::fsync(fd.get()) != 0) fail(owner, "fsync directory", directory, errno);
}

void rename_file(std::string_view owner, const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) fail(owner, "rename '" + from + "' to", to, errno);
}

void create_directories(std::string_view owner, const std::string& directory) {
  const fs::path path = fs::absolute(directory);
  if (fs::is_directory(path)) return;
  if (path.has_parent_path() && path.parent_path() != path) create_directories(owner, path.parent_path().string());
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) fail(owner, "create directory", path.string(), errno);
  if (!fs::is_directory(path)) fail(owner, "create directory", path.string(), ENOTDIR);
  if (path.has_parent_path()) sync_directory(owner, path.parent_path().string());
}

void write_file_atomically(std::string_view owner, const std::string& directory, const std::string& name,
                           std::string_view content) {
  write_files_atomically(owner, {{file_write{directory, name, std::string(content)}}});
}

void write_files_atomically(std::string_view owner, const std::vector<std::vector<file_write>>& stages) {
  auto temp_of = [](const file_write& f) { return f.directory + "/." + f.name + ".tmp"; };
  std::vector<std::string> temps;  // written so far, removed on a failure
  try {
    std::vector<unique_fd> written;
    for (const auto& stage : stages) {
      for (const auto& file : stage) {
        temps.push_back(temp_of(file));
        written.push_back(create_file(owner, temps.back()));
        write_all(owner, written.back().get(), file.content, temps.back());
      }
    }
    std::vector<int> fds;
    for (const auto& fd : written) fds.push_back(fd.get());
    sync_all(owner, "fsync", fds, temps);
    written.clear();
    std::size_t renamed = 0;
    for (const auto& stage : stages) {
      std::vector<std::string> directories;
      for (const auto& file : stage) {
        rename_file(owner, temps[renamed], file.directory + "/" + file.name);
        ++renamed;
        if (std::find(directories.begin(), directories.end(), file.directory) == directories.end())
          directories.push_back(file.directory);
      }
      std::vector<unique_fd> opened;
      std::vector<int> directory_fds;
      for (const auto& directory : directories) {
        opened.push_back(open_directory(owner, directory));
        directory_fds.push_back(opened.back().get());
      }
      sync_all(owner, "fsync directory", directory_fds, directories);
    }
    temps.clear();
  } catch (...) {
    for (const auto& temp : temps) ::unlink(temp.c_str());
    throw;
  }
}

std::string read_file(std::string_view owner, const std::string& path) {
  std::string text;
  read_chunks(owner, path, [&](std::string_view chunk) { text.append(chunk); });
  return text;
}

file_digest digest_file(std::string_view owner, const std::string& path) {
  std::uint32_t crc = crc32_of({});
  file_digest out;
  read_chunks(owner, path, [&](std::string_view chunk) {
    crc = crc32_of(chunk, crc);
    out.bytes += chunk.size();
  });
  out.crc32 = crc;
  return out;
}

void sync_existing_file(std::string_view owner, const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail(owner, "open", path, errno);
  sync_file(owner, fd.get(), path);
}

std::string seal(std::string_view payload) {
  char header[64];
  const int n = std::snprintf(header, sizeof header, "%.*s%08x %zu\n", static_cast<int>(seal_magic.size()),
                              seal_magic.data(), crc32_of(payload), payload.size());
  std::string out(header, static_cast<std::size_t>(n));
  out.append(payload);
  return out;
}

std::optional<std::string> unseal(std::string_view content, std::string& why) {
  if (!content.starts_with(seal_magic)) {
    why = content.empty() ? "empty file" : "not a sealed file (no FLOWSEAL1 header)";
    return std::nullopt;
  }
  const std::size_t line_end = content.find('\n');
  if (line_end == std::string_view::npos) {
    why = "truncated header";
    return std::nullopt;
  }
  std::string_view header = content.substr(seal_magic.size(), line_end - seal_magic.size());
  std::uint32_t checksum = 0;
  std::size_t size = 0;
  auto [crc_end, crc_error] = std::from_chars(header.data(), header.data() + header.size(), checksum, 16);
  if (crc_error != std::errc{} || crc_end == header.data() + header.size() || *crc_end != ' ') {
    why = "malformed header";
    return std::nullopt;
  }
  auto [size_end, size_error] = std::from_chars(crc_end + 1, header.data() + header.size(), size);
  if (size_error != std::errc{} || size_end != header.data() + header.size()) {
    why = "malformed header";
    return std::nullopt;
  }
  std::string_view payload = content.substr(line_end + 1);
  if (payload.size() != size) {
    why = payload.size() < size ? "truncated: " + std::to_string(payload.size()) + " of " + std::to_string(size) +
                                      " payload bytes"
                                : "longer than written: " + std::to_string(payload.size()) + " payload bytes, " +
                                      std::to_string(size) + " expected";
    return std::nullopt;
  }
  if (crc32_of(payload) != checksum) {
    why = "checksum mismatch";
    return std::nullopt;
  }
  return std::string(payload);
}

namespace {

// How many bytes the sealed record at the start of rest claims (its header and the payload size the header
// gives; more than rest holds when it runs past the end), or nullopt when no header can be read there.
std::optional<std::size_t> declared_length(std::string_view rest) {
  const std::size_t line_end = rest.find('\n');
  if (!rest.starts_with(seal_magic) || line_end == std::string_view::npos) return std::nullopt;
  const std::size_t size_at = rest.substr(0, line_end).rfind(' ');
  std::size_t size = 0;
  auto [size_end, ec] = std::from_chars(rest.data() + size_at + 1, rest.data() + line_end, size);
  if (ec != std::errc{} || size_end != rest.data() + line_end) return std::nullopt;
  return line_end + 1 + std::min(size, rest.size());
}

}  // namespace

std::optional<std::string> unseal_next(std::string_view content, std::size_t& pos, std::string& why) {
  std::string_view rest = content.substr(pos);
  // The header's last field is the payload size: it tells where this payload ends; unseal checks the rest.
  const std::size_t length = declared_length(rest).value_or(rest.size());
  auto payload = unseal(rest.substr(0, length), why);
  if (payload) pos += length;
  return payload;
}

namespace {

// Whether only zeros (blocks a crash left unwritten) or nothing follow `at`: where the log ends.
bool at_log_end(std::string_view content, std::size_t at) {
  return content.find_first_not_of('\0', at) == std::string_view::npos;
}

// Whether an intact record starts at `at` and ends at the log's end or where another record's header starts.
bool record_at(std::string_view content, std::size_t at) {
  std::string ignored;
  return unseal_next(content, at, ignored) && (at_log_end(content, at) || content.substr(at).starts_with(seal_magic));
}

bool intact_to_end(std::string_view content, std::size_t at) {
  std::string ignored;
  while (!at_log_end(content, at))
    if (!unseal_next(content, at, ignored)) return false;
  return true;
}

// Where the damaged stretch that starts at start ends: at the next record, else the end. A payload may hold
// bytes of a whole sealed record (user data in a state delta), which must not be read as a record of the
// log: a damaged record whose header is readable ends where it says when a record (or the end) follows
// there; a record found inside counts only when it ends where another begins; and after a record that runs
// past the end (a torn append), only when intact records follow it up to the end.
std::size_t end_of_damage(std::string_view content, std::size_t start) {
  const auto length = declared_length(content.substr(start));
  const bool runs_past_end = length && *length > content.size() - start;
  if (length && !runs_past_end && (at_log_end(content, start + *length) || record_at(content, start + *length)))
    return start + *length;
  for (std::size_t at = content.find(seal_magic, start + 1); at != std::string_view::npos;
       at = content.find(seal_magic, at + 1)) {
    if (runs_past_end ? intact_to_end(content, at) : record_at(content, at)) return at;
  }
  return content.size();
}

}  // namespace

std::vector<sealed_record> scan_sealed_log(std::string_view content) {
  std::vector<sealed_record> out;
  std::size_t pos = 0;
  while (pos < content.size()) {
    // Zeros after the last record (blocks of an append a crash left unwritten) are no record (a record
    // starts with the seal's magic): a zeroed tail is where the log ends, a torn append.
    if (at_log_end(content, pos)) break;
    const std::size_t start = pos;
    std::string why;
    if (auto payload = unseal_next(content, pos, why)) {
      out.push_back({start, pos, true, std::move(*payload), {}});
      continue;
    }
    const std::size_t next = end_of_damage(content, start);
    out.push_back({start, next, false, std::string(content.substr(start, next - start)), std::move(why)});
    pos = next;
  }
  return out;
}

sealed_log::sealed_log(std::string_view owner, std::string directory, std::string name)
    : owner_(owner), directory_(std::move(directory)), path_(directory_ + "/" + name) {
  std::error_code ec;
  if (!fs::exists(path_, ec)) return;
  const auto records = scan_sealed_log(read_file(owner_, path_));
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& record = records[i];
    if (!record.intact) {
      if (i + 1 < records.size())
        throw error(owner_ + ": '" + path_ + "' is damaged at byte " + std::to_string(record.at) + " (" + record.why +
                    ") before its last record, so acknowledged records are lost; restore the file from a backup "
                    "or start the query on a new checkpoint location");
      torn_tail_ = record.why;
      break;  // a torn append: never acknowledged
    }
    recovered_.push_back(record.payload);
    end_ = record.end;
  }
}

void sealed_log::append(std::string_view payload) { append(std::vector<std::string>{std::string(payload)}); }

void sealed_log::append(const std::vector<std::string>& payloads) { write_records(payloads, true); }

void sealed_log::append_unsynced(std::string_view payload) { write_records({std::string(payload)}, false); }

void sealed_log::cut_torn_tail() {
  if (open_for_append() && ::fdatasync(fd_.get()) != 0) fail(owner_, "fdatasync", path_, errno);
}

bool sealed_log::open_for_append() {
  if (fd_) return false;
  bool created = true;
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd_ && errno == EEXIST) {
    created = false;
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CLOEXEC));
  }
  if (!fd_) fail(owner_, "open", path_, errno);
  if (created) sync_directory(owner_, directory_);
  // A torn record after end_ (a crash's, or a failed append's) is cut off.
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) fail(owner_, "stat", path_, errno);
  if (static_cast<std::uint64_t>(st.st_size) <= end_) return false;
  if (::ftruncate(fd_.get(), static_cast<off_t>(end_)) != 0) {
    const int code = errno;
    fd_.reset();
    fail(owner_, "cut the torn end off", path_, code);
  }
  return true;
}

void sealed_log::write_records(const std::vector<std::string>& payloads, bool sync) {
  open_for_append();
  std::string record;
  for (const auto& payload : payloads) record += seal(payload);
  try {
    std::string_view rest = record;
    off_t at = static_cast<off_t>(end_);
    while (!rest.empty()) {
      const ssize_t n = ::pwrite(fd_.get(), rest.data(), rest.size(), at);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(owner_, "write", path_, errno);
      }
      rest.remove_prefix(static_cast<std::size_t>(n));
      at += n;
    }
    if (sync && ::fdatasync(fd_.get()) != 0) fail(owner_, "fdatasync", path_, errno);
  } catch (...) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(end_)) != 0) fd_.reset();  // the next append reopens and cuts
    throw;
  }
  end_ += record.size();
}

}  // namespace flow::connectors
