// Writing text: the JSON string escaper, Spark's JSON timestamps and the row encoder every text sink uses.
#include <cmath>
#include <cstdio>

#include "flow/formats.hpp"

namespace flow {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(hex_digits[(static_cast<unsigned char>(c) >> 4) & 0xF]);
          out.push_back(hex_digits[static_cast<unsigned char>(c) & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  append_escaped(out, text);
  out.push_back('"');
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  append_escaped(out, text);
  return out;
}

void append_json_string_array(std::string& out, const column& list, std::size_t row) {
  out.push_back('[');
  for (std::size_t j = 0; j < list.list_size(row); ++j) {
    if (j) out.push_back(',');
    append_json_string(out, list.list_item(row, j));
  }
  out.push_back(']');
}

std::string iso_timestamp(timestamp t) {
  constexpr std::int64_t micros_per_second = 1'000'000;
  std::int64_t seconds = t.micros / micros_per_second;
  std::int64_t fraction = t.micros % micros_per_second;
  if (fraction < 0) {
    fraction += micros_per_second;
    --seconds;
  }
  std::string out = format_timestamp(timestamp{seconds * micros_per_second});
  out[10] = 'T';
  char digits[8];
  if (fraction % 1000 == 0) {
    std::snprintf(digits, sizeof digits, ".%03d", static_cast<int>(fraction / 1000));
  } else {
    std::snprintf(digits, sizeof digits, ".%06d", static_cast<int>(fraction));
  }
  return out + digits + "Z";
}

row_encoder::row_encoder(text_encoding encoding, schema_ptr schema, encoder_options opts)
    : encoding_(encoding), schema_(std::move(schema)), opts_(opts) {
  if (!schema_) throw error("row_encoder: no schema given");
  if (opts_.separator == '\n' || opts_.separator == '\r' || opts_.separator == '"')
    throw error("CSV separator must be one character other than a line break or '\"'");
  if (encoding_ == text_encoding::csv) {
    for (const auto& f : schema_->fields()) {
      if (f.type == type_id::window || f.type == type_id::string_list) {
        throw error("CSV data source does not support " + std::string(type_name(f.type)) + " data type (column '" +
                    f.name + "'); flatten it first, e.g. select its parts or turn it into a string with a "
                    "map_batches function or SQL, or write JSON instead");
      }
    }
  }
  if (encoding_ == text_encoding::text) value_column_ = schema_->find("value");
}

std::string row_encoder::header() const {
  if (encoding_ != text_encoding::csv || !opts_.header) return {};
  std::string out;
  for (std::size_t c = 0; c < schema_->size(); ++c) {
    if (c) out.push_back(opts_.separator);
    append_csv_field(out, (*schema_)[c].name);
  }
  out.push_back('\n');
  return out;
}

void row_encoder::check(const batch& rows) const {
  bool same = rows.num_columns() == schema_->size();
  for (std::size_t c = 0; same && c < rows.num_columns(); ++c) same = rows.col(c).type() == (*schema_)[c].type;
  if (!same) {
    throw error("cannot write rows of schema (" + rows.schema().to_string() + ") with an encoder made for (" +
                schema_->to_string() + "): every batch must have the declared columns and types");
  }
}

void row_encoder::append_row(std::string& out, const batch& rows, std::size_t row) const {
  switch (encoding_) {
    case text_encoding::json: return append_json_row(out, rows, row);
    case text_encoding::csv: return append_csv_row(out, rows, row);
    case text_encoding::text:
      if (!value_column_) return append_csv_row(out, rows, row);
      const column& values = rows.col(*value_column_);
      if (values.is_null(row)) return;
      if (values.type() == type_id::string) out += values.str(row);
      else out += to_string(values.at(row));
      return;
  }
}

void row_encoder::append_rows(std::string& out, const batch& rows) const {
  check(rows);
  for (std::size_t row = 0; row < rows.num_rows(); ++row) {
    append_row(out, rows, row);
    out.push_back('\n');
  }
}

std::string row_encoder::encode(const batch& rows) const {
  std::string out = header();
  append_rows(out, rows);
  return out;
}

void row_encoder::append_csv_field(std::string& out, std::string_view text) const {
  const char special[] = {opts_.separator, '"', '\r', '\n'};
  bool quote = text.empty() || text.find_first_of(std::string_view(special, sizeof special)) != std::string_view::npos;
  if (!quote) {
    out += text;
    return;
  }
  out.push_back('"');
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

void row_encoder::append_csv_row(std::string& out, const batch& rows, std::size_t row) const {
  for (std::size_t c = 0; c < rows.num_columns(); ++c) {
    if (c) out.push_back(opts_.separator);
    const column& col = rows.col(c);
    if (col.is_null(row)) continue;
    switch (col.type()) {
      case type_id::boolean: out += col.bools()[row] ? "true" : "false"; break;
      case type_id::int64: out += std::to_string(col.ints()[row]); break;
      case type_id::float64: out += to_string(value{col.doubles()[row]}); break;
      case type_id::timestamp: out += format_timestamp(timestamp{col.ints()[row]}); break;
      case type_id::string: append_csv_field(out, col.str(row)); break;
      case type_id::window:  // only in text's CSV rows: csv refuses them at construction
      case type_id::string_list: append_csv_field(out, to_string(col.at(row))); break;
    }
  }
}

void row_encoder::append_json_timestamp(std::string& out, timestamp t) const {
  append_json_string(out, opts_.iso_timestamps ? iso_timestamp(t) : format_timestamp(t));
}

void row_encoder::append_json_row(std::string& out, const batch& rows, std::size_t row) const {
  out.push_back('{');
  bool first = true;
  for (std::size_t c = 0; c < rows.num_columns(); ++c) {
    const column& col = rows.col(c);
    if (col.is_null(row)) continue;
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, rows.schema()[c].name);
    out.push_back(':');
    switch (col.type()) {
      case type_id::boolean: out += col.bools()[row] ? "true" : "false"; break;
      case type_id::int64: out += std::to_string(col.ints()[row]); break;
      case type_id::float64: {
        double d = col.doubles()[row];
        // JSON has no NaN or infinity; Spark (Jackson) writes them as strings.
        if (std::isfinite(d)) out += to_string(value{d});
        else append_json_string(out, to_string(value{d}));
        break;
      }
      case type_id::string: append_json_string(out, col.str(row)); break;
      case type_id::timestamp: append_json_timestamp(out, timestamp{col.ints()[row]}); break;
      case type_id::window: {
        window_value w = col.window(row);
        out += "{\"start\":";
        append_json_timestamp(out, w.start);
        out += ",\"end\":";
        append_json_timestamp(out, w.end);
        out.push_back('}');
        break;
      }
      case type_id::string_list: append_json_string_array(out, col, row); break;
    }
  }
  out.push_back('}');
}

}  // namespace flow
