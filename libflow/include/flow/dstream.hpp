// The DStream vocabulary of Spark Streaming 1.x/2.x over libflow's runtime, for porting such jobs:
//
//   flow::streaming_context ssc(session.context(), std::chrono::seconds(10));
//   auto words = ssc.socket_text_stream("localhost", 9999).flat_map([](const std::string& line) { ... });
//   auto counts = words.map([](const std::string& w) { return std::pair{w, std::int64_t{1}}; })
//                     .reduce_by_key_and_window(std::plus<std::int64_t>(), std::minus<std::int64_t>(),
//                                               std::chrono::seconds(30), std::chrono::seconds(10));
//   counts.print();
//   ssc.start();
//   ssc.await_termination();
//
// A dstream<T> is a topology stream (flow/topology.hpp) whose rows are elements of type T (flow/
// dstream_elements.hpp: scalars, and std::pair<K, V> for the *_by_key family). Each operation adds the
// operator flow/dstream_operators.hpp defines for it; start() runs the whole graph as one query whose
// processing-time trigger is the batch interval: each epoch is one batch. docs/dstream.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "flow/dstream_operators.hpp"
#include "flow/topology.hpp"

namespace flow {

namespace dstream_detail {

template <class T>
struct pair_types {
  static constexpr bool is_pair = false;
};
template <dstream_scalar K, dstream_scalar V>
struct pair_types<std::pair<K, V>> {
  static constexpr bool is_pair = true;
  using key = K;
  using value = V;
};

// Batch times: batch b of the query (epoch b - 1) is at zero + b * interval (ms since the Unix epoch), as
// Spark's; zero is set by streaming_context::start.
struct batch_clock {
  std::chrono::milliseconds interval;
  std::atomic<std::int64_t> zero_ms{0};
  std::int64_t batch_time(std::int64_t epoch) const { return zero_ms.load() + (epoch + 1) * interval.count(); }
};

// What the dstreams of one streaming_context share: the topology they add to and the batch clock.
struct dstream_graph {
  dstream_graph(std::shared_ptr<session_context> ctx, std::chrono::milliseconds interval);
  // A vertex name: what, then a number unique in the graph ("map-3").
  std::string vertex_name(std::string_view what);
  // A duration as a number of batches: flow::error unless it is a positive multiple of the interval.
  std::int64_t batches(std::chrono::milliseconds duration, std::string_view what) const;

  std::shared_ptr<session_context> ctx;
  topology builder;
  std::shared_ptr<batch_clock> clock;
  std::size_t vertices = 0;
  std::size_t outputs = 0;
  // Held while an output function runs: the outputs' sinks run in parallel, and Spark runs a batch's
  // outputs one at a time (spark.streaming.concurrentJobs = 1), so two print()s never interleave.
  std::shared_ptr<std::mutex> output_lock = std::make_shared<std::mutex>();
};

// Spark's DStream.print(): the time header, the first num elements, "..." when there are more, a blank line.
template <dstream_element T>
void print_batch(std::ostream& out, const std::vector<T>& items, std::int64_t time_ms, std::size_t num) {
  out << "-------------------------------------------\nTime: " << time_ms
      << " ms\n-------------------------------------------\n";
  for (std::size_t i = 0; i < items.size() && i < num; ++i) {
    dstream_codec<T>::print(out, items[i]);
    out << '\n';
  }
  if (items.size() > num) out << "...\n";
  out << '\n';
  out.flush();
}

}  // namespace dstream_detail

template <dstream_element T>
class dstream {
  using pairs = dstream_detail::pair_types<T>;

 public:
  // slide: the stream has a batch every slide batches (after a window, its slide; else 1).
  dstream(std::shared_ptr<dstream_detail::dstream_graph> graph, topology_stream stream, std::int64_t slide = 1)
      : graph_(std::move(graph)), stream_(std::move(stream)), slide_(slide) {}

  // ------------------------------------------------------------ element by element

  // f(element) -> U.
  template <class F, class U = std::invoke_result_t<F, const T&>>
  dstream<U> map(F f) const {
    return element_step<U>("map", [f = std::move(f)](const T& item, std::vector<U>& out) { out.push_back(f(item)); });
  }
  // f(element) -> a range of U (std::vector<U>).
  template <class F, class U = typename std::invoke_result_t<F, const T&>::value_type>
  dstream<U> flat_map(F f) const {
    return element_step<U>("flat_map", [f = std::move(f)](const T& item, std::vector<U>& out) {
      for (auto&& produced : f(item)) out.push_back(std::move(produced));
    });
  }
  dstream<T> filter(std::function<bool(const T&)> keep) const {
    return element_step<T>("filter", [keep = std::move(keep)](const T& item, std::vector<T>& out) {
      if (keep(item)) out.push_back(item);
    });
  }
  // The elements of both streams, batch by batch.
  dstream<T> union_with(const dstream<T>& other) const {
    if (other.graph_ != graph_)
      throw error("dstream union_with: the streams come from different streaming contexts; make both from one");
    if (other.slide_ != slide_)
      throw error("dstream union_with: the streams slide differently (" + std::to_string(slide_) + " and " +
                  std::to_string(other.slide_) + " batches); window both alike first");
    return {graph_, stream_.union_with(other.stream_), slide_};
  }

  // ------------------------------------------------------------ whole batches

  // f(the interval's elements) -> std::vector<U>, once per batch (also for an empty one), in one instance.
  template <class F, class U = typename std::invoke_result_t<F, std::vector<T>>::value_type>
  dstream<U> transform(F f) const {
    auto op = std::make_shared<dstream_interval_operator<T, U>>("transform", std::vector<std::string>{}, slide_, std::move(f));
    return {graph_, stream_.apply(graph_->vertex_name("transform"), std::move(op), 1), slide_};
  }
  // The number of elements of each batch (one element per batch).
  dstream<std::int64_t> count() const {
    return transform([](std::vector<T> items) { return std::vector<std::int64_t>{static_cast<std::int64_t>(items.size())}; });
  }
  // (element, how often it occurs in the batch).
  template <class E = T>
  dstream<std::pair<E, std::int64_t>> count_by_value() const
    requires dstream_scalar<E>
  {
    return map([](const T& item) { return std::pair<T, std::int64_t>(item, 1); })
        .reduce_by_key([](std::int64_t a, std::int64_t b) { return a + b; });
  }

  // ------------------------------------------------------------ windows (multiples of the batch interval)

  // Every slide (default: the batch interval), the elements of the batches of the last length.
  dstream<T> window(std::chrono::milliseconds length, std::optional<std::chrono::milliseconds> slide = {}) const {
    const std::int64_t new_slide = slide_batches(slide);
    auto op = std::make_shared<dstream_window_operator>(stream_.schema(), window_batches(length), new_slide);
    return {graph_, stream_.apply(graph_->vertex_name("window"), std::move(op), 1), new_slide};
  }
  // Every slide, the number of elements in the window.
  dstream<std::int64_t> count_by_window(std::chrono::milliseconds length, std::chrono::milliseconds slide) const {
    return map([](const T&) { return std::pair<std::int64_t, std::int64_t>(0, 1); })
        .reduce_by_key_and_window(std::plus<std::int64_t>(), std::minus<std::int64_t>(), length, slide)
        .map([](const std::pair<std::int64_t, std::int64_t>& counted) { return counted.second; });
  }

  // ------------------------------------------------------------ the *_by_key family (T = std::pair<K, V>)

  // Per batch: each key once, with reduce applied to its values.
  template <class R>
  dstream<T> reduce_by_key(R reduce) const
    requires pairs::is_pair
  {
    using K = typename pairs::key;
    auto reduce_batch = [reduce = std::move(reduce)](std::vector<T> items) {
      std::vector<T> out;
      std::unordered_map<K, std::size_t> slot;
      for (auto& [key, value] : items) {
        auto [at, added] = slot.try_emplace(key, out.size());
        if (added) out.emplace_back(std::move(key), std::move(value));
        else out[at->second].second = reduce(std::as_const(out[at->second].second), std::as_const(value));
      }
      return out;
    };
    auto op = std::make_shared<dstream_interval_operator<T, T>>("reduce_by_key", std::vector<std::string>{"key"}, slide_,
                                                                std::move(reduce_batch));
    return {graph_, stream_.key_by({"key"}).apply(graph_->vertex_name("reduce_by_key"), std::move(op)), slide_};
  }
  // Every slide, each key with reduce applied to its values in the window (reduced again from the
  // batches' reductions each time).
  template <class R>
  dstream<T> reduce_by_key_and_window(R reduce, std::chrono::milliseconds length,
                                      std::optional<std::chrono::milliseconds> slide = {}) const
    requires pairs::is_pair
  {
    return reduce_window<typename pairs::key, typename pairs::value>(
        {std::move(reduce), {}, {}, window_batches(length), slide_batches(slide)});
  }
  // The incremental form: the window's value is updated with reduce for the batches that enter and with
  // inverse for those that leave. A key stays in the state (and the output) until filter rejects its value,
  // as Spark's filterFunc (e.g. drop counts that return to 0).
  template <class R, class I>
  dstream<T> reduce_by_key_and_window(
      R reduce, I inverse, std::chrono::milliseconds length, std::chrono::milliseconds slide,
      std::function<bool(const T&)> filter = {}) const
    requires pairs::is_pair
  {
    return reduce_window<typename pairs::key, typename pairs::value>({std::move(reduce), std::move(inverse), std::move(filter),
                          window_batches(length), slide_batches(slide)});
  }
  // Every batch, for each key with state or new values: f(the batch's values, the state) -> the new state
  // (nullopt drops the key); emits (key, state) for every key that keeps one.
  template <dstream_scalar S, class F, class P = pairs>
  dstream<std::pair<typename P::key, S>> update_state_by_key(F f) const
    requires P::is_pair
  {
    using K = typename P::key;
    using V = typename P::value;
    auto op = std::make_shared<dstream_update_state_operator<K, V, S>>(std::move(f), slide_);
    return {graph_, stream_.key_by({"key"}).apply(graph_->vertex_name("update_state_by_key"), std::move(op)), slide_};
  }
  // Spark's mapWithState: spec.function(key, value, state) per element -> U, and once more (no value,
  // state.is_timing_out()) for a key idle longer than spec.timeout.
  template <dstream_scalar S, dstream_element U, class P = pairs>
  dstream<U> map_with_state(state_spec<typename P::key, typename P::value, S, U> spec) const
    requires P::is_pair
  {
    using K = typename P::key;
    using V = typename P::value;
    if (spec.timeout && spec.timeout->count() <= 0) throw error("map_with_state: the timeout must be positive");
    auto op = std::make_shared<dstream_map_with_state_operator<K, V, S, U>>(std::move(spec), graph_->clock->interval);
    return {graph_, stream_.key_by({"key"}).apply(graph_->vertex_name("map_with_state"), std::move(op)), slide_};
  }

  // ------------------------------------------------------------ output

  // f(the batch's elements, the batch time in ms since the Unix epoch), once per batch of this stream
  // (after a window: every slide), as Spark's foreachRDD.
  void foreach_rdd(std::function<void(const std::vector<T>&, std::int64_t)> f) const {
    auto clock = graph_->clock;
    stream_.sink("output-" + std::to_string(++graph_->outputs))
        .format("foreachBatch")
        .output_mode(output_mode::append)
        .foreach_batch([f = std::move(f), clock, lock = graph_->output_lock, slide = slide_](const batch& rows,
                                                                                            std::int64_t epoch) {
          if ((epoch + 1) % slide != 0) return;
          const auto items = dstream_codec<T>::read(rows);
          std::lock_guard<std::mutex> one_at_a_time(*lock);
          f(items, clock->batch_time(epoch));
        });
  }
  // Spark's print(): each batch's time and its first num elements, on out (which must outlive the query).
  void print(std::size_t num = 10, std::ostream& out = std::cout) const {
    foreach_rdd([num, &out](const std::vector<T>& items, std::int64_t time_ms) {
      dstream_detail::print_batch(out, items, time_ms, num);
    });
  }

  // The stream's slide in batches: it has elements at every slide-th batch only.
  std::int64_t slide() const { return slide_; }
  // The topology stream underneath (its rows: dstream_schema<T>()).
  const topology_stream& stream() const { return stream_; }

 private:
  template <dstream_element U>
  dstream<U> element_step(const char* what, typename dstream_element_operator<T, U>::function f) const {
    auto op = std::make_shared<dstream_element_operator<T, U>>(what, std::move(f));
    return {graph_, stream_.apply(graph_->vertex_name(what), std::move(op)), slide_};
  }
  // As Spark checks: a window's length and slide are multiples of this stream's slide (by default, its slide).
  std::int64_t window_batches(std::chrono::milliseconds length) const { return multiple_of_slide(length, "window length"); }
  std::int64_t slide_batches(std::optional<std::chrono::milliseconds> slide) const {
    return slide ? multiple_of_slide(*slide, "slide") : slide_;
  }
  std::int64_t multiple_of_slide(std::chrono::milliseconds duration, std::string_view what) const {
    const std::int64_t batches = graph_->batches(duration, what);
    if (batches % slide_ != 0)
      throw error("dstream: the " + std::string(what) + " (" + std::to_string(duration.count()) +
                  " ms) must be a multiple of the stream's slide (" + std::to_string(slide_ * graph_->clock->interval.count()) + " ms)");
    return batches;
  }
  template <class K, class V>
  dstream<T> reduce_window(typename dstream_reduce_window_operator<K, V>::spec s) const {
    const std::int64_t new_slide = s.slide;
    auto op = std::make_shared<dstream_reduce_window_operator<K, V>>(std::move(s));
    return {graph_, stream_.key_by({"key"}).apply(graph_->vertex_name("reduce_by_key_and_window"), std::move(op)), new_slide};
  }

  std::shared_ptr<dstream_detail::dstream_graph> graph_;
  topology_stream stream_;
  std::int64_t slide_;
};

// Spark's StreamingContext: the batch interval, the input streams, and the query that runs them.
class streaming_context {
 public:
  // ctx: the session's (session.context()).
  streaming_context(std::shared_ptr<session_context> ctx, std::chrono::milliseconds batch_interval);

  // Lines from a TCP server (Spark's socketTextStream), the socket source in client mode.
  dstream<std::string> socket_text_stream(const std::string& host, int port) const;
  // Lines of the text files that appear in a directory (Spark's textFileStream).
  dstream<std::string> text_file_stream(const std::string& directory) const;
  // Any streaming data frame whose first columns have T's types (a string column for std::string; two
  // columns, key and value, for std::pair<K, V>); flow::error naming the columns otherwise.
  template <dstream_element T>
  dstream<T> stream(const data_frame& frame) const {
    const auto fields = dstream_codec<T>::fields();
    dstream_detail::check_columns(frame.schema(), fields, "streaming_context::stream");
    std::vector<expr> renamed;
    for (std::size_t i = 0; i < fields.size(); ++i) renamed.push_back(col(frame.schema()[i].name).as(fields[i].name));
    auto source = graph_->builder.source(graph_->vertex_name("input"), frame);
    return {graph_, source.select(std::move(renamed))};
  }

  // Runs every output (foreach_rdd, print) of the dstreams made so far as one query. options.trigger
  // defaults to the batch interval, with an epoch at every tick, also when nothing arrived (as Spark's
  // batches: windows slide and timeouts pass while the input is idle). Another trigger (available-now)
  // runs the same graph: then each epoch is one batch. flow::error when no output was registered or it
  // already started.
  void start(query_options options = {});
  // The running query (flow::error before start).
  streaming_query& query();
  void await_termination() { query().await_termination(); }
  bool await_termination(std::chrono::milliseconds timeout) { return query().await_termination(timeout); }
  void stop() { query().stop(); }
  std::chrono::milliseconds batch_interval() const { return graph_->clock->interval; }

 private:
  std::shared_ptr<dstream_detail::dstream_graph> graph_;
  std::optional<streaming_query> query_;
};

}  // namespace flow
