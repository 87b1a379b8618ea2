#include <catch2/catch.hpp>

#include <thread>

#include "flow/connectors/push_source.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::connectors;
using namespace std::chrono_literals;

namespace {

// A push source whose receiver thread appends the given lines, as a socket's would.
class lines_source final : public push_source {
 public:
  lines_source(push_source_config config, std::vector<std::string> lines)
      : push_source(std::move(config)), lines_(std::move(lines)) {}
  ~lines_source() override { stop(); }
  std::atomic<std::size_t> appended{0};

 protected:
  void start_receiving() override {
    receiver_ = std::thread([this] {
      for (const auto& line : lines_) {
        if (!log().append(line)) return;
        count_received(line.size());
        ++appended;
      }
    });
  }
  void stop_receiving() override {
    if (receiver_.joinable()) receiver_.join();
  }

 private:
  std::vector<std::string> lines_;
  std::thread receiver_;
};

template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::vector<std::string> decoded_values(push_source& source, const std::string& start, const std::string& end) {
  std::vector<std::string> values;
  source.begin_read(start, end);
  while (auto unit = source.next()) {
    batch b;
    if (auto* chunk = std::get_if<raw_chunk>(&*unit)) {
      decode_stats stats;
      b = source.chunk_decoder()->decode(*chunk, stats);
    } else {
      b = std::get<batch>(*unit);
    }
    for (std::size_t i = 0; i < b.num_rows(); ++i) values.emplace_back(b.col(0).str(i));
  }
  return values;
}

}  // namespace

TEST_CASE("record_log seals blocks, reads ranges and frees space on commit", "[push]") {
  record_log log(record_framing::lines, 1 << 20, 10, false);
  REQUIRE(log.append("alpha"));
  REQUIRE(log.append("beta"));  // 11 bytes: the block is sealed
  REQUIRE(log.append("c"));
  auto end = log.seal();
  CHECK(end == 3);
  auto blocks = log.blocks(0, 3);
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0]->bytes == "alpha\nbeta\n");
  CHECK(blocks[1]->first == 2);
  CHECK(log.blocks(2, 3).size() == 1);
  log.commit(2);
  CHECK_THAT(flow::test::error_of([&] { log.blocks(0, 3); }), Catch::Contains("no longer buffered"));
  CHECK(log.buffered_bytes() == 2);
}

TEST_CASE("a full record_log makes the receiver wait until a commit frees space", "[push]") {
  record_log log(record_framing::lines, 16, 8, false);
  std::atomic<int> appended{0};
  std::thread receiver([&] {
    for (int i = 0; i < 10; ++i) {
      if (!log.append("1234567")) return;
      ++appended;
    }
  });
  REQUIRE(eventually([&] { return log.full(); }));
  std::this_thread::sleep_for(20ms);
  int held = appended.load();
  CHECK(held < 10);
  CHECK(log.buffered_bytes() <= 16 + 8);
  auto end = log.seal();
  log.commit(end);
  REQUIRE(eventually([&] { return appended.load() > held; }));
  log.close();
  receiver.join();
}

TEST_CASE("a push source replays an uncommitted range and decodes lines in stages", "[push]") {
  push_source_config config{"test source", "text", {}, nullptr};
  config.opts.set("blockBytes", "16");
  lines_source source(config, {"one", "two", "three", "four", "five"});
  auto start = source.initial_offset();
  std::optional<std::string> end;
  REQUIRE(eventually([&] {
    end = source.latest_offset(start);
    return end && push_source::parse_offset(*end) == 5;
  }));
  auto first = decoded_values(source, start, *end);
  CHECK(first == std::vector<std::string>{"one", "two", "three", "four", "five"});
  CHECK(decoded_values(source, start, *end) == first);  // replay before commit
  source.commit(*end);
  CHECK_FALSE(source.latest_offset(*end));
  auto metrics = source.metrics();
  CHECK(std::find(metrics.begin(), metrics.end(), std::make_pair(std::string("numRecordsReceived"), std::int64_t{5})) !=
        metrics.end());
}

TEST_CASE("includeTimestamp adds the arrival time to each line", "[push]") {
  push_source_config config{"test source", "text", {}, nullptr};
  config.opts.set("includeTimestamp", "true");
  lines_source source(config, {"a", "b"});
  CHECK(source.output_schema()->to_string() == "value: string, timestamp: timestamp");
  CHECK_FALSE(source.chunk_decoder());
  std::optional<std::string> end;
  REQUIRE(eventually([&] { return (end = source.latest_offset(source.initial_offset())) &&
                                  push_source::parse_offset(*end) == 2; }));
  source.begin_read(source.initial_offset(), *end);
  auto unit = source.next();
  REQUIRE(unit);
  const auto& b = std::get<batch>(*unit);
  REQUIRE(b.num_rows() == 2);
  CHECK(b.col("timestamp").ints()[0] > 1'600'000'000'000'000LL);
}

TEST_CASE("binary records decode into batches; undecodable frames are counted", "[push]") {
  auto schema = make_schema({{"n", type_id::int64, true}});
  auto good = encode(batch(schema, {make_int_column({1, 2, 3})}));
  push_source_config config{"test source", "binary", {}, schema};
  lines_source source(config, {std::string(good.begin(), good.end()), "garbage"});
  std::optional<std::string> end;
  REQUIRE(eventually([&] { return (end = source.latest_offset(source.initial_offset())) &&
                                  push_source::parse_offset(*end) == 2; }));
  source.begin_read(source.initial_offset(), *end);
  auto unit = source.next();
  REQUIRE(unit);
  CHECK(std::get<batch>(*unit).num_rows() == 3);
  auto metrics = source.metrics();
  CHECK(std::find(metrics.begin(), metrics.end(), std::make_pair(std::string("numBadRecords"), std::int64_t{1})) !=
        metrics.end());
}

TEST_CASE("push sources refuse bad formats and offsets with clear errors", "[push]") {
  CHECK_THAT(flow::test::error_of([] { lines_source s({"x", "xml", {}, nullptr}, {}); }),
             Catch::Contains("unknown message format 'xml'"));
  CHECK_THAT(flow::test::error_of([] { lines_source s({"x", "json", {}, nullptr}, {}); }),
             Catch::Contains("needs a schema"));
  CHECK_THAT(flow::test::error_of([] { push_source::parse_offset("{\"logOffset\":3}"); }),
             Catch::Contains("malformed offset"));
}
