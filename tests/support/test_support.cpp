#include "test_support.hpp"

#include "flow/types.hpp"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

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

}  // namespace flow::test
