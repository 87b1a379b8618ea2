// The user-facing API, in Spark's vocabulary: readers, data frames, grouped data, stream writers,
// triggers and the query handle. It builds logical plans; running them is the runtime's job, reached
// through session_context (implemented by flow::session in the actors layer).
#pragma once

#include <chrono>
#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/graph.hpp"
#include "flow/trigger.hpp"

namespace flow {

// ---------------------------------------------------------------- query handle

struct query_status {
  std::string message;         // "Waiting for data to arrive", "Processing new data", "Stopped"
  bool is_data_available = false;
  bool is_trigger_active = false;
};

// The runtime's side of a running query; streaming_query forwards to it.
class query_control {
 public:
  virtual ~query_control() = default;
  virtual std::string id() const = 0;
  virtual std::string run_id() const = 0;
  virtual std::string name() const = 0;
  virtual bool is_active() const = 0;
  virtual query_status status() const = 0;
  virtual std::optional<std::string> last_progress() const = 0;
  virtual std::vector<std::string> recent_progress() const = 0;
  virtual std::optional<std::string> exception() const = 0;
  virtual void stop() = 0;
  // True when the query ended within the timeout (nullopt: wait forever).
  virtual bool await_termination(std::optional<std::chrono::milliseconds> timeout) = 0;
  virtual void process_all_available() = 0;
};

class streaming_query {
 public:
  explicit streaming_query(std::shared_ptr<query_control> control) : control_(std::move(control)) {}
  std::string id() const { return control_->id(); }
  std::string run_id() const { return control_->run_id(); }
  std::string name() const { return control_->name(); }
  bool is_active() const { return control_->is_active(); }
  query_status status() const { return control_->status(); }
  // Spark's StreamingQueryProgress as JSON, same field names.
  std::optional<std::string> last_progress() const { return control_->last_progress(); }
  std::vector<std::string> recent_progress() const { return control_->recent_progress(); }
  std::optional<std::string> exception() const { return control_->exception(); }
  // Stops after the running epoch finishes; the sinks flush.
  void stop() { control_->stop(); }
  // Waits for the end of the query; throws flow::error with the query's exception if it failed.
  void await_termination() { await_termination_for(std::nullopt); }
  bool await_termination(std::chrono::milliseconds timeout) { return await_termination_for(timeout); }
  // Blocks until everything available at the call has been processed and committed.
  void process_all_available() { control_->process_all_available(); }

 private:
  bool await_termination_for(std::optional<std::chrono::milliseconds> timeout);
  std::shared_ptr<query_control> control_;
};

// ---------------------------------------------------------------- session context

// What a query needs besides its graph.
struct query_options {
  std::string name;     // unique among the session's active queries; empty: none
  flow::trigger trigger;
  // Where the query keeps its durable checkpoint (docs/fault-tolerance.md); a query started again on the
  // same location continues where it stopped. Empty: the session's default (session_config), else none.
  std::string checkpoint_location{};
  // Where operators keep their state: "memory" or "rocksdb" (docs/fault-tolerance.md, State backends).
  // Empty: the session's default (session_config::state_backend).
  std::string state_backend{};
  // Processing-time trigger: an epoch at every tick, also when no source has new data (a DStream's batch
  // per interval: its windows slide and its timeouts pass while nothing arrives).
  bool epoch_every_tick = false;
};

class session_context {
 public:
  virtual ~session_context() = default;
  // Fills in scan.schema (inferring it when asked) and checks the source exists.
  virtual void resolve_scan(scan_spec& scan) = 0;
  // Runs a static plan to completion and returns its result.
  virtual std::vector<batch> execute(const plan_ptr& plan) = 0;
  virtual std::size_t input_partitions(const scan_spec& scan) = 0;
  virtual std::shared_ptr<query_control> start_stream(const plan_ptr& plan, const sink_spec& sink) = 0;
  // Runs a dataflow graph (the topology builder's) as one query with the graph's sinks.
  virtual std::shared_ptr<query_control> start_graph(dataflow_graph graph, const query_options& options) = 0;
  virtual batch sql(const std::string& query) = 0;
};

// ---------------------------------------------------------------- data frames

class data_stream_writer;
class grouped_data;
class keyed_groups;

// An immutable query description. Transformations return new frames; actions (count, collect, show)
// run static frames; streaming frames start with write_stream().
class data_frame {
 public:
  data_frame(std::shared_ptr<session_context> ctx, plan_ptr plan) : ctx_(std::move(ctx)), plan_(std::move(plan)) {}

  const flow::schema& schema() const { return *plan_->output; }
  const plan_ptr& plan() const { return plan_; }
  bool is_streaming() const { return flow::is_streaming(*plan_); }
  std::string explain() const { return flow::explain(*plan_); }

  data_frame select(std::vector<expr> exprs) const;
  data_frame select(const std::vector<std::string>& columns) const;
  data_frame where(expr predicate) const;
  data_frame filter(expr predicate) const { return where(std::move(predicate)); }
  data_frame with_column(const std::string& name, expr e) const;
  // Applies fn to every batch in parallel stage instances (Spark's mapPartitions, per batch).
  data_frame map_batches(batch_function fn, schema_ptr output = nullptr, std::string name = {}) const;
  // No keys: one group of every row (Spark's global aggregation, groupBy().agg(...)).
  grouped_data group_by(std::vector<expr> keys) const;
  // Spark's withWatermark: column (a timestamp) is this stream's event time, and rows may arrive up to
  // delay ("10 minutes") late. Stateful operators above it drop rows older than the watermark and evict
  // state behind it; windowed aggregations may then run in append mode (docs/event-time-and-state.md).
  data_frame with_watermark(const std::string& column, std::string_view delay) const;
  // Spark's df.agg(...): the global aggregation, group_by({}).agg(aggs).
  data_frame agg(std::vector<agg_spec> aggs) const;
  // Spark's join(other, Seq(on...), type) with other a static frame, read here once (docs/joins-and-dedup.md):
  // the key columns once, then this frame's other columns, then other's. type: "inner", "left_outer",
  // "left_semi", "left_anti" (Spark's other spellings too); with a streaming frame on the left, right_outer
  // and full_outer are refused with Spark's message. Both streaming: a stream-stream join (inner only
  // here, as outer joins need a time range: flow/stream_join.hpp).
  data_frame join(const data_frame& other, std::vector<std::string> on, std::string_view type = "inner") const;
  // Spark's join(other, condition, type): on a boolean condition over the columns of both frames (which must
  // have no column name in common), tried for every pair of rows; the columns of this frame, then other's.
  // Both streaming: a stream-stream join (inner, left_outer, right_outer) on key equalities and a time
  // range (flow::stream_join_on_condition).
  data_frame join(const data_frame& other, const expr& condition, std::string_view type = "inner") const;
  // Spark's dropDuplicates(columns): the first row of each key, later ones dropped; the keys are kept for
  // ever, unless a watermarked column (with_watermark) is among them: then a key is forgotten once the
  // watermark passes that column's value, and rows behind the watermark are dropped as late. No columns:
  // every column.
  data_frame drop_duplicates(std::vector<std::string> columns = {}) const;
  // Spark's dropDuplicatesWithinWatermark: as drop_duplicates, but a key is forgotten once the watermark
  // passes its first row's event time plus the delay, of the frame's with_watermark (flow::error without
  // one); rows behind the watermark are dropped as late. No columns: every column.
  data_frame drop_duplicates_within_watermark(std::vector<std::string> columns = {}) const;
  // The same with the event-time column and the delay (e.g. "10 minutes") named here.
  data_frame drop_duplicates_within_watermark(std::vector<std::string> columns, std::string event_time_column,
                                              std::string_view delay) const;
  // Spark's groupByKey, for map_groups_with_state and flat_map_groups_with_state (flow/group_state.hpp).
  keyed_groups group_by_key(std::vector<std::string> keys) const;
  // Spark's union: this frame's rows and other's (same schema; both streaming or both static), duplicates kept.
  data_frame union_(const data_frame& other) const;

  // Actions on static frames.
  std::vector<batch> collect() const;
  batch collect_batch() const;
  std::size_t count() const;
  std::size_t num_partitions() const;
  void show(std::size_t num_rows = 20, bool truncate = true) const;
  std::string show_string(std::size_t num_rows = 20, bool truncate = true) const;

  data_stream_writer write_stream() const;

 private:
  void require_static(std::string_view action) const;
  std::shared_ptr<session_context> ctx_;
  plan_ptr plan_;
};

class grouped_data {
 public:
  grouped_data(std::shared_ptr<session_context> ctx, plan_ptr child, std::vector<expr> keys)
      : ctx_(std::move(ctx)), child_(std::move(child)), keys_(std::move(keys)) {}
  data_frame agg(std::vector<agg_spec> aggs) const;
  data_frame sum(const std::vector<std::string>& columns) const;
  data_frame sum(const std::string& column) const { return sum(std::vector<std::string>{column}); }
  data_frame avg(const std::string& column) const;
  data_frame min(const std::string& column) const;
  data_frame max(const std::string& column) const;
  data_frame count() const;

 private:
  data_frame of_kind(agg_kind kind, const std::vector<std::string>& columns) const;
  std::shared_ptr<session_context> ctx_;
  plan_ptr child_;
  std::vector<expr> keys_;
};

agg_spec sum(expr e);
agg_spec count(expr e);
agg_spec count_all();
agg_spec min(expr e);
agg_spec max(expr e);
agg_spec avg(expr e);

// A double as option text: the shortest decimal that reads back as the same value.
std::string option_text(double value);
// The integer types option() takes as numbers: not bool (true/false) nor the character types.
template <class T>
concept option_integer = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
                         !std::same_as<T, signed char> && !std::same_as<T, unsigned char> &&
                         !std::same_as<T, char8_t> && !std::same_as<T, char16_t> && !std::same_as<T, char32_t> &&
                         !std::same_as<T, wchar_t>;

class data_frame_reader {
 public:
  data_frame_reader(std::shared_ptr<session_context> ctx, bool streaming) : ctx_(std::move(ctx)) {
    scan_.streaming = streaming;
  }
  data_frame_reader& format(std::string f) { scan_.format = std::move(f); return *this; }
  data_frame_reader& option(std::string key, std::string value);
  data_frame_reader& option(std::string key, const char* value) { return option(std::move(key), std::string(value)); }
  data_frame_reader& option(std::string key, bool value) { return option(std::move(key), std::string(value ? "true" : "false")); }
  // Every integer type (int, std::int64_t, std::size_t, ...) as its decimal text.
  template <option_integer T>
  data_frame_reader& option(std::string key, T value) { return option(std::move(key), std::to_string(value)); }
  // The shortest text that reads back as the same double ("0.5", "1e+20").
  data_frame_reader& option(std::string key, double value) { return option(std::move(key), option_text(value)); }
  data_frame_reader& schema(const flow::schema& s) { scan_.schema = std::make_shared<const flow::schema>(s); return *this; }
  data_frame_reader& schema(schema_ptr s) { scan_.schema = std::move(s); return *this; }
  // Reads path (files: a file, directory or glob) with the format. A non-empty path given to a format that
  // takes none (socket, zmq, kafka, rate, http-feed, twitter) is refused when the source is resolved
  // (flow::error): call load() for those.
  data_frame load(std::string path);
  // For sources configured by options alone (socket, zmq, kafka, rate, http-feed, twitter). Throws
  // flow::error for the file formats (csv, json, text), which need load(path).
  data_frame load();
  data_frame csv(std::string path) { return format("csv").load(std::move(path)); }
  data_frame json(std::string path) { return format("json").load(std::move(path)); }
  data_frame text(std::string path) { return format("text").load(std::move(path)); }

 private:
  data_frame load_scan(scan_spec scan);
  std::shared_ptr<session_context> ctx_;
  scan_spec scan_;
};

class data_stream_writer {
 public:
  data_stream_writer(std::shared_ptr<session_context> ctx, plan_ptr plan) : ctx_(std::move(ctx)), plan_(std::move(plan)) {}
  data_stream_writer& format(std::string f) { sink_.format = std::move(f); return *this; }
  data_stream_writer& option(std::string key, std::string value) { sink_.opts.set(std::move(key), std::move(value)); return *this; }
  data_stream_writer& option(std::string key, const char* value) { return option(std::move(key), std::string(value)); }
  data_stream_writer& option(std::string key, bool value) { return option(std::move(key), std::string(value ? "true" : "false")); }
  template <option_integer T>
  data_stream_writer& option(std::string key, T value) { return option(std::move(key), std::to_string(value)); }
  data_stream_writer& option(std::string key, double value) { return option(std::move(key), option_text(value)); }
  data_stream_writer& query_name(std::string name) { sink_.query_name = std::move(name); return *this; }
  data_stream_writer& output_mode(std::string_view mode) { sink_.mode = parse_output_mode(mode); return *this; }
  data_stream_writer& output_mode(flow::output_mode mode) { sink_.mode = mode; return *this; }
  data_stream_writer& trigger(flow::trigger t) { sink_.trigger = t; return *this; }
  data_stream_writer& foreach(std::shared_ptr<foreach_writer> writer) {
    sink_.format = "foreach";
    sink_.foreach = std::move(writer);
    return *this;
  }
  data_stream_writer& foreach_batch(foreach_batch_function fn) {
    sink_.format = "foreachBatch";
    sink_.foreach_batch = std::move(fn);
    return *this;
  }
  // Validates the query (output mode rules, sink options) and starts it.
  streaming_query start();

 private:
  std::shared_ptr<session_context> ctx_;
  plan_ptr plan_;
  sink_spec sink_;
};

}  // namespace flow
