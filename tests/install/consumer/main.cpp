// A user's program built against the installed libflow package: a streaming word count over CSV files
// in a temporary directory (one file per epoch), into a memory table read back with SQL, and the same
// count as a topology with a keyed operator written here (flow/keyed_operator.hpp). Exits non-zero when a
// result differs from the count made here by hand.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>

#include "flow/keyed_operator.hpp"
#include "flow/session.hpp"
#include "flow/topology.hpp"

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

// sum(units) per word, emitting the words each epoch changed.
class units_per_word final : public flow::keyed_operator<std::int64_t> {
 public:
  explicit units_per_word(const flow::schema_ptr& input)
      : keyed_operator({.name = "units_per_word",
                        .input = input,
                        .keys = {"word"},
                        .output = {{"units", flow::type_id::int64}},
                        .state = {{"units", flow::type_id::int64}}}),
        units_(input->index_of("units")) {}
  void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<std::int64_t>& state,
               flow::operator_context&) const override {
    for (std::size_t i = 0; i < rows.num_rows(); ++i) state.get(keys[i]) += rows.col(units_).ints()[i];
  }
  void end_epoch(flow::keyed_state<std::int64_t>& state, flow::operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](flow::key_ref key, const std::int64_t& units) { out.add(key).add(units); });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const std::int64_t& units, flow::row_writer& out) const override { out.add(units); }
  std::int64_t load(const flow::batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }

 private:
  std::size_t units_;
};

// The same count as a topology: source -> where -> keyed by word -> foreachBatch sink (update mode).
int run_topology(flow::session& session, const fs::path& dir, const flow::schema_ptr& schema,
                 const std::map<std::string, std::int64_t>& expected) {
  using flow::col;
  std::map<std::string, std::int64_t> actual;
  flow::topology t(session.context());
  auto rows = t.source("files", session.read_stream().format("csv").option("header", true).schema(schema)
                                    .option("maxFilesPerTrigger", 1).load(dir.string()))
                  .where(col("units") > flow::lit(0));
  rows.key_by({"word"})
      .apply("units_per_word", std::make_shared<units_per_word>(rows.schema()))
      .sink("totals")
      .output_mode("update")
      .foreach_batch([&actual](const flow::batch& b, std::int64_t) {
        for (std::size_t r = 0; r < b.num_rows(); ++r) actual[std::string(b.col(0).str(r))] = b.col(1).ints()[r];
      });
  auto query = t.start({"topology", flow::available_now()});
  if (!query.await_termination(std::chrono::seconds(60)) || query.exception()) {
    std::cerr << "the topology did not end well: " << query.exception().value_or("timeout") << "\n";
    return 1;
  }
  if (actual != expected) {
    std::cerr << "the topology's result differs from the expected one\n";
    return 1;
  }
  std::cout << "installed libflow: the topology counted " << actual.size() << " words, as expected\n";
  return 0;
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
  return run_topology(session, dir, schema, expected);
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
