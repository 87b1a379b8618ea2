// A user's program built against the installed libflow package: a streaming word count over CSV files
// in a temporary directory (one file per epoch), into a memory table read back with SQL. Exits non-zero
// when the result differs from the count made here by hand.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>

#include "flow/session.hpp"

namespace fs = std::filesystem;

namespace {

constexpr int file_count = 3;
constexpr int rows_per_file = 200;

// Writes the input files and returns the expected sum of units per word (rows with units <= 0 dropped).
std::map<std::string, std::int64_t> write_input(const fs::path& dir) {
  const std::string words[] = {"actor", "batch", "epoch", "sink", "source"};
  std::map<std::string, std::int64_t> expected;
  for (int f = 0; f < file_count; ++f) {
    std::ofstream out(dir / ("part-" + std::to_string(f) + ".csv"));
    out << "word,units\n";
    for (int r = 0; r < rows_per_file; ++r) {
      const int i = f * rows_per_file + r;
      const std::string& word = words[i * 7 % 5];
      const std::int64_t units = i % 11 - 2;
      out << word << "," << units << "\n";
      if (units > 0) expected[word] += units;
    }
  }
  return expected;
}

int run(const fs::path& dir) {
  using flow::col;
  const auto expected = write_input(dir);

  flow::session_config config;
  config.threads = 2;
  config.parallelism = 2;
  flow::session session{config};
  auto schema = flow::make_schema({{"word", flow::type_id::string}, {"units", flow::type_id::int64}});
  auto totals = session.read_stream().format("csv").option("header", true).schema(schema)
                    .option("maxFilesPerTrigger", 1).load(dir.string())
                    .where(col("units") > flow::lit(0))
                    .group_by({col("word")})
                    .sum("units");
  auto query = totals.write_stream().format("memory").query_name("totals").output_mode("complete")
                   .trigger(flow::available_now()).start();
  if (!query.await_termination(std::chrono::seconds(60))) {
    std::cerr << "the query did not end within 60 s\n";
    return 1;
  }
  if (auto failure = query.exception()) {
    std::cerr << "the query failed: " << *failure << "\n";
    return 1;
  }
  if (query.recent_progress().size() != file_count) {
    std::cerr << "expected " << file_count << " epochs, got " << query.recent_progress().size() << "\n";
    return 1;
  }

  auto result = session.sql("SELECT word, `sum(units)` FROM totals ORDER BY word").collect_batch();
  std::map<std::string, std::int64_t> actual;
  for (std::size_t r = 0; r < result.num_rows(); ++r)
    actual[std::string(result.col(0).str(r))] = std::get<std::int64_t>(result.at(r, 1));
  if (actual != expected) {
    std::cerr << "wrong result:\n" << flow::format_table(result) << "expected:\n";
    for (const auto& [word, units] : expected) std::cerr << word << "," << units << "\n";
    return 1;
  }
  std::cout << flow::format_table(result) << "installed libflow: " << result.num_rows() << " words, "
            << file_count << " epochs, as expected\n";
  return 0;
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() / ("libflow-consumer-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  int status = 1;
  try {
    status = run(dir);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  fs::remove_all(dir);
  return status;
}
