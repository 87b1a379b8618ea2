// Push sources on a checkpoint across a restart: the receiver write-ahead log (walEnabled) replays what a
// crashed process planned, and without it old ranges replay as empty. Real TCP peers on 127.0.0.1.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "flow/connectors/durable_file.hpp"
#include "flow/connectors/push_source.hpp"
#include "flow/connectors/socket.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::connectors;
using namespace flow::test;
namespace fs = std::filesystem;

namespace {

// A client-mode socket source on a checkpoint, connected to server (which accepted it as peer).
struct wal_source {
  std::unique_ptr<source_reader> source;
  connection peer;

  wal_source(listener& server, const fs::path& checkpoint, bool wal) {
    options opts;
    opts.set("host", "127.0.0.1");
    opts.set("port", std::to_string(server.port()));
    opts.set("includeTimestamp", "true");
    opts.set("blockBytes", "16");  // several blocks per range
    if (wal) opts.set("walEnabled", "true");
    source = make_socket_source(opts);
    source->use_checkpoint(checkpoint.string());
    source->latest_offset(source->initial_offset());  // starts the receiver
    peer = server.accept();
    REQUIRE(peer.is_open());
  }

  // Sends lines and plans from start until the range ends `count` records after start.
  std::string send_and_plan(const std::string& lines, const std::string& start, std::uint64_t count) {
    REQUIRE(peer.send(lines));
    std::optional<std::string> end;
    REQUIRE(eventually([&] {
      end = source->latest_offset(start);
      return end && push_source::parse_offset(*end) == push_source::parse_offset(start) + count;
    }));
    return *end;
  }

  // The (value, arrival time) rows of a range.
  std::vector<std::pair<std::string, std::int64_t>> read(const std::string& start, const std::string& end) {
    std::vector<std::pair<std::string, std::int64_t>> rows;
    source->begin_read(start, end);
    while (auto unit = source->next()) {
      const auto& b = std::get<batch>(*unit);
      for (std::size_t i = 0; i < b.num_rows(); ++i)
        rows.emplace_back(std::string(b.col("value").str(i)), b.col("timestamp").ints()[i]);
    }
    return rows;
  }
};

std::string at(std::uint64_t offset) { return push_source::offset_json(offset); }

// What a socket source with walEnabled says when it opens the checkpoint (a restart's first step).
std::string wal_restart_error(listener& server, const fs::path& checkpoint) {
  options opts;
  opts.set("host", "127.0.0.1");
  opts.set("port", std::to_string(server.port()));
  opts.set("walEnabled", "true");
  auto source = make_socket_source(opts);
  return error_of([&] { source->use_checkpoint(checkpoint.string()); });
}

std::vector<fs::path> wal_segments(const fs::path& checkpoint) {
  std::vector<fs::path> segments;
  for (const auto& item : fs::directory_iterator(checkpoint))
    if (item.path().filename().string().starts_with("wal-")) segments.push_back(item.path());
  std::sort(segments.begin(), segments.end());
  return segments;
}

std::vector<std::string> values_of(const std::vector<std::pair<std::string, std::int64_t>>& rows) {
  std::vector<std::string> values;
  for (const auto& row : rows) values.push_back(row.first);
  return values;
}

}  // namespace

TEST_CASE("a push source with walEnabled replays a planned, uncommitted range after a restart", "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  std::vector<std::pair<std::string, std::int64_t>> planned;
  {
    wal_source first(server, checkpoint.path(), true);
    auto end = first.send_and_plan("a\nb\nc\n", at(0), 3);
    REQUIRE(values_of(first.read(at(0), end)) == std::vector<std::string>{"a", "b", "c"});
    first.source->commit(end);
    REQUIRE(first.send_and_plan("d\ne\nfff\ngggg\n", at(3), 4) == at(7));
    planned = first.read(at(3), at(7));
    REQUIRE(values_of(planned) == std::vector<std::string>{"d", "e", "fff", "gggg"});
  }  // destroyed before the epoch committed, as in a crash

  wal_source restarted(server, checkpoint.path(), true);
  CHECK(restarted.read(at(3), at(7)) == planned);  // the same records with the same arrival times
  auto next = restarted.send_and_plan("h\n", at(7), 1);
  CHECK(next == at(8));  // numbering goes on
  CHECK(values_of(restarted.read(at(7), next)) == std::vector<std::string>{"h"});
}

TEST_CASE("committing drops write-ahead log segments, so the log stays bounded", "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  wal_source source(server, checkpoint.path(), true);
  std::string line(100, 'x');
  std::uint64_t offset = 0;
  for (int round = 0; round < 20; ++round) {
    auto end = source.send_and_plan(line + "\n" + line + "\n", at(offset), 2);
    REQUIRE(source.read(at(offset), end).size() == 2);
    source.source->commit(end);
    offset += 2;
    auto segments = wal_segments(checkpoint.path());
    REQUIRE(!segments.empty());
    REQUIRE(segments.size() <= 2);
    std::uintmax_t bytes = 0;
    for (const auto& s : segments) bytes += fs::file_size(s);
    REQUIRE(bytes < 1000);  // two rounds' records and headers, not twenty
  }
}

TEST_CASE("a torn write-ahead log tail is cut back to the last whole group, never read as data", "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  {
    wal_source first(server, checkpoint.path(), true);
    REQUIRE(first.send_and_plan("a\nb\nc\n", at(0), 3) == at(3));
  }
  auto segments = wal_segments(checkpoint.path());
  REQUIRE(segments.size() == 1);
  const auto whole = fs::file_size(segments[0]);
  {
    // A crash while the next group was written: its header and part of its records reached the disk.
    std::string content = read_file(segments[0]);
    std::ofstream out(segments[0], std::ios::app | std::ios::binary);
    out << content.substr(0, content.size() - 5);
  }
  wal_source restarted(server, checkpoint.path(), true);
  CHECK(fs::file_size(segments[0]) == whole);
  CHECK(values_of(restarted.read(at(0), at(3))) == std::vector<std::string>{"a", "b", "c"});
  auto next = restarted.send_and_plan("d\n", at(3), 1);
  CHECK(values_of(restarted.read(at(3), next)) == std::vector<std::string>{"d"});
}

TEST_CASE("a push source on a checkpoint without walEnabled replays its predecessor's ranges as empty",
          "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  {
    wal_source first(server, checkpoint.path(), false);
    REQUIRE(first.send_and_plan("a\nb\nc\n", at(0), 3) == at(3));
  }  // the records died with the process
  CHECK(wal_segments(checkpoint.path()).empty());

  wal_source restarted(server, checkpoint.path(), false);
  CHECK(restarted.source->initial_offset() == at(3));
  CHECK(restarted.read(at(0), at(3)).empty());  // never the new process's records under old offsets
  auto next = restarted.send_and_plan("x\n", at(3), 1);
  CHECK(values_of(restarted.read(at(3), next)) == std::vector<std::string>{"x"});
  // The crashed process had reported up to 3 but its epoch never reached the offset log: the restarted
  // query plans from its last commit (0), over the lost records and the new one.
  CHECK(values_of(restarted.read(at(0), next)) == std::vector<std::string>{"x"});
}

TEST_CASE("walEnabled without a checkpoint location is a clear error, a malformed value fails at once", "[push][wal]") {
  listener server;
  options opts;
  opts.set("host", "127.0.0.1");
  opts.set("port", std::to_string(server.port()));
  opts.set("walEnabled", "true");
  auto source = make_socket_source(opts);
  CHECK_THAT(error_of([&] { source->latest_offset(source->initial_offset()); }),
             Catch::Contains("walEnabled needs a checkpoint location") && Catch::Contains("checkpointLocation"));
  opts.set("walEnabled", "sometimes");
  CHECK_THAT(error_of([&] { make_socket_source(opts); }), Catch::Contains("walEnabled"));
}

TEST_CASE("walEnabled switched on continues the numbering, and switched off over a write-ahead log is refused",
          "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  {
    wal_source without(server, checkpoint.path(), false);
    REQUIRE(without.send_and_plan("a\nb\nc\n", at(0), 3) == at(3));
  }
  {
    wal_source with(server, checkpoint.path(), true);
    CHECK(with.source->initial_offset() == at(3));
    auto end = with.send_and_plan("d\n", at(3), 1);
    CHECK(values_of(with.read(at(3), end)) == std::vector<std::string>{"d"});
  }
  {
    wal_source with(server, checkpoint.path(), true);  // the log written after the switch is whole
    CHECK(values_of(with.read(at(3), at(4))) == std::vector<std::string>{"d"});
  }
  options opts;
  opts.set("host", "127.0.0.1");
  opts.set("port", std::to_string(server.port()));
  auto source = make_socket_source(opts);
  CHECK_THAT(error_of([&] { source->use_checkpoint(checkpoint.path().string()); }),
             Catch::Contains("write-ahead log of a run with walEnabled=true") && Catch::Contains("new checkpoint"));
}

TEST_CASE("damage before the end of the write-ahead log fails the restart, naming the segment", "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  {
    wal_source first(server, checkpoint.path(), true);
    first.send_and_plan("a\nb\nc\n", at(0), 3);
    first.source->commit(at(3));  // the next range starts a new segment
    first.send_and_plan("d\n", at(3), 1);
  }
  auto segments = wal_segments(checkpoint.path());
  REQUIRE(segments.size() == 2);
  std::string content = read_file(segments[0]);
  content[content.size() - 2] ^= 0x01;
  write_file(segments[0], content);
  CHECK_THAT(wal_restart_error(server, checkpoint.path()),
             Catch::Contains("segment '" + segments[0].string() + "' is damaged (checksum mismatch)") &&
                 Catch::Contains("new checkpoint location"));
}

TEST_CASE("a corrupted group with an intact one after it in the write-ahead log fails the restart, naming the file",
          "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  {
    wal_source first(server, checkpoint.path(), true);
    first.send_and_plan("a\nb\nc\n", at(0), 3);
    first.send_and_plan("d\n", at(3), 1);  // the same segment: nothing committed
  }
  auto segments = wal_segments(checkpoint.path());
  REQUIRE(segments.size() == 1);
  std::string content = read_file(segments[0]);
  content[content.find('\n') + 20] ^= 0x01;  // inside the first group's payload
  write_file(segments[0], content);
  CHECK_THAT(wal_restart_error(server, checkpoint.path()),
             Catch::Contains(segments[0].string() + "' is damaged at byte 0 (checksum mismatch)") &&
                 Catch::Contains("new checkpoint location"));
}

TEST_CASE("a write-ahead log segment as earlier builds wrote it (sealed groups back to back) is replayed",
          "[push][wal]") {
  temp_dir checkpoint;
  listener server;
  // One group: u64 first offset, u64 record count, u8 1 (arrival times follow), each record as u32 length
  // and bytes, then an i64 arrival time per record; native byte order.
  std::string group;
  auto put = [&](auto value) { group.append(reinterpret_cast<const char*>(&value), sizeof value); };
  put(std::uint64_t{0});
  put(std::uint64_t{2});
  put(std::uint8_t{1});
  for (std::string value : {"old", "wal"}) {
    put(static_cast<std::uint32_t>(value.size()));
    group += value;
  }
  put(std::int64_t{1000});
  put(std::int64_t{2000});
  write_file(checkpoint.path() / "wal-00000000000000000000", seal(group));

  wal_source restarted(server, checkpoint.path(), true);
  CHECK(restarted.read(at(0), at(2)) ==
        std::vector<std::pair<std::string, std::int64_t>>{{"old", 1000}, {"wal", 2000}});
  auto next = restarted.send_and_plan("new\n", at(2), 1);
  CHECK(values_of(restarted.read(at(2), next)) == std::vector<std::string>{"new"});
  CHECK(wal_segments(checkpoint.path()).size() == 1);  // appended to the segment it found
}
