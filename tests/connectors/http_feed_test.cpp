// The http-feed source against the real feed server process (tools/feed_server) on 127.0.0.1: tokens,
// query parameters, keep-alive lines, stalls, drops, 429/503 answers, broken JSON; and its pure parts
// (url parsing, option checks, the reconnect policy).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "flow/connectors/http_feed.hpp"
#include "feed_server.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::connectors;
using namespace std::chrono_literals;
using namespace flow::test;

namespace {

schema_ptr tweet_schema() {
  return make_schema({{"id", type_id::int64, true},
                      {"created_at", type_id::timestamp, true},
                      {"user.screen_name", type_id::string, true},
                      {"hashtags", type_id::string_list, true}});
}

options feed_options(const feed_server& server, std::map<std::string, std::string> extra = {}) {
  options opts;
  opts.set("url", server.url());
  for (auto& [k, v] : extra) opts.set(k, v);
  return opts;
}

// Drives a source as the runtime does (latest_offset, read, decode, commit) until done() or the deadline.
struct reader {
  explicit reader(source_reader& s) : source(s), offset(s.initial_offset()) {}
  source_reader& source;
  std::string offset;
  std::vector<batch> batches;
  std::uint64_t rows = 0, malformed = 0;

  template <class Done>
  bool read_until(Done done, std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      auto end = source.latest_offset(offset);
      if (!end) {
        std::this_thread::sleep_for(2ms);
        continue;
      }
      source.begin_read(offset, *end);
      while (auto unit = source.next()) {
        decode_stats stats;
        batch b = source.chunk_decoder()->decode(std::get<raw_chunk>(*unit), stats);
        rows += b.num_rows();
        malformed += stats.malformed;
        batches.push_back(std::move(b));
      }
      source.commit(*end);
      offset = *end;
    }
    return true;
  }

  std::vector<std::int64_t> ids() const {
    std::vector<std::int64_t> out;
    for (const auto& b : batches)
      for (std::size_t r = 0; r < b.num_rows(); ++r) out.push_back(b.col(0).is_null(r) ? -1 : b.col(0).ints()[r]);
    return out;
  }
};

std::vector<std::int64_t> one_to(std::int64_t n) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

}  // namespace

TEST_CASE("http-feed url parsing, url encoding and option checks", "[http]") {
  auto e = parse_http_feed_url("http://127.0.0.1:8080/2/tweets/search/stream?tweet.fields=lang");
  CHECK(e.host == "127.0.0.1");
  CHECK(e.port == 8080);
  CHECK(e.target == "/2/tweets/search/stream?tweet.fields=lang");
  CHECK(parse_http_feed_url("http://example.org").port == 80);
  CHECK(parse_http_feed_url("http://example.org").target == "/");
  CHECK_THAT(test::error_of([] { parse_http_feed_url("https://api.twitter.com/2/tweets/search/stream"); }),
             Catch::Contains("https is not supported"));
  CHECK_THAT(test::error_of([] { parse_http_feed_url("ftp://x/"); }), Catch::Contains("must start with http://"));
  CHECK_THAT(test::error_of([] { parse_http_feed_url("http://host:99999/"); }), Catch::Contains("port must be 1..65535"));
  CHECK_THAT(test::error_of([] { parse_http_feed_url("http://:80/"); }), Catch::Contains("no host"));
  CHECK(url_encode("spark,flink #cpp~a_b.c-d") == "spark%2Cflink%20%23cpp~a_b.c-d");

  options opts;
  CHECK_THAT(test::error_of([&] { validate_http_feed_options(opts); }), Catch::Contains("option 'url' is required"));
  opts.set("url", "http://127.0.0.1:1/stream");
  opts.set("stallTimeoutMs", "soon");
  CHECK_THAT(test::error_of([&] { validate_http_feed_options(opts); }), Catch::Contains("'stallTimeoutMs' must be a whole number"));
  opts.set("stallTimeoutMs", "0");
  CHECK_THAT(test::error_of([&] { validate_http_feed_options(opts); }), Catch::Contains("'stallTimeoutMs' must be at least 1"));
  opts.set("stallTimeoutMs", "100");
  opts.set("httpBackoffMaxMs", "10");
  CHECK_THAT(test::error_of([&] { validate_http_feed_options(opts); }), Catch::Contains("httpBackoffMaxMs"));
  opts.set("httpBackoffMaxMs", "320000");
  CHECK(test::error_of([&] { validate_http_feed_options(opts); }) == "<no error>");
  CHECK_THAT(test::error_of([&] { make_http_feed_source(opts, nullptr); }), Catch::Contains("a schema is required"));
}

TEST_CASE("the reconnect policy: linear for network errors, exponential for HTTP errors and rate limits", "[http]") {
  http_feed_backoff twitter;
  using ms = std::chrono::milliseconds;
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::network, 1) == ms(250));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::network, 2) == ms(500));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::network, 64) == ms(16000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::network, 1000) == ms(16000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::http, 1) == ms(5000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::http, 2) == ms(10000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::http, 7) == ms(320000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::http, 100) == ms(320000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::rate_limit, 1) == ms(60000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::rate_limit, 3) == ms(240000));
  CHECK(http_feed_reconnect_delay(twitter, http_feed_failure::rate_limit, 9) == ms(320000));
}

TEST_CASE("http-feed reads tweets with a bearer token, query parameters and keep-alive lines", "[http]") {
  feed_server server({"--token", "s3cret", "--count", "400", "--rate", "4000", "--keepalive-ms", "5"});
  auto all = make_http_feed_source(feed_options(server, {{"bearerToken", "s3cret"}}), tweet_schema());
  reader everything(*all);
  REQUIRE(everything.read_until([&] { return everything.rows >= 400; }));
  CHECK(everything.ids() == one_to(400));
  CHECK(everything.malformed == 0);
  CHECK(settled_metric(*all, "numRecordsReceived", 400) == 400);
  CHECK(metric(all->metrics(), "connected") == 1);
  CHECK(metric(all->metrics(), "lastHttpStatus") == 200);
  std::set<std::int64_t> expected;  // the tweets tagged spark or flink, from the unfiltered read
  for (const auto& b : everything.batches) {
    for (std::size_t r = 0; r < b.num_rows(); ++r) {
      CHECK(b.col(2).str(r) == "user" + std::to_string(std::stoi(std::string(b.col(2).str(r)).substr(4))));
      for (std::size_t j = 0; j < b.col(3).list_size(r); ++j)
        if (b.col(3).list_item(r, j) == "spark" || b.col(3).list_item(r, j) == "flink") expected.insert(b.col(0).ints()[r]);
    }
  }
  REQUIRE(expected.size() > 50);

  auto filtered = make_http_feed_source(
      feed_options(server, {{"bearerToken", "s3cret"}, {"param.track", "spark,flink"}, {"param.since_id", "0"}}),
      tweet_schema());
  reader tracked(*filtered);
  REQUIRE(tracked.read_until([&] { return tracked.rows >= expected.size(); }));
  std::this_thread::sleep_for(100ms);  // keep-alives keep coming; none of them may become a record
  tracked.read_until([] { return true; });
  auto ids = tracked.ids();
  CHECK(std::set<std::int64_t>(ids.begin(), ids.end()) == expected);
  CHECK(ids.size() == expected.size());
  CHECK(settled_metric(*filtered, "numRecordsReceived", static_cast<std::int64_t>(expected.size())) ==
        static_cast<std::int64_t>(expected.size()));
  CHECK(metric(filtered->metrics(), "numBadRecords") == 0);
  filtered->stop();
  all->stop();
}

TEST_CASE("http-feed keeps retrying a refused token with HTTP backoff and reports it", "[http]") {
  feed_server server({"--token", "right", "--count", "10"});
  auto source = make_http_feed_source(
      feed_options(server, {{"bearerToken", "wrong"}, {"httpBackoffInitialMs", "20"}, {"httpBackoffMaxMs", "40"}}),
      tweet_schema());
  reader r(*source);
  REQUIRE(r.read_until([&] { return metric(source->metrics(), "numAuthFailures") >= 3; }, 10s));
  CHECK(r.rows == 0);
  CHECK(metric(source->metrics(), "authFailed") == 1);
  CHECK(metric(source->metrics(), "lastHttpStatus") == 401);
  CHECK(metric(source->metrics(), "connected") == 0);
  CHECK_THAT(http_feed_last_error(*source), Catch::Contains("HTTP 401 Unauthorized") && Catch::Contains("\"title\""));
  auto before = std::chrono::steady_clock::now();
  source->stop();
  CHECK(std::chrono::steady_clock::now() - before < 1s);
}

TEST_CASE("http-feed detects a stalled stream and reconnects", "[http]") {
  feed_server server({"--count", "200", "--stall-after", "60"});
  auto source = make_http_feed_source(feed_options(server, {{"stallTimeoutMs", "200"}, {"networkBackoffStepMs", "10"}}),
                                      tweet_schema());
  reader r(*source);
  REQUIRE(r.read_until([&] { return r.rows >= 200; }));
  CHECK(r.ids() == one_to(200));
  CHECK(metric(source->metrics(), "numStalls") >= 3);
  CHECK(metric(source->metrics(), "numReconnects") >= 3);
  CHECK_THAT(http_feed_last_error(*source), Catch::Contains("stalled"));
}

TEST_CASE("http-feed reconnects after drops, backing off linearly while the server is gone", "[http]") {
  feed_server server({"--count", "200", "--drop-after", "50"});
  auto source = make_http_feed_source(feed_options(server, {{"networkBackoffStepMs", "50"}}), tweet_schema());
  reader r(*source);
  auto started = std::chrono::steady_clock::now();
  REQUIRE(r.read_until([&] { return r.rows >= 200; }));
  // Three drops, each after data: the failure count restarts, so each wait is one step.
  CHECK(std::chrono::steady_clock::now() - started >= 150ms);
  CHECK(r.ids() == one_to(200));
  CHECK(metric(source->metrics(), "numReconnects") >= 3);

  // With the server gone every attempt fails: waits of 50, 100, 150, 200, 250 ms. The first wait may have
  // begun before the kill (after the last drop), so 5 attempts take >= 750 - 50 ms after it: over 500 ms.
  const auto reconnects_before = metric(source->metrics(), "numReconnects");
  auto gone = std::chrono::steady_clock::now();
  server.kill();
  REQUIRE(r.read_until([&] { return metric(source->metrics(), "numReconnects") >= reconnects_before + 5; }, 10s));
  CHECK(std::chrono::steady_clock::now() - gone >= 500ms);
  CHECK(metric(source->metrics(), "connected") == 0);
  CHECK_THAT(http_feed_last_error(*source), Catch::Contains("connect"));
  auto before = std::chrono::steady_clock::now();
  source->stop();
  CHECK(std::chrono::steady_clock::now() - before < 1s);
}

TEST_CASE("http-feed backs off exponentially on 429 and 503", "[http]") {
  // Reads the 30 tweets of a server whose first `times` answers are HTTP `status`, with `backoff` set to
  // initial_ms; every tweet arrives once, after at least `waited`.
  auto read_behind = [](const std::string& status, const std::string& times, const std::string& backoff,
                        const std::string& initial_ms, std::chrono::milliseconds waited) {
    feed_server server({"--count", "30", "--status", status, "--status-count", times});
    auto source = make_http_feed_source(feed_options(server, {{backoff, initial_ms}}), tweet_schema());
    reader r(*source);
    auto started = std::chrono::steady_clock::now();
    REQUIRE(r.read_until([&] { return r.rows >= 30; }));
    CHECK(std::chrono::steady_clock::now() - started >= waited);
    CHECK(r.ids() == one_to(30));
    return source->metrics();
  };
  SECTION("429 Too Many Requests") {
    auto metrics = read_behind("429", "3", "rateLimitBackoffInitialMs", "100", 700ms);  // 100 + 200 + 400
    CHECK(metric(metrics, "numHttp429") == 3);
    CHECK(metric(metrics, "numHttp5xx") == 0);
  }
  SECTION("503 Service Unavailable") {
    auto metrics = read_behind("503", "2", "httpBackoffInitialMs", "150", 450ms);  // 150 + 300
    CHECK(metric(metrics, "numHttp5xx") == 2);
    CHECK(metric(metrics, "numHttpErrors") == 2);
    CHECK(metric(metrics, "lastHttpStatus") == 200);
  }
}

TEST_CASE("http-feed counts broken JSON lines as malformed records", "[http]") {
  feed_server server({"--count", "100", "--malformed-every", "10"});
  SECTION("PERMISSIVE keeps them as null rows") {
    auto source = make_http_feed_source(feed_options(server), tweet_schema());
    reader r(*source);
    REQUIRE(r.read_until([&] { return r.rows >= 100; }));
    CHECK(r.malformed == 10);
    auto ids = r.ids();
    CHECK(std::count(ids.begin(), ids.end(), -1) == 10);
  }
  SECTION("DROPMALFORMED drops them") {
    auto source = make_http_feed_source(feed_options(server, {{"mode", "DROPMALFORMED"}, {"param.since_id", "0"}}),
                                        tweet_schema());
    reader r(*source);
    REQUIRE(r.read_until([&] { return r.rows + r.malformed >= 100; }));
    CHECK(r.malformed == 10);
    CHECK(r.rows == 90);
  }
}

TEST_CASE("http-feed stops promptly while a connection is open and idle", "[http]") {
  feed_server server({"--count", "5"});
  auto source = make_http_feed_source(feed_options(server), tweet_schema());
  reader r(*source);
  REQUIRE(r.read_until([&] { return r.rows >= 5; }));
  auto before = std::chrono::steady_clock::now();
  source->stop();
  CHECK(std::chrono::steady_clock::now() - before < 1s);
  CHECK(r.ids() == one_to(5));
}

TEST_CASE("http-feed with walEnabled resumes after a restart where its write-ahead log ends", "[http][wal]") {
  feed_server server({"--count", "200", "--rate", "400"});
  temp_dir checkpoint;
  auto opts = feed_options(server, {{"walEnabled", "true"}, {"resumeParam", "since_id"}, {"param.since_id", "0"}});
  std::string last_offset;
  std::vector<std::int64_t> ids;
  {
    auto source = make_http_feed_source(opts, tweet_schema());
    source->use_checkpoint(checkpoint.path().string());
    reader first(*source);
    REQUIRE(first.read_until([&] { return first.rows >= 50; }));
    REQUIRE(first.rows < 200);  // the restart has tweets left to fetch
    ids = first.ids();
    last_offset = first.offset;
  }  // killed: what it received after its last plan is lost, the feed must resend it
  auto source = make_http_feed_source(opts, tweet_schema());
  source->use_checkpoint(checkpoint.path().string());
  reader second(*source);
  second.offset = last_offset;
  REQUIRE(second.read_until([&] { return ids.size() + second.rows >= 200; }));
  std::this_thread::sleep_for(100ms);
  second.read_until([] { return true; });
  for (auto id : second.ids()) ids.push_back(id);
  CHECK(ids == one_to(200));  // every tweet once: nothing re-sent from 0, nothing skipped
  source->stop();
}
