// The key encoder and decoder, and the hash partitioner.
#include "flow/keys.hpp"

#include "cell_encoding.hpp"

#include <bit>
#include <cstring>

namespace flow {

namespace {

static_assert(std::endian::native == std::endian::little, "the key hash reads bytes as little-endian words");

std::uint64_t hash_words(const std::uint64_t* words, std::size_t n) {
  std::uint64_t h = key_hash_seed;
  for (std::size_t j = 0; j < n; ++j) h = mix_key_word(h, words[j]);
  return finish_key_hash(h);
}

// Word at a time, little-endian, the last word zero-padded, then the length. With readable_padding the 8
// bytes after s must be readable: the last word is loaded whole and masked (a memcpy of 1 to 7 bytes is a
// library call).
template <bool readable_padding>
std::uint64_t hash_bytes(std::string_view s) {
  std::uint64_t h = key_hash_seed;
  std::size_t i = 0;
  std::uint64_t word;
  for (; i + 8 <= s.size(); i += 8) {
    std::memcpy(&word, s.data() + i, 8);
    h = mix_key_word(h, word);
  }
  if (const std::size_t rest = s.size() - i; rest > 0) {
    if constexpr (readable_padding) {
      std::memcpy(&word, s.data() + i, 8);
      word &= ~std::uint64_t{0} >> (64 - 8 * rest);
    } else {
      word = 0;
      std::memcpy(&word, s.data() + i, rest);
    }
    h = mix_key_word(h, word);
  }
  return finish_key_hash(mix_key_word(h, s.size()));
}

// hash_bytes<...> of bytes handed in piece by piece: what encode_generic's hash of a row gives, computed
// from the key cells in place, without writing the row's bytes.
class streaming_key_hash {
 public:
  // The low n bytes of bytes (1 <= n <= 8; the others zero), little-endian as they lie in memory.
  void add(std::uint64_t bytes, unsigned n) {
    length_ += n;
    pending_ |= bytes << (8 * fill_);
    const unsigned filled = fill_ + n;
    if (filled < 8) {
      fill_ = filled;
      return;
    }
    h_ = mix_key_word(h_, pending_);
    pending_ = fill_ == 0 ? 0 : bytes >> (64 - 8 * fill_);  // the bytes that did not fit
    fill_ = filled - 8;
  }
  void add(std::string_view text) {
    const char* p = text.data();
    std::size_t n = text.size();
    for (; n >= 8; p += 8, n -= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      add(word, 8);
    }
    if (n == 0) return;
    std::uint64_t tail = 0;
    for (std::size_t k = 0; k < n; ++k) tail |= std::uint64_t{static_cast<unsigned char>(p[k])} << (8 * k);
    add(tail, static_cast<unsigned>(n));
  }
  std::uint64_t finish() const {
    const std::uint64_t h = fill_ > 0 ? mix_key_word(h_, pending_) : h_;
    return finish_key_hash(mix_key_word(h, length_));
  }

 private:
  std::uint64_t h_ = key_hash_seed;
  std::uint64_t pending_ = 0;  // fill_ bytes not mixed yet
  unsigned fill_ = 0;          // 0 to 7
  std::uint64_t length_ = 0;
};

// The cell of row `row` of c as append_cell(float_bits::normalized) writes it, into the hash.
void hash_cell(streaming_key_hash& hash, const column& c, std::size_t row) {
  if (!c.valid(row)) {
    hash.add(0, 1);
    return;
  }
  hash.add(1, 1);
  switch (c.type()) {
    case type_id::boolean: hash.add(c.bools()[row], 1); break;
    case type_id::int64:
    case type_id::timestamp: hash.add(static_cast<std::uint64_t>(c.ints()[row]), 8); break;
    case type_id::float64: hash.add(std::bit_cast<std::uint64_t>(normalized_key(c.doubles()[row])), 8); break;
    case type_id::window:
      hash.add(static_cast<std::uint64_t>(c.ints()[row]), 8);
      hash.add(static_cast<std::uint64_t>(c.ends()[row]), 8);
      break;
    case type_id::string: {
      const std::string_view text = c.str(row);
      hash.add(static_cast<std::uint32_t>(text.size()), 4);
      hash.add(text);
      break;
    }
    case type_id::string_list: throw error("internal: an array<string> key");
  }
}

inline std::uint64_t double_key_bits(double d) { return std::bit_cast<std::uint64_t>(normalized_key(d)); }

// Uses the hash's high half: the aggregation's table, which each part feeds, indexes by the low bits.
inline std::size_t part_of(std::uint64_t hash, std::size_t n) { return static_cast<std::size_t>((hash >> 32) % n); }

void check_columns(const key_layout& layout, const std::vector<column>& columns, std::size_t rows) {
  const auto& types = layout.types();
  if (columns.size() != types.size()) {
    throw error("encode_keys: " + std::to_string(columns.size()) + " key columns, but the layout has " +
                std::to_string(types.size()));
  }
  for (std::size_t k = 0; k < columns.size(); ++k) {
    if (columns[k].type() != types[k]) {
      throw error("encode_keys: key column " + std::to_string(k) + " is " + std::string(type_name(columns[k].type())) +
                  ", but the layout expects " + std::string(type_name(types[k])));
    }
    if (columns[k].size() != rows) {
      throw error("encode_keys: key column " + std::to_string(k) + " has " + std::to_string(columns[k].size()) +
                  " rows, expected " + std::to_string(rows));
    }
  }
}

void encode_fixed(const key_layout& layout, const std::vector<column>& columns, encoded_keys& enc) {
  const std::size_t rows = enc.rows, kw = layout.key_words();
  enc.key_words = kw;
  enc.words.assign(rows * kw, 0);
  std::uint64_t* w = enc.words.data();
  for (std::size_t k = 0; k < columns.size(); ++k) {
    const column& c = columns[k];
    const std::size_t o = layout.word_offset(k);
    switch (c.type()) {
      case type_id::boolean: {
        const auto* v = c.bools();
        for (std::size_t i = 0; i < rows; ++i) w[i * kw + o] = v[i];
        break;
      }
      case type_id::int64:
      case type_id::timestamp: {
        const auto* v = c.ints();
        for (std::size_t i = 0; i < rows; ++i) w[i * kw + o] = static_cast<std::uint64_t>(v[i]);
        break;
      }
      case type_id::float64: {
        const auto* v = c.doubles();
        for (std::size_t i = 0; i < rows; ++i) w[i * kw + o] = double_key_bits(v[i]);
        break;
      }
      case type_id::window: {
        const auto* s = c.ints();
        const auto* e = c.ends();
        for (std::size_t i = 0; i < rows; ++i) {
          w[i * kw + o] = static_cast<std::uint64_t>(s[i]);
          w[i * kw + o + 1] = static_cast<std::uint64_t>(e[i]);
        }
        break;
      }
      case type_id::string:
      case type_id::string_list: throw error("internal: a variable-width key in a fixed key layout");
    }
    if (c.has_nulls()) {
      for (std::size_t i = 0; i < rows; ++i) {
        if (c.valid(i)) continue;
        w[i * kw + o] = 0;
        if (c.type() == type_id::window) w[i * kw + o + 1] = 0;
        w[i * kw + kw - 1] |= std::uint64_t{1} << k;
      }
    }
  }
  enc.hashes.resize(rows);
  for (std::size_t i = 0; i < rows; ++i) enc.hashes[i] = hash_words(w + i * kw, kw);
}

// The cells of every row (cell_encoding.hpp), written a column at a time into a buffer sized first: each
// row's cells at their own place, without a growth check per cell.
void encode_generic(const std::vector<column>& columns, encoded_keys& enc) {
  for (const column& c : columns)
    if (c.type() == type_id::string_list) throw error("internal: an array<string> key");
  const std::size_t rows = enc.rows;
  std::vector<std::size_t>& offsets = enc.offsets;
  offsets.assign(rows + 1, 0);
  for (const column& c : columns)
    for (std::size_t i = 0; i < rows; ++i) offsets[i + 1] += detail::cell_size(c, i);
  for (std::size_t i = 0; i < rows; ++i) offsets[i + 1] += offsets[i];
  std::string& s = enc.bytes;
  s.assign(offsets[rows] + 8, '\0');  // the 8 zero bytes after the last key: hash_bytes<true> reads them
  std::vector<char*> at(rows);
  for (std::size_t i = 0; i < rows; ++i) at[i] = s.data() + offsets[i];
  for (const column& c : columns)
    for (std::size_t i = 0; i < rows; ++i) at[i] = detail::write_cell(at[i], c, i, detail::float_bits::normalized);
  enc.hashes.resize(rows);
  for (std::size_t i = 0; i < rows; ++i) enc.hashes[i] = hash_bytes<true>(enc.row_bytes(i));
  s.resize(offsets[rows]);
}

// One key of an encoded row: null, or its value in the member its type uses (window: start, end).
struct key_field {
  bool valid = false;
  std::int64_t integer = 0, end = 0;
  double real = 0.0;
  std::string_view text;
};

// Reads an encoded key (encode_fixed's words or encode_generic's bytes) and calls f(k, type, field) per key.
template <class F>
void for_each_key_field(const key_layout& layout, std::string_view key, F&& f) {
  const auto& types = layout.types();
  auto truncated = [&] {
    return error("decode_key: an encoded key of " + std::to_string(key.size()) + " bytes does not hold the " +
                 std::to_string(types.size()) + " keys of its layout; it was encoded for other key types");
  };
  if (layout.fixed()) {
    const std::size_t kw = layout.key_words();
    if (key.size() != kw * 8) throw truncated();
    auto word = [&](std::size_t j) {
      std::uint64_t w;
      std::memcpy(&w, key.data() + j * 8, 8);
      return w;
    };
    const std::uint64_t nulls = word(kw - 1);
    for (std::size_t k = 0; k < types.size(); ++k) {
      key_field field;
      field.valid = !((nulls >> k) & 1u);
      const std::uint64_t w = word(layout.word_offset(k));
      field.integer = static_cast<std::int64_t>(w);
      field.real = std::bit_cast<double>(w);
      if (types[k] == type_id::window) field.end = static_cast<std::int64_t>(word(layout.word_offset(k) + 1));
      f(k, types[k], field);
    }
    return;
  }
  detail::cell_reader in(key, truncated);
  for (std::size_t k = 0; k < types.size(); ++k) {
    key_field field;
    field.valid = in.valid();
    if (field.valid) {
      switch (types[k]) {
        case type_id::boolean: field.integer = in.boolean(); break;
        case type_id::int64:
        case type_id::timestamp: field.integer = in.int64(); break;
        case type_id::float64: field.real = in.float64(); break;
        case type_id::window:
          field.integer = in.int64();
          field.end = in.int64();
          break;
        case type_id::string: field.text = in.text(); break;
        case type_id::string_list: throw error("internal: an array<string> key");
      }
    }
    f(k, types[k], field);
  }
  if (!in.at_end()) throw truncated();
}

std::vector<type_id> types_of(const std::vector<column>& columns) {
  std::vector<type_id> types;
  types.reserve(columns.size());
  for (const column& c : columns) types.push_back(c.type());
  return types;
}

}  // namespace

key_layout::key_layout(std::vector<type_id> types) : types_(std::move(types)) {
  fixed_ = types_.size() <= 64;  // one null-mask word
  for (std::size_t k = 0; k < types_.size(); ++k) {
    switch (types_[k]) {
      case type_id::string: fixed_ = false; break;
      case type_id::string_list:
        throw error("key " + std::to_string(k) + " is array<string>, which cannot be a grouping or partitioning key; "
                    "use its exploded elements or size(...) instead");
      default: break;
    }
    word_offset_.push_back(key_words_ - 1);
    key_words_ += types_[k] == type_id::window ? 2 : 1;
  }
}

std::uint64_t hash_key_bytes(std::string_view s) { return hash_bytes<false>(s); }

encoded_keys encode_keys(const key_layout& layout, const std::vector<column>& columns, std::size_t rows) {
  check_columns(layout, columns, rows);
  encoded_keys enc;
  enc.rows = rows;
  if (layout.fixed()) encode_fixed(layout, columns, enc);
  else encode_generic(columns, enc);
  return enc;
}

encoded_keys encode_keys(const std::vector<column>& columns, std::size_t rows) {
  return encode_keys(key_layout(types_of(columns)), columns, rows);
}

std::vector<std::uint64_t> hash_keys(const std::vector<column>& columns, std::size_t rows) {
  const key_layout layout(types_of(columns));
  check_columns(layout, columns, rows);
  if (layout.fixed()) {
    encoded_keys enc;
    enc.rows = rows;
    encode_fixed(layout, columns, enc);
    return std::move(enc.hashes);
  }
  std::vector<std::uint64_t> hashes(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    streaming_key_hash hash;
    for (const column& c : columns) hash_cell(hash, c, i);
    hashes[i] = hash.finish();
  }
  return hashes;
}

std::uint64_t hash_encoded_key(const key_layout& layout, std::string_view key) {
  if (layout.fixed()) {
    std::vector<std::uint64_t> words(key.size() / 8);
    std::memcpy(words.data(), key.data(), words.size() * 8);
    return hash_words(words.data(), words.size());
  }
  return hash_key_bytes(key);
}

std::vector<value> decode_key(const key_layout& layout, std::string_view key) {
  std::vector<value> values;
  values.reserve(layout.types().size());
  for_each_key_field(layout, key, [&](std::size_t, type_id type, const key_field& field) {
    if (!field.valid) {
      values.emplace_back(null_value{});
      return;
    }
    switch (type) {
      case type_id::boolean: values.emplace_back(field.integer != 0); break;
      case type_id::int64: values.emplace_back(field.integer); break;
      case type_id::timestamp: values.emplace_back(timestamp{field.integer}); break;
      case type_id::float64: values.emplace_back(field.real); break;
      case type_id::window: values.emplace_back(window_value{timestamp{field.integer}, timestamp{field.end}}); break;
      case type_id::string: values.emplace_back(std::string(field.text)); break;
      case type_id::string_list: throw error("internal: an array<string> key");
    }
  });
  return values;
}

void append_decoded_key(const key_layout& layout, std::string_view key, std::span<column_builder> columns) {
  if (columns.size() < layout.types().size()) {
    throw error("append_decoded_key: " + std::to_string(columns.size()) + " columns for " +
                std::to_string(layout.types().size()) + " keys");
  }
  for_each_key_field(layout, key, [&](std::size_t k, type_id type, const key_field& field) {
    column_builder& out = columns[k];
    if (out.type() != type) {
      throw error("append_decoded_key: key " + std::to_string(k) + " is " + std::string(type_name(type)) +
                  ", but its column is " + std::string(type_name(out.type())));
    }
    if (!field.valid) {
      out.append_null();
      return;
    }
    switch (type) {
      case type_id::boolean: out.append_bool(field.integer != 0); break;
      case type_id::int64: out.append_int(field.integer); break;
      case type_id::timestamp: out.append_timestamp(timestamp{field.integer}); break;
      case type_id::float64: out.append_double(field.real); break;
      case type_id::window: out.append_window({timestamp{field.integer}, timestamp{field.end}}); break;
      case type_id::string: out.append_string(field.text); break;
      case type_id::string_list: throw error("internal: an array<string> key");
    }
  });
}

std::vector<batch> hash_partition(const batch& b, const std::vector<std::size_t>& key_columns, std::size_t n,
                                  bool hand_on_keys) {
  if (n == 0) throw error("hash_partition: the number of parts must be at least 1");
  std::vector<column> keys;
  for (auto k : key_columns) {
    if (k >= b.num_columns()) {
      throw error("hash_partition: key column " + std::to_string(k) + " does not exist; the batch has " +
                  std::to_string(b.num_columns()) + " columns (" + b.schema().to_string() + ")");
    }
    if (b.schema()[k].type == type_id::string_list) {
      throw error("hash_partition: key column '" + b.schema()[k].name +
                  "' is array<string>, which cannot be a partitioning key; partition by its exploded elements instead");
    }
    keys.push_back(b.col(k));
  }
  if (n == 1) return {b};
  std::shared_ptr<const encoded_keys> encoded;
  std::vector<std::uint64_t> hashes_only;
  if (hand_on_keys) encoded = std::make_shared<const encoded_keys>(encode_keys(keys, b.num_rows()));
  else hashes_only = hash_keys(keys, b.num_rows());
  const std::vector<std::uint64_t>& hashes = encoded ? encoded->hashes : hashes_only;
  std::vector<std::vector<std::uint32_t>> rows(n);
  for (std::size_t i = 0; i < hashes.size(); ++i) rows[part_of(hashes[i], n)].push_back(static_cast<std::uint32_t>(i));
  auto with_keys = [&](const batch& part, std::shared_ptr<const std::vector<std::uint32_t>> part_rows) {
    if (!encoded) return part;
    return part.with_attached_keys(std::make_shared<const encoded_key_columns>(encoded_key_columns{key_columns, encoded, std::move(part_rows)}));
  };
  // A part shares b's columns and selects its rows (batch::selected): a column is copied only when the
  // part's reader asks for it, so that columns no one downstream reads are never gathered, and the gather
  // runs on the reader's thread.
  const std::vector<std::uint32_t>* outer = b.selection();
  std::vector<column> base;
  base.reserve(b.num_columns());
  for (std::size_t c = 0; c < b.num_columns(); ++c) base.push_back(b.base_col(c));
  std::vector<batch> parts;
  parts.reserve(n);
  for (auto& part_rows : rows) {
    if (part_rows.size() == b.num_rows()) {
      parts.push_back(with_keys(b, nullptr));
      continue;
    }
    auto of_b = std::make_shared<const std::vector<std::uint32_t>>(std::move(part_rows));
    auto of_base = of_b;
    if (outer) {
      std::vector<std::uint32_t> selection(of_b->size());
      for (std::size_t i = 0; i < selection.size(); ++i) selection[i] = (*outer)[(*of_b)[i]];
      of_base = std::make_shared<const std::vector<std::uint32_t>>(std::move(selection));
    }
    parts.push_back(with_keys(batch::selected(b.schema_ref(), base, std::move(of_base)), std::move(of_b)));
  }
  return parts;
}

}  // namespace flow
