// End-to-end: a word count with explode(split(...)) over a text stream, and array<string> in the memory sink.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>

#include "flow/session.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;

namespace {

// The first `count` lines of the text, each with its line end (CRLF in quijote.txt).
std::vector<std::string> first_lines(const std::string& text, std::size_t count) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (lines.size() < count && pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return lines;
}

}  // namespace

TEST_CASE("word count of Don Quijote with explode(split(value, whitespace))", "[actors][explode]") {
  const std::string text = flow::test::read_file(flow::test::shared_data_dir() / "text" / "quijote.txt");
  const auto lines = first_lines(text, 450);
  REQUIRE(lines.size() == 450);
  REQUIRE(lines[0].starts_with("\xEF\xBB\xBF"));

  flow::test::temp_dir dir;
  std::map<std::string, std::int64_t> expected;
  for (std::size_t part = 0; part < 3; ++part) {
    std::string content;
    for (std::size_t i = part * 150; i < (part + 1) * 150; ++i) content += lines[i];
    flow::test::write_file(dir / ("part-" + std::to_string(part) + ".txt"), content);
    if (part == 0) content.erase(0, 3);  // the byte-order mark
    std::istringstream words(content);
    for (std::string w; words >> w;) ++expected[w];
  }

  flow::session session;
  auto counts = session.read_stream().format("text").option("maxFilesPerTrigger", 1).load(dir.path().string())
                    .select({flow::explode(flow::split(col("value"), "\\s+")).as("word")})
                    .group_by({col("word")})
                    .count();
  auto query = counts.write_stream().format("memory").query_name("word_counts").output_mode("complete")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(60s));
  REQUIRE_FALSE(query.exception());
  CHECK(query.recent_progress().size() == 3);

  auto actual = flow::test::counts_of(session.sql("SELECT word, count FROM word_counts").collect_batch());
  CHECK(actual.size() == expected.size());
  CHECK(actual == expected);
  CHECK(expected.size() > 1000);
  CHECK(actual.count("Quijote") == 1);
  // The grouped count's column is named count, as in Spark, so SQL can order by it.
  auto most_frequent = std::max_element(expected.begin(), expected.end(),
                                        [](const auto& a, const auto& b) { return a.second < b.second; });
  auto top = session.sql("SELECT word, count FROM word_counts ORDER BY count DESC LIMIT 1").collect_batch();
  REQUIRE(top.num_rows() == 1);
  CHECK(top.at(0, 1) == flow::value{most_frequent->second});
}

TEST_CASE("array<string> columns go through the memory sink and come back from SQL", "[actors][explode][memory]") {
  flow::test::temp_dir dir;
  flow::test::write_file(dir / "a.txt", "#uno dos \"tres\"\n\n#cuatro\\cinco\n");
  flow::session session;
  auto tagged = session.read_stream().format("text").load(dir.path().string())
                    .select({col("value"), flow::split(col("value"), " ").as("words"),
                             flow::size(flow::split(col("value"), "\\s+")).as("n")});
  auto query = tagged.write_stream().format("memory").query_name("tagged").output_mode("append")
                   .trigger(flow::available_now()).start();
  REQUIRE(query.await_termination(30s));
  REQUIRE_FALSE(query.exception());
  auto table = session.sql("SELECT words, n FROM tagged ORDER BY n DESC").collect_batch();
  REQUIRE(table.num_rows() == 3);
  CHECK(table.schema()[0].type == flow::type_id::string_list);
  CHECK(table.at(0, 0) == flow::value{std::vector<std::string>{"#uno", "dos", "\"tres\""}});
  CHECK(table.at(0, 1) == flow::value{std::int64_t{3}});
  CHECK(table.at(1, 0) == flow::value{std::vector<std::string>{"#cuatro\\cinco"}});
  CHECK(table.at(2, 0) == flow::value{std::vector<std::string>{""}});
  CHECK(table.at(2, 1) == flow::value{std::int64_t{0}});
  // SQLite sees the JSON text; expressions over it are plain strings.
  auto text = session.sql("SELECT words || '' AS t FROM tagged ORDER BY n DESC LIMIT 1").collect_batch();
  CHECK(text.at(0, 0) == flow::value{std::string("[\"#uno\",\"dos\",\"\\\"tres\\\"\"]")});
}
