// Spark's memory sink: result tables kept in a session's catalog, queryable with SQL (SQLite).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flow/batch.hpp"
#include "flow/source_sink.hpp"

struct sqlite3;

namespace flow::connectors {

// Named in-memory tables, shared by a session and its queries' memory sinks. Thread-safe; a table is
// always replaced as a whole, so readers see either the previous or the next epoch, never half of one.
class memory_catalog {
 public:
  memory_catalog();
  ~memory_catalog();
  memory_catalog(const memory_catalog&) = delete;
  memory_catalog& operator=(const memory_catalog&) = delete;

  // Creates or replaces a table.
  void put_table(const std::string& name, schema_ptr schema, std::vector<batch> rows);
  // Appends batches to a table, creating it (with schema) when missing.
  void append_to_table(const std::string& name, schema_ptr schema, std::vector<batch> rows);
  void drop_table(const std::string& name);
  bool has_table(const std::string& name) const;

  // The table's current rows; throws flow::error naming the known tables when it does not exist.
  std::vector<batch> table(const std::string& name) const;
  schema_ptr table_schema(const std::string& name) const;
  // Counts the changes of a table (0 when missing).
  std::uint64_t table_version(const std::string& name) const;
  std::vector<std::string> list_tables() const;

  // Runs one read-only SQL statement (SQLite dialect; MySQL-style `backticks` quote names) over the tables.
  // SQL errors throw flow::error with SQLite's message and the query.
  batch sql(const std::string& query);

 private:
  struct table_entry {
    schema_ptr schema;
    std::vector<batch> rows;
    std::uint64_t version = 0;
  };
  table_entry& entry_for(const std::string& name, const schema_ptr& schema);  // caller holds tables_mutex_
  void sync_sql_tables();                                                     // caller holds sql_mutex_

  mutable std::mutex tables_mutex_;
  std::map<std::string, table_entry> tables_;
  std::uint64_t next_version_ = 1;

  std::mutex sql_mutex_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::uint64_t> loaded_versions_;  // what the SQLite copy of each table holds
};

// Spark's memory sink writing into catalog table table_name. Per output mode: complete replaces the table
// with each epoch's result, append appends, update upserts by the key columns (a row replaces the row with
// the same keys; without key columns update appends). An epoch becomes visible at commit, all at once;
// committing an epoch <= the last committed one does nothing (replay), abort drops the epoch.
std::unique_ptr<flow::sink_writer> make_memory_sink(std::shared_ptr<memory_catalog> catalog, std::string table_name);

}  // namespace flow::connectors

namespace flow {
using connectors::make_memory_sink;
using connectors::memory_catalog;
}  // namespace flow
