// CSV (RFC 4180) decoding and schema inference: a single pass over the bytes straight into column builders.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "format_detail.hpp"

namespace flow::detail {

namespace {

struct csv_dialect {
  char separator = ',';
  char quote = '"';
  bool quoting = true;
  bool multi_line = false;  // a quoted field may span lines (Spark's multiLine); else a record is one line
  std::string null_value;  // besides the empty unquoted field, which is always null
};

csv_dialect read_dialect(const options& opts) {
  csv_dialect d;
  std::string sep = opts.has("sep") ? opts.get("sep") : opts.get("delimiter", ",");
  if (sep == "\\t") sep = "\t";
  if (sep.size() != 1 || sep[0] == '\n' || sep[0] == '\r') {
    throw error("option 'sep' must be a single character other than a line break (or \\t), got '" + sep + "'");
  }
  d.separator = sep[0];
  if (opts.has("quote")) {
    std::string quote = opts.get("quote");
    if (quote.size() > 1) throw error("option 'quote' must be one character (or empty for no quoting), got '" + quote + "'");
    d.quoting = !quote.empty();
    if (d.quoting) d.quote = quote[0];
  }
  if (d.quoting && d.quote == d.separator) {
    throw error("options 'sep' and 'quote' must differ, both are '" + sep + "'");
  }
  if (opts.has("escape") && opts.get("escape") != std::string(1, d.quote)) {
    throw error("option 'escape' supports only the quote character itself (RFC 4180 doubled quotes), got '" +
                opts.get("escape") + "'; remove the option or set it to '" + std::string(1, d.quote) + "'");
  }
  if (opts.has("timestampFormat")) check_timestamp_format(opts.get("timestampFormat"));
  d.multi_line = opts.get_bool("multiLine", false);
  d.null_value = opts.get("nullValue");
  return d;
}

// The first separator or '\n' in [p, end), or end: 16 bytes per step where SSE2 is available.
inline const char* find_field_end(const char* p, const char* end, char separator) {
#if defined(__SSE2__)
  const __m128i separators = _mm_set1_epi8(separator);
  const __m128i newlines = _mm_set1_epi8('\n');
  while (end - p >= 16) {
    __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    int hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(block, separators), _mm_cmpeq_epi8(block, newlines)));
    if (hits != 0) return p + __builtin_ctz(static_cast<unsigned>(hits));
    p += 16;
  }
#endif
  while (p < end && *p != separator && *p != '\n') ++p;
  return p;
}

struct csv_field {
  const char* data = nullptr;
  std::size_t size = 0;
  bool quoted = false;
  bool in_scratch = false;  // unescaped copy in csv_record::scratch (doubled quotes)
  std::size_t scratch_offset = 0;
  std::string_view text() const { return {data, size}; }
};

enum class record_flaw : std::uint8_t { none, unterminated_quote, text_after_quote };

struct csv_record {
  std::vector<csv_field> fields;
  std::string scratch;
  std::size_t begin = 0;  // raw text [begin, end) without the line break
  std::size_t end = 0;
  record_flaw flaw = record_flaw::none;
  std::size_t flaw_field = 0;
};

class csv_tokenizer {
 public:
  explicit csv_tokenizer(const csv_dialect& dialect) : dialect_(dialect) {}

  // Splits the record starting at pos into fields; returns the offset just past its line break. Without
  // multi_line a quoted field ends at the line's end at the latest: not closed there, the record is
  // flawed (unterminated_quote) and the next line is the next record.
  std::size_t read(std::string_view bytes, std::size_t pos, csv_record& rec) const {
    const char* const base = bytes.data();
    const char* const end = base + bytes.size();
    const char* p = base + pos;
    const char sep = dialect_.separator;
    const char quote = dialect_.quote;
    rec.fields.clear();
    rec.scratch.clear();
    rec.flaw = record_flaw::none;
    rec.begin = pos;
    bool any_scratch = false;

    auto finish = [&](const char* record_end, const char* next) {
      rec.end = static_cast<std::size_t>(record_end - base);
      if (any_scratch) {
        for (auto& f : rec.fields) {
          if (f.in_scratch) f.data = rec.scratch.data() + f.scratch_offset;
        }
      }
      return static_cast<std::size_t>(next - base);
    };

    for (;;) {
      if (dialect_.quoting && p < end && *p == quote) {
        const char* content = ++p;
        const char* piece = content;
        csv_field field;
        field.quoted = true;
        const char* close = nullptr;
        const char* field_limit = end;  // where the field's content ends when no quote closes it
        while (const char* q = static_cast<const char*>(std::memchr(p, quote, static_cast<std::size_t>(end - p)))) {
          if (!dialect_.multi_line) {
            if (const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(q - p))) {
              field_limit = static_cast<const char*>(nl);
              break;
            }
          }
          if (q + 1 < end && q[1] == quote) {
            if (!field.in_scratch) {
              field.in_scratch = true;
              any_scratch = true;
              field.scratch_offset = rec.scratch.size();
            }
            rec.scratch.append(piece, static_cast<std::size_t>(q + 1 - piece));
            piece = p = q + 2;
            continue;
          }
          close = q;
          break;
        }
        if (!close && !dialect_.multi_line && field_limit == end) {
          if (const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p))) {
            field_limit = static_cast<const char*>(nl);
          }
        }
        // Without a closing quote the line break (and a '\r' before it) ends the record, not the field.
        const char* content_end = close ? close : field_limit;
        if (!close && field_limit < end && content_end > content && content_end[-1] == '\r') --content_end;
        if (field.in_scratch) {
          rec.scratch.append(piece, static_cast<std::size_t>(content_end - piece));
          field.size = rec.scratch.size() - field.scratch_offset;
        } else {
          field.data = content;
          field.size = static_cast<std::size_t>(content_end - content);
        }
        rec.fields.push_back(field);
        if (!close) {
          rec.flaw = record_flaw::unterminated_quote;
          rec.flaw_field = rec.fields.size() - 1;
          return finish(field_limit == end ? end : content_end, field_limit == end ? end : field_limit + 1);
        }
        p = close + 1;
        if (p < end && *p != sep && *p != '\n' && !(*p == '\r' && (p + 1 == end || p[1] == '\n'))) {
          if (rec.flaw == record_flaw::none) {
            rec.flaw = record_flaw::text_after_quote;
            rec.flaw_field = rec.fields.size() - 1;
          }
          while (p < end && *p != sep && *p != '\n') ++p;
        }
        if (p == end) return finish(end[-1] == '\r' && end - 1 > close ? end - 1 : end, end);
        if (*p == sep) {
          ++p;
          continue;
        }
        if (*p == '\n') return finish(p > close + 1 && p[-1] == '\r' ? p - 1 : p, p + 1);
        return finish(p, p + 1 == end ? end : p + 2);  // "\r\n"
      }
      const char* start = p;
      p = find_field_end(p, end, sep);
      if (p < end && *p == sep) {
        rec.fields.push_back(csv_field{start, static_cast<std::size_t>(p - start)});
        ++p;
        continue;
      }
      const char* field_end = (p > start && p[-1] == '\r') ? p - 1 : p;
      rec.fields.push_back(csv_field{start, static_cast<std::size_t>(field_end - start)});
      return finish(field_end, p == end ? end : p + 1);
    }
  }

  // Offset just past the last '\n' (with multi_line: the last one outside quotes; a quote opens a quoted
  // field only at the start of a field, exactly as read() sees it), so chunk cuts and decoding agree.
  std::size_t record_boundary(std::string_view bytes) const {
    const char* const base = bytes.data();
    const char* const end = base + bytes.size();
    if (!dialect_.quoting || !dialect_.multi_line) {
      const void* nl = memrchr(base, '\n', bytes.size());
      return nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - base) + 1 : 0;
    }
    const char quote = dialect_.quote;
    const char sep = dialect_.separator;
    std::size_t boundary = 0;
    const char* p = base;
    for (;;) {
      const char* q = p;
      while ((q = static_cast<const char*>(std::memchr(q, quote, static_cast<std::size_t>(end - q))))) {
        if (q == base || q[-1] == sep || q[-1] == '\n') break;
        ++q;
      }
      const char* stretch_end = q ? q : end;
      if (const void* nl = memrchr(p, '\n', static_cast<std::size_t>(stretch_end - p))) {
        boundary = static_cast<std::size_t>(static_cast<const char*>(nl) - base) + 1;
      }
      if (!q) return boundary;
      p = q + 1;
      for (;;) {  // inside a quoted field
        q = static_cast<const char*>(std::memchr(p, quote, static_cast<std::size_t>(end - p)));
        if (!q) return boundary;
        if (q + 1 < end && q[1] == quote) {
          p = q + 2;
          continue;
        }
        p = q + 1;
        break;
      }
    }
  }

  const csv_dialect& dialect() const { return dialect_; }

 private:
  csv_dialect dialect_;
};

// A message of a message-framed source ends every record in it, so a quoted field may span its lines.
csv_dialect message_dialect(csv_dialect dialect) {
  dialect.multi_line = true;
  return dialect;
}

// Skips the blank line at pos; returns pos unchanged when the line is not blank. An empty line ("\n",
// "\r\n") is blank; without multi_line so is a line of blanks and control characters only, which Spark
// drops from line-based CSV (its lines whose trim is empty).
std::size_t skip_blank_line(std::string_view bytes, std::size_t pos, const csv_dialect& dialect) {
  if (!dialect.multi_line) {
    std::size_t p = pos;
    while (p < bytes.size() && bytes[p] != '\n' && static_cast<unsigned char>(bytes[p]) <= ' ') ++p;
    if (p == bytes.size()) return p;
    return bytes[p] == '\n' ? p + 1 : pos;
  }
  if (bytes[pos] == '\n') return pos + 1;
  if (bytes[pos] == '\r' && (pos + 1 == bytes.size() || bytes[pos + 1] == '\n')) {
    return std::min(pos + 2, bytes.size());
  }
  return pos;
}

// Past the BOM and the blank lines at the start of a file: where its first record, the header, starts.
std::size_t first_record_start(std::string_view bytes, const csv_dialect& dialect) {
  std::size_t pos = bytes.starts_with(utf8_bom) ? utf8_bom.size() : 0;
  while (pos < bytes.size()) {
    std::size_t after = skip_blank_line(bytes, pos, dialect);
    if (after == pos) break;
    pos = after;
  }
  return pos;
}

class csv_decoder final : public decoder {
 public:
  csv_decoder(const options& opts, schema_ptr schema)
      : schema_(std::move(schema)),
        dialect_(read_dialect(opts)),
        tokenizer_(dialect_),
        message_tokenizer_(message_dialect(dialect_)),
        header_(opts.get_bool("header", false)),
        mode_(parse_parse_mode(opts.get("mode", "PERMISSIVE"))),
        corrupt_index_(corrupt_record_index(opts, *schema_)) {
    for (std::size_t i = 0; i < schema_->size(); ++i) {
      if (corrupt_index_ && i == *corrupt_index_) continue;
      if ((*schema_)[i].type == type_id::window) {
        throw error("CSV cannot read column '" + (*schema_)[i].name + "' of type window; use string or timestamp");
      }
      if ((*schema_)[i].type == type_id::string_list) {
        throw error("CSV cannot read column '" + (*schema_)[i].name +
                    "' of type array<string>: CSV has no array type. Declare the column as string and split "
                    "it after reading, e.g. split(col(\"" + (*schema_)[i].name +
                    "\"), \";\"), or read the data as json, where arrays are JSON arrays");
      }
      data_columns_.push_back(i);
      data_types_.push_back((*schema_)[i].type);
    }
    if (data_columns_.empty()) throw error("the CSV schema has no columns besides the corrupt record column");
    converts_.assign(data_columns_.size(), true);
  }

  const schema_ptr& output_schema() const override { return schema_; }
  bool skips_header() const override { return header_; }
  std::size_t record_boundary(std::string_view bytes) const override { return tokenizer_.record_boundary(bytes); }

  // The corrupt record column holds the records with any bad value, so reading it needs every column converted.
  std::shared_ptr<const decoder> converting_only(const std::vector<std::size_t>& columns) const override {
    std::vector<bool> read(schema_->size(), false);
    for (std::size_t c : columns) {
      if (c >= read.size()) {
        throw error("CSV decoder: column " + std::to_string(c) + " to convert is not in its schema (" +
                    schema_->to_string() + ")");
      }
      read[c] = true;
    }
    if (corrupt_index_ && read[*corrupt_index_]) return nullptr;
    auto pruned = std::make_shared<csv_decoder>(*this);
    for (std::size_t j = 0; j < data_columns_.size(); ++j) pruned->converts_[j] = read[data_columns_[j]];
    if (pruned->converts_ == converts_) return nullptr;
    return pruned;
  }

  batch decode(const raw_chunk& chunk, decode_stats& stats) const override {
    std::string_view bytes = chunk.bytes();
    stats.bytes += bytes.size();
    std::size_t pos = 0;
    csv_record rec;
    rec.fields.reserve(data_columns_.size() + 4);
    if (chunk.starts_file()) {
      pos = first_record_start(bytes, dialect_);
      if (header_ && pos < bytes.size()) pos = tokenizer_.read(bytes, pos, rec);
    }

    std::size_t expected_rows = estimate_rows(bytes.substr(pos));
    std::vector<column_builder> builders;
    builders.reserve(schema_->size());
    for (std::size_t c = 0; c < schema_->size(); ++c)
      builders.emplace_back((*schema_)[c].type, converted(c) ? expected_rows : 0);
    const std::uint64_t rows_before = stats.rows;
    row_builders out{{}, corrupt_index_ ? &builders[*corrupt_index_] : nullptr};
    for (std::size_t i : data_columns_) out.data.push_back(&builders[i]);
    out.timestamps.resize(data_columns_.size());

    if (chunk.framed_messages) {
      std::uint64_t number = chunk.first_line;
      for_each_length_prefixed(bytes, [&](std::string_view message) {
        decode_records(message, 0, message_tokenizer_, out, rec, stats, [&](std::size_t) {
          return (chunk.origin.empty() ? std::string("<input>") : chunk.origin) + " record " + std::to_string(number);
        });
        ++number;
      });
    } else {
      decode_records(bytes, pos, tokenizer_, out, rec, stats,
                     [&](std::size_t offset) { return describe_position(chunk, offset); });
    }

    std::vector<column> columns;
    columns.reserve(builders.size());
    for (std::size_t c = 0; c < builders.size(); ++c) {
      columns.push_back(converted(c) ? builders[c].finish()
                                     : null_column(builders[c].type(), static_cast<std::size_t>(stats.rows - rows_before)));
    }
    return batch(schema_, std::move(columns));
  }

 private:
  // A field position's last timestamp converted: event times mostly repeat from row to row (the rows of
  // one invoice, of one burst of log lines), and comparing the text costs less than parsing it again.
  struct last_timestamp {
    std::string text;
    timestamp value;
  };

  struct row_builders {
    std::vector<column_builder*> data;  // one per CSV field position
    column_builder* corrupt = nullptr;
    std::vector<last_timestamp> timestamps = {};  // one per CSV field position
  };

  // Decodes the records of text from pos into out. where(offset of a record in text) names its place
  // for error messages.
  template <class Where>
  void decode_records(std::string_view text, std::size_t pos, const csv_tokenizer& tokenizer, row_builders& out,
                      csv_record& rec, decode_stats& stats, const Where& where) const {
    const std::size_t width = data_columns_.size();
    while (pos < text.size()) {
      if (std::size_t after = skip_blank_line(text, pos, tokenizer.dialect()); after != pos) {
        pos = after;
        continue;
      }
      std::size_t next = tokenizer.read(text, pos, rec);
      std::size_t present = std::min(rec.fields.size(), width);
      bool malformed = rec.flaw != record_flaw::none || rec.fields.size() != width;
      if (malformed && mode_ != parse_mode::permissive) {
        ++stats.malformed;
        if (mode_ == parse_mode::fail_fast) throw permanent_error(failure_message(text, rec, where(rec.begin)));
        pos = next;
        continue;
      }
      if (mode_ == parse_mode::drop_malformed) {
        bool convertible = true;
        for (std::size_t j = 0; j < present && convertible; ++j) {
          convertible = !converts_[j] || convertible_field(data_types_[j], rec.fields[j]);
        }
        if (!convertible) {
          ++stats.malformed;
          pos = next;
          continue;
        }
      }
      for (std::size_t j = 0; j < present; ++j) {
        if (!converts_[j]) continue;  // made null at once after the last record
        if (!append_field(*out.data[j], data_types_[j], rec.fields[j], out.timestamps[j])) {
          if (mode_ == parse_mode::fail_fast) {
            ++stats.malformed;
            throw permanent_error(bad_value_message(rec, j, where(rec.begin)));
          }
          malformed = true;
        }
      }
      for (std::size_t j = present; j < width; ++j)
        if (converts_[j]) out.data[j]->append_null();
      if (malformed) ++stats.malformed;
      if (out.corrupt) {
        if (malformed) {
          out.corrupt->append_string(text.substr(rec.begin, rec.end - rec.begin));
        } else {
          out.corrupt->append_null();
        }
      }
      ++stats.rows;
      pos = next;
    }
  }

  // Whether schema column c gets values (the corrupt record column, or a data column converted).
  bool converted(std::size_t c) const {
    auto position = std::find(data_columns_.begin(), data_columns_.end(), c);
    return position == data_columns_.end() || converts_[static_cast<std::size_t>(position - data_columns_.begin())];
  }

  bool is_null_text(const csv_field& f) const {
    return (f.size == 0 && !f.quoted) || (!dialect_.null_value.empty() && f.text() == dialect_.null_value);
  }

  // Appends the field converted to type (null when it does not convert); false when it did not convert.
  bool append_field(column_builder& b, type_id type, const csv_field& f, last_timestamp& last) const {
    if (is_null_text(f)) {
      b.append_null();
      return true;
    }
    if (type == type_id::string) {
      b.append_string(f.text());
      return true;
    }
    std::string_view text = trim_blanks(f.text());
    if (text.empty()) {
      b.append_null();
      return true;
    }
    switch (type) {
      case type_id::int64:
        if (auto v = parse_int64(text)) {
          b.append_int(*v);
          return true;
        }
        break;
      case type_id::float64:
        if (auto v = parse_float64(text)) {
          b.append_double(*v);
          return true;
        }
        break;
      case type_id::timestamp:
        if (text == last.text) {
          b.append_timestamp(last.value);
          return true;
        }
        if (auto v = parse_timestamp(text)) {
          last.text.assign(text);
          last.value = *v;
          b.append_timestamp(*v);
          return true;
        }
        break;
      case type_id::boolean:
        if (auto v = parse_boolean(text)) {
          b.append_bool(*v);
          return true;
        }
        break;
      default:
        break;
    }
    b.append_null();
    return false;
  }

  bool convertible_field(type_id type, const csv_field& f) const {
    if (type == type_id::string || is_null_text(f)) return true;
    std::string_view text = trim_blanks(f.text());
    switch (type) {
      case type_id::int64: return text.empty() || parse_int64(text).has_value();
      case type_id::float64: return text.empty() || parse_float64(text).has_value();
      case type_id::timestamp: return text.empty() || parse_timestamp(text).has_value();
      case type_id::boolean: return text.empty() || parse_boolean(text).has_value();
      default: return true;
    }
  }

  static std::string advice() {
    return " Fix the input, or set option mode to PERMISSIVE (keep the row, bad values become null) or "
           "DROPMALFORMED (skip malformed rows).";
  }

  std::string failure_message(std::string_view text, const csv_record& rec, const std::string& place) const {
    const std::size_t width = data_columns_.size();
    std::string where = "malformed CSV record at " + place + ": ";
    std::string raw = excerpt(text.substr(rec.begin, rec.end - rec.begin));
    std::string reason;
    if (rec.flaw == record_flaw::unterminated_quote) {
      reason = "the quoted field " + field_label(rec.flaw_field) + " is not closed before the end of the input";
    } else if (rec.flaw == record_flaw::text_after_quote) {
      reason = "unexpected text after the closing quote of field " + field_label(rec.flaw_field);
    } else {
      reason = "expected " + std::to_string(width) + " fields, found " + std::to_string(rec.fields.size());
    }
    return where + reason + " (record: '" + raw + "')." + advice();
  }

  std::string bad_value_message(const csv_record& rec, std::size_t j, const std::string& place) const {
    return "malformed CSV record at " + place + ": field " + field_label(j) +
           " has value '" + excerpt(rec.fields[j].text()) + "', which is not a valid " +
           std::string(type_name((*schema_)[data_columns_[j]].type)) + "." + advice();
  }

  std::string field_label(std::size_t j) const {
    if (j < data_columns_.size()) return "'" + (*schema_)[data_columns_[j]].name + "' (field " + std::to_string(j + 1) + ")";
    return std::to_string(j + 1);
  }

  schema_ptr schema_;
  csv_dialect dialect_;
  csv_tokenizer tokenizer_;
  csv_tokenizer message_tokenizer_;  // for framed messages: the message, not the line, bounds a quoted field
  bool header_;
  parse_mode mode_;
  std::optional<std::size_t> corrupt_index_;
  std::vector<std::size_t> data_columns_;  // schema index of each CSV field position
  std::vector<type_id> data_types_;        // and its type
  std::vector<bool> converts_;             // and whether its text is converted (else the column is null)
};

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Spark's rule: an empty header name becomes _c<index>; every occurrence of a duplicated name (compared
// case-insensitively) gets its index appended, so "a,A,b" gives a0, A1, b.
std::vector<std::string> header_names(const csv_record& rec) {
  std::unordered_map<std::string, int> counts;
  for (const auto& f : rec.fields) {
    if (f.size != 0) ++counts[lower(f.text())];
  }
  std::vector<std::string> names;
  for (std::size_t i = 0; i < rec.fields.size(); ++i) {
    std::string name(rec.fields[i].text());
    if (name.empty()) {
      names.push_back("_c" + std::to_string(i));
    } else if (counts[lower(name)] > 1) {
      names.push_back(name + std::to_string(i));
    } else {
      names.push_back(std::move(name));
    }
  }
  return names;
}

}  // namespace

std::shared_ptr<const decoder> make_csv_decoder(const options& opts, schema_ptr schema) {
  return std::make_shared<const csv_decoder>(opts, std::move(schema));
}

schema_ptr infer_csv_schema(const options& opts, const std::vector<std::string_view>& samples) {
  csv_dialect dialect = read_dialect(opts);
  csv_tokenizer tokenizer(dialect);
  bool header = opts.get_bool("header", false);
  std::vector<std::string> names;
  std::vector<std::optional<type_id>> types;
  bool have_names = false;
  csv_record rec;

  // Each sample is the start of a file: its first record is a header when header=true.
  for (std::string_view bytes : samples) {
    std::size_t pos = bytes.starts_with(utf8_bom) ? utf8_bom.size() : 0;
    bool first_record = true;
    bool took_data = false;
    while (pos < bytes.size()) {
      if (std::size_t after = skip_blank_line(bytes, pos, dialect); after != pos) {
        pos = after;
        continue;
      }
      std::size_t next = tokenizer.read(bytes, pos, rec);
      // A multiLine sample cut at a line end may stop inside a quoted field: that tail is no record.
      bool cut_in_quotes = dialect.multi_line && rec.flaw == record_flaw::unterminated_quote && next == bytes.size();
      pos = next;
      if (!have_names) {
        have_names = true;
        if (header) {
          names = header_names(rec);
        } else {
          for (std::size_t i = 0; i < rec.fields.size(); ++i) names.push_back("_c" + std::to_string(i));
        }
        types.assign(names.size(), std::nullopt);
      }
      if (first_record && header) {
        first_record = false;
        continue;
      }
      first_record = false;
      if (cut_in_quotes && took_data) break;
      took_data = true;
      std::size_t present = std::min(rec.fields.size(), names.size());
      for (std::size_t j = 0; j < present; ++j) {
        const csv_field& f = rec.fields[j];
        if (types[j] == type_id::string) continue;
        if ((f.size == 0 && !f.quoted) || (!dialect.null_value.empty() && f.text() == dialect.null_value)) continue;
        if (f.size == 0) {
          types[j] = type_id::string;
          continue;
        }
        types[j] = merge_inferred(types[j], infer_text_type(f.text()));
      }
    }
  }
  if (!have_names) {
    throw error("cannot infer a CSV schema: the sample holds no records; give a schema or a non-empty file");
  }
  std::vector<field> fields;
  for (std::size_t j = 0; j < names.size(); ++j) {
    fields.push_back(field{names[j], types[j].value_or(type_id::string), true});
  }
  return make_schema(std::move(fields));
}

}  // namespace flow::detail
