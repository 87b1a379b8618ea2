// The byte layout of one cell, shared by encoded keys (keys.cpp) and the values the keyed state keeps in a
// key-value store (keyed_state.cpp): a byte (0: null, 1: a value), then the value: a boolean as one byte, a
// 64-bit number as its 8 bytes, a window as two, a string as its 32-bit length and bytes, an array<string> as
// its 32-bit count and then each item as a string. A stored value (keyed_state.cpp, the aggregation's
// stored_aggregate_state) is the cells of a row's state columns one after the other.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "flow/batch.hpp"
#include "flow/column.hpp"
#include "flow/keys.hpp"

namespace flow::detail {

// Keys normalize floats (normalized_key: equal keys encode equally); stored values keep their bits.
enum class float_bits { exact, normalized };

// The bytes write_cell writes for row's cell of c.
inline std::size_t cell_size(const column& c, std::size_t row) {
  if (!c.valid(row)) return 1;
  switch (c.type()) {
    case type_id::boolean: return 2;
    case type_id::int64:
    case type_id::timestamp:
    case type_id::float64: return 9;
    case type_id::window: return 17;
    case type_id::string: return 5 + c.str(row).size();
    case type_id::string_list: {
      std::size_t size = 5;
      for (std::size_t j = 0; j < c.list_size(row); ++j) size += 4 + c.list_item(row, j).size();
      return size;
    }
  }
  return 1;
}

// Writes row's cell of c at p, which has cell_size(c, row) bytes; returns the end of the cell.
inline char* write_cell(char* p, const column& c, std::size_t row, float_bits floats) {
  const auto put = [&p](const void* value, std::size_t n) {
    if (n > 0) std::memcpy(p, value, n);
    p += n;
  };
  const auto put_text = [&put](std::string_view text) {
    const auto length = static_cast<std::uint32_t>(text.size());
    put(&length, 4);
    put(text.data(), text.size());
  };
  if (!c.valid(row)) {
    *p++ = '\0';
    return p;
  }
  *p++ = '\1';
  switch (c.type()) {
    case type_id::boolean: *p++ = static_cast<char>(c.bools()[row]); break;
    case type_id::int64:
    case type_id::timestamp: put(&c.ints()[row], 8); break;
    case type_id::float64: {
      const double d = floats == float_bits::normalized ? normalized_key(c.doubles()[row]) : c.doubles()[row];
      const auto bits = std::bit_cast<std::uint64_t>(d);
      put(&bits, 8);
      break;
    }
    case type_id::window:
      put(&c.ints()[row], 8);
      put(&c.ends()[row], 8);
      break;
    case type_id::string: put_text(c.str(row)); break;
    case type_id::string_list: {
      const auto count = static_cast<std::uint32_t>(c.list_size(row));
      put(&count, 4);
      for (std::uint32_t j = 0; j < count; ++j) put_text(c.list_item(row, j));
      break;
    }
  }
  return p;
}

inline void append_cell(std::string& out, const column& c, std::size_t row, float_bits floats) {
  const std::size_t at = out.size();
  out.resize(at + cell_size(c, row));
  write_cell(out.data() + at, c, row, floats);
}

// Reads cells back in the layout above. truncated() makes the flow::error to throw when the bytes end
// inside a cell; the caller checks at_end() after the last cell.
template <class Truncated>
class cell_reader {
 public:
  cell_reader(std::string_view bytes, Truncated truncated) : bytes_(bytes), truncated_(std::move(truncated)) {}

  bool valid() { return *take(1) != '\0'; }  // the cell's null byte
  bool boolean() { return *take(1) != '\0'; }
  std::int64_t int64() {
    std::int64_t v;
    std::memcpy(&v, take(8), 8);
    return v;
  }
  double float64() { return std::bit_cast<double>(int64()); }
  std::uint32_t count() {
    std::uint32_t n;
    std::memcpy(&n, take(4), 4);
    return n;
  }
  std::string_view text() {
    const std::uint32_t length = count();
    return std::string_view(take(length), length);
  }
  std::size_t left() const { return bytes_.size() - at_; }
  bool at_end() const { return at_ == bytes_.size(); }

 private:
  const char* take(std::size_t n) {
    if (left() < n) throw truncated_();
    const char* p = bytes_.data() + at_;
    at_ += n;
    return p;
  }

  std::string_view bytes_;
  std::size_t at_ = 0;
  Truncated truncated_;
};

// Appends the cells of columns first_column.. of one row (floats exact) to out.
void append_cells(const batch& rows, std::size_t first_column, std::size_t row, std::string& out);
// The rows append_cells wrote, as a batch of schema columns (flow::error when a value does not fit them).
batch decode_cells(const schema_ptr& columns, std::span<const std::string> values);

}  // namespace flow::detail
