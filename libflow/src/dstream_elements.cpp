// dstream elements as columns, bytes and text (flow/dstream_elements.hpp).
#include "flow/dstream_elements.hpp"

#include <bit>
#include <cstring>

namespace flow::dstream_detail {

namespace {

void check_valid(const column& c, std::size_t i, std::string_view name) {
  if (!c.valid(i))
    throw error("dstream: row " + std::to_string(i) + " of column '" + std::string(name) +
                "' is null; dstream elements are never null (filter nulls out of the frame before it becomes a dstream)");
}

void encode_word(std::string& out, std::uint64_t word) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((word >> (8 * i)) & 0xFF);
  out.append(bytes, 8);
}

std::string_view take(std::string_view& in, std::size_t size) {
  if (in.size() < size)
    throw error("dstream state: a stored value is truncated (" + std::to_string(in.size()) + " bytes left, " +
                std::to_string(size) + " needed); the checkpoint is damaged");
  std::string_view taken = in.substr(0, size);
  in.remove_prefix(size);
  return taken;
}

std::uint64_t decode_word(std::string_view& in) {
  const std::string_view bytes = take(in, 8);
  std::uint64_t word = 0;
  for (int i = 0; i < 8; ++i) word |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return word;
}

}  // namespace

std::string read_scalar(const column& c, std::size_t i, std::string*, std::string_view name) {
  check_valid(c, i, name);
  return std::string(c.str(i));
}
std::int64_t read_scalar(const column& c, std::size_t i, std::int64_t*, std::string_view name) {
  check_valid(c, i, name);
  return c.ints()[i];
}
double read_scalar(const column& c, std::size_t i, double*, std::string_view name) {
  check_valid(c, i, name);
  return c.doubles()[i];
}
bool read_scalar(const column& c, std::size_t i, bool*, std::string_view name) {
  check_valid(c, i, name);
  return c.bools()[i] != 0;
}

void append_scalar(column_builder& b, const std::string& v) { b.append_string(v); }
void append_scalar(column_builder& b, std::int64_t v) { b.append_int(v); }
void append_scalar(column_builder& b, double v) { b.append_double(v); }
void append_scalar(column_builder& b, bool v) { b.append_bool(v); }

void encode_scalar(std::string& out, const std::string& v) {
  encode_word(out, v.size());
  out += v;
}
void encode_scalar(std::string& out, std::int64_t v) { encode_word(out, static_cast<std::uint64_t>(v)); }
void encode_scalar(std::string& out, double v) { encode_word(out, std::bit_cast<std::uint64_t>(v)); }
void encode_scalar(std::string& out, bool v) { out += v ? '\1' : '\0'; }

void decode_scalar(std::string_view& in, std::string& v) {
  const std::uint64_t size = decode_word(in);
  v = std::string(take(in, size));
}
void decode_scalar(std::string_view& in, std::int64_t& v) { v = static_cast<std::int64_t>(decode_word(in)); }
void decode_scalar(std::string_view& in, double& v) { v = std::bit_cast<double>(decode_word(in)); }
void decode_scalar(std::string_view& in, bool& v) { v = take(in, 1)[0] != '\0'; }

void print_scalar(std::ostream& out, const std::string& v) { out << v; }
void print_scalar(std::ostream& out, std::int64_t v) { out << v; }
void print_scalar(std::ostream& out, double v) { out << format_double(v); }
void print_scalar(std::ostream& out, bool v) { out << (v ? "true" : "false"); }

void check_columns(const schema& rows, const std::vector<field>& fields, std::string_view what) {
  bool fits = rows.size() >= fields.size();
  for (std::size_t i = 0; fits && i < fields.size(); ++i) fits = rows[i].type == fields[i].type;
  if (fits) return;
  std::string wanted;
  for (const auto& f : fields) wanted += (wanted.empty() ? "" : ", ") + std::string(type_name(f.type));
  throw error(std::string(what) + ": the frame's columns (" + rows.to_string() + ") do not start with the element's (" +
              wanted + "); select and cast them into that order first");
}

}  // namespace flow::dstream_detail
