// libflow's binary batch format, version 1 (all integers little-endian):
//   "LFB1" | u16 version | u32 field count | per field: u32 name length, name bytes, u8 type, u8 nullable
//   | u64 rows | per column: u8 has_validity, [ceil(rows / 8) bitmap bytes], data for the rows:
//   boolean: u8 per row; int64/timestamp: i64; float64: IEEE-754 bits as u64; window: i64 starts then
//   i64 ends; string: (rows + 1) u32 offsets starting at 0, then the characters; string_list (array<string>):
//   (rows + 1) u32 list offsets starting at 0 (element index ranges per row), then for the E elements
//   (E + 1) u32 element offsets starting at 0, then the characters.
// The encoding is canonical (validity only when a row is null, zeroed null slots, zero padding bits), so
// decode rejects anything that would not re-encode to the same bytes.
#include <bit>
#include <cstring>
#include <functional>

#include "flow/batch.hpp"
#include "flow/batch_pieces.hpp"

namespace flow {

namespace {

constexpr char magic[4] = {'L', 'F', 'B', '1'};
constexpr std::uint16_t format_version = 1;

constexpr bool little_endian = std::endian::native == std::endian::little;

// Where the encoder's bytes go. Every writer takes bytes (a piece in memory order) and uint (one integer,
// little-endian); a column without nulls goes as its arrays, in one piece each on a little-endian host.
// vector_writer: into one vector (encode).
class vector_writer {
 public:
  explicit vector_writer(std::size_t size) { out_.reserve(size); }
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  template <typename T>
  void uint(T v) {
    std::uint8_t le[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) le[i] = static_cast<std::uint8_t>(v >> (8 * i));
    bytes(le, sizeof le);
  }
  std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

// Counts the bytes only (encoded_size).
class counting_writer {
 public:
  void bytes(const void*, std::size_t n) { size_ += n; }
  template <typename T>
  void uint(T) { size_ += sizeof(T); }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

// Hands the bytes to a function in large pieces (encode_to): small ones gathered in a staging buffer,
// large ones (a column's arrays, its characters) passed on where they lie.
class piece_writer {
 public:
  explicit piece_writer(const std::function<void(const void*, std::size_t)>& out) : out_(out) {}
  void bytes(const void* p, std::size_t n) {
    if (n == 0) return;  // an empty column's array: p may be null, which memcpy must not get
    if (n >= pass_on_bytes) {
      flush();
      out_(p, n);
      return;
    }
    if (staged_ + n > sizeof staging_) flush();
    std::memcpy(staging_ + staged_, p, n);
    staged_ += n;
  }
  template <typename T>
  void uint(T v) {
    std::uint8_t le[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) le[i] = static_cast<std::uint8_t>(v >> (8 * i));
    bytes(le, sizeof le);
  }
  void flush() {
    if (staged_ > 0) out_(staging_, staged_);
    staged_ = 0;
  }

 private:
  static constexpr std::size_t pass_on_bytes = 4096;
  const std::function<void(const void*, std::size_t)>& out_;
  std::uint8_t staging_[16384];
  std::size_t staged_ = 0;
};

[[noreturn]] void corrupt(const std::string& what) {
  throw error("corrupt batch encoding: " + what + "; the bytes were truncated or not written by flow::encode");
}

class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t remaining() const { return size_ - pos_; }
  std::size_t position() const { return pos_; }

  const std::uint8_t* take(std::size_t n, const char* what) {
    if (n > remaining()) {
      corrupt(std::string(what) + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
              " but only " + std::to_string(remaining()) + " remain");
    }
    const std::uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T uint(const char* what) {
    const std::uint8_t* p = take(sizeof(T), what);
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

template <typename T>
T load_le(const std::uint8_t* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
  return v;
}

std::size_t bitmap_bytes(std::size_t rows) { return rows / 8 + (rows % 8 != 0); }

// The fewest data bytes a row of type t takes (strings: the offset alone).
std::size_t min_bytes_per_row(type_id t) {
  switch (t) {
    case type_id::boolean: return 1;
    case type_id::int64:
    case type_id::float64:
    case type_id::timestamp: return 8;
    case type_id::string:
    case type_id::string_list: return 4;
    case type_id::window: return 16;
  }
  return 1;
}

// n 8-byte values (int64 or the bits of a double), a null row's as 0: as they lie in memory when no row
// is null on a little-endian host.
template <class Writer, class T, class Valid>
void encode_words(Writer& w, const T* values, std::size_t n, const Valid& valid, bool any_null) {
  static_assert(sizeof(T) == 8);
  if (little_endian && !any_null) {
    w.bytes(values, n * 8);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) w.uint(valid(i) ? std::bit_cast<std::uint64_t>(values[i]) : std::uint64_t{0});
}

template <class Writer>
void encode_column(Writer& w, const column& c) {
  const std::size_t n = c.size();
  bool any_null = false;
  if (c.has_nulls()) {
    for (std::size_t i = 0; i < n && !any_null; ++i) any_null = c.is_null(i);
  }
  w.template uint<std::uint8_t>(any_null ? 1 : 0);
  if (any_null) {
    std::vector<std::uint8_t> bitmap(bitmap_bytes(n), 0);
    for (std::size_t i = 0; i < n; ++i) {
      if (c.valid(i)) bitmap[i >> 3] |= static_cast<std::uint8_t>(1u << (i & 7));
    }
    w.bytes(bitmap.data(), bitmap.size());
  }
  auto valid = [&](std::size_t i) { return !any_null || c.valid(i); };
  switch (c.type()) {
    case type_id::boolean:
      for (std::size_t i = 0; i < n; ++i) w.template uint<std::uint8_t>(valid(i) && c.bools()[i] != 0 ? 1 : 0);
      break;
    case type_id::int64:
    case type_id::timestamp:
      encode_words(w, c.ints(), n, valid, any_null);
      break;
    case type_id::float64:
      encode_words(w, c.doubles(), n, valid, any_null);
      break;
    case type_id::window:
      encode_words(w, c.ints(), n, valid, any_null);
      encode_words(w, c.ends(), n, valid, any_null);
      break;
    case type_id::string: {
      std::uint32_t offset = 0;
      w.uint(offset);
      for (std::size_t i = 0; i < n; ++i) {
        if (valid(i)) offset += static_cast<std::uint32_t>(c.str(i).size());
        w.uint(offset);
      }
      if (!any_null && n > 0) {
        // The rows' characters lie one after another: one piece.
        const char* first = c.str(0).data();
        w.bytes(first, static_cast<std::size_t>(c.str(n - 1).data() + c.str(n - 1).size() - first));
        break;
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (valid(i)) {
          auto s = c.str(i);
          w.bytes(s.data(), s.size());
        }
      }
      break;
    }
    case type_id::string_list: {
      // A slice's elements start anywhere in the shared buffers: rebase both offset arrays to 0.
      std::uint32_t elements = 0;
      w.uint(elements);
      for (std::size_t i = 0; i < n; ++i) {
        elements += static_cast<std::uint32_t>(c.list_size(i));
        w.uint(elements);
      }
      std::uint32_t offset = 0;
      w.uint(offset);
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < c.list_size(i); ++j) {
          offset += static_cast<std::uint32_t>(c.list_item(i, j).size());
          w.uint(offset);
        }
      }
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < c.list_size(i); ++j) {
          auto s = c.list_item(i, j);
          w.bytes(s.data(), s.size());
        }
      }
      break;
    }
  }
}

// n little-endian u32 offsets.
void decode_offsets(const std::uint8_t* p, std::size_t n, std::vector<std::uint32_t>& out) {
  out.resize(n);
  if (n == 0) return;  // out.data() may be null, which memcpy must not get
  if constexpr (little_endian) {
    std::memcpy(out.data(), p, n * 4);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = load_le<std::uint32_t>(p + 4 * i);
}

// n 8-byte values (int64, or a double's bits); with nulls, a null row's must be 0.
template <class T, class ExpectZeroIfNull>
void decode_words(const std::uint8_t* p, std::size_t n, std::vector<T>& out, const ExpectZeroIfNull& expect_zero_if_null,
                  bool has_nulls) {
  static_assert(sizeof(T) == 8);
  out.resize(n);
  if (n == 0) return;  // out.data() may be null, which memcpy must not get
  if constexpr (little_endian) std::memcpy(out.data(), p, n * 8);
  else
    for (std::size_t i = 0; i < n; ++i) out[i] = std::bit_cast<T>(load_le<std::uint64_t>(p + 8 * i));
  if (has_nulls)
    for (std::size_t i = 0; i < n; ++i) expect_zero_if_null(i, std::bit_cast<std::uint64_t>(out[i]) == 0);
}

column decode_column(reader& r, const field& f, std::size_t rows) {
  auto data = std::make_shared<column_data>();
  data->type = f.type;
  data->length = rows;
  const std::string where = "column '" + f.name + "'";

  std::uint8_t has_validity = r.uint<std::uint8_t>("validity flag");
  if (has_validity > 1) corrupt("bad validity flag " + std::to_string(has_validity) + " in " + where);
  if (has_validity) {
    const std::uint8_t* bitmap = r.take(bitmap_bytes(rows), "validity bitmap");
    if (rows % 8 != 0 && (bitmap[rows / 8] >> (rows % 8)) != 0) corrupt("padding bits set in " + where);
    data->validity.assign(rows / 64 + 1, 0);
    for (std::size_t i = 0; i < rows; ++i) {
      if ((bitmap[i >> 3] >> (i & 7)) & 1u) {
        data->validity[i >> 6] |= std::uint64_t{1} << (i & 63);
      } else {
        ++data->null_count;
      }
    }
    if (data->null_count == 0) corrupt("validity bitmap without nulls in " + where);
  }
  auto valid = [&](std::size_t i) {
    return data->validity.empty() || ((data->validity[i >> 6] >> (i & 63)) & 1u);
  };
  auto expect_zero_if_null = [&](std::size_t i, bool is_zero) {
    if (!is_zero && !valid(i)) corrupt("non-zero value in null row " + std::to_string(i) + " of " + where);
  };

  switch (f.type) {
    case type_id::boolean: {
      const std::uint8_t* p = r.take(rows, "boolean data");
      data->bools.assign(p, p + rows);
      for (std::size_t i = 0; i < rows; ++i) {
        if (p[i] > 1) corrupt("boolean byte " + std::to_string(p[i]) + " in " + where);
        expect_zero_if_null(i, p[i] == 0);
      }
      break;
    }
    case type_id::int64:
    case type_id::timestamp:
    case type_id::window: {
      decode_words(r.take(rows * 8, "int64 data"), rows, data->ints, expect_zero_if_null, !data->validity.empty());
      if (f.type == type_id::window)
        decode_words(r.take(rows * 8, "window end data"), rows, data->ends, expect_zero_if_null, !data->validity.empty());
      break;
    }
    case type_id::float64: {
      decode_words(r.take(rows * 8, "float64 data"), rows, data->doubles, expect_zero_if_null, !data->validity.empty());
      break;
    }
    case type_id::string: {
      const std::uint8_t* p = r.take((rows + 1) * 4, "string offsets");
      decode_offsets(p, rows + 1, data->offsets);
      if (data->offsets[0] != 0) corrupt("string offsets of " + where + " do not start at 0");
      for (std::size_t i = 0; i < rows; ++i) {
        if (data->offsets[i + 1] < data->offsets[i]) corrupt("decreasing string offsets in " + where);
        expect_zero_if_null(i, data->offsets[i + 1] == data->offsets[i]);
      }
      std::size_t chars = data->offsets[rows];
      const std::uint8_t* c = r.take(chars, "string characters");
      data->chars.assign(reinterpret_cast<const char*>(c), chars);
      break;
    }
    case type_id::string_list: {
      const std::uint8_t* p = r.take((rows + 1) * 4, "list offsets");
      data->list_offsets.resize(rows + 1);
      for (std::size_t i = 0; i <= rows; ++i) data->list_offsets[i] = load_le<std::uint32_t>(p + 4 * i);
      if (data->list_offsets[0] != 0) corrupt("list offsets of " + where + " do not start at 0");
      for (std::size_t i = 0; i < rows; ++i) {
        if (data->list_offsets[i + 1] < data->list_offsets[i]) corrupt("decreasing list offsets in " + where);
        expect_zero_if_null(i, data->list_offsets[i + 1] == data->list_offsets[i]);
      }
      const std::size_t elements = data->list_offsets[rows];
      // Each element takes at least its 4-byte offset, which bounds the allocation below.
      if (elements > r.remaining() / 4) corrupt("element count " + std::to_string(elements) + " exceeds the input");
      const std::uint8_t* e = r.take((elements + 1) * 4, "element offsets");
      data->offsets.resize(elements + 1);
      for (std::size_t i = 0; i <= elements; ++i) data->offsets[i] = load_le<std::uint32_t>(e + 4 * i);
      if (data->offsets[0] != 0) corrupt("element offsets of " + where + " do not start at 0");
      for (std::size_t i = 0; i < elements; ++i) {
        if (data->offsets[i + 1] < data->offsets[i]) corrupt("decreasing element offsets in " + where);
      }
      std::size_t chars = data->offsets[elements];
      const std::uint8_t* c = r.take(chars, "list characters");
      data->chars.assign(reinterpret_cast<const char*>(c), chars);
      break;
    }
  }
  return column(std::move(data));
}

template <class Writer>
void encode_batch(Writer& w, const batch& b) {
  w.bytes(magic, sizeof magic);
  w.uint(format_version);
  w.uint(static_cast<std::uint32_t>(b.num_columns()));
  for (const auto& f : b.schema().fields()) {
    w.uint(static_cast<std::uint32_t>(f.name.size()));
    w.bytes(f.name.data(), f.name.size());
    w.uint(static_cast<std::uint8_t>(f.type));
    w.template uint<std::uint8_t>(f.nullable ? 1 : 0);
  }
  w.uint(static_cast<std::uint64_t>(b.num_rows()));
  for (const auto& c : b.columns()) encode_column(w, c);
}

}  // namespace

std::size_t encoded_size(const batch& b) {
  counting_writer w;
  encode_batch(w, b);
  return w.size();
}

std::vector<std::uint8_t> encode(const batch& b) {
  vector_writer w(encoded_size(b));
  encode_batch(w, b);
  return w.take();
}

void encode_to(const batch& b, const std::function<void(const void*, std::size_t)>& out) {
  piece_writer w(out);
  encode_batch(w, b);
  w.flush();
}

batch decode_batch(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr && size != 0) corrupt("null data pointer");
  reader r(data, size);
  if (std::memcmp(r.take(sizeof magic, "magic"), magic, sizeof magic) != 0) corrupt("bad magic (expected LFB1)");
  auto version = r.uint<std::uint16_t>("version");
  if (version != format_version) corrupt("unsupported version " + std::to_string(version));

  auto field_count = r.uint<std::uint32_t>("field count");
  // Each field takes at least 6 bytes, which bounds the allocation below.
  if (field_count > r.remaining() / 6) corrupt("field count " + std::to_string(field_count) + " exceeds the input");
  std::vector<field> fields;
  fields.reserve(field_count);
  for (std::uint32_t i = 0; i < field_count; ++i) {
    auto name_length = r.uint<std::uint32_t>("field name length");
    const std::uint8_t* name = r.take(name_length, "field name");
    auto type = r.uint<std::uint8_t>("field type");
    if (type > static_cast<std::uint8_t>(type_id::string_list)) corrupt("unknown type " + std::to_string(type));
    auto nullable = r.uint<std::uint8_t>("nullability");
    if (nullable > 1) corrupt("bad nullability flag " + std::to_string(nullable));
    fields.push_back(field{std::string(reinterpret_cast<const char*>(name), name_length),
                           static_cast<type_id>(type), nullable == 1});
  }
  auto rows64 = r.uint<std::uint64_t>("row count");
  if (fields.empty() && rows64 != 0) corrupt("rows without columns");
  for (const auto& f : fields) {
    // Reject absurd row counts before allocating anything for them.
    if (rows64 > r.remaining() / min_bytes_per_row(f.type)) corrupt("row count " + std::to_string(rows64) + " exceeds the input");
  }
  auto rows = static_cast<std::size_t>(rows64);

  auto schema = make_schema(std::move(fields));
  std::vector<column> columns;
  columns.reserve(schema->size());
  for (const auto& f : schema->fields()) columns.push_back(decode_column(r, f, rows));
  if (r.remaining() != 0) corrupt(std::to_string(r.remaining()) + " trailing bytes");
  return batch(std::move(schema), std::move(columns));
}

}  // namespace flow
