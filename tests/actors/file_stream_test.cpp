// End-to-end: the file source against files still being written, and the file sink's output read back
// after a crash between its part files and its commit log entry.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "flow/connectors/file_sink.hpp"
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

flow::schema_ptr number_schema() { return flow::make_schema({{"n", flow::type_id::int64, true}}); }

// Epoch e holds the rows 10e .. 10e+9.
flow::batch epoch_rows(std::int64_t epoch) {
  std::vector<std::vector<flow::value>> rows;
  for (std::int64_t n = epoch * 10; n < epoch * 10 + 10; ++n) rows.push_back({flow::value{n}});
  return flow::make_batch(number_schema(), rows);
}

strings numbers(std::int64_t from, std::int64_t to) {
  strings out;
  for (std::int64_t n = from; n < to; ++n) out.push_back(std::to_string(n));
  std::sort(out.begin(), out.end());
  return out;
}

// Writes epochs 0..last with the file sink (3 rows a part file) into out.
void write_epochs(const fs::path& out, std::int64_t first, std::int64_t last) {
  flow::options opts;
  opts.set("path", out.string());
  opts.set("maxRecordsPerFile", "3");
  auto sink = flow::make_file_sink("csv", opts);
  sink->open(number_schema(), flow::output_mode::append, {});
  for (std::int64_t epoch = first; epoch <= last; ++epoch) {
    sink->write(epoch, epoch_rows(epoch));
    sink->commit(epoch);
  }
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
  query.process_all_available();  // a later read of the file would show up now
  CHECK(sorted_values(rows()) == written);
  query.stop();
}

TEST_CASE("a file sink killed between its part files and its log entry: readers see only committed rows, "
          "a restart cleans up and resumes", "[actors][files][sinks][crash]") {
  flow::test::temp_dir dir;
  const fs::path out = dir / "out";
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // a real process killed (SIGKILL) in the crash window of epoch 3
    ::setenv("FLOW_FILE_SINK_KILL_BEFORE_LOG", "3", 1);
    try {
      write_epochs(out, 0, 5);
    } catch (...) {
    }
    ::_exit(0);  // not reached when the failpoint works
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  REQUIRE(fs::exists(out / "part-00003-00003.csv"));  // epoch 3's parts are visible under final names
  REQUIRE_FALSE(fs::exists(out / "_flow_metadata" / "3"));
  const strings committed = numbers(0, 30);

  flow::session session;
  auto batch_read = session.read().format("csv").schema(number_schema()).load(out.string()).collect_batch();
  CHECK(sorted_values(batch_read) == committed);
  auto stream = session.read_stream().format("csv").schema(number_schema()).load(out.string())
                    .write_stream().format("memory").query_name("sink_output").output_mode("append").start();
  auto streamed = [&] { return sorted_values(session.sql("SELECT n FROM sink_output").collect_batch()); };
  CHECK(flow::test::eventually([&] { return streamed().size() >= committed.size(); }, 20s));
  CHECK(streamed() == committed);

  // The restarted run (same query: the same epochs again) deletes epoch 3's stray parts, skips the logged
  // epochs and writes the rest; the stream, still running, reads them through the log.
  write_epochs(out, 0, 0);
  for (const auto& entry : fs::directory_iterator(out))
    CHECK_FALSE(entry.path().filename().string().starts_with("part-00003"));
  write_epochs(out, 0, 5);
  const strings all = numbers(0, 60);
  CHECK(sorted_values(session.read().format("csv").schema(number_schema()).load(out.string()).collect_batch()) == all);
  CHECK(flow::test::eventually([&] { return streamed().size() >= all.size(); }, 20s));
  stream.process_all_available();  // a read of anything more would show up now
  CHECK(streamed() == all);
  stream.stop();
}
