#include "flow/stream_join.hpp"

#include <algorithm>
#include <queue>
#include <unordered_map>

#include "flow/keyed_operator.hpp"
#include "flow/plan_codec.hpp"

namespace flow {

// ---------------------------------------------------------------- the condition

namespace {

void flatten_conjuncts(const expr& e, std::vector<expr>& out) {
  if (e.node().kind == expr_kind::logical_and) {
    for (const auto& child : e.node().children) flatten_conjuncts(child, out);
  } else {
    out.push_back(e);
  }
}

// A column reference, optionally plus or minus an interval: col("t") + lit("1 hour").
struct shifted_column {
  std::string column;
  std::int64_t shift = 0;
};

std::int64_t interval_micros(const value& v) {
  if (const auto* micros = std::get_if<std::int64_t>(&v)) return *micros;
  if (const auto* text = std::get_if<std::string>(&v)) return parse_duration_micros(*text);
  throw error("join: the interval " + to_string(v) + " is neither a duration (lit(\"1 hour\")) nor microseconds");
}

std::optional<shifted_column> as_shifted_column(const expr& e) {
  const expr_node& n = e.node();
  if (n.kind == expr_kind::column_ref) return shifted_column{n.name, 0};
  if ((n.kind == expr_kind::add || n.kind == expr_kind::sub) && n.children.size() == 2 &&
      n.children[0].node().kind == expr_kind::column_ref && n.children[1].node().kind == expr_kind::literal) {
    const std::int64_t shift = interval_micros(n.children[1].node().literal);
    return shifted_column{n.children[0].node().name, n.kind == expr_kind::add ? shift : -shift};
  }
  return std::nullopt;
}

[[noreturn]] void unsupported_conjunct(const expr& conjunct) {
  throw error("join: the condition '" + conjunct.name() +
              "' is not supported in a stream-stream join; use equalities between a left and a right column "
              "(col(\"id\") == col(\"rid\")) and comparisons of a left and a right timestamp column with an "
              "optional interval (col(\"rt\") <= col(\"lt\") + lit(\"1 hour\")), joined with &&");
}

}  // namespace

stream_join_spec stream_join_on_columns(std::vector<std::string> keys, join_type type) {
  stream_join_spec spec;
  spec.type = type;
  spec.left_keys = keys;
  spec.right_keys = std::move(keys);
  spec.using_columns = true;
  return spec;
}

stream_join_spec stream_join_on_condition(const schema& left, const schema& right, const expr& condition,
                                          join_type type) {
  if (!condition.valid()) throw error("join: the condition is an empty expression");
  join_output_schema(left, right, join_type::inner);  // refuses a column name both sides have
  stream_join_spec spec;
  spec.type = type;
  std::vector<expr> conjuncts;
  flatten_conjuncts(condition, conjuncts);
  for (const auto& conjunct : conjuncts) {
    const expr_node& n = conjunct.node();
    if (n.children.size() != 2) unsupported_conjunct(conjunct);
    const auto a = as_shifted_column(n.children[0]);
    const auto b = as_shifted_column(n.children[1]);
    if (!a || !b) unsupported_conjunct(conjunct);
    const bool a_left = left.find(a->column).has_value(), b_left = left.find(b->column).has_value();
    const bool a_right = right.find(a->column).has_value(), b_right = right.find(b->column).has_value();
    if (!((a_left && b_right) || (a_right && b_left))) {
      throw error("join: the condition '" + conjunct.name() +
                  "' does not compare a column of the left side with one of the right side; columns of the left: [" +
                  left.to_string() + "], of the right: [" + right.to_string() + "]");
    }
    const shifted_column& l = a_left ? *a : *b;
    const shifted_column& r = a_left ? *b : *a;
    if (n.kind == expr_kind::eq) {
      if (l.shift != 0 || r.shift != 0) unsupported_conjunct(conjunct);
      spec.left_keys.push_back(l.column);
      spec.right_keys.push_back(r.column);
      continue;
    }
    if (n.kind != expr_kind::lt && n.kind != expr_kind::le && n.kind != expr_kind::gt && n.kind != expr_kind::ge)
      unsupported_conjunct(conjunct);
    if (left[*left.find(l.column)].type != type_id::timestamp || right[*right.find(r.column)].type != type_id::timestamp)
      throw error("join: the time range '" + conjunct.name() + "' compares columns that are not both timestamps");
    if ((!spec.left_time.empty() && spec.left_time != l.column) || (!spec.right_time.empty() && spec.right_time != r.column))
      throw error("join: the time range '" + conjunct.name() + "' compares other columns than an earlier one (" +
                  spec.left_time + ", " + spec.right_time + "); bound one pair of event-time columns");
    spec.left_time = l.column;
    spec.right_time = r.column;
    // As a bound on right - left: written left first, l + ls OP r + rs is right - left OP' ls - rs with OP'
    // the mirror of OP; written right first, r + rs OP l + ls is right - left OP ls - rs.
    const std::int64_t bound = l.shift - r.shift;
    bool right_at_least = false, strict = false;  // right - left >= bound (else <=), strict: > or <
    switch (n.kind) {
      case expr_kind::lt: right_at_least = a_left; strict = true; break;
      case expr_kind::le: right_at_least = a_left; break;
      case expr_kind::gt: right_at_least = !a_left; strict = true; break;
      default: right_at_least = !a_left; break;
    }
    if (right_at_least) spec.lower = std::max(spec.lower, strict ? bound + 1 : bound);
    else spec.upper = std::min(spec.upper, strict ? bound - 1 : bound);
  }
  if (spec.left_keys.empty())
    throw error("join: the condition '" + condition.name() +
                "' has no equality between a left and a right column; a stream-stream join needs one (a key)");
  return spec;
}

// ---------------------------------------------------------------- the plan

plan_ptr make_stream_join(plan_ptr left, plan_ptr right, stream_join_spec spec) {
  if (!left || !right) throw error("join: a side of the join has no plan; build both with a data frame");
  if (spec.type != join_type::inner && spec.type != join_type::left_outer && spec.type != join_type::right_outer)
    throw error("join: " + std::string(to_string(spec.type)) +
                " is not supported between two streaming DataFrames/Datasets; use inner, left_outer or right_outer");
  if (spec.type != join_type::inner) {
    const bool watermarks = !watermark_columns(*left).empty() && !watermark_columns(*right).empty();
    const bool bounded = !spec.left_time.empty() && spec.lower != stream_join_spec::unbounded_below &&
                         spec.upper != stream_join_spec::unbounded_above;
    if (!watermarks || !bounded) {
      const std::string name = spec.type == join_type::left_outer ? "LeftOuter" : "RightOuter";
      throw error("join: Stream-stream " + name +
                  " join between two streaming DataFrame/Datasets is not supported without a watermark in the join "
                  "keys, or a watermark on the nullable side and an appropriate range condition; call "
                  "with_watermark on both sides and join on a condition bounding the right side's event time on "
                  "both ends (col(\"rt\") >= col(\"lt\") && col(\"rt\") <= col(\"lt\") + lit(\"1 hour\"))");
    }
  }
  auto op = std::make_shared<const stream_join_operator>(left->output, right->output, std::move(spec));
  plan_node node;
  node.kind = plan_kind::join;
  node.output = op->output_schema();
  node.op = std::move(op);
  node.children = {std::move(left), std::move(right)};
  return std::make_shared<const plan_node>(std::move(node));
}

// ---------------------------------------------------------------- the buffered rows

namespace {

// One buffered row of a side: its event time (0 without a time range), whether a row of the other side
// matched it, and its values.
struct buffered_row {
  std::int64_t side = 0;
  std::int64_t time = 0;
  bool matched = false;
  std::vector<value> cells;
};

void add_value(row_writer& out, const value& v) {
  std::visit(
      [&](const auto& x) {
        using V = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<V, null_value>) out.add_null();
        else if constexpr (std::is_same_v<V, std::vector<std::string>>) out.add_list(x);
        else out.add(x);
      },
      v);
}

// The state store's view of the buffered rows: one key per row, (side, join keys..., row id), whose value
// holds the row. Never part of a graph: it only gives keyed_state its layout and its save/load.
class join_buffer final : public keyed_operator<buffered_row> {
 public:
  explicit join_buffer(const stream_join_operator& join) : keyed_operator(spec_of(join)), join_(&join) {}

  void process(const batch&, const row_keys&, keyed_state<buffered_row>&, operator_context&) const override {
    throw error("join_buffer: not an operator of a graph");
  }
  void save(const buffered_row& row, row_writer& out) const override {
    out.add(row.side).add(row.time).add(row.matched);
    for (std::size_t s = 0; s < 2; ++s) {
      const std::size_t columns = join_->side_schema(s)->size();
      for (std::size_t c = 0; c < columns; ++c) {
        if (static_cast<std::size_t>(row.side) == s) add_value(out, row.cells[c]);
        else out.add_null();
      }
    }
  }
  buffered_row load(const batch& saved, std::size_t row) const override {
    buffered_row out;
    out.side = saved.col(0).ints()[row];
    out.time = saved.col(1).ints()[row];
    out.matched = saved.col(2).bools()[row];
    const auto& side = join_->side(static_cast<std::size_t>(out.side));
    for (std::size_t c = 0; c < side.rows->size(); ++c) out.cells.push_back(saved.at(row, side.first_state_column + c));
    return out;
  }

 private:
  static keyed_operator_spec spec_of(const stream_join_operator& join) {
    std::vector<field> keys{{"__side", type_id::int64, false}};
    for (std::size_t i = 0; i < join.side(0).keys.size(); ++i)
      keys.push_back({"__key" + std::to_string(i), (*join.side(0).rows)[join.side(0).keys[i]].type, true});
    keys.push_back({"__id", type_id::int64, false});
    std::vector<std::string> key_names;
    for (const auto& f : keys) key_names.push_back(f.name);
    std::vector<field> state{{"__row_side", type_id::int64, false}, {"__time", type_id::int64, false},
                             {"__matched", type_id::boolean, false}};
    for (std::size_t s = 0; s < 2; ++s) {
      for (field f : join.side_schema(s)->fields()) {
        f.name = (s == 0 ? "left." : "right.") + f.name;
        state.push_back(f);
      }
    }
    return {.name = "stream_stream_join_state", .input = make_schema(std::move(keys)), .keys = std::move(key_names),
            .output = {}, .state = std::move(state)};
  }
  const stream_join_operator* join_;
};

// Where a buffered row is: its key in the store, and a copy of what eviction and outer rows need.
struct buffered_entry {
  std::string state_key;
  std::uint64_t hash = 0;
  std::int64_t time = 0;
  bool matched = false;
  key_ref key() const { return {state_key, hash}; }
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
};
using join_index = std::unordered_map<std::string, std::vector<buffered_entry>, string_hash, std::equal_to<>>;

// A join key with a buffered row of this event time, so that eviction visits only the keys that have rows
// to evict: a min-heap by time (a key appears once per row; a visit evicts all its evictable rows).
struct eviction_due {
  std::int64_t time = 0;
  std::string join_key;
  bool operator>(const eviction_due& other) const { return time > other.time; }
};
using eviction_queue = std::priority_queue<eviction_due, std::vector<eviction_due>, std::greater<>>;

// One instance's state: the rows in the state store (checkpointed, memory or RocksDB), and in memory an
// index from each side's join keys to its buffered rows, rebuilt from the store after a restore.
class stream_join_state final : public operator_state {
 public:
  explicit stream_join_state(const stream_join_operator& join)
      : buffer_(std::make_unique<join_buffer>(join)), rows(*buffer_) {
    for (std::size_t s = 0; s < 2; ++s) columns[s] = join.side_schema(s)->size();
  }

  batch snapshot() const override { return rows.snapshot(); }
  void restore(const batch& snapshot) override {
    rows.restore(snapshot);
    stale = true;
  }
  batch take_changes() override { return rows.take_changes(); }
  void apply_changes(const batch& changes) override {
    rows.apply_changes(changes);
    stale = true;
  }
  std::size_t num_rows() const override { return rows.num_rows(); }
  std::size_t memory_bytes() const override {
    // The store, plus per buffered row its values and its index entry (heap blocks of strings not counted).
    std::size_t bytes = rows.memory_bytes();
    for (std::size_t s = 0; s < 2; ++s)
      bytes += buffered[s] * (columns[s] * sizeof(value) + sizeof(buffered_entry) + sizeof(eviction_due));
    return bytes;
  }
  void use_backend(const state_backend_config& config, const std::string& directory) override {
    rows.use_backend(config, directory);
  }
  bool snapshots_to_directory() const override { return rows.snapshots_to_directory(); }
  void snapshot_to(const std::string& directory) const override { rows.snapshot_to(directory); }
  void restore_from(const std::string& directory) override {
    rows.restore_from(directory);
    stale = true;
  }

  std::unique_ptr<join_buffer> buffer_;  // outlives rows, which refers to it
  keyed_state<buffered_row> rows;
  join_index index[2];
  eviction_queue due[2];
  std::size_t buffered[2] = {0, 0};  // rows in the index, by side
  std::size_t columns[2] = {0, 0};   // each side's columns
  bool stale = false;  // the index does not reflect rows (after a restore)
  std::int64_t epoch = -1;
  std::int64_t next_id = 0;
};

stream_join_state& typed(operator_state* state) {
  auto* join = dynamic_cast<stream_join_state*>(state);
  if (!join) throw error("stream_stream_join: the runtime passed a state of another operator");
  return *join;
}

// Rebuilds the index from the store: a state key is (side, join keys..., id).
void rebuild_index(const stream_join_operator& op, stream_join_state& st, const key_layout& state_layout) {
  for (auto& side : st.index) side.clear();
  for (auto& queue : st.due) queue = eviction_queue();
  st.buffered[0] = st.buffered[1] = 0;
  const std::size_t keys = op.side(0).keys.size();
  struct found {
    std::vector<std::vector<value>> key_values;  // by key column
    std::vector<buffered_entry> entries;
  } sides[2];
  for (auto& s : sides) s.key_values.resize(keys);
  st.rows.for_each([&](key_ref key, const buffered_row& row) {
    const auto values = decode_key(state_layout, key.bytes);
    auto& side = sides[std::get<std::int64_t>(values[0])];
    for (std::size_t k = 0; k < keys; ++k) side.key_values[k].push_back(values[1 + k]);
    side.entries.push_back({std::string(key.bytes), key.hash, row.time, row.matched});
  });
  for (std::size_t s = 0; s < 2; ++s) {
    std::vector<column> columns;
    for (std::size_t k = 0; k < keys; ++k)
      columns.push_back(make_column(op.join_key_layout().types()[k], sides[s].key_values[k]));
    const encoded_keys encoded = encode_keys(op.join_key_layout(), columns, sides[s].entries.size());
    for (std::size_t i = 0; i < sides[s].entries.size(); ++i) {
      if (op.ever_evicts(s)) st.due[s].push({sides[s].entries[i].time, std::string(encoded.key(i))});
      st.index[s][std::string(encoded.key(i))].push_back(std::move(sides[s].entries[i]));
    }
    st.buffered[s] = sides[s].entries.size();
  }
  st.stale = false;
}

// A row of one side: a row of an input batch, a buffered row's values, or nulls (none).
struct row_source {
  const batch* rows = nullptr;
  std::size_t row = 0;
  const std::vector<value>* cells = nullptr;

  void append(column_builder& out, std::size_t column) const {
    if (rows) out.append_from(rows->col(column), row);
    else if (cells) out.append_value((*cells)[column]);
    else out.append_null();
  }
  bool present() const { return rows || cells; }
};

class output_builder {
 public:
  explicit output_builder(const stream_join_operator& op) : op_(op) {
    for (const auto& f : op.output_schema()->fields()) columns_.emplace_back(f.type);
  }
  void add(const row_source& left, const row_source& right) {
    const auto& columns = op_.output_columns();
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const auto& from = columns[c];
      if (from.left && from.right) {
        const bool right_first = from.prefer_right ? right.present() : !left.present();
        if (right_first) right.append(columns_[c], *from.right);
        else left.append(columns_[c], *from.left);
      } else if (from.left) {
        left.append(columns_[c], *from.left);
      } else {
        right.append(columns_[c], *from.right);
      }
    }
    ++rows_;
  }
  void emit(operator_context& ctx) {
    if (rows_ == 0) return;
    std::vector<column> out;
    for (auto& c : columns_) out.push_back(c.finish());
    ctx.emit(batch(op_.output_schema(), std::move(out)));
  }

 private:
  const stream_join_operator& op_;
  std::vector<column_builder> columns_;
  std::size_t rows_ = 0;
};

key_layout state_key_layout(const stream_join_operator& op) {
  std::vector<type_id> types{type_id::int64};
  for (auto t : op.join_key_layout().types()) types.push_back(t);
  types.push_back(type_id::int64);
  return key_layout(std::move(types));
}

std::optional<std::size_t> time_index(const schema& side, const std::string& name) {
  if (name.empty()) return std::nullopt;
  return side.find(name);
}

}  // namespace

// ---------------------------------------------------------------- the operator

stream_join_operator::stream_join_operator(schema_ptr left, schema_ptr right, stream_join_spec spec)
    : spec_(std::move(spec)) {
  if (spec_.left_keys.empty() || spec_.left_keys.size() != spec_.right_keys.size())
    throw error("join: a stream-stream join needs key columns on both sides, as many on each");
  sides_[0].rows = std::move(left);
  sides_[1].rows = std::move(right);
  std::vector<type_id> key_types;
  for (std::size_t k = 0; k < spec_.left_keys.size(); ++k) {
    const std::string& l = spec_.left_keys[k];
    const std::string& r = spec_.right_keys[k];
    const auto li = sides_[0].rows->find(l);
    const auto ri = sides_[1].rows->find(r);
    if (!li) throw error("join: key column '" + l + "' is not a column of the left side [" + sides_[0].rows->to_string() + "]");
    if (!ri) throw error("join: key column '" + r + "' is not a column of the right side [" + sides_[1].rows->to_string() + "]");
    const type_id lt = (*sides_[0].rows)[*li].type, rt = (*sides_[1].rows)[*ri].type;
    if (lt != rt)
      throw error("join: key column '" + l + "' is " + std::string(type_name(lt)) + " on the left and '" + r + "' is " +
                  std::string(type_name(rt)) + " on the right; cast one side to the other's type first");
    sides_[0].keys.push_back(*li);
    sides_[1].keys.push_back(*ri);
    key_types.push_back(lt);
  }
  join_keys_ = key_layout(std::move(key_types));
  sides_[0].time = time_index(*sides_[0].rows, spec_.left_time);
  sides_[1].time = time_index(*sides_[1].rows, spec_.right_time);
  if (!spec_.left_time.empty() && (!sides_[0].time || !sides_[1].time))
    throw error("join: the time range's columns '" + spec_.left_time + "' and '" + spec_.right_time +
                "' are not columns of the left and the right side");
  sides_[0].first_state_column = 3;
  sides_[1].first_state_column = 3 + sides_[0].rows->size();

  // Spark's output: for using-columns the keys once, then each side's other columns; else all columns of
  // both sides. The side an outer join may pad with nulls is nullable.
  const bool left_nullable = spec_.type == join_type::right_outer, right_nullable = spec_.type == join_type::left_outer;
  std::vector<field> fields;
  auto add_side = [&](std::size_t s, bool nullable) {
    for (std::size_t c = 0; c < sides_[s].rows->size(); ++c) {
      if (spec_.using_columns && std::find(sides_[s].keys.begin(), sides_[s].keys.end(), c) != sides_[s].keys.end()) continue;
      field f = (*sides_[s].rows)[c];
      f.nullable = f.nullable || nullable;
      fields.push_back(f);
      output_column from;
      (s == 0 ? from.left : from.right) = c;
      columns_.push_back(from);
    }
  };
  if (spec_.using_columns) {
    join_output_schema(*sides_[0].rows, *sides_[1].rows, spec_.left_keys, join_type::inner);  // checks names and types
    for (std::size_t k = 0; k < spec_.left_keys.size(); ++k) {
      fields.push_back((*sides_[0].rows)[sides_[0].keys[k]]);
      columns_.push_back({sides_[0].keys[k], sides_[1].keys[k], spec_.type == join_type::right_outer});
    }
  } else {
    join_output_schema(*sides_[0].rows, *sides_[1].rows, join_type::inner);  // refuses shared column names
  }
  add_side(0, left_nullable);
  add_side(1, right_nullable);
  output_ = make_schema(std::move(fields));
}

std::string stream_join_operator::name() const {
  std::string on;
  for (std::size_t k = 0; k < spec_.left_keys.size(); ++k)
    on += (k ? ", " : "") + spec_.left_keys[k] + (spec_.using_columns ? "" : " = " + spec_.right_keys[k]);
  std::string range;
  if (!spec_.left_time.empty()) {
    auto bound = [](std::int64_t b, std::int64_t unbounded) {
      return b == unbounded ? std::string("unbounded") : std::to_string(b) + " us";
    };
    range = ", " + spec_.right_time + " - " + spec_.left_time + " in [" +
            bound(spec_.lower, stream_join_spec::unbounded_below) + ", " +
            bound(spec_.upper, stream_join_spec::unbounded_above) + "]";
  }
  return "StreamingSymmetricHashJoin " + std::string(to_string(spec_.type)) + " [" + on + range + "]";
}

std::unique_ptr<operator_state> stream_join_operator::make_state() const {
  return std::make_unique<stream_join_state>(*this);
}

bool stream_join_operator::ever_evicts(std::size_t s) const {
  if (spec_.left_time.empty()) return false;
  return s == 0 ? spec_.upper != stream_join_spec::unbounded_above : spec_.lower != stream_join_spec::unbounded_below;
}

bool stream_join_operator::evictable(std::size_t s, std::int64_t time, std::int64_t watermark) const {
  if (!ever_evicts(s)) return false;
  // A future row of the other side has an event time at or after the watermark. A left row (time l)
  // matches right rows in [l + lower, l + upper]; a right row (time r) left rows in [r - upper, r - lower].
  return s == 0 ? time < watermark - spec_.upper : time < watermark + spec_.lower;
}

void stream_join_operator::process(const batch& input, std::size_t input_index, operator_state* state,
                                   operator_context& ctx) const {
  if (input_index > 1) throw error("stream_stream_join: a join has two inputs, got a batch for input " + std::to_string(input_index));
  stream_join_state& st = typed(state);
  const key_layout state_layout = state_key_layout(*this);
  if (st.stale) rebuild_index(*this, st, state_layout);
  if (ctx.epoch() != st.epoch) {
    st.epoch = ctx.epoch();
    st.next_id = 0;
  }
  const std::size_t s = input_index, other = 1 - s;
  const side_layout& mine = sides_[s];
  const std::size_t n = input.num_rows();

  std::vector<column> key_columns;
  for (auto k : mine.keys) key_columns.push_back(input.col(k));
  const encoded_keys join_keys = encode_keys(join_keys_, key_columns, n);
  // Row ids unique within the instance: the epoch in the high bits, a count within it in the low ones.
  std::vector<std::int64_t> ids(n);
  for (auto& id : ids) id = (st.epoch << 32) | st.next_id++;
  std::vector<column> state_key_columns{make_int_column(std::vector<std::int64_t>(n, static_cast<std::int64_t>(s)))};
  state_key_columns.insert(state_key_columns.end(), key_columns.begin(), key_columns.end());
  state_key_columns.push_back(make_int_column(ids));
  const encoded_keys state_keys = encode_keys(state_layout, state_key_columns, n);

  const std::int64_t watermark = ctx.watermark();
  const column* times = mine.time ? &input.col(*mine.time) : nullptr;
  const bool ranged = !spec_.left_time.empty();
  output_builder out(*this);
  std::size_t late = 0;
  auto add_pair = [&](const row_source& mine_row, const row_source& other_row) {
    if (s == 0) out.add(mine_row, other_row);
    else out.add(other_row, mine_row);
  };
  for (std::size_t r = 0; r < n; ++r) {
    const row_source row{&input, r, nullptr};
    const bool null_key = std::any_of(key_columns.begin(), key_columns.end(), [&](const column& c) { return c.is_null(r); });
    if (times && times->valid(r) && watermark != operator_context::no_watermark && times->ints()[r] < watermark) {
      ++late;
      continue;
    }
    if (null_key || (ranged && !times->valid(r))) {
      // It can never match: an outer join's preserved side emits it at once.
      if (preserves(s)) add_pair(row, row_source{});
      continue;
    }
    const std::int64_t time = ranged ? times->ints()[r] : 0;
    bool matched = false;
    auto found = st.index[other].find(join_keys.key(r));
    if (found != st.index[other].end()) {
      for (auto& entry : found->second) {
        if (ranged) {
          const std::int64_t right_minus_left = s == 0 ? entry.time - time : time - entry.time;
          if (right_minus_left < spec_.lower || right_minus_left > spec_.upper) continue;
        }
        matched = true;
        if (!entry.matched && preserves(other)) {
          entry.matched = true;
          st.rows.get(entry.key()).matched = true;
        }
        const buffered_row* buffered = st.rows.find(entry.key());
        add_pair(row, row_source{nullptr, 0, &buffered->cells});
      }
    }
    buffered_row stored{static_cast<std::int64_t>(s), time, matched, {}};
    stored.cells.reserve(input.num_columns());
    for (std::size_t c = 0; c < input.num_columns(); ++c) stored.cells.push_back(input.at(r, c));
    const key_ref state_key = {state_keys.key(r), state_keys.hashes[r]};
    st.rows.put(state_key, std::move(stored));
    std::string join_key(join_keys.key(r));
    if (ever_evicts(s)) st.due[s].push({time, join_key});
    st.index[s][std::move(join_key)].push_back({std::string(state_key.bytes), state_key.hash, time, matched});
    ++st.buffered[s];
  }
  if (late > 0) ctx.count_rows_dropped_by_watermark(late);
  out.emit(ctx);
}

void stream_join_operator::on_watermark(std::int64_t watermark, operator_state* state, operator_context& ctx) const {
  stream_join_state& st = typed(state);
  if (st.stale) rebuild_index(*this, st, state_key_layout(*this));
  output_builder out(*this);
  for (std::size_t s = 0; s < 2; ++s) {
    auto& due = st.due[s];
    while (!due.empty() && evictable(s, due.top().time, watermark)) {
      const auto it = st.index[s].find(due.top().join_key);
      due.pop();
      if (it == st.index[s].end()) continue;  // its rows went at an earlier visit
      auto& entries = it->second;
      std::size_t kept = 0;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        buffered_entry& entry = entries[i];
        if (!evictable(s, entry.time, watermark)) {
          if (kept != i) entries[kept] = std::move(entry);
          ++kept;
          continue;
        }
        if (preserves(s) && !entry.matched) {
          const row_source row{nullptr, 0, &st.rows.find(entry.key())->cells};
          if (s == 0) out.add(row, row_source{});
          else out.add(row_source{}, row);
        }
        st.rows.remove(entry.key());
        --st.buffered[s];
      }
      entries.resize(kept);
      if (entries.empty()) st.index[s].erase(it);
    }
  }
  out.emit(ctx);
}

std::optional<operator_descriptor> stream_join_operator::descriptor() const {
  codec_writer out;
  out.write(to_string(spec_.type)).write(spec_.using_columns ? "using" : "condition");
  out.write(std::to_string(spec_.left_keys.size()));
  for (std::size_t k = 0; k < spec_.left_keys.size(); ++k) out.write(spec_.left_keys[k]).write(spec_.right_keys[k]);
  out.write(spec_.left_time).write(spec_.right_time).write(std::to_string(spec_.lower)).write(std::to_string(spec_.upper));
  out.write(*sides_[1].rows);
  return operator_descriptor{"stream_stream_join", out.text()};
}

operator_ptr stream_join_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  auto number = [&](std::string_view what) {
    const std::string text = reader.read_string();
    try {
      return std::stoll(text);
    } catch (const std::exception&) {
      throw error("stream_stream_join: the " + std::string(what) + " '" + text + "' is not a number");
    }
  };
  stream_join_spec spec;
  spec.type = parse_join_type(reader.read_string());
  spec.using_columns = reader.read_string() == "using";
  const auto keys = number("key count");
  for (std::int64_t k = 0; k < keys; ++k) {
    spec.left_keys.push_back(reader.read_string());
    spec.right_keys.push_back(reader.read_string());
  }
  spec.left_time = reader.read_string();
  spec.right_time = reader.read_string();
  spec.lower = number("lower bound");
  spec.upper = number("upper bound");
  schema_ptr right = reader.read_schema();
  reader.expect_end();
  return std::make_shared<stream_join_operator>(input, std::move(right), std::move(spec));
}

}  // namespace flow
