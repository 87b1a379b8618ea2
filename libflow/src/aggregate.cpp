// Hash aggregation: the operator (binding, schemas) and its state, an open-addressing table of groups
// with struct-of-arrays accumulators.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>

#include "flow/keys.hpp"
#include "flow/operators.hpp"

#include "expr_detail.hpp"

namespace flow {

namespace {

struct key_plan {
  bound_expr value;        // evaluated as a column (everything but sliding windows)
  bool sliding = false;
  bound_expr time;         // window: its time column
  std::int64_t length = 0, slide = 0, offset = 0;
  type_id type = type_id::int64;
  bool nullable = true;
  // The input column that the key (a window: its time) is, when it is a plain column reference; else -1.
  int input_column = -1;
};

struct agg_plan {
  agg_kind kind = agg_kind::count;
  bool star = false;        // count(*)
  bound_expr input;
  type_id value_type = type_id::int64;  // the accumulated value's type (sum/min/max/avg)
  std::size_t state_column = 0;         // first accumulator column in the state schema
};

const expr_node* unaliased(const expr& e) {
  const expr_node* n = &e.node();
  while (n->kind == expr_kind::alias) n = &n->children[0].node();
  return n;
}

// At most this many keys are hashed and compared as words (word_keys plans), the loops compiled per count.
constexpr std::size_t max_word_keys = 4;

// Spark's order of doubles: NaN above every number, so min and max do not depend on the row order.
inline bool spark_double_less(double a, double b) { return std::isnan(b) ? !std::isnan(a) : a < b; }

}  // namespace

struct aggregate_operator::impl {
  std::vector<key_plan> keys;
  std::vector<agg_plan> aggs;
  schema_ptr input, output, state;
  int window_key = -1;
  key_layout layout;
  bool word_keys = false;  // every key int64, timestamp or a tumbling window: hashed and compared as words
  // The last key is a sliding window whose length is a multiple of its slide: fold_sliding_windows applies.
  bool sliding_last = false;
};

aggregate_operator::aggregate_operator(schema_ptr input, std::vector<expr> keys, std::vector<agg_spec> aggs)
    : input_(std::move(input)), keys_(std::move(keys)), aggs_(std::move(aggs)) {
  if (!input_) throw error("aggregate: the input schema is missing");
  if (aggs_.empty()) throw error("agg(): needs at least one aggregate, e.g. count(*)");
  auto plan = std::make_shared<impl>();
  plan->input = input_;
  std::vector<field> key_fields;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    const expr& key = keys_[i];
    if (!key.valid()) throw error("group_by(): key " + std::to_string(i) + " is an empty expression");
    key_plan kp;
    bound_expr bound = bind(key, *input_);
    if (bound.type() == type_id::string_list) {
      throw error("group_by(): key '" + key.name() + "' is array<string>, which cannot be a grouping key here; "
                  "group by its elements with explode(...) in a select first");
    }
    kp.type = bound.type();
    kp.nullable = bound.nullable();
    const expr_node* node = unaliased(key);
    if (node->kind == expr_kind::window) {
      if (window_key_ >= 0) {
        throw error("group_by(): only one window(...) key is supported, but '" + keys_[window_key_].name() +
                    "' and '" + key.name() + "' are both windows");
      }
      window_key_ = static_cast<int>(i);
      kp.length = node->window_length;
      kp.slide = node->window_slide;
      kp.offset = node->window_offset;
      kp.sliding = node->window_slide != node->window_length;
      kp.time = bind(node->children[0], *input_);
    } else if (find_window(key)) {
      throw error("group_by(): window(...) must be a grouping key by itself, not part of '" + key.name() + "'");
    }
    if (!kp.sliding) kp.value = bound;
    const expr_node* plain = node->kind == expr_kind::window ? unaliased(node->children[0]) : node;
    if (plain->kind == expr_kind::column_ref) kp.input_column = static_cast<int>(input_->index_of(plain->name));
    key_fields.push_back(field{bound.name(), bound.type(), bound.nullable()});
    plan->keys.push_back(std::move(kp));
  }
  plan->window_key = window_key_;
  plan->word_keys = !plan->keys.empty() && plan->keys.size() <= max_word_keys && std::all_of(plan->keys.begin(), plan->keys.end(), [](const key_plan& k) {
    return !k.sliding && (k.type == type_id::int64 || k.type == type_id::timestamp || k.type == type_id::window);
  });
  plan->sliding_last = !plan->keys.empty() && plan->keys.back().sliding && plan->keys.back().length % plan->keys.back().slide == 0;
  std::vector<type_id> key_types;
  for (const auto& f : key_fields) key_types.push_back(f.type);
  plan->layout = key_layout(std::move(key_types));

  std::vector<field> out_fields = key_fields, state_fields = key_fields;
  for (std::size_t i = 0; i < aggs_.size(); ++i) {
    const agg_spec& spec = aggs_[i];
    agg_plan ap;
    ap.kind = spec.kind;
    ap.star = !spec.input.valid();
    if (ap.star && spec.kind != agg_kind::count) {
      throw error(std::string(to_string(spec.kind)) + "(): needs an input column; only count accepts *");
    }
    const std::string input_name = ap.star ? "1" : spec.input.name();
    const std::string name = spec.output_name.empty()
                                 ? std::string(to_string(spec.kind)) + "(" + input_name + ")"
                                 : spec.output_name;
    type_id in_type = type_id::int64;
    if (!ap.star) {
      ap.input = bind(spec.input, *input_);
      in_type = ap.input.type();
      if (in_type == type_id::string_list) {
        throw error(name + ": aggregates of array<string> columns are not supported ('" + input_name +
                    "'); aggregate size(" + input_name + ") or its exploded elements instead");
      }
    }
    const std::string idx = std::to_string(i);
    ap.state_column = state_fields.size();
    auto needs_numeric = [&] {
      if (!is_numeric(in_type)) {
        throw error(name + ": " + std::string(to_string(spec.kind)) + " needs a numeric (int64 or float64) input, but '" +
                    input_name + "' is " + std::string(type_name(in_type)) + "; cast it first");
      }
    };
    switch (spec.kind) {
      case agg_kind::sum:
        needs_numeric();
        ap.value_type = in_type;
        out_fields.push_back(field{name, in_type, true});
        state_fields.push_back(field{"__sum_" + idx, in_type, false});
        state_fields.push_back(field{"__cnt_" + idx, type_id::int64, false});
        break;
      case agg_kind::avg:
        needs_numeric();
        if (in_type != type_id::float64) ap.input = bind(spec.input.cast(type_id::float64), *input_);
        ap.value_type = type_id::float64;
        out_fields.push_back(field{name, type_id::float64, true});
        state_fields.push_back(field{"__sum_" + idx, type_id::float64, false});
        state_fields.push_back(field{"__cnt_" + idx, type_id::int64, false});
        break;
      case agg_kind::count:
        out_fields.push_back(field{name, type_id::int64, false});
        state_fields.push_back(field{"__cnt_" + idx, type_id::int64, false});
        break;
      case agg_kind::min:
      case agg_kind::max:
        if (in_type == type_id::window) {
          throw error(name + ": " + std::string(to_string(spec.kind)) + " of a window column is not supported");
        }
        ap.value_type = in_type;
        out_fields.push_back(field{name, in_type, true});
        state_fields.push_back(field{(spec.kind == agg_kind::min ? "__min_" : "__max_") + idx, in_type, true});
        break;
    }
    plan->aggs.push_back(std::move(ap));
  }
  output_ = make_schema(std::move(out_fields));
  state_ = make_schema(std::move(state_fields));
  plan->output = output_;
  plan->state = state_;
  impl_ = std::move(plan);
}

std::vector<std::string> aggregate_operator::key_names() const {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < keys_.size(); ++i) names.push_back((*output_)[i].name);
  return names;
}

std::string aggregate_operator::describe() const {
  std::string out = "Aggregate [";
  for (std::size_t i = 0; i < keys_.size(); ++i) out += (i ? ", " : "") + keys_[i].name();
  out += "], [";
  for (std::size_t i = 0; i < aggs_.size(); ++i) out += (i ? ", " : "") + (*output_)[keys_.size() + i].name;
  return out + "]";
}

namespace {

constexpr std::uint64_t null_key_word = 0x5851F42D4C957F2DULL;  // what a null key mixes into the hash

inline std::uint64_t double_key_word(double d) { return std::bit_cast<std::uint64_t>(d); }

// One key column as the table reads it: the keys' row j is row rows[j] of values (rows null: row j), so a
// row's keys are read in place for each of its sliding windows, not copied per window.
struct key_input {
  const column* values = nullptr;
  const std::uint32_t* rows = nullptr;
  std::size_t row(std::size_t j) const { return rows ? rows[j] : j; }
};

// One key of the rows as 64-bit words (word_keys plans): values[j] is the int64 or timestamp value of row j,
// or the start of its tumbling window of window_length (0: not a window), whose end is start + window_length.
struct word_key {
  const std::int64_t* values = nullptr;
  std::int64_t window_length = 0;
};

// One key column's values per group: the table's only copy of its keys, which it hashes and compares in
// place and outputs.
struct key_store {
  type_id type = type_id::int64;
  std::vector<std::int64_t> ints;  // int64, timestamp, window start, boolean
  std::vector<std::int64_t> ends;  // window end
  std::vector<double> doubles;     // normalized_key values
  // String g is chars[offset(g), offset(g + 1)); an offset is 4 bytes relative to its chunk's base.
  std::string chars;
  std::vector<std::uint32_t> starts;
  std::vector<std::uint64_t> chunk_bases;  // one per chunk_groups offsets
  std::vector<std::uint8_t> valid;  // empty while every group's key is valid
  static constexpr std::size_t chunk_groups = 65536;

  explicit key_store(type_id t) : type(t) {
    if (type == type_id::string) {
      starts.push_back(0);
      chunk_bases.push_back(0);
    }
  }

  bool is_valid(std::size_t g) const { return valid.empty() || valid[g]; }
  std::size_t offset(std::size_t g) const { return chunk_bases[g / chunk_groups] + starts[g]; }
  std::string_view str(std::size_t g) const {
    const std::size_t begin = offset(g);
    return {chars.data() + begin, offset(g + 1) - begin};
  }

  void append_string(std::string_view s) {
    // Grown by a quarter, not doubled: the characters are most of a string key's state.
    if (chars.size() + s.size() > chars.capacity())
      chars.reserve(std::max(chars.size() + s.size(), chars.capacity() + chars.capacity() / 4));
    chars.append(s);
    if (starts.size() % chunk_groups == 0) chunk_bases.push_back(chars.size());
    const std::size_t start = chars.size() - chunk_bases.back();
    if (start > UINT32_MAX) {
      throw error("aggregation: " + std::to_string(chunk_groups) + " consecutive groups have string keys of more "
                  "than 4 GiB together; group by a shorter key (a hash or a prefix of the string)");
    }
    starts.push_back(static_cast<std::uint32_t>(start));
  }

  void reserve(std::size_t groups) {
    switch (type) {
      case type_id::float64: doubles.reserve(groups); break;
      case type_id::window: ends.reserve(groups); [[fallthrough]];
      case type_id::boolean:
      case type_id::int64:
      case type_id::timestamp: ints.reserve(groups); break;
      case type_id::string: starts.reserve(groups + 1); break;
      case type_id::string_list: break;
    }
    if (!valid.empty()) valid.reserve(groups);
  }

  // Appends row i of c as group `groups` (the number of groups before it).
  void push(const column& c, std::size_t i, std::size_t groups, std::size_t capacity) {
    const bool ok = c.valid(i);
    if (!ok && valid.empty()) {
      valid.reserve(capacity);
      valid.assign(groups, 1);
    }
    if (!ok || !valid.empty()) valid.push_back(ok);
    switch (type) {
      case type_id::boolean: ints.push_back(ok ? c.bools()[i] : 0); break;
      case type_id::int64:
      case type_id::timestamp: ints.push_back(ok ? c.ints()[i] : 0); break;
      case type_id::float64: doubles.push_back(ok ? normalized_key(c.doubles()[i]) : 0.0); break;
      case type_id::window:
        ints.push_back(ok ? c.ints()[i] : 0);
        ends.push_back(ok ? c.ends()[i] : 0);
        break;
      case type_id::string: append_string(ok ? c.str(i) : std::string_view{}); break;
      case type_id::string_list: throw error("internal: array<string> grouping key");
    }
  }

  // Appends a valid int64 or timestamp value, or the window [v, v + window_length), as the next group.
  void push_word(std::int64_t v, std::int64_t window_length) {
    if (!valid.empty()) valid.push_back(1);
    ints.push_back(v);
    if (type == type_id::window) ends.push_back(v + window_length);
  }

  // h with group g's key mixed in, as mix_column mixes an equal input key.
  std::uint64_t mix(std::uint64_t h, std::size_t g) const {
    if (!is_valid(g)) return mix_key_word(h, null_key_word);
    switch (type) {
      case type_id::float64: return mix_key_word(h, double_key_word(doubles[g]));
      case type_id::window: return mix_key_word(mix_key_word(h, static_cast<std::uint64_t>(ints[g])), static_cast<std::uint64_t>(ends[g]));
      case type_id::string: return mix_key_word(h, hash_key_bytes(str(g)));
      default: return mix_key_word(h, static_cast<std::uint64_t>(ints[g]));
    }
  }

  // Mixes each input row's key into hashes[j] (in.values has this store's type).
  void mix_column(const key_input& in, std::vector<std::uint64_t>& hashes) const {
    const column& c = *in.values;
    const bool nulls = c.has_nulls();
    auto each = [&](auto word) {
      for (std::size_t j = 0; j < hashes.size(); ++j) {
        const std::size_t i = in.row(j);
        hashes[j] = mix_key_word(hashes[j], !nulls || c.valid(i) ? word(i) : null_key_word);
      }
    };
    switch (type) {
      case type_id::boolean: each([&](std::size_t i) { return std::uint64_t{c.bools()[i]}; }); break;
      case type_id::int64:
      case type_id::timestamp: each([&](std::size_t i) { return static_cast<std::uint64_t>(c.ints()[i]); }); break;
      case type_id::float64: each([&](std::size_t i) { return double_key_word(normalized_key(c.doubles()[i])); }); break;
      case type_id::window:
        each([&](std::size_t i) { return static_cast<std::uint64_t>(c.ints()[i]); });
        each([&](std::size_t i) { return static_cast<std::uint64_t>(c.ends()[i]); });
        break;
      case type_id::string: {
        if (!in.rows) {
          each([&](std::size_t i) { return hash_key_bytes(c.str(i)); });
          break;
        }
        std::vector<std::uint64_t> row_hashes(c.size());  // each input row's string hashed once
        for (std::size_t i = 0; i < c.size(); ++i) row_hashes[i] = hash_key_bytes(c.str(i));
        each([&](std::size_t i) { return row_hashes[i]; });
        break;
      }
      case type_id::string_list: throw error("internal: array<string> grouping key");
    }
  }

  bool equals(std::size_t g, const column& c, std::size_t i) const {
    const bool ok = c.valid(i);
    if (ok != is_valid(g)) return false;
    if (!ok) return true;
    switch (type) {
      case type_id::boolean: return ints[g] == c.bools()[i];
      case type_id::float64: return double_key_word(doubles[g]) == double_key_word(normalized_key(c.doubles()[i]));
      case type_id::window: return ints[g] == c.ints()[i] && ends[g] == c.ends()[i];
      case type_id::string: return str(g) == c.str(i);
      default: return ints[g] == c.ints()[i];
    }
  }

  // Keeps only the groups in ids, in their order.
  void keep_groups(const std::vector<std::uint32_t>& ids);

  std::size_t memory_bytes() const {
    return (ints.capacity() + ends.capacity() + doubles.capacity() + chunk_bases.capacity()) * 8 +
           starts.capacity() * 4 + chars.capacity() + valid.capacity();
  }
};

struct accumulator {
  agg_kind kind = agg_kind::count;
  type_id type = type_id::int64;       // value type
  std::vector<std::int64_t> ints;      // int sums, int/timestamp/bool min/max
  std::vector<double> doubles;         // double sums, avg sums, double min/max
  std::vector<std::string> strings;    // string min/max
  std::vector<std::int64_t> counts;    // non-null inputs seen (min/max: has a value when > 0)

  void reserve(std::size_t n) {
    counts.reserve(n);
    if (kind == agg_kind::count) return;
    if (type == type_id::float64) doubles.reserve(n);
    else if (type == type_id::string) strings.reserve(n);
    else ints.reserve(n);
  }

  void resize(std::size_t n) {
    counts.resize(n, 0);
    if (kind == agg_kind::count) return;
    if (type == type_id::float64) doubles.resize(n, 0.0);
    else if (type == type_id::string) strings.resize(n);
    else ints.resize(n, 0);
  }

  // Empties the given groups, as if they had seen no input.
  void reset(const std::vector<std::uint32_t>& groups) {
    for (auto g : groups) {
      counts[g] = 0;
      if (kind == agg_kind::count) continue;
      if (type == type_id::float64) doubles[g] = 0.0;
      else if (type == type_id::string) strings[g].clear();
      else ints[g] = 0;
    }
  }
};

template <class T>
void keep_only(std::vector<T>& v, const std::vector<std::uint32_t>& ids) {
  if (v.empty()) return;
  std::vector<T> out;
  out.reserve(ids.size());
  for (auto id : ids) out.push_back(std::move(v[id]));
  v = std::move(out);
}

void key_store::keep_groups(const std::vector<std::uint32_t>& ids) {
  keep_only(ints, ids);
  keep_only(ends, ids);
  keep_only(doubles, ids);
  keep_only(valid, ids);
  if (type != type_id::string) return;
  key_store kept(type);
  kept.starts.reserve(ids.size() + 1);
  for (auto g : ids) kept.append_string(str(g));
  chars = std::move(kept.chars);
  starts = std::move(kept.starts);
  chunk_bases = std::move(kept.chunk_bases);
}

std::vector<std::uint64_t> validity_bits(const std::vector<std::uint8_t>& valid, std::size_t& nulls) {
  nulls = static_cast<std::size_t>(std::count(valid.begin(), valid.end(), std::uint8_t{0}));
  if (nulls == 0) return {};
  std::vector<std::uint64_t> bits((valid.size() + 63) / 64, 0);
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if (valid[i]) bits[i >> 6] |= std::uint64_t{1} << (i & 63);
  }
  return bits;
}

column make_column_from(type_id type, std::shared_ptr<column_data> d, const std::vector<std::uint8_t>& valid) {
  d->type = type;
  d->length = valid.size();
  d->validity = validity_bits(valid, d->null_count);
  return column(std::shared_ptr<const column_data>(std::move(d)));
}

class hash_aggregate_state final : public aggregate_state {
 public:
  explicit hash_aggregate_state(std::shared_ptr<const aggregate_operator::impl> plan) : plan_(std::move(plan)) {
    for (const auto& k : plan_->keys) key_values_.emplace_back(k.type);
    // Fixed-width keys first: a probe that meets another group mostly fails on them, without a string compare.
    for (std::size_t k = 0; k < plan_->keys.size(); ++k) {
      if (plan_->keys[k].type != type_id::string) compare_order_.push_back(k);
    }
    for (std::size_t k = 0; k < plan_->keys.size(); ++k) {
      if (plan_->keys[k].type == type_id::string) compare_order_.push_back(k);
    }
    for (const auto& a : plan_->aggs) accs_.push_back(accumulator{a.kind, a.value_type, {}, {}, {}, {}});
    reset_slots(64);
  }

  std::size_t update(const batch& input, timestamp watermark) override {
    check_schema(*plan_->input, input, "update");
    const std::size_t n = input.num_rows();
    if (n == 0) return 0;
    if (plan_->word_keys && fold_word_keys(input, watermark)) return 0;
    if (plan_->sliding_last && fold_sliding_windows(input, watermark)) return 0;
    std::vector<column> keys(plan_->keys.size());
    std::vector<column> values(plan_->aggs.size());
    std::vector<std::uint32_t> expand;  // input row per expanded row, when rows are expanded or dropped
    bool expanded = false;
    column window_column;
    for (std::size_t k = 0; k < plan_->keys.size(); ++k) {
      const key_plan& kp = plan_->keys[k];
      if (kp.sliding) {
        window_column = sliding_windows(kp, kp.time.evaluate(input), expand);
        expanded = true;
      } else {
        keys[k] = kp.value.evaluate(input);
      }
    }
    for (std::size_t a = 0; a < plan_->aggs.size(); ++a) {
      if (!plan_->aggs[a].star) values[a] = plan_->aggs[a].input.evaluate(input);
    }
    const int wk = plan_->window_key;
    if (!expanded && wk >= 0 && keys[wk].has_nulls()) {
      // Spark drops rows whose event time is null from windowed aggregation.
      for (std::size_t i = 0; i < n; ++i) {
        if (keys[wk].valid(i)) expand.push_back(static_cast<std::uint32_t>(i));
      }
      expanded = true;
    }
    const std::size_t late = drop_closed_windows(watermark, n, keys, window_column, expand, expanded);
    std::size_t rows = n;
    std::vector<key_input> inputs(keys.size());
    for (std::size_t k = 0; k < keys.size(); ++k) {
      if (static_cast<int>(k) == wk && plan_->keys[k].sliding) inputs[k] = {&window_column, nullptr};
      else inputs[k] = {&keys[k], expanded ? expand.data() : nullptr};
    }
    if (expanded) {
      rows = expand.size();
      for (auto& v : values) {
        if (v.data()) v = take_rows(v, expand);
      }
      if (rows == 0) return late;
    }
    const auto gids = find_groups(inputs, rows);
    for (std::size_t a = 0; a < accs_.size(); ++a) fold_input(accs_[a], plan_->aggs[a], values[a], gids);
    return late;
  }

  void merge(const batch& state_rows) override {
    check_schema(*plan_->state, state_rows, "merge");
    const std::size_t n = state_rows.num_rows();
    if (n == 0) return;
    const auto gids = find_groups(state_keys(state_rows), n);
    for (std::size_t a = 0; a < accs_.size(); ++a) fold_state(accs_[a], plan_->aggs[a], state_rows, gids);
  }

  batch emit(output_mode mode, timestamp watermark) override {
    std::vector<std::uint32_t> ids;
    switch (mode) {
      case output_mode::complete: ids = all_groups(); break;
      case output_mode::update: ids = changed_groups(); break;
      case output_mode::append: {
        if (plan_->window_key < 0) {
          throw error("append output mode needs a window(...) grouping key and a watermark, so that a group is final "
                      "when the watermark passes its window end; use update or complete mode for this aggregation");
        }
        ids = expired(watermark);
        break;
      }
    }
    batch out = build(ids, false);
    if (mode == output_mode::append) evict_groups(watermark);
    clear_changed();
    return out;
  }

  batch snapshot() const override { return build(all_groups(), true); }
  batch changed_since_emit() const override { return build(changed_groups(), true); }
  std::size_t num_changed() const override { return num_changed_; }
  batch groups_since(std::size_t first) const override {
    std::vector<std::uint32_t> ids;
    for (auto g = static_cast<std::uint32_t>(first); g < groups_; ++g) ids.push_back(g);
    return build(ids, true);
  }

  void restore(const batch& state_rows) override {
    clear();
    merge(state_rows);
    clear_changed();
  }

  void replace_groups(const batch& state_rows) override {
    check_schema(*plan_->state, state_rows, "replace_groups");
    const std::size_t n = state_rows.num_rows();
    if (n == 0) return;
    const auto gids = find_groups(state_keys(state_rows), n);
    // Folding a state row into an empty accumulator yields that row's values.
    for (std::size_t a = 0; a < accs_.size(); ++a) {
      accs_[a].reset(gids);
      fold_state(accs_[a], plan_->aggs[a], state_rows, gids);
    }
  }

  batch evict_groups(timestamp watermark) override {
    const auto gone = expired(watermark);
    if (gone.empty()) return batch::empty(plan_->state);
    batch evicted = build(gone, true);
    std::vector<std::uint8_t> drop(groups_, 0);
    for (auto g : gone) drop[g] = 1;
    std::vector<std::uint32_t> keep;
    keep.reserve(groups_ - gone.size());
    for (std::uint32_t g = 0; g < groups_; ++g) {
      if (!drop[g]) keep.push_back(g);
    }
    compact(keep);
    return evicted;
  }

  void clear() override {
    groups_ = 0;
    capacity_ = 0;
    for (auto& k : key_values_) k = key_store(k.type);
    for (auto& a : accs_) a = accumulator{a.kind, a.type, {}, {}, {}, {}};
    changed_bits_.clear();
    num_changed_ = 0;
    reset_slots(64);
  }

  std::size_t num_groups() const override { return groups_; }

  std::size_t memory_bytes() const override {
    std::size_t bytes = slots_.capacity() * sizeof(std::uint32_t) + changed_bits_.capacity() * 8;
    for (const auto& k : key_values_) bytes += k.memory_bytes();
    for (const auto& a : accs_) {
      bytes += (a.ints.capacity() + a.doubles.capacity() + a.counts.capacity()) * 8;
      for (const auto& s : a.strings) bytes += sizeof(std::string) + (s.capacity() > 15 ? s.capacity() : 0);
    }
    return bytes;
  }

 private:
  static void check_schema(const schema& expected, const batch& b, std::string_view what) {
    bool ok = b.schema().size() == expected.size();
    for (std::size_t i = 0; ok && i < expected.size(); ++i) ok = b.schema()[i].type == expected[i].type;
    if (!ok) {
      throw error("aggregate " + std::string(what) + ": the batch has schema (" + b.schema().to_string() +
                  "), but the aggregation expects (" + expected.to_string() + ")");
    }
  }

  // Leaves out the (row, window) pairs whose window ended at or before watermark: the rows to fold are
  // expand's (all n when !expanded), their windows keys[window] (tumbling) or window_column (sliding, one
  // per expand entry). Returns the rows that had a window and were left with none (late rows).
  std::size_t drop_closed_windows(timestamp watermark, std::size_t n, const std::vector<column>& keys,
                                  column& window_column, std::vector<std::uint32_t>& expand, bool& expanded) const {
    const int wk = plan_->window_key;
    if (wk < 0 || watermark.micros == INT64_MIN) return 0;
    const bool per_pair = plan_->keys[wk].sliding;
    const std::int64_t* ends = (per_pair ? window_column : keys[wk]).ends();
    const std::size_t pairs = expanded ? expand.size() : n;
    std::vector<std::uint8_t> open(n, 0), windowed(n, 0);
    std::vector<std::uint32_t> kept_rows, kept_pairs;
    kept_rows.reserve(pairs);
    for (std::size_t j = 0; j < pairs; ++j) {
      const std::uint32_t row = expanded ? expand[j] : static_cast<std::uint32_t>(j);
      windowed[row] = 1;
      if (ends[per_pair ? j : row] <= watermark.micros) continue;
      open[row] = 1;
      kept_rows.push_back(row);
      kept_pairs.push_back(static_cast<std::uint32_t>(j));
    }
    if (kept_rows.size() == pairs) return 0;
    if (per_pair) window_column = take_rows(window_column, kept_pairs);
    expand = std::move(kept_rows);
    expanded = true;
    std::size_t late = 0;
    for (std::size_t row = 0; row < n; ++row) late += windowed[row] && !open[row] ? 1 : 0;
    return late;
  }

  // Expands each row into the sliding windows that contain it (Spark: ceil(length / slide) candidates).
  static column sliding_windows(const key_plan& kp, const column& ts, std::vector<std::uint32_t>& rows) {
    const std::size_t n = ts.size();
    const std::int64_t per_row = (kp.length + kp.slide - 1) / kp.slide;
    column_builder builder(type_id::window, n * static_cast<std::size_t>(per_row));
    const auto* t = ts.ints();
    for (std::size_t i = 0; i < n; ++i) {
      if (!ts.valid(i)) continue;
      std::int64_t r = (t[i] - kp.offset) % kp.slide;
      if (r < 0) r += kp.slide;
      const std::int64_t last_start = t[i] - r;
      for (std::int64_t j = per_row - 1; j >= 0; --j) {
        const std::int64_t start = last_start - j * kp.slide;
        if (start <= t[i] && t[i] < start + kp.length) {
          builder.append_window({timestamp{start}, timestamp{start + kp.length}});
          rows.push_back(static_cast<std::uint32_t>(i));
        }
      }
    }
    return builder.finish();
  }

  // update() without copies for word_keys plans: the keys hashed and compared where they are, a tumbling window's
  // start computed from the event time (no window column). False, having folded nothing, when a key has a null
  // or a window ended at or before watermark: the general path handles those rows.
  bool fold_word_keys(const batch& input, timestamp watermark) {
    const std::size_t n = input.num_rows();
    const std::vector<std::uint32_t>* selection = input.selection();
    std::vector<column> key_columns(plan_->keys.size());
    std::vector<word_key> keys(plan_->keys.size());
    key_words_.resize(keys.size());
    for (std::size_t k = 0; k < keys.size(); ++k) {
      const key_plan& kp = plan_->keys[k];
      const bool window = kp.type == type_id::window;
      // A key column of a selection (a filter's output) is read through the selection, not copied whole.
      const bool selected = selection && kp.input_column >= 0;
      key_columns[k] = selected ? input.base_col(static_cast<std::size_t>(kp.input_column)) : (window ? kp.time : kp.value).evaluate(input);
      if (key_columns[k].has_nulls()) return false;
      const std::int64_t* values = key_columns[k].ints();
      if (!window && !selected) {
        keys[k] = {values, 0};
        continue;
      }
      std::vector<std::int64_t>& words = key_words_[k];
      words.resize(n);
      for (std::size_t j = 0; j < n; ++j) words[j] = values[selected ? (*selection)[j] : j];
      if (window) {
        // Event times mostly arrive in order: a row in the previous row's window needs no division.
        std::int64_t start = 0, end = 0;
        for (auto& time : words) {
          if (time < start || time >= end) {
            start = detail::tumbling_window_start(time, kp.slide, kp.offset);
            end = start + kp.slide;
          }
          time = start;
        }
        if (watermark.micros != INT64_MIN) {
          for (auto start_of_row : words)
            if (start_of_row + kp.length <= watermark.micros) return false;
        }
      }
      keys[k] = {words.data(), window ? kp.length : 0};
    }
    std::vector<std::uint32_t> gids(n);
    if (!find_dense_word_groups(keys, gids)) find_word_groups(keys, gids);
    for (auto& a : accs_) a.resize(groups_);
    for (std::size_t a = 0; a < accs_.size(); ++a) {
      const agg_plan& ap = plan_->aggs[a];
      fold_input(accs_[a], ap, ap.star ? column{} : ap.input.evaluate(input), gids);
    }
    return true;
  }

  // The groups of the rows of word keys keys (gids: one per row): the keys hashed, then looked up in the table.
  void find_word_groups(const std::vector<word_key>& keys, std::vector<std::uint32_t>& gids) {
    std::vector<std::uint64_t> hashes(gids.size(), key_hash_seed);
    for (const auto& k : keys) {
      for (std::size_t j = 0; j < gids.size(); ++j) hashes[j] = mix_key_word(hashes[j], static_cast<std::uint64_t>(k.values[j]));
      if (k.window_length == 0) continue;
      for (std::size_t j = 0; j < gids.size(); ++j) hashes[j] = mix_key_word(hashes[j], static_cast<std::uint64_t>(k.values[j] + k.window_length));
    }
    switch (keys.size()) {
      case 1: find_word_groups<1>(keys.data(), hashes, gids); break;
      case 2: find_word_groups<2>(keys.data(), hashes, gids); break;
      case 3: find_word_groups<3>(keys.data(), hashes, gids); break;
      default: find_word_groups<max_word_keys>(keys.data(), hashes, gids); break;  // word_keys: at most max_word_keys
    }
  }

  // find_word_groups when the rows' keys span a small domain (YSB: 100 campaigns in one or two windows per batch):
  // each row's keys numbered by their offsets from the batch's minimums (a window's in window lengths), the
  // number indexing an array of the groups, so the table is hashed and probed once per distinct key, not per row.
  // False, having done nothing, when the domain has more than a quarter as many entries as there are rows.
  bool find_dense_word_groups(const std::vector<word_key>& keys, std::vector<std::uint32_t>& gids) {
    const std::size_t n = gids.size();
    const std::uint64_t most_entries = n / 4;
    std::uint64_t entries = 1;
    std::int64_t lows[max_word_keys];
    std::uint64_t spans[max_word_keys];
    for (std::size_t k = 0; k < keys.size(); ++k) {
      const auto [low, high] = std::minmax_element(keys[k].values, keys[k].values + n);
      const std::uint64_t step = keys[k].window_length ? static_cast<std::uint64_t>(keys[k].window_length) : 1;
      lows[k] = *low;
      spans[k] = (static_cast<std::uint64_t>(*high) - static_cast<std::uint64_t>(*low)) / step + 1;
      if (spans[k] > most_entries || entries * spans[k] > most_entries) return false;
      entries *= spans[k];
    }
    // Each row's entry: the keys' offsets in mixed radix. A window start's offset (a multiple of its length,
    // as every start is the offset plus a multiple of it) is divided once per change of window.
    std::vector<std::uint32_t>& entry = dense_entry_;
    entry.assign(n, 0);
    for (std::size_t k = 0; k < keys.size(); ++k) {
      const std::int64_t* values = keys[k].values;
      const auto scale = static_cast<std::uint32_t>(spans[k]);
      const auto low = static_cast<std::uint64_t>(lows[k]);
      if (keys[k].window_length == 0) {
        for (std::size_t j = 0; j < n; ++j) entry[j] = entry[j] * scale + static_cast<std::uint32_t>(static_cast<std::uint64_t>(values[j]) - low);
        continue;
      }
      const auto length = static_cast<std::uint64_t>(keys[k].window_length);
      std::int64_t last = lows[k];
      std::uint32_t offset = 0;
      for (std::size_t j = 0; j < n; ++j) {
        if (values[j] != last) {
          last = values[j];
          offset = static_cast<std::uint32_t>((static_cast<std::uint64_t>(last) - low) / length);
        }
        entry[j] = entry[j] * scale + offset;
      }
    }
    // The first row of each entry is looked up in the table (in row order: groups are added as before).
    constexpr std::uint32_t none = UINT32_MAX;
    std::vector<std::uint32_t>& group_of = dense_groups_;
    group_of.assign(entries, none);
    std::vector<std::uint32_t> first_rows;
    for (std::size_t j = 0; j < n; ++j) {
      if (group_of[entry[j]] == none) {
        group_of[entry[j]] = 0;
        first_rows.push_back(static_cast<std::uint32_t>(j));
      }
    }
    std::vector<std::vector<std::int64_t>> first_values(keys.size(), std::vector<std::int64_t>(first_rows.size()));
    std::vector<word_key> first_keys(keys.size());
    for (std::size_t k = 0; k < keys.size(); ++k) {
      for (std::size_t i = 0; i < first_rows.size(); ++i) first_values[k][i] = keys[k].values[first_rows[i]];
      first_keys[k] = {first_values[k].data(), keys[k].window_length};
    }
    std::vector<std::uint32_t> first_gids(first_rows.size());
    find_word_groups(first_keys, first_gids);
    for (std::size_t i = 0; i < first_rows.size(); ++i) group_of[entry[first_rows[i]]] = first_gids[i];
    for (std::size_t j = 0; j < n; ++j) gids[j] = group_of[entry[j]];
    return true;
  }

  // update() for plans whose last key is a sliding window of a length that is a multiple of its slide, so
  // that every row is in length / slide windows: each row's windows are probed as their starts are computed
  // (the row's other keys hashed once), without a window column. The (row, window) pairs are folded in the
  // general path's order. False, having folded nothing, when an event time is null or a window ended at or
  // before watermark: the general path handles those rows.
  bool fold_sliding_windows(const batch& input, timestamp watermark) {
    const std::size_t n = input.num_rows();
    const std::size_t wk = plan_->keys.size() - 1;
    const key_plan& kp = plan_->keys[wk];
    const column times = kp.time.evaluate(input);
    if (times.has_nulls()) return false;
    const auto per_row = static_cast<std::size_t>(kp.length / kp.slide);
    const std::int64_t* t = times.ints();
    std::vector<std::int64_t> first_starts(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t r = (t[i] - kp.offset) % kp.slide;
      if (r < 0) r += kp.slide;
      first_starts[i] = t[i] - r - static_cast<std::int64_t>(per_row - 1) * kp.slide;
      if (watermark.micros != INT64_MIN && first_starts[i] + kp.length <= watermark.micros) return false;
    }
    std::vector<column> key_columns(wk);
    std::vector<std::uint64_t> hashes(n, key_hash_seed);
    for (std::size_t k = 0; k < wk; ++k) {
      key_columns[k] = plan_->keys[k].value.evaluate(input);
      key_values_[k].mix_column({&key_columns[k], nullptr}, hashes);
    }
    const key_store& windows = key_values_[wk];
    auto same_other_keys = [&](std::uint32_t g, std::size_t i) {
      for (auto k : compare_order_) {
        if (k != wk && !key_values_[k].equals(g, key_columns[k], i)) return false;
      }
      return true;
    };
    std::vector<std::uint32_t> gids(n * per_row), expand(n * per_row);
    std::size_t pair = 0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t w = 0; w < per_row; ++w, ++pair) {
        const std::int64_t start = first_starts[i] + static_cast<std::int64_t>(w) * kp.slide, end = start + kp.length;
        std::size_t pos = finish_key_hash(mix_key_word(mix_key_word(hashes[i], static_cast<std::uint64_t>(start)),
                                                       static_cast<std::uint64_t>(end))) & mask_;
        std::uint32_t g;
        for (;;) {
          const std::uint32_t slot = slots_[pos];
          if (slot == 0) {
            g = insert(pos, [&] {
              for (std::size_t k = 0; k < wk; ++k) key_values_[k].push(key_columns[k], i, groups_, capacity_);
              key_values_[wk].push_word(start, kp.length);
            });
            break;
          }
          g = slot - 1;
          if (windows.ints[g] == start && windows.ends[g] == end && windows.is_valid(g) && same_other_keys(g, i)) break;
          pos = (pos + 1) & mask_;
        }
        gids[pair] = g;
        expand[pair] = static_cast<std::uint32_t>(i);
        mark_changed(g);
      }
    }
    for (auto& a : accs_) a.resize(groups_);
    for (std::size_t a = 0; a < accs_.size(); ++a) {
      const agg_plan& ap = plan_->aggs[a];
      fold_input(accs_[a], ap, ap.star ? column{} : take_rows(ap.input.evaluate(input), expand), gids);
    }
    return true;
  }

  // find_groups for `count` word keys hashed into hashes (the same hash as group_hash of an equal group): the keys
  // compared as words without a branch per key, the key stores' buffers held in locals (reloaded after an insert).
  template <std::size_t count>
  void find_word_groups(const word_key* keys, const std::vector<std::uint64_t>& hashes, std::vector<std::uint32_t>& gids) {
    const std::int64_t *starts[count], *ends[count];
    const std::uint8_t* valid[count];
    auto load_stores = [&] {
      for (std::size_t k = 0; k < count; ++k) {
        const key_store& store = key_values_[k];
        starts[k] = store.ints.data();
        ends[k] = store.ends.data();
        valid[k] = store.valid.empty() ? nullptr : store.valid.data();
      }
    };
    load_stores();
    for (std::size_t j = 0; j < gids.size(); ++j) {
      std::size_t pos = finish_key_hash(hashes[j]) & mask_;
      std::uint32_t g;
      for (;;) {
        const std::uint32_t slot = slots_[pos];
        if (slot == 0) {
          g = insert(pos, [&] {
            for (std::size_t k = 0; k < count; ++k) key_values_[k].push_word(keys[k].values[j], keys[k].window_length);
          });
          load_stores();
          break;
        }
        g = slot - 1;
        std::uint64_t differ = 0;
        for (std::size_t k = 0; k < count; ++k) {
          const std::int64_t v = keys[k].values[j];
          differ |= static_cast<std::uint64_t>(starts[k][g] ^ v);
          if (keys[k].window_length) differ |= static_cast<std::uint64_t>(ends[k][g] ^ (v + keys[k].window_length));
          if (valid[k]) differ |= !valid[k][g];
        }
        if (differ == 0) break;
        pos = (pos + 1) & mask_;
      }
      gids[j] = g;
      mark_changed(g);
    }
  }

  std::vector<key_input> state_keys(const batch& state_rows) const {
    std::vector<key_input> keys(plan_->keys.size());
    for (std::size_t k = 0; k < keys.size(); ++k) keys[k] = {&state_rows.col(k), nullptr};
    return keys;
  }

  std::uint64_t group_hash(std::size_t g) const {
    std::uint64_t h = key_hash_seed;
    for (const auto& k : key_values_) h = k.mix(h, g);
    return finish_key_hash(h);
  }

  // A table of up to small_table_slots slots (64 KiB) keeps a load factor of at most 1/4, a larger one 3/4:
  // most probes of a small table then end at the first slot (fewer mispredicted branches: YSB's 1,000 groups
  // probe 1.16 slots on average instead of 1.46), at a memory cost only where the table is small.
  static constexpr std::size_t small_table_slots = 16384;
  static bool too_full(std::size_t groups, std::size_t slots) {
    return slots <= small_table_slots ? groups * 4 > slots : groups * 4 > slots * 3;
  }

  // Linear probing (the load factor too_full allows); a slot holds a group id + 1 (0: empty), and the keys
  // are compared in the key stores, so a group costs its keys, its accumulators and 4 to 11 bytes of slots.
  void reset_slots(std::size_t capacity) {
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (std::uint32_t g = 0; g < groups_; ++g) {
      std::size_t pos = group_hash(g) & mask_;
      while (slots_[pos] != 0) pos = (pos + 1) & mask_;
      slots_[pos] = g + 1;
    }
  }

  bool same_key(std::uint32_t g, const std::vector<key_input>& keys, std::size_t j) const {
    for (auto k : compare_order_) {
      if (!key_values_[k].equals(g, *keys[k].values, keys[k].row(j))) return false;
    }
    return true;
  }

  // Adds a group at slot pos whose keys push_keys() appends to the key stores.
  template <class PushKeys>
  std::uint32_t insert(std::size_t pos, PushKeys push_keys) {
    if (groups_ == capacity_) grow_groups();
    const auto g = static_cast<std::uint32_t>(groups_);
    push_keys();
    ++groups_;
    slots_[pos] = g + 1;
    if (too_full(groups_, slots_.size())) reset_slots(slots_.size() * 2);
    return g;
  }

  // Room for a quarter more groups in every per-group vector (doubling would leave up to half of a large
  // state's memory unused).
  void grow_groups() {
    capacity_ = std::max<std::size_t>(64, capacity_ + capacity_ / 4);
    for (auto& k : key_values_) k.reserve(capacity_);
    for (auto& a : accs_) a.reserve(capacity_);
    changed_bits_.resize((capacity_ + 63) / 64, 0);
  }

  void mark_changed(std::uint32_t g) {
    std::uint64_t& word = changed_bits_[g >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (g & 63);
    if (!(word & bit)) {
      word |= bit;
      ++num_changed_;
    }
  }

  // The groups changed since the last emit, in the order of their ids.
  std::vector<std::uint32_t> changed_groups() const {
    std::vector<std::uint32_t> ids;
    ids.reserve(num_changed_);
    for (std::size_t w = 0; w < changed_bits_.size() && ids.size() < num_changed_; ++w) {
      for (std::uint64_t bits = changed_bits_[w]; bits != 0; bits &= bits - 1)
        ids.push_back(static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(std::countr_zero(bits))));
    }
    return ids;
  }

  std::vector<std::uint32_t> find_groups(const std::vector<key_input>& keys, std::size_t rows) {
    std::vector<std::uint64_t> hashes(rows, key_hash_seed);
    for (std::size_t k = 0; k < keys.size(); ++k) key_values_[k].mix_column(keys[k], hashes);
    std::vector<std::uint32_t> gids(rows);
    for (std::size_t j = 0; j < rows; ++j) {
      std::size_t pos = finish_key_hash(hashes[j]) & mask_;
      std::uint32_t g;
      for (;;) {
        const std::uint32_t slot = slots_[pos];
        if (slot == 0) {
          g = insert(pos, [&] {
            for (std::size_t k = 0; k < keys.size(); ++k) key_values_[k].push(*keys[k].values, keys[k].row(j), groups_, capacity_);
          });
          break;
        }
        g = slot - 1;
        if (same_key(g, keys, j)) break;
        pos = (pos + 1) & mask_;
      }
      gids[j] = g;
      mark_changed(g);
    }
    for (auto& a : accs_) a.resize(groups_);
    return gids;
  }

  static void fold_input(accumulator& acc, const agg_plan& ap, const column& v, const std::vector<std::uint32_t>& gids) {
    const std::size_t n = gids.size();
    const std::uint32_t* g = gids.data();
    auto* cnt = acc.counts.data();
    if (!v.data()) {  // count(*)
      for (std::size_t i = 0; i < n; ++i) ++cnt[g[i]];
      return;
    }
    const bool nulls = v.has_nulls();
    switch (ap.kind) {
      case agg_kind::count:
        for (std::size_t i = 0; i < n; ++i) cnt[g[i]] += nulls ? v.valid(i) : 1;
        return;
      case agg_kind::sum:
      case agg_kind::avg:
        if (acc.type == type_id::float64) {
          const double* x = v.doubles();
          double* sum = acc.doubles.data();
          if (!nulls) {
            for (std::size_t i = 0; i < n; ++i) {
              sum[g[i]] += x[i];
              ++cnt[g[i]];
            }
          } else {
            for (std::size_t i = 0; i < n; ++i) {
              if (!v.valid(i)) continue;
              sum[g[i]] += x[i];
              ++cnt[g[i]];
            }
          }
        } else {
          const std::int64_t* x = v.ints();
          std::int64_t* sum = acc.ints.data();
          for (std::size_t i = 0; i < n; ++i) {
            if (nulls && !v.valid(i)) continue;
            sum[g[i]] = static_cast<std::int64_t>(static_cast<std::uint64_t>(sum[g[i]]) + static_cast<std::uint64_t>(x[i]));
            ++cnt[g[i]];
          }
        }
        return;
      case agg_kind::min:
      case agg_kind::max:
        fold_extreme(acc, ap.kind == agg_kind::min, v, g, n);
        return;
    }
  }

  static void fold_extreme(accumulator& acc, bool is_min, const column& v, const std::uint32_t* g, std::size_t n) {
    auto* has = acc.counts.data();
    auto fold = [&](auto get, auto& store, auto less) {
      for (std::size_t i = 0; i < n; ++i) {
        if (!v.valid(i)) continue;
        const auto x = get(i);
        auto& cur = store[g[i]];
        if (!has[g[i]] || (is_min ? less(x, cur) : less(cur, x))) {
          cur = x;
          has[g[i]] = 1;
        }
      }
    };
    switch (v.type()) {
      case type_id::boolean:
        fold([&](std::size_t i) { return std::int64_t{v.bools()[i]}; }, acc.ints, std::less<>{});
        break;
      case type_id::int64:
      case type_id::timestamp: fold([&](std::size_t i) { return v.ints()[i]; }, acc.ints, std::less<>{}); break;
      case type_id::float64: fold([&](std::size_t i) { return v.doubles()[i]; }, acc.doubles, spark_double_less); break;
      case type_id::string: {
        for (std::size_t i = 0; i < n; ++i) {
          if (!v.valid(i)) continue;
          const auto x = v.str(i);
          auto& cur = acc.strings[g[i]];
          if (!has[g[i]] || (is_min ? x < std::string_view(cur) : std::string_view(cur) < x)) {
            cur.assign(x);
            has[g[i]] = 1;
          }
        }
        break;
      }
      case type_id::window: throw error("internal: min/max of a window column");
      case type_id::string_list: throw error("internal: min/max of an array<string> column");
    }
  }

  static void fold_state(accumulator& acc, const agg_plan& ap, const batch& state_rows,
                         const std::vector<std::uint32_t>& gids) {
    const std::size_t n = gids.size();
    const std::uint32_t* g = gids.data();
    const column& first = state_rows.col(ap.state_column);
    switch (ap.kind) {
      case agg_kind::count: {
        const auto* c = first.ints();
        for (std::size_t i = 0; i < n; ++i) acc.counts[g[i]] += c[i];
        return;
      }
      case agg_kind::sum:
      case agg_kind::avg: {
        const auto* c = state_rows.col(ap.state_column + 1).ints();
        if (acc.type == type_id::float64) {
          const auto* s = first.doubles();
          for (std::size_t i = 0; i < n; ++i) {
            acc.doubles[g[i]] += s[i];
            acc.counts[g[i]] += c[i];
          }
        } else {
          const auto* s = first.ints();
          for (std::size_t i = 0; i < n; ++i) {
            acc.ints[g[i]] = static_cast<std::int64_t>(static_cast<std::uint64_t>(acc.ints[g[i]]) +
                                                       static_cast<std::uint64_t>(s[i]));
            acc.counts[g[i]] += c[i];
          }
        }
        return;
      }
      case agg_kind::min:
      case agg_kind::max: fold_extreme(acc, ap.kind == agg_kind::min, first, g, n); return;
    }
  }

  std::vector<std::uint32_t> all_groups() const {
    std::vector<std::uint32_t> ids(groups_);
    for (std::uint32_t g = 0; g < groups_; ++g) ids[g] = g;
    return ids;
  }

  std::vector<std::uint32_t> expired(timestamp watermark) const {
    std::vector<std::uint32_t> ids;
    if (plan_->window_key < 0) return ids;
    const key_store& w = key_values_[plan_->window_key];
    for (std::uint32_t g = 0; g < groups_; ++g) {
      if (w.is_valid(g) && w.ends[g] <= watermark.micros) ids.push_back(g);
    }
    return ids;
  }

  void clear_changed() {
    std::fill(changed_bits_.begin(), changed_bits_.end(), 0);
    num_changed_ = 0;
  }

  // Keeps only the groups in ids (ascending), renumbered 0..ids.size()-1, and rebuilds the slots.
  void compact(const std::vector<std::uint32_t>& ids) {
    for (auto& k : key_values_) k.keep_groups(ids);
    for (auto& a : accs_) {
      keep_only(a.ints, ids);
      keep_only(a.doubles, ids);
      keep_only(a.strings, ids);
      keep_only(a.counts, ids);
    }
    std::vector<std::uint64_t> changed((ids.size() + 63) / 64, 0);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if ((changed_bits_[ids[i] >> 6] >> (ids[i] & 63)) & 1) changed[i >> 6] |= std::uint64_t{1} << (i & 63);
    }
    groups_ = capacity_ = ids.size();
    changed_bits_ = std::move(changed);
    num_changed_ = 0;
    for (auto word : changed_bits_) num_changed_ += static_cast<std::size_t>(std::popcount(word));
    std::size_t slots = 64;
    while (too_full(groups_ + 1, slots)) slots *= 2;
    reset_slots(slots);
  }

  // Per-group values of the groups in ids, in the order of ids. When ids is every group in order, the
  // store is copied whole. (Every group in another order, as update mode's changed groups can be, is
  // gathered like any list: the string columns follow ids, and so must these.)
  template <class T>
  std::vector<T> gather_groups(const std::vector<T>& store, const std::vector<std::uint32_t>& ids) const {
    if (ids.size() == groups_ && std::is_sorted(ids.begin(), ids.end()))  // ids are distinct: 0 .. groups_-1
      return std::vector<T>(store.begin(), store.begin() + static_cast<std::ptrdiff_t>(groups_));
    std::vector<T> out(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) out[i] = store[ids[i]];
    return out;
  }

  // The values of the groups in ids of a boolean, int64, timestamp or float64 store (a key or an accumulator:
  // booleans and integers in ints, doubles in doubles) into d.
  template <class Store>
  void gather_numbers(column_data& d, const Store& store, const std::vector<std::uint32_t>& ids) const {
    if (store.type == type_id::float64) {
      d.doubles = gather_groups(store.doubles, ids);
    } else if (store.type == type_id::boolean) {
      auto ints = gather_groups(store.ints, ids);
      d.bools.assign(ints.begin(), ints.end());
    } else {
      d.ints = gather_groups(store.ints, ids);
    }
  }

  column key_column(std::size_t k, const std::vector<std::uint32_t>& ids) const {
    const key_store& ks = key_values_[k];
    auto d = std::make_shared<column_data>();
    switch (ks.type) {
      case type_id::boolean:
      case type_id::int64:
      case type_id::timestamp:
      case type_id::float64: gather_numbers(*d, ks, ids); break;
      case type_id::window:
        d->ints = gather_groups(ks.ints, ids);
        d->ends = gather_groups(ks.ends, ids);
        break;
      case type_id::string: {
        column_builder builder(type_id::string, ids.size());
        for (auto g : ids) {
          if (ks.is_valid(g)) builder.append_string(ks.str(g));
          else builder.append_null();
        }
        return builder.finish();
      }
      case type_id::string_list: throw error("internal: array<string> grouping key");
    }
    return make_column_from(ks.type, std::move(d),
                            ks.valid.empty() ? std::vector<std::uint8_t>(ids.size(), 1) : gather_groups(ks.valid, ids));
  }

  column value_column(const accumulator& acc, const std::vector<std::uint32_t>& ids, bool need_value) const {
    std::vector<std::uint8_t> valid(ids.size(), 1);
    if (need_value) {
      for (std::size_t i = 0; i < ids.size(); ++i) valid[i] = acc.counts[ids[i]] > 0;
    }
    auto d = std::make_shared<column_data>();
    switch (acc.type) {
      case type_id::boolean:
      case type_id::int64:
      case type_id::timestamp:
      case type_id::float64: gather_numbers(*d, acc, ids); break;
      case type_id::string: {
        column_builder builder(type_id::string, ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if (valid[i]) builder.append_string(acc.strings[ids[i]]);
          else builder.append_null();
        }
        return builder.finish();
      }
      case type_id::window: throw error("internal: window accumulator");
      case type_id::string_list: throw error("internal: array<string> accumulator");
    }
    return make_column_from(acc.type, std::move(d), valid);
  }

  column count_column(const accumulator& acc, const std::vector<std::uint32_t>& ids) const {
    auto d = std::make_shared<column_data>();
    d->ints = gather_groups(acc.counts, ids);
    return make_column_from(type_id::int64, std::move(d), std::vector<std::uint8_t>(ids.size(), 1));
  }

  batch build(const std::vector<std::uint32_t>& ids, bool state_schema) const {
    std::vector<column> columns;
    for (std::size_t k = 0; k < key_values_.size(); ++k) columns.push_back(key_column(k, ids));
    for (std::size_t a = 0; a < accs_.size(); ++a) {
      const accumulator& acc = accs_[a];
      switch (acc.kind) {
        case agg_kind::count: columns.push_back(count_column(acc, ids)); break;
        case agg_kind::sum:
          columns.push_back(value_column(acc, ids, !state_schema));
          if (state_schema) columns.push_back(count_column(acc, ids));
          break;
        case agg_kind::min:
        case agg_kind::max: columns.push_back(value_column(acc, ids, true)); break;
        case agg_kind::avg:
          if (state_schema) {
            columns.push_back(value_column(acc, ids, false));
            columns.push_back(count_column(acc, ids));
          } else {
            auto d = std::make_shared<column_data>();
            std::vector<std::uint8_t> valid(ids.size());
            for (std::size_t i = 0; i < ids.size(); ++i) {
              const auto c = acc.counts[ids[i]];
              valid[i] = c > 0;
              d->doubles.push_back(c > 0 ? acc.doubles[ids[i]] / static_cast<double>(c) : 0.0);
            }
            columns.push_back(make_column_from(type_id::float64, std::move(d), valid));
          }
          break;
      }
    }
    return batch(state_schema ? plan_->state : plan_->output, std::move(columns));
  }

  std::shared_ptr<const aggregate_operator::impl> plan_;
  std::vector<std::uint32_t> slots_;  // 0: empty, else group id + 1
  std::size_t mask_ = 0;
  std::size_t groups_ = 0;
  std::size_t capacity_ = 0;  // groups the per-group vectors have room for
  std::vector<key_store> key_values_;
  std::vector<std::size_t> compare_order_;  // key indexes, strings last
  std::vector<accumulator> accs_;
  std::vector<std::uint64_t> changed_bits_;  // bit g: group g changed since the last emit
  std::size_t num_changed_ = 0;
  std::vector<std::vector<std::int64_t>> key_words_;  // fold_word_keys' scratch per key, kept between batches
  std::vector<std::uint32_t> dense_entry_, dense_groups_;  // find_dense_word_groups' scratch, kept between batches
};

}  // namespace

std::unique_ptr<aggregate_state> aggregate_operator::make_state() const {
  return std::make_unique<hash_aggregate_state>(impl_);
}

std::vector<batch> aggregate_operator::partition(const batch& state_rows, std::size_t n) const {
  if (state_rows.schema().size() != state_->size()) {
    throw error("aggregate partition: the batch has schema (" + state_rows.schema().to_string() +
                "), but the state schema is (" + state_->to_string() + ")");
  }
  std::vector<std::size_t> key_columns(keys_.size());
  for (std::size_t k = 0; k < key_columns.size(); ++k) key_columns[k] = k;
  return hash_partition(state_rows, key_columns, n);
}

}  // namespace flow
