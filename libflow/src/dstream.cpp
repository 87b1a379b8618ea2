// The streaming context and the graph its dstreams share (flow/dstream.hpp).
#include "flow/dstream.hpp"

namespace flow {

namespace dstream_detail {

dstream_graph::dstream_graph(std::shared_ptr<session_context> context, std::chrono::milliseconds interval)
    : ctx(std::move(context)), builder(ctx), clock(std::make_shared<batch_clock>()) {
  if (interval.count() <= 0)
    throw error("streaming_context: the batch interval must be positive (got " + std::to_string(interval.count()) + " ms)");
  clock->interval = interval;
}

std::string dstream_graph::vertex_name(std::string_view what) {
  return std::string(what) + "-" + std::to_string(++vertices);
}

std::int64_t dstream_graph::batches(std::chrono::milliseconds duration, std::string_view what) const {
  const auto interval = clock->interval.count();
  if (duration.count() <= 0 || duration.count() % interval != 0)
    throw error("dstream: the " + std::string(what) + " (" + std::to_string(duration.count()) +
                " ms) must be a positive multiple of the batch interval (" + std::to_string(interval) + " ms)");
  return duration.count() / interval;
}

}  // namespace dstream_detail

streaming_context::streaming_context(std::shared_ptr<session_context> ctx, std::chrono::milliseconds batch_interval)
    : graph_(std::make_shared<dstream_detail::dstream_graph>(std::move(ctx), batch_interval)) {}

dstream<std::string> streaming_context::socket_text_stream(const std::string& host, int port) const {
  return stream<std::string>(
      data_frame_reader(graph_->ctx, true).format("socket").option("host", host).option("port", port).load());
}

dstream<std::string> streaming_context::text_file_stream(const std::string& directory) const {
  return stream<std::string>(data_frame_reader(graph_->ctx, true).format("text").load(directory));
}

void streaming_context::start(query_options options) {
  if (query_) throw error("streaming_context::start: the context already started; make another one for another query");
  if (graph_->outputs == 0)
    throw error("streaming_context::start: no output operations registered, so nothing to execute (add print() or "
                "foreach_rdd() to a dstream first)");
  if (options.trigger.kind == trigger_kind::as_fast_as_possible) options.trigger = processing_time(batch_interval());
  options.epoch_every_tick = true;
  // Spark's batch times are multiples of the interval: batch 1 is at the first multiple after the start.
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  graph_->clock->zero_ms = now / batch_interval().count() * batch_interval().count();
  query_ = graph_->builder.start(options);
}

streaming_query& streaming_context::query() {
  if (!query_) throw error("streaming_context: the query has not started; call start() first");
  return *query_;
}

}  // namespace flow
