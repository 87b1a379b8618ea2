#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "flow/keyed_operator.hpp"
#include "flow/keys.hpp"
#include "flow/operators.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;

namespace {

const double nan_value = std::numeric_limits<double>::quiet_NaN();

// A key cell as Spark groups it: -0.0 is 0.0, every NaN is one NaN (written independently of the encoder).
std::string group_text(const batch& b, std::size_t row, std::size_t c) {
  const value v = b.at(row, c);
  if (const double* d = std::get_if<double>(&v)) {
    if (std::isnan(*d)) return "NaN";
    if (*d == 0.0) return "0";
  }
  return is_null(v) ? "<null>" : to_string(v);
}

std::string key_text(const batch& b, std::size_t row, const std::vector<std::size_t>& keys) {
  std::string text;
  for (auto k : keys) text += group_text(b, row, k) + "|";
  return text;
}

// A row exactly (-0.0 and 0.0 apart, NaN printed as such).
std::string row_text(const batch& b, std::size_t row) {
  std::string text;
  for (std::size_t c = 0; c < b.num_columns(); ++c)
    text += (b.col(c).valid(row) ? to_string(b.at(row, c)) : "<null>") + "|";
  return text;
}

schema_ptr key_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"i", type_id::int64, true},
                      {"d", type_id::float64, true},
                      {"b", type_id::boolean, true},
                      {"s", type_id::string, true},
                      {"t", type_id::timestamp, true},
                      {"w", type_id::window, true}});
}
enum key_column : std::size_t { id_col, int_col, double_col, bool_col, string_col, time_col, window_col };

// Rows with keys from small domains (so keys repeat), about one in seven null, the doubles including
// -0.0, 0.0 and NaNs of different bits, the strings of lengths 0 to 40. Ids from first_id on.
batch random_keys(std::size_t rows, unsigned seed, std::int64_t first_id = 0) {
  std::mt19937 rng(seed);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::vector<double> doubles{0.0, -0.0, nan_value, -nan_value, std::bit_cast<double>(0x7ff8000000000123ULL),
                                    1.5, -2.25, 1e300, std::numeric_limits<double>::infinity()};
  const std::int64_t hour = 3600LL * 1000000;
  const schema_ptr schema = key_schema();
  std::vector<column_builder> builders;
  for (const auto& f : schema->fields()) builders.emplace_back(f.type, rows);
  for (std::size_t r = 0; r < rows; ++r) {
    builders[id_col].append_int(first_id + static_cast<std::int64_t>(r));
    for (std::size_t c = int_col; c <= window_col; ++c) {
      if (pick(7) == 0) {
        builders[c].append_null();
        continue;
      }
      switch (c) {
        case int_col: builders[c].append_int(static_cast<std::int64_t>(pick(40)) - 20); break;
        case double_col: builders[c].append_double(doubles[pick(doubles.size())]); break;
        case bool_col: builders[c].append_bool(pick(2) == 1); break;
        case string_col: builders[c].append_string(std::string(pick(41), static_cast<char>('a' + pick(2)))); break;
        case time_col: builders[c].append_timestamp(timestamp{static_cast<std::int64_t>(pick(30)) * 1000}); break;
        case window_col: {
          const auto start = static_cast<std::int64_t>(pick(12)) * hour;
          const auto length = hour * static_cast<std::int64_t>(1 + pick(2));
          builders[c].append_window({timestamp{start}, timestamp{start + length}});
          break;
        }
        default: break;
      }
    }
  }
  std::vector<column> columns;
  for (auto& builder : builders) columns.push_back(builder.finish());
  return batch(schema, std::move(columns));
}

// The rows of b in a shuffled order.
batch shuffled(const batch& b, unsigned seed) {
  std::vector<std::uint32_t> order(b.num_rows());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  std::vector<column> columns;
  for (const auto& c : b.columns()) columns.push_back(take_rows(c, order));
  return batch(b.schema_ref(), std::move(columns));
}

// Partitions b and checks each part against the input: its rows are input rows in input order (ids
// ascending), together exactly the input; records the part of every key in part_of, or checks it there.
void check_parts(const batch& b, const std::vector<std::size_t>& keys, std::size_t n,
                 std::map<std::string, std::size_t>& part_of) {
  const auto parts = hash_partition(b, keys, n);
  REQUIRE(parts.size() == n);
  std::map<std::int64_t, std::size_t> row_of_id;
  for (std::size_t r = 0; r < b.num_rows(); ++r) row_of_id[b.col(id_col).ints()[r]] = r;
  std::multiset<std::string> input_rows, output_rows;
  for (std::size_t r = 0; r < b.num_rows(); ++r) input_rows.insert(row_text(b, r));
  for (std::size_t p = 0; p < n; ++p) {
    const batch& part = parts[p];
    REQUIRE(part.schema() == b.schema());
    std::size_t previous_input_row = 0;
    for (std::size_t r = 0; r < part.num_rows(); ++r) {
      output_rows.insert(row_text(part, r));
      const std::size_t input_row = row_of_id.at(part.col(id_col).ints()[r]);
      if (r > 0) CHECK(input_row > previous_input_row);
      previous_input_row = input_row;
      CHECK(row_text(part, r) == row_text(b, input_row));
      const auto [known, added] = part_of.emplace(key_text(part, r, keys), p);
      INFO("key " << known->first);
      CHECK(known->second == p);
    }
  }
  CHECK(output_rows == input_rows);
}

std::size_t nonempty_parts(const std::map<std::string, std::size_t>& part_of) {
  std::set<std::size_t> used;
  for (const auto& [key, part] : part_of) used.insert(part);
  return used.size();
}

}  // namespace

TEST_CASE("hash_partition: equal keys land in the same part across batches and row orders", "[keys]") {
  const batch first = random_keys(3000, 1);
  const batch second = shuffled(random_keys(2000, 2, 3000), 3);
  const std::vector<std::pair<const char*, std::vector<std::size_t>>> key_sets{
      {"int64", {int_col}},
      {"float64", {double_col}},
      {"boolean", {bool_col}},
      {"string", {string_col}},
      {"timestamp", {time_col}},
      {"window", {window_col}},
      {"every fixed-width type", {int_col, double_col, bool_col, time_col, window_col}},
      {"strings with other types", {window_col, string_col, double_col, bool_col}},
      {"no key", {}}};
  for (const auto& [name, keys] : key_sets) {
    for (std::size_t n : {2, 3, 8}) {
      SECTION(std::string(name) + ", " + std::to_string(n) + " parts") {
        std::map<std::string, std::size_t> part_of;
        check_parts(first, keys, n, part_of);
        const std::size_t keys_seen = part_of.size();
        check_parts(shuffled(first, 4), keys, n, part_of);
        CHECK(part_of.size() == keys_seen);
        // Other batches: slices of another shuffled one, and rows of both.
        for (std::size_t offset = 0; offset < second.num_rows(); offset += 700)
          check_parts(second.slice(offset, std::min<std::size_t>(700, second.num_rows() - offset)), keys, n, part_of);
        check_parts(shuffled(concat({first, second}), 5), keys, n, part_of);
        if (part_of.size() >= 8) CHECK(nonempty_parts(part_of) > 1);  // the hash spreads keys
        if (keys.empty()) CHECK(part_of.size() == 1);
      }
    }
  }
}

TEST_CASE("encode_keys: -0.0 is 0.0 and every NaN is one NaN, as Spark groups them", "[keys]") {
  const std::vector<double> zeros{0.0, -0.0}, nans{nan_value, -nan_value, std::bit_cast<double>(0x7ff8000000000123ULL),
                                                    std::bit_cast<double>(0x7ff0000000000001ULL)};
  std::vector<double> values = zeros;
  values.insert(values.end(), nans.begin(), nans.end());
  values.push_back(1.0);
  const column d = make_double_column(values);
  const column s = make_string_column(std::vector<std::string>(values.size(), "x"));
  for (const auto& keys : {std::vector<column>{d}, std::vector<column>{s, d}}) {
    const auto enc = encode_keys(keys, values.size());
    CHECK(enc.fixed() == (keys.size() == 1));
    CHECK(enc.hashes[0] == enc.hashes[1]);
    for (std::size_t i = 3; i < 6; ++i) CHECK(enc.hashes[i] == enc.hashes[2]);
    CHECK(enc.hashes[0] != enc.hashes[2]);
    CHECK(enc.hashes[6] != enc.hashes[0]);
    CHECK(enc.hashes[6] != enc.hashes[2]);
    if (enc.fixed()) {
      CHECK(std::equal(enc.row_words(0), enc.row_words(1), enc.row_words(1)));
    } else {
      CHECK(enc.row_bytes(0) == enc.row_bytes(1));
      CHECK(enc.row_bytes(2) == enc.row_bytes(5));
    }
    const batch b(make_schema({{"s", type_id::string, false}, {"d", type_id::float64, false}}), {s, d});
    const auto key_columns = keys.size() == 1 ? std::vector<std::size_t>{1} : std::vector<std::size_t>{0, 1};
    for (std::size_t n = 2; n <= 16; ++n) {
      const auto parts = hash_partition(b, key_columns, n);
      std::size_t zero_parts = 0, nan_parts = 0;
      for (const auto& part : parts) {
        std::size_t part_zeros = 0, part_nans = 0;
        for (std::size_t r = 0; r < part.num_rows(); ++r) {
          const double v = part.col(1).doubles()[r];
          part_zeros += v == 0.0;
          part_nans += std::isnan(v);
        }
        if (part_zeros) CHECK(part_zeros == zeros.size());
        if (part_nans) CHECK(part_nans == nans.size());
        zero_parts += part_zeros != 0;
        nan_parts += part_nans != 0;
      }
      CHECK(zero_parts == 1);
      CHECK(nan_parts == 1);
    }
  }
}

TEST_CASE("encode_keys: a null key is one key, apart from zero, false, the empty string and epoch 0", "[keys]") {
  auto with_null = [](type_id type, const value& zero) {
    return make_column(type, {null_value{}, zero, null_value{}});
  };
  const std::vector<column> columns{with_null(type_id::int64, std::int64_t{0}), with_null(type_id::float64, 0.0),
                                    with_null(type_id::boolean, false), with_null(type_id::string, std::string()),
                                    with_null(type_id::timestamp, timestamp{0}),
                                    with_null(type_id::window, window_value{timestamp{0}, timestamp{0}})};
  for (const auto& c : columns) {
    INFO(type_name(c.type()));
    for (const auto& keys : {std::vector<column>{c}, std::vector<column>{c, make_string_column({"x", "x", "x"})}}) {
      const auto enc = encode_keys(keys, 3);
      CHECK(enc.hashes[0] == enc.hashes[2]);
      CHECK(enc.hashes[0] != enc.hashes[1]);
      if (enc.fixed()) {
        CHECK(std::equal(enc.row_words(0), enc.row_words(1), enc.row_words(2)));
        CHECK(!std::equal(enc.row_words(0), enc.row_words(1), enc.row_words(1)));
      } else {
        CHECK(enc.row_bytes(0) == enc.row_bytes(2));
        CHECK(enc.row_bytes(0) != enc.row_bytes(1));
      }
    }
  }
  // Which key is null matters: (null, 0) is not (0, null).
  const auto enc = encode_keys({make_column(type_id::int64, {null_value{}, std::int64_t{0}}),
                                make_column(type_id::int64, {std::int64_t{0}, null_value{}})}, 2);
  CHECK(!std::equal(enc.row_words(0), enc.row_words(1), enc.row_words(1)));
}

TEST_CASE("encode_keys: strings of every length up to 40 are told apart and keep their part", "[keys]") {
  std::vector<std::string> strings;
  for (std::size_t length = 0; length <= 40; ++length) {
    strings.push_back(std::string(length, 'k'));
    if (length == 0) continue;
    strings.push_back(std::string(length, 'k'));
    strings.back().back() = 'z';  // differs in the last byte only
  }
  strings.push_back(std::string("kk\0", 3));  // a trailing NUL is part of the string
  const auto enc = encode_keys({make_string_column(strings)}, strings.size());
  std::set<std::string_view> distinct;
  for (std::size_t i = 0; i < strings.size(); ++i) distinct.insert(enc.row_bytes(i));
  CHECK(distinct.size() == strings.size());
  CHECK(std::set<std::uint64_t>(enc.hashes.begin(), enc.hashes.end()).size() == strings.size());

  // Two string keys: the length of the first keeps ("ab", "c") apart from ("a", "bc").
  const auto pairs = encode_keys({make_string_column({"ab", "a"}), make_string_column({"c", "bc"})}, 2);
  CHECK(pairs.row_bytes(0) != pairs.row_bytes(1));

  // The same strings in other batches and orders land in the same part.
  std::vector<std::string> reversed(strings.rbegin(), strings.rend());
  const auto string_batch = [](const std::vector<std::string>& values) {
    std::vector<std::int64_t> ids(values.size());
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
    return batch(make_schema({{"id", type_id::int64, false}, {"s", type_id::string, false}}),
                 {make_int_column(ids), make_string_column(values)});
  };
  std::map<std::string, std::size_t> part_of;
  check_parts(string_batch(strings), {1}, 5, part_of);
  check_parts(string_batch(reversed), {1}, 5, part_of);
  check_parts(string_batch({strings.begin() + 7, strings.begin() + 30}), {1}, 5, part_of);
  CHECK(part_of.size() == strings.size());
  CHECK(nonempty_parts(part_of) > 1);
}

TEST_CASE("hash_keys: the hash encode_keys gives each row, for every key type, null or not, in both layouts",
          "[keys]") {
  const batch b = random_keys(500, 11);
  // Key lists that put strings at every offset of a hash word (the cells before them are 2 to 17 bytes).
  const std::vector<std::vector<std::size_t>> key_lists{
      {string_col},         {int_col},           {double_col, bool_col},           {window_col, time_col},
      {bool_col, string_col}, {int_col, string_col}, {string_col, string_col, bool_col}, {window_col, string_col, double_col},
      {bool_col, bool_col, string_col}, {id_col, int_col, double_col, bool_col, string_col, time_col, window_col}};
  for (const auto& keys : key_lists) {
    std::vector<column> columns;
    for (auto k : keys) columns.push_back(b.col(k));
    INFO("key columns: " << keys.size() << ", the first " << keys.front());
    CHECK(hash_keys(columns, b.num_rows()) == encode_keys(columns, b.num_rows()).hashes);
  }
}

TEST_CASE("hash_partition: one part is the input itself", "[keys]") {
  const batch b = random_keys(100, 6);
  const auto parts = hash_partition(b, {string_col, double_col}, 1);
  REQUIRE(parts.size() == 1);
  CHECK(parts[0].col(id_col).data() == b.col(id_col).data());  // not a copy
  CHECK(parts[0].num_rows() == b.num_rows());
  const auto empty = hash_partition(b.slice(0, 0), {int_col}, 3);
  REQUIRE(empty.size() == 3);
  for (const auto& part : empty) CHECK(part.num_rows() == 0);
}

TEST_CASE("hash_partition: a part selects its rows of the input's columns, copied only when read", "[keys]") {
  const batch b = random_keys(200, 7);
  std::map<std::string, std::size_t> part_of;
  const auto parts = hash_partition(b, {string_col}, 3);
  REQUIRE(parts.size() == 3);
  for (const auto& part : parts) {
    REQUIRE(part.selection() != nullptr);
    for (std::size_t c = 0; c < b.num_columns(); ++c) CHECK(part.base_col(c).data() == b.col(c).data());
  }
  check_parts(b, {string_col}, 3, part_of);
  // A selected input (a filter's output): its parts select from the same base columns, the rows composed.
  std::vector<std::uint32_t> every_third;
  for (std::uint32_t r = 0; r < b.num_rows(); r += 3) every_third.push_back(r);
  const batch kept = batch::selected(b.schema_ref(), b.columns(), std::make_shared<const std::vector<std::uint32_t>>(every_third));
  for (const auto& part : hash_partition(kept, {string_col}, 3))
    for (std::size_t c = 0; c < b.num_columns(); ++c) CHECK(part.base_col(c).data() == b.col(c).data());
  part_of.clear();
  check_parts(kept, {string_col}, 3, part_of);
  CHECK(nonempty_parts(part_of) == 3);
}

TEST_CASE("hash_partition: with hand_on_keys each part carries its rows' encoded keys", "[keys]") {
  const batch b = random_keys(300, 8);
  std::vector<std::uint32_t> every_other;
  for (std::uint32_t r = 1; r < b.num_rows(); r += 2) every_other.push_back(r);
  const batch kept = batch::selected(b.schema_ref(), b.columns(), std::make_shared<const std::vector<std::uint32_t>>(every_other));
  for (const auto& keys : {std::vector<std::size_t>{string_col, int_col}, std::vector<std::size_t>{int_col, double_col}}) {
    for (const batch& input : {b, kept}) {
      INFO("first key column " << keys.front() << ", selected input: " << (input.selection() != nullptr));
      CHECK(hash_partition(input, keys, 3)[0].attached_keys() == nullptr);
      const auto parts = hash_partition(input, keys, 3, true);
      const auto plain = hash_partition(input, keys, 3);
      REQUIRE(parts.size() == 3);
      std::size_t rows = 0;
      for (std::size_t p = 0; p < parts.size(); ++p) {
        CHECK(parts[p] == plain[p]);
        const encoded_key_columns* attached = parts[p].attached_keys();
        REQUIRE(attached != nullptr);
        CHECK(attached->columns == keys);
        std::vector<column> columns;
        for (auto k : keys) columns.push_back(parts[p].col(k));
        const encoded_keys expected = encode_keys(columns, parts[p].num_rows());
        const row_keys got(attached->keys, attached->rows);
        REQUIRE(got.size() == parts[p].num_rows());
        for (std::size_t i = 0; i < got.size(); ++i) {
          CHECK(got[i].bytes == expected.key(i));
          CHECK(got[i].hash == expected.hashes[i]);
        }
        rows += got.size();
        // A batch made from a part has no keys attached: its rows are others.
        CHECK(parts[p].slice(0, parts[p].num_rows()).attached_keys() == nullptr);
        // Keys are attached only to a batch of as many rows.
        CHECK_THROWS_WITH(input.with_attached_keys(std::make_shared<const encoded_key_columns>(*attached)),
                          Catch::Contains(std::to_string(got.size()) + " keys for a batch of " + std::to_string(input.num_rows()) + " rows"));
      }
      CHECK(rows == input.num_rows());
    }
  }
}

TEST_CASE("hash_partition and encode_keys refuse bad arguments with a clear error", "[keys]") {
  const batch b = random_keys(10, 7);
  CHECK(error_of([&] { hash_partition(b, {int_col}, 0); }) == "hash_partition: the number of parts must be at least 1");
  CHECK(error_of([&] { hash_partition(b, {int_col, 9}, 2); }) ==
        "hash_partition: key column 9 does not exist; the batch has 7 columns (" + b.schema().to_string() + ")");
  const batch lists(make_schema({{"tags", type_id::string_list, true}}), {make_string_list_column({{"a"}, {"b"}})});
  CHECK_THAT(error_of([&] { hash_partition(lists, {0}, 2); }),
             Catch::Contains("key column 'tags' is array<string>, which cannot be a partitioning key"));
  CHECK_THAT(error_of([&] { key_layout({type_id::int64, type_id::string_list}); }),
             Catch::Contains("key 1 is array<string>"));
  const key_layout ints({type_id::int64});
  CHECK(error_of([&] { encode_keys(ints, {b.col(string_col)}, 10); }) ==
        "encode_keys: key column 0 is string, but the layout expects int64");
  CHECK(error_of([&] { encode_keys(ints, {b.col(int_col)}, 11); }) ==
        "encode_keys: key column 0 has 10 rows, expected 11");
  CHECK(error_of([&] { encode_keys(ints, {}, 10); }) == "encode_keys: 0 key columns, but the layout has 1");
}

TEST_CASE("the aggregation partitions with the shared encoder", "[keys][aggregate]") {
  const batch b = random_keys(2000, 8);
  for (const auto& keys : {std::vector<std::string>{"i", "w"}, std::vector<std::string>{"s", "d"}}) {
    std::vector<expr> key_exprs;
    for (const auto& k : keys) key_exprs.push_back(col(k));
    aggregate_operator op(b.schema_ref(), key_exprs, {{agg_kind::count, {}, {}}});
    auto state = op.make_state();
    state->update(b);
    const batch snapshot = state->snapshot();
    const auto from_aggregate = op.partition(snapshot, 4);
    const auto from_keys = hash_partition(snapshot, {0, 1}, 4);
    REQUIRE(from_aggregate.size() == from_keys.size());
    for (std::size_t p = 0; p < from_keys.size(); ++p) {
      REQUIRE(from_aggregate[p].num_rows() == from_keys[p].num_rows());
      for (std::size_t r = 0; r < from_keys[p].num_rows(); ++r)
        CHECK(row_text(from_aggregate[p], r) == row_text(from_keys[p], r));
    }
  }
}

TEST_CASE("the aggregation tells apart keys that differ only in which of 65 keys is null", "[keys][aggregate]") {
  // More keys than a null-mask word has bits: the keys are encoded as bytes.
  CHECK(key_layout(std::vector<type_id>(64, type_id::int64)).fixed());
  CHECK(!key_layout(std::vector<type_id>(65, type_id::int64)).fixed());
  std::vector<field> fields;
  std::vector<column> columns;
  std::vector<expr> keys;
  for (std::size_t k = 0; k < 65; ++k) {
    std::string name = "k";
    name += std::to_string(k);  // (not "k" + to_string(k): a false GCC 12 -Wrestrict warning)
    fields.push_back({name, type_id::int64, true});
    keys.push_back(col(name));
    // Row 0 has key 0 null, row 1 has key 64 null; every other value is 0.
    columns.push_back(make_column(type_id::int64, {k == 0 ? value{null_value{}} : value{std::int64_t{0}},
                                                   k == 64 ? value{null_value{}} : value{std::int64_t{0}}}));
  }
  const batch b(make_schema(fields), columns);
  aggregate_operator op(b.schema_ref(), keys, {{agg_kind::count, {}, {}}});
  auto state = op.make_state();
  state->update(b);
  CHECK(state->num_groups() == 2);
}

TEST_CASE("decode_key: every key type, null or not, in both layouts, reads back what was encoded", "[keys][decode]") {
  const window_value w{timestamp{3600000000}, timestamp{7200000000}};
  const std::vector<column> fixed_columns{
      make_column(type_id::int64, {std::int64_t{-5}, null_value{}, std::int64_t{INT64_MIN}}),
      make_column(type_id::float64, {-0.0, 2.5, null_value{}}),
      make_column(type_id::boolean, {true, false, null_value{}}),
      make_column(type_id::timestamp, {timestamp{-1}, null_value{}, timestamp{42}}),
      make_column(type_id::window, {w, null_value{}, window_value{}})};
  std::vector<column> generic_columns = fixed_columns;
  generic_columns.push_back(make_column(type_id::string, {std::string("Ünïcode, 20 bytes.."), null_value{}, std::string()}));
  for (const auto& columns : {fixed_columns, generic_columns}) {
    std::vector<type_id> types;
    for (const auto& c : columns) types.push_back(c.type());
    const key_layout layout(types);
    CHECK(layout.fixed() == (columns.size() == fixed_columns.size()));
    const auto enc = encode_keys(layout, columns, 3);
    std::vector<column_builder> builders;
    for (auto t : types) builders.emplace_back(t);
    for (std::size_t row = 0; row < 3; ++row) {
      const auto values = decode_key(layout, enc.key(row));
      REQUIRE(values.size() == columns.size());
      for (std::size_t k = 0; k < columns.size(); ++k) {
        INFO("row " << row << ", key " << k);
        value expected = columns[k].at(row);
        if (auto* d = std::get_if<double>(&expected)) *d = normalized_key(*d);
        CHECK(values[k] == expected);
        if (auto* d = std::get_if<double>(&values[k])) CHECK(!std::signbit(*d));  // -0.0 decodes as 0.0
      }
      append_decoded_key(layout, enc.key(row), builders);
    }
    // The decoded columns encode to the same keys.
    std::vector<column> decoded;
    for (auto& b : builders) decoded.push_back(b.finish());
    const auto again = encode_keys(layout, decoded, 3);
    for (std::size_t row = 0; row < 3; ++row) {
      CHECK(again.key(row) == enc.key(row));
      CHECK(again.hashes[row] == enc.hashes[row]);
    }
  }
}

TEST_CASE("decode_key refuses a key of another layout with a clear error", "[keys][decode]") {
  const key_layout ints({type_id::int64});
  const key_layout text({type_id::string, type_id::int64});
  const auto enc = encode_keys(text, {make_string_column({"abc"}), make_int_column({1})}, 1);
  CHECK_THAT(error_of([&] { decode_key(ints, enc.key(0)); }), Catch::Contains("encoded for other key types"));
  CHECK_THAT(error_of([&] { decode_key(text, enc.key(0).substr(0, 6)); }), Catch::Contains("does not hold the 2 keys"));
  CHECK_THAT(error_of([&] { decode_key(text, std::string(enc.key(0)) + "x"); }), Catch::Contains("does not hold"));
  std::vector<column_builder> wrong;
  wrong.emplace_back(type_id::int64);
  wrong.emplace_back(type_id::int64);
  CHECK_THAT(error_of([&] { append_decoded_key(text, enc.key(0), wrong); }),
             Catch::Contains("key 0 is string, but its column is int64"));
}
