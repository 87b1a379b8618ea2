#include <catch2/catch.hpp>

#include <sstream>

#include "flow/connectors/console.hpp"

using flow::type_id;
using flow::value;

namespace {

flow::schema_ptr word_count_schema() {
  return flow::make_schema({{"word", type_id::string, true}, {"count", type_id::int64, true}});
}

flow::batch counts(const std::vector<std::pair<std::string, std::int64_t>>& rows) {
  std::vector<std::vector<value>> values;
  for (const auto& [w, c] : rows) values.push_back({value{w}, value{c}});
  return flow::make_batch(word_count_schema(), values);
}

const std::string header_rule = "-------------------------------------------\n";

}  // namespace

TEST_CASE("console sink prints each committed epoch like Spark", "[console_sink]") {
  std::ostringstream out;
  auto sink = flow::make_console_sink(out, {});
  CHECK(sink->description() == "ConsoleSink");
  sink->open(word_count_schema(), flow::output_mode::complete, {"word"});
  sink->write(0, counts({{"hola", 3}}));
  sink->write(0, counts({{"a very long word that gets cut", 12}}));
  CHECK(out.str().empty());
  sink->commit(0);
  CHECK(out.str() == header_rule + "Batch: 0\n" + header_rule +
                         "+--------------------+-----+\n"
                         "|                word|count|\n"
                         "+--------------------+-----+\n"
                         "|                hola|    3|\n"
                         "|a very long word ...|   12|\n"
                         "+--------------------+-----+\n"
                         "\n");

  out.str("");
  sink->write(1, counts({{"lost", 1}}));
  sink->abort(1);
  sink->commit(1);
  CHECK(out.str() == header_rule + "Batch: 1\n" + header_rule +
                         "+----+-----+\n"
                         "|word|count|\n"
                         "+----+-----+\n"
                         "+----+-----+\n"
                         "\n");
}

TEST_CASE("console sink honours numRows and truncate", "[console_sink]") {
  std::ostringstream out;
  flow::options opts;
  opts.set("numRows", "1");
  opts.set("truncate", "false");
  auto sink = flow::make_console_sink(out, opts);
  sink->open(word_count_schema(), flow::output_mode::append, {});
  sink->write(7, counts({{"a very long word that stays whole", 1}, {"b", 2}}));
  sink->commit(7);
  CHECK(out.str() == header_rule + "Batch: 7\n" + header_rule +
                         "+---------------------------------+-----+\n"
                         "|word                             |count|\n"
                         "+---------------------------------+-----+\n"
                         "|a very long word that stays whole|1    |\n"
                         "+---------------------------------+-----+\n"
                         "only showing top 1 row\n"
                         "\n");

  opts.set("numRows", "-1");
  CHECK_THROWS_AS(flow::make_console_sink(out, opts), flow::error);
}
