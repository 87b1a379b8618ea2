// The http-feed source through flow::session against the real feed server process: a server killed and
// restarted mid-stream loses and duplicates nothing, trending hashtag counts match an independent count
// of the same deterministic stream (read with a plain HTTP client here), and the trending_hashtags
// example as a user runs it.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <map>
#include <sstream>
#include <thread>

#include "flow/session.hpp"
#include "feed_server.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using flow::col;
using namespace flow::test;

namespace {

// The first `count` tweet lines of the stream, read with a plain socket: one GET, the chunked body
// decoded by hand, keep-alive lines skipped.
std::vector<std::string> read_tweets_plainly(int port, const std::string& token, std::size_t count) {
  auto server = flow::test::connect_to(static_cast<std::uint16_t>(port));
  REQUIRE(server.send("GET /stream?since_id=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n\r\n"));
  std::string raw, body;
  std::vector<std::string> lines;
  std::size_t at = std::string::npos;  // where the next chunk's size line starts in raw
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (lines.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto received = server.receive(100ms);
    if (!received) break;
    raw += *received;
    if (at == std::string::npos) {
      auto end = raw.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      REQUIRE(raw.rfind("HTTP/1.1 200", 0) == 0);
      at = end + 4;
    }
    while (true) {
      auto size_end = raw.find("\r\n", at);
      if (size_end == std::string::npos) break;
      std::size_t size = std::stoul(raw.substr(at, size_end - at), nullptr, 16);
      if (raw.size() < size_end + 2 + size + 2) break;
      body += raw.substr(size_end + 2, size);
      at = size_end + 2 + size + 2;
    }
    std::size_t nl;
    while ((nl = body.find('\n')) != std::string::npos && lines.size() < count) {
      std::string line = body.substr(0, nl);
      body.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) lines.push_back(line);
    }
  }
  REQUIRE(lines.size() == count);
  return lines;
}

using window_counts = std::map<std::pair<std::string, std::string>, std::int64_t>;  // (minute start, hashtag)

// The independent count: per one-minute window of created_at and hashtag, with plain string handling.
window_counts count_hashtags(const std::vector<std::string>& lines) {
  window_counts counts;
  for (const auto& line : lines) {
    auto created = line.find("\"created_at\":\"");
    REQUIRE(created != std::string::npos);
    std::string minute = line.substr(created + 14, 16) + ":00";
    minute[10] = ' ';
    auto tags = line.find("\"hashtags\":[");
    REQUIRE(tags != std::string::npos);
    std::string list = line.substr(tags + 12, line.find(']', tags) - tags - 12);
    for (std::size_t pos = 0; (pos = list.find('"', pos)) != std::string::npos;) {
      auto close = list.find('"', pos + 1);
      ++counts[{minute, list.substr(pos + 1, close - pos - 1)}];
      pos = close + 1;
    }
  }
  return counts;
}

std::int64_t total_of(const window_counts& counts) {
  std::int64_t total = 0;
  for (const auto& [key, n] : counts) total += n;
  return total;
}

flow::schema_ptr tweet_schema() {
  return flow::make_schema({{"id", flow::type_id::int64, true},
                            {"created_at", flow::type_id::timestamp, true},
                            {"user.screen_name", flow::type_id::string, true},
                            {"hashtags", flow::type_id::string_list, true}});
}

// The server's stream in format (twitter or http-feed) as tweet_schema() rows, with the token "tok".
flow::data_frame_reader read_tweets(flow::session& session, const std::string& format, const feed_server& server) {
  auto reader = session.read_stream().format(format).schema(tweet_schema());
  reader.option("url", server.url()).option("bearerToken", "tok");
  return reader;
}

std::int64_t sql_int(flow::session& session, const std::string& query) {
  auto table = session.sql(query).collect_batch();
  return table.num_rows() == 0 || table.col(0).is_null(0) ? 0 : table.col(0).ints()[0];
}

}  // namespace

TEST_CASE("a feed server killed and restarted mid-stream: every tweet exactly once (since_id resume)", "[actors][http]") {
  const std::vector<std::string> flags{"--rate", "2000", "--count", "3000", "--token", "tok"};
  feed_server server(flags);
  flow::session session;
  auto tweets = read_tweets(session, "twitter", server)
                    .option("resumeParam", "since_id")
                    .option("networkBackoffStepMs", 50)
                    .load();
  auto query = tweets.select({col("id"), col("user.screen_name")})
                   .write_stream()
                   .format("memory")
                   .query_name("tweet_ids")
                   .output_mode("append")
                   .start();
  REQUIRE(eventually([&] { return sql_int(session, "SELECT COUNT(*) FROM tweet_ids") >= 500; }));
  server.kill();
  std::this_thread::sleep_for(200ms);  // the source sees the refused connections and backs off
  server.start(flags, server.port());
  REQUIRE(eventually([&] { return sql_int(session, "SELECT MAX(id) FROM tweet_ids") == 3000; }));
  query.process_all_available();
  CHECK(sql_int(session, "SELECT COUNT(*) FROM tweet_ids") == 3000);
  CHECK(sql_int(session, "SELECT COUNT(DISTINCT id) FROM tweet_ids") == 3000);
  CHECK(sql_int(session, "SELECT MIN(id) FROM tweet_ids") == 1);
  CHECK(sql_int(session, "SELECT COUNT(*) FROM tweet_ids WHERE `user.screen_name` LIKE 'user%'") == 3000);
  auto progress = query.recent_progress();
  std::string all = "";
  for (const auto& p : progress) all += p;
  CHECK_THAT(all, Catch::Contains("HttpFeedSource[http://127.0.0.1:"));
  CHECK_THAT(query.last_progress().value_or(""), Catch::Contains("\"connected\":1") && !Catch::Contains("\"numReconnects\":0"));
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("a refused token shows in idle progress reports and in the query status", "[actors][http][progress]") {
  feed_server server({"--rate", "2000", "--count", "200", "--token", "right"});
  flow::session_config config;
  config.no_data_progress_interval = 200ms;
  flow::session session(config);
  auto reader = session.read_stream().format("twitter").schema(tweet_schema());
  reader.option("url", server.url()).option("bearerToken", "wrong").option("httpBackoffInitialMs", 50);
  auto query = reader.load().select({col("id")}).write_stream().format("memory").query_name("refused").start();
  // No data ever comes, yet the user learns why: Spark's idle progress events and the status.
  REQUIRE(eventually([&] {
    auto last = query.last_progress();
    return last && last->find("\"authFailed\":1") != std::string::npos;
  }));
  auto last = *query.last_progress();
  CHECK_THAT(last, Catch::Contains("\"numInputRows\":0") && Catch::Contains("\"batchId\":0") &&
                       Catch::Contains("\"lastHttpStatus\":401"));
  REQUIRE(eventually([&] { return query.status().message.find("401") != std::string::npos; }));
  CHECK_THAT(query.status().message, Catch::StartsWith("Waiting for data to arrive (HttpFeedSource[") &&
                                         Catch::Contains("HTTP 401 Unauthorized"));
  // Idle reports repeat at the interval, not at every 10 ms poll: at most one per 200 ms of the window
  // (measured, since a loaded machine may sleep longer than asked).
  const auto window_start = std::chrono::steady_clock::now();
  auto reports = query.recent_progress().size();
  std::this_thread::sleep_for(1s);
  auto more = query.recent_progress().size() - reports;
  const auto window = std::chrono::steady_clock::now() - window_start;
  CHECK(more >= 2);
  CHECK(more <= static_cast<std::size_t>(window / 200ms) + 1);
  CHECK(sql_int(session, "SELECT COUNT(*) FROM refused") == 0);
  query.stop();
  CHECK_FALSE(query.exception());
}

TEST_CASE("trending hashtags per window match an independent count of the same stream", "[actors][http]") {
  feed_server server({"--count", "4000", "--seed", "42", "--token", "tok", "--malformed-every", "97"});
  auto lines = read_tweets_plainly(server.port(), "tok", 4000);
  std::vector<std::string> well_formed;
  for (auto& line : lines)
    if (line.back() == '}') well_formed.push_back(line);
  CHECK(well_formed.size() == 4000 - 4000 / 97);
  const auto expected = count_hashtags(well_formed);
  REQUIRE(expected.size() > 50);

  flow::session_config config;
  config.progress_history = 100000;  // every epoch's report: the malformed rows are summed over them
  flow::session session(config);
  auto counts = read_tweets(session, "http-feed", server)
                    .option("param.since_id", "0")
                    .load()
                    .select({col("created_at"), flow::explode(col("hashtags")).as("hashtag")})
                    .group_by({flow::window(col("created_at"), "1 minute"), col("hashtag")})
                    .count();
  auto query = counts.write_stream().format("memory").query_name("trending").output_mode("complete").start();
  window_counts actual;
  REQUIRE(eventually([&] {
    auto table = session.sql("SELECT * FROM trending").collect_batch();
    actual.clear();
    for (std::size_t r = 0; r < table.num_rows(); ++r)
      actual[{flow::format_timestamp(flow::timestamp{table.col(0).ints()[r]}), std::string(table.col(1).str(r))}] =
          table.col(2).ints()[r];
    return total_of(actual) >= total_of(expected);
  }));
  CHECK(actual == expected);
  query.stop();
  std::int64_t malformed = 0;
  for (const auto& p : query.recent_progress()) {
    auto at = p.find("\"numMalformedRows\":");
    if (at != std::string::npos) malformed += std::stoll(p.substr(at + 19));
  }
  CHECK(malformed == 4000 / 97);
  CHECK_FALSE(query.exception());
}

TEST_CASE("trending_hashtags runs against the feed server, stops on SIGTERM and writes its table", "[actors][http][example]") {
  // Counted from a second server with the same seed: the example's server is untouched before it connects.
  const std::vector<std::string> flags{"--count", "3000", "--seed", "7", "--token", "tok", "--keepalive-ms", "50"};
  window_counts expected;
  {
    feed_server reference(flags);
    expected = count_hashtags(read_tweets_plainly(reference.port(), "tok", 3000));
  }
  feed_server server(flags);
  flow::test::temp_dir dir;
  auto out = dir / "trending.csv";
  auto log = dir / "log.txt";
  child_process example(
      FLOW_TRENDING_EXAMPLE,
      {"--url", server.url(), "--token", "tok", "--window", "1 minute", "--trigger", "200ms", "--output", out.string()}, log);
  const std::string done = "hashtags counted: " + std::to_string(total_of(expected)) + "\n";
  REQUIRE(eventually([&] { return example.output().find(done) != std::string::npos; }));
  REQUIRE(example.stop(30s) == 0);
  auto text = flow::test::read_file(out);
  REQUIRE(text.rfind("window_start,window_end,hashtag,count\n", 0) == 0);
  window_counts actual;
  std::istringstream in(text.substr(text.find('\n') + 1));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    REQUIRE(f.size() == 4);
    actual[{f[0], f[2]}] = std::stoll(f[3]);
  }
  CHECK(actual == expected);
  CHECK_THAT(flow::test::read_file(log), Catch::Contains("|window") && Catch::Contains("spark"));
}
