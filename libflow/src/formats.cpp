// Format dispatch (make_decoder, infer_schema), parse modes and the conversions all decoders share.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "flow/line_scan.hpp"
#include "format_detail.hpp"

namespace flow {

using detail::ascii_lower;

parse_mode parse_parse_mode(std::string_view text) {
  std::string mode = ascii_lower(text);
  if (mode == "permissive") return parse_mode::permissive;
  if (mode == "dropmalformed") return parse_mode::drop_malformed;
  if (mode == "failfast") return parse_mode::fail_fast;
  throw error("option 'mode' must be PERMISSIVE, DROPMALFORMED or FAILFAST, got '" + std::string(text) + "'");
}

std::shared_ptr<const decoder> make_decoder(std::string_view format, const options& opts, schema_ptr schema) {
  std::string name = ascii_lower(format);
  if (name != "csv" && name != "json" && name != "text") {
    throw error("unknown format '" + std::string(format) + "'; use csv, json or text");
  }
  if (name != "csv" && opts.get_bool("multiLine", false)) {
    throw error("option 'multiLine' applies to csv only; " + name +
                " records are always one line each: remove the option");
  }
  if (name == "text") return detail::make_text_decoder(opts, std::move(schema));
  if (!schema || schema->size() == 0) {
    throw error("the " + name + " format needs a schema: pass one, or call infer_schema on a sample first");
  }
  if (name == "csv") return detail::make_csv_decoder(opts, std::move(schema));
  return detail::make_json_decoder(opts, std::move(schema));
}

schema_ptr infer_schema(std::string_view format, const options& opts, const std::vector<std::string_view>& samples) {
  std::string name = ascii_lower(format);
  if (name == "csv") return detail::infer_csv_schema(opts, samples);
  if (name == "json") return detail::infer_json_schema(opts, samples);
  if (name == "text") return make_schema({field{"value", type_id::string, true}});
  throw error("unknown format '" + std::string(format) + "'; use csv, json or text");
}

bool is_text_file_format(std::string_view format) { return format == "csv" || format == "json" || format == "text"; }

namespace detail {

std::optional<bool> parse_boolean(std::string_view text) {
  auto equals = [&](std::string_view word) {
    return text.size() == word.size() &&
           std::equal(text.begin(), text.end(), word.begin(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  };
  if (equals("true")) return true;
  if (equals("false")) return false;
  return std::nullopt;
}

std::optional<type_id> merge_inferred(std::optional<type_id> seen, type_id next) {
  if (!seen || *seen == next) return next;
  bool both_numeric = (*seen == type_id::int64 || *seen == type_id::float64) &&
                      (next == type_id::int64 || next == type_id::float64);
  return both_numeric ? type_id::float64 : type_id::string;
}

type_id infer_text_type(std::string_view text) {
  std::string_view t = trim_blanks(text);
  if (parse_int64(t)) return type_id::int64;
  // Only text that looks like a number (or Java's NaN/Infinity) counts: from_chars would also take "inf".
  std::string_view unsigned_part = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? t.substr(1) : t;
  bool number_like = !unsigned_part.empty() &&
                     (std::isdigit(static_cast<unsigned char>(unsigned_part[0])) || unsigned_part[0] == '.');
  if ((number_like || t == "NaN" || unsigned_part == "Infinity") && parse_float64(t)) return type_id::float64;
  if (parse_timestamp(t)) return type_id::timestamp;
  if (parse_boolean(t)) return type_id::boolean;
  return type_id::string;
}

std::optional<std::size_t> corrupt_record_index(const options& opts, const schema& s) {
  std::string name = opts.get("columnNameOfCorruptRecord", "_corrupt_record");
  auto index = s.find(name);
  if (index && s[*index].type != type_id::string) {
    throw error("the corrupt record column '" + name + "' must have type string, not " +
                std::string(type_name(s[*index].type)) + "; change its type or set columnNameOfCorruptRecord");
  }
  return index;
}

// A chunk's first_line 0: its line is unknown (connectors::file_chunk_index read it on its own).
std::string describe_position(const raw_chunk& chunk, std::size_t offset) {
  std::string_view bytes = chunk.bytes();
  const std::string origin = chunk.origin.empty() ? std::string("<input>") : chunk.origin;
  if (chunk.first_line == 0)
    return origin + " byte " + std::to_string(chunk.file_offset.value_or(chunk.begin) + std::min(offset, bytes.size()));
  auto line = chunk.first_line + count_newlines(bytes.data(), bytes.data() + std::min(offset, bytes.size()));
  return origin + " line " + std::to_string(line);
}

std::string excerpt(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return std::string(text);
  return std::string(text.substr(0, limit)) + "...";
}

std::size_t estimate_rows(std::string_view bytes) {
  std::size_t prefix = std::min<std::size_t>(bytes.size(), 16 * 1024);
  if (prefix == 0) return 0;
  auto lines = count_newlines(bytes.data(), bytes.data() + prefix);
  return static_cast<std::size_t>((static_cast<double>(lines) + 1.0) * 1.05 * static_cast<double>(bytes.size()) /
                                  static_cast<double>(prefix)) + 16;
}

}  // namespace detail
}  // namespace flow
