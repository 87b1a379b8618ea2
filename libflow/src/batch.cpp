#include "flow/batch.hpp"

#include <cmath>
#include <cstring>

#include "flow/keys.hpp"

namespace flow {

namespace {

bool same_double(double a, double b) {
  return a == b ? std::signbit(a) == std::signbit(b) : (std::isnan(a) && std::isnan(b));
}

bool columns_equal(const column& a, const column& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  const std::size_t n = a.size();
  for (std::size_t i = 0; i < n; ++i) {
    bool a_valid = a.valid(i);
    if (a_valid != b.valid(i)) return false;
    if (!a_valid) continue;
    switch (a.type()) {
      case type_id::boolean:
        if ((a.bools()[i] != 0) != (b.bools()[i] != 0)) return false;
        break;
      case type_id::int64:
      case type_id::timestamp:
        if (a.ints()[i] != b.ints()[i]) return false;
        break;
      case type_id::float64:
        if (!same_double(a.doubles()[i], b.doubles()[i])) return false;
        break;
      case type_id::string:
        if (a.str(i) != b.str(i)) return false;
        break;
      case type_id::window:
        if (a.ints()[i] != b.ints()[i] || a.ends()[i] != b.ends()[i]) return false;
        break;
      case type_id::string_list:
        if (a.list_size(i) != b.list_size(i)) return false;
        for (std::size_t j = 0; j < a.list_size(i); ++j) {
          if (a.list_item(i, j) != b.list_item(i, j)) return false;
        }
        break;
    }
  }
  return true;
}

}  // namespace

batch::batch(schema_ptr schema, std::vector<column> columns) {
  if (!schema) throw error("batch: the schema is null; pass make_schema({...})");
  if (columns.size() != schema->size()) {
    throw error("batch: " + std::to_string(columns.size()) + " columns for a schema of " +
                std::to_string(schema->size()) + " fields (" + schema->to_string() +
                "); pass one column per field");
  }
  std::size_t rows = columns.empty() ? 0 : columns.front().size();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const field& f = (*schema)[i];
    if (!columns[i].data()) {
      throw error("batch: column '" + f.name + "' has no data; build it with column_builder");
    }
    if (columns[i].type() != f.type) {
      throw error("batch: column '" + f.name + "' is " + std::string(type_name(columns[i].type())) +
                  " but the schema says " + std::string(type_name(f.type)));
    }
    if (columns[i].size() != rows) {
      throw error("batch: column '" + f.name + "' has " + std::to_string(columns[i].size()) +
                  " rows but column '" + (*schema)[0].name + "' has " + std::to_string(rows) +
                  "; all columns must have the same length");
    }
  }
  body_ = std::make_shared<const body>(body{std::move(schema), std::move(columns), rows, {}, {}});
}

batch batch::selected(schema_ptr schema, std::vector<column> base_columns,
                      std::shared_ptr<const std::vector<std::uint32_t>> selection) {
  batch base(std::move(schema), std::move(base_columns));
  if (!selection) throw error("batch::selected: the selection is null; pass the selected rows' indexes");
  const std::size_t base_rows = base.num_rows();
  const std::vector<std::uint32_t>& selected_rows = *selection;
  // Checked without a branch per entry (the loop vectorizes); the offending entry is looked for only when there is one.
  bool ascending = selected_rows.empty() || selected_rows.back() < base_rows;
  for (std::size_t i = 1; i < selected_rows.size(); ++i) ascending &= selected_rows[i] > selected_rows[i - 1];
  for (std::size_t i = 0; !ascending && i < selected_rows.size(); ++i) {
    if (selected_rows[i] >= base_rows || (i > 0 && selected_rows[i] <= selected_rows[i - 1])) {
      throw error("batch::selected: entry " + std::to_string(i) + " of the selection (" + std::to_string(selected_rows[i]) +
                  ") is not an ascending row index below the columns' " + std::to_string(base_rows) + " rows");
    }
  }
  batch result;
  const std::size_t rows = selection->size();
  const std::size_t n = base.num_columns();
  result.body_ = std::make_shared<const body>(body{base.body_->schema, base.body_->columns, rows, std::move(selection),
                                                   std::make_shared<selected_copies>(n)});
  return result;
}

const column& batch::selected_col(std::size_t i) const {
  selected_copies& copies = *body_->copies;
  std::call_once(copies.once[i], [&] { copies.columns[i] = take_rows(body_->columns[i], *body_->selection); });
  return copies.columns[i];
}

const std::vector<column>& batch::columns() const {
  if (!body_->selection) return body_->columns;
  std::call_once(body_->copies->all, [&] {
    for (std::size_t i = 0; i < num_columns(); ++i) selected_col(i);
  });
  return body_->copies->columns;
}

batch batch::with_attached_keys(std::shared_ptr<const encoded_key_columns> keys) const {
  if (keys && keys->keys) {
    const std::size_t key_rows = keys->rows ? keys->rows->size() : keys->keys->rows;
    if (key_rows != num_rows())
      throw error("batch::with_attached_keys: " + std::to_string(key_rows) + " keys for a batch of " +
                  std::to_string(num_rows()) + " rows");
  }
  batch result;
  result.body_ = std::make_shared<const body>(body{body_->schema, body_->columns, body_->rows, body_->selection,
                                                   body_->copies, std::move(keys)});
  return result;
}

batch batch::empty(schema_ptr schema) {
  if (!schema) throw error("batch::empty: the schema is null");
  std::vector<column> columns;
  columns.reserve(schema->size());
  for (const auto& f : schema->fields()) columns.push_back(column_builder(f.type).finish());
  return batch(std::move(schema), std::move(columns));
}

batch batch::slice(std::size_t offset, std::size_t length) const {
  if (offset > num_rows() || length > num_rows() - offset) {
    throw error("batch slice [" + std::to_string(offset) + ", " + std::to_string(offset) + " + " +
                std::to_string(length) + ") out of range for a batch of " + std::to_string(num_rows()) +
                " rows");
  }
  if (body_->selection) {
    const auto first = body_->selection->begin() + static_cast<std::ptrdiff_t>(offset);
    return selected(body_->schema, body_->columns,
                    std::make_shared<const std::vector<std::uint32_t>>(first, first + static_cast<std::ptrdiff_t>(length)));
  }
  std::vector<column> columns;
  columns.reserve(num_columns());
  for (const auto& c : body_->columns) columns.push_back(c.slice(offset, length));
  batch result;
  result.body_ = std::make_shared<const body>(body{body_->schema, std::move(columns), length, {}, {}});
  return result;
}

std::size_t batch::byte_size() const {
  std::size_t total = 0;
  for (const auto& c : body_->columns) total += c.byte_size();
  if (!body_->selection || body_->columns.empty()) return total;
  // The selected rows' share of the base columns' bytes (an estimate, as for any column).
  const std::size_t base_rows = body_->columns.front().size();
  return base_rows == 0 ? 0 : static_cast<std::size_t>(static_cast<double>(total) * static_cast<double>(num_rows()) / static_cast<double>(base_rows));
}

bool operator==(const batch& a, const batch& b) {
  if (a.body_ == b.body_) return true;
  if (a.schema() != b.schema() || a.num_rows() != b.num_rows()) return false;
  for (std::size_t i = 0; i < a.num_columns(); ++i) {
    if (!columns_equal(a.col(i), b.col(i))) return false;
  }
  return true;
}

batch concat(const std::vector<batch>& batches) {
  if (batches.empty()) return batch();
  if (batches.size() == 1) return batches.front();
  const schema_ptr& schema = batches.front().schema_ref();
  for (const auto& b : batches) {
    if (b.schema() != *schema) {
      throw error("concat: schemas differ (" + schema->to_string() + " vs " + b.schema().to_string() +
                  "); only batches of one schema can be concatenated");
    }
  }
  std::vector<column> columns;
  columns.reserve(schema->size());
  std::vector<column> parts(batches.size());
  for (std::size_t c = 0; c < schema->size(); ++c) {
    for (std::size_t i = 0; i < batches.size(); ++i) parts[i] = batches[i].col(c);
    columns.push_back(concat_columns((*schema)[c].type, parts));
  }
  return batch(schema, std::move(columns));
}

std::vector<std::uint32_t> kept_rows(const std::uint8_t* keep, std::size_t n) {
  // Without a branch per row: each row's index is written, and the next one overwrites it unless it is kept.
  std::vector<std::uint32_t> rows(n + 1);
  std::size_t kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    rows[kept] = static_cast<std::uint32_t>(i);
    kept += keep[i] != 0;
  }
  rows.resize(kept);
  return rows;
}

batch filter_rows(const batch& b, const std::vector<std::uint8_t>& keep) {
  if (keep.size() != b.num_rows()) {
    throw error("filter_rows: the selection has " + std::to_string(keep.size()) + " entries for " +
                std::to_string(b.num_rows()) + " rows");
  }
  const std::vector<std::uint32_t> rows = kept_rows(keep.data(), keep.size());
  if (rows.size() == b.num_rows()) return b;
  std::vector<column> columns;
  columns.reserve(b.num_columns());
  for (const auto& c : b.columns()) columns.push_back(take_rows(c, rows));
  return batch(b.schema_ref(), std::move(columns));
}

batch make_batch(schema_ptr schema, const std::vector<std::vector<value>>& rows) {
  if (!schema) throw error("make_batch: the schema is null");
  std::vector<column_builder> builders;
  builders.reserve(schema->size());
  for (const auto& f : schema->fields()) builders.emplace_back(f.type, rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != schema->size()) {
      throw error("make_batch: row " + std::to_string(r) + " has " + std::to_string(rows[r].size()) +
                  " values for " + std::to_string(schema->size()) + " columns (" + schema->to_string() + ")");
    }
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      try {
        builders[c].append_value(rows[r][c]);
      } catch (const error& e) {
        throw error("make_batch: row " + std::to_string(r) + ", column '" + (*schema)[c].name + "': " +
                    e.what());
      }
    }
  }
  std::vector<column> columns;
  columns.reserve(builders.size());
  for (auto& b : builders) columns.push_back(b.finish());
  return batch(std::move(schema), std::move(columns));
}

}  // namespace flow
