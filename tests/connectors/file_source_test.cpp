#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "flow/connectors/durable_file.hpp"
#include "flow/connectors/file_source.hpp"
#include "flow/plan_logging_source.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using flow::test::temp_dir;
using flow::test::write_file;

namespace {

// "f<i>.txt", appended piecewise: g++ 12 warns falsely (-Wrestrict) on "f" + std::to_string(i) + ".txt".
std::string numbered(int i) {
  std::string name = "f";
  name += std::to_string(i);
  name += ".txt";
  return name;
}

std::string offset(std::size_t n) { return "{\"logOffset\":" + std::to_string(n) + "}"; }

// Gives p a modification time `seconds` after a fixed base, so tests control the order.
void set_mtime(const fs::path& p, int seconds) {
  static const auto base = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(p, base + std::chrono::seconds(seconds));
}

std::vector<flow::raw_chunk> read_range(flow::source_reader& source, const std::string& start,
                                        const std::string& end) {
  source.begin_read(start, end);
  std::vector<flow::raw_chunk> chunks;
  while (auto unit = source.next()) {
    REQUIRE(std::holds_alternative<flow::raw_chunk>(*unit));
    chunks.push_back(std::get<flow::raw_chunk>(*unit));
  }
  return chunks;
}

// File names in the order a range's chunks come (one entry per file).
std::vector<std::string> file_names(const std::vector<flow::raw_chunk>& chunks) {
  std::vector<std::string> names;
  for (const auto& c : chunks) {
    std::string name = fs::path(c.origin).filename().string();
    if (names.empty() || names.back() != name) names.push_back(name);
  }
  return names;
}

std::unique_ptr<flow::source_reader> text_source(const fs::path& path, flow::options opts = {}) {
  return flow::make_file_source(path.string(), "text", std::move(opts), nullptr);
}

std::size_t decoded_rows(const flow::decoder& dec, const std::vector<flow::raw_chunk>& chunks,
                         flow::decode_stats& stats) {
  std::size_t rows = 0;
  for (const auto& c : chunks) rows += dec.decode(c, stats).num_rows();
  return rows;
}

}  // namespace

TEST_CASE("file source reads files in modification-time order, ties by name, hidden files skipped", "[file_source]") {
  temp_dir dir;
  write_file(dir / "a.txt", "a1\na2\n");
  write_file(dir / "b.txt", "b1\n");
  write_file(dir / "c.txt", "c1\n");
  write_file(dir / "d.txt", "d1\n");
  write_file(dir / ".hidden.txt", "x\n");
  write_file(dir / "_temporary", "x\n");
  fs::create_directory(dir / "subdir");
  set_mtime(dir / "a.txt", 30);
  set_mtime(dir / "b.txt", 10);
  set_mtime(dir / "c.txt", 20);
  set_mtime(dir / "d.txt", 20);

  auto source = text_source(dir.path());
  CHECK(source->description() == "FileStreamSource[" + dir.path().string() + "]");
  CHECK(source->output_schema()->to_string() == "value: string");
  REQUIRE(source->chunk_decoder() != nullptr);
  CHECK(source->initial_offset() == offset(0));
  auto end = source->latest_offset(source->initial_offset());
  REQUIRE(end == offset(4));
  auto chunks = read_range(*source, offset(0), *end);
  CHECK(file_names(chunks) == std::vector<std::string>{"b.txt", "c.txt", "d.txt", "a.txt"});
  CHECK(chunks.back().bytes() == "a1\na2\n");
  CHECK_FALSE(source->latest_offset(*end).has_value());

  CHECK(flow::test::metric(source->metrics(), "numFilesDiscovered") == 4);
  CHECK(flow::test::metric(source->metrics(), "numFilesRead") == 4);
  CHECK(flow::test::metric(source->metrics(), "numBytesRead") == 15);

  auto listed = flow::list_input_files(dir.path().string());
  REQUIRE(listed.size() == 4);
  CHECK(fs::path(listed[0]).filename() == "b.txt");
  CHECK(fs::path(listed[3]).filename() == "a.txt");
}

TEST_CASE("file source steps through files with maxFilesPerTrigger", "[file_source]") {
  temp_dir dir;
  for (int i = 0; i < 5; ++i) {
    write_file(dir / numbered(i), numbered(i) + "\n");
    set_mtime(dir / numbered(i), i);
  }
  flow::options opts;
  opts.set("maxFilesPerTrigger", "2");
  auto source = text_source(dir.path(), opts);

  std::string start = source->initial_offset();
  std::vector<std::vector<std::string>> epochs;
  while (auto end = source->latest_offset(start)) {
    epochs.push_back(file_names(read_range(*source, start, *end)));
    start = *end;
  }
  CHECK(start == offset(5));
  CHECK(epochs == std::vector<std::vector<std::string>>{{"f0.txt", "f1.txt"}, {"f2.txt", "f3.txt"}, {"f4.txt"}});

  SECTION("Trigger.Once switches the limit off") {
    auto once = text_source(dir.path(), opts);
    once->set_rate_limits_enabled(false);
    CHECK(once->latest_offset(once->initial_offset()) == offset(5));
  }
  SECTION("the limit must be positive") {
    opts.set("maxFilesPerTrigger", "0");
    CHECK_THROWS_WITH(text_source(dir.path(), opts), Catch::Contains("maxFilesPerTrigger must be a positive"));
  }
}

TEST_CASE("file source with latestFirst takes the newest unseen files first", "[file_source]") {
  temp_dir dir;
  for (int i = 0; i < 3; ++i) {
    write_file(dir / numbered(i), "x\n");
    set_mtime(dir / numbered(i), i);
  }
  flow::options opts;
  opts.set("maxFilesPerTrigger", "1");
  opts.set("latestFirst", "true");
  auto source = text_source(dir.path(), opts);
  auto first = source->latest_offset(offset(0));
  REQUIRE(first == offset(1));
  CHECK(file_names(read_range(*source, offset(0), *first)) == std::vector<std::string>{"f2.txt"});

  // A newer file arriving later still goes before the older unseen ones.
  write_file(dir / "f9.txt", "x\n");
  set_mtime(dir / "f9.txt", 9);
  auto second = source->latest_offset(*first);
  REQUIRE(second == offset(2));
  CHECK(file_names(read_range(*source, *first, *second)) == std::vector<std::string>{"f9.txt"});
  auto third = source->latest_offset(*second);
  REQUIRE(third == offset(3));
  CHECK(file_names(read_range(*source, *second, *third)) == std::vector<std::string>{"f1.txt"});
  // The planned epochs keep their files.
  CHECK(file_names(read_range(*source, offset(0), *third)) == std::vector<std::string>{"f2.txt", "f9.txt", "f1.txt"});
}

TEST_CASE("file source picks up a file moved into the directory (inotify)", "[file_source]") {
  temp_dir dir;
  temp_dir staging;
  write_file(dir / "first.txt", "1\n");
  set_mtime(dir / "first.txt", 0);
  flow::options opts;
  opts.set("pollIntervalMs", "3600000");  // only an inotify event can trigger a new listing in this test
  auto source = text_source(dir.path(), opts);
  auto first = source->latest_offset(offset(0));
  REQUIRE(first == offset(1));
  CHECK_FALSE(source->latest_offset(*first).has_value());

  write_file(staging / "second.txt", "2\n");
  fs::rename(staging / "second.txt", dir / "second.txt");
  auto second = source->latest_offset(*first);
  REQUIRE(second == offset(2));
  auto chunks = read_range(*source, *first, *second);
  REQUIRE(chunks.size() == 1);
  CHECK(chunks[0].bytes() == "2\n");

  // A file written in place is not taken before it has been stable for fileStableMs (1 s by default).
  write_file(dir / "third.txt", "3\n");
  CHECK_FALSE(source->latest_offset(*second).has_value());
}

TEST_CASE("file source notifies when a file moves in after a plan that found none, and when a listing is due",
          "[file_source][notify]") {
  temp_dir dir;
  temp_dir staging;
  flow::options opts;
  opts.set("pollIntervalMs", "3600000");
  auto source = text_source(dir.path(), opts);
  std::atomic<int> calls{0};
  REQUIRE(source->notify_when_data([&] { ++calls; }));
  CHECK_FALSE(source->latest_offset(offset(0)).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(calls == 0);  // nothing arrived, no listing due

  write_file(staging / "first.txt", "1\n");
  fs::rename(staging / "first.txt", dir / "first.txt");
  REQUIRE(flow::test::eventually([&] { return calls.load() == 1; }, std::chrono::seconds(10)));
  CHECK(source->latest_offset(offset(0)) == offset(1));

  // Without inotify events (a hard link raises only IN_CREATE) the listing that falls due wakes the query.
  opts.set("pollIntervalMs", "200");
  opts.set("fileStableMs", "0");
  auto polled = text_source(dir.path(), opts);
  std::atomic<int> polled_calls{0};
  REQUIRE(polled->notify_when_data([&] { ++polled_calls; }));
  CHECK(polled->latest_offset(offset(1)) == std::nullopt);
  write_file(staging / "origin.txt", "2\n");
  fs::create_hard_link(staging / "origin.txt", dir / "linked.txt");
  REQUIRE(flow::test::eventually([&] { return polled_calls.load() == 1; }, std::chrono::seconds(10)));
  CHECK(polled->latest_offset(offset(1)) == offset(2));
  source->stop();
  polled->stop();
}

TEST_CASE("file source with a pollIntervalMs beyond poll()'s int milliseconds does not wake the query early",
          "[file_source][notify]") {
  // 2^32 ms + 100 ms once wrapped to a 100 ms poll() timeout; the largest int64 overflowed the deadline.
  for (const char* interval : {"4294967396", "9223372036854775807"}) {
    INFO("pollIntervalMs " << interval);
    temp_dir dir;
    flow::options opts;
    opts.set("pollIntervalMs", interval);
    auto source = text_source(dir.path(), opts);
    std::atomic<int> calls{0};
    REQUIRE(source->notify_when_data([&] { ++calls; }));
    CHECK_FALSE(source->latest_offset(offset(0)).has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    CHECK(calls == 0);  // nothing arrived and no listing is due for weeks
    source->stop();
  }
}

TEST_CASE("file source re-lists by polling when inotify reports nothing", "[file_source]") {
  // A hard link raises IN_CREATE only, which the source does not watch: only a listing finds it.
  temp_dir dir;
  temp_dir elsewhere;
  write_file(elsewhere / "origin.txt", "x\n");
  flow::options opts;
  opts.set("pollIntervalMs", "200");
  opts.set("fileStableMs", "0");  // the linked file is new: take it as soon as a listing finds it
  auto source = text_source(dir.path(), opts);
  CHECK_FALSE(source->latest_offset(offset(0)).has_value());
  fs::create_hard_link(elsewhere / "origin.txt", dir / "linked.txt");
  CHECK_FALSE(source->latest_offset(offset(0)).has_value());  // within the poll interval: no listing
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  CHECK(source->latest_offset(offset(0)) == offset(1));

  opts.set("pollIntervalMs", "0");
  auto eager = text_source(dir.path(), opts);
  CHECK(eager->latest_offset(offset(0)) == offset(1));
  fs::create_hard_link(elsewhere / "origin.txt", dir / "linked2.txt");
  CHECK(eager->latest_offset(offset(1)) == offset(2));
}

TEST_CASE("file source accepts a glob in the last component and a single file", "[file_source]") {
  temp_dir dir;
  write_file(dir / "a.csv", "1\n");
  write_file(dir / "b.json", "{}\n");
  write_file(dir / "c.csv", "2\n");
  set_mtime(dir / "a.csv", 1);
  set_mtime(dir / "c.csv", 2);
  auto glob = text_source(dir / "*.csv");
  auto end = glob->latest_offset(offset(0));
  REQUIRE(end == offset(2));
  CHECK(file_names(read_range(*glob, offset(0), *end)) == std::vector<std::string>{"a.csv", "c.csv"});

  auto single = text_source(dir / "b.json");
  REQUIRE(single->latest_offset(offset(0)) == offset(1));
  CHECK(file_names(read_range(*single, offset(0), offset(1))) == std::vector<std::string>{"b.json"});
}

TEST_CASE("file source replays a range as the same chunks", "[file_source]") {
  temp_dir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "line number " + std::to_string(i) + "\n";
  write_file(dir / "big.txt", text);
  write_file(dir / "small.txt", "tiny\n");
  set_mtime(dir / "big.txt", 1);
  set_mtime(dir / "small.txt", 2);
  flow::options opts;
  opts.set("maxBytesPerChunk", "500");
  auto source = text_source(dir.path(), opts);
  auto end = source->latest_offset(offset(0));
  REQUIRE(end == offset(2));
  auto first = read_range(*source, offset(0), *end);
  auto again = read_range(*source, offset(0), *end);
  REQUIRE(first.size() > 5);
  REQUIRE(first.size() == again.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    CHECK(first[i].bytes() == again[i].bytes());
    CHECK(first[i].file_offset == again[i].file_offset);
    CHECK(first[i].first_line == again[i].first_line);
    CHECK(first[i].origin == again[i].origin);
  }
  // A fresh source (a restart) rebuilds the same log and yields the same chunks.
  auto restarted = text_source(dir.path(), opts);
  auto replayed = read_range(*restarted, offset(0), *end);
  REQUIRE(replayed.size() == first.size());
  for (std::size_t i = 0; i < first.size(); ++i) CHECK(replayed[i].bytes() == first[i].bytes());

  // Chunks of one file cover it exactly, end on a line and are cut as the whole file is.
  std::uint64_t covered = 0;
  std::vector<std::string> cut_whole;
  for (const auto& c : flow::connectors::cut_into_chunks(std::make_shared<const std::string>(text), "big.txt",
                                                         *flow::make_decoder("text", {}, nullptr), 500))
    cut_whole.emplace_back(c.bytes());
  std::vector<std::string> cut_read;
  for (const auto& c : first) {
    if (c.origin != (dir / "big.txt").string()) continue;
    CHECK(c.file_offset == covered);
    CHECK(c.end - c.begin <= 500);
    CHECK(c.bytes().back() == '\n');
    CHECK(c.first_line == 1 + static_cast<std::uint64_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(covered), '\n')));
    covered += c.end - c.begin;
    cut_read.emplace_back(c.bytes());
  }
  CHECK(covered == text.size());
  CHECK(cut_read == cut_whole);
}

TEST_CASE("file source reads a file a chunk at a time, cut as the whole file is", "[file_source]") {
  // The instances decode a big file's first chunks while the rest is read: no buffer holds the whole file.
  temp_dir dir;
  std::string text = "\xEF\xBB\xBF";  // a byte-order mark, dropped from the first chunk only
  for (int i = 0; i < 2000; ++i) {
    text += "line " + std::to_string(i) + "\n";
    if (i % 500 == 7) text += std::string(300, 'x') + "\n";  // longer than the chunk limit
  }
  text += "last line without a newline";
  write_file(dir / "big.txt", text);
  set_mtime(dir / "big.txt", 1);
  flow::options opts;
  opts.set("maxBytesPerChunk", "128");
  auto source = text_source(dir.path(), opts);
  REQUIRE(source->latest_offset(offset(0)) == offset(1));
  auto chunks = read_range(*source, offset(0), offset(1));
  auto decoder = flow::make_decoder("text", {}, nullptr);
  auto whole = flow::connectors::cut_into_chunks(std::make_shared<const std::string>(text), "big.txt", *decoder, 128);
  REQUIRE(chunks.size() == whole.size());
  std::vector<std::string> lines, expected_lines;
  flow::decode_stats stats;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    INFO("chunk " << i);
    CHECK(chunks[i].bytes() == whole[i].bytes());
    CHECK(chunks[i].first_line == whole[i].first_line);
    CHECK(chunks[i].starts_file() == (i == 0));
    CHECK(chunks[i].buffer->size() <= 2 * 300);  // about a chunk read at a time (the whole file is 20 KB)
    auto decoded = decoder->decode(chunks[i], stats);
    auto expected = decoder->decode(whole[i], stats);
    for (std::size_t r = 0; r < decoded.num_rows(); ++r) lines.emplace_back(decoded.col(0).str(r));
    for (std::size_t r = 0; r < expected.num_rows(); ++r) expected_lines.emplace_back(expected.col(0).str(r));
  }
  CHECK(lines == expected_lines);
  CHECK(lines.front() == "line 0");
  CHECK(lines.back() == "last line without a newline");
}

TEST_CASE("a record longer than the chunk limit gets a chunk of its own", "[file_source]") {
  auto dec = flow::make_decoder("text", {}, nullptr);
  auto contents = std::make_shared<const std::string>("short\n" + std::string(100, 'x') + "\nend");
  auto chunks = flow::connectors::cut_into_chunks(contents, "mem", *dec, 10);
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[0].bytes() == "short\n");
  CHECK(chunks[1].bytes() == std::string(100, 'x') + "\n");
  CHECK(chunks[2].bytes() == "end");
  CHECK(chunks[2].first_line == 3);
}

TEST_CASE("CSV quoted fields with newlines never span chunks with multiLine", "[file_source]") {
  flow::options opts;
  opts.set("header", "true");
  opts.set("multiLine", "true");
  opts.set("mode", "FAILFAST");
  auto schema = flow::make_schema({{"id", flow::type_id::int64, true}, {"note", flow::type_id::string, true}});
  auto dec = flow::make_decoder("csv", opts, schema);
  std::string text = "id,note\n";
  for (int i = 0; i < 50; ++i) text += std::to_string(i) + ",\"multi\nline, \"\"quoted\"\"\nnote\"\n";
  auto contents = std::make_shared<const std::string>(text);
  auto chunks = flow::connectors::cut_into_chunks(contents, "mem.csv", *dec, 64);
  REQUIRE(chunks.size() > 10);
  flow::decode_stats stats;
  std::int64_t expected_id = 0;
  for (const auto& c : chunks) {
    auto b = dec->decode(c, stats);
    for (std::size_t r = 0; r < b.num_rows(); ++r) {
      CHECK(b.at(r, 0) == flow::value{expected_id++});
      CHECK(b.at(r, 1) == flow::value{std::string("multi\nline, \"quoted\"\nnote")});
    }
  }
  CHECK(expected_id == 50);
  CHECK(stats.malformed == 0);
}

TEST_CASE("a big real CSV file decodes to the same rows in small chunks as in one", "[file_source]") {
  fs::path file = flow::test::shared_data_dir() / "retail-by-day" / "2011-12-05.csv";
  REQUIRE(fs::exists(file));
  flow::options opts;
  opts.set("header", "true");
  opts.set("mode", "FAILFAST");
  std::string sample = flow::read_sample(file.string(), 64 * 1024);
  REQUIRE(sample.size() <= 64 * 1024);
  REQUIRE(sample.back() == '\n');
  auto schema = flow::infer_schema("csv", opts, {sample});
  auto dec = flow::make_decoder("csv", opts, schema);

  auto whole = flow::read_file_chunks(file.string(), *dec, std::size_t{1} << 30);
  auto small = flow::read_file_chunks(file.string(), *dec, 32 * 1024);
  REQUIRE(whole.size() == 1);
  REQUIRE(small.size() > 10);
  CHECK(whole[0].bytes().size() == fs::file_size(file));
  flow::decode_stats whole_stats, small_stats;
  std::size_t whole_rows = decoded_rows(*dec, whole, whole_stats);
  std::size_t small_rows = decoded_rows(*dec, small, small_stats);
  CHECK(whole_rows > 1000);
  CHECK(small_rows == whole_rows);
  CHECK(small_stats.malformed == whole_stats.malformed);
  for (const auto& c : small) CHECK(c.end - c.begin <= 32 * 1024);
}

TEST_CASE("file source reports a missing directory clearly", "[file_source]") {
  temp_dir dir;
  std::string missing = (dir / "nope" / "deeper").string();
  auto source = text_source(missing);
  CHECK_THROWS_MATCHES(source->latest_offset(offset(0)), flow::error,
                       Catch::Message("file source: path '" + missing +
                                      "' does not exist; create it or fix the path"));
  CHECK_THROWS_WITH(flow::list_input_files(missing), Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(source->latest_offset("garbage"), Catch::Contains("malformed offset 'garbage'"));
}

TEST_CASE("file source names a file that vanished between listing and reading", "[file_source]") {
  temp_dir dir;
  write_file(dir / "gone.txt", "x\n");
  auto source = text_source(dir.path());
  auto end = source->latest_offset(offset(0));
  REQUIRE(end == offset(1));
  fs::remove(dir / "gone.txt");
  source->begin_read(offset(0), *end);
  CHECK_THROWS_WITH(source->next(), Catch::Contains((dir / "gone.txt").string()) &&
                                        Catch::Contains("No such file or directory"));
  CHECK_THROWS_WITH(flow::read_sample((dir / "gone.txt").string(), 100), Catch::Contains("gone.txt"));
}

TEST_CASE("file source ignores files older than maxFileAge after the first listing", "[file_source]") {
  temp_dir dir;
  write_file(dir / "ancient.txt", "x\n");
  set_mtime(dir / "ancient.txt", -7200);  // all files of the first listing count, however old
  write_file(dir / "recent.txt", "x\n");
  set_mtime(dir / "recent.txt", 0);
  flow::options opts;
  opts.set("maxFileAge", "1 hour");
  opts.set("pollIntervalMs", "0");
  auto source = text_source(dir.path(), opts);
  REQUIRE(source->latest_offset(offset(0)) == offset(2));

  write_file(dir / "late_but_old.txt", "x\n");
  set_mtime(dir / "late_but_old.txt", -3700);
  write_file(dir / "late_and_new.txt", "x\n");
  set_mtime(dir / "late_and_new.txt", 60);
  auto end = source->latest_offset(offset(2));
  REQUIRE(end == offset(3));
  CHECK(file_names(read_range(*source, offset(2), *end)) == std::vector<std::string>{"late_and_new.txt"});
}

TEST_CASE("file source takes a file written in place only once it has been stable for fileStableMs",
          "[file_source][stable]") {
  temp_dir dir;
  flow::options opts;
  opts.set("fileStableMs", "400");
  opts.set("pollIntervalMs", "0");
  auto source = text_source(dir.path(), opts);
  CHECK_FALSE(source->latest_offset(offset(0)).has_value());

  std::ofstream writer(dir / "growing.txt");
  std::string written;
  auto last_write = std::chrono::steady_clock::now();
  for (int i = 0; i < 12; ++i) {  // 600 ms of writing: never quiet for 400 ms
    last_write = std::chrono::steady_clock::now();
    written += "row " + std::to_string(i) + "\n";
    writer << "row " << i << "\n" << std::flush;
    CHECK_FALSE(source->latest_offset(offset(0)).has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  writer.close();
  CHECK_FALSE(source->latest_offset(offset(0)).has_value());  // closing is no sign that the writer is done
  std::optional<std::string> end;
  REQUIRE(flow::test::eventually([&] { return (end = source->latest_offset(offset(0))).has_value(); }));
  // 400 ms after the last write, less the kernel's coarse clock for modification times.
  CHECK(std::chrono::steady_clock::now() - last_write >= std::chrono::milliseconds(380));
  REQUIRE(end == offset(1));
  auto chunks = read_range(*source, offset(0), *end);
  REQUIRE(chunks.size() == 1);
  CHECK(chunks[0].bytes() == written);
}

TEST_CASE("file source takes old files and files moved in at once, and waits at its first plan for young ones",
          "[file_source][stable]") {
  temp_dir dir;
  temp_dir staging;
  write_file(dir / "old.txt", "old\n");
  set_mtime(dir / "old.txt", 0);
  flow::options opts;
  opts.set("fileStableMs", "60000");
  opts.set("pollIntervalMs", "3600000");
  auto source = text_source(dir.path(), opts);
  auto started = std::chrono::steady_clock::now();
  REQUIRE(source->latest_offset(offset(0)) == offset(1));  // old enough: no waiting
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));

  write_file(staging / "moved.txt", "moved\n");
  fs::rename(staging / "moved.txt", dir / "moved.txt");
  REQUIRE(source->latest_offset(offset(1)) == offset(2));  // a move is atomic: taken at once
  CHECK(file_names(read_range(*source, offset(1), offset(2))) == std::vector<std::string>{"moved.txt"});

  // A file written just before the query starts is complete more often than not: the first plan waits
  // up to fileStableMs for it, so that an available-now query does not end without it.
  temp_dir fresh;
  started = std::chrono::steady_clock::now();  // before the write: a slow machine may pause after it
  write_file(fresh / "just-written.txt", "x\n");
  opts.set("fileStableMs", "300");
  auto starting = text_source(fresh.path(), opts);
  CHECK(starting->latest_offset(offset(0)) == offset(1));
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(250));

  opts.set("fileStableMs", "-1");
  CHECK_THROWS_WITH(text_source(dir.path(), opts), Catch::Contains("fileStableMs must not be negative"));
}

TEST_CASE("file source counts a file that changes after it was read in numFilesChangedAfterRead",
          "[file_source][stable]") {
  temp_dir dir;
  write_file(dir / "log.txt", "first\n");
  set_mtime(dir / "log.txt", 0);
  write_file(dir / "other.txt", "other\n");
  set_mtime(dir / "other.txt", 1);
  flow::options opts;
  opts.set("pollIntervalMs", "3600000");
  auto source = text_source(dir.path(), opts);
  auto end = source->latest_offset(offset(0));
  REQUIRE(end == offset(2));
  read_range(*source, offset(0), *end);
  CHECK(flow::test::metric(source->metrics(), "numFilesChangedAfterRead") == 0);

  {
    std::ofstream append(dir / "log.txt", std::ios::app);
    append << "second\n";
  }
  CHECK_FALSE(source->latest_offset(*end).has_value());  // the file stays read once
  CHECK(flow::test::metric(source->metrics(), "numFilesChangedAfterRead") == 1);
  {
    std::ofstream append(dir / "log.txt", std::ios::app);
    append << "third\n";
  }
  fs::last_write_time(dir / "other.txt", fs::file_time_type::clock::now());  // touched: mtime only
  CHECK_FALSE(source->latest_offset(*end).has_value());
  CHECK(flow::test::metric(source->metrics(), "numFilesChangedAfterRead") == 2);  // once per file
}

TEST_CASE("file source: its identity for a checkpoint is its path, not its rate limits", "[file_source][fingerprint]") {
  temp_dir dir;
  flow::options limited;
  limited.set("maxFilesPerTrigger", "2");
  const auto identity = text_source(dir.path())->identity();
  CHECK(identity == "FileStreamSource[" + dir.path().string() + "]");
  CHECK(text_source(dir.path(), limited)->identity() == identity);
  fs::create_directory(dir / "other");
  CHECK(text_source(dir / "other")->identity() != identity);
}

TEST_CASE("file source on a checkpoint: a log offset names the same files after a restart", "[file_source][checkpoint]") {
  temp_dir input;
  temp_dir checkpoint;
  write_file(input / "a.txt", "a\n");
  set_mtime(input / "a.txt", 10);
  write_file(input / "b.txt", "b\n");
  set_mtime(input / "b.txt", 20);
  {
    auto source = text_source(input.path());
    source->use_checkpoint(checkpoint.path().string());
    REQUIRE(source->latest_offset(offset(0)) == offset(2));
    CHECK(file_names(read_range(*source, offset(0), offset(2))) == std::vector<std::string>{"a.txt", "b.txt"});
    write_file(input / "d.txt", "d\n");
    set_mtime(input / "d.txt", 40);
    REQUIRE(source->latest_offset(offset(2)) == offset(3));  // planned; the process dies before the epoch runs
  }
  // After the crash: a file older than all, and the taken files touched.
  write_file(input / "c.txt", "c\n");
  set_mtime(input / "c.txt", 5);
  set_mtime(input / "a.txt", 50);
  set_mtime(input / "b.txt", 60);

  auto restarted = text_source(input.path());
  restarted->use_checkpoint(checkpoint.path().string());
  CHECK(file_names(read_range(*restarted, offset(0), offset(2))) == std::vector<std::string>{"a.txt", "b.txt"});
  REQUIRE(restarted->latest_offset(offset(2)) == offset(3));  // the logged batch, as planned before
  CHECK(file_names(read_range(*restarted, offset(2), offset(3))) == std::vector<std::string>{"d.txt"});
  REQUIRE(restarted->latest_offset(offset(3)) == offset(4));  // only the new file: taken files are never retaken
  CHECK(file_names(read_range(*restarted, offset(3), offset(4))) == std::vector<std::string>{"c.txt"});
  CHECK_FALSE(restarted->latest_offset(offset(4)).has_value());
}

// Plans two one-file batches on checkpoint (a.txt, then b.txt): the log holds two entries.
void log_two_batches(const fs::path& input, const fs::path& checkpoint) {
  write_file(input / "a.txt", "a\n");
  set_mtime(input / "a.txt", 10);
  auto source = text_source(input);
  source->use_checkpoint(checkpoint.string());
  REQUIRE(source->latest_offset(offset(0)) == offset(1));
  write_file(input / "b.txt", "b\n");
  set_mtime(input / "b.txt", 20);
  REQUIRE(source->latest_offset(offset(1)) == offset(2));
}

TEST_CASE("file source on a checkpoint names a damaged file log entry", "[file_source][checkpoint]") {
  temp_dir input;
  temp_dir checkpoint;
  log_two_batches(input.path(), checkpoint.path());
  const fs::path log = checkpoint / "batches.log";
  REQUIRE(fs::exists(log));
  std::string content = flow::test::read_file(log);
  const std::size_t second = content.find("FLOWSEAL1 ", 1);
  REQUIRE(second != std::string::npos);

  SECTION("corrupted") { content[second - 2] ^= 0x20; }
  SECTION("truncated, an intact entry after it") { content.erase(second - 3, 2); }
  write_file(log, content);
  auto restarted = text_source(input.path());
  std::string message = flow::test::error_of([&] { restarted->use_checkpoint(checkpoint.path().string()); });
  const std::string damage = log.string() + "' is damaged at byte 0";
  CHECK_THAT(message, Catch::Contains(damage) &&
                          Catch::Contains("before its last record") && Catch::Contains("new checkpoint location"));
}

TEST_CASE("file source on a checkpoint: a torn last log entry is cut off and its batch planned again",
          "[file_source][checkpoint]") {
  temp_dir input;
  temp_dir checkpoint;
  log_two_batches(input.path(), checkpoint.path());
  const fs::path log = checkpoint / "batches.log";
  const std::string logged = flow::test::read_file(log);
  std::string content = logged;
  const std::size_t second = content.find("FLOWSEAL1 ", 1);
  REQUIRE(second != std::string::npos);

  SECTION("truncated") { write_file(log, content.substr(0, content.size() - 5)); }
  SECTION("a bad checksum") {
    content[content.size() - 2] ^= 0x20;
    write_file(log, content);
  }
  SECTION("zeros where the entry should be") {
    write_file(log, content.substr(0, second) + std::string(content.size() - second, '\0'));
  }
  {
    auto restarted = text_source(input.path());
    restarted->use_checkpoint(checkpoint.path().string());
    // The torn batch was never acknowledged: no epoch can name it.
    CHECK_THAT(flow::test::error_of([&] { restarted->begin_read(offset(1), offset(2)); }),
               Catch::Contains("beyond the 1 files of its file log") && Catch::Contains("new checkpoint location"));
    CHECK(file_names(read_range(*restarted, offset(0), offset(1))) == std::vector<std::string>{"a.txt"});
    REQUIRE(restarted->latest_offset(offset(1)) == offset(2));  // planned again, and logged whole
  }
  CHECK(flow::test::read_file(log) == logged);  // the torn entry cut off, the batch logged again
  auto again = text_source(input.path());
  again->use_checkpoint(checkpoint.path().string());
  REQUIRE(again->latest_offset(offset(1)) == offset(2));
  CHECK(file_names(read_range(*again, offset(1), offset(2))) == std::vector<std::string>{"b.txt"});
}

TEST_CASE("file source on a checkpoint reads the file log of the earlier layout, a file per entry",
          "[file_source][checkpoint]") {
  temp_dir input;
  temp_dir checkpoint;
  write_file(input / "a.txt", "a\n");
  set_mtime(input / "a.txt", 10);
  write_file(input / "b.txt", "b\n");
  set_mtime(input / "b.txt", 20);
  // As written before the log file: checkpoint/<end>, a sealed entry.
  write_file(checkpoint / "1", flow::connectors::seal("{\"start\":0,\"end\":1}\n2 10000000000 \"" +
                                                      (input / "a.txt").string() + "\""));
  {
    auto source = text_source(input.path());
    source->use_checkpoint(checkpoint.path().string());
    REQUIRE(source->latest_offset(offset(0)) == offset(1));  // the logged batch
    REQUIRE(source->latest_offset(offset(1)) == offset(2));  // b.txt, appended to the log file
  }
  CHECK(fs::exists(checkpoint / "batches.log"));
  auto restarted = text_source(input.path());
  restarted->use_checkpoint(checkpoint.path().string());
  CHECK(file_names(read_range(*restarted, offset(0), offset(2))) == std::vector<std::string>{"a.txt", "b.txt"});
  CHECK_FALSE(restarted->latest_offset(offset(2)).has_value());
}

TEST_CASE("file source on a checkpoint: the plan records of the offsets log restore entries batches.log lost",
          "[file_source][checkpoint]") {
  // batches.log is written without a sync; the epoch's offsets record carries the plan record durably. A
  // power loss before the kernel wrote the log back loses its newest entries: restore_plans brings them back.
  temp_dir input;
  temp_dir checkpoint;
  std::vector<std::string> records;
  {
    write_file(input / "a.txt", "a\n");
    set_mtime(input / "a.txt", 10);
    auto source = text_source(input.path());
    source->use_checkpoint(checkpoint.path().string());
    REQUIRE(source->latest_offset(offset(0)) == offset(1));
    auto& logging = dynamic_cast<flow::plan_logging_source&>(*source);
    records.push_back(logging.plan_record(offset(0), offset(1)));
    const std::string one_entry = flow::test::read_file(checkpoint / "batches.log");
    write_file(input / "b.txt", "b\n");
    set_mtime(input / "b.txt", 20);
    write_file(input / "c.txt", "c\n");
    set_mtime(input / "c.txt", 30);
    REQUIRE(source->latest_offset(offset(1)) == offset(3));
    records.push_back(logging.plan_record(offset(1), offset(3)));
    CHECK_THAT(records.back(), Catch::Contains("{\"start\":1,\"end\":3}") && Catch::Contains("b.txt") &&
                                   Catch::Contains("c.txt"));
    CHECK(logging.plan_record(offset(0), offset(2)).empty());  // not a planned batch
    write_file(checkpoint / "batches.log", one_entry);  // the second entry never reached the disk
  }
  // A file that sorts first appeared since: planned anew, the batch would take it.
  write_file(input / "early.txt", "e\n");
  set_mtime(input / "early.txt", 5);

  SECTION("restored from the plan records, the batch names the same files") {
    {
      auto restarted = text_source(input.path());
      restarted->use_checkpoint(checkpoint.path().string());
      dynamic_cast<flow::plan_logging_source&>(*restarted).restore_plans(records);  // the first is logged: skipped
      CHECK(file_names(read_range(*restarted, offset(1), offset(3))) == std::vector<std::string>{"b.txt", "c.txt"});
      REQUIRE(restarted->latest_offset(offset(3)) == offset(4));
      CHECK(file_names(read_range(*restarted, offset(3), offset(4))) == std::vector<std::string>{"early.txt"});
    }
    // Written back to batches.log: a later restart finds every entry there.
    auto again = text_source(input.path());
    again->use_checkpoint(checkpoint.path().string());
    CHECK(file_names(read_range(*again, offset(0), offset(4))) ==
          std::vector<std::string>{"a.txt", "b.txt", "c.txt", "early.txt"});
  }
  SECTION("without them the epoch's range is beyond the log: an error, never other files") {
    auto restarted = text_source(input.path());
    restarted->use_checkpoint(checkpoint.path().string());
    CHECK_THAT(flow::test::error_of([&] { restarted->begin_read(offset(1), offset(3)); }),
               Catch::Contains("beyond the 1 files of its file log"));
  }
  SECTION("plan records that do not continue the log, or are not batches, are refused") {
    auto restarted = text_source(input.path());
    restarted->use_checkpoint(checkpoint.path().string());
    std::string after_a_gap = records[1];
    after_a_gap.replace(0, after_a_gap.find('\n'), "{\"start\":2,\"end\":4}");
    auto& logging = dynamic_cast<flow::plan_logging_source&>(*restarted);
    CHECK_THAT(flow::test::error_of([&] { logging.restore_plans({after_a_gap}); }),
               Catch::Contains("ends at log position 1") && Catch::Contains("from position 2") &&
                   Catch::Contains("new checkpoint location"));
    CHECK_THAT(flow::test::error_of([&] { logging.restore_plans({"not a batch"}); }),
               Catch::Contains("not a file batch"));
  }
}

TEST_CASE("file_chunk_index reads a file's chunks one by one, cut as read_file_chunks cuts it", "[file_source]") {
  temp_dir dir;
  std::string text;
  for (int i = 0; i < 2000; ++i) {
    text += "line " + std::to_string(i) + "\n";
    if (i % 500 == 7) text += std::string(300, 'x') + "\n";  // longer than the chunk limit
    if (i == 1200) text += std::string(20000, 'y') + "\n";   // longer than the backward reads' blocks
  }
  text += "last line without a newline";
  write_file(dir / "big.txt", text);
  write_file(dir / "empty.txt", "");
  auto text_decoder = flow::make_decoder("text", {}, nullptr);
  for (std::size_t limit : {std::size_t{1}, std::size_t{128}, std::size_t{4096}, text.size(), text.size() + 1}) {
    INFO("limit " << limit);
    auto whole = flow::read_file_chunks((dir / "big.txt").string(), *text_decoder, limit);
    flow::file_chunk_index index((dir / "big.txt").string(), *text_decoder, limit, true);
    REQUIRE(index.size() == whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
      INFO("chunk " << i);
      auto chunk = index.chunk(i);
      CHECK(chunk.bytes() == whole[i].bytes());
      CHECK(chunk.file_offset.value_or(chunk.begin) == static_cast<std::uint64_t>(whole[i].begin));
      CHECK(chunk.first_line == (i == 0 ? 1u : 0u));
      CHECK(chunk.starts_file() == (i == 0));
    }
  }
  CHECK(flow::file_chunk_index((dir / "empty.txt").string(), *text_decoder, 128, true).size() == 0);

  // csv with multiLine: read whole and cut, line numbers known.
  flow::options opts;
  opts.set("multiLine", "true");
  auto schema = flow::make_schema({{"a", flow::type_id::string, true}});
  auto multi_line = flow::make_decoder("csv", opts, schema);
  CHECK_FALSE(flow::records_end_at_line_ends("csv", opts));
  CHECK(flow::records_end_at_line_ends("csv", {}));
  CHECK(flow::records_end_at_line_ends("json", opts));
  auto whole = flow::read_file_chunks((dir / "big.txt").string(), *multi_line, 128);
  flow::file_chunk_index index((dir / "big.txt").string(), *multi_line, 128, false);
  REQUIRE(index.size() == whole.size());
  CHECK(index.chunk(5).bytes() == whole[5].bytes());
  CHECK(index.chunk(5).first_line == whole[5].first_line);

  CHECK_THROWS_WITH(flow::file_chunk_index((dir / "missing.txt").string(), *text_decoder, 128, true),
                    Catch::Contains("missing.txt") && Catch::Contains("No such file"));
}

TEST_CASE("a malformed record in a chunk read from the middle of a file is named by its byte offset", "[file_source]") {
  temp_dir dir;
  std::string text;
  for (int i = 0; i < 100; ++i) text += "{\"a\": " + std::to_string(i) + "}\n";
  const std::size_t broken_at = text.size();
  text += "not json\n";
  write_file(dir / "records.json", text);
  flow::options opts;
  opts.set("mode", "FAILFAST");
  auto decoder = flow::make_decoder("json", opts, flow::make_schema({{"a", flow::type_id::int64, true}}));
  flow::file_chunk_index index((dir / "records.json").string(), *decoder, 256, true);
  REQUIRE(index.size() > 2);
  flow::decode_stats stats;
  std::string message;
  for (std::size_t i = 0; i < index.size() && message.empty(); ++i) {
    try {
      decoder->decode(index.chunk(i), stats);
    } catch (const flow::error& e) {
      message = e.what();
    }
  }
  CHECK_THAT(message, Catch::Contains("records.json byte " + std::to_string(broken_at)));
}
