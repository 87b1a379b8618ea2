// The element types of a flow::dstream and how they travel as rows: a scalar (std::string, std::int64_t,
// double, bool) is one column "value"; a std::pair<K, V> of scalars (the *_by_key family) is the columns
// "key" and "value". dstream_codec<T> reads and writes them, encodes them as bytes (state) and prints
// them as Spark's DStream.print() does.
#pragma once

#include <concepts>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flow/batch.hpp"

namespace flow {

template <class T>
concept dstream_scalar = std::same_as<T, std::string> || std::same_as<T, std::int64_t> || std::same_as<T, double> ||
                         std::same_as<T, bool>;

namespace dstream_detail {

template <dstream_scalar T>
constexpr type_id type_of_scalar() {
  if constexpr (std::same_as<T, std::string>) return type_id::string;
  else if constexpr (std::same_as<T, std::int64_t>) return type_id::int64;
  else if constexpr (std::same_as<T, double>) return type_id::float64;
  else return type_id::boolean;
}

// Row i of c (flow::error naming the column when it is null: a dstream element is never null).
std::string read_scalar(const column& c, std::size_t i, std::string*, std::string_view name);
std::int64_t read_scalar(const column& c, std::size_t i, std::int64_t*, std::string_view name);
double read_scalar(const column& c, std::size_t i, double*, std::string_view name);
bool read_scalar(const column& c, std::size_t i, bool*, std::string_view name);
void append_scalar(column_builder& b, const std::string& v);
void append_scalar(column_builder& b, std::int64_t v);
void append_scalar(column_builder& b, double v);
void append_scalar(column_builder& b, bool v);
// Bytes of a value (little-endian numbers, length-prefixed strings) and back; decode advances in and
// throws flow::error when it is too short.
void encode_scalar(std::string& out, const std::string& v);
void encode_scalar(std::string& out, std::int64_t v);
void encode_scalar(std::string& out, double v);
void encode_scalar(std::string& out, bool v);
void decode_scalar(std::string_view& in, std::string& v);
void decode_scalar(std::string_view& in, std::int64_t& v);
void decode_scalar(std::string_view& in, double& v);
void decode_scalar(std::string_view& in, bool& v);
// As Spark's toString: doubles as Java prints them ("1.0"), booleans as true/false.
void print_scalar(std::ostream& out, const std::string& v);
void print_scalar(std::ostream& out, std::int64_t v);
void print_scalar(std::ostream& out, double v);
void print_scalar(std::ostream& out, bool v);
// flow::error unless the first columns of rows have the types of fields (what = the operation).
void check_columns(const schema& rows, const std::vector<field>& fields, std::string_view what);

template <dstream_scalar T>
std::vector<T> read_column(const batch& rows, std::size_t index) {
  std::vector<T> out;
  out.reserve(rows.num_rows());
  const column& c = rows.col(index);
  const std::string_view name = rows.schema()[index].name;
  for (std::size_t i = 0; i < rows.num_rows(); ++i) out.push_back(read_scalar(c, i, static_cast<T*>(nullptr), name));
  return out;
}

}  // namespace dstream_detail

template <class T>
struct dstream_codec;

template <dstream_scalar T>
struct dstream_codec<T> {
  static std::vector<field> fields() { return {{"value", dstream_detail::type_of_scalar<T>(), false}}; }
  static std::vector<T> read(const batch& rows) { return dstream_detail::read_column<T>(rows, 0); }
  static batch write(const schema_ptr& schema, const std::vector<T>& items) {
    column_builder values(dstream_detail::type_of_scalar<T>(), items.size());
    for (const T& v : items) dstream_detail::append_scalar(values, v);
    return batch(schema, {values.finish()});
  }
  static void encode(std::string& out, const T& v) { dstream_detail::encode_scalar(out, v); }
  static T decode(std::string_view& in) {
    T v{};
    dstream_detail::decode_scalar(in, v);
    return v;
  }
  static void print(std::ostream& out, const T& v) { dstream_detail::print_scalar(out, v); }
};

template <dstream_scalar K, dstream_scalar V>
struct dstream_codec<std::pair<K, V>> {
  static std::vector<field> fields() {
    return {{"key", dstream_detail::type_of_scalar<K>(), false}, {"value", dstream_detail::type_of_scalar<V>(), false}};
  }
  static std::vector<std::pair<K, V>> read(const batch& rows) {
    auto keys = dstream_detail::read_column<K>(rows, 0);
    auto values = dstream_detail::read_column<V>(rows, 1);
    std::vector<std::pair<K, V>> out;
    out.reserve(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) out.emplace_back(std::move(keys[i]), std::move(values[i]));
    return out;
  }
  static batch write(const schema_ptr& schema, const std::vector<std::pair<K, V>>& items) {
    column_builder keys(dstream_detail::type_of_scalar<K>(), items.size());
    column_builder values(dstream_detail::type_of_scalar<V>(), items.size());
    for (const auto& [k, v] : items) {
      dstream_detail::append_scalar(keys, k);
      dstream_detail::append_scalar(values, v);
    }
    return batch(schema, {keys.finish(), values.finish()});
  }
  static void encode(std::string& out, const std::pair<K, V>& v) {
    dstream_detail::encode_scalar(out, v.first);
    dstream_detail::encode_scalar(out, v.second);
  }
  static std::pair<K, V> decode(std::string_view& in) {
    std::pair<K, V> v{};
    dstream_detail::decode_scalar(in, v.first);
    dstream_detail::decode_scalar(in, v.second);
    return v;
  }
  // Spark prints a tuple as (key,value).
  static void print(std::ostream& out, const std::pair<K, V>& v) {
    out << '(';
    dstream_detail::print_scalar(out, v.first);
    out << ',';
    dstream_detail::print_scalar(out, v.second);
    out << ')';
  }
};

template <class T>
concept dstream_element = requires { dstream_codec<T>::fields(); };

template <class T>
schema_ptr dstream_schema() {
  return make_schema(dstream_codec<T>::fields());
}

}  // namespace flow
