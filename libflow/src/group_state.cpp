// map_groups_with_state / flat_map_groups_with_state (flow/group_state.hpp): the operator, its output-mode
// rules and the data frame calls.
#include "flow/group_state.hpp"

#include <algorithm>
#include <iterator>
#include <type_traits>
#include <variant>

#include "flow/graph.hpp"
#include "flow/keyed_operator.hpp"
#include "flow/topology.hpp"
#include "flow/watermark.hpp"

namespace flow {

namespace {

constexpr std::string_view map_name = "mapGroupsWithState";
constexpr std::string_view flat_map_name = "flatMapGroupsWithState";

// A key's state: the user's state row and its timeout, plus the rows it got in this epoch (scratch:
// (batch, row) in the instance's epoch_batches, empty at every epoch's end).
struct group_entry {
  std::optional<state_row> state;
  std::int64_t timeout_at = no_timestamp;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> pending;
};

// The keyed state store's side of the operator: keys, and how an entry is saved.
class group_store final : public keyed_operator<group_entry> {
 public:
  group_store(std::string_view name, schema_ptr input, std::vector<std::string> keys, std::vector<field> state)
      : keyed_operator({.name = std::string(name),
                        .input = std::move(input),
                        .keys = std::move(keys),
                        .output = {},
                        .state = with_timeout(state)}),
        state_columns_(state.size()) {}

  row_keys keys_of(const batch& input) const { return input_keys(input, 0); }
  void process(const batch&, const row_keys&, keyed_state<group_entry>&, operator_context&) const override {}
  void save(const group_entry& entry, row_writer& out) const override {
    for (const auto& v : *entry.state) add_value(out, v);
    if (entry.timeout_at == no_timestamp) out.add_null();
    else out.add(entry.timeout_at);
  }
  group_entry load(const batch& saved, std::size_t row) const override {
    state_row values;
    for (std::size_t c = 0; c < state_columns_; ++c) values.push_back(saved.at(row, c));
    const column& timeout = saved.col(state_columns_);
    return {std::move(values), timeout.valid(row) ? timeout.ints()[row] : no_timestamp, {}};
  }

 private:
  static std::vector<field> with_timeout(std::vector<field> state) {
    state.push_back({"__timeout_at", type_id::int64, true});
    return state;
  }
  static void add_value(row_writer& out, const value& v) {
    std::visit(
        [&](const auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, null_value>) out.add_null();
          else if constexpr (std::is_same_v<X, std::vector<std::string>>) out.add_list(x);
          else out.add(x);
        },
        v);
  }
  std::size_t state_columns_;
};

// One instance's state: the keyed store, plus the query's watermark as last delivered and the epoch's input
// batches (neither checkpointed: the runtime delivers the watermark again, and batches live one epoch).
class group_states final : public operator_state {
 public:
  explicit group_states(const group_store& store) : keys(store) {}
  batch snapshot() const override { return keys.snapshot(); }
  void restore(const batch& snapshot) override { keys.restore(snapshot); }
  batch take_changes() override { return keys.take_changes(); }
  void apply_changes(const batch& changes) override { keys.apply_changes(changes); }
  std::size_t num_rows() const override { return keys.num_rows(); }
  std::size_t memory_bytes() const override { return keys.memory_bytes(); }
  void use_backend(const state_backend_config& config, const std::string& directory) override {
    keys.use_backend(config, directory);
  }
  bool snapshots_to_directory() const override { return keys.snapshots_to_directory(); }
  void snapshot_to(const std::string& directory) const override { keys.snapshot_to(directory); }
  void restore_from(const std::string& directory) override { keys.restore_from(directory); }

  keyed_state<group_entry> keys;
  std::int64_t watermark = no_timestamp;
  std::vector<batch> epoch_batches;
};

// A key copied out of the state (a key_ref is valid only while the state is unchanged).
struct owned_key {
  std::string bytes;
  std::uint64_t hash;
  key_ref ref() const { return {bytes, hash}; }
};

std::string type_text(const value& v) {
  const auto type = type_of(v);
  return type ? std::string(type_name(*type)) : "null";
}

std::string key_text(const group_key& key) {
  std::string text = "[";
  for (const auto& v : key) text += (text.size() > 1 ? ", " : "") + to_string(v);
  return text + "]";
}

// flow::error unless row has fields' number and types of values (null only where nullable).
void check_row(const state_row& row, const std::vector<field>& fields, std::string_view operation, std::string_view what,
               const group_key& key) {
  const auto where = std::string(operation) + ": the " + std::string(what) + " of key " + key_text(key);
  if (row.size() != fields.size())
    throw error(where + " has " + std::to_string(row.size()) + " values, but " + std::to_string(fields.size()) +
                " columns were declared (" + schema(fields).to_string() + "); give one value per declared column");
  for (std::size_t c = 0; c < fields.size(); ++c) {
    const auto type = type_of(row[c]);
    if (type ? *type == fields[c].type : fields[c].nullable) continue;
    throw error(where + ": column '" + fields[c].name + "' was declared " + std::string(type_name(fields[c].type)) +
                (fields[c].nullable ? "" : " not null") + ", but the value is " + type_text(row[c]) +
                "; give values of the declared types");
  }
}

class group_state_operator final : public stream_operator {
 public:
  group_state_operator(schema_ptr input, std::vector<std::string> keys, flat_map_groups_function fn,
                       group_state_spec spec, output_mode mode, bool is_map)
      : operation_(is_map ? map_name : flat_map_name), store_(operation_, input, std::move(keys), spec.state),
        input_(std::move(input)), output_(make_schema(spec.output)), fn_(std::move(fn)), spec_(std::move(spec)),
        mode_(mode), is_map_(is_map) {}

  std::string name() const override {
    return std::string(operation_) + "(" + (mode_ == output_mode::append ? "append" : "update") + ")";
  }
  const schema_ptr& output_schema() const override { return output_; }
  std::vector<std::string> key_columns() const override { return store_.key_columns(); }
  std::unique_ptr<operator_state> make_state() const override { return std::make_unique<group_states>(store_); }
  output_mode mode() const { return mode_; }
  bool is_map() const { return is_map_; }
  group_state_timeout timeout() const { return spec_.timeout; }

  void process(const batch& input, std::size_t, operator_state* state, operator_context&) const override {
    if (input.num_rows() == 0) return;
    auto& s = states(state);
    const auto keys = store_.keys_of(input);
    const auto b = static_cast<std::uint32_t>(s.epoch_batches.size());
    s.epoch_batches.push_back(input);
    for (std::size_t i = 0; i < keys.size(); ++i) s.keys.get(keys[i]).pending.emplace_back(b, static_cast<std::uint32_t>(i));
  }

  // The keys with rows, then (processing-time timeouts) the keys whose timeout passed, as Spark's.
  void end_epoch(operator_state* state, operator_context& ctx) const override {
    auto& s = states(state);
    const group_state<state_row>::clocks now{ctx.processing_time(), s.watermark};
    std::vector<state_row> out;
    std::vector<owned_key> with_rows;
    s.keys.for_each_changed([&](key_ref key, const group_entry& entry) {
      if (!entry.pending.empty()) with_rows.push_back({std::string(key.bytes), key.hash});
    });
    for (const auto& key : with_rows) {
      auto& entry = s.keys.get(key.ref());
      const batch rows = gather(s.epoch_batches, entry.pending);
      entry.pending.clear();
      call(s, key.ref(), rows, false, now, out);
    }
    s.epoch_batches.clear();
    if (spec_.timeout == group_state_timeout::processing_time) expire(s, now.processing_time, now, out);
    emit(out, ctx);
  }

  // Event-time timeouts: the keys (without rows pending) whose timeout the watermark passed.
  void on_watermark(std::int64_t watermark_micros, operator_state* state, operator_context& ctx) const override {
    auto& s = states(state);
    s.watermark = watermark_micros / 1000;
    if (spec_.timeout != group_state_timeout::event_time) return;
    std::vector<state_row> out;
    expire(s, s.watermark, {ctx.processing_time(), s.watermark}, out);
    emit(out, ctx);
  }

 private:
  static group_states& states(operator_state* state) {
    auto* s = dynamic_cast<group_states*>(state);
    if (!s) throw error("group state operator: called without its state (make_state())");
    return *s;
  }

  batch gather(const std::vector<batch>& batches, const std::vector<std::pair<std::uint32_t, std::uint32_t>>& rows) const {
    std::vector<column_builder> builders;
    for (const auto& f : input_->fields()) builders.emplace_back(f.type, rows.size());
    for (const auto& [b, r] : rows)
      for (std::size_t c = 0; c < builders.size(); ++c) builders[c].append_value(batches[b].at(r, c));
    std::vector<column> columns;
    for (auto& builder : builders) columns.push_back(builder.finish());
    return batch(input_, std::move(columns));
  }

  void expire(group_states& s, std::int64_t threshold, group_state<state_row>::clocks now,
              std::vector<state_row>& out) const {
    std::vector<owned_key> expired;
    s.keys.for_each([&](key_ref key, const group_entry& entry) {
      if (entry.timeout_at != no_timestamp && entry.timeout_at < threshold && entry.pending.empty())
        expired.push_back({std::string(key.bytes), key.hash});
    });
    for (const auto& key : expired) call(s, key.ref(), batch::empty(input_), true, now, out);
  }

  // fn for one key; keeps or removes its state and adds its output rows to out.
  void call(group_states& s, key_ref key, const batch& rows, bool timed_out, group_state<state_row>::clocks now,
            std::vector<state_row>& out) const {
    const group_key key_values = s.keys.key_values(key);
    auto& entry = s.keys.get(key);
    group_state<state_row> handle(operation_, entry.state, &entry.timeout_at, timed_out, spec_.timeout, now);
    std::vector<state_row> produced;
    try {
      produced = fn_(key_values, rows, handle);
    } catch (const std::exception& e) {
      throw permanent_error(std::string(operation_) + ": the function failed for key " + key_text(key_values) + ": " +
                            e.what());
    }
    if (entry.state) check_row(*entry.state, spec_.state, operation_, "state", key_values);
    for (const auto& row : produced) check_row(row, spec_.output, operation_, "output row", key_values);
    out.insert(out.end(), std::make_move_iterator(produced.begin()), std::make_move_iterator(produced.end()));
    if (!entry.state) s.keys.remove(key);
  }

  void emit(const std::vector<state_row>& rows, operator_context& ctx) const {
    if (!rows.empty()) ctx.emit(make_batch(output_, rows));
  }

  std::string_view operation_;
  group_store store_;
  schema_ptr input_, output_;
  flat_map_groups_function fn_;
  group_state_spec spec_;
  output_mode mode_;
  bool is_map_;
};

}  // namespace

operator_ptr make_group_state_operator(schema_ptr input, std::vector<std::string> keys, flat_map_groups_function fn,
                                       group_state_spec spec, output_mode operator_mode, bool is_map) {
  const std::string_view operation = is_map ? map_name : flat_map_name;
  if (operator_mode != output_mode::append && operator_mode != output_mode::update)
    throw error(std::string(operation) + ": The output mode of function should be append or update");
  if (keys.empty()) throw error(std::string(operation) + ": group_by_key needs at least one key column");
  if (spec.output.empty()) throw error(std::string(operation) + ": declare the output columns (group_state_spec::output)");
  return std::make_shared<group_state_operator>(std::move(input), std::move(keys), std::move(fn), std::move(spec),
                                                operator_mode, is_map);
}

namespace {

bool is_watermark(const operator_ptr& op) { return dynamic_cast<const watermark_operator*>(op.get()) != nullptr; }

// A with_watermark among the first ops operators of vertex v's chain or anywhere upstream of v.
bool watermarked_before(const dataflow_graph& graph, std::size_t v, std::size_t ops) {
  const auto& chain = graph.vertex(v).chain;
  if (std::any_of(chain.begin(), chain.begin() + static_cast<std::ptrdiff_t>(ops), is_watermark)) return true;
  for (auto e : graph.inputs_of(v)) {
    const auto from = graph.edges()[e].from;
    if (watermarked_before(graph, from, graph.vertex(from).chain.size())) return true;
  }
  return false;
}

}  // namespace

void validate_group_state_rules(const dataflow_graph& graph, output_mode mode) {
  for (std::size_t v = 0; v < graph.vertices().size(); ++v) {
    const auto& chain = graph.vertex(v).chain;
    for (std::size_t i = 0; i < chain.size(); ++i) {
      const auto* grouped = dynamic_cast<const group_state_operator*>(chain[i].get());
      if (!grouped) continue;
      if (grouped->timeout() == group_state_timeout::event_time && !watermarked_before(graph, v, i))
        throw error("Watermark must be specified in the query using '[Dataset/DataFrame].withWatermark()' for using "
                    "event-time timeout in a [map|flatMap]GroupsWithState. Event-time timeout not supported without "
                    "watermark. (" + std::string(grouped->is_map() ? map_name : flat_map_name) +
                    " with timeout = group_state_timeout::event_time: give its input with_watermark(column, delay))");
      if (grouped->is_map() && mode != output_mode::update)
        throw error("mapGroupsWithState is not supported with " + std::string(to_string(mode)) +
                    " output mode on a streaming DataFrame/Dataset; use update output mode");
      if (!grouped->is_map() && mode != grouped->mode())
        throw error("flatMapGroupsWithState in " + std::string(to_string(grouped->mode())) +
                    " mode is not supported with " + std::string(to_string(mode)) +
                    " output mode on a streaming DataFrame/Dataset; give the function and the sink the same output mode");
    }
  }
}

keyed_groups data_frame::group_by_key(std::vector<std::string> keys) const {
  if (keys.empty()) throw error("group_by_key: give at least one key column");
  for (const auto& key : keys) schema().index_of(key);
  return {ctx_, *this, std::move(keys)};
}

data_frame keyed_groups::map_groups_with_state(map_groups_function fn, group_state_spec spec) const {
  if (!fn) throw error("mapGroupsWithState: the function is empty");
  auto one_row = [fn = std::move(fn)](const group_key& key, const batch& rows, group_state<state_row>& state) {
    return std::vector<state_row>{fn(key, rows, state)};
  };
  return apply(std::move(one_row), std::move(spec), output_mode::update, true);
}

data_frame keyed_groups::flat_map_groups_with_state(flat_map_groups_function fn, output_mode operator_mode,
                                                    group_state_spec spec) const {
  if (!fn) throw error("flatMapGroupsWithState: the function is empty");
  return apply(std::move(fn), std::move(spec), operator_mode, false);
}

data_frame keyed_groups::apply(flat_map_groups_function fn, group_state_spec spec, output_mode operator_mode,
                               bool is_map) const {
  const std::string_view operation = is_map ? map_name : flat_map_name;
  if (!frame_.is_streaming())
    throw error(std::string(operation) + ": the frame is static; group_by_key(...)." + std::string(operation) +
                " runs on streaming frames (read_stream())");
  auto op = make_group_state_operator(frame_.plan()->output, keys_, std::move(fn), std::move(spec), operator_mode, is_map);
  topology t(ctx_);
  return t.source("input", frame_).key_by(keys_).apply(std::string(operation), std::move(op)).as_frame();
}

}  // namespace flow
