// The Yahoo streaming benchmark over in-memory input: events (user_id, page_id, ad_id, ad_type, event_type,
// event_time, ip_address) of 100 campaigns x 10 ads, event types view/click/purchase; keep the views, join
// ad_id -> campaign_id (a static table), count per campaign per 10 s tumbling window. libflow at parallelism
// 1 and 2 (bench::batches_source hands out the prebuilt batches, one epoch) against a hand-written
// single-threaded loop over the same column buffers in this process (issue 12 targets: parallelism 1 at
// least 0.6x the loop's throughput, parallelism 2 at least 1.7x parallelism 1). The runs take turns; the
// median of each counts. Prints one JSON line per run (wall and process CPU seconds); exits 1 when a result
// differs from the loop's, 2 on input it cannot use.
// Usage: ysb_bench [EVENTS [REPEATS]] (default: 10,000,000 events, 5 repeats)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "batches_source.hpp"
#include "bench_input.hpp"
#include "compare_runs.hpp"
#include "flow/session.hpp"

namespace {

constexpr std::int64_t campaigns = 100;
constexpr std::int64_t ads_per_campaign = 10;
constexpr std::int64_t window_micros = 10'000'000;
constexpr std::size_t rows_per_batch = 65536;
constexpr std::int64_t micros_per_event = 10;  // 100 k events per second of event time: 10 s windows fill

// (window start in micros, campaign) -> views
using counts = std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t>;

using run_figures = bench::timed_result<counts>;

flow::schema_ptr event_schema() {
  return flow::make_schema({{"user_id", flow::type_id::int64, false},
                            {"page_id", flow::type_id::int64, false},
                            {"ad_id", flow::type_id::int64, false},
                            {"ad_type", flow::type_id::string, false},
                            {"event_type", flow::type_id::string, false},
                            {"event_time", flow::type_id::timestamp, false},
                            {"ip_address", flow::type_id::int64, false}});
}

// The events, deterministic (a linear congruential generator), in batches of rows_per_batch.
std::vector<flow::batch> make_events(std::size_t events) {
  static const std::vector<std::string> ad_types = {"banner", "modal", "sponsored-search", "mail", "mobile"};
  static const std::vector<std::string> event_types = {"view", "click", "purchase"};
  std::vector<flow::batch> batches;
  std::uint64_t state = 42;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (std::size_t first = 0; first < events; first += rows_per_batch) {
    const std::size_t rows = std::min(rows_per_batch, events - first);
    flow::column_builder user(flow::type_id::int64, rows), page(flow::type_id::int64, rows),
        ad(flow::type_id::int64, rows), ad_type(flow::type_id::string, rows), event_type(flow::type_id::string, rows),
        time(flow::type_id::timestamp, rows), ip(flow::type_id::int64, rows);
    for (std::size_t i = 0; i < rows; ++i) {
      const auto r = next();
      user.append_int(static_cast<std::int64_t>(r % 1'000'000));
      page.append_int(static_cast<std::int64_t>((r >> 3) % 100'000));
      ad.append_int(static_cast<std::int64_t>((r >> 7) % (campaigns * ads_per_campaign)));
      ad_type.append_string(ad_types[(r >> 17) % ad_types.size()]);
      event_type.append_string(event_types[(r >> 19) % event_types.size()]);
      time.append_timestamp({static_cast<std::int64_t>(first + i) * micros_per_event});
      ip.append_int(static_cast<std::int64_t>(r & 0xffffffff));
    }
    batches.emplace_back(event_schema(), std::vector<flow::column>{user.finish(), page.finish(), ad.finish(), ad_type.finish(),
                                                                  event_type.finish(), time.finish(), ip.finish()});
  }
  return batches;
}

// Ad a belongs to campaign a / ads_per_campaign.
flow::batch ad_campaigns() {
  std::vector<std::int64_t> ads, owners;
  for (std::int64_t a = 0; a < campaigns * ads_per_campaign; ++a) {
    ads.push_back(a);
    owners.push_back(a / ads_per_campaign);
  }
  auto schema = flow::make_schema({{"ad_id", flow::type_id::int64, false}, {"campaign_id", flow::type_id::int64, false}});
  return flow::batch(schema, {flow::make_int_column(ads), flow::make_int_column(owners)});
}

// The hand-written loop: over the same column buffers, an array from ad to campaign, one hash map of counts.
run_figures run_hand_loop(const std::vector<flow::batch>& events) {
  const double cpu_started = bench::process_cpu_seconds();
  auto started = std::chrono::steady_clock::now();
  std::vector<std::int64_t> campaign_of(campaigns * ads_per_campaign);
  for (std::int64_t a = 0; a < campaigns * ads_per_campaign; ++a) campaign_of[a] = a / ads_per_campaign;
  std::unordered_map<std::int64_t, std::int64_t> views;  // window index * campaigns + campaign -> views
  for (const auto& b : events) {
    const auto& event_type = b.col(4);
    const std::int64_t* ads = b.col(2).ints();
    const std::int64_t* times = b.col(5).ints();
    for (std::size_t r = 0; r < b.num_rows(); ++r)
      if (event_type.str(r) == "view") ++views[times[r] / window_micros * campaigns + campaign_of[ads[r]]];
  }
  run_figures fig;
  fig.seconds = bench::seconds_since(started);
  fig.cpu_seconds = bench::process_cpu_seconds() - cpu_started;
  for (const auto& [key, count] : views) fig.result[{key / campaigns * window_micros, key % campaigns}] = count;
  return fig;
}

run_figures run_libflow(std::size_t parallelism) {
  flow::session_config config;
  config.parallelism = parallelism;
  flow::session session(config);
  auto events = session.read_stream().format("ysb-events").load();
  auto ads = session.create_data_frame({ad_campaigns()});
  auto views = events.where(flow::col("event_type") == flow::lit("view"))
                   .select({flow::col("ad_id"), flow::col("event_time")})
                   .join(ads, {"ad_id"})
                   .group_by({flow::window(flow::col("event_time"), "10 seconds"), flow::col("campaign_id")})
                   .count();
  std::mutex mutex;
  run_figures fig;
  const double cpu_started = bench::process_cpu_seconds();
  auto started = std::chrono::steady_clock::now();
  auto query = views.write_stream()
                   .output_mode("update")
                   .trigger(flow::available_now())
                   .foreach_batch([&](const flow::batch& rows, std::int64_t) {
                     std::lock_guard<std::mutex> lock(mutex);
                     for (std::size_t r = 0; r < rows.num_rows(); ++r)
                       fig.result[{rows.col(0).window(r).start.micros, rows.col(1).ints()[r]}] = rows.col(2).ints()[r];
                   })
                   .start();
  query.await_termination();
  fig.seconds = bench::seconds_since(started);
  fig.cpu_seconds = bench::process_cpu_seconds() - cpu_started;
  if (auto failure = query.exception()) throw std::runtime_error("the query failed: " + *failure);
  return fig;
}

int run_bench(int argc, char** argv) {
  const std::size_t events = argc > 1 ? bench::count_argument(argv[1], "the event count (first argument)") : 10'000'000;
  const std::size_t repeats = argc > 2 ? bench::count_argument(argv[2], "the repeat count (second argument)") : 5;
  bench::batches_source source("ysb-events", event_schema());
  source.set(make_events(events));

  counts expected;
  const auto runs = bench::compare_with_hand_loop(
      repeats, [&](std::size_t parallelism) { return parallelism == 0 ? run_hand_loop(source.batches()) : run_libflow(parallelism); }, expected);
  const double hand_seconds = bench::median(runs[0].seconds), hand_cpu_seconds = bench::median(runs[0].cpu_seconds);
  const double p1_seconds = bench::median(runs[1].seconds);
  bool ok = true;
  for (const auto& run : runs) {
    const double seconds = bench::median(run.seconds);
    ok = ok && run.matches;
    std::printf("{\"bench\":\"ysb\",\"run\":\"%s\",\"events\":%zu,\"windows_x_campaigns\":%zu,\"median_seconds\":%.4f,"
                "\"median_cpu_seconds\":%.4f,\"million_events_per_s\":%.1f,\"ratio_to_hand_loop\":%.3f,"
                "\"cpu_ratio_to_hand_loop\":%.3f,\"speedup_over_parallelism_1\":%.3f,\"matches\":%s}\n",
                run.name, events, expected.size(), seconds, bench::median(run.cpu_seconds),
                static_cast<double>(events) / seconds / 1e6, hand_seconds / seconds,
                hand_cpu_seconds / bench::median(run.cpu_seconds), p1_seconds / seconds, run.matches ? "true" : "false");
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("ysb_bench", [&] { return run_bench(argc, argv); });
}
