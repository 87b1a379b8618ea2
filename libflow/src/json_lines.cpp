// JSON lines: one object per line, parsed with simdjson's DOM parser, fields looked up by name or dotted path.
#include <cstring>
#include <unordered_map>

#include <simdjson.h>

#include "format_detail.hpp"

namespace flow::detail {

namespace {

namespace dom = simdjson::dom;

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// Calls visit(line, offset_of_line) for each line of bytes without its "\r\n" or "\n".
template <class Visit>
void for_each_line(std::string_view bytes, Visit&& visit) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const void* nl = std::memchr(bytes.data() + pos, '\n', bytes.size() - pos);
    std::size_t line_end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - bytes.data()) : bytes.size();
    std::size_t content_end = (line_end > pos && bytes[line_end - 1] == '\r') ? line_end - 1 : line_end;
    visit(bytes.substr(pos, content_end - pos), pos);
    pos = line_end + 1;
  }
}

// simdjson reads up to SIMDJSON_PADDING bytes past the end: parse from a padded copy of the line.
class line_parser {
 public:
  simdjson::error_code parse_object(std::string_view line, dom::object& out) {
    if (padded_.size() < line.size() + simdjson::SIMDJSON_PADDING) padded_.resize(line.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(padded_.data(), line.data(), line.size());
    dom::element doc;
    if (auto err = parser_.parse(padded_.data(), line.size(), false).get(doc)) return err;
    return doc.get_object().get(out);
  }

 private:
  dom::parser parser_;
  std::string padded_;
};

struct json_column {
  std::string name;
  std::vector<std::string> path;  // the dotted parts, used when no top-level key has the full name
  type_id type;
};

// The value of column c in obj, or an error (NO_SUCH_FIELD when missing).
simdjson::simdjson_result<dom::element> lookup(const dom::object& obj, const json_column& c) {
  auto direct = obj.at_key(c.name);
  if (direct.error() != simdjson::NO_SUCH_FIELD || c.path.size() < 2) return direct;
  dom::object current = obj;
  dom::element el;
  for (std::size_t i = 0; i < c.path.size(); ++i) {
    if (auto err = current.at_key(c.path[i]).get(el)) return err;
    if (i + 1 < c.path.size() && el.get_object().get(current)) return simdjson::NO_SUCH_FIELD;
  }
  return el;
}

class json_decoder final : public decoder {
 public:
  json_decoder(const options& opts, schema_ptr schema)
      : schema_(std::move(schema)),
        mode_(parse_parse_mode(opts.get("mode", "PERMISSIVE"))),
        corrupt_index_(corrupt_record_index(opts, *schema_)) {
    if (opts.has("timestampFormat")) check_timestamp_format(opts.get("timestampFormat"));
    for (std::size_t i = 0; i < schema_->size(); ++i) {
      if (corrupt_index_ && i == *corrupt_index_) continue;
      const field& f = (*schema_)[i];
      if (f.type == type_id::window) throw error("JSON cannot read column '" + f.name + "' of type window");
      json_column c{f.name, {}, f.type};
      for (std::size_t start = 0;;) {
        std::size_t dot = f.name.find('.', start);
        c.path.push_back(f.name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
      columns_.push_back(std::move(c));
      schema_index_.push_back(i);
    }
  }

  const schema_ptr& output_schema() const override { return schema_; }

  std::size_t record_boundary(std::string_view bytes) const override { return last_line_boundary(bytes); }

  batch decode(const raw_chunk& chunk, decode_stats& stats) const override {
    std::string_view bytes = chunk.bytes();
    stats.bytes += bytes.size();
    std::size_t skipped = 0;
    if (chunk.starts_file() && bytes.starts_with(utf8_bom)) skipped = utf8_bom.size();
    std::size_t expected_rows = estimate_rows(bytes);
    std::vector<column_builder> builders;
    for (const auto& f : schema_->fields()) builders.emplace_back(f.type, expected_rows);
    column_builder* corrupt = corrupt_index_ ? &builders[*corrupt_index_] : nullptr;
    line_parser parser;

    for_each_line(bytes.substr(skipped), [&](std::string_view line, std::size_t offset) {
      if (is_blank(line)) return;
      dom::object obj;
      auto err = parser.parse_object(line, obj);
      const bool unparsable = err != simdjson::SUCCESS;
      bool malformed = unparsable;
      if (malformed && mode_ != parse_mode::permissive) {
        ++stats.malformed;
        if (mode_ == parse_mode::fail_fast) {
          throw permanent_error("malformed JSON record at " + describe_position(chunk, offset + skipped) + ": " +
                      (err == simdjson::INCORRECT_TYPE ? std::string("not a JSON object")
                                                       : std::string(simdjson::error_message(err))) +
                      " (record: '" + excerpt(line) + "')." + advice());
        }
        return;
      }
      if (!malformed && mode_ == parse_mode::drop_malformed) {
        for (const auto& c : columns_) {
          if (!convertible(lookup(obj, c), c.type)) {
            ++stats.malformed;
            return;
          }
        }
      }
      for (std::size_t j = 0; j < columns_.size(); ++j) {
        column_builder& b = builders[schema_index_[j]];
        if (unparsable) {
          b.append_null();
          continue;
        }
        auto found = lookup(obj, columns_[j]);
        if (!append_element(b, columns_[j].type, found)) {
          if (mode_ == parse_mode::fail_fast) {
            ++stats.malformed;
            std::string shown = found.error() ? std::string("?") : simdjson::minify(found.value_unsafe());
            throw permanent_error("malformed JSON record at " + describe_position(chunk, offset + skipped) + ": field '" +
                        columns_[j].name + "' has value " + excerpt(shown) + ", which is not a valid " +
                        std::string(type_name(columns_[j].type)) + "." + advice());
          }
          malformed = true;
        }
      }
      if (malformed) ++stats.malformed;
      if (corrupt) {
        if (malformed) {
          corrupt->append_string(line);
        } else {
          corrupt->append_null();
        }
      }
      ++stats.rows;
    });

    std::vector<column> columns;
    for (auto& b : builders) columns.push_back(b.finish());
    return batch(schema_, std::move(columns));
  }

 private:
  static std::string advice() {
    return " Fix the input, or set option mode to PERMISSIVE (keep the row, bad values become null) or "
           "DROPMALFORMED (skip malformed rows).";
  }

  // Spark's JSON conversions: integers for int64, any number for float64, a JSON string holding a
  // timestamp or an integer of epoch seconds for timestamp; a string column takes other values as JSON text.
  static bool append_element(column_builder& b, type_id type, const simdjson::simdjson_result<dom::element>& found) {
    if (found.error()) {
      b.append_null();
      return found.error() == simdjson::NO_SUCH_FIELD;
    }
    dom::element el = found.value_unsafe();
    if (el.is_null()) {
      b.append_null();
      return true;
    }
    switch (type) {
      case type_id::string: {
        std::string_view s;
        if (!el.get_string().get(s)) {
          b.append_string(s);
        } else {
          b.append_string(simdjson::minify(el));
        }
        return true;
      }
      case type_id::int64: {
        std::int64_t v = 0;
        if (!el.get_int64().get(v)) {
          b.append_int(v);
          return true;
        }
        break;
      }
      case type_id::float64: {
        double v = 0;
        if (!el.get_double().get(v)) {
          b.append_double(v);
          return true;
        }
        break;
      }
      case type_id::boolean: {
        bool v = false;
        if (!el.get_bool().get(v)) {
          b.append_bool(v);
          return true;
        }
        break;
      }
      case type_id::timestamp: {
        std::string_view s;
        std::int64_t seconds = 0;
        if (!el.get_string().get(s)) {
          if (auto t = parse_timestamp(trim_blanks(s))) {
            b.append_timestamp(*t);
            return true;
          }
        } else if (!el.get_int64().get(seconds) && seconds > INT64_MIN / 1000000 && seconds < INT64_MAX / 1000000) {
          b.append_timestamp(timestamp{seconds * 1000000});
          return true;
        }
        break;
      }
      case type_id::string_list: {
        dom::array items;
        if (el.get_array().get(items)) break;
        // Elements must all be strings, numbers or booleans (as text); nulls, arrays and objects make the
        // record malformed: array<string> holds non-null strings only.
        for (dom::element item : items) {
          if (!is_scalar_text(item)) {
            b.append_null();
            return false;
          }
        }
        b.begin_list();
        for (dom::element item : items) {
          std::string_view s;
          if (!item.get_string().get(s)) {
            b.append_list_item(s);
          } else {
            b.append_list_item(simdjson::minify(item));
          }
        }
        b.end_list();
        return true;
      }
      default:
        break;
    }
    b.append_null();
    return false;
  }

  static bool is_scalar_text(const dom::element& el) {
    switch (el.type()) {
      case dom::element_type::STRING:
      case dom::element_type::INT64:
      case dom::element_type::UINT64:
      case dom::element_type::DOUBLE:
      case dom::element_type::BOOL: return true;
      default: return false;
    }
  }

  static bool convertible(const simdjson::simdjson_result<dom::element>& found, type_id type) {
    column_builder probe(type);
    return append_element(probe, type, found);
  }

  schema_ptr schema_;
  parse_mode mode_;
  std::optional<std::size_t> corrupt_index_;
  std::vector<json_column> columns_;
  std::vector<std::size_t> schema_index_;
};

type_id json_type(const dom::element& el) {
  switch (el.type()) {
    case dom::element_type::INT64: return type_id::int64;
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return type_id::float64;
    case dom::element_type::BOOL: return type_id::boolean;
    case dom::element_type::ARRAY: {
      // Arrays of strings (or empty ones, as Spark infers them) are array<string>; others stay JSON text.
      for (dom::element item : dom::array(el)) {
        if (item.type() != dom::element_type::STRING) return type_id::string;
      }
      return type_id::string_list;
    }
    default: return type_id::string;
  }
}

struct json_inference {
  std::vector<std::string> names;  // first-seen order
  std::vector<std::optional<type_id>> types;
  std::unordered_map<std::string, std::size_t> index;

  // Nested objects become dotted leaf columns ("user.name"): libflow has no struct type, and the
  // decoder resolves dotted names through nested objects.
  void add(const dom::object& obj, const std::string& prefix) {
    for (auto [key, value] : obj) {
      std::string name = prefix + std::string(key);
      dom::object inner;
      if (!value.get_object().get(inner) && inner.size() > 0) {
        add(inner, name + ".");
        continue;
      }
      auto [it, inserted] = index.try_emplace(name, names.size());
      if (inserted) {
        names.push_back(name);
        types.push_back(std::nullopt);
      }
      if (!value.is_null()) types[it->second] = merge_inferred(types[it->second], json_type(value));
    }
  }
};

}  // namespace

std::shared_ptr<const decoder> make_json_decoder(const options& opts, schema_ptr schema) {
  return std::make_shared<const json_decoder>(opts, std::move(schema));
}

schema_ptr infer_json_schema(const options& opts, const std::vector<std::string_view>& samples) {
  parse_mode mode = parse_parse_mode(opts.get("mode", "PERMISSIVE"));
  std::string corrupt_name = opts.get("columnNameOfCorruptRecord", "_corrupt_record");
  json_inference inference;
  line_parser parser;
  bool saw_malformed = false;
  for (std::string_view sample : samples) {
    if (sample.starts_with(utf8_bom)) sample.remove_prefix(utf8_bom.size());
    for_each_line(sample, [&](std::string_view line, std::size_t offset) {
      if (is_blank(line)) return;
      dom::object obj;
      if (auto err = parser.parse_object(line, obj)) {
        if (mode == parse_mode::fail_fast) {
          throw error("malformed JSON record in the schema sample at byte " + std::to_string(offset) + ": " +
                      std::string(simdjson::error_message(err)) + " (record: '" + excerpt(line) +
                      "'). Fix the input, or set option mode to PERMISSIVE or DROPMALFORMED");
        }
        saw_malformed = true;
        return;
      }
      inference.add(obj, "");
    });
  }
  std::vector<field> fields;
  for (std::size_t j = 0; j < inference.names.size(); ++j) {
    fields.push_back(field{inference.names[j], inference.types[j].value_or(type_id::string), true});
  }
  // Like Spark, malformed sample lines in PERMISSIVE mode add the corrupt record column.
  if (saw_malformed && mode == parse_mode::permissive && !inference.index.contains(corrupt_name)) {
    fields.push_back(field{corrupt_name, type_id::string, true});
  }
  if (fields.empty()) {
    throw error("cannot infer a JSON schema: the sample holds no JSON objects; give a schema or a non-empty file");
  }
  return make_schema(std::move(fields));
}

}  // namespace flow::detail
