// The memory catalog's SQLite mirror: sql() loads the tables that changed into an in-memory SQLite
// database, runs the query there and maps the result columns back to flow types.
#include "flow/connectors/memory.hpp"

#include <sqlite3.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

#include "json_string_array.hpp"

namespace flow::connectors {

namespace {

// Declared SQLite types. They map result columns back to flow types through sqlite3_column_decltype.
// A window column is stored as two INTEGER columns of microseconds, "<name>" (WINDOW_START) and
// "<name>.__end" (WINDOW_END); SELECT * returns them side by side and they come back as one window column.
constexpr const char* window_start_decl = "WINDOW_START";
constexpr const char* window_end_decl = "WINDOW_END";
constexpr const char* window_end_suffix = ".__end";
// An array<string> column is TEXT holding a JSON array of strings; the declared type (TEXT affinity) maps
// it back to array<string> when a query returns the column itself.
constexpr const char* string_list_decl = "ARRAY_TEXT";
// SQLite stores a NaN double as NULL; NaN goes in as this BLOB instead (no flow type is stored as a BLOB),
// which SQLite compares equal to itself and above every number, as Spark orders NaN, and reads back as NaN.
constexpr std::string_view nan_blob = "NaN";

const char* declared_type(type_id t) {
  switch (t) {
    case type_id::boolean: return "BOOLEAN";
    case type_id::int64: return "BIGINT";
    case type_id::float64: return "DOUBLE";
    case type_id::string: return "TEXT";
    case type_id::timestamp: return "TIMESTAMP";  // INTEGER microseconds since the epoch, UTC
    case type_id::window: return window_start_decl;
    case type_id::string_list: return string_list_decl;
  }
  return "TEXT";
}

std::optional<type_id> type_from_declared(std::string decl) {
  for (char& c : decl) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (decl == "TIMESTAMP" || decl == window_start_decl || decl == window_end_decl) return type_id::timestamp;
  if (decl == string_list_decl) return type_id::string_list;
  if (decl.find("BOOL") != std::string::npos) return type_id::boolean;
  if (decl.find("INT") != std::string::npos) return type_id::int64;
  if (decl.find("DOUB") != std::string::npos || decl.find("REAL") != std::string::npos ||
      decl.find("FLOA") != std::string::npos) {
    return type_id::float64;
  }
  if (decl.find("TEXT") != std::string::npos || decl.find("CHAR") != std::string::npos ||
      decl.find("CLOB") != std::string::npos) {
    return type_id::string;
  }
  return std::nullopt;
}

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    out.push_back(c);
    if (c == '"') out.push_back('"');
  }
  out.push_back('"');
  return out;
}

class statement {
 public:
  statement(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      throw error("memory catalog: SQLite rejected '" + sql + "': " + sqlite3_errmsg(db));
    }
  }
  explicit statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

void execute(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    throw error("memory catalog: SQLite failed on '" + sql + "': " + text);
  }
}

void bind_row(sqlite3_stmt* stmt, const batch& b, std::size_t row) {
  int parameter = 1;
  for (std::size_t c = 0; c < b.num_columns(); ++c) {
    const column& col = b.col(c);
    bool null = col.is_null(row);
    switch (col.type()) {
      case type_id::boolean:
        null ? sqlite3_bind_null(stmt, parameter) : sqlite3_bind_int(stmt, parameter, col.bools()[row] ? 1 : 0);
        break;
      case type_id::int64:
      case type_id::timestamp:
        null ? sqlite3_bind_null(stmt, parameter) : sqlite3_bind_int64(stmt, parameter, col.ints()[row]);
        break;
      case type_id::float64:
        if (null) sqlite3_bind_null(stmt, parameter);
        else if (std::isnan(col.doubles()[row]))
          sqlite3_bind_blob(stmt, parameter, nan_blob.data(), static_cast<int>(nan_blob.size()), SQLITE_STATIC);
        else sqlite3_bind_double(stmt, parameter, col.doubles()[row]);
        break;
      case type_id::string: {
        if (null) {
          sqlite3_bind_null(stmt, parameter);
        } else {
          std::string_view s = col.str(row);
          sqlite3_bind_text64(stmt, parameter, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
        }
        break;
      }
      case type_id::window:
        if (null) {
          sqlite3_bind_null(stmt, parameter);
          sqlite3_bind_null(stmt, parameter + 1);
        } else {
          sqlite3_bind_int64(stmt, parameter, col.ints()[row]);
          sqlite3_bind_int64(stmt, parameter + 1, col.ends()[row]);
        }
        ++parameter;
        break;
      case type_id::string_list:
        if (null) {
          sqlite3_bind_null(stmt, parameter);
        } else {
          std::string json;
          append_json_string_array(json, col, row);
          sqlite3_bind_text64(stmt, parameter, json.data(), json.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
        }
        break;
    }
    ++parameter;
  }
}

void load_table(sqlite3* db, const std::string& name, const schema& s, const std::vector<batch>& rows) {
  std::string columns;
  std::size_t parameters = 0;
  for (const auto& f : s.fields()) {
    if (!columns.empty()) columns += ", ";
    columns += quote_identifier(f.name) + " " + declared_type(f.type);
    ++parameters;
    if (f.type == type_id::window) {
      columns += ", " + quote_identifier(f.name + window_end_suffix) + " " + window_end_decl;
      ++parameters;
    }
  }
  execute(db, "BEGIN");
  try {
    execute(db, "DROP TABLE IF EXISTS " + quote_identifier(name));
    execute(db, "CREATE TABLE " + quote_identifier(name) + " (" + columns + ")");
    std::string placeholders;
    for (std::size_t i = 0; i < parameters; ++i) placeholders += i ? ", ?" : "?";
    if (parameters > 0) {
      statement insert(db, "INSERT INTO " + quote_identifier(name) + " VALUES (" + placeholders + ")");
      for (const auto& b : rows) {
        for (std::size_t r = 0; r < b.num_rows(); ++r) {
          bind_row(insert.get(), b, r);
          if (sqlite3_step(insert.get()) != SQLITE_DONE) {
            throw error("memory catalog: loading table '" + name + "' into SQLite failed: " + sqlite3_errmsg(db));
          }
          sqlite3_reset(insert.get());
        }
      }
    }
    execute(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

value read_cell(sqlite3_stmt* stmt, int c) {
  switch (sqlite3_column_type(stmt, c)) {
    case SQLITE_INTEGER: return value{static_cast<std::int64_t>(sqlite3_column_int64(stmt, c))};
    case SQLITE_FLOAT: return value{sqlite3_column_double(stmt, c)};
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, c));
      std::string_view bytes(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, c)));
      if (sqlite3_column_type(stmt, c) == SQLITE_BLOB && bytes == nan_blob)
        return value{std::numeric_limits<double>::quiet_NaN()};
      return value{std::string(bytes)};
    }
    default: return value{null_value{}};
  }
}

// v as type t, or nullopt when it does not fit (the column then falls back to the values' own type).
std::optional<value> convert(const value& v, type_id t) {
  if (is_null(v)) return v;
  const auto* i = std::get_if<std::int64_t>(&v);
  const auto* d = std::get_if<double>(&v);
  switch (t) {
    case type_id::boolean: if (i) return value{*i != 0}; break;
    case type_id::int64: if (i) return v; break;
    case type_id::timestamp: if (i) return value{timestamp{*i}}; break;
    case type_id::float64:
      if (d) return v;
      if (i) return value{static_cast<double>(*i)};
      break;
    case type_id::string:
      if (std::holds_alternative<std::string>(v)) return v;
      return value{to_string(v)};
    case type_id::window: break;
    case type_id::string_list:
      if (const auto* text = std::get_if<std::string>(&v)) {
        if (auto items = parse_json_string_array(*text)) return value{std::move(*items)};
      }
      break;
  }
  return std::nullopt;
}

// Spark-like widening over the storage classes seen: int64 < float64 < string; only nulls give string.
type_id type_from_values(const std::vector<value>& values) {
  bool any_int = false, any_double = false;
  for (const auto& v : values) {
    if (std::holds_alternative<std::string>(v)) return type_id::string;
    any_int |= std::holds_alternative<std::int64_t>(v);
    any_double |= std::holds_alternative<double>(v);
  }
  if (any_double) return type_id::float64;
  return any_int ? type_id::int64 : type_id::string;
}

column build_column(type_id t, const std::vector<value>& values) {
  column_builder builder(t, values.size());
  for (const auto& v : values) builder.append_value(v);
  return builder.finish();
}

bool only_whitespace_or_semicolons(const char* text) {
  for (; text && *text; ++text) {
    if (*text != ';' && !std::isspace(static_cast<unsigned char>(*text))) return false;
  }
  return true;
}

}  // namespace

memory_catalog::memory_catalog() {
  if (sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw error("memory catalog: cannot open an in-memory SQLite database: " + message);
  }
}

memory_catalog::~memory_catalog() { sqlite3_close(db_); }

void memory_catalog::sync_sql_tables() {
  std::map<std::string, table_entry> snapshot;
  {
    std::lock_guard lock(tables_mutex_);
    for (const auto& [name, entry] : tables_) {
      auto loaded = loaded_versions_.find(name);
      if (loaded == loaded_versions_.end() || loaded->second != entry.version) snapshot.emplace(name, entry);
    }
    for (auto it = loaded_versions_.begin(); it != loaded_versions_.end();) {
      if (tables_.contains(it->first)) {
        ++it;
        continue;
      }
      execute(db_, "DROP TABLE IF EXISTS " + quote_identifier(it->first));
      it = loaded_versions_.erase(it);
    }
  }
  for (const auto& [name, entry] : snapshot) {
    loaded_versions_.erase(name);
    load_table(db_, name, *entry.schema, entry.rows);
    loaded_versions_[name] = entry.version;
  }
}

batch memory_catalog::sql(const std::string& query) {
  std::lock_guard lock(sql_mutex_);
  sync_sql_tables();

  auto fail = [&](const std::string& reason) {
    return error("SQL error: " + reason + "\n  in query: " + query);
  };
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db_, query.c_str(), static_cast<int>(query.size()), &raw, &tail) != SQLITE_OK) {
    std::string reason = sqlite3_errmsg(db_);
    if (reason.starts_with("no such table")) {
      std::string known;
      for (const auto& [name, version] : loaded_versions_) known += (known.empty() ? "" : ", ") + name;
      reason += " (tables: " + (known.empty() ? std::string("none") : known) + ")";
    }
    throw fail(reason);
  }
  if (!raw) throw fail("the query is empty");
  statement stmt(raw);
  if (!only_whitespace_or_semicolons(tail)) throw fail("only one statement can run at a time");
  if (!sqlite3_stmt_readonly(raw)) throw fail("only queries (SELECT ...) can run over the memory tables");

  const int column_count = sqlite3_column_count(raw);
  std::vector<std::string> names(static_cast<std::size_t>(column_count));
  std::vector<std::string> decls(static_cast<std::size_t>(column_count));
  for (int c = 0; c < column_count; ++c) {
    names[c] = sqlite3_column_name(raw, c);
    const char* decl = sqlite3_column_decltype(raw, c);
    decls[c] = decl ? decl : "";
  }
  std::vector<std::vector<value>> cells(static_cast<std::size_t>(column_count));
  for (;;) {
    int rc = sqlite3_step(raw);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) throw fail(sqlite3_errmsg(db_));
    for (int c = 0; c < column_count; ++c) cells[c].push_back(read_cell(raw, c));
  }

  std::vector<field> fields;
  std::vector<column> columns;
  for (std::size_t c = 0; c < cells.size(); ++c) {
    if (decls[c] == window_start_decl && c + 1 < cells.size() && decls[c + 1] == window_end_decl) {
      column_builder builder(type_id::window, cells[c].size());
      for (std::size_t r = 0; r < cells[c].size(); ++r) {
        const auto* start = std::get_if<std::int64_t>(&cells[c][r]);
        const auto* end = std::get_if<std::int64_t>(&cells[c + 1][r]);
        if (start && end) {
          builder.append_window(window_value{timestamp{*start}, timestamp{*end}});
        } else {
          builder.append_null();
        }
      }
      fields.push_back(field{names[c], type_id::window, true});
      columns.push_back(builder.finish());
      ++c;
      continue;
    }
    std::optional<type_id> type = decls[c].empty() ? std::nullopt : type_from_declared(decls[c]);
    std::vector<value> converted;
    if (type) {
      converted.reserve(cells[c].size());
      for (const auto& v : cells[c]) {
        auto as_type = convert(v, *type);
        if (!as_type) break;
        converted.push_back(std::move(*as_type));
      }
      if (converted.size() != cells[c].size()) type.reset();
    }
    if (!type) {
      type = type_from_values(cells[c]);
      converted.clear();
      for (const auto& v : cells[c]) converted.push_back(*convert(v, *type));
    }
    fields.push_back(field{names[c], *type, true});
    columns.push_back(build_column(*type, converted));
  }
  return batch(make_schema(std::move(fields)), std::move(columns));
}

}  // namespace flow::connectors
