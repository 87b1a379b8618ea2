// The memory catalog's tables. The SQLite copy that sql() queries, opened by the constructor, is in
// memory_sql.cpp.
#include "flow/connectors/memory.hpp"

namespace flow::connectors {

memory_catalog::table_entry& memory_catalog::entry_for(const std::string& name, const schema_ptr& schema) {
  if (!schema) throw error("memory catalog: table '" + name + "' needs a schema");
  auto& entry = tables_[name];
  if (!entry.schema) entry.schema = schema;
  entry.version = next_version_++;
  return entry;
}

void memory_catalog::put_table(const std::string& name, schema_ptr schema, std::vector<batch> rows) {
  std::lock_guard lock(tables_mutex_);
  auto& entry = entry_for(name, schema);
  entry.schema = std::move(schema);
  entry.rows.swap(rows);
}

void memory_catalog::append_to_table(const std::string& name, schema_ptr schema, std::vector<batch> rows) {
  std::lock_guard lock(tables_mutex_);
  auto& entry = entry_for(name, schema);
  if (*entry.schema != *schema) {
    throw error("memory catalog: cannot append rows of schema (" + schema->to_string() + ") to table '" + name +
                "' of schema (" + entry.schema->to_string() + ")");
  }
  entry.rows.insert(entry.rows.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
}

void memory_catalog::drop_table(const std::string& name) {
  std::lock_guard lock(tables_mutex_);
  tables_.erase(name);
}

bool memory_catalog::has_table(const std::string& name) const {
  std::lock_guard lock(tables_mutex_);
  return tables_.contains(name);
}

std::vector<std::string> memory_catalog::list_tables() const {
  std::lock_guard lock(tables_mutex_);
  std::vector<std::string> names;
  for (const auto& [name, entry] : tables_) names.push_back(name);
  return names;
}

std::vector<batch> memory_catalog::table(const std::string& name) const {
  std::lock_guard lock(tables_mutex_);
  auto it = tables_.find(name);
  if (it == tables_.end()) {
    std::string known;
    for (const auto& [table_name, entry] : tables_) known += (known.empty() ? "" : ", ") + table_name;
    throw error("memory catalog: no table '" + name + "' (tables: " + (known.empty() ? "none" : known) +
                "); a memory sink creates it when its query starts");
  }
  return it->second.rows;
}

schema_ptr memory_catalog::table_schema(const std::string& name) const {
  std::lock_guard lock(tables_mutex_);
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.schema;
}

std::uint64_t memory_catalog::table_version(const std::string& name) const {
  std::lock_guard lock(tables_mutex_);
  auto it = tables_.find(name);
  return it == tables_.end() ? 0 : it->second.version;
}

}  // namespace flow::connectors
