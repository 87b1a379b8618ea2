// A client for streaming HTTP endpoints that send newline-delimited JSON in one long chunked response
// (Twitter's filtered stream, GET /2/tweets/search/stream): formats "http-feed" and "twitter".
// Boost.Beast parses the HTTP inside the source's .cpp; no Beast type appears here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// Where the feed lives: url "http://host[:port]/path[?query]" split up. https is not supported.
struct http_feed_endpoint {
  std::string host;
  std::uint16_t port = 80;
  std::string target;  // path and query, as sent in the request line
};
// Throws flow::error saying what is wrong with the url.
http_feed_endpoint parse_http_feed_url(const std::string& url);

// Percent-encodes everything but RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~).
std::string url_encode(std::string_view text);

// Twitter's reconnect policy, every figure configurable (milliseconds).
struct http_feed_backoff {
  std::int64_t network_step = 250;         // networkBackoffStepMs: linear for TCP errors, drops, stalls
  std::int64_t network_max = 16000;        // networkBackoffMaxMs
  std::int64_t http_initial = 5000;        // httpBackoffInitialMs: exponential for HTTP errors
  std::int64_t http_max = 320000;          // httpBackoffMaxMs (also caps rate-limit waits)
  std::int64_t rate_limit_initial = 60000;  // rateLimitBackoffInitialMs: 420 and 429, doubling
};
enum class http_feed_failure { network, http, rate_limit };
// The wait before reconnecting after the attempt-th consecutive failure of that kind (attempt >= 1):
// network step * attempt up to network_max; http initial * 2^(attempt-1) up to http_max; rate limits
// rate_limit_initial * 2^(attempt-1) up to max(http_max, rate_limit_initial).
std::chrono::milliseconds http_feed_reconnect_delay(const http_feed_backoff& policy, http_feed_failure kind,
                                                    std::int64_t attempt);

// Throws flow::error naming the option when url, a backoff figure, stallTimeoutMs, connectTimeoutMs,
// maxLineBytes, maxBufferedBytes or blockBytes is missing or invalid.
void validate_http_feed_options(const flow::options& opts);

// Options: url (required), bearerToken (sent as "Authorization: Bearer <token>"), param.<name> (each
// becomes query parameter <name>, URL-encoded; names are lower-cased like every option key),
// stallTimeoutMs (90000: no byte for that long -> reconnect), connectTimeoutMs (10000), maxLineBytes
// (1 MiB: a longer line is a bad record), resumeParam (e.g. "since_id": on reconnect, send the last
// received record's resumeField as that query parameter), resumeField ("id"), the backoff figures of
// http_feed_backoff, push_source's maxBufferedBytes, blockBytes and walEnabled, and the JSON decoder's options
// (mode, columnNameOfCorruptRecord). The schema (required) maps JSON fields to columns; a dotted name
// ("user.screen_name") is a path; array<string> columns take JSON arrays of strings.
// Records are whole non-blank lines; offsets are {"offset":N}, replayable until committed (across process
// restarts with walEnabled on a checkpoint, push_source.hpp).
std::unique_ptr<flow::source_reader> make_http_feed_source(const flow::options& opts, flow::schema_ptr schema);

// The last failure an http-feed source saw ("HTTP 401 Unauthorized: {...}", "connection refused", ...),
// empty while none or for any other reader. Metrics are integers; this is where the text is.
std::string http_feed_last_error(const flow::source_reader& source);

}  // namespace flow::connectors

namespace flow {
using connectors::make_http_feed_source;
}  // namespace flow
