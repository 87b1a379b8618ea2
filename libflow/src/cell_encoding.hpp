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

inline void append_raw(std::string& out, const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }

inline void append_text_cell(std::string& out, std::string_view text) {
  const auto length = static_cast<std::uint32_t>(text.size());
  append_raw(out, &length, 4);
  out.append(text);
}

inline void append_cell(std::string& out, const column& c, std::size_t row, float_bits floats) {
  if (!c.valid(row)) {
    out.push_back('\0');
    return;
  }
  out.push_back('\1');
  switch (c.type()) {
    case type_id::boolean: out.push_back(static_cast<char>(c.bools()[row])); break;
    case type_id::int64:
    case type_id::timestamp: append_raw(out, &c.ints()[row], 8); break;
    case type_id::float64: {
      const double d = floats == float_bits::normalized ? normalized_key(c.doubles()[row]) : c.doubles()[row];
      const auto bits = std::bit_cast<std::uint64_t>(d);
      append_raw(out, &bits, 8);
      break;
    }
    case type_id::window:
      append_raw(out, &c.ints()[row], 8);
      append_raw(out, &c.ends()[row], 8);
      break;
    case type_id::string: append_text_cell(out, c.str(row)); break;
    case type_id::string_list: {
      const auto count = static_cast<std::uint32_t>(c.list_size(row));
      append_raw(out, &count, 4);
      for (std::uint32_t j = 0; j < count; ++j) append_text_cell(out, c.list_item(row, j));
      break;
    }
  }
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
