// Helpers shared by the test suites: data locations and scratch directories.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

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

}  // namespace flow::test
