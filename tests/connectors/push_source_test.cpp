#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "flow/connectors/push_source.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::connectors;
using namespace std::chrono_literals;
using flow::test::eventually;

namespace {

// A push source whose receiver thread appends the given lines, as a socket's would.
class lines_source final : public push_source {
 public:
  lines_source(push_source_config config, std::vector<std::string> lines)
      : push_source(std::move(config)), lines_(std::move(lines)) {}
  ~lines_source() override { stop(); }
  std::atomic<std::size_t> appended{0};
  bool append(const std::string& line) { return log().append(line); }  // as a receiver would

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

TEST_CASE("record_log calls its listener once for the first append after a seal that armed it", "[push][notify]") {
  for (auto framing : {record_framing::lines, record_framing::string_column, record_framing::length_prefixed}) {
    record_log log(framing, 1 << 20, 1 << 10, false);
    int calls = 0;
    log.set_append_listener([&] { ++calls; });
    REQUIRE(log.append("a"));
    CHECK(log.seal_and_arm() == 1);  // a plan that found a record arms too
    CHECK(calls == 0);
    REQUIRE(log.append("b"));
    CHECK(calls == 1);
    CHECK(log.seal_and_arm() == 2);
    CHECK(calls == 1);
    std::string framed;
    log.frame(framed, "c");
    log.frame(framed, "d");
    const std::vector<std::uint32_t> ends{static_cast<std::uint32_t>(framed.size() / 2),
                                          static_cast<std::uint32_t>(framed.size())};
    REQUIRE(log.append_framed(framed, ends));
    CHECK(calls == 2);
    REQUIRE(log.append("e"));
    CHECK(calls == 2);  // once per arming
    CHECK(log.seal() == 5);
    REQUIRE(log.append("f"));
    CHECK(calls == 2);  // a plain seal does not arm
  }
}

TEST_CASE("a push source notifies when a record arrives after a plan that found none", "[push][notify]") {
  push_source_config config{"test source", "text", {}, nullptr};
  lines_source source(config, {"x"});
  std::atomic<int> calls{0};
  REQUIRE(source.notify_when_data([&] { ++calls; }));
  // The first plan starts the receiver: the line arrives before or after the plan looked.
  if (auto end = source.latest_offset(source.initial_offset())) {
    CHECK(*end == push_source::offset_json(1));
    CHECK(calls == 0);
  } else {
    REQUIRE(eventually([&] { return calls.load() == 1; }));
    CHECK(source.latest_offset(source.initial_offset()) == push_source::offset_json(1));
  }
}

TEST_CASE("a push source notifies of a record that arrives after a plan that found some", "[push][notify]") {
  push_source_config config{"test source", "text", {}, nullptr};
  lines_source source(config, {"x"});
  std::atomic<int> calls{0};
  REQUIRE(source.notify_when_data([&] { ++calls; }));
  CHECK(source.notifies_after_any_plan());
  std::optional<std::string> end;
  REQUIRE(eventually([&] { return (end = source.latest_offset(source.initial_offset())).has_value(); }));
  CHECK(*end == push_source::offset_json(1));
  const int before = calls.load();  // the line may have come after an empty first plan
  REQUIRE(source.append("y"));
  CHECK(calls.load() == before + 1);
  CHECK(source.latest_offset(*end) == push_source::offset_json(2));
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
  CHECK(flow::test::settled_metric(source, "numRecordsReceived", 5) == 5);
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
  // The lines may sit in one block or in two (the polls above seal the log): read every unit.
  source.begin_read(source.initial_offset(), *end);
  std::vector<std::string> values;
  while (auto unit = source.next()) {
    const auto& b = std::get<batch>(*unit);
    for (std::size_t i = 0; i < b.num_rows(); ++i) {
      values.emplace_back(b.col("value").str(i));
      CHECK(b.col("timestamp").ints()[i] > 1'600'000'000'000'000LL);
    }
  }
  CHECK(values == std::vector<std::string>{"a", "b"});
}

TEST_CASE("binary records decode into batches, undecodable frames are counted", "[push]") {
  auto schema = make_schema({{"n", type_id::int64, true}});
  auto good = encode(batch(schema, {make_int_column({1, 2, 3})}));
  push_source_config config{"test source", "binary", {}, schema};
  lines_source source(config, {std::string(good.begin(), good.end()), "garbage"});
  std::optional<std::string> end;
  REQUIRE(eventually([&] { return (end = source.latest_offset(source.initial_offset())) &&
                                  push_source::parse_offset(*end) == 2; }));
  // The two records may sit in one block or in two (the polls above seal the log): read every unit.
  source.begin_read(source.initial_offset(), *end);
  std::size_t rows = 0, units = 0;
  while (auto unit = source.next()) {
    rows += std::get<batch>(*unit).num_rows();
    ++units;
  }
  CHECK(units == 1);  // a block of garbage alone gives no unit
  CHECK(rows == 3);
  CHECK(flow::test::metric(source.metrics(), "numBadRecords") == 1);
}

TEST_CASE("push sources refuse bad formats and offsets with clear errors", "[push]") {
  CHECK_THAT(flow::test::error_of([] { lines_source s({"x", "xml", {}, nullptr}, {}); }),
             Catch::Contains("unknown message format 'xml'"));
  CHECK_THAT(flow::test::error_of([] { lines_source s({"x", "json", {}, nullptr}, {}); }),
             Catch::Contains("needs a schema"));
  CHECK_THAT(flow::test::error_of([] { push_source::parse_offset("{\"logOffset\":3}"); }),
             Catch::Contains("malformed offset"));
}

namespace {

// Frames records as a line log does and notes where each ends.
std::pair<std::string, std::vector<std::uint32_t>> framed_lines(const std::vector<std::string>& records) {
  std::string framed;
  std::vector<std::uint32_t> ends;
  for (const auto& r : records) {
    framed += r + "\n";
    ends.push_back(static_cast<std::uint32_t>(framed.size()));
  }
  return {framed, ends};
}

std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> contents(const record_log& log, std::uint64_t end) {
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> out;
  for (const auto& b : log.blocks(0, end)) out.emplace_back(b->first, b->count, b->bytes);
  return out;
}

// The lines a log holds, as the text decoder reads them.
std::vector<std::string> decoded_lines(record_log& log) {
  auto end = log.seal();
  std::vector<std::string> lines;
  auto text = make_decoder("text", {}, nullptr);
  for (const auto& b : log.blocks(0, end)) {
    auto bytes = std::make_shared<const std::string>(b->bytes);
    decode_stats stats;
    batch decoded = text->decode(raw_chunk{bytes, 0, bytes->size(), "test", b->first + 1, b->first + 1}, stats);
    for (std::size_t i = 0; i < decoded.num_rows(); ++i) lines.emplace_back(decoded.col(0).str(i));
  }
  return lines;
}

}  // namespace

TEST_CASE("record_log append_framed cuts blocks exactly as one append per record does", "[push]") {
  std::vector<std::string> records;
  for (int i = 0; i < 200; ++i) records.push_back(std::string(static_cast<std::size_t>(i % 37), 'a' + i % 26));
  auto [framed, ends] = framed_lines(records);
  for (std::size_t block : {1, 7, 64, 1000, 100000}) {
    record_log one_by_one(record_framing::lines, 1 << 20, block, false);
    for (const auto& r : records) REQUIRE(one_by_one.append(r));
    record_log bulk(record_framing::lines, 1 << 20, block, false);
    // In a few runs of different lengths, as a receiver's reads would give them.
    std::size_t at = 0;
    for (std::size_t run : {1, 50, 3, 146}) {
      std::size_t from = at == 0 ? 0 : ends[at - 1];
      std::vector<std::uint32_t> run_ends;
      for (std::size_t i = at; i < at + run; ++i) run_ends.push_back(static_cast<std::uint32_t>(ends[i] - from));
      REQUIRE(bulk.append_framed(std::string_view(framed).substr(from, ends[at + run - 1] - from), run_ends));
      at += run;
    }
    REQUIRE(one_by_one.seal() == 200);
    REQUIRE(bulk.seal() == 200);
    INFO("blockBytes " << block);
    CHECK(contents(bulk, 200) == contents(one_by_one, 200));
    CHECK(bulk.buffered_bytes() == framed.size());
  }
}

TEST_CASE("record_log append_framed frames binary records and waits on a full log like append", "[push]") {
  record_log binary(record_framing::length_prefixed, 1 << 20, 1 << 10, false);
  std::string framed;
  std::vector<std::uint32_t> ends;
  for (std::string_view r : {"xy", "", "hello"}) {
    binary.frame(framed, r);
    ends.push_back(static_cast<std::uint32_t>(framed.size()));
  }
  REQUIRE(binary.append_framed(framed, ends));
  REQUIRE(binary.seal() == 3);
  CHECK(binary.blocks(0, 3).front()->bytes == std::string("\x02\0\0\0xy\0\0\0\0\x05\0\0\0hello", 19));

  record_log log(record_framing::lines, 16, 8, false);
  auto [lines, line_ends] = framed_lines(std::vector<std::string>(10, "1234567"));
  std::atomic<bool> done{false}, result{false};
  std::thread receiver([&, &lines = lines, &line_ends = line_ends] {
    result = log.append_framed(lines, line_ends);
    done = true;
  });
  REQUIRE(eventually([&] { return log.full() && log.waits() == 1; }));
  CHECK_FALSE(done);
  CHECK(log.buffered_bytes() == 16);  // two records: the bound holds as for single appends
  log.commit(log.seal());
  REQUIRE(eventually([&] { return log.waits() == 2; }));
  CHECK(log.buffered_bytes() == 16);
  log.close();
  receiver.join();
  CHECK_FALSE(result);
  CHECK(log.waited_micros() > 0);
}

TEST_CASE("record_log reuses the buffers of released blocks", "[push]") {
  record_log log(record_framing::lines, 1 << 20, 4096, false);
  auto [lines, ends] = framed_lines(std::vector<std::string>(100, std::string(99, 'r')));
  REQUIRE(log.append_framed(lines, ends));  // 10 000 bytes: two sealed blocks, one open
  auto end = log.seal();
  const char* first_buffer = log.blocks(0, end).front()->bytes.data();
  log.commit(end);  // nothing holds the blocks any more
  REQUIRE(log.append_framed(lines, ends));
  auto again = log.blocks(end, log.seal());
  bool reused = false;
  for (const auto& b : again) reused = reused || b->bytes.data() == first_buffer;
  CHECK(reused);
  CHECK(again.front()->bytes == std::string(lines).substr(0, again.front()->bytes.size()));
}

TEST_CASE("line_splitter appends the lines of a read as one run and joins lines across reads", "[push]") {
  record_log log(record_framing::lines, 1 << 20, 1 << 20, false);
  ingest_counters counters;
  line_splitter lines(log, counters, {});
  const std::string text = "alpha\r\nbeta\n\ngamma\r\ndelta";
  REQUIRE(lines.consume(text.data(), text.size()));
  CHECK(counters.records == 4);
  CHECK(counters.bytes == 14);  // without '\r' and '\n'
  // The complete lines went in as they came, CRs included: the decoders strip them.
  CHECK(log.blocks(0, log.seal()).front()->bytes == "alpha\r\nbeta\n\ngamma\r\n");
  for (char c : std::string("-epsilon\r\nzeta\n")) REQUIRE(lines.consume(&c, 1));  // byte by byte
  REQUIRE(lines.consume("eta", 3));
  REQUIRE(lines.finish());  // the stream ends: the last line needs no newline
  CHECK(decoded_lines(log) == std::vector<std::string>{"alpha", "beta", "", "gamma", "delta-epsilon", "zeta", "eta"});
  CHECK(counters.records == 7);
  CHECK(counters.bad_records == 0);
}

TEST_CASE("line_splitter strips a byte-order mark only at a stream's start, also when split over reads", "[push]") {
  record_log log(record_framing::lines, 1 << 20, 1 << 20, false);
  ingest_counters counters;
  line_splitter lines(log, counters, {.strip_bom = true});
  REQUIRE(lines.consume("\xEF", 1));
  REQUIRE(lines.consume("\xBB\xBF" "first\r\n\xEF\xBB\xBFsecond\n", 19));
  REQUIRE(lines.finish());  // a new stream (connection) may open with a mark again
  REQUIRE(lines.consume("\xEF\xBB\xBFthird\nfourth", 15));
  REQUIRE(lines.finish());
  CHECK(decoded_lines(log) == std::vector<std::string>{"first", "\xEF\xBB\xBFsecond", "third", "fourth"});

  record_log plain_log(record_framing::lines, 1 << 20, 1 << 20, false);
  line_splitter keeps(plain_log, counters, {});  // strip_bom off: the mark is data
  REQUIRE(keeps.consume("\xEF\xBB\xBFx\n", 5));
  CHECK(decoded_lines(plain_log) == std::vector<std::string>{"\xEF\xBB\xBFx"});
}

TEST_CASE("line_splitter counts an oversize line as bad and skips it, whole or spread over reads", "[push]") {
  record_log log(record_framing::lines, 1 << 20, 1 << 20, false);
  ingest_counters counters;
  line_splitter lines(log, counters, {.max_line_bytes = 8});
  std::string text = "short\n" + std::string(9, 'x') + "\n12345678\r\nafter\n";
  REQUIRE(lines.consume(text.data(), text.size()));
  CHECK(counters.bad_records == 1);
  for (int i = 0; i < 100; ++i) REQUIRE(lines.consume("yyyy", 4));  // not buffered: skipped to its newline
  REQUIRE(lines.consume("yy\nlast\n", 8));
  REQUIRE(lines.consume("1234567", 7));
  REQUIRE(lines.consume("8\r", 2));  // at the limit once its '\r' is gone
  REQUIRE(lines.consume("\n", 1));
  CHECK(decoded_lines(log) == std::vector<std::string>{"short", "12345678", "after", "last", "12345678"});
  CHECK(counters.bad_records == 2);
  CHECK(counters.records == 5);
}

TEST_CASE("line_splitter drops blank keep-alive lines and remembers the last lines when asked", "[push]") {
  record_log log(record_framing::lines, 1 << 20, 1 << 20, false);
  ingest_counters counters;
  line_splitter lines(log, counters, {.skip_blank = true, .keep_recent = 2});
  std::string text = "{\"id\":1}\r\n\r\n \t\n{\"id\":2}\n{\"id\"";
  REQUIRE(lines.consume(text.data(), text.size()));
  REQUIRE(lines.consume(":3}\r\n\r\n", 7));
  CHECK(decoded_lines(log) == std::vector<std::string>{"{\"id\":1}", "{\"id\":2}", "{\"id\":3}"});
  CHECK(counters.records == 3);
  CHECK(std::vector<std::string>(lines.recent().begin(), lines.recent().end()) ==
        std::vector<std::string>{"{\"id\":2}", "{\"id\":3}"});
  lines.reset();  // a new connection: the unfinished line is dropped
  REQUIRE(lines.consume("{\"id\":4", 7));
  lines.reset();
  REQUIRE(lines.consume("{\"id\":5}\n", 9));
  CHECK(lines.recent().back() == "{\"id\":5}");
  CHECK(counters.records == 4);
}

TEST_CASE("includeTimestamp lines lose the carriage return a CRLF stream leaves in the log", "[push]") {
  push_source_config config{"test source", "text", {}, nullptr};
  config.opts.set("includeTimestamp", "true");
  lines_source source(config, {"a\r", "b"});
  std::optional<std::string> end;
  REQUIRE(eventually([&] { return (end = source.latest_offset(source.initial_offset())) &&
                                  push_source::parse_offset(*end) == 2; }));
  CHECK(decoded_values(source, source.initial_offset(), *end) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a record that opens a block with a byte-order mark keeps it: only a stream's start may lose one", "[push]") {
  push_source_config config{"test source", "text", {}, nullptr};
  lines_source source(config, {"\xEF\xBB\xBFmark"});
  std::optional<std::string> end;
  REQUIRE(eventually([&] { return (end = source.latest_offset(source.initial_offset())) &&
                                  push_source::parse_offset(*end) == 1; }));
  CHECK(decoded_values(source, source.initial_offset(), *end) == std::vector<std::string>{"\xEF\xBB\xBFmark"});
}

namespace {

// Lines of every length from 0 to 299, every third ending in CRLF, and a last one without a newline: the
// stream's text and the lines a reader must get from it.
std::pair<std::string, std::vector<std::string>> lines_of_every_length() {
  std::vector<std::string> expected;
  std::string text;
  for (std::size_t length = 0; length < 300; ++length) {
    std::string line;
    for (std::size_t i = 0; i < length; ++i) line += static_cast<char>('a' + (i * 7 + length) % 26);
    expected.push_back(line);
    text += line + (length % 3 == 0 ? "\r\n" : "\n");
  }
  text += "no newline at the end";
  expected.push_back("no newline at the end");
  return {text, expected};
}

}  // namespace

TEST_CASE("lines of every length, with CRLF or LF, split over reads, come out of the log exactly", "[push]") {
  const auto [text, expected] = lines_of_every_length();
  record_log log(record_framing::lines, 1 << 24, 4096, false);
  ingest_counters counters;
  line_splitter lines(log, counters, {});
  for (std::size_t at = 0; at < text.size(); at += 1000) REQUIRE(lines.consume(text.data() + at, std::min<std::size_t>(1000, text.size() - at)));
  REQUIRE(lines.finish());
  CHECK(decoded_lines(log) == expected);
}

namespace {

// The (first, count, values) of every block of a string_column log.
using block_rows = std::vector<std::tuple<std::uint64_t, std::uint64_t, std::vector<std::string>>>;

block_rows column_contents(const record_log& log, std::uint64_t end, std::uint64_t start = 0) {
  block_rows out;
  for (const auto& b : log.blocks(start, end)) {
    column values(std::shared_ptr<const column_data>(b, &b->values));
    std::vector<std::string> strings;
    for (std::size_t i = 0; i < values.size(); ++i) strings.emplace_back(values.str(i));
    out.emplace_back(b->first, b->count, std::move(strings));
  }
  return out;
}

block_rows line_contents(record_log& log, std::uint64_t end, std::uint64_t start) {
  block_rows out;
  auto text = make_decoder("text", {}, nullptr);
  for (const auto& b : log.blocks(start, end)) {
    auto bytes = std::make_shared<const std::string>(b->bytes);
    decode_stats stats;
    batch decoded = text->decode(raw_chunk{bytes, 0, bytes->size(), "test", b->first + 1, b->first + 1}, stats);
    std::vector<std::string> strings;
    for (std::size_t i = 0; i < decoded.num_rows(); ++i) strings.emplace_back(decoded.col(0).str(i));
    out.emplace_back(b->first, b->count, std::move(strings));
  }
  return out;
}

}  // namespace

TEST_CASE("a string_column log holds each line as a row and cuts blocks as one append per line does", "[push]") {
  std::vector<std::string> records;
  std::string framed;
  for (int i = 0; i < 200; ++i) {
    records.push_back(std::string(static_cast<std::size_t>(i % 37), static_cast<char>('a' + i % 26)));
    framed += records.back() + (i % 5 == 0 ? "\r\n" : "\n");  // CRLF lines lose the '\r' in both logs
  }
  for (std::size_t block : {1, 7, 64, 1000, 100000}) {
    {
      INFO("blockBytes " << block);
      record_log one_by_one(record_framing::lines, 1 << 20, block, false);
      record_log column_log(record_framing::string_column, 1 << 20, block, false);
      // In runs of different lengths, as a receiver's reads give them, each run read and committed.
      std::size_t at = 0, lines_in = 0;
      for (std::size_t run_lines : {1, 50, 3, 146}) {
        std::size_t length = 0;
        for (std::size_t n = 0; n < run_lines; ++n) length = framed.find('\n', at + length) + 1 - at;
        for (std::size_t n = 0; n < run_lines; ++n) {
          auto line = records[lines_in + n];
          if ((lines_in + n) % 5 == 0) line += '\r';
          REQUIRE(one_by_one.append(line));
        }
        auto appended = column_log.append_lines(std::string_view(framed).substr(at, length));
        REQUIRE(appended.open);
        CHECK(appended.records == run_lines);
        std::size_t payload = 0;
        for (std::size_t n = 0; n < run_lines; ++n) payload += records[lines_in + n].size();
        CHECK(appended.payload_bytes == payload);
        CHECK(column_log.buffered_bytes() == one_by_one.buffered_bytes());
        auto end = column_log.seal();
        REQUIRE(one_by_one.seal() == end);
        CHECK(column_contents(column_log, end, lines_in) == line_contents(one_by_one, end, lines_in));
        column_log.commit(end);
        one_by_one.commit(end);
        at += length;
        lines_in += run_lines;
      }
      CHECK(at == framed.size());
    }
  }
}

TEST_CASE("a string_column log waits on a full log like append, and takes a last line without its newline", "[push]") {
  record_log log(record_framing::string_column, 16, 8, false);
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += "1234567\n";
  std::atomic<bool> done{false};
  record_log::appended result;
  std::thread receiver([&] {
    result = log.append_lines(lines);
    done = true;
  });
  REQUIRE(eventually([&] { return log.full() && log.waits() == 1; }));
  CHECK_FALSE(done);
  CHECK(log.buffered_bytes() == 16);  // two lines: the bound holds as for single appends
  log.commit(log.seal());
  REQUIRE(eventually([&] { return log.waits() == 2; }));
  log.close();
  receiver.join();
  CHECK_FALSE(result.open);
  CHECK(result.records == 4);

  record_log tail(record_framing::string_column, 1 << 20, 1 << 10, false);
  auto appended = tail.append_lines("a\r\n\nlast");
  CHECK(appended.records == 3);
  CHECK(appended.payload_bytes == 5);
  auto end = tail.seal();
  CHECK(column_contents(tail, end) == block_rows{{0, 3, std::vector<std::string>{"a", "", "last"}}});
  CHECK_THAT(flow::test::error_of([] {
               record_log framed(record_framing::lines, 1 << 20, 1 << 10, false);
               framed.append_lines("x\n");
             }),
             Catch::Contains("string_column"));
}

TEST_CASE("text push sources hand out the log's own column: a replayed range is the same memory", "[push]") {
  push_source_config config{"test source", "text", {}, nullptr};
  lines_source source(config, {"first", "second\r", "third"});
  std::optional<std::string> end;
  REQUIRE(eventually([&] { return (end = source.latest_offset(source.initial_offset())) &&
                                  push_source::parse_offset(*end) == 3; }));
  CHECK(source.chunk_decoder() == nullptr);
  // The lines may sit in one block or in several (the polls above seal the log): every unit is read.
  auto read_columns = [&] {
    std::vector<column> columns;
    source.begin_read(source.initial_offset(), *end);
    while (auto unit = source.next()) {
      REQUIRE(std::holds_alternative<batch>(*unit));
      columns.push_back(std::get<batch>(*unit).col(0));
    }
    return columns;
  };
  auto once = read_columns(), again = read_columns();
  REQUIRE(once.size() == again.size());
  std::vector<std::string> values;
  for (std::size_t u = 0; u < once.size(); ++u) {
    for (std::size_t i = 0; i < once[u].size(); ++i) values.emplace_back(once[u].str(i));
    CHECK(once[u].str(0).data() == again[u].str(0).data());
  }
  CHECK(values == std::vector<std::string>{"first", "second", "third"});
}

TEST_CASE("the line splitter gives a string_column log the same rows on its one-pass path and its checked path", "[push]") {
  const auto [text, expected] = lines_of_every_length();
  for (std::size_t keep_recent : {0, 1}) {  // remembering lines takes the checked path
    INFO("keep_recent " << keep_recent);
    record_log log(record_framing::string_column, 1 << 24, 4096, false);
    ingest_counters counters;
    line_splitter::settings settings;
    settings.keep_recent = keep_recent;
    line_splitter lines(log, counters, settings);
    for (std::size_t at = 0; at < text.size(); at += 1000)
      REQUIRE(lines.consume(text.data() + at, std::min<std::size_t>(1000, text.size() - at)));
    REQUIRE(lines.finish());
    auto end = log.seal();
    std::vector<std::string> values;
    for (auto& [first, count, strings] : column_contents(log, end)) values.insert(values.end(), strings.begin(), strings.end());
    CHECK(values == expected);
    CHECK(counters.records == expected.size());
    std::size_t payload = 0;
    for (const auto& line : expected) payload += line.size();
    CHECK(counters.bytes == payload);
  }
}
