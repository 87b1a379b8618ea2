// The keyed state store's bookkeeping, the row builders of keyed operators and their shared part.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "flow/keyed_operator.hpp"

#include "cell_encoding.hpp"

namespace flow {

// ---------------------------------------------------------------- row_writer, keyed_rows

column_builder& row_writer::next_any() {
  if (next_ >= columns_.size()) {
    throw error("row_writer: more values than the " + std::to_string(columns_.size()) + " columns (" +
                fields_->to_string() + ")");
  }
  return columns_[next_++];
}

column_builder& row_writer::next(type_id wanted) {
  column_builder& c = next_any();
  if (c.type() != wanted) {
    const field& f = (*fields_)[next_ - 1];
    throw error("row_writer: column '" + f.name + "' is " + std::string(type_name(f.type)) + ", but a " +
                std::string(type_name(wanted)) + " value was written to it");
  }
  return c;
}

column_builder& row_writer::next_number() {
  column_builder& c = next_any();
  if (c.type() != type_id::int64 && c.type() != type_id::float64) {
    const field& f = (*fields_)[next_ - 1];
    throw error("row_writer: column '" + f.name + "' is " + std::string(type_name(f.type)) +
                ", but an integer was written to it");
  }
  return c;
}

row_writer& row_writer::add_null() {
  next_any().append_null();
  return *this;
}

keyed_rows::keyed_rows(schema_ptr schema, key_layout layout) : schema_(std::move(schema)), layout_(std::move(layout)) {
  const auto& key_types = layout_.types();
  bool keys_match = schema_->size() >= key_types.size();
  for (std::size_t k = 0; keys_match && k < key_types.size(); ++k) keys_match = (*schema_)[k].type == key_types[k];
  if (!keys_match) {
    throw error("keyed_rows: the schema (" + schema_->to_string() + ") does not start with the " +
                std::to_string(key_types.size()) + " key columns");
  }
  columns_.reserve(schema_->size());
  for (const field& f : schema_->fields()) columns_.emplace_back(f.type);
}

row_writer keyed_rows::add(key_ref key) {
  append_decoded_key(layout_, key.bytes, columns_);
  ++rows_;
  return row_writer(*schema_, columns_, layout_.types().size());
}

batch keyed_rows::finish() {
  std::vector<column> columns;
  columns.reserve(columns_.size());
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].size() != rows_) {
      throw error("keyed_rows: column '" + (*schema_)[c].name + "' has " + std::to_string(columns_[c].size()) +
                  " values for " + std::to_string(rows_) + " rows; write one value per column after each add(key) (" +
                  schema_->to_string() + ")");
    }
    columns.push_back(columns_[c].finish());
  }
  rows_ = 0;
  return batch(schema_, std::move(columns));
}

// ---------------------------------------------------------------- keyed_state_base

keyed_state_base::keyed_state_base(key_layout layout) : layout_(std::move(layout)) { rebuild_slots(64); }

std::uint32_t keyed_state_base::add_entry(key_ref key) {
  if (hashes_.size() >= npos - 1) throw error("keyed state: more than 4 billion keys in one instance");
  const auto e = static_cast<std::uint32_t>(hashes_.size());
  hashes_.push_back(key.hash);
  key_bytes_.append(key.bytes);
  key_offsets_.push_back(key_bytes_.size());
  live_.push_back(1);
  ++live_count_;
  changed_stamp_.push_back(0);
  stored_.push_back(0);
  if (hashes_.size() * 2 > slots_.size()) {
    rebuild_slots(slots_.size() * 2);  // load factor <= 1/2
  } else {
    std::size_t pos = key.hash & mask_;
    while (slots_[pos] != 0) pos = (pos + 1) & mask_;
    slots_[pos] = e + 1;
  }
  return e;
}

void keyed_state_base::set_live(std::uint32_t e, bool live) {
  if (live_[e] == live) return;
  live_[e] = live;
  if (live) ++live_count_;
  else --live_count_;
}

void keyed_state_base::forget_changes() {
  changed_.clear();
  if (++generation_ == 0) {  // the stamps wrapped around: none may look current
    std::fill(changed_stamp_.begin(), changed_stamp_.end(), 0);
    generation_ = 1;
  }
}

std::vector<std::uint32_t> keyed_state_base::compact_if_sparse() {
  const std::size_t dead = entries() - live_count_;
  if (dead < 1024 || dead <= live_count_ || !changed_.empty()) return {};
  std::vector<std::uint32_t> kept;
  kept.reserve(live_count_);
  for (std::uint32_t e = 0; e < entries(); ++e) {
    if (live_[e]) kept.push_back(e);
  }
  std::vector<std::uint64_t> hashes;
  std::string bytes;
  std::vector<std::size_t> offsets{0};
  hashes.reserve(kept.size());
  offsets.reserve(kept.size() + 1);
  for (auto e : kept) {
    const key_ref key = key_at(e);
    hashes.push_back(key.hash);
    bytes.append(key.bytes);
    offsets.push_back(bytes.size());
  }
  hashes_ = std::move(hashes);
  key_bytes_ = std::move(bytes);
  key_offsets_ = std::move(offsets);
  live_.assign(kept.size(), 1);
  changed_stamp_.assign(kept.size(), 0);
  stored_.assign(kept.size(), 0);  // only the memory backend compacts
  std::size_t capacity = 64;
  while (capacity < kept.size() * 2) capacity *= 2;
  rebuild_slots(capacity);
  return kept;
}

// Releases the memory too (clear() keeps it): an on-disk backend's cache empties after every epoch.
void keyed_state_base::clear_entries() {
  auto release = [](auto& container) { std::remove_reference_t<decltype(container)>().swap(container); };
  release(hashes_);
  release(key_bytes_);
  key_offsets_ = std::vector<std::size_t>{0};
  release(live_);
  live_count_ = 0;
  release(changed_stamp_);
  release(changed_);
  generation_ = 1;
  release(stored_);
  stored_cached_ = 0;
  release(slots_);
  rebuild_slots(64);
}

void keyed_state_base::rebuild_slots(std::size_t capacity) {
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (std::uint32_t e = 0; e < hashes_.size(); ++e) {
    std::size_t pos = hashes_[e] & mask_;
    while (slots_[pos] != 0) pos = (pos + 1) & mask_;
    slots_[pos] = e + 1;
  }
}

std::shared_ptr<const encoded_key_columns> keyed_state_base::changed_keys() const {
  encoded_keys keys;
  keys.rows = changed_.size();
  keys.hashes.reserve(keys.rows);
  if (layout_.fixed()) {
    keys.key_words = layout_.key_words();
    keys.words.resize(keys.rows * keys.key_words);
    for (std::size_t i = 0; i < keys.rows; ++i) {
      const key_ref key = key_at(changed_[i]);
      std::memcpy(keys.words.data() + i * keys.key_words, key.bytes.data(), keys.key_words * sizeof(std::uint64_t));
      keys.hashes.push_back(key.hash);
    }
  } else {
    keys.offsets.reserve(keys.rows + 1);
    for (auto e : changed_) {
      const key_ref key = key_at(e);
      keys.offsets.push_back(keys.bytes.size());
      keys.bytes.append(key.bytes);
      keys.hashes.push_back(key.hash);
    }
    keys.offsets.push_back(keys.bytes.size());
  }
  std::vector<std::size_t> columns(layout_.types().size());
  std::iota(columns.begin(), columns.end(), std::size_t{0});
  return std::make_shared<const encoded_key_columns>(
      encoded_key_columns{std::move(columns), std::make_shared<const encoded_keys>(std::move(keys)), nullptr});
}

std::size_t keyed_state_base::index_bytes() const {
  return slots_.capacity() * sizeof(std::uint32_t) + hashes_.capacity() * sizeof(std::uint64_t) +
         key_bytes_.capacity() + key_offsets_.capacity() * sizeof(std::size_t) + live_.capacity() +
         changed_stamp_.capacity() * sizeof(std::uint32_t) + changed_.capacity() * sizeof(std::uint32_t) +
         stored_.capacity();
}

// ---------------------------------------------------------------- keyed_state_base: on-disk backends

void keyed_state_base::use_backend(const state_backend_config& config, const std::string& instance_directory) {
  if (entries() != 0 || stored_rows_ != 0)
    throw error("keyed state: use_backend(\"" + config.kind + "\") after the state got keys; the runtime calls it "
                "right after make_state()");
  if (config.kind == "memory") {
    store_.reset();
    return;
  }
  store_ = make_key_value_store(config, instance_directory);
  count_stored();
}

void keyed_state_base::count_stored() {
  stored_rows_ = 0;
  store_->for_each([&](std::string_view, std::string_view) { ++stored_rows_; });
}

void keyed_state_base::snapshot_to(const std::string& directory) const {
  if (!store_) return operator_state::snapshot_to(directory);
  if (!changed_.empty())
    throw error("keyed state: snapshot_to(" + directory + ") with " + std::to_string(changed_.size()) +
                " keys changed since take_changes(); call take_changes() first (the runtime does after each epoch)");
  store_->snapshot_to(directory);
}

void keyed_state_base::write_to_store(const batch& changes, std::size_t first_value_column) {
  key_value_batch writes;
  std::string value;
  for (std::size_t row = 0; row < changed_.size(); ++row) {
    const std::uint32_t e = changed_[row];
    if (live(e)) {
      value.clear();
      encode_values(changes, first_value_column, row, value);
      writes.put(key_at(e).bytes, value);
      if (!stored(e)) ++stored_rows_;
    } else if (stored(e)) {
      writes.remove(key_at(e).bytes);
      --stored_rows_;
    }
  }
  if (!writes.empty()) store_->apply(writes);
  clear_entries();
}

void keyed_state_base::clear_store() {
  clear_entries();
  store_->clear();
  stored_rows_ = 0;
}

void keyed_state_base::restore_store_from(const std::string& directory) {
  if (!store_) return operator_state::restore_from(directory);
  clear_entries();
  store_->restore_from(directory);
  count_stored();
}

void keyed_state_base::encode_values(const batch& rows, std::size_t first_column, std::size_t row, std::string& out) {
  detail::append_cells(rows, first_column, row, out);
}

batch keyed_state_base::decode_values(const schema_ptr& saved, std::span<const std::string> values) {
  return detail::decode_cells(saved, values);
}

// ---------------------------------------------------------------- keyed_operator_base

keyed_operator_base::keyed_operator_base(keyed_operator_spec spec)
    : name_(std::move(spec.name)), key_names_(std::move(spec.keys)), input_(std::move(spec.input)) {
  if (!input_) throw error("keyed operator '" + name_ + "': the input schema is missing");
  std::vector<field> key_fields;
  std::vector<type_id> key_types;
  for (const auto& name : key_names_) {
    const auto index = input_->find(name);
    if (!index) {
      throw error("keyed operator '" + name_ + "': key column '" + name + "' is not in its input (" +
                  input_->to_string() + ")");
    }
    key_indexes_.push_back(*index);
    key_fields.push_back((*input_)[*index]);
    key_types.push_back(key_fields.back().type);
  }
  try {
    layout_ = key_layout(std::move(key_types));
  } catch (const error& e) {
    throw error("keyed operator '" + name_ + "': " + e.what());
  }
  std::vector<field> output = key_fields, state = key_fields, saved;
  output.insert(output.end(), spec.output.begin(), spec.output.end());
  state.push_back(field{"__deleted", type_id::boolean, false});
  for (field f : spec.state) {
    f.nullable = true;
    state.push_back(f);
    saved.push_back(std::move(f));
  }
  output_ = make_schema(std::move(output));
  state_ = make_schema(std::move(state));
  saved_ = make_schema(std::move(saved));
}

row_keys keyed_operator_base::input_keys(const batch& input, std::size_t input_index) const {
  if (input_index != 0) {
    throw error("keyed operator '" + name_ + "' has one input, but got a batch for input " + std::to_string(input_index));
  }
  for (std::size_t k = 0; k < key_indexes_.size(); ++k) {
    const std::size_t index = key_indexes_[k];
    if (index >= input.num_columns() || input.schema()[index].type != layout_.types()[k]) {
      throw error("keyed operator '" + name_ + "' was built for the input (" + input_->to_string() +
                  "), but got a batch of (" + input.schema().to_string() + ")");
    }
  }
  if (const encoded_key_columns* attached = input.attached_keys(); attached && attached->columns == key_indexes_) {
    return row_keys(attached->keys, attached->rows);
  }
  std::vector<column> keys;
  keys.reserve(key_indexes_.size());
  for (auto index : key_indexes_) keys.push_back(input.col(index));
  return row_keys(encode_keys(layout_, keys, input.num_rows()));
}

row_keys keyed_operator_base::state_keys(const batch& changes) const {
  bool same = changes.num_columns() == state_->size();
  for (std::size_t c = 0; same && c < state_->size(); ++c) same = changes.schema()[c].type == (*state_)[c].type;
  if (!same) {
    throw error("keyed operator '" + name_ + "': state rows must have its state schema (" + state_->to_string() +
                "), but have (" + changes.schema().to_string() + ")");
  }
  const std::size_t num_keys = layout_.types().size();
  if (const encoded_key_columns* attached = changes.attached_keys()) {
    std::vector<std::size_t> key_columns(num_keys);
    std::iota(key_columns.begin(), key_columns.end(), std::size_t{0});
    if (attached->columns == key_columns) return row_keys(attached->keys, attached->rows);
  }
  std::vector<column> keys(changes.columns().begin(), changes.columns().begin() + static_cast<std::ptrdiff_t>(num_keys));
  return row_keys(encode_keys(layout_, keys, changes.num_rows()));
}

batch keyed_operator_base::saved_columns(const batch& changes) const {
  const auto first = changes.columns().begin() + static_cast<std::ptrdiff_t>(layout_.types().size() + 1);
  return batch(saved_, std::vector<column>(first, changes.columns().end()));
}

void keyed_operator_base::missing_state() const {
  throw error("keyed operator '" + name_ + "' was called without the state its make_state() makes");
}

}  // namespace flow
