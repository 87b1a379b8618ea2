#include "flow/connectors/durable_file.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "flow/types.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace flow::connectors;

TEST_CASE("seal and unseal give back the payload, and every kind of damage is detected", "[durable_file]") {
  const std::string payload = "{\"epoch\":7,\"offsets\":[\"{\\\"logOffset\\\":3}\"]}\nsecond line";
  const std::string sealed = seal(payload);
  std::string why;
  REQUIRE(unseal(sealed, why) == payload);
  REQUIRE(unseal(seal(""), why) == std::string());

  SECTION("truncated") {
    REQUIRE_FALSE(unseal(sealed.substr(0, sealed.size() - 3), why));
    CHECK_THAT(why, Catch::Contains("truncated"));
    REQUIRE_FALSE(unseal(sealed.substr(0, 12), why));
    CHECK_THAT(why, Catch::Contains("truncated header"));
  }
  SECTION("a flipped byte") {
    std::string damaged = sealed;
    damaged[damaged.size() - 5] ^= 0x20;
    REQUIRE_FALSE(unseal(damaged, why));
    CHECK(why == "checksum mismatch");
  }
  SECTION("bytes appended") {
    REQUIRE_FALSE(unseal(sealed + "x", why));
    CHECK_THAT(why, Catch::Contains("longer than written"));
  }
  SECTION("not sealed at all") {
    REQUIRE_FALSE(unseal(payload, why));
    CHECK_THAT(why, Catch::Contains("not a sealed file"));
    REQUIRE_FALSE(unseal("", why));
    CHECK(why == "empty file");
  }
}

TEST_CASE("the seal's checksum is CRC-32, so that files sealed by earlier builds stay readable", "[durable_file]") {
  CHECK(seal("123456789") == "FLOWSEAL1 cbf43926 9\n123456789");  // the CRC-32 check value
  const std::string large(3'000'000, '\x5a');
  std::string why;
  CHECK(unseal(seal(large), why) == large);
}

TEST_CASE("read_file and digest_file read a file of many chunks whole, digest_file with the seal's CRC-32",
          "[durable_file]") {
  flow::test::temp_dir dir;
  const std::string small = (dir.path() / "small").string(), large = (dir.path() / "large").string();
  flow::test::write_file(small, "123456789");
  const auto check_value = digest_file("test", small);
  CHECK(check_value.bytes == 9);
  CHECK(check_value.crc32 == 0xcbf43926u);  // the CRC-32 check value
  std::string content;
  for (int i = 0; i < 200'000; ++i) content += static_cast<char>('a' + i % 26);  // several 64 KiB reads
  flow::test::write_file(large, content);
  CHECK(read_file("test", large) == content);
  const auto digest = digest_file("test", large);
  CHECK(digest.bytes == content.size());
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", digest.crc32);
  CHECK_THAT(seal(content), Catch::StartsWith("FLOWSEAL1 " + std::string(crc) + " "));
  CHECK_THAT(flow::test::error_of([&] { digest_file("test", small + ".missing"); }),
             Catch::StartsWith("test: cannot read '" + small + ".missing'"));
}

TEST_CASE("write_file_atomically replaces a file whole and leaves no temporary file", "[durable_file]") {
  flow::test::temp_dir dir;
  const std::string directory = dir.path().string();
  write_file_atomically("test", directory, "entry", "first");
  write_file_atomically("test", directory, "entry", "second, longer");
  CHECK(read_file("test", directory + "/entry") == "second, longer");
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(directory)) ++files;
  CHECK(files == 1);
}

TEST_CASE("durable writes to a read-only directory fail naming the owner, the path and the OS error",
          "[durable_file]") {
  if (::geteuid() == 0) {
    // root writes through directory permissions; a read-only bind mount would need a namespace.
    WARN("skipped: running as root, so a mode 0555 directory is still writable");
    return;
  }
  flow::test::temp_dir dir;
  const fs::path locked = dir.path() / "locked";
  fs::create_directory(locked);
  ::chmod(locked.c_str(), 0555);
  CHECK_THROWS_WITH(write_file_atomically("checkpoint", locked.string(), "entry", "x"),
                    Catch::StartsWith("checkpoint: cannot create '" + locked.string() + "/.entry.tmp'") &&
                        Catch::Contains("Permission denied"));
  CHECK_THROWS_WITH(create_directories("checkpoint", (locked / "a" / "b").string()),
                    Catch::Contains("cannot create directory") && Catch::Contains("Permission denied"));
  ::chmod(locked.c_str(), 0755);
}

TEST_CASE("create_directories makes missing parents and accepts an existing directory", "[durable_file]") {
  flow::test::temp_dir dir;
  const fs::path nested = dir.path() / "a" / "b" / "c";
  create_directories("test", nested.string());
  CHECK(fs::is_directory(nested));
  create_directories("test", nested.string());
  std::ofstream(dir.path() / "file") << "x";
  CHECK_THROWS_WITH(create_directories("test", (dir.path() / "file").string()), Catch::Contains("Not a directory"));
  CHECK_THROWS_WITH(read_file("test", (dir.path() / "missing").string()),
                    Catch::StartsWith("test: cannot read") && Catch::Contains("No such file"));
}

TEST_CASE("sealed_log: appended records, synced or not, are read back in order after a reopen", "[durable_file]") {
  flow::test::temp_dir dir;
  {
    sealed_log log("checkpoint", dir.path().string(), "log");
    CHECK(log.recovered().empty());
    CHECK_FALSE(fs::exists(dir / "log"));  // created by the first append
    log.append_unsynced("first");  // written, not synced: the process ends, the page cache keeps it
    log.append(std::string("with\nnewline and \0 byte", 24));
  }
  sealed_log reopened("checkpoint", dir.path().string(), "log");
  CHECK(reopened.recovered() == std::vector<std::string>{"first", std::string("with\nnewline and \0 byte", 24)});
  reopened.append("third");
  CHECK(sealed_log("checkpoint", dir.path().string(), "log").recovered().size() == 3);
}

TEST_CASE("sealed_log: a torn last record is not read and the next append replaces it, damage before an intact "
          "record is an error",
          "[durable_file]") {
  flow::test::temp_dir dir;
  const fs::path path = dir.path() / "log";
  {
    sealed_log log("checkpoint", dir.path().string(), "log");
    log.append("one");
    log.append("two");
  }
  const std::string whole = flow::test::read_file(path);
  const std::size_t second = whole.find("FLOWSEAL1 ", 1);
  REQUIRE(second != std::string::npos);

  SECTION("torn at the end: truncated, a bad checksum, a partial header, zeros") {
    for (const std::string& torn : {whole.substr(0, whole.size() - 1), whole.substr(0, whole.size() - 2) + "X",
                                    whole.substr(0, second + 4), whole.substr(0, second) + std::string(40, '\0')}) {
      flow::test::write_file(path, torn);
      sealed_log log("checkpoint", dir.path().string(), "log");
      CHECK(log.recovered() == std::vector<std::string>{"one"});
      log.append("two");
      CHECK(flow::test::read_file(path) == whole);
    }
  }
  SECTION("damaged before an intact record") {
    std::string damaged = whole;
    damaged[second - 1] = 'X';
    flow::test::write_file(path, damaged);
    CHECK_THROWS_WITH(sealed_log("checkpoint", dir.path().string(), "log"),
                      Catch::StartsWith("checkpoint: '" + path.string() + "' is damaged at byte 0 (checksum mismatch)") &&
                          Catch::Contains("before its last record"));
  }
}

TEST_CASE("sealed_log: an append that fails (the file size limit, like a full disk) leaves the records before",
          "[durable_file]") {
  flow::test::temp_dir dir;
  sealed_log log("checkpoint", dir.path().string(), "log");
  log.append("kept");
  const auto kept_size = fs::file_size(dir / "log");
  struct rlimit before {};
  ::getrlimit(RLIMIT_FSIZE, &before);
  auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG
  struct rlimit limited = before;
  limited.rlim_cur = kept_size + 100;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  const std::string message = flow::test::error_of([&] { log.append(std::string(1000, 'x')); });
  ::setrlimit(RLIMIT_FSIZE, &before);
  std::signal(SIGXFSZ, previous_handler);
  CHECK_THAT(message, Catch::StartsWith("checkpoint: cannot write '" + (dir / "log").string() + "'") &&
                          Catch::Contains("too large"));
  CHECK(fs::file_size(dir / "log") == kept_size);  // the partial record cut off
  log.append("after");
  CHECK(sealed_log("checkpoint", dir.path().string(), "log").recovered() == std::vector<std::string>{"kept", "after"});
}

TEST_CASE("sealed_log: records appended together are durable together and read back as separate records",
          "[durable_file]") {
  flow::test::temp_dir dir;
  {
    sealed_log log("checkpoint", dir.path().string(), "log");
    log.append(std::vector<std::string>{"a", "", "c"});
    log.append("d");
    CHECK(log.size() == fs::file_size(dir / "log"));
  }
  CHECK(sealed_log("checkpoint", dir.path().string(), "log").recovered() == std::vector<std::string>{"a", "", "c", "d"});
}

TEST_CASE("scan_sealed_log: intact records, a damaged stretch up to the next intact record, a torn end",
          "[durable_file]") {
  const std::string one = seal("one"), two = seal("two"), three = seal("three");
  std::string damaged_two = two;
  damaged_two[damaged_two.size() - 1] = 'X';
  // The middle record damaged, the last cut short.
  const std::string content = one + damaged_two + three + seal("four").substr(0, 12);
  const auto records = scan_sealed_log(content);
  REQUIRE(records.size() == 4);
  CHECK((records[0].intact && records[0].payload == "one" && records[0].at == 0 && records[0].end == one.size()));
  CHECK_FALSE(records[1].intact);
  CHECK(records[1].why == "checksum mismatch");
  CHECK(records[1].payload == damaged_two);  // the raw bytes, up to the next intact record
  CHECK((records[2].intact && records[2].payload == "three" && records[2].at == one.size() + two.size()));
  CHECK_FALSE(records[3].intact);
  CHECK(records[3].end == content.size());
  CHECK(scan_sealed_log("").empty());
}

TEST_CASE("scan_sealed_log: a payload holding bytes of a whole sealed record (user data) is never read as a record "
          "of the log, when its record is damaged or torn",
          "[durable_file]") {
  const std::string one = seal("one"), three = seal("three");
  const std::string inner = seal("commits/7\n{\"epoch\":7}");
  std::string outer = seal("user data " + inner + " more user data");
  const std::size_t inner_end = outer.find(inner) + inner.size();

  SECTION("damaged in the middle: one damaged stretch, the whole record") {
    std::string damaged = outer;
    damaged[damaged.size() - 1] = 'X';
    const auto records = scan_sealed_log(one + damaged + three);
    REQUIRE(records.size() == 3);
    CHECK_FALSE(records[1].intact);
    CHECK(records[1].payload == damaged);
    CHECK((records[2].intact && records[2].payload == "three"));
  }
  SECTION("torn after the inner record: a torn append, the records before recovered") {
    const std::string torn = one + outer.substr(0, inner_end + 3);
    flow::test::temp_dir dir;
    flow::test::write_file(dir / "log", torn);
    const auto records = scan_sealed_log(torn);
    REQUIRE(records.size() == 2);
    CHECK_FALSE(records[1].intact);
    CHECK(records[1].end == one.size() + inner_end + 3);
    sealed_log log("checkpoint", dir.path().string(), "log");
    CHECK(log.recovered() == std::vector<std::string>{"one"});
  }
}
