// A stand-in for Twitter's filtered stream (GET /2/tweets/search/stream): a chunked HTTP response of
// newline-delimited synthetic tweets, deterministic for a seed, with flags that inject the faults a
// streaming client must survive (drops, stalls, 429/503 answers, broken JSON, keep-alive lines).
// Tweet i is a pure function of (seed, i), so a client resuming with since_id gets exactly the tweets
// after the last one it saw, even from a restarted server.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../../examples/common/command_line.hpp"

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

struct settings {
  std::string host = "127.0.0.1";
  long long port = 0;
  long long rate = 0;  // tweets per second, 0 = as fast as possible
  std::string token;
  long long count = 0;  // 0 = endless
  std::uint64_t seed = 1;
  long long drop_after = 0;
  long long status = 0;
  long long status_count = 1;
  long long malformed_every = 0;
  long long stall_after = 0;
  long long keepalive_ms = 0;
};

const char* const usage =
    "usage: feed_server --port P --rate N --token T [--count N] [--seed S] [--host H]\n"
    "                   [--drop-after N] [--status 429|503 [--status-count K]] [--malformed-every N]\n"
    "                   [--stall-after N] [--keepalive-ms M]\n"
    "  --port P             port to listen on (0 = a free one); prints \"listening on PORT\"\n"
    "  --rate N             tweets per second per connection (0 = as fast as possible)\n"
    "  --token T            bearer token clients must send (empty: no check)\n"
    "  --count N            the stream holds tweets 1..N, then stays open and idle\n"
    "  --seed S             generator seed (default 1): same seed, same tweets\n"
    "  --drop-after N       close each connection abruptly after N tweets\n"
    "  --status C           answer HTTP status C to the first K authorised requests (--status-count K, default 1)\n"
    "  --malformed-every N  tweets whose id is a multiple of N are sent as broken JSON\n"
    "  --stall-after N      after N tweets a connection goes silent but stays open\n"
    "  --keepalive-ms M     send a blank line after M ms without a tweet\n"
    "Serves /2/tweets/search/stream and /stream; query parameters: track=a,b (hashtag filter), since_id=N.\n";

flow::cli::command_line command_line_of(settings& s) {
  flow::cli::command_line line(usage);
  line.text("--host", s.host).text("--token", s.token).number("--port", s.port, 0, 65535).number("--seed", s.seed, 0);
  for (auto [flag, target] : {std::pair{"--rate", &s.rate}, {"--count", &s.count}, {"--drop-after", &s.drop_after},
                              {"--status-count", &s.status_count}, {"--malformed-every", &s.malformed_every},
                              {"--stall-after", &s.stall_after}, {"--keepalive-ms", &s.keepalive_ms}})
    line.number(flag, *target, 0);
  line.value("--status", [&s](const std::string& text) {
    s.status = flow::cli::command_line::parse_number("--status", text, 0, 599);
    if (s.status != 0 && s.status < 100) throw flow::cli::usage_error("--status must be an HTTP status, got " + text);
  });
  return line;
}

// ---------------------------------------------------------------- the generator

const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w{"spark",  "flink",   "kafka",   "cpp",     "rust",    "streaming", "bigdata",
                               "actors", "caf",     "dataeng", "sql",     "python",  "java",      "scala",
                               "cloud",  "kubernetes", "linux", "opensource", "ai",  "ml"};
    for (int i = static_cast<int>(w.size()) + 1; i <= 50; ++i) w.push_back("tag" + std::to_string(i));
    return w;
  }();
  return words;
}

// Zipf (s = 1.1) over the vocabulary: the cumulative weights.
const std::vector<double>& zipf_cdf() {
  static const std::vector<double> cdf = [] {
    std::vector<double> c;
    double total = 0;
    for (std::size_t k = 1; k <= vocabulary().size(); ++k) c.push_back(total += 1.0 / std::pow(static_cast<double>(k), 1.1));
    for (auto& v : c) v /= total;
    return c;
  }();
  return cdf;
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct tweet {
  std::uint64_t id = 0;
  std::vector<const std::string*> hashtags;
  std::string line;  // the JSON object, no newline
};

// Tweet `id` of the stream for `seed`: created 20 ms after its predecessor, from 2024-01-01T00:00:00.
tweet make_tweet(std::uint64_t seed, std::uint64_t id) {
  static const char* langs[] = {"en", "en", "en", "es", "de", "fr", "ja"};
  std::uint64_t state = seed * 0xD1B54A32D192ED03ull ^ id;
  tweet t;
  t.id = id;
  const std::size_t tags = splitmix64(state) % 4;
  for (std::size_t i = 0; i < tags; ++i) {
    double u = static_cast<double>(splitmix64(state) >> 11) / 9007199254740992.0;
    auto at = std::lower_bound(zipf_cdf().begin(), zipf_cdf().end(), u) - zipf_cdf().begin();
    const std::string* word = &vocabulary()[std::min<std::size_t>(static_cast<std::size_t>(at), vocabulary().size() - 1)];
    if (std::find(t.hashtags.begin(), t.hashtags.end(), word) == t.hashtags.end()) t.hashtags.push_back(word);
  }
  const std::uint64_t user = 1 + splitmix64(state) % 1000;
  const char* lang = langs[splitmix64(state) % std::size(langs)];
  const std::uint64_t millis = id * 20;
  const std::uint64_t seconds = millis / 1000;
  char created[40];
  std::snprintf(created, sizeof created, "2024-01-%02llu %02llu:%02llu:%02llu.%03llu",
                static_cast<unsigned long long>(1 + seconds / 86400 % 28), static_cast<unsigned long long>(seconds / 3600 % 24),
                static_cast<unsigned long long>(seconds / 60 % 60), static_cast<unsigned long long>(seconds % 60),
                static_cast<unsigned long long>(millis % 1000));
  created[10] = 'T';
  std::string text = "tweet " + std::to_string(id) + " from user" + std::to_string(user);
  std::string tag_array;
  for (const auto* tag : t.hashtags) {
    text += " #" + *tag;
    tag_array += (tag_array.empty() ? "\"" : ",\"") + *tag + "\"";
  }
  t.line = "{\"id\":" + std::to_string(id) + ",\"created_at\":\"" + created + "\",\"user\":{\"id\":" +
           std::to_string(user) + ",\"screen_name\":\"user" + std::to_string(user) + "\"},\"lang\":\"" + lang +
           "\",\"text\":\"" + text + "\",\"hashtags\":[" + tag_array + "]}";
  return t;
}

// ---------------------------------------------------------------- serving

settings config;
std::atomic<std::uint64_t> stream_position{1};  // the id after the highest one sent on any connection
std::atomic<long long> authorised_requests{0};

std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
        throw std::invalid_argument("bad percent-encoding");
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

struct stream_request {
  std::string path;
  std::set<std::string> track;
  std::uint64_t since_id = 0;
  bool has_since_id = false;
};

stream_request parse_target(std::string_view target) {
  stream_request r;
  auto q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return r;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    std::string name = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    if (name == "track") {
      for (std::size_t start = 0; start <= value.size();) {
        auto comma = std::min(value.find(',', start), value.size());
        if (comma > start) r.track.insert(value.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (name == "since_id") {
      r.since_id = std::stoull(value);
      r.has_since_id = true;
    }
  }
  return r;
}

void send_error(tcp::socket& socket, http::status status, const std::string& title) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = "{\"title\":\"" + title + "\",\"status\":" + std::to_string(static_cast<int>(status)) + "}\n";
  res.prepare_payload();
  boost::system::error_code ec;
  http::write(socket, res, ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
}

// Whether the client closed its side (it never sends anything after the request).
bool peer_closed(tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

void write_chunk(tcp::socket& socket, const std::string& data, boost::system::error_code& ec) {
  net::write(socket, http::make_chunk(net::buffer(data)), ec);
}

void serve_stream(tcp::socket& socket, const stream_request& request) {
  http::response<http::empty_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "application/json");
  res.chunked(true);
  http::response_serializer<http::empty_body> serializer{res};
  boost::system::error_code ec;
  http::write_header(socket, serializer, ec);
  if (ec) return;

  std::uint64_t next_id = request.has_since_id ? request.since_id + 1 : stream_position.load();
  long long sent_here = 0;
  const auto started = std::chrono::steady_clock::now();
  auto last_send = started;
  std::string chunk;
  const std::size_t chunk_bytes = 64 << 10;
  while (true) {
    const bool exhausted = config.count > 0 && next_id > static_cast<std::uint64_t>(config.count);
    const bool stalled = config.stall_after > 0 && sent_here >= config.stall_after;
    long long due = std::numeric_limits<long long>::max();
    if (config.rate > 0) {
      auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      due = static_cast<long long>(elapsed * static_cast<double>(config.rate)) + 1 - sent_here;
    }
    chunk.clear();
    while (!exhausted && !stalled && due > 0 && chunk.size() < chunk_bytes &&
           (config.count == 0 || next_id <= static_cast<std::uint64_t>(config.count)) &&
           (config.drop_after == 0 || sent_here < config.drop_after) &&
           (config.stall_after == 0 || sent_here < config.stall_after)) {
      tweet t = make_tweet(config.seed, next_id++);
      bool wanted = request.track.empty() ||
                    std::any_of(t.hashtags.begin(), t.hashtags.end(), [&](const std::string* tag) { return request.track.count(*tag) > 0; });
      if (!wanted) continue;
      if (config.malformed_every > 0 && t.id % static_cast<std::uint64_t>(config.malformed_every) == 0)
        t.line.resize(t.line.size() / 2);
      chunk += t.line;
      chunk += "\r\n";
      ++sent_here;
      --due;
    }
    std::uint64_t seen = stream_position.load();
    while (seen < next_id && !stream_position.compare_exchange_weak(seen, next_id)) {
    }
    const auto now = std::chrono::steady_clock::now();
    if (!chunk.empty()) {
      write_chunk(socket, chunk, ec);
      if (ec) return;
      last_send = now;
    } else if (config.keepalive_ms > 0 && !stalled && now - last_send >= std::chrono::milliseconds(config.keepalive_ms)) {
      write_chunk(socket, "\r\n", ec);
      if (ec) return;
      last_send = now;
    }
    if (config.drop_after > 0 && sent_here >= config.drop_after) {
      socket.close(ec);  // abruptly: no last chunk
      return;
    }
    if (chunk.empty()) {
      if (peer_closed(socket)) return;
      std::this_thread::sleep_for(config.rate > 0 && !exhausted && !stalled ? 2ms : 20ms);
    }
  }
}

void handle(tcp::socket socket) {
  boost::beast::flat_buffer buffer;
  http::request<http::string_body> req;
  boost::system::error_code ec;
  http::read(socket, buffer, req, ec);
  if (ec) return;
  stream_request request;
  try {
    request = parse_target(std::string_view(req.target().data(), req.target().size()));
  } catch (const std::exception&) {
    return send_error(socket, http::status::bad_request, "Invalid Request");
  }
  if (request.path != "/2/tweets/search/stream" && request.path != "/stream")
    return send_error(socket, http::status::not_found, "Not Found");
  if (!config.token.empty() && req[http::field::authorization] != "Bearer " + config.token)
    return send_error(socket, http::status::unauthorized, "Unauthorized");
  if (config.status != 0 && ++authorised_requests <= config.status_count)
    return send_error(socket, static_cast<http::status>(config.status),
                      config.status == 429 ? "Too Many Requests" : "Service Unavailable");
  serve_stream(socket, request);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return flow::cli::run_main("feed_server", argc, argv, command_line_of(config), [] {
    net::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address(config.host), static_cast<unsigned short>(config.port)));
    std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;
    while (true) {
      tcp::socket socket(io);
      boost::system::error_code ec;
      acceptor.accept(socket, ec);
      if (ec) continue;
      socket.set_option(tcp::no_delay(true), ec);
      std::thread(handle, std::move(socket)).detach();
    }
    return 0;
  });
}
