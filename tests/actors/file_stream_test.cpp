// End-to-end: the file source against files still being written, and the file sink's output read back
// after a crash between its part files and its commit log entry.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using strings = std::vector<std::string>;

// The values of a one-column string table, sorted.
strings sorted_values(const flow::batch& table) {
  strings out;
  for (std::size_t r = 0; r < table.num_rows(); ++r) out.push_back(flow::to_string(table.at(r, 0)));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("a file written slowly in the watched directory is delivered whole, once", "[actors][files][stable]") {
  flow::session session;
  flow::test::temp_dir dir;
  auto query = session.read_stream().format("text").load(dir.path().string())
                   .write_stream().format("memory").query_name("live").output_mode("append").start();

  // 150 rows over about 3 s, from a writer that keeps the file open, as a logger or a slow copy does.
  strings written;
  std::thread writer([&] {
    std::ofstream out(dir / "live.txt");
    for (int i = 0; i < 150; ++i) {
      written.push_back("row " + std::to_string(i));
      out << written.back() << "\n" << std::flush;
      std::this_thread::sleep_for(20ms);
    }
  });
  writer.join();
  std::sort(written.begin(), written.end());
  auto rows = [&] { return session.sql("SELECT value FROM live").collect_batch(); };
  CHECK(flow::test::eventually([&] { return rows().num_rows() >= 150; }, 20s));
  std::this_thread::sleep_for(1500ms);  // a later read of the file would show up by now
  CHECK(sorted_values(rows()) == written);
  query.stop();
}
