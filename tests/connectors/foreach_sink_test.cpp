#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>

#include "flow/connectors/foreach.hpp"
#include "test_support.hpp"

using flow::type_id;
using flow::value;

namespace {

using strings = std::vector<std::string>;

flow::schema_ptr word_schema() {
  return flow::make_schema({{"word", type_id::string, true}, {"n", type_id::int64, true}});
}

flow::batch words(const std::vector<std::pair<std::string, std::int64_t>>& rows) {
  std::vector<std::vector<value>> values;
  for (const auto& [w, n] : rows) values.push_back({value{w}, value{n}});
  return flow::make_batch(word_schema(), values);
}

// Records every call as text, so tests compare the exact call sequence.
class recording_writer final : public flow::foreach_writer {
 public:
  strings calls;
  bool accept = true;
  std::optional<std::string> fail_on_word;  // process throws once on this word

  bool open(std::int64_t partition, std::int64_t epoch) override {
    calls.push_back("open " + std::to_string(partition) + " " + std::to_string(epoch));
    return accept;
  }
  void process(const flow::row_view& row) override {
    auto word = std::get<std::string>(row.get("word"));
    if (fail_on_word && word == *fail_on_word) {
      fail_on_word.reset();
      throw std::runtime_error("cannot store " + word);
    }
    calls.push_back(word + "=" + flow::to_string(row.get(1)));
  }
  void close(const std::optional<std::string>& error) override {
    calls.push_back("close " + (error ? *error : std::string("ok")));
  }
};

}  // namespace

TEST_CASE("foreach sink opens one partition per epoch, processes its rows in order, then closes", "[foreach]") {
  auto writer = std::make_shared<recording_writer>();
  auto sink = flow::make_foreach_sink(writer);
  CHECK(sink->description() == "ForeachSink");
  sink->open(word_schema(), flow::output_mode::append, {});
  sink->write(0, words({{"a", 1}, {"b", 2}}));
  sink->write(0, words({{"c", 3}}));
  CHECK(writer->calls.empty());  // nothing reaches the writer before the commit
  sink->commit(0);
  sink->commit(1);  // an epoch without rows still opens and closes its partition
  CHECK(writer->calls == strings{"open 0 0", "a=1", "b=2", "c=3", "close ok", "open 0 1", "close ok"});
  CHECK(flow::test::metric(sink->metrics(), "numOutputRows") == 3);
  CHECK(flow::test::metric(sink->metrics(), "numEpochs") == 2);

  writer->calls.clear();
  writer->accept = false;
  sink->write(2, words({{"d", 4}}));
  sink->commit(2);
  CHECK(writer->calls == strings{"open 0 2", "close ok"});  // open said no: no rows, close still called
}

TEST_CASE("foreach sink closes with the error and rethrows when process fails, and the replay delivers again",
          "[foreach]") {
  auto writer = std::make_shared<recording_writer>();
  writer->fail_on_word = "b";
  auto sink = flow::make_foreach_sink(writer);
  sink->open(word_schema(), flow::output_mode::append, {});
  sink->write(5, words({{"a", 1}, {"b", 2}, {"c", 3}}));
  CHECK_THROWS_WITH(sink->commit(5), "cannot store b");
  CHECK(writer->calls == strings{"open 0 5", "a=1", "close cannot store b"});

  // The runtime aborts and replays the epoch: at-least-once, "a" comes again under the same epoch id.
  writer->calls.clear();
  sink->abort(5);
  sink->write(5, words({{"a", 1}, {"b", 2}, {"c", 3}}));
  sink->commit(5);
  CHECK(writer->calls == strings{"open 0 5", "a=1", "b=2", "c=3", "close ok"});

  // A replay of an epoch that was committed is not delivered again.
  writer->calls.clear();
  sink->write(5, words({{"a", 1}}));
  sink->commit(5);
  CHECK(writer->calls.empty());
  CHECK_THAT(flow::test::error_of([] { flow::make_foreach_sink(nullptr); }), Catch::Contains("no writer"));
}

TEST_CASE("foreachBatch sink hands each epoch's rows as one batch with its epoch id", "[foreach]") {
  std::vector<std::pair<std::int64_t, flow::batch>> seen;
  int failures_left = 1;
  auto sink = flow::make_foreach_batch_sink([&](const flow::batch& rows, std::int64_t epoch) {
    if (epoch == 2 && failures_left-- > 0) throw std::runtime_error("warehouse unavailable");
    seen.emplace_back(epoch, rows);
  });
  CHECK(sink->description() == "ForeachBatchSink");
  sink->open(word_schema(), flow::output_mode::update, {"word"});
  sink->write(0, words({{"a", 1}}));
  sink->write(0, words({{"b", 2}, {"c", 3}}));
  sink->commit(0);
  sink->commit(1);
  sink->write(2, words({{"d", 4}}));
  CHECK_THROWS_WITH(sink->commit(2), "warehouse unavailable");
  sink->abort(2);
  sink->write(2, words({{"d", 4}}));
  sink->commit(2);
  sink->write(0, words({{"z", 9}}));  // replay of a committed epoch
  sink->commit(0);

  REQUIRE(seen.size() == 3);
  CHECK(seen[0].first == 0);
  CHECK(seen[0].second == words({{"a", 1}, {"b", 2}, {"c", 3}}));
  CHECK(seen[1].first == 1);
  CHECK(seen[1].second.num_rows() == 0);
  CHECK(seen[1].second.schema() == *word_schema());
  CHECK(seen[2].first == 2);
  CHECK(seen[2].second == words({{"d", 4}}));
  CHECK(flow::test::metric(sink->metrics(), "numOutputRows") == 4);
  CHECK_THAT(flow::test::error_of([] { flow::make_foreach_batch_sink({}); }), Catch::Contains("no function"));
}
