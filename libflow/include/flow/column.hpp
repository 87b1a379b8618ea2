// Immutable, typed, nullable columns shared by reference, and the builder that makes them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flow/types.hpp"

namespace flow {

// The buffers behind a column. Which vectors are used depends on the type:
//   boolean: bools; int64/timestamp: ints; float64: doubles; string: offsets (n+1) + chars;
//   window: ints (start) + ends (end); string_list: the element strings of all rows in offsets (one more
//   than the elements) + chars, and list_offsets (n+1): row i holds elements [list_offsets[i],
//   list_offsets[i + 1]) (empty for null rows). validity is a bitmap (bit set = valid), empty when nothing is null.
struct column_data {
  type_id type = type_id::int64;
  std::size_t length = 0;
  std::vector<std::uint64_t> validity;
  std::vector<std::uint8_t> bools;
  std::vector<std::int64_t> ints;
  std::vector<std::int64_t> ends;
  std::vector<double> doubles;
  std::vector<std::uint32_t> offsets;
  std::string chars;
  std::size_t null_count = 0;
  std::vector<std::uint32_t> list_offsets;
};

// A zero-copy view [offset, offset + length) of shared column_data.
class column {
 public:
  column() = default;
  column(std::shared_ptr<const column_data> data, std::size_t offset, std::size_t length)
      : data_(std::move(data)), offset_(offset), length_(length) {}
  explicit column(std::shared_ptr<const column_data> data)
      : offset_(0), length_(data ? data->length : 0) {
    data_ = std::move(data);
  }

  type_id type() const { return data_->type; }
  std::size_t size() const { return length_; }
  bool has_nulls() const { return data_->null_count != 0; }
  bool valid(std::size_t i) const {
    if (data_->validity.empty()) return true;
    std::size_t j = offset_ + i;
    return (data_->validity[j >> 6] >> (j & 63)) & 1u;
  }
  bool is_null(std::size_t i) const { return !valid(i); }

  const std::uint8_t* bools() const { return data_->bools.data() + offset_; }
  const std::int64_t* ints() const { return data_->ints.data() + offset_; }
  const std::int64_t* ends() const { return data_->ends.data() + offset_; }
  const double* doubles() const { return data_->doubles.data() + offset_; }
  std::string_view str(std::size_t i) const {
    const auto* off = data_->offsets.data() + offset_;
    return std::string_view(data_->chars).substr(off[i], off[i + 1] - off[i]);
  }
  window_value window(std::size_t i) const {
    return {timestamp{ints()[i]}, timestamp{ends()[i]}};
  }
  // string_list: the number of elements of row i (0 for a null row) and its element j.
  std::size_t list_size(std::size_t i) const {
    const auto* lists = data_->list_offsets.data() + offset_;
    return lists[i + 1] - lists[i];
  }
  std::string_view list_item(std::size_t i, std::size_t j) const {
    return element(data_->list_offsets[offset_ + i] + j);
  }
  // string_list: element e of the whole column_data (rows' elements are contiguous, in row order).
  std::string_view element(std::size_t e) const {
    const auto* off = data_->offsets.data();
    return std::string_view(data_->chars).substr(off[e], off[e + 1] - off[e]);
  }

  value at(std::size_t i) const;
  column slice(std::size_t offset, std::size_t length) const;
  const std::shared_ptr<const column_data>& data() const { return data_; }
  std::size_t offset() const { return offset_; }
  // Bytes the visible rows occupy (approximately, for size limits and progress figures).
  std::size_t byte_size() const;

 private:
  std::shared_ptr<const column_data> data_;
  std::size_t offset_ = 0;
  std::size_t length_ = 0;
};

// Appends values of one type; finish() hands the buffers to an immutable column.
class column_builder {
 public:
  explicit column_builder(type_id type, std::size_t expected_rows = 0);

  type_id type() const { return data_->type; }
  std::size_t size() const { return data_->length; }

  void append_null();
  void append_bool(bool v) { data_->bools.push_back(v ? 1 : 0); mark_valid(); }
  void append_int(std::int64_t v) { data_->ints.push_back(v); mark_valid(); }
  void append_double(double v) { data_->doubles.push_back(v); mark_valid(); }
  void append_timestamp(timestamp t) { data_->ints.push_back(t.micros); mark_valid(); }
  void append_window(window_value w) {
    data_->ints.push_back(w.start.micros);
    data_->ends.push_back(w.end.micros);
    mark_valid();
  }
  void append_string(std::string_view s);
  // string_list: begin_list(), append_list_item() per element, end_list() appends one row.
  void begin_list();
  void append_list_item(std::string_view item);
  void end_list();
  void append_list(std::span<const std::string_view> items);
  // Appends v, converting between numeric types; throws flow::error on a type mismatch.
  void append_value(const value& v);
  // Appends row i of c (same type).
  void append_from(const column& c, std::size_t i);

  column finish();

 private:
  void mark_valid() {
    ++data_->length;
    if (!data_->validity.empty()) set_validity_bit(data_->length - 1, true);
  }
  void set_validity_bit(std::size_t i, bool v);
  void reset_buffers();
  void expect_list_type(const char* operation) const;
  std::shared_ptr<column_data> data_;
  bool list_open_ = false;
};

// Convenience constructors (tests, literals, small results).
column make_int_column(const std::vector<std::int64_t>& v);
column make_double_column(const std::vector<double>& v);
column make_string_column(const std::vector<std::string>& v);
column make_column(type_id type, const std::vector<value>& values);
column make_string_list_column(const std::vector<std::vector<std::string>>& lists);

// The rows of parts, one after the other, as one column; all parts have type `type`. Whole buffers
// are copied at a time (one copy of the characters for strings), not row by row.
column concat_columns(type_id type, const std::vector<column>& parts);

// rows nulls of this type, made whole (no append per row).
column null_column(type_id type, std::size_t rows);

// Rows rows[0], rows[1], ... of c as a new column (any type; an explode repeats rows this way).
column take_rows(const column& c, const std::vector<std::uint32_t>& rows);

}  // namespace flow
