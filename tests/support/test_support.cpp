#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "flow/batch.hpp"
#include "flow/types.hpp"

namespace flow::test {

std::filesystem::path shared_data_dir() {
  if (const char* env = std::getenv("FLOW_SHARED_DATA")) return env;
  return FLOW_SHARED_DATA_DIR;
}

std::filesystem::path sample_data_dir() { return FLOW_SAMPLE_DATA_DIR; }

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::filesystem::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + p.string());
  out << content;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const flow::error& e) {
    return e.what();
  }
  return "<no error>";
}

temp_dir::temp_dir() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("libflow-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::map<std::string, std::int64_t> counts_of(const batch& table) {
  std::map<std::string, std::int64_t> counts;
  for (std::size_t r = 0; r < table.num_rows(); ++r)
    counts[std::get<std::string>(table.at(r, 0))] = std::get<std::int64_t>(table.at(r, 1));
  return counts;
}

std::vector<std::vector<value>> sorted_rows(const batch& b) {
  std::vector<std::vector<value>> rows;
  for (std::size_t r = 0; r < b.num_rows(); ++r) {
    std::vector<value> row;
    for (std::size_t c = 0; c < b.num_columns(); ++c) row.push_back(b.at(r, c));
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::int64_t metric(const connector_metrics& metrics, const std::string& name) {
  for (const auto& [key, value] : metrics)
    if (key == name) return value;
  FAIL("no metric " << name);
  return -1;
}

std::optional<std::int64_t> json_int(const std::string& json, const std::string& key) {
  auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return std::nullopt;
  return std::strtoll(json.c_str() + at + key.size() + 3, nullptr, 10);
}

// ---------------------------------------------------------------- child processes

child_process::child_process(const std::string& program, std::vector<std::string> args,
                             const std::filesystem::path& stdout_file, const std::filesystem::path& stderr_file)
    : stdout_file_(stdout_file) {
  // Made here, not only in the child: a child killed before it opened them still leaves files to read.
  for (const auto& file : {stdout_file, stderr_file})
    if (!file.empty()) REQUIRE(std::ofstream(file, std::ios::trunc));
  int out[2];
  REQUIRE(pipe(out) == 0);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    // Killed with the test (a ctest timeout SIGKILLs it): PDEATHSIG fires when the forking thread ends,
    // and children are forked by the test's own thread, which lives as long as the test. A parent that
    // died before prctl is caught by getppid().
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(125);
    if (stdout_file.empty()) dup2(out[1], STDOUT_FILENO);
    else if (!std::freopen(stdout_file.c_str(), "w", stdout)) _exit(126);
    if (!stderr_file.empty() && !std::freopen(stderr_file.c_str(), "w", stderr)) _exit(126);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv{const_cast<char*>(program.c_str())};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  ::close(out[1]);
  pipe_ = out[0];
}

child_process::~child_process() {
  signal(SIGKILL);
  wait_exit(std::chrono::seconds(10));
  ::close(pipe_);
}

std::string child_process::read_line(std::chrono::milliseconds timeout) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char c = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd readable{pipe_, POLLIN, 0};
    if (poll(&readable, 1, 50) <= 0) continue;
    if (::read(pipe_, &c, 1) != 1 || c == '\n') break;
    line.push_back(c);
  }
  return line;
}

std::string child_process::output() const {
  return std::filesystem::exists(stdout_file_) ? read_file(stdout_file_) : std::string();
}

std::string child_process::await_output(const std::string& pattern, std::chrono::milliseconds timeout) const {
  const std::regex wanted(pattern);
  std::string text;
  std::smatch match;
  if (!eventually([&] { return std::regex_search(text = output(), match, wanted); }, timeout)) return "";
  return match[match.size() > 1 ? 1 : 0].str();
}

void child_process::signal(int signal_number) {
  if (pid_ > 0) ::kill(pid_, signal_number);
}

int child_process::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return status_;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return status_ = -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int child_process::stop(std::chrono::milliseconds timeout) {
  signal(SIGTERM);
  return wait_exit(timeout);
}

// ---------------------------------------------------------------- TCP peers

namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

}  // namespace

connection& connection::operator=(connection&& other) noexcept {
  close();
  fd_ = std::exchange(other.fd_, -1);
  return *this;
}

void connection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::optional<std::string> connection::receive(std::chrono::milliseconds timeout) {
  pollfd readable{fd_, POLLIN, 0};
  if (poll(&readable, 1, static_cast<int>(std::max<std::int64_t>(timeout.count(), 0))) <= 0) return std::string();
  char buffer[65536];
  ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
  if (n <= 0) return std::nullopt;
  return std::string(buffer, static_cast<std::size_t>(n));
}

std::string connection::receive_lines(std::size_t lines, std::chrono::milliseconds timeout) {
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) < lines) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds(0)) break;
    auto received = receive(left);
    if (!received || received->empty()) break;
    text += *received;
  }
  return text;
}

listener::listener(std::uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int yes = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  auto addr = loopback(port);
  REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(fd_, 16) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

listener::~listener() { ::close(fd_); }

connection listener::accept(std::chrono::milliseconds timeout) {
  pollfd readable{fd_, POLLIN, 0};
  if (poll(&readable, 1, static_cast<int>(timeout.count())) <= 0) return connection{};
  return connection{::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)};
}

connection connect_to(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = loopback(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return connection{fd};
}

// ---------------------------------------------------------------- corrupted encodings

std::vector<std::uint8_t> check_encoding_round_trip(const batch& b) {
  auto bytes = encode(b);
  auto decoded = decode_batch(bytes);
  CHECK(decoded == b);
  CHECK(encode(decoded) == bytes);
  return bytes;
}

void check_slices_encode_as_fresh(const batch& b, const std::vector<std::pair<std::size_t, std::size_t>>& ranges) {
  for (auto [offset, length] : ranges) {
    INFO(offset << "+" << length);
    auto slice = b.slice(offset, length);
    auto bytes = encode(slice);
    CHECK(bytes == encode(concat({slice, batch::empty(b.schema_ref())})));
    CHECK(decode_batch(bytes) == slice);
  }
}

void check_truncations_refused(const std::vector<std::uint8_t>& bytes) {
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("truncated to " << n << " bytes");
    CHECK_THROWS_WITH(decode_batch(bytes.data(), n), Catch::StartsWith("corrupt batch encoding: "));
  }
}

std::pair<std::size_t, std::size_t> check_flipped_bytes(const std::vector<std::uint8_t>& bytes, unsigned seed) {
  std::mt19937 rng(seed);
  std::size_t decoded = 0, refused = 0;
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    for (std::uint8_t flip : {std::uint8_t{0x01}, std::uint8_t{0x80}, static_cast<std::uint8_t>(rng() | 1)}) {
      auto mutated = bytes;
      mutated[position] ^= flip;
      try {
        auto b = decode_batch(mutated);
        ++decoded;
        INFO("position " << position);
        CHECK(encode(b) == mutated);
      } catch (const flow::error& e) {
        ++refused;
        CHECK(std::string(e.what()).rfind("corrupt batch encoding: ", 0) == 0);
      }
    }
  }
  return {decoded, refused};
}

// ---------------------------------------------------------------- the retail result

std::filesystem::path retail_day_dir(const temp_dir& dir) {
  auto data = dir / "data";
  std::filesystem::create_directory(data);
  std::filesystem::copy_file(shared_data_dir() / "retail-by-day" / "2010-12-01.csv", data / "2010-12-01.csv");
  return data;
}

std::filesystem::path retail_days(const temp_dir& dir, std::size_t days) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(shared_data_dir() / "retail-by-day"))
    if (entry.path().extension() == ".csv") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= days);
  const auto data = dir / "data";
  std::filesystem::create_directories(data);
  for (std::size_t i = 0; i < days; ++i) std::filesystem::copy_file(files[i], data / files[i].filename());
  return data;
}

customer_hour_sums read_customer_hour_sums(const std::filesystem::path& csv, std::size_t sum_column) {
  std::istringstream in(read_file(csv));
  std::string line;
  std::getline(in, line);
  customer_hour_sums rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    REQUIRE(f.size() > sum_column);
    rows[{f[0], f[1]}] = std::stod(f[sum_column]);
  }
  return rows;
}

void check_same_sums(const customer_hour_sums& actual, const customer_hour_sums& expected) {
  REQUIRE(actual.size() == expected.size());
  for (const auto& [key, sum] : expected) {
    INFO(key.first << " " << key.second);
    REQUIRE(actual.count(key));
    CHECK(std::round(actual.at(key) * 100) == std::round(sum * 100));
  }
}

small_tmpfs::small_tmpfs(const std::filesystem::path& where, const char* size) : path_(where) {
  std::filesystem::create_directories(path_);
  const std::string opts = std::string("size=") + size;
  if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, opts.c_str()) == 0) mounted_ = true;
  else reason = std::strerror(errno);
}

small_tmpfs::~small_tmpfs() {
  if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
}

bool small_tmpfs::remount_read_only() {
  return ::mount(nullptr, path_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0;
}

void fill_up(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  const std::string chunk(4096, 'x');
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size() && std::fflush(f) == 0) {
  }
  std::fclose(f);
}

}  // namespace flow::test
