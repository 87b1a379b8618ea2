#include "flow/column.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace flow {

namespace {

std::string value_type_name(const value& v) {
  auto t = type_of(v);
  return t ? std::string(type_name(*t)) : std::string("null");
}

[[noreturn]] void throw_mismatch(const value& v, type_id column_type) {
  throw error("cannot append a " + value_type_name(v) + " value to a " +
              std::string(type_name(column_type)) + " column; convert the value first");
}

}  // namespace

value column::at(std::size_t i) const {
  if (i >= length_) {
    throw error("row " + std::to_string(i) + " out of range for a column of " + std::to_string(length_) +
                " rows");
  }
  if (is_null(i)) return null_value{};
  switch (type()) {
    case type_id::boolean: return bools()[i] != 0;
    case type_id::int64: return ints()[i];
    case type_id::float64: return doubles()[i];
    case type_id::string: return std::string(str(i));
    case type_id::timestamp: return timestamp{ints()[i]};
    case type_id::window: return window(i);
    case type_id::string_list: {
      std::vector<std::string> items;
      items.reserve(list_size(i));
      for (std::size_t j = 0; j < list_size(i); ++j) items.emplace_back(list_item(i, j));
      return items;
    }
  }
  return null_value{};
}

column column::slice(std::size_t offset, std::size_t length) const {
  if (offset > length_ || length > length_ - offset) {
    throw error("slice [" + std::to_string(offset) + ", " + std::to_string(offset) + " + " +
                std::to_string(length) + ") out of range for a column of " + std::to_string(length_) +
                " rows");
  }
  return column(data_, offset_ + offset, length);
}

std::size_t column::byte_size() const {
  if (!data_) return 0;
  std::size_t bytes = data_->validity.empty() ? 0 : (length_ + 7) / 8;
  switch (type()) {
    case type_id::boolean: return bytes + length_;
    case type_id::int64:
    case type_id::float64:
    case type_id::timestamp: return bytes + 8 * length_;
    case type_id::window: return bytes + 16 * length_;
    case type_id::string: {
      const auto* off = data_->offsets.data() + offset_;
      return bytes + 4 * (length_ + 1) + (off[length_] - off[0]);
    }
    case type_id::string_list: {
      const auto* lists = data_->list_offsets.data() + offset_;
      const std::size_t first = lists[0], last = lists[length_];
      const auto& off = data_->offsets;
      return bytes + 4 * (length_ + 1) + 4 * (last - first + 1) + (off[last] - off[first]);
    }
  }
  return bytes;
}

column_builder::column_builder(type_id type, std::size_t expected_rows)
    : data_(std::make_shared<column_data>()) {
  data_->type = type;
  switch (type) {
    case type_id::boolean: data_->bools.reserve(expected_rows); break;
    case type_id::int64:
    case type_id::timestamp: data_->ints.reserve(expected_rows); break;
    case type_id::float64: data_->doubles.reserve(expected_rows); break;
    case type_id::window:
      data_->ints.reserve(expected_rows);
      data_->ends.reserve(expected_rows);
      break;
    case type_id::string:
      data_->offsets.reserve(expected_rows + 1);
      data_->chars.reserve(expected_rows * 8);
      break;
    case type_id::string_list:
      data_->list_offsets.reserve(expected_rows + 1);
      data_->offsets.reserve(expected_rows * 4 + 1);
      data_->chars.reserve(expected_rows * 16);
      break;
  }
  reset_buffers();
}

// Offsets start with a single 0 so that row i spans [offsets[i], offsets[i + 1]).
void column_builder::reset_buffers() {
  if (data_->type == type_id::string || data_->type == type_id::string_list) data_->offsets.push_back(0);
  if (data_->type == type_id::string_list) data_->list_offsets.push_back(0);
}

void column_builder::set_validity_bit(std::size_t i, bool v) {
  std::size_t word = i >> 6;
  if (word >= data_->validity.size()) data_->validity.resize(word + 1, 0);
  std::uint64_t mask = std::uint64_t{1} << (i & 63);
  if (v) {
    data_->validity[word] |= mask;
  } else {
    data_->validity[word] &= ~mask;
  }
}

void column_builder::append_null() {
  if (list_open_) throw error("append_null: a list is open; call end_list() first");
  switch (data_->type) {
    case type_id::boolean: data_->bools.push_back(0); break;
    case type_id::int64:
    case type_id::timestamp: data_->ints.push_back(0); break;
    case type_id::float64: data_->doubles.push_back(0.0); break;
    case type_id::window:
      data_->ints.push_back(0);
      data_->ends.push_back(0);
      break;
    case type_id::string: data_->offsets.push_back(data_->offsets.back()); break;
    case type_id::string_list: data_->list_offsets.push_back(data_->list_offsets.back()); break;
  }
  std::size_t row = data_->length;
  if (data_->validity.empty()) {
    // The bitmap is only allocated at the first null: every earlier row was valid.
    data_->validity.assign(row / 64 + 1, 0);
    for (std::size_t w = 0; w < row / 64; ++w) data_->validity[w] = ~std::uint64_t{0};
    if (row % 64 != 0) data_->validity[row / 64] = (std::uint64_t{1} << (row % 64)) - 1;
  }
  set_validity_bit(row, false);
  ++data_->length;
  ++data_->null_count;
}

void column_builder::append_string(std::string_view s) {
  if (data_->chars.size() + s.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw error("string column exceeds 4 GiB of characters; use smaller batches");
  }
  data_->chars.append(s);
  data_->offsets.push_back(static_cast<std::uint32_t>(data_->chars.size()));
  mark_valid();
}

void column_builder::expect_list_type(const char* operation) const {
  if (data_->type != type_id::string_list) {
    throw error(std::string(operation) + ": the builder makes a " + std::string(type_name(data_->type)) +
                " column, not array<string>");
  }
}

void column_builder::begin_list() {
  expect_list_type("begin_list");
  if (list_open_) throw error("begin_list: a list is already open; call end_list() first");
  list_open_ = true;
}

void column_builder::append_list_item(std::string_view item) {
  expect_list_type("append_list_item");
  if (!list_open_) throw error("append_list_item: no list is open; call begin_list() first");
  if (data_->chars.size() + item.size() > std::numeric_limits<std::uint32_t>::max() ||
      data_->offsets.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw error("array<string> column exceeds 4 GiB of characters or 2^32 elements; use smaller batches");
  }
  data_->chars.append(item);
  data_->offsets.push_back(static_cast<std::uint32_t>(data_->chars.size()));
}

void column_builder::end_list() {
  expect_list_type("end_list");
  if (!list_open_) throw error("end_list: no list is open; call begin_list() first");
  list_open_ = false;
  data_->list_offsets.push_back(static_cast<std::uint32_t>(data_->offsets.size() - 1));
  mark_valid();
}

void column_builder::append_list(std::span<const std::string_view> items) {
  begin_list();
  for (auto item : items) append_list_item(item);
  end_list();
}

void column_builder::append_value(const value& v) {
  if (flow::is_null(v)) {
    append_null();
    return;
  }
  switch (data_->type) {
    case type_id::boolean:
      if (auto* b = std::get_if<bool>(&v)) return append_bool(*b);
      break;
    case type_id::int64:
      if (auto* i = std::get_if<std::int64_t>(&v)) return append_int(*i);
      if (auto* d = std::get_if<double>(&v)) {
        // Only whole doubles in range convert without losing information.
        if (std::isfinite(*d) && std::trunc(*d) == *d && *d >= -9.2233720368547758e18 &&
            *d < 9.2233720368547758e18) {
          return append_int(static_cast<std::int64_t>(*d));
        }
        throw error("cannot append the double " + to_string(v) +
                    " to an int64 column without losing information; cast it first");
      }
      break;
    case type_id::float64:
      if (auto* d = std::get_if<double>(&v)) return append_double(*d);
      if (auto* i = std::get_if<std::int64_t>(&v)) return append_double(static_cast<double>(*i));
      break;
    case type_id::string:
      if (auto* s = std::get_if<std::string>(&v)) return append_string(*s);
      break;
    case type_id::timestamp:
      if (auto* t = std::get_if<timestamp>(&v)) return append_timestamp(*t);
      break;
    case type_id::window:
      if (auto* w = std::get_if<window_value>(&v)) return append_window(*w);
      break;
    case type_id::string_list:
      if (auto* items = std::get_if<std::vector<std::string>>(&v)) {
        begin_list();
        for (const auto& item : *items) append_list_item(item);
        return end_list();
      }
      break;
  }
  throw_mismatch(v, data_->type);
}

void column_builder::append_from(const column& c, std::size_t i) {
  if (c.type() != data_->type) {
    throw error("cannot append a row of a " + std::string(type_name(c.type())) + " column to a " +
                std::string(type_name(data_->type)) + " column");
  }
  if (c.is_null(i)) {
    append_null();
    return;
  }
  switch (data_->type) {
    case type_id::boolean: append_bool(c.bools()[i] != 0); break;
    case type_id::int64: append_int(c.ints()[i]); break;
    case type_id::float64: append_double(c.doubles()[i]); break;
    case type_id::string: append_string(c.str(i)); break;
    case type_id::timestamp: append_timestamp(timestamp{c.ints()[i]}); break;
    case type_id::window: append_window(c.window(i)); break;
    case type_id::string_list:
      begin_list();
      for (std::size_t j = 0; j < c.list_size(i); ++j) append_list_item(c.list_item(i, j));
      end_list();
      break;
  }
}

column column_builder::finish() {
  if (list_open_) throw error("finish: a list is still open; call end_list() first");
  auto type = data_->type;
  column result(std::shared_ptr<const column_data>(std::move(data_)));
  data_ = std::make_shared<column_data>();
  data_->type = type;
  reset_buffers();
  return result;
}

namespace {

template <typename T>
void append_range(std::vector<T>& out, const T* values, std::size_t n) {
  out.insert(out.end(), values, values + n);
}

}  // namespace

column null_column(type_id type, std::size_t rows) {
  auto data = std::make_shared<column_data>();
  data->type = type;
  data->length = rows;
  data->null_count = rows;
  data->validity.assign((rows + 63) / 64, 0);
  switch (type) {
    case type_id::boolean: data->bools.assign(rows, 0); break;
    case type_id::int64:
    case type_id::timestamp: data->ints.assign(rows, 0); break;
    case type_id::float64: data->doubles.assign(rows, 0.0); break;
    case type_id::window:
      data->ints.assign(rows, 0);
      data->ends.assign(rows, 0);
      break;
    case type_id::string: data->offsets.assign(rows + 1, 0); break;
    case type_id::string_list:
      data->offsets.assign(1, 0);
      data->list_offsets.assign(rows + 1, 0);
      break;
  }
  return column(std::move(data));
}

column concat_columns(type_id type, const std::vector<column>& parts) {
  std::size_t rows = 0, chars = 0;
  bool any_nulls = false;
  for (const auto& part : parts) {
    if (part.type() != type) {
      throw error("cannot concatenate a " + std::string(type_name(part.type())) + " column to a " +
                  std::string(type_name(type)) + " column");
    }
    rows += part.size();
    any_nulls = any_nulls || part.has_nulls();
    if (type == type_id::string && part.size() != 0) {
      const auto* off = part.data()->offsets.data() + part.offset();
      chars += off[part.size()] - off[0];
    }
  }
  if (type == type_id::string_list) {
    column_builder builder(type, rows);
    for (const auto& part : parts)
      for (std::size_t i = 0; i < part.size(); ++i) builder.append_from(part, i);
    return builder.finish();
  }
  if (chars > std::numeric_limits<std::uint32_t>::max()) {
    throw error("string column exceeds 4 GiB of characters; use smaller batches");
  }
  auto data = std::make_shared<column_data>();
  data->type = type;
  data->length = rows;
  if (any_nulls) data->validity.assign((rows + 63) / 64, 0);
  switch (type) {  // sized once: growing while appending would copy and fault in fresh pages again and again
    case type_id::boolean: data->bools.reserve(rows); break;
    case type_id::int64:
    case type_id::timestamp: data->ints.reserve(rows); break;
    case type_id::float64: data->doubles.reserve(rows); break;
    case type_id::window:
      data->ints.reserve(rows);
      data->ends.reserve(rows);
      break;
    case type_id::string:
      data->offsets.reserve(rows + 1);
      data->offsets.push_back(0);
      data->chars.reserve(chars);
      break;
    case type_id::string_list: break;  // built above
  }
  std::size_t row = 0;
  for (const auto& part : parts) {
    const std::size_t n = part.size();
    if (n == 0) continue;
    switch (type) {
      case type_id::boolean: append_range(data->bools, part.bools(), n); break;
      case type_id::int64:
      case type_id::timestamp: append_range(data->ints, part.ints(), n); break;
      case type_id::float64: append_range(data->doubles, part.doubles(), n); break;
      case type_id::window:
        append_range(data->ints, part.ints(), n);
        append_range(data->ends, part.ends(), n);
        break;
      case type_id::string: {
        const auto* off = part.data()->offsets.data() + part.offset();
        const std::uint32_t base = static_cast<std::uint32_t>(data->chars.size());
        data->chars.append(part.data()->chars, off[0], off[n] - off[0]);
        for (std::size_t i = 1; i <= n; ++i) data->offsets.push_back(base + (off[i] - off[0]));
        break;
      }
      case type_id::string_list: break;  // built above
    }
    if (any_nulls) {
      for (std::size_t i = 0; i < n; ++i, ++row) {
        if (part.valid(i)) data->validity[row >> 6] |= std::uint64_t{1} << (row & 63);
        else ++data->null_count;
      }
    } else {
      row += n;
    }
  }
  return column(std::shared_ptr<const column_data>(std::move(data)));
}

column make_int_column(const std::vector<std::int64_t>& v) {
  column_builder b(type_id::int64, v.size());
  for (auto x : v) b.append_int(x);
  return b.finish();
}

column make_double_column(const std::vector<double>& v) {
  column_builder b(type_id::float64, v.size());
  for (auto x : v) b.append_double(x);
  return b.finish();
}

column make_string_column(const std::vector<std::string>& v) {
  column_builder b(type_id::string, v.size());
  for (const auto& x : v) b.append_string(x);
  return b.finish();
}

column make_column(type_id type, const std::vector<value>& values) {
  column_builder b(type, values.size());
  for (const auto& x : values) b.append_value(x);
  return b.finish();
}

column make_string_list_column(const std::vector<std::vector<std::string>>& lists) {
  column_builder b(type_id::string_list, lists.size());
  for (const auto& items : lists) b.append_value(items);
  return b.finish();
}

namespace {

// take_rows of a column without nulls (not array<string>): straight into presized buffers, no per-row
// builder bookkeeping (filters and explodes spend their time here).
column gather_valid_rows(const column& c, const std::vector<std::uint32_t>& rows) {
  auto data = std::make_shared<column_data>();
  data->type = c.type();
  data->length = rows.size();
  auto gather = [&rows](const auto* from, auto& into) {
    into.resize(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) into[i] = from[rows[i]];
  };
  switch (c.type()) {
    case type_id::boolean: gather(c.bools(), data->bools); break;
    case type_id::int64:
    case type_id::timestamp: gather(c.ints(), data->ints); break;
    case type_id::float64: gather(c.doubles(), data->doubles); break;
    case type_id::window:
      gather(c.ints(), data->ints);
      gather(c.ends(), data->ends);
      break;
    case type_id::string: {
      // The output's offsets first, then each row's characters copied into place.
      const std::uint32_t* from = c.data()->offsets.data() + c.offset();
      data->offsets.resize(rows.size() + 1);
      std::uint64_t chars = 0;
      data->offsets[0] = 0;
      for (std::size_t i = 0; i < rows.size(); ++i) {
        chars += from[rows[i] + 1] - from[rows[i]];
        data->offsets[i + 1] = static_cast<std::uint32_t>(chars);
      }
      if (chars > std::numeric_limits<std::uint32_t>::max())
        throw error("string column exceeds 4 GiB of characters; use smaller batches");
      data->chars.resize(chars);
      const char* in = c.data()->chars.data();
      char* out = data->chars.data();
      for (std::size_t i = 0; i < rows.size(); ++i)
        std::memcpy(out + data->offsets[i], in + from[rows[i]], data->offsets[i + 1] - data->offsets[i]);
      break;
    }
    case type_id::string_list: throw error("gather_valid_rows: array<string> takes the builder's path");
  }
  return column(std::move(data));
}

}  // namespace

column take_rows(const column& c, const std::vector<std::uint32_t>& rows) {
  const std::size_t n = c.size();
  // The largest row first (a branch-free pass), the offending row only when there is one.
  if (!rows.empty() && *std::max_element(rows.begin(), rows.end()) >= n) {
    const auto r = *std::find_if(rows.begin(), rows.end(), [n](std::uint32_t row) { return row >= n; });
    throw error("take_rows: row " + std::to_string(r) + " out of range for a column of " + std::to_string(n) + " rows");
  }
  if (!c.has_nulls() && c.type() != type_id::string_list) return gather_valid_rows(c, rows);
  column_builder out(c.type(), rows.size());
  const bool check_nulls = c.has_nulls();
  // One type dispatch per column, not per row.
  auto each = [&](auto append_one) {
    for (auto r : rows) {
      if (check_nulls && c.is_null(r)) {
        out.append_null();
      } else {
        append_one(r);
      }
    }
  };
  switch (c.type()) {
    case type_id::boolean: each([&](std::size_t r) { out.append_bool(c.bools()[r] != 0); }); break;
    case type_id::int64: each([&](std::size_t r) { out.append_int(c.ints()[r]); }); break;
    case type_id::float64: each([&](std::size_t r) { out.append_double(c.doubles()[r]); }); break;
    case type_id::string: each([&](std::size_t r) { out.append_string(c.str(r)); }); break;
    case type_id::timestamp: each([&](std::size_t r) { out.append_timestamp(timestamp{c.ints()[r]}); }); break;
    case type_id::window: each([&](std::size_t r) { out.append_window(c.window(r)); }); break;
    case type_id::string_list: each([&](std::size_t r) { out.append_from(c, r); }); break;
  }
  return out.finish();
}

}  // namespace flow
