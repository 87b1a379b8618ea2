// The memory catalog, its SQLite mirror for sql(), and the memory sink.
#include "flow/connectors/memory.hpp"

#include <sqlite3.h>

#include <cctype>
#include <cstring>
#include <optional>
#include <unordered_map>

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

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Parses a JSON array of strings (what append_json_string_array writes); nullopt for anything else.
std::optional<std::vector<std::string>> parse_json_string_array(std::string_view text) {
  std::size_t pos = 0;
  auto skip_blanks = [&] {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  };
  auto hex4 = [&](std::uint32_t& out) {
    if (pos + 4 > text.size()) return false;
    out = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[pos++];
      const int digit = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                        : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                        : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                                    : -1;
      if (digit < 0) return false;
      out = out * 16 + static_cast<std::uint32_t>(digit);
    }
    return true;
  };
  auto parse_string = [&](std::string& out) {
    if (pos >= text.size() || text[pos] != '"') return false;
    ++pos;
    while (pos < text.size()) {
      const char c = text[pos++];
      if (c == '"') return true;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos >= text.size()) return false;
      const char e = text[pos++];
      switch (e) {
        case '"': case '\\': case '/': out.push_back(e); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && pos + 1 < text.size() && text[pos] == '\\' && text[pos + 1] == 'u') {
            pos += 2;
            std::uint32_t low = 0;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  };
  std::vector<std::string> items;
  skip_blanks();
  if (pos >= text.size() || text[pos++] != '[') return std::nullopt;
  skip_blanks();
  if (pos < text.size() && text[pos] == ']') {
    ++pos;
  } else {
    for (;;) {
      skip_blanks();
      if (!parse_string(items.emplace_back())) return std::nullopt;
      skip_blanks();
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < text.size() && text[pos] == ']') {
        ++pos;
        break;
      }
      return std::nullopt;
    }
  }
  skip_blanks();
  if (pos != text.size()) return std::nullopt;
  return items;
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
        null ? sqlite3_bind_null(stmt, parameter) : sqlite3_bind_double(stmt, parameter, col.doubles()[row]);
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
      return value{std::string(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, c)))};
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

// ---------------------------------------------------------------- memory_catalog

memory_catalog::memory_catalog() {
  if (sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw error("memory catalog: cannot open an in-memory SQLite database: " + message);
  }
}

memory_catalog::~memory_catalog() { sqlite3_close(db_); }

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

// ---------------------------------------------------------------- memory sink

namespace {

// The grouping keys of a row as bytes, equal exactly when the key values are equal.
void append_key(std::string& key, const column& col, std::size_t row) {
  if (col.is_null(row)) {
    key.push_back('\0');
    return;
  }
  key.push_back('\1');
  auto append_raw = [&](const void* data, std::size_t size) { key.append(static_cast<const char*>(data), size); };
  switch (col.type()) {
    case type_id::boolean: key.push_back(static_cast<char>(col.bools()[row])); break;
    case type_id::int64:
    case type_id::timestamp: append_raw(&col.ints()[row], sizeof(std::int64_t)); break;
    case type_id::float64: {
      double d = col.doubles()[row] == 0.0 ? 0.0 : col.doubles()[row];
      append_raw(&d, sizeof d);
      break;
    }
    case type_id::string: {
      std::string_view s = col.str(row);
      std::uint64_t size = s.size();
      append_raw(&size, sizeof size);
      key.append(s);
      break;
    }
    case type_id::window:
      append_raw(&col.ints()[row], sizeof(std::int64_t));
      append_raw(&col.ends()[row], sizeof(std::int64_t));
      break;
    case type_id::string_list: {
      std::uint64_t items = col.list_size(row);
      append_raw(&items, sizeof items);
      for (std::size_t j = 0; j < items; ++j) {
        std::string_view s = col.list_item(row, j);
        std::uint64_t size = s.size();
        append_raw(&size, sizeof size);
        key.append(s);
      }
      break;
    }
  }
}

std::string row_key(const batch& b, std::size_t row, const std::vector<std::size_t>& key_indexes) {
  std::string key;
  for (std::size_t k : key_indexes) append_key(key, b.col(k), row);
  return key;
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
    std::unordered_map<std::string, std::pair<std::size_t, std::size_t>> latest;
    for (std::size_t b = 0; b < changes.size(); ++b) {
      for (std::size_t r = 0; r < changes[b].num_rows(); ++r) latest[row_key(changes[b], r, key_indexes_)] = {b, r};
    }
    std::vector<batch> result;
    for (const auto& b : table) {
      std::vector<std::uint8_t> keep(b.num_rows());
      for (std::size_t r = 0; r < b.num_rows(); ++r) keep[r] = !latest.contains(row_key(b, r, key_indexes_));
      add_kept(result, b, keep);
    }
    for (std::size_t b = 0; b < changes.size(); ++b) {
      std::vector<std::uint8_t> keep(changes[b].num_rows());
      for (std::size_t r = 0; r < keep.size(); ++r) {
        keep[r] = latest.at(row_key(changes[b], r, key_indexes_)) == std::pair{b, r};
      }
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
