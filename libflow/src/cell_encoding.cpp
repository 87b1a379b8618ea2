// Rows of state columns as stored values (cell_encoding.hpp), and back.
#include "cell_encoding.hpp"

#include <cstring>

namespace flow::detail {

// Per column one cell in the layout of encoded keys (cell_encoding.hpp), floats exact: a sum per key takes
// 9 bytes.
void append_cells(const batch& rows, std::size_t first_column, std::size_t row, std::string& out) {
  for (std::size_t c = first_column; c < rows.num_columns(); ++c)
    append_cell(out, rows.col(c), row, float_bits::exact);
}

batch decode_cells(const schema_ptr& saved, std::span<const std::string> values) {
  std::vector<column_builder> columns;
  columns.reserve(saved->size());
  for (const field& f : saved->fields()) columns.emplace_back(f.type);
  for (const std::string& encoded : values) {
    std::size_t at = 0;
    auto take = [&](std::size_t n) {
      if (encoded.size() - at < n)
        throw error("state store: a stored value of " + std::to_string(encoded.size()) +
                    " bytes is truncated; the store was written for other state columns (" + saved->to_string() + ")");
      const char* p = encoded.data() + at;
      at += n;
      return p;
    };
    auto take_int = [&] {
      std::int64_t v;
      std::memcpy(&v, take(8), 8);
      return v;
    };
    auto take_text = [&] {
      std::uint32_t length;
      std::memcpy(&length, take(4), 4);
      return std::string_view(take(length), length);
    };
    for (column_builder& c : columns) {
      if (*take(1) == '\0') {
        c.append_null();
        continue;
      }
      switch (c.type()) {
        case type_id::boolean: c.append_bool(*take(1) != '\0'); break;
        case type_id::int64: c.append_int(take_int()); break;
        case type_id::timestamp: c.append_timestamp(timestamp{take_int()}); break;
        case type_id::float64: {
          double d;
          std::memcpy(&d, take(8), 8);
          c.append_double(d);
          break;
        }
        case type_id::window: {
          const std::int64_t start = take_int();
          c.append_window(window_value{timestamp{start}, timestamp{take_int()}});
          break;
        }
        case type_id::string: c.append_string(take_text()); break;
        case type_id::string_list: {
          std::uint32_t count;
          std::memcpy(&count, take(4), 4);
          c.begin_list();
          for (std::uint32_t j = 0; j < count; ++j) c.append_list_item(take_text());
          c.end_list();
          break;
        }
      }
    }
    if (at != encoded.size())
      throw error("state store: a stored value has " + std::to_string(encoded.size() - at) +
                  " bytes more than the state columns (" + saved->to_string() + ") take; the store was written for "
                  "other state columns");
  }
  std::vector<column> finished;
  finished.reserve(columns.size());
  for (column_builder& c : columns) finished.push_back(c.finish());
  return batch(saved, std::move(finished));
}

}  // namespace flow::detail
