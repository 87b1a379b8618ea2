// Rows of state columns as stored values (cell_encoding.hpp), and back.
#include "cell_encoding.hpp"


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
    cell_reader in(encoded, [&] {
      return error("state store: a stored value of " + std::to_string(encoded.size()) +
                   " bytes is truncated; the store was written for other state columns (" + saved->to_string() + ")");
    });
    for (column_builder& c : columns) {
      if (!in.valid()) {
        c.append_null();
        continue;
      }
      switch (c.type()) {
        case type_id::boolean: c.append_bool(in.boolean()); break;
        case type_id::int64: c.append_int(in.int64()); break;
        case type_id::timestamp: c.append_timestamp(timestamp{in.int64()}); break;
        case type_id::float64: c.append_double(in.float64()); break;
        case type_id::window: {
          const std::int64_t start = in.int64();
          c.append_window(window_value{timestamp{start}, timestamp{in.int64()}});
          break;
        }
        case type_id::string: c.append_string(in.text()); break;
        case type_id::string_list: {
          const std::uint32_t count = in.count();
          c.begin_list();
          for (std::uint32_t j = 0; j < count; ++j) c.append_list_item(in.text());
          c.end_list();
          break;
        }
      }
    }
    if (!in.at_end())
      throw error("state store: a stored value has " + std::to_string(in.left()) +
                  " bytes more than the state columns (" + saved->to_string() + ") take; the store was written for "
                  "other state columns");
  }
  std::vector<column> finished;
  finished.reserve(columns.size());
  for (column_builder& c : columns) finished.push_back(c.finish());
  return batch(saved, std::move(finished));
}

}  // namespace flow::detail
