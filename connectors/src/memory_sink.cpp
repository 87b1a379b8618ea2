// Spark's memory sink: each committed epoch lands in a memory catalog table, per the output mode.
#include "flow/connectors/memory.hpp"

#include <optional>
#include <string_view>
#include <unordered_map>

#include "flow/keys.hpp"

namespace flow::connectors {

namespace {

// The key of each row of b as bytes, in the encoding the aggregation groups by (flow/keys.hpp): keys
// that are equal for Spark (-0.0 and 0.0, NaNs of any bit pattern, nulls) encode equally.
std::vector<std::string> row_keys(const batch& b, const std::vector<std::size_t>& key_indexes) {
  std::vector<column> key_columns;
  for (std::size_t k : key_indexes) key_columns.push_back(b.col(k));
  const encoded_keys encoded = encode_keys(key_columns, b.num_rows());
  std::vector<std::string> keys;
  keys.reserve(b.num_rows());
  for (std::size_t r = 0; r < b.num_rows(); ++r) keys.emplace_back(encoded.key(r));
  return keys;
}

// Keeps rows where keep[i] != 0, sharing the batch when every row stays.
void add_kept(std::vector<batch>& out, const batch& b, const std::vector<std::uint8_t>& keep) {
  std::size_t kept = 0;
  for (auto k : keep) kept += k != 0;
  if (kept == b.num_rows()) {
    out.push_back(b);
  } else if (kept > 0) {
    out.push_back(filter_rows(b, keep));
  }
}

class memory_sink final : public sink_writer {
 public:
  memory_sink(std::shared_ptr<memory_catalog> catalog, std::string table_name)
      : catalog_(std::move(catalog)), table_(std::move(table_name)) {
    if (!catalog_) throw error("memory sink: no catalog given for table '" + table_ + "'");
    if (table_.empty()) throw error("memory sink: the table needs a name; set the query name (queryName)");
  }

  std::string description() const override { return "MemorySink[" + table_ + "]"; }

  void open(const schema_ptr& input, output_mode mode, const std::vector<std::string>& key_columns) override {
    schema_ = input;
    mode_ = mode;
    key_indexes_.clear();
    for (const auto& name : key_columns) key_indexes_.push_back(input->index_of(name));
    current_.clear();
    catalog_->put_table(table_, schema_, {});
  }

  void write(std::int64_t epoch, const batch& rows) override {
    if (!schema_) throw error("memory sink '" + table_ + "': write before open");
    if (rows.num_rows() == 0) {
      pending_[epoch];
      return;
    }
    if (rows.schema() == *schema_) {
      pending_[epoch].push_back(rows);
      return;
    }
    bool same_types = rows.num_columns() == schema_->size();
    for (std::size_t c = 0; same_types && c < rows.num_columns(); ++c) {
      same_types = rows.col(c).type() == (*schema_)[c].type;
    }
    if (!same_types) {
      throw error("memory sink '" + table_ + "': epoch " + std::to_string(epoch) + " has rows of schema (" +
                  rows.schema().to_string() + "), the query declared (" + schema_->to_string() + ")");
    }
    pending_[epoch].push_back(batch(schema_, rows.columns()));
  }

  void commit(std::int64_t epoch) override {
    auto node = pending_.extract(epoch);
    if (last_committed_ && epoch <= *last_committed_) return;  // a replayed epoch is already in the table
    std::vector<batch> rows = node.empty() ? std::vector<batch>{} : std::move(node.mapped());
    std::int64_t epoch_rows = 0;
    for (const auto& b : rows) epoch_rows += static_cast<std::int64_t>(b.num_rows());
    switch (mode_) {
      case output_mode::complete:
        catalog_->put_table(table_, schema_, std::move(rows));
        rows_in_table_ = epoch_rows;
        break;
      case output_mode::append:
        catalog_->append_to_table(table_, schema_, std::move(rows));
        rows_in_table_ += epoch_rows;
        break;
      case output_mode::update:
        if (key_indexes_.empty()) {
          catalog_->append_to_table(table_, schema_, std::move(rows));
          rows_in_table_ += epoch_rows;
        } else {
          current_ = upsert(current_, rows);
          rows_in_table_ = 0;
          for (const auto& b : current_) rows_in_table_ += static_cast<std::int64_t>(b.num_rows());
          catalog_->put_table(table_, schema_, current_);
        }
        break;
    }
    last_committed_ = epoch;
  }

  void abort(std::int64_t epoch) override { pending_.erase(epoch); }

  connector_metrics metrics() const override { return {{"numRowsInTable", rows_in_table_}}; }

 private:
  // Rows of `changes` replace the rows with the same keys in `table` (the last change per key wins).
  std::vector<batch> upsert(const std::vector<batch>& table, const std::vector<batch>& changes) const {
    std::vector<std::vector<std::string>> change_keys;
    std::unordered_map<std::string_view, std::pair<std::size_t, std::size_t>> latest;
    for (std::size_t b = 0; b < changes.size(); ++b) {
      change_keys.push_back(row_keys(changes[b], key_indexes_));
      for (std::size_t r = 0; r < changes[b].num_rows(); ++r) latest[change_keys[b][r]] = {b, r};
    }
    std::vector<batch> result;
    for (const auto& b : table) {
      const auto keys = row_keys(b, key_indexes_);
      std::vector<std::uint8_t> keep(b.num_rows());
      for (std::size_t r = 0; r < b.num_rows(); ++r) keep[r] = !latest.contains(keys[r]);
      add_kept(result, b, keep);
    }
    for (std::size_t b = 0; b < changes.size(); ++b) {
      std::vector<std::uint8_t> keep(changes[b].num_rows());
      for (std::size_t r = 0; r < keep.size(); ++r) keep[r] = latest.at(change_keys[b][r]) == std::pair{b, r};
      add_kept(result, changes[b], keep);
    }
    return result;
  }

  std::shared_ptr<memory_catalog> catalog_;
  std::string table_;
  schema_ptr schema_;
  output_mode mode_ = output_mode::append;
  std::vector<std::size_t> key_indexes_;
  std::map<std::int64_t, std::vector<batch>> pending_;
  std::optional<std::int64_t> last_committed_;
  std::vector<batch> current_;  // update mode: the table as this sink built it
  std::int64_t rows_in_table_ = 0;
};

}  // namespace

std::unique_ptr<sink_writer> make_memory_sink(std::shared_ptr<memory_catalog> catalog, std::string table_name) {
  return std::make_unique<memory_sink>(std::move(catalog), std::move(table_name));
}

}  // namespace flow::connectors
