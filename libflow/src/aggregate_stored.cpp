// The aggregation's table on an on-disk state backend: the hash table caches the groups one epoch
// touches, the key_value_store holds them all.
#include "aggregate_stored.hpp"

#include "cell_encoding.hpp"

namespace flow::detail {

namespace {

// Groups read from the store at a time (complete mode, snapshots, eviction).
constexpr std::size_t stored_chunk = 4096;

schema_ptr columns_of(const schema& s, std::size_t first, std::size_t last) {
  return make_schema(std::vector<field>(s.fields().begin() + static_cast<std::ptrdiff_t>(first),
                                        s.fields().begin() + static_cast<std::ptrdiff_t>(last)));
}

std::vector<column> key_columns(const batch& rows, std::size_t keys) {
  return std::vector<column>(rows.columns().begin(), rows.columns().begin() + static_cast<std::ptrdiff_t>(keys));
}

}  // namespace

stored_aggregate_state::stored_aggregate_state(const aggregate_operator& aggregate,
                                               std::unique_ptr<key_value_store> store)
    : aggregate_(&aggregate), cache_(aggregate.make_state()), store_(std::move(store)) {
  const schema& state = *aggregate.state_schema();
  const std::size_t keys = aggregate.num_keys();
  std::vector<type_id> key_types;
  for (std::size_t k = 0; k < keys; ++k) key_types.push_back(state[k].type);
  layout_ = key_layout(std::move(key_types));
  key_schema_ = columns_of(state, 0, keys);
  value_schema_ = columns_of(state, keys, state.size());
  count_stored();
}

std::size_t stored_aggregate_state::update(const batch& input, timestamp watermark) {
  const std::size_t first = cache_->num_groups();
  const std::size_t late = cache_->update(input, watermark);
  read_stored(first, true);
  return late;
}

void stored_aggregate_state::merge(const batch& state_rows) {
  const std::size_t first = cache_->num_groups();
  cache_->merge(state_rows);
  read_stored(first, true);
}

// A replaced group's stored value is overwritten, not merged: the store is asked only whether it has it.
void stored_aggregate_state::replace_groups(const batch& state_rows) {
  const std::size_t first = cache_->num_groups();
  cache_->replace_groups(state_rows);
  read_stored(first, false);
}

// A group new to the cache holds what this call folded in; its stored accumulators go first and that is
// merged on top, the order the memory table folds in (float sums then round alike).
void stored_aggregate_state::read_stored(std::size_t first, bool fold) {
  const batch fresh = cache_->groups_since(first);
  const std::size_t n = fresh.num_rows();
  if (n == 0) return;
  const auto keys = key_columns(fresh, aggregate_->num_keys());
  const encoded_keys encoded = encode_keys(layout_, keys, n);
  std::vector<std::uint8_t> found(n, 0);
  std::vector<std::string> values;
  std::string value;
  for (std::size_t i = 0; i < n; ++i) {
    if (!store_->get(encoded.key(i), value)) continue;
    found[i] = 1;
    values.push_back(value);
  }
  cached_new_ += n - values.size();
  if (!fold || values.empty()) return;
  std::vector<column> columns = filter_rows(batch(key_schema_, keys), found).columns();
  const batch decoded = decode_cells(value_schema_, values);
  columns.insert(columns.end(), decoded.columns().begin(), decoded.columns().end());
  cache_->replace_groups(batch(aggregate_->state_schema(), std::move(columns)));
  cache_->merge(filter_rows(fresh, found));
}

void stored_aggregate_state::flush() {
  const batch rows = cache_->snapshot();
  const std::size_t keys = aggregate_->num_keys();
  const encoded_keys encoded = encode_keys(layout_, key_columns(rows, keys), rows.num_rows());
  key_value_batch writes;
  std::string value;
  for (std::size_t i = 0; i < rows.num_rows(); ++i) {
    value.clear();
    append_cells(rows, keys, i, value);
    writes.put(encoded.key(i), value);
  }
  store_->apply(writes);
  stored_groups_ += cached_new_;
  cached_new_ = 0;
  cache_ = aggregate_->make_state();  // a new table: the old one's memory is released, not kept for reuse
}

batch stored_aggregate_state::emit(output_mode mode, timestamp watermark) {
  if (mode == output_mode::append && aggregate_->window_key_index() < 0) return cache_->emit(mode, watermark);  // its error
  batch changed = mode == output_mode::update ? cache_->emit(mode, watermark) : batch();
  flush();
  switch (mode) {
    case output_mode::update: return changed;
    case output_mode::complete: {
      std::vector<batch> parts;
      auto table = aggregate_->make_state();
      for_each_stored([&](const batch& rows) {
        table->restore(rows);
        parts.push_back(table->emit(output_mode::complete));
      });
      return parts.empty() ? batch::empty(aggregate_->output_schema()) : concat(parts);
    }
    case output_mode::append: break;
  }
  auto table = aggregate_->make_state();
  table->restore(expire(watermark));
  return table->emit(output_mode::complete);
}

batch stored_aggregate_state::expire(timestamp watermark) {
  std::vector<batch> parts;
  key_value_batch removals;
  const auto window = static_cast<std::size_t>(aggregate_->window_key_index());
  for_each_stored([&](const batch& rows) {
    const column& windows = rows.col(window);
    std::vector<std::uint8_t> closed(rows.num_rows(), 0);
    bool any = false;
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      if (!windows.valid(i) || windows.ends()[i] > watermark.micros) continue;
      closed[i] = 1;
      any = true;
    }
    if (!any) return;
    batch expired = filter_rows(rows, closed);
    const encoded_keys encoded = encode_keys(layout_, key_columns(expired, aggregate_->num_keys()), expired.num_rows());
    for (std::size_t i = 0; i < expired.num_rows(); ++i) removals.remove(encoded.key(i));
    parts.push_back(std::move(expired));
  });
  store_->apply(removals);  // after the scan: the store is not changed while it is read
  stored_groups_ -= removals.size();
  return parts.empty() ? batch::empty(aggregate_->state_schema()) : concat(parts);
}

batch stored_aggregate_state::evict_groups(timestamp watermark) {
  if (aggregate_->window_key_index() < 0) return batch::empty(aggregate_->state_schema());
  flush();
  return expire(watermark);
}

batch stored_aggregate_state::snapshot() const {
  auto table = aggregate_->make_state();
  for_each_stored([&](const batch& rows) { table->merge(rows); });
  table->replace_groups(cache_->snapshot());
  return table->snapshot();
}

void stored_aggregate_state::restore(const batch& state_rows) {
  clear();
  cache_->merge(state_rows);
  cached_new_ = cache_->num_groups();
  flush();
}

void stored_aggregate_state::clear() {
  cache_ = aggregate_->make_state();
  store_->clear();
  stored_groups_ = 0;
  cached_new_ = 0;
}

void stored_aggregate_state::snapshot_to(const std::string& directory) const {
  if (cache_->num_groups() != 0)
    throw error("aggregation state: snapshot_to(" + directory + ") with " + std::to_string(cache_->num_groups()) +
                " groups not yet written to its store; emit or flush first (the operator does at each epoch's end)");
  store_->snapshot_to(directory);
}

void stored_aggregate_state::restore_from(const std::string& directory) {
  cache_ = aggregate_->make_state();
  cached_new_ = 0;
  store_->restore_from(directory);
  count_stored();
}

template <class F>
void stored_aggregate_state::for_each_stored(F&& f) const {
  std::vector<column_builder> keys;
  for (const field& k : key_schema_->fields()) keys.emplace_back(k.type);
  std::vector<std::string> values;
  auto visit = [&] {
    if (values.empty()) return;
    std::vector<column> columns;
    for (column_builder& k : keys) columns.push_back(k.finish());
    const batch decoded = decode_cells(value_schema_, values);
  columns.insert(columns.end(), decoded.columns().begin(), decoded.columns().end());
    values.clear();
    f(batch(aggregate_->state_schema(), std::move(columns)));
  };
  store_->for_each([&](std::string_view key, std::string_view value) {
    append_decoded_key(layout_, key, keys);
    values.emplace_back(value);
    if (values.size() == stored_chunk) visit();
  });
  visit();
}

void stored_aggregate_state::count_stored() {
  stored_groups_ = 0;
  store_->for_each([&](std::string_view, std::string_view) { ++stored_groups_; });
}

}  // namespace flow::detail
