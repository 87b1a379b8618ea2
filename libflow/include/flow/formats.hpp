// Text formats (CSV, JSON lines, text lines) decoded from bytes into batches. No I/O: sources hand in
// raw chunks, the first stage of a query decodes them in parallel.
#pragma once

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

// A piece of a file or stream holding whole records, [begin, end) of a shared buffer.
struct raw_chunk {
  std::shared_ptr<const std::string> buffer;
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string origin;            // file name or peer, for error messages
  std::uint64_t first_line = 1;  // 1-based line number of the first byte, for error messages
  // A chunk shipped to another node gets a buffer of its own; this keeps its offset in the file.
  std::optional<std::uint64_t> file_offset = std::nullopt;
  // Whether the chunk starts its file, where the header and the byte-order mark are.
  bool starts_file() const { return (file_offset ? *file_offset : begin) == 0; }
  std::string_view bytes() const { return std::string_view(*buffer).substr(begin, end - begin); }
};

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
};

// format: "csv", "json", "text". Options as in Spark: header, sep, quote, escape, mode,
// columnNameOfCorruptRecord, timestampFormat (only the default is supported), nullValue.
// For csv/json the schema is required here (see infer_schema).
std::shared_ptr<const decoder> make_decoder(std::string_view format, const options& opts, schema_ptr schema);

// inferSchema over a sample of the bytes of one or more files (Spark's rules: int64, float64,
// timestamp, boolean, else string; a column of only nulls is string). For csv with header=false,
// columns are named _c0, _c1, ...
schema_ptr infer_schema(std::string_view format, const options& opts,
                        const std::vector<std::string_view>& samples);

}  // namespace flow
