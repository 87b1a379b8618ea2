// Helpers shared by the test suites: data locations, scratch directories, polling, connector metrics,
// child processes, TCP peers on 127.0.0.1, corrupted encodings and the retail reference result.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "flow/source_sink.hpp"

namespace flow::test {

// ../shared/data (FLOW_SHARED_DATA overrides it).
std::filesystem::path shared_data_dir();
// The small sample shipped in the project (data/).
std::filesystem::path sample_data_dir();
std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);

// The message of the flow::error that f throws, or "<no error>".
std::string error_of(const std::function<void()>& f);

// A fresh directory under the system temp dir, removed with its contents on destruction.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Polls pred every `every` until it holds (true) or `timeout` passed (false).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(30),
                std::chrono::milliseconds every = std::chrono::milliseconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(every);
  }
  return true;
}

// A table of (string, int64) rows, such as word counts, as a map from the first column to the second.
std::map<std::string, std::int64_t> counts_of(const batch& table);

// The rows of b, each as its values, sorted: for comparing tables whose row order does not matter.
std::vector<std::vector<value>> sorted_rows(const batch& b);

// The value of the metric called name; fails the test when there is none.
std::int64_t metric(const connector_metrics& metrics, const std::string& name);

// The source's metric called name once it equals expected, else its value after the timeout: a receiver
// counts records right after appending them, so a reader may see the records a moment before the count.
template <class Source>
std::int64_t settled_metric(const Source& source, const std::string& name, std::int64_t expected,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::int64_t value = metric(source.metrics(), name);
  eventually([&] { return (value = metric(source.metrics(), name)) == expected; }, timeout);
  return value;
}

// The integer of the first field called key in JSON text such as a progress report ("numInputRows",
// "batchId"), nullopt when there is none. Safe to call outside the test's thread.
std::optional<std::int64_t> json_int(const std::string& json, const std::string& key);

// A program run as a child process, killed (SIGKILL) and reaped on destruction. Its stdout goes to
// stdout_file, or without one to a pipe that read_line() reads; its stderr to stderr_file if given.
class child_process {
 public:
  child_process(const std::string& program, std::vector<std::string> args, const std::filesystem::path& stdout_file = {},
                const std::filesystem::path& stderr_file = {});
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  // The next line from the pipe, without its newline ("" when none arrives within the timeout).
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // What went to stdout_file so far ("" before the child has opened it).
  std::string output() const;
  // Waits until output() holds a match of the regular expression: its first group (or the whole match
  // without groups), "" when none appears within the timeout.
  std::string await_output(const std::string& pattern, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // The process id, -1 once wait_exit reaped it.
  pid_t pid() const { return pid_; }
  void signal(int signal_number);
  // The exit status, or -1 when the child did not exit normally or within the timeout (it is killed then).
  int wait_exit(std::chrono::milliseconds timeout);
  // SIGTERM, then wait_exit.
  int stop(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int pipe_ = -1;
  int status_ = -1;
  std::filesystem::path stdout_file_;
};

// One end of a TCP connection, closed on destruction.
class connection {
 public:
  explicit connection(int fd = -1) : fd_(fd) {}
  connection(connection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  connection& operator=(connection&& other) noexcept;
  ~connection() { close(); }
  bool is_open() const { return fd_ >= 0; }
  void close();
  // Blocking send of everything; false when the peer is gone.
  bool send(std::string_view bytes);
  // The bytes of one read: "" when nothing arrived within the timeout, nullopt once the peer has closed.
  std::optional<std::string> receive(std::chrono::milliseconds timeout);
  // Reads until the received text holds at least `lines` newlines, the peer closes, or the timeout passes.
  std::string receive_lines(std::size_t lines, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  int fd_;
};

// A listening socket on 127.0.0.1 (port 0: a free one), as `nc -lk` would be.
class listener {
 public:
  explicit listener(std::uint16_t port = 0);
  ~listener();
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  std::uint16_t port() const { return port_; }
  // The next connection, or a closed one when none arrives in time.
  connection accept(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A connection to 127.0.0.1:port (fails the test when refused).
connection connect_to(std::uint16_t port);

// b's binary encoding decodes to b and encodes again to the same bytes; returns the bytes.
std::vector<std::uint8_t> check_encoding_round_trip(const batch& b);
// Each slice [offset, offset + length) of b encodes exactly like a fresh batch of its rows, and decodes
// back to the slice.
void check_slices_encode_as_fresh(const batch& b, const std::vector<std::pair<std::size_t, std::size_t>>& ranges);

// Every truncation of an encoded batch must be refused as a corrupt batch encoding.
void check_truncations_refused(const std::vector<std::uint8_t>& bytes);

// Flips bits in every byte of an encoded batch (0x01, 0x80 and a random odd mask from seed): each
// mutation must either be refused as a corrupt batch encoding or decode to a batch that encodes back to
// the same bytes. Returns how many decoded and how many were refused.
std::pair<std::size_t, std::size_t> check_flipped_bytes(const std::vector<std::uint8_t>& bytes, unsigned seed);

// A tmpfs of `size` ("1m") mounted on a fresh directory `where`, unmounted on destruction; mounted() is
// false when this process may not mount (reason then says why): tests of full and read-only disks.
class small_tmpfs {
 public:
  small_tmpfs(const std::filesystem::path& where, const char* size);
  ~small_tmpfs();
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  bool remount_read_only();
  std::string reason;

 private:
  std::filesystem::path path_;
  bool mounted_ = false;
};

// Writes to path until the file system is full.
void fill_up(const std::filesystem::path& path);

// dir/data holding the retail data of 2010-12-01 (from the shared data): a stream source's directory.
std::filesystem::path retail_day_dir(const temp_dir& dir);
// dir/data holding the first `days` daily files of the shared retail data.
std::filesystem::path retail_days(const temp_dir& dir, std::size_t days);

// (CustomerID, window_start) -> the sum in column sum_column of a retail result CSV with a header line,
// as the examples write it (sum_column 3) and as the reference files hold it (sum_column 4).
using customer_hour_sums = std::map<std::pair<std::string, std::string>, double>;
customer_hour_sums read_customer_hour_sums(const std::filesystem::path& csv, std::size_t sum_column);
// actual has exactly expected's keys, each with its sum to the cent.
void check_same_sums(const customer_hour_sums& actual, const customer_hour_sums& expected);

}  // namespace flow::test
