// Keyed operators: operators whose state is one value per key of their key columns, kept in a state store
// the runtime owns (it snapshots it, ships its changes after each epoch and restores it after a failure);
// the operator object itself stays immutable. This is the one header a user needs to write one:
//
//   class units_by_code : public flow::keyed_operator<std::int64_t> {
//    public:
//     explicit units_by_code(flow::schema_ptr input)
//         : keyed_operator({.name = "units_by_code", .input = input, .keys = {"StockCode"},
//                           .output = {{"units", flow::type_id::int64}}, .state = {{"units", flow::type_id::int64}}}),
//           quantity_(input->index_of("Quantity")) {}
//     void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<std::int64_t>& state,
//                  flow::operator_context&) const override {
//       const flow::column& q = rows.col(quantity_);
//       for (std::size_t i = 0; i < rows.num_rows(); ++i) if (q.valid(i)) state.get(keys[i]) += q.ints()[i];
//     }
//     void end_epoch(flow::keyed_state<std::int64_t>& state, flow::operator_context& ctx) const override {
//       auto out = output_rows();
//       state.for_each_changed([&](flow::key_ref key, const std::int64_t& units) { out.add(key).add(units); });
//       ctx.emit(out.finish());
//     }
//     void save(const std::int64_t& units, flow::row_writer& out) const override { out.add(units); }
//     std::int64_t load(const flow::batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }
//    private:
//     std::size_t quantity_;
//   };
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "flow/keys.hpp"
#include "flow/stream_operator.hpp"

namespace flow {

// One key, encoded as flow::encode_keys encodes it (encoded_keys::key), with its hash. Valid while the
// batch's row_keys or the state it came from is unchanged.
struct key_ref {
  std::string_view bytes;
  std::uint64_t hash = 0;
};

// The keys of one input batch, encoded once: keys[i] is row i's key.
class row_keys {
 public:
  explicit row_keys(encoded_keys keys) : keys_(std::make_shared<const encoded_keys>(std::move(keys))) {}
  // Rows `rows` (null: all) of keys (a batch's encoded_key_columns).
  row_keys(std::shared_ptr<const encoded_keys> keys, std::shared_ptr<const std::vector<std::uint32_t>> rows)
      : keys_(std::move(keys)), rows_(std::move(rows)) {}
  std::size_t size() const { return rows_ ? rows_->size() : keys_->rows; }
  key_ref operator[](std::size_t row) const {
    const std::size_t r = rows_ ? (*rows_)[row] : row;
    return {keys_->key(r), keys_->hashes[r]};
  }

 private:
  std::shared_ptr<const encoded_keys> keys_;
  std::shared_ptr<const std::vector<std::uint32_t>> rows_;
};

// Appends one row's values to columns of a batch being built, left to right. Integers may go to float64
// columns; any other type mismatch, or more values than columns, is a flow::error naming the column.
class row_writer {
 public:
  row_writer(const schema& fields, std::span<column_builder> columns, std::size_t first)
      : fields_(&fields), columns_(columns), next_(first) {}

  template <class V>
  row_writer& add(const V& v) {
    if constexpr (std::is_same_v<V, bool>) {
      next(type_id::boolean).append_bool(v);
    } else if constexpr (std::is_integral_v<V>) {
      column_builder& c = next_number();
      if (c.type() == type_id::float64) c.append_double(static_cast<double>(v));
      else c.append_int(static_cast<std::int64_t>(v));
    } else if constexpr (std::is_floating_point_v<V>) {
      next(type_id::float64).append_double(static_cast<double>(v));
    } else if constexpr (std::is_same_v<V, timestamp>) {
      next(type_id::timestamp).append_timestamp(v);
    } else if constexpr (std::is_same_v<V, window_value>) {
      next(type_id::window).append_window(v);
    } else if constexpr (std::is_convertible_v<const V&, std::string_view>) {
      next(type_id::string).append_string(std::string_view(v));
    } else {
      static_assert(std::is_same_v<V, void>, "row_writer::add: use a number, bool, string, timestamp or window_value "
                                             "(add_list for array<string>, add_null for null)");
    }
    return *this;
  }
  // An array<string> value: any range of things convertible to std::string_view.
  template <class Range>
  row_writer& add_list(const Range& items) {
    column_builder& c = next(type_id::string_list);
    c.begin_list();
    for (const auto& item : items) c.append_list_item(std::string_view(item));
    c.end_list();
    return *this;
  }
  row_writer& add_null();

 private:
  column_builder& next(type_id wanted);
  column_builder& next_number();  // an int64 or float64 column
  column_builder& next_any();
  const schema* fields_;
  std::span<column_builder> columns_;
  std::size_t next_;
};

// Rows whose first columns are keys: add(key) appends the key's values and returns a writer for the other
// columns, which must each get one value per row.
class keyed_rows {
 public:
  // The first layout.types().size() columns of schema are the keys, of the layout's types.
  keyed_rows(schema_ptr schema, key_layout layout);
  row_writer add(key_ref key);
  std::size_t num_rows() const { return rows_; }
  // flow::error naming the column when a row did not get all its values.
  batch finish();

 private:
  schema_ptr schema_;
  key_layout layout_;
  std::vector<column_builder> columns_;
  std::size_t rows_ = 0;
};

// What keyed_operator's constructor takes.
struct keyed_operator_spec {
  std::string name;               // for explain(), progress and error messages
  schema_ptr input;               // the rows process() receives
  std::vector<std::string> keys;  // the key columns of input: the state holds one value per key
  std::vector<field> output;      // the columns after the keys in the rows the operator emits
  std::vector<field> state;       // the columns save() writes for a value (snapshots, changes)
};

// The state store's bookkeeping, which does not depend on the value type: an open-addressing index from
// encoded keys to entries, the key bytes, and which entries are live and changed since take_changes().
// With an on-disk backend (use_backend) the index is the cache of the keys touched since take_changes(),
// and a key_value_store holds every key as of then: key bytes to the values save() wrote.
class keyed_state_base : public operator_state {
 public:
  std::size_t size() const { return store_ ? stored_rows_ - stored_cached_ + live_count_ : live_count_; }
  // The values of a key's columns (key order).
  std::vector<value> key_values(key_ref key) const { return decode_key(layout_, key.bytes); }
  std::size_t num_rows() const override { return size(); }
  // "memory" keeps the in-memory index; another kind makes its key_value_store in instance_directory.
  // Only before the state holds keys.
  void use_backend(const state_backend_config& config, const std::string& instance_directory) override;
  bool snapshots_to_directory() const override { return store_ != nullptr; }
  // flow::error when keys changed since take_changes() (the snapshot would miss them).
  void snapshot_to(const std::string& directory) const override;

 protected:
  static constexpr std::uint32_t npos = ~std::uint32_t{0};
  explicit keyed_state_base(key_layout layout);

  std::uint32_t find_entry(key_ref key) const {
    for (std::size_t pos = key.hash & mask_;; pos = (pos + 1) & mask_) {
      const std::uint32_t slot = slots_[pos];
      if (slot == 0) return npos;
      if (hashes_[slot - 1] == key.hash && same_bytes(key_at(slot - 1).bytes, key.bytes)) return slot - 1;
    }
  }
  // Keys are short: comparing them inline, a word at a time, beats a call to memcmp.
  static bool same_bytes(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    std::size_t i = 0;
    for (; i + 8 <= a.size(); i += 8) {
      std::uint64_t x, y;
      std::memcpy(&x, a.data() + i, 8);
      std::memcpy(&y, b.data() + i, 8);
      if (x != y) return false;
    }
    for (; i < a.size(); ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  // A new live entry for a key find_entry did not find; the caller adds its value.
  std::uint32_t add_entry(key_ref key);
  void set_live(std::uint32_t e, bool live);
  void mark_changed(std::uint32_t e) {
    if (changed_stamp_[e] == generation_) return;
    changed_stamp_[e] = generation_;
    changed_.push_back(e);
  }
  bool live(std::uint32_t e) const { return live_[e] != 0; }
  key_ref key_at(std::uint32_t e) const {
    return {std::string_view(key_bytes_.data() + key_offsets_[e], key_offsets_[e + 1] - key_offsets_[e]), hashes_[e]};
  }
  std::size_t entries() const { return hashes_.size(); }
  const std::vector<std::uint32_t>& changed() const { return changed_; }
  // The keys of changed(), in its order, as the key columns 0.. of take_changes()'s rows.
  std::shared_ptr<const encoded_key_columns> changed_keys() const;
  void forget_changes();
  // Drops the removed entries when they outnumber the live ones; returns the kept entries' old numbers
  // (ascending, renumbered 0..), or nothing when it kept everything.
  std::vector<std::uint32_t> compact_if_sparse();
  void clear_entries();
  std::size_t index_bytes() const;
  const key_layout& layout() const { return layout_; }

  // On-disk backend. stored(e): entry e's key had a value in the store when it was cached.
  bool stored(std::uint32_t e) const { return stored_[e] != 0; }
  void mark_stored(std::uint32_t e) {
    stored_[e] = 1;
    ++stored_cached_;
  }
  // Writes the changed entries to the store in one batch (changes: take_changes()'s rows, one per entry of
  // changed(), in that order, whose columns from first_value_column are what save() wrote), then empties
  // the cache.
  void write_to_store(const batch& changes, std::size_t first_value_column);
  // Empties the cache and the store, or replaces the store by a snapshot_to() directory.
  void clear_store();
  void restore_store_from(const std::string& directory);
  // save()'s columns of one row, in the store's value encoding, and back (a batch of the saved schema).
  static void encode_values(const batch& rows, std::size_t first_column, std::size_t row, std::string& out);
  static batch decode_values(const schema_ptr& saved, std::span<const std::string> values);
  std::unique_ptr<key_value_store> store_;

 private:
  void count_stored();
  void rebuild_slots(std::size_t capacity);
  key_layout layout_;
  std::vector<std::uint32_t> slots_;  // 0: empty, else entry + 1
  std::size_t mask_ = 0;
  std::vector<std::uint64_t> hashes_;
  std::string key_bytes_;                 // entry e's key is [key_offsets_[e], key_offsets_[e + 1])
  std::vector<std::size_t> key_offsets_{0};
  std::vector<std::uint8_t> live_;        // removed keys keep their entry (dead) until compacted
  std::size_t live_count_ = 0;
  std::vector<std::uint32_t> changed_stamp_;  // == generation_: in changed_
  std::uint32_t generation_ = 1;
  std::vector<std::uint32_t> changed_;
  std::vector<std::uint8_t> stored_;  // by entry, on-disk backend only
  std::size_t stored_rows_ = 0;       // keys in the store
  std::size_t stored_cached_ = 0;     // entries with stored(e)
};

template <class T>
class keyed_operator;

// The per-key state of one instance of a keyed operator: a value of type T per key. A key is changed when
// get, put or remove touched it since the runtime's last take_changes(), which it calls after every epoch's
// end_epoch. Adding a key (get or put of a key without a value) may move the values: references from find
// and get are valid until then, and no key may be added while iterating. With an on-disk backend the
// first find, get or remove of a key in an epoch reads it from the store into memory, which may move the
// values too.
template <class T>
class keyed_state final : public keyed_state_base {
 public:
  explicit keyed_state(const keyed_operator<T>& op) : keyed_state_base(op.layout()), op_(&op) {}

  // The key's value, nullptr when the key has none.
  const T* find(key_ref key) const {
    std::uint32_t e = find_entry(key);
    // Caching a stored key changes no value: a const lookup may do it (states are never const objects).
    if (e == npos && store_) e = const_cast<keyed_state*>(this)->cache(key);
    return e != npos && live(e) ? &values_[e] : nullptr;
  }
  // The key's value, default-constructed when absent; marks the key changed.
  T& get(key_ref key) {
    std::uint32_t e = find_entry(key);
    if (e == npos && store_) [[unlikely]] e = cache(key);
    if (e == npos || !live(e)) [[unlikely]] return add(key, e);
    mark_changed(e);
    return values_[e];
  }
  void put(key_ref key, T value) { get(key) = std::move(value); }
  // Removes the key (marks it changed); false when it had no value.
  bool remove(key_ref key) {
    std::uint32_t e = find_entry(key);
    if (e == npos && store_) e = cache(key);
    if (e == npos || !live(e)) return false;
    set_live(e, false);
    values_[e] = T{};
    mark_changed(e);
    return true;
  }
  // f(key_ref, const T&) for every key (with an on-disk backend the key_ref and value of a key read from
  // the store are valid during the call only).
  template <class F>
  void for_each(F&& f) const {
    if (store_) for_each_stored(f);
    for (std::uint32_t e = 0; e < entries(); ++e) {
      if (live(e) && !stored(e)) f(key_at(e), values_[e]);
    }
  }
  // f(key_ref, const T&) for every key that has a value and changed since take_changes().
  template <class F>
  void for_each_changed(F&& f) const {
    for (auto e : changed()) {
      if (live(e)) f(key_at(e), values_[e]);
    }
  }
  // f(key_ref) for every key removed since take_changes() (and not added again).
  template <class F>
  void for_each_removed(F&& f) const {
    for (auto e : changed()) {
      if (!live(e)) f(key_at(e));
    }
  }

  // Rows of op.state_schema(): the keys, a deleted flag, then what save() wrote.
  batch snapshot() const override {
    keyed_rows rows = op_->state_rows();
    for_each([&](key_ref key, const T& value) { write(rows, key, &value); });
    return rows.finish();
  }
  void restore(const batch& snapshot) override {
    clear_entries();
    std::vector<T>().swap(values_);
    if (store_) clear_store();
    apply_changes(snapshot);
  }
  // The changed keys' values and the removed keys (deleted = true), in state_schema(); then forgets them
  // (an on-disk backend writes them to its store and empties the cache).
  batch take_changes() override {
    keyed_rows rows = op_->state_rows();
    for (auto e : changed()) write(rows, key_at(e), live(e) ? &values_[e] : nullptr);
    batch changes = rows.finish().with_attached_keys(changed_keys());
    if (store_) {
      write_to_store(changes, layout().types().size() + 1);
      std::vector<T>().swap(values_);
    } else {
      forget_and_compact();
    }
    return changes;
  }
  // Folds another copy's take_changes() in. This copy's own changes are forgotten: a copy that is fed
  // changes (the runtime's checkpoint) never takes any.
  void apply_changes(const batch& changes) override {
    const auto keys = op_->state_keys(changes);
    const batch saved = op_->saved_columns(changes);
    const column& deleted = changes.col(layout().types().size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (deleted.bools()[i]) remove(keys[i]);
      else put(keys[i], op_->load(saved, i));
    }
    if (store_) take_changes();
    else forget_and_compact();
  }
  std::size_t memory_bytes() const override {
    return index_bytes() + values_.capacity() * sizeof(T) + (store_ ? store_->memory_bytes() : 0);
  }
  void restore_from(const std::string& directory) override {
    std::vector<T>().swap(values_);
    restore_store_from(directory);
  }

 private:
  void write(keyed_rows& rows, key_ref key, const T* value) const {
    row_writer out = rows.add(key);
    out.add(value == nullptr);
    if (value) {
      op_->save(*value, out);
    } else {
      for (std::size_t c = 0; c < op_->state_columns(); ++c) out.add_null();
    }
  }
  void forget_and_compact() {
    forget_changes();
    if (auto kept = compact_if_sparse(); !kept.empty()) {
      std::vector<T> values;
      values.reserve(kept.size());
      for (auto e : kept) values.push_back(std::move(values_[e]));
      values_ = std::move(values);
    }
  }
  // The cache's entry of a key it does not hold: the store's value (live), or dead when the store has none.
  std::uint32_t cache(key_ref key) {
    const bool found = store_->get(key.bytes, scratch_);
    const std::uint32_t e = add_entry(key);
    if (found) {
      values_.push_back(op_->load(decode_values(op_->saved_, std::span<const std::string>(&scratch_, 1)), 0));
      mark_stored(e);
    } else {
      values_.emplace_back();
      set_live(e, false);
    }
    return e;
  }
  // The store's keys, read in chunks (one batch of values each); a cached key's value is the cache's.
  template <class F>
  void for_each_stored(F& f) const {
    constexpr std::size_t chunk = 4096;
    std::vector<std::string> keys, values;
    auto visit = [&] {
      const batch saved = decode_values(op_->saved_, values);
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const key_ref key{keys[i], hash_encoded_key(layout(), keys[i])};
        const std::uint32_t e = find_entry(key);
        if (e == npos) {
          const T value = op_->load(saved, i);
          f(key, value);
        } else if (live(e)) {
          f(key_at(e), values_[e]);
        }
      }
      keys.clear();
      values.clear();
    };
    store_->for_each([&](std::string_view key, std::string_view value) {
      keys.emplace_back(key);
      values.emplace_back(value);
      if (keys.size() == chunk) visit();
    });
    visit();
  }
  // get() of a key without a value: a new entry, or a removed one again (e).
  T& add(key_ref key, std::uint32_t e) {
    if (e == npos) {
      e = add_entry(key);
      values_.emplace_back();
    } else {
      set_live(e, true);
    }
    mark_changed(e);
    return values_[e];
  }
  // The operator outlives its instances' states: the runtime holds the graph while it runs it.
  const keyed_operator<T>* op_;
  std::vector<T> values_;  // by entry; removed entries hold T{}
  std::string scratch_;    // the last value read from the store
};

// What every keyed operator shares, whatever its value type: the key columns, the schemas and encoding a
// batch's keys.
class keyed_operator_base : public stream_operator {
 public:
  std::string name() const override { return name_; }
  const schema_ptr& output_schema() const override { return output_; }
  std::vector<std::string> key_columns() const override { return key_names_; }
  bool reads_attached_keys() const override { return true; }
  // The keys, then "__deleted" (boolean), then the spec's state columns (nullable: null in deleted rows).
  const schema_ptr& state_schema() const { return state_; }
  const key_layout& layout() const { return layout_; }
  // Empty rows of output_schema(), for end_epoch or process to fill and emit.
  keyed_rows output_rows() const { return keyed_rows(output_, layout_); }

 protected:
  explicit keyed_operator_base(keyed_operator_spec spec);
  // The keys of a batch of the input schema.
  row_keys input_keys(const batch& input, std::size_t input_index) const;
  [[noreturn]] void missing_state() const;

 private:
  template <class T>
  friend class keyed_state;
  keyed_rows state_rows() const { return keyed_rows(state_, layout_); }
  // The keys of rows of state_schema() (flow::error when changes has another schema).
  row_keys state_keys(const batch& changes) const;
  // The columns save() wrote, as a batch of the spec's state columns (what load() reads).
  batch saved_columns(const batch& changes) const;
  std::size_t state_columns() const { return saved_->size(); }

  std::string name_;
  std::vector<std::string> key_names_;
  std::vector<std::size_t> key_indexes_;
  key_layout layout_;
  schema_ptr input_, output_, state_, saved_;
};

// A keyed operator with values of type T. Implement process (and end_epoch or on_watermark to emit), and
// save/load, which write a value as the spec's state columns and read it back (snapshots, recovery).
template <class T>
class keyed_operator : public keyed_operator_base {
 public:
  virtual void process(const batch& rows, const row_keys& keys, keyed_state<T>& state, operator_context& ctx) const = 0;
  virtual void end_epoch(keyed_state<T>& /*state*/, operator_context& /*ctx*/) const {}
  virtual void on_watermark(std::int64_t /*watermark*/, keyed_state<T>& /*state*/, operator_context& /*ctx*/) const {}
  virtual void save(const T& value, row_writer& out) const = 0;
  // Row `row` of saved (columns of the spec's state columns), as save() wrote it.
  virtual T load(const batch& saved, std::size_t row) const = 0;

  std::unique_ptr<operator_state> make_state() const final { return std::make_unique<keyed_state<T>>(*this); }
  void process(const batch& input, std::size_t input_index, operator_state* state, operator_context& ctx) const final {
    process(input, input_keys(input, input_index), typed(state), ctx);
  }
  void end_epoch(operator_state* state, operator_context& ctx) const final { end_epoch(typed(state), ctx); }
  void on_watermark(std::int64_t watermark, operator_state* state, operator_context& ctx) const final {
    on_watermark(watermark, typed(state), ctx);
  }

 protected:
  explicit keyed_operator(keyed_operator_spec spec) : keyed_operator_base(std::move(spec)) {}

 private:
  keyed_state<T>& typed(operator_state* state) const {
    auto* keyed = dynamic_cast<keyed_state<T>*>(state);
    if (!keyed) missing_state();
    return *keyed;
  }
};

}  // namespace flow
