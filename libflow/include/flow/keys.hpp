// Keys of rows: one encoding of any list of key columns, with per-row hashes, shared by hash partitioning
// (equal keys always go to the same part) and the keyed tables that store encoded keys; the aggregation's
// table hashes its key columns in place with the same hash steps.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flow/batch.hpp"

namespace flow {

// Spark normalizes floating-point keys: -0.0 is 0.0 and every NaN is one NaN.
inline double normalized_key(double d) {
  if (d == 0.0) return 0.0;
  if (std::isnan(d)) return std::numeric_limits<double>::quiet_NaN();
  return d;
}

// The key hash's steps, shared by the key encoding and tables that hash key columns in place: from
// key_hash_seed, mix_key_word per 64-bit word of a key, then finish_key_hash.
inline constexpr std::uint64_t key_hash_seed = 0x9E3779B97F4A7C15ULL;
inline std::uint64_t mix_key_word(std::uint64_t h, std::uint64_t word) { return (std::rotl(h, 5) ^ word) * key_hash_seed; }
inline std::uint64_t finish_key_hash(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}
// The hash of a string key's bytes (the encoding's hash of bytes, without its need for readable padding).
std::uint64_t hash_key_bytes(std::string_view s);

// How rows of key columns of the given types are encoded. Fixed: every key is boolean, int64, float64,
// timestamp or window and there are at most 64 keys; a row is key_words() 64-bit words, one per key (two
// for a window), then one whose bit k is set when key k is null. Otherwise (a string key, or more than 64
// keys) a row is bytes: per key a null flag, then the value (a string after its length). Null values encode
// as zero, floats as normalized_key, so equal keys encode equally. array<string> cannot be a key (flow::error).
class key_layout {
 public:
  key_layout() = default;  // no keys: every row has the same key
  explicit key_layout(std::vector<type_id> types);

  const std::vector<type_id>& types() const { return types_; }
  bool fixed() const { return fixed_; }
  std::size_t key_words() const { return key_words_; }  // fixed only
  std::size_t word_offset(std::size_t key) const { return word_offset_[key]; }

 private:
  std::vector<type_id> types_;
  std::vector<std::size_t> word_offset_;
  bool fixed_ = true;
  std::size_t key_words_ = 1;
};

// The keys of `rows` rows, encoded per key_layout, and a hash per row. The hash depends only on the key
// values and types (not on the process), so every process puts a key in the same part.
struct encoded_keys {
  std::size_t rows = 0;
  std::size_t key_words = 0;             // words per row when fixed, 0 when the keys are bytes
  std::vector<std::uint64_t> words;      // fixed: rows * key_words
  std::string bytes;                     // otherwise: row i is bytes[offsets[i], offsets[i + 1])
  std::vector<std::size_t> offsets;
  std::vector<std::uint64_t> hashes;

  bool fixed() const { return key_words != 0; }
  const std::uint64_t* row_words(std::size_t i) const { return words.data() + i * key_words; }
  std::string_view row_bytes(std::size_t i) const {
    return std::string_view(bytes).substr(offsets[i], offsets[i + 1] - offsets[i]);
  }
  // Row i's key in either layout as bytes (a fixed row's words as they lie in memory): equal keys give
  // equal bytes, and decode_key reads them back.
  std::string_view key(std::size_t i) const {
    if (!fixed()) return {bytes.data() + offsets[i], offsets[i + 1] - offsets[i]};
    return {reinterpret_cast<const char*>(row_words(i)), key_words * sizeof(std::uint64_t)};
  }
};

// columns: the key columns, each with `rows` rows, of the layout's types (flow::error otherwise).
encoded_keys encode_keys(const key_layout& layout, const std::vector<column>& columns, std::size_t rows);
encoded_keys encode_keys(const std::vector<column>& columns, std::size_t rows);

// encode_keys(columns, rows).hashes, computed from the columns in place (string keys are not copied).
std::vector<std::uint64_t> hash_keys(const std::vector<column>& columns, std::size_t rows);

// The hash encode_keys gives the encoded key (encoded_keys::key of the layout's keys).
std::uint64_t hash_encoded_key(const key_layout& layout, std::string_view key);

// The values of one encoded key (encoded_keys::key of the layout's keys), one per key, in key order.
std::vector<value> decode_key(const key_layout& layout, std::string_view key);
// Appends the values of one encoded key to columns[0 .. layout.types().size()), builders of the layout's types.
void append_decoded_key(const key_layout& layout, std::string_view key, std::span<column_builder> columns);

// Keys a batch carries already encoded (batch::attached_keys), so that the operator that reads them does
// not encode its key columns again: row i's key of the columns `columns` is keys->key(rows ? (*rows)[i] : i).
// A hash edge attaches its parts' keys (hash_partition), a keyed state its changes' keys (take_changes).
struct encoded_key_columns {
  std::vector<std::size_t> columns;
  std::shared_ptr<const encoded_keys> keys;
  std::shared_ptr<const std::vector<std::uint32_t>> rows;  // null: all of keys, in order
};

// Splits b into n batches (its schema, rows in input order) by the hash of the columns key_columns:
// rows with equal keys always land in the same part, in every batch. n = 1 returns b itself. With
// hand_on_keys the keys are encoded (encode_keys) rather than only hashed, and each part carries its rows'
// keys (batch::attached_keys) for a reader keyed by the same columns.
std::vector<batch> hash_partition(const batch& b, const std::vector<std::size_t>& key_columns, std::size_t n,
                                  bool hand_on_keys = false);

}  // namespace flow
