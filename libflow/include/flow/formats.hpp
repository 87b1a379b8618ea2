// Text formats (CSV, JSON lines, text lines): decoded from bytes into batches (sources hand in raw chunks,
// the first stage of a query decodes them in parallel), and batches encoded as text rows for the sinks
// (row_encoder, JSON strings and timestamps). No I/O.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flow/batch.hpp"

namespace flow {

// Reader options as strings, keyed case-insensitively like Spark's DataFrameReader.option().
class options {
 public:
  void set(std::string key, std::string value);
  bool has(std::string_view key) const;
  std::string get(std::string_view key, std::string_view fallback = {}) const;
  bool get_bool(std::string_view key, bool fallback) const;            // throws on non-boolean
  std::int64_t get_int(std::string_view key, std::int64_t fallback) const;  // throws on non-integer
  const std::map<std::string, std::string>& all() const { return values_; }

 private:
  std::map<std::string, std::string> values_;  // keys lower-cased
};

// A comma-separated list ("a, b,c": topics to subscribe to, --flow.workers' addresses): the items with
// blanks around them trimmed, empty ones left out.
std::vector<std::string> split_list(std::string_view text);

// A piece of a file or stream holding whole records, [begin, end) of a shared buffer.
struct raw_chunk {
  std::shared_ptr<const std::string> buffer;
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string origin;            // file name or peer, for error messages
  std::uint64_t first_line = 1;  // 1-based line number of the first byte, for error messages
  // A chunk shipped to another node gets a buffer of its own; this keeps its offset in the file.
  std::optional<std::uint64_t> file_offset = std::nullopt;
  // The bytes are messages framed by append_length_prefixed (a push source's csv): each is decoded on
  // its own, so no record spans two messages, and first_line numbers the first message. Only the csv
  // decoder reads such chunks.
  bool framed_messages = false;
  // Whether the chunk starts its file, where the header and the byte-order mark are.
  bool starts_file() const { return !framed_messages && (file_offset ? *file_offset : begin) == 0; }
  std::string_view bytes() const { return std::string_view(*buffer).substr(begin, end - begin); }
};

// Appends message as a little-endian u32 length and its bytes.
inline void append_length_prefixed(std::string& out, std::string_view message) {
  auto size = static_cast<std::uint32_t>(message.size());
  const char prefix[4] = {static_cast<char>(size & 0xff), static_cast<char>((size >> 8) & 0xff),
                          static_cast<char>((size >> 16) & 0xff), static_cast<char>((size >> 24) & 0xff)};
  out.append(prefix, sizeof prefix);
  out.append(message);
}

// Calls f(message) for each message of bytes framed by append_length_prefixed, in order.
template <class F>
void for_each_length_prefixed(std::string_view bytes, F&& f) {
  std::size_t pos = 0;
  while (bytes.size() - pos >= 4) {
    auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[pos + i])); };
    const std::size_t size = byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24;
    pos += 4;
    f(bytes.substr(pos, size));
    pos += std::min(size, bytes.size() - pos);
  }
}

enum class parse_mode { permissive, drop_malformed, fail_fast };
parse_mode parse_parse_mode(std::string_view text);  // "PERMISSIVE", "DROPMALFORMED", "FAILFAST"

struct decode_stats {
  std::uint64_t rows = 0;        // rows produced
  std::uint64_t malformed = 0;   // malformed records seen (kept as nulls, dropped, or failed on)
  std::uint64_t bytes = 0;
};

// Decodes chunks of one format with fixed options and schema. Immutable and thread-safe.
class decoder {
 public:
  virtual ~decoder() = default;
  virtual const schema_ptr& output_schema() const = 0;
  // Throws flow::error in FAILFAST mode, naming origin, line and the reason.
  virtual batch decode(const raw_chunk& chunk, decode_stats& stats) const = 0;
  // Where a chunk may end: the offset just past the last complete record in bytes (quotes respected),
  // or 0 if there is none. Used by sources to cut files into bounded chunks.
  virtual std::size_t record_boundary(std::string_view bytes) const = 0;
  // Whether the first record of a file is a header to skip.
  virtual bool skips_header() const { return false; }
  // A decoder of the same output schema that converts only the given columns (indexes into it) and gives
  // null in every other one, as Spark's CSV reader parses only the columns a query reads: a value that would
  // not convert in another column does not make the record malformed. Malformed records (fields missing or
  // extra, broken quotes) still are. nullptr when the format cannot skip columns.
  virtual std::shared_ptr<const decoder> converting_only(const std::vector<std::size_t>& /*columns*/) const {
    return nullptr;
  }
};

// format: "csv", "json", "text". Options as in Spark: header, sep, quote, escape, mode,
// columnNameOfCorruptRecord, timestampFormat (ISO 8601 patterns only: check_timestamp_format), nullValue,
// multiLine (csv only, default false: a record is one line; true: a quoted field may span lines).
// For csv/json the schema is required here (see infer_schema).
std::shared_ptr<const decoder> make_decoder(std::string_view format, const options& opts, schema_ptr schema);

// inferSchema over a sample of the bytes of one or more files (Spark's rules: int64, float64,
// timestamp, boolean, else string; a column of only nulls is string). For csv with header=false,
// columns are named _c0, _c1, ... Each sample is a whole file or its start cut after a line end (as
// read_sample cuts it): every record in it counts, the last one too, with or without a final newline
// (only a csv multiLine sample's tail inside an open quoted field is left out).
schema_ptr infer_schema(std::string_view format, const options& opts,
                        const std::vector<std::string_view>& samples);

// Whether format names a file format, read from a path: "csv", "json" or "text" (the registry's spelling).
bool is_text_file_format(std::string_view format);

// ---------------------------------------------------------------- writing text

// Appends text as a JSON string literal: '"' and '\\' escaped, control characters (< 0x20) as \n \r \t \b
// \f or \u00xx; every other byte, UTF-8 sequences included, passed through unchanged.
void append_json_string(std::string& out, std::string_view text);
// The same escaping without the enclosing quotes.
std::string json_escape(std::string_view text);
// Appends row's list of an array<string> column as a JSON array of strings.
void append_json_string_array(std::string& out, const column& list, std::size_t row);

// A timestamp as Spark's JSON writer gives it: "2010-12-01T08:26:00.000Z" (UTC), with six fraction digits
// when the value has sub-millisecond digits, so nothing is lost. parse_timestamp reads it back.
std::string iso_timestamp(timestamp t);

enum class text_encoding {
  csv,   // RFC 4180 records
  json,  // JSON lines
  text,  // the 'value' column (rows without one as CSV)
};

struct encoder_options {
  char separator = ',';         // csv (and text's CSV rows): the field separator
  bool header = false;          // csv: header() gives a line of the column names
  bool iso_timestamps = true;   // json: "2010-12-01T08:26:00.000Z" (Spark's); false: "2010-12-01 08:26:00"
};

// Rows as text, one record per row, for the sinks that write text (files, sockets, message queues):
// * csv: RFC 4180. A field holding the separator, '"', CR or LF is quoted, quotes doubled; null is an empty
//   field and an empty string is "" so that readers tell the two apart (Spark's emptyValue). Timestamps as
//   format_timestamp writes them, doubles as show() prints them. The constructor refuses (flow::error naming
//   the column) window and array<string> columns: CSV has no such types, as Spark refuses struct and array
//   columns in CSV.
// * json: Spark's JSON lines: one object per row, null fields left out, NaN and infinities as strings,
//   timestamps as strings (see iso_timestamps), windows as {"start":..,"end":..}, arrays as JSON arrays.
// * text: the column named 'value' (non-strings as show() prints them, null as an empty record); a schema
//   without one gives the whole row as CSV, windows and arrays written as show() prints them.
// Immutable and thread-safe.
class row_encoder {
 public:
  row_encoder(text_encoding encoding, schema_ptr schema, encoder_options opts = {});

  // csv with header=true: the column names as a CSV record with its '\n'; otherwise empty.
  std::string header() const;
  // One row as one record, without a line end. rows must have the encoder's columns (see check).
  void append_row(std::string& out, const batch& rows, std::size_t row) const;
  // check(rows), then every row, each followed by '\n'.
  void append_rows(std::string& out, const batch& rows) const;
  // header() and append_rows(rows): the text of a whole file.
  std::string encode(const batch& rows) const;
  // Throws flow::error when rows do not have the encoder's column count and types.
  void check(const batch& rows) const;

 private:
  void append_csv_row(std::string& out, const batch& rows, std::size_t row) const;
  void append_json_row(std::string& out, const batch& rows, std::size_t row) const;
  void append_csv_field(std::string& out, std::string_view text) const;
  void append_json_timestamp(std::string& out, timestamp t) const;

  text_encoding encoding_;
  schema_ptr schema_;
  encoder_options opts_;
  std::optional<std::size_t> value_column_;  // text
};

}  // namespace flow
