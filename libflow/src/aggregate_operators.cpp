// The partial and final aggregation operators, the operator_state that holds their table, and their
// descriptors' arguments.
#include "flow/aggregate_operators.hpp"

#include <charconv>
#include <set>
#include <utility>

#include "flow/plan_codec.hpp"

#include "aggregate_stored.hpp"

namespace flow {

namespace {

constexpr std::string_view deleted_column = "__deleted";

// The state schema, then "__deleted" (boolean): the rows of an aggregation table's changes.
schema_ptr changes_schema(const aggregate_operator& aggregate) {
  auto fields = aggregate.state_schema()->fields();
  fields.push_back(field{std::string(deleted_column), type_id::boolean, false});
  return make_schema(std::move(fields));
}

// rows (state schema) with a "__deleted" column of `deleted`.
batch flagged(const batch& rows, bool deleted, const schema_ptr& schema) {
  column_builder flags(type_id::boolean, rows.num_rows());
  for (std::size_t i = 0; i < rows.num_rows(); ++i) flags.append_bool(deleted);
  auto columns = rows.columns();
  columns.push_back(flags.finish());
  return batch(schema, std::move(columns));
}

// An aggregation table as an operator's state. Its changes are the groups end_epoch last emitted from
// (changed_since_emit just before the emit), which replace those groups in another copy, and the groups it
// evicted behind the watermark, flagged "__deleted". A durable table on an on-disk backend (use_backend) is a
// stored_aggregate_state, which checkpoints as a directory.
class aggregate_table final : public operator_state {
 public:
  aggregate_table(const aggregate_operator& aggregate, bool durable)
      : table(aggregate.make_state()), changes_schema_(changes_schema(aggregate)), changes_(batch::empty(changes_schema_)),
        aggregate_(&aggregate), durable_(durable) {}

  batch snapshot() const override { return table->snapshot(); }
  void restore(const batch& snapshot) override {
    table->restore(snapshot);
    changes_ = batch::empty(changes_schema_);
  }
  batch take_changes() override { return std::exchange(changes_, batch::empty(changes_schema_)); }
  // A copy fed changes (the runtime's) never emits: a stored one writes them to its store right away.
  // The evicted groups all ended at or before the watermark the live table evicted at, and every group of
  // the copy that did so was evicted with them (then or earlier): evicting at the latest of their ends is
  // evicting exactly them.
  void apply_changes(const batch& rows) override {
    const auto deleted = rows.schema().find(deleted_column);
    if (!deleted) return replace(rows);  // an epoch that evicted nothing
    const column& flags = rows.col(*deleted);
    std::vector<std::uint8_t> kept(rows.num_rows(), 0);
    std::int64_t evicted_through = INT64_MIN;
    const column& windows = rows.col(std::max(0, aggregate_->window_key_index()));
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      if (!flags.bools()[i]) kept[i] = 1;
      else evicted_through = std::max(evicted_through, windows.ends()[i]);
    }
    auto state_columns = filter_rows(rows, kept).columns();
    state_columns.pop_back();
    replace(batch(aggregate_->state_schema(), std::move(state_columns)));
    if (evicted_through != INT64_MIN) table->evict_groups(timestamp{evicted_through});
  }
  // The changes of an epoch: the groups it changed (state schema); when it evicted groups, those too, all
  // rows then flagged "__deleted" (true for the evicted).
  void record_changes(const batch& changed, const batch& evicted) {
    if (evicted.num_rows() == 0) changes_ = changed;
    else changes_ = concat({flagged(changed, false, changes_schema_), flagged(evicted, true, changes_schema_)});
  }
  std::size_t num_rows() const override { return table->num_groups(); }
  std::size_t memory_bytes() const override { return table->memory_bytes(); }
  bool durable() const override { return durable_; }

  // A partial aggregation's scratch table stays in memory: it is empty at every epoch's end.
  void use_backend(const state_backend_config& config, const std::string& instance_directory) override {
    if (!durable_ || config.kind == "memory") return;
    if (table->num_groups() != 0)
      throw error("aggregation state: use_backend(\"" + config.kind + "\") after the table got groups; the runtime "
                  "calls it right after make_state()");
    auto stored = std::make_unique<detail::stored_aggregate_state>(*aggregate_,
                                                                   make_key_value_store(config, instance_directory));
    stored_ = stored.get();
    table = std::move(stored);
  }
  bool snapshots_to_directory() const override { return stored_ != nullptr; }
  void snapshot_to(const std::string& directory) const override {
    if (!stored_) return operator_state::snapshot_to(directory);
    stored_->snapshot_to(directory);
  }
  void restore_from(const std::string& directory) override {
    if (!stored_) return operator_state::restore_from(directory);
    stored_->restore_from(directory);
    changes_ = batch::empty(changes_schema_);
  }

  std::unique_ptr<aggregate_state> table;

 private:
  void replace(const batch& rows) {
    table->replace_groups(rows);
    if (stored_) stored_->flush();
  }

  schema_ptr changes_schema_;
  batch changes_;
  const aggregate_operator* aggregate_;  // outlives its states: the runtime holds the graph
  detail::stored_aggregate_state* stored_ = nullptr;  // table, when it is on an on-disk backend
  bool durable_;
};

aggregate_table& table_of(operator_state* state, const stream_operator& op) {
  auto* table = dynamic_cast<aggregate_table*>(state);
  if (!table) throw error("'" + op.name() + "' was called without the state its make_state() makes");
  return *table;
}

void check_input(std::size_t input_index, const stream_operator& op) {
  if (input_index != 0) {
    throw error("'" + op.name() + "' has one input, but got a batch for input " + std::to_string(input_index));
  }
}

std::shared_ptr<const aggregate_operator> required(std::shared_ptr<const aggregate_operator> aggregate) {
  if (!aggregate) throw error("aggregation operator: the aggregate is missing");
  return aggregate;
}

// ---------------------------------------------------------------- descriptor arguments
// schema, key count, keys, aggregate count, then per aggregate: kind, "input" and its expression or
// "none" (count(*)), output name (empty: Spark's default name). Counts are decimal strings.

constexpr std::string_view with_input = "input", without_input = "none";

void write_aggregate(codec_writer& writer, const aggregate_operator& aggregate) {
  writer.write(*aggregate.input_schema()).write(std::to_string(aggregate.keys().size()));
  for (const auto& key : aggregate.keys()) writer.write(key);
  writer.write(std::to_string(aggregate.aggregates().size()));
  for (const auto& spec : aggregate.aggregates()) {
    writer.write(to_string(spec.kind));
    if (spec.input.valid()) writer.write(with_input).write(spec.input);
    else writer.write(without_input);
    writer.write(spec.output_name);
  }
}

[[noreturn]] void malformed(const std::string& expected, const std::string& found) {
  throw error("cannot decode its arguments: expected " + expected + ", found '" + found + "'");
}

std::size_t read_count(codec_reader& reader, const std::string& of_what) {
  const std::string text = reader.read_string();
  std::size_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (ec != std::errc{} || end != text.data() + text.size()) malformed("the number of " + of_what, text);
  return count;
}

agg_kind read_kind(codec_reader& reader) {
  const std::string text = reader.read_string();
  for (auto kind : {agg_kind::sum, agg_kind::count, agg_kind::min, agg_kind::max, agg_kind::avg})
    if (text == to_string(kind)) return kind;
  malformed("an aggregate kind (sum, count, min, max or avg)", text);
}

// The aggregation write_aggregate wrote, built (and so checked) by aggregate_operator's constructor.
std::shared_ptr<const aggregate_operator> read_aggregate(codec_reader& reader) {
  schema_ptr input = reader.read_schema();
  std::vector<expr> keys;
  for (std::size_t i = 0, n = read_count(reader, "keys"); i < n; ++i) keys.push_back(reader.read_expr());
  std::vector<agg_spec> aggs;
  for (std::size_t i = 0, n = read_count(reader, "aggregates"); i < n; ++i) {
    agg_spec spec;
    spec.kind = read_kind(reader);
    const std::string input_marker = reader.read_string();
    if (input_marker == with_input) spec.input = reader.read_expr();
    else if (input_marker != without_input) malformed("'input' or 'none'", input_marker);
    spec.output_name = reader.read_string();
    aggs.push_back(std::move(spec));
  }
  return std::make_shared<const aggregate_operator>(std::move(input), std::move(keys), std::move(aggs));
}

void require_input(const schema& expected, const schema_ptr& input, const std::string& which) {
  if (*input != expected)
    throw error("it reads the aggregation's " + which + " (" + expected.to_string() + "), but its input is (" +
                input->to_string() + ")");
}

}  // namespace

partial_aggregate_operator::partial_aggregate_operator(std::shared_ptr<const aggregate_operator> aggregate)
    : aggregate_(required(std::move(aggregate))) {}

operator_ptr partial_aggregate_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  auto aggregate = read_aggregate(reader);
  reader.expect_end();
  require_input(*aggregate->input_schema(), input, "input rows");
  return std::make_shared<partial_aggregate_operator>(std::move(aggregate));
}

std::optional<operator_descriptor> partial_aggregate_operator::descriptor() const {
  codec_writer arguments;
  write_aggregate(arguments, *aggregate_);
  return operator_descriptor{"partial_aggregate", arguments.text()};
}

std::optional<std::vector<std::size_t>> partial_aggregate_operator::columns_read() const {
  const schema& input = *aggregate_->input_schema();
  std::set<std::size_t> read;
  for (const auto& key : aggregate_->keys())
    if (!collect_columns_read(key, input, read)) return std::nullopt;
  for (const auto& spec : aggregate_->aggregates())
    if (spec.input.valid() && !collect_columns_read(spec.input, input, read)) return std::nullopt;
  return std::vector<std::size_t>(read.begin(), read.end());
}

std::unique_ptr<operator_state> partial_aggregate_operator::make_state() const {
  return std::make_unique<aggregate_table>(*aggregate_, false);
}

void partial_aggregate_operator::process(const batch& input, std::size_t input_index, operator_state* state,
                                         operator_context& ctx) const {
  check_input(input_index, *this);
  auto& scratch = *table_of(state, *this).table;
  // Late rows are dropped here, before the shuffle, where each is still one row: counted exactly.
  if (const std::size_t late = scratch.update(input, timestamp{ctx.watermark()})) ctx.count_rows_dropped_by_watermark(late);
  if (scratch.num_groups() >= partial_flush_groups) end_epoch(state, ctx);
}

void partial_aggregate_operator::end_epoch(operator_state* state, operator_context& ctx) const {
  auto& scratch = *table_of(state, *this).table;
  if (scratch.num_groups() == 0) return;
  ctx.emit(scratch.snapshot());
  scratch.clear();
}

final_aggregate_operator::final_aggregate_operator(std::shared_ptr<const aggregate_operator> aggregate,
                                                   output_mode mode)
    : aggregate_(required(std::move(aggregate))), mode_(mode) {}

operator_ptr final_aggregate_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  auto aggregate = read_aggregate(reader);
  const output_mode mode = parse_output_mode(reader.read_string());
  reader.expect_end();
  require_input(*aggregate->state_schema(), input, "partial aggregates");
  return std::make_shared<final_aggregate_operator>(std::move(aggregate), mode);
}

std::optional<operator_descriptor> final_aggregate_operator::descriptor() const {
  codec_writer arguments;
  write_aggregate(arguments, *aggregate_);
  arguments.write(to_string(mode_));
  return operator_descriptor{"final_aggregate", arguments.text()};
}

std::unique_ptr<operator_state> final_aggregate_operator::make_state() const {
  return std::make_unique<aggregate_table>(*aggregate_, true);
}

void final_aggregate_operator::process(const batch& input, std::size_t input_index, operator_state* state,
                                       operator_context&) const {
  check_input(input_index, *this);
  table_of(state, *this).table->merge(input);
}

// Complete mode keeps every group (its output is the whole table). Update mode emits the groups the epoch
// changed, append mode those the watermark closed, exactly once; both then evict the closed groups.
void final_aggregate_operator::end_epoch(operator_state* state, operator_context& ctx) const {
  auto& table = table_of(state, *this);
  const batch changed = table.table->changed_since_emit();
  if (mode_ == output_mode::complete) {
    table.record_changes(changed, batch::empty(aggregate_->state_schema()));
    batch out = table.table->emit(mode_);
    if (out.num_rows() > 0) ctx.emit(std::move(out));
    return;
  }
  if (mode_ == output_mode::append && aggregate_->window_key_index() < 0) table.table->emit(mode_);  // its error
  batch updated = table.table->emit(output_mode::update);
  // Without a watermark nothing is closed (and an on-disk table is not scanned for it).
  const batch evicted = ctx.watermark() == operator_context::no_watermark
                            ? batch::empty(aggregate_->state_schema())
                            : table.table->evict_groups(timestamp{ctx.watermark()});
  table.record_changes(changed, evicted);
  batch out = std::move(updated);
  if (mode_ == output_mode::append) {
    auto closed = aggregate_->make_state();
    closed->restore(evicted);
    out = closed->emit(output_mode::complete);
  }
  if (out.num_rows() > 0) ctx.emit(std::move(out));
}

}  // namespace flow
