// A columnar batch: a schema and one column per field, immutable once built, shared by reference.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flow/column.hpp"
#include "flow/schema.hpp"

namespace flow {

struct encoded_key_columns;  // flow/keys.hpp

class batch {
 public:
  batch() = default;  // an empty batch with an empty schema
  batch(schema_ptr schema, std::vector<column> columns);
  static batch empty(schema_ptr schema);
  // The rows `selection` (ascending row indexes of base_columns, all of one length) without copying them: what
  // a filter hands on. Every accessor sees only the selected rows (col() copies a column's selected rows on
  // its first call); an operator that reads selection() and base_col() itself copies nothing.
  static batch selected(schema_ptr schema, std::vector<column> base_columns,
                        std::shared_ptr<const std::vector<std::uint32_t>> selection);

  const schema_ptr& schema_ref() const { return body_->schema; }
  const flow::schema& schema() const { return *body_->schema; }
  std::size_t num_rows() const { return body_->rows; }
  std::size_t num_columns() const { return body_->columns.size(); }
  const column& col(std::size_t i) const { return body_->selection ? selected_col(i) : body_->columns[i]; }
  const column& col(std::string_view name) const { return col(schema().index_of(name)); }
  const std::vector<column>& columns() const;
  value at(std::size_t row, std::size_t column_index) const { return col(column_index).at(row); }
  // The selected rows' indexes into base_col(i), or null when the batch holds every row of its columns.
  const std::vector<std::uint32_t>* selection() const { return body_->selection.get(); }
  const std::shared_ptr<const std::vector<std::uint32_t>>& selection_ref() const { return body_->selection; }
  // Column i as stored: with a selection, all rows of it, which selection() indexes; else col(i).
  const column& base_col(std::size_t i) const { return body_->columns[i]; }

  // The keys a hash edge encoded for this batch (hash_partition), or null. Only the batch itself carries
  // them: a batch made from it (a slice, a selection, new columns) has none.
  const encoded_key_columns* attached_keys() const { return body_->keys.get(); }
  // This batch with the keys a hash edge encoded for it.
  batch with_attached_keys(std::shared_ptr<const encoded_key_columns> keys) const;

  // Zero-copy view of rows [offset, offset + length).
  batch slice(std::size_t offset, std::size_t length) const;
  std::size_t byte_size() const;
  bool valid() const { return static_cast<bool>(body_); }

  // Deep equality of schema and values (doubles compared exactly).
  friend bool operator==(const batch& a, const batch& b);

 private:
  // The selected rows of each column, copied once on first access (batches are shared between threads).
  struct selected_copies {
    explicit selected_copies(std::size_t n) : columns(n), once(new std::once_flag[n]) {}
    std::vector<column> columns;
    std::unique_ptr<std::once_flag[]> once;
    std::once_flag all;
  };
  struct body {
    schema_ptr schema;
    std::vector<column> columns;  // with a selection: its base columns
    std::size_t rows = 0;
    std::shared_ptr<const std::vector<std::uint32_t>> selection;
    std::shared_ptr<selected_copies> copies;  // with a selection
    std::shared_ptr<const encoded_key_columns> keys = {};
  };
  const column& selected_col(std::size_t i) const;
  std::shared_ptr<const body> body_ = std::make_shared<const body>(body{make_schema({}), {}, 0, {}, {}});
};

// Concatenates batches of the same schema into one (copies).
batch concat(const std::vector<batch>& batches);
// The indexes i < n where keep[i] != 0, ascending.
std::vector<std::uint32_t> kept_rows(const std::uint8_t* keep, std::size_t n);
// Rows of b where keep[i] != 0 (copies).
batch filter_rows(const batch& b, const std::vector<std::uint8_t>& keep);
// Builds a batch from rows of values (tests, SQL results).
batch make_batch(schema_ptr schema, const std::vector<std::vector<value>>& rows);

// Spark's show(): an ASCII table with a header; strings longer than 20 chars cut when truncate is true.
std::string format_table(const batch& b, std::size_t num_rows = 20, bool truncate = true);
std::string format_table(const std::vector<batch>& batches, std::size_t num_rows = 20, bool truncate = true);

// libflow's own binary encoding of a batch (little-endian, versioned). decode(encode(b)) == b, and
// encode(decode(bytes)) == bytes. decode throws flow::error on truncated or corrupt input.
std::vector<std::uint8_t> encode(const batch& b);
batch decode_batch(const std::uint8_t* data, std::size_t size);
inline batch decode_batch(const std::vector<std::uint8_t>& bytes) {
  return decode_batch(bytes.data(), bytes.size());
}

}  // namespace flow
