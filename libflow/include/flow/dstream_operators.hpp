// The stream operators a flow::dstream builds (flow/dstream.hpp): element functions (map, flat_map,
// filter), functions of an interval's whole batch (transform, reduce_by_key), the window of the last
// intervals, and the stateful *_by_key operators, which keep their state in the runtime's keyed state store
// (checkpointed and restored like any keyed operator). Batch b of a dstream is epoch b - 1 of its query:
// an operator sees the interval it runs in through operator_context::epoch().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow/dstream_elements.hpp"
#include "flow/group_state.hpp"
#include "flow/keyed_operator.hpp"
#include "flow/operators.hpp"

namespace flow {

namespace dstream_detail {

// The dstream batch an epoch is: 1, 2, ... (Spark's batch time is zero time + index * interval).
inline std::int64_t batch_index(const operator_context& ctx) { return ctx.epoch() + 1; }

// A key of a keyed state, copied (a key_ref is valid only while the state is unchanged).
struct owned_key {
  std::string bytes;
  std::uint64_t hash;
  key_ref ref() const { return {bytes, hash}; }
};

template <class T>
std::vector<owned_key> all_keys(const keyed_state<T>& state) {
  std::vector<owned_key> keys;
  state.for_each([&](key_ref key, const T&) { keys.push_back({std::string(key.bytes), key.hash}); });
  return keys;
}

template <dstream_scalar K>
K key_value(const keyed_state_base& state, key_ref key) {
  return std::get<K>(state.key_values(key)[0]);
}

// The rows of one instance's share of an interval, gathered until end_epoch. Scratch space: empty at every
// epoch's end, so neither checkpointed nor restored.
class interval_rows final : public operator_state {
 public:
  explicit interval_rows(schema_ptr schema) : schema_(std::move(schema)) {}
  void add(const batch& rows) {
    if (rows.num_rows() > 0) batches_.push_back(rows);
  }
  // The rows gathered since the last call, as one batch.
  batch take();
  batch snapshot() const override { return batch::empty(schema_); }
  void restore(const batch&) override { batches_.clear(); }
  batch take_changes() override { return batch::empty(schema_); }
  void apply_changes(const batch&) override {}
  std::size_t num_rows() const override { return 0; }
  std::size_t memory_bytes() const override;
  bool durable() const override { return false; }

 private:
  schema_ptr schema_;
  std::vector<batch> batches_;
};

}  // namespace dstream_detail

// map, flat_map and filter: f(element, out) appends the element's outputs to out.
template <dstream_element T, dstream_element U>
class dstream_element_operator final : public stateless_operator {
 public:
  using function = std::function<void(const T&, std::vector<U>&)>;
  dstream_element_operator(std::string name, function f)
      : name_(std::move(name)), f_(std::move(f)), output_(dstream_schema<U>()) {}
  const schema_ptr& output_schema() const override { return output_; }
  batch apply(const batch& input) const override {
    std::vector<U> out;
    for (const T& item : dstream_codec<T>::read(input)) f_(item, out);
    return dstream_codec<U>::write(output_, out);
  }
  std::string describe() const override { return name_; }

 private:
  std::string name_;
  function f_;
  schema_ptr output_;
};

// A function of an instance's whole share of each batch (all of the batch when the vertex has one
// instance, all of a key's elements when keyed), called at the batch's end, also for an empty one. Its
// input has batches every slide batches (after a window): it runs at those only.
template <dstream_element T, dstream_element U>
class dstream_interval_operator final : public stream_operator {
 public:
  using function = std::function<std::vector<U>(std::vector<T>)>;
  dstream_interval_operator(std::string name, std::vector<std::string> keys, std::int64_t slide, function f)
      : name_(std::move(name)), keys_(std::move(keys)), slide_(slide), f_(std::move(f)), input_(dstream_schema<T>()),
        output_(dstream_schema<U>()) {}
  std::string name() const override { return name_; }
  const schema_ptr& output_schema() const override { return output_; }
  std::vector<std::string> key_columns() const override { return keys_; }
  std::unique_ptr<operator_state> make_state() const override {
    return std::make_unique<dstream_detail::interval_rows>(input_);
  }
  void process(const batch& input, std::size_t, operator_state* state, operator_context&) const override {
    static_cast<dstream_detail::interval_rows*>(state)->add(input);
  }
  void end_epoch(operator_state* state, operator_context& ctx) const override {
    batch rows = static_cast<dstream_detail::interval_rows*>(state)->take();
    if (dstream_detail::batch_index(ctx) % slide_ != 0) return;
    batch out = dstream_codec<U>::write(output_, f_(dstream_codec<T>::read(rows)));
    if (out.num_rows() > 0) ctx.emit(std::move(out));
  }

 private:
  std::string name_;
  std::vector<std::string> keys_;
  std::int64_t slide_;
  function f_;
  schema_ptr input_, output_;
};

// window(length, slide): every slide batches, the elements of the last length batches (both in batches).
// One instance; its state is the elements of the window's batches.
class dstream_window_operator final : public stream_operator {
 public:
  dstream_window_operator(schema_ptr elements, std::int64_t length, std::int64_t slide);
  std::string name() const override;
  const schema_ptr& output_schema() const override { return elements_; }
  std::unique_ptr<operator_state> make_state() const override;
  void process(const batch& input, std::size_t, operator_state* state, operator_context& ctx) const override;
  void end_epoch(operator_state* state, operator_context& ctx) const override;

 private:
  schema_ptr elements_;
  std::int64_t length_, slide_;
};

// The state of reduce_by_key_and_window for one key: the reduction of its values in each batch of the
// window that had any (oldest first) and, with an inverse function, the window's total kept incrementally.
template <dstream_scalar V>
struct window_reductions {
  std::vector<std::pair<std::int64_t, V>> batches;
  std::optional<V> total;
};

template <dstream_scalar K, dstream_scalar V>
class dstream_reduce_window_operator final : public keyed_operator<window_reductions<V>> {
 public:
  using reduce_function = std::function<V(const V&, const V&)>;
  using filter_function = std::function<bool(const std::pair<K, V>&)>;
  struct spec {
    reduce_function reduce;
    reduce_function inverse;  // empty: each window is reduced from its batches' reductions
    filter_function filter;   // with an inverse: keys whose window value it rejects are dropped
    std::int64_t length = 1;  // in batches
    std::int64_t slide = 1;
  };

  explicit dstream_reduce_window_operator(spec s)
      : keyed_operator<window_reductions<V>>({.name = "reduce_by_key_and_window",
                                              .input = dstream_schema<std::pair<K, V>>(),
                                              .keys = {"key"},
                                              .output = {{"value", dstream_detail::type_of_scalar<V>(), false}},
                                              .state = {{"window", type_id::string}}}),
        spec_(std::move(s)) {}

  void process(const batch& rows, const row_keys& keys, keyed_state<window_reductions<V>>& state,
               operator_context& ctx) const override {
    const auto values = dstream_detail::read_column<V>(rows, 1);
    const std::int64_t b = dstream_detail::batch_index(ctx);
    for (std::size_t i = 0; i < values.size(); ++i) {
      auto& w = state.get(keys[i]);
      if (w.batches.empty() || w.batches.back().first != b) w.batches.emplace_back(b, values[i]);
      else w.batches.back().second = spec_.reduce(w.batches.back().second, values[i]);
      if (spec_.inverse) w.total = w.total ? spec_.reduce(*w.total, values[i]) : values[i];
    }
  }

  // At a slide's end: the batches that left the window go (through the inverse function when there is
  // one), then each key's window value is emitted.
  void end_epoch(keyed_state<window_reductions<V>>& state, operator_context& ctx) const override {
    const std::int64_t b = dstream_detail::batch_index(ctx);
    if (b % spec_.slide != 0) return;
    auto out = this->output_rows();
    for (const auto& owned : dstream_detail::all_keys(state)) {
      const key_ref key = owned.ref();
      auto& w = state.get(key);
      std::size_t leaving = 0;
      while (leaving < w.batches.size() && w.batches[leaving].first <= b - spec_.length) {
        if (spec_.inverse) w.total = spec_.inverse(*w.total, w.batches[leaving].second);
        ++leaving;
      }
      w.batches.erase(w.batches.begin(), w.batches.begin() + static_cast<std::ptrdiff_t>(leaving));
      std::optional<V> value = w.total;
      if (!spec_.inverse && !w.batches.empty()) {
        value = w.batches.front().second;
        for (std::size_t i = 1; i < w.batches.size(); ++i) value = spec_.reduce(*value, w.batches[i].second);
      }
      if (!value || (spec_.inverse && spec_.filter && !spec_.filter({dstream_detail::key_value<K>(state, key), *value}))) {
        state.remove(key);
        continue;
      }
      out.add(key).add(*value);
    }
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }

  void save(const window_reductions<V>& w, row_writer& out) const override {
    std::string bytes;
    dstream_detail::encode_scalar(bytes, static_cast<std::int64_t>(w.batches.size()));
    for (const auto& [b, v] : w.batches) {
      dstream_detail::encode_scalar(bytes, b);
      dstream_detail::encode_scalar(bytes, v);
    }
    dstream_detail::encode_scalar(bytes, w.total.has_value());
    if (w.total) dstream_detail::encode_scalar(bytes, *w.total);
    out.add(bytes);
  }
  window_reductions<V> load(const batch& saved, std::size_t row) const override {
    std::string_view in = saved.col(0).str(row);
    window_reductions<V> w;
    std::int64_t count = 0;
    dstream_detail::decode_scalar(in, count);
    for (std::int64_t i = 0; i < count; ++i) {
      auto& [b, v] = w.batches.emplace_back();
      dstream_detail::decode_scalar(in, b);
      dstream_detail::decode_scalar(in, v);
    }
    bool has_total = false;
    dstream_detail::decode_scalar(in, has_total);
    if (has_total) w.total = dstream_codec<V>::decode(in);
    return w;
  }

 private:
  spec spec_;
};

// update_state_by_key: each batch of its input (every slide batches), f(the key's new values, its state)
// for every key with state or new values; the new state (nullopt removes the key), emitted as (key, state).
template <dstream_scalar V, dstream_scalar S>
struct keyed_update {
  std::optional<S> state;
  std::vector<V> pending;  // this batch's values; empty at every epoch's end
};

template <dstream_scalar K, dstream_scalar V, dstream_scalar S>
class dstream_update_state_operator final : public keyed_operator<keyed_update<V, S>> {
 public:
  using function = std::function<std::optional<S>(const std::vector<V>&, const std::optional<S>&)>;
  dstream_update_state_operator(function f, std::int64_t slide)
      : keyed_operator<keyed_update<V, S>>({.name = "update_state_by_key",
                                            .input = dstream_schema<std::pair<K, V>>(),
                                            .keys = {"key"},
                                            .output = {{"value", dstream_detail::type_of_scalar<S>(), false}},
                                            .state = {{"state", dstream_detail::type_of_scalar<S>()}}}),
        f_(std::move(f)), slide_(slide) {}

  void process(const batch& rows, const row_keys& keys, keyed_state<keyed_update<V, S>>& state,
               operator_context&) const override {
    const auto values = dstream_detail::read_column<V>(rows, 1);
    for (std::size_t i = 0; i < values.size(); ++i) state.get(keys[i]).pending.push_back(values[i]);
  }
  void end_epoch(keyed_state<keyed_update<V, S>>& state, operator_context& ctx) const override {
    if (dstream_detail::batch_index(ctx) % slide_ != 0) return;
    auto out = this->output_rows();
    for (const auto& owned : dstream_detail::all_keys(state)) {
      auto& entry = state.get(owned.ref());
      std::optional<S> next = f_(entry.pending, entry.state);
      entry.pending.clear();
      if (!next) {
        state.remove(owned.ref());
        continue;
      }
      entry.state = std::move(next);
      out.add(owned.ref()).add(*entry.state);
    }
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const keyed_update<V, S>& entry, row_writer& out) const override { out.add(*entry.state); }
  keyed_update<V, S> load(const batch& saved, std::size_t row) const override {
    return {dstream_detail::read_scalar(saved.col(0), row, static_cast<S*>(nullptr), "state"), {}};
  }

 private:
  function f_;
  std::int64_t slide_;
};

// The state handle map_with_state's function gets, as Spark's State: group_state's exists, get, update and
// remove, and is_timing_out (a key called because it timed out, with no value; its state goes after the call).
template <dstream_scalar S>
class dstream_state : public group_state<S> {
 public:
  dstream_state(std::optional<S>& value, bool timing_out)
      : group_state<S>("map_with_state", value, nullptr, timing_out, group_state_timeout::none, {}) {}
  void update(S value) {
    if (this->has_timed_out())
      throw error("map_with_state: update() of a state that is timing out (it is removed after the call)");
    group_state<S>::update(std::move(value));
  }
  bool is_timing_out() const { return this->has_timed_out(); }
};

template <dstream_scalar S>
struct keyed_mapping_state {
  std::optional<S> state;
  std::int64_t last_batch = 0;  // the last batch the key had a value in
};

// Spark's StateSpec: the mapping function, called once per element (and once with no value for a key that
// timed out), and the idle timeout: a key without values for that long times out.
template <dstream_scalar K, dstream_scalar V, dstream_scalar S, dstream_element U>
struct state_spec {
  std::function<U(const K&, const std::optional<V>&, dstream_state<S>&)> function;
  std::optional<std::chrono::milliseconds> timeout;
};

template <dstream_scalar K, dstream_scalar V, dstream_scalar S, dstream_element U>
class dstream_map_with_state_operator final : public keyed_operator<keyed_mapping_state<S>> {
 public:
  // interval: the batch interval, which timeouts are measured in.
  dstream_map_with_state_operator(state_spec<K, V, S, U> spec, std::chrono::milliseconds interval)
      : keyed_operator<keyed_mapping_state<S>>({.name = "map_with_state",
                                                .input = dstream_schema<std::pair<K, V>>(),
                                                .keys = {"key"},
                                                .output = {},
                                                .state = {{"state", dstream_detail::type_of_scalar<S>()},
                                                          {"last_batch", type_id::int64}}}),
        spec_(std::move(spec)), interval_(interval), output_(dstream_schema<U>()) {}

  // The mapped values, not the keys.
  const schema_ptr& output_schema() const override { return output_; }

  void process(const batch& rows, const row_keys& keys, keyed_state<keyed_mapping_state<S>>& state,
               operator_context& ctx) const override {
    const auto elements = dstream_codec<std::pair<K, V>>::read(rows);
    const std::int64_t b = dstream_detail::batch_index(ctx);
    std::vector<U> out;
    for (std::size_t i = 0; i < elements.size(); ++i) {
      auto& entry = state.get(keys[i]);
      dstream_state<S> handle(entry.state, false);
      out.push_back(spec_.function(elements[i].first, elements[i].second, handle));
      entry.last_batch = b;
      if (!entry.state) state.remove(keys[i]);
    }
    if (!out.empty()) ctx.emit(dstream_codec<U>::write(output_, out));
  }

  // Keys idle for longer than the timeout: called once more, timing out, then removed.
  void end_epoch(keyed_state<keyed_mapping_state<S>>& state, operator_context& ctx) const override {
    if (!spec_.timeout) return;
    const std::int64_t b = dstream_detail::batch_index(ctx);
    std::vector<U> out;
    for (const auto& owned : dstream_detail::all_keys(state)) {
      const auto* entry = state.find(owned.ref());
      // As Spark: timed out when its last value came more than the timeout before this batch.
      if ((b - entry->last_batch) * interval_.count() <= spec_.timeout->count()) continue;
      std::optional<S> value = entry->state;
      dstream_state<S> handle(value, true);
      out.push_back(spec_.function(dstream_detail::key_value<K>(state, owned.ref()), std::nullopt, handle));
      state.remove(owned.ref());
    }
    if (!out.empty()) ctx.emit(dstream_codec<U>::write(output_, out));
  }

  void save(const keyed_mapping_state<S>& entry, row_writer& out) const override {
    out.add(*entry.state).add(entry.last_batch);
  }
  keyed_mapping_state<S> load(const batch& saved, std::size_t row) const override {
    return {dstream_detail::read_scalar(saved.col(0), row, static_cast<S*>(nullptr), "state"), saved.col(1).ints()[row]};
  }

 private:
  state_spec<K, V, S, U> spec_;
  std::chrono::milliseconds interval_;
  schema_ptr output_;
};

}  // namespace flow
