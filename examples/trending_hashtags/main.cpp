// Trending hashtags over a Twitter-like streaming HTTP feed (Twitter's filtered stream, or the bundled
// tools/feed_server): tweets -> one row per hashtag (explode) -> counts per time window and hashtag in a
// memory table, whose top 10 is printed after every trigger.
#include <chrono>
#include <iostream>
#include <string>

#include "example_support.hpp"
#include "flow/session.hpp"

namespace {

const char* const usage =
    "usage: trending_hashtags [--url URL] [--token T] [--window \"1 minute\"] [--trigger 1s] [--track a,b]\n"
    "                         [--output FILE.csv]\n"
    "  --url URL          the stream (default http://127.0.0.1:8080/2/tweets/search/stream; start\n"
    "                     build/feed_server --port 8080 --rate 1000 --token T first, or point it elsewhere)\n"
    "  --token T          bearer token sent as Authorization: Bearer T\n"
    "  --window LENGTH    tumbling window over created_at (default \"1 minute\")\n"
    "  --trigger T        an interval such as 1s (default), fast, once, available-now\n"
    "  --track a,b        only tweets with one of these hashtags (the feed's track parameter)\n"
    "  --output FILE.csv  write the final table (window_start,window_end,hashtag,count) when stopped\n"
    "SIGINT/SIGTERM stop the query gracefully.\n";

struct arguments {
  std::string url = "http://127.0.0.1:8080/2/tweets/search/stream";
  std::string token;
  std::string window = "1 minute";
  std::string track;
  flow::examples::example_options common;  // --trigger (default: 1s), --output
};

std::chrono::milliseconds refresh_interval(const flow::trigger& t) {
  if (t.kind == flow::trigger_kind::processing_time && t.interval.count() > 0) return t.interval;
  return std::chrono::milliseconds(1000);
}

}  // namespace

int main(int argc, char** argv) {
  using flow::col;
  arguments args;
  auto cli = flow::examples::example_command_line(usage, args.common)
                 .text("--url", args.url)
                 .text("--token", args.token)
                 .text("--window", args.window)
                 .text("--track", args.track);
  return flow::examples::run_example("trending_hashtags", argc, argv, cli, [&](flow::examples::signal_stopper& stopper) {
    const flow::trigger trigger = args.common.when;
    flow::session session{argc, argv};
    auto schema = flow::make_schema({{"id", flow::type_id::string, true},
                                     {"created_at", flow::type_id::timestamp, true},
                                     {"hashtags", flow::type_id::string_list, true}});
    auto reader = session.read_stream()
                      .format("twitter")
                      .schema(schema)
                      .option("url", args.url)
                      .option("resumeParam", "since_id");
    if (!args.token.empty()) reader.option("bearerToken", args.token);
    if (!args.track.empty()) reader.option("param.track", args.track);
    auto tweets = reader.load();
    auto counts = tweets.select({col("created_at"), flow::explode(col("hashtags")).as("hashtag")})
                      .group_by({flow::window(col("created_at"), args.window), col("hashtag")})
                      .count();
    auto query = flow::examples::start_memory_table(counts, "trending", trigger, stopper);
    std::cout << "reading tweets from " << args.url << std::endl;

    const std::string top10 = "SELECT * FROM trending ORDER BY count DESC, hashtag, `window` LIMIT 10";
    auto print_top = [&] {
      auto all = session.sql("SELECT * FROM trending").collect_batch();
      std::int64_t counted = 0;
      for (std::size_t r = 0; r < all.num_rows(); ++r) counted += all.col(2).ints()[r];
      std::cout << flow::format_table(session.sql(top10).collect_batch(), 10, false)
                << "hashtags counted: " << counted << std::endl;
    };
    while (query.is_active()) {
      if (query.await_termination(refresh_interval(trigger))) break;
      print_top();
    }
    if (auto failure = query.exception()) throw flow::error(*failure);
    print_top();
    if (auto progress = query.last_progress()) std::cout << "last progress: " << *progress << "\n";
    if (!args.common.output.empty()) {
      auto result = session.sql("SELECT * FROM trending ORDER BY `window`, count DESC, hashtag").collect_batch();
      flow::examples::write_output(result, args.common.output);
    }
    return 0;
  });
}
