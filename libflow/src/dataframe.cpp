#include "flow/dataframe.hpp"

#include <charconv>
#include <iostream>

#include "flow/stream_join.hpp"

namespace flow {

trigger processing_time(std::string_view interval) {
  auto micros = parse_duration_micros(interval);
  return processing_time(std::chrono::milliseconds(micros / 1000));
}

trigger parse_trigger(std::string_view text) {
  if (text == "once") return trigger_once();
  if (text == "available-now" || text == "availableNow" || text == "available_now") return available_now();
  if (text == "fast" || text == "default") return {};
  try {
    return processing_time(text);
  } catch (const error&) {
    throw error("invalid trigger '" + std::string(text) +
                "': expected an interval such as 1s or '500 ms', 'once' or 'available-now'");
  }
}

bool streaming_query::await_termination_for(std::optional<std::chrono::milliseconds> timeout) {
  bool ended = control_->await_termination(timeout);
  if (ended) {
    if (auto failure = control_->exception())
      throw error("query '" + control_->name() + "' [id = " + control_->id() + "] terminated with exception: " +
                  *failure);
  }
  return ended;
}

// ---------------------------------------------------------------- data_frame

data_frame data_frame::select(std::vector<expr> exprs) const {
  return {ctx_, make_project(plan_, std::move(exprs))};
}

data_frame data_frame::select(const std::vector<std::string>& columns) const {
  std::vector<expr> exprs;
  for (const auto& c : columns) exprs.push_back(col(c));
  return select(std::move(exprs));
}

data_frame data_frame::where(expr predicate) const { return {ctx_, make_filter(plan_, std::move(predicate))}; }

data_frame data_frame::with_column(const std::string& name, expr e) const {
  std::vector<expr> exprs;
  bool replaced = false;
  for (const auto& f : schema().fields()) {
    if (f.name == name) {
      exprs.push_back(e.as(name));
      replaced = true;
    } else {
      exprs.push_back(col(f.name));
    }
  }
  if (!replaced) exprs.push_back(e.as(name));
  return select(std::move(exprs));
}

data_frame data_frame::map_batches(batch_function fn, schema_ptr output, std::string name) const {
  return {ctx_, make_map_batches(plan_, std::move(fn), std::move(output), std::move(name))};
}

grouped_data data_frame::group_by(std::vector<expr> keys) const { return {ctx_, plan_, std::move(keys)}; }

data_frame data_frame::agg(std::vector<agg_spec> aggs) const { return group_by({}).agg(std::move(aggs)); }

namespace {

// The rows of the static side of a join.
batch static_join_side(const data_frame& other) {
  if (other.is_streaming())
    throw error("join: a static data frame on the left joined with a streaming one on the right is not supported; "
                "put the stream on the left (stream.join(static_frame, ...)) or read both with read_stream()");
  return other.collect_batch();
}

}  // namespace

data_frame data_frame::join(const data_frame& other, std::vector<std::string> on, std::string_view type) const {
  const join_type parsed = parse_join_type(type);
  if (is_streaming() && other.is_streaming())
    return {ctx_, make_stream_join(plan_, other.plan_, stream_join_on_columns(std::move(on), parsed))};
  return {ctx_, make_join(plan_, static_join_side(other), std::move(on), parsed)};
}

data_frame data_frame::join(const data_frame& other, const expr& condition, std::string_view type) const {
  const join_type parsed = parse_join_type(type);
  if (is_streaming() && other.is_streaming())
    return {ctx_, make_stream_join(plan_, other.plan_,
                                   stream_join_on_condition(*plan_->output, *other.plan_->output, condition, parsed))};
  return {ctx_, make_join(plan_, static_join_side(other), condition, parsed)};
}

data_frame data_frame::drop_duplicates(std::vector<std::string> columns) const {
  if (columns.empty()) {
    for (const auto& f : schema().fields()) columns.push_back(f.name);
  }
  return {ctx_, make_deduplicate(plan_, deduplicate_spec{std::move(columns), {}, 0})};
}

namespace {

// The with_watermark nodes of plan, depth first.
void collect_watermarks(const plan_node& plan, std::vector<const plan_node*>& out) {
  if (plan.kind == plan_kind::watermark) out.push_back(&plan);
  for (const auto& child : plan.children) collect_watermarks(*child, out);
}

}  // namespace

data_frame data_frame::drop_duplicates_within_watermark(std::vector<std::string> columns) const {
  std::vector<const plan_node*> watermarks;
  collect_watermarks(*plan_, watermarks);
  if (watermarks.empty())
    throw error("drop_duplicates_within_watermark: the frame has no watermark; call with_watermark(column, delay) "
                "before it, or name the event-time column and delay");
  for (const auto* other : watermarks) {
    if (other->event_time != watermarks.front()->event_time || other->delay_micros != watermarks.front()->delay_micros)
      throw error("drop_duplicates_within_watermark: the frame has watermarks on '" + watermarks.front()->event_time +
                  "' and '" + other->event_time + "' with different delays or columns; name the event-time column "
                  "and delay");
  }
  if (columns.empty()) {
    for (const auto& f : schema().fields()) columns.push_back(f.name);
  }
  return {ctx_, make_deduplicate(plan_, deduplicate_spec{std::move(columns), watermarks.front()->event_time,
                                                         watermarks.front()->delay_micros})};
}

data_frame data_frame::drop_duplicates_within_watermark(std::vector<std::string> columns, std::string event_time_column,
                                                        std::string_view delay) const {
  if (event_time_column.empty())
    throw error("drop_duplicates_within_watermark: name the event-time column the watermark is defined on");
  return {ctx_, make_deduplicate(plan_, deduplicate_spec{std::move(columns), std::move(event_time_column),
                                                         parse_duration_micros(delay)})};
}

data_frame data_frame::with_watermark(const std::string& column, std::string_view delay) const {
  return {ctx_, make_watermark(plan_, column, delay)};
}

data_frame data_frame::union_(const data_frame& other) const { return {ctx_, make_union({plan_, other.plan_})}; }

void data_frame::require_static(std::string_view action) const {
  if (is_streaming())
    throw error(std::string(action) +
                ": queries with streaming sources must be executed with write_stream().start()");
}

std::vector<batch> data_frame::collect() const {
  require_static("collect");
  return ctx_->execute(plan_);
}

batch data_frame::collect_batch() const {
  auto batches = collect();
  if (batches.empty()) return batch::empty(plan_->output);
  return batches.size() == 1 ? batches.front() : concat(batches);
}

std::size_t data_frame::count() const {
  std::size_t rows = 0;
  for (const auto& b : collect()) rows += b.num_rows();
  return rows;
}

std::size_t data_frame::num_partitions() const {
  std::size_t partitions = 0;
  for (const auto* scan : scans_of(*plan_)) partitions += ctx_->input_partitions(*scan);
  return partitions;
}

std::string data_frame::show_string(std::size_t num_rows, bool truncate) const {
  auto batches = collect();
  if (batches.empty()) batches.push_back(batch::empty(plan_->output));
  return format_table(batches, num_rows, truncate);
}

void data_frame::show(std::size_t num_rows, bool truncate) const { std::cout << show_string(num_rows, truncate); }

data_stream_writer data_frame::write_stream() const {
  if (!is_streaming())
    throw error("write_stream() can only be called on a streaming data frame; read it with read_stream()");
  return {ctx_, plan_};
}

// ---------------------------------------------------------------- grouped_data

agg_spec sum(expr e) { return {agg_kind::sum, std::move(e), {}}; }
agg_spec count(expr e) { return {agg_kind::count, std::move(e), {}}; }
agg_spec count_all() { return {agg_kind::count, expr{}, {}}; }
agg_spec min(expr e) { return {agg_kind::min, std::move(e), {}}; }
agg_spec max(expr e) { return {agg_kind::max, std::move(e), {}}; }
agg_spec avg(expr e) { return {agg_kind::avg, std::move(e), {}}; }

data_frame grouped_data::agg(std::vector<agg_spec> aggs) const {
  if (aggs.empty()) throw error("agg: give at least one aggregate");
  return {ctx_, make_aggregate(child_, keys_, std::move(aggs))};
}

data_frame grouped_data::of_kind(agg_kind kind, const std::vector<std::string>& columns) const {
  std::vector<agg_spec> aggs;
  for (const auto& c : columns) aggs.push_back({kind, col(c), {}});
  return agg(std::move(aggs));
}

data_frame grouped_data::sum(const std::vector<std::string>& columns) const { return of_kind(agg_kind::sum, columns); }
data_frame grouped_data::avg(const std::string& column) const { return of_kind(agg_kind::avg, {column}); }
data_frame grouped_data::min(const std::string& column) const { return of_kind(agg_kind::min, {column}); }
data_frame grouped_data::max(const std::string& column) const { return of_kind(agg_kind::max, {column}); }
// Spark names this column count, while agg(count("*")) gives count(1).
data_frame grouped_data::count() const { return agg({{agg_kind::count, expr{}, "count"}}); }

// ---------------------------------------------------------------- reader and writer

data_frame_reader& data_frame_reader::option(std::string key, std::string value) {
  scan_.opts.set(std::move(key), std::move(value));
  return *this;
}

std::string option_text(double value) {
  char text[64];
  auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  return std::string(text, end);
}

data_frame data_frame_reader::load() {
  if (scan_.format.empty())
    throw error("load(): no format; call format(...) first, e.g. format(\"socket\") or format(\"rate\")");
  if (is_text_file_format(scan_.format))
    throw error("load(): the " + scan_.format + " format reads files and needs a path: call load(path), e.g. load(\"/data/*." +
                scan_.format + "\")");
  return load_scan(scan_);
}

data_frame data_frame_reader::load(std::string path) {
  if (scan_.format.empty()) throw error("load('" + path + "'): no format; call format(\"csv\"), json or text first");
  if (path.empty() && is_text_file_format(scan_.format))
    throw error("load(\"\"): the " + scan_.format + " format reads files and needs a path, e.g. load(\"/data/*." +
                scan_.format + "\")");
  scan_spec scan = scan_;
  scan.path = std::move(path);
  return load_scan(std::move(scan));
}

data_frame data_frame_reader::load_scan(scan_spec scan) {
  ctx_->resolve_scan(scan);
  return {ctx_, make_scan(std::move(scan))};
}

streaming_query data_stream_writer::start() {
  validate_output_mode(*plan_, sink_.mode);
  return streaming_query(ctx_->start_stream(plan_, sink_));
}

}  // namespace flow
