// Files that survive a crash whole or not at all: the one place that writes with fsync and atomic renames
// (the file sink's part files and commit log, the checkpoint, the sources' logs in it) and seals content
// with a checksum, so that a torn or corrupted file is detected instead of being read as valid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flow::connectors {

// Owns a file descriptor: closes it once, on destruction or reset.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Every function below throws flow::error "<owner>: cannot <do what> '<path>': <OS error>" (owner names the
// component, e.g. "file sink" or "checkpoint"), so that a full disk or a read-only directory reaches the
// user as what failed and where.

// Creates (or truncates) path for writing.
unique_fd create_file(std::string_view owner, const std::string& path);
void write_all(std::string_view owner, int fd, std::string_view data, const std::string& path);
void sync_file(std::string_view owner, int fd, const std::string& path);
// A rename or a new file is durable only once the directory holding it is synced.
void sync_directory(std::string_view owner, const std::string& directory);
void rename_file(std::string_view owner, const std::string& from, const std::string& to);
// Creates directory and its parents when missing, syncing each parent that gained an entry.
void create_directories(std::string_view owner, const std::string& directory);

// directory/name holds content, or (after a crash at any moment) what it held before: content goes to a
// hidden temporary file (".name.tmp"), is synced, renamed over name, and the directory is synced. A failure
// removes the temporary file and leaves name as it was.
void write_file_atomically(std::string_view owner, const std::string& directory, const std::string& name,
                           std::string_view content);

// One file of a group write: directory/name is to hold content.
struct file_write {
  std::string directory, name, content;
};

// Writes groups of files atomically like write_file_atomically, but the syncs of many files cost about as
// much as one: every temporary file of every stage is written, then all are synced concurrently; then,
// stage after stage, the stage's files are renamed into place and the directories they went to are synced
// (each once, concurrently), so that no file of a stage is durable before every file of the stages before it.
// A failure before the renames removes every temporary file and renames nothing; a failure while renaming
// (a crash anyway) leaves the files renamed so far, each whole.
void write_files_atomically(std::string_view owner, const std::vector<std::vector<file_write>>& stages);

// The whole content of path.
std::string read_file(std::string_view owner, const std::string& path);

// What a file holds, for a manifest that lists files by size and checksum (seal's CRC32), read in chunks.
struct file_digest {
  std::uint64_t bytes = 0;
  std::uint32_t crc32 = 0;
};
file_digest digest_file(std::string_view owner, const std::string& path);
// Makes a file written by another writer (a library) durable: opens it and fsyncs it.
void sync_existing_file(std::string_view owner, const std::string& path);

// A payload with a header that makes damage visible: "FLOWSEAL1 <crc32 in hex> <payload bytes>\n" then the
// payload. unseal returns the payload, or nullopt with why set ("truncated: 10 of 64 payload bytes",
// "checksum mismatch", "not a sealed file") when the content is not exactly what seal wrote.
std::string seal(std::string_view payload);
std::optional<std::string> unseal(std::string_view content, std::string& why);
// An append-only log of sealed payloads back to back: the payload that starts at content[pos], pos moved
// past it; nullopt with why set when what starts there is not a whole, intact sealed payload.
std::optional<std::string> unseal_next(std::string_view content, std::size_t& pos, std::string& why);

// One stretch of an append-only log of sealed payloads (scan_sealed_log): an intact payload, or damaged bytes
// (why set) up to the next intact record or the end (never one inside a damaged payload's bytes: see
// docs/fault-tolerance.md).
struct sealed_record {
  std::size_t at = 0, end = 0;  // where it starts and ends in the content
  bool intact = true;
  std::string payload;  // intact: the payload; damaged: the raw bytes of the stretch
  std::string why;      // damaged: why ("checksum mismatch", "truncated: ...")
};
// Every stretch of content, in order. A damaged stretch last is what a torn append leaves (or damage in
// the last record, which looks the same); one with an intact record after it is damage.
std::vector<sealed_record> scan_sealed_log(std::string_view content);

// An append-only file of sealed records, for a log written a record at a time: an append is one write and
// one fdatasync, where an atomic file per record costs a file fsync, a rename and a directory fsync (about
// 5x the time on ext4, docs/fault-tolerance.md "Measurements"); the directory is synced once, when the file
// is created. A crash during an append leaves a torn last record, which was never acknowledged: it is not
// read, and the next append cuts it off. A damaged record with an intact one after it is not a torn append.
class sealed_log {
 public:
  // Reads directory/name when it exists. Throws flow::error "<owner>: '<path>' is damaged at byte N (why)
  // before its last record; ..." when a damaged record has an intact one after it.
  sealed_log(std::string_view owner, std::string directory, std::string name);

  // The payloads read when the log was opened, in order, without a torn last record.
  const std::vector<std::string>& recovered() const { return recovered_; }
  void release_recovered() { recovered_ = {}; }
  const std::string& path() const { return path_; }

  // Appends payload, sealed; durable once it returns. A failure (a full disk) throws and cuts the file back
  // to the records before.
  void append(std::string_view payload);
  // Appends payloads, each sealed, with one write and one fdatasync: durable together once it returns.
  void append(const std::vector<std::string>& payloads);
  // Appends payload, sealed, without a sync: it survives the process, not a power loss before the kernel
  // writes it back or someone syncs the file (sync_existing_file), for a record also kept durably elsewhere.
  void append_unsynced(std::string_view payload);
  // Bytes of intact records in the file.
  std::uint64_t size() const { return end_; }
  // Why the last record read was left out as a torn append ("truncated: ...", "checksum mismatch"); empty
  // when the file ended with an intact record. For a log whose end must be whole (a closed segment).
  const std::string& torn_tail() const { return torn_tail_; }
  // Cuts a torn tail off the file now, durably (an append does so too), so that the file ends whole.
  void cut_torn_tail();

 private:
  // Opens the file for appending when it is not yet, cutting a torn tail off; true when it cut one.
  bool open_for_append();
  void write_records(const std::vector<std::string>& payloads, bool sync);

  std::string owner_, directory_, path_;
  unique_fd fd_;           // open for writing from the first append on
  std::uint64_t end_ = 0;  // bytes of the intact records: where the next one goes
  std::vector<std::string> recovered_;
  std::string torn_tail_;
};

}  // namespace flow::connectors
