#include "flow/schema.hpp"

namespace flow {

namespace {

std::string_view spark_type_name(type_id t) {
  switch (t) {
    case type_id::boolean: return "boolean";
    case type_id::int64: return "long";
    case type_id::float64: return "double";
    case type_id::string: return "string";
    case type_id::timestamp: return "timestamp";
    case type_id::window: return "struct<start:timestamp,end:timestamp>";
    case type_id::string_list: return "array";
  }
  return "unknown";
}

}  // namespace

std::optional<std::size_t> schema::find(std::string_view name) const {
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return i;
  }
  return std::nullopt;
}

std::size_t schema::index_of(std::string_view name) const {
  if (auto i = find(name)) return *i;
  std::string available;
  for (const auto& f : fields_) {
    if (!available.empty()) available += ", ";
    available += f.name;
  }
  if (available.empty()) available = "(none)";
  throw error("column '" + std::string(name) + "' not found; available columns: " + available);
}

std::vector<std::string> schema::names() const {
  std::vector<std::string> out;
  out.reserve(fields_.size());
  for (const auto& f : fields_) out.push_back(f.name);
  return out;
}

std::string schema::to_string() const {
  std::string out;
  for (const auto& f : fields_) {
    if (!out.empty()) out += ", ";
    out += f.name;
    out += ": ";
    out += type_name(f.type);
  }
  return out;
}

std::string schema::tree_string() const {
  std::string out = "root\n";
  for (const auto& f : fields_) {
    out += " |-- ";
    out += f.name;
    out += ": ";
    out += spark_type_name(f.type);
    out += f.nullable ? " (nullable = true)\n" : " (nullable = false)\n";
    if (f.type == type_id::string_list) out += " |    |-- element: string (containsNull = true)\n";
  }
  return out;
}

}  // namespace flow
