#include <catch2/catch.hpp>

#include <algorithm>

#include "flow/batch.hpp"
#include "flow/batch_pieces.hpp"
#include "test_support.hpp"

using namespace flow;

namespace {

timestamp ts(std::string_view text) { return *parse_timestamp(text); }

batch every_type_batch() {
  auto s = make_schema({{"flag", type_id::boolean},
                        {"quantity", type_id::int64, false},
                        {"price", type_id::float64},
                        {"description", type_id::string},
                        {"invoice_date", type_id::timestamp},
                        {"window", type_id::window}});
  window_value w{ts("2010-12-01 08:00:00"), ts("2010-12-01 09:00:00")};
  std::vector<std::vector<value>> rows;
  for (int i = 0; i < 75; ++i) {
    if (i % 7 == 3) {
      rows.push_back({value{}, std::int64_t{i}, value{}, value{}, value{}, value{}});
    } else {
      rows.push_back({i % 2 == 0, std::int64_t{-i}, i * 1.25, std::string(static_cast<std::size_t>(i % 5), 'x'),
                      timestamp{w.start.micros + i}, w});
    }
  }
  rows[10][2] = std::nan("");
  rows[11][2] = -0.0;
  rows[12][3] = std::string("Señor \"quoted\", with comma");
  return make_batch(s, rows);
}

}  // namespace

TEST_CASE("encode/decode round trips every type with nulls", "[encoding]") {
  auto b = every_type_batch();
  auto bytes = flow::test::check_encoding_round_trip(b);
  CHECK(std::string(bytes.begin(), bytes.begin() + 4) == "LFB1");
  auto decoded = decode_batch(bytes);
  CHECK(decoded.schema() == b.schema());
  CHECK_FALSE(decoded.schema()[1].nullable);
}

TEST_CASE("a slice encodes exactly like a fresh batch of the same rows", "[encoding]") {
  auto b = every_type_batch();
  flow::test::check_slices_encode_as_fresh(b, {{0, 0}, {1, 1}, {3, 1}, {5, 60}, {13, 62}, {74, 1}, {64, 11}});
  // A slice without nulls of a column with nulls carries no validity bitmap.
  auto no_nulls = b.slice(4, 3);
  CHECK(decode_batch(encode(no_nulls)).col(0).data()->validity.empty());
}

TEST_CASE("empty batches and batches without columns round trip", "[encoding]") {
  CHECK(decode_batch(encode(batch())) == batch());
  auto e = batch::empty(every_type_batch().schema_ref());
  CHECK(decode_batch(encode(e)) == e);
}

TEST_CASE("decode rejects bad magic, versions and trailing bytes", "[encoding]") {
  auto bytes = encode(every_type_batch());
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  CHECK_THROWS_WITH(decode_batch(bad_magic), Catch::StartsWith("corrupt batch encoding: bad magic"));
  auto bad_version = bytes;
  bad_version[4] = 9;
  CHECK_THROWS_WITH(decode_batch(bad_version), Catch::Contains("unsupported version 9"));
  auto trailing = bytes;
  trailing.push_back(0);
  CHECK_THROWS_WITH(decode_batch(trailing), Catch::Contains("1 trailing bytes"));
  CHECK_THROWS_AS(decode_batch(nullptr, 0), flow::error);
  CHECK_THROWS_AS(decode_batch(std::vector<std::uint8_t>{}), flow::error);
}

TEST_CASE("decode survives truncation at every position", "[encoding][fuzz]") {
  flow::test::check_truncations_refused(encode(every_type_batch().slice(2, 20)));
}

TEST_CASE("decode of flipped bytes throws or yields a batch that re-encodes identically", "[encoding][fuzz]") {
  auto [decoded, rejected] = flow::test::check_flipped_bytes(encode(every_type_batch().slice(1, 30)), 1234);
  // Data bytes decode to other values; header, length and flag bytes are caught.
  CHECK(decoded > 0);
  CHECK(rejected > 0);
}

TEST_CASE("decode rejects huge lengths without allocating them", "[encoding][fuzz]") {
  auto bytes = encode(make_batch(make_schema({{"x", type_id::int64}}), {{std::int64_t{1}}}));
  // The row count follows magic (4), version (2), field count (4) and the field (4 + 1 + 1 + 1).
  std::size_t rows_at = 4 + 2 + 4 + 4 + 1 + 1 + 1;
  for (std::size_t i = 0; i < 8; ++i) bytes[rows_at + i] = 0xff;
  CHECK_THROWS_WITH(decode_batch(bytes), Catch::Contains("row count"));
  auto names = encode(make_batch(make_schema({{"x", type_id::int64}}), {}));
  for (std::size_t i = 6; i < 10; ++i) names[i] = 0xff;
  CHECK_THROWS_WITH(decode_batch(names), Catch::Contains("field count"));
}

TEST_CASE("encode_to hands encode's bytes in pieces, a column without nulls in one piece", "[encoding]") {
  for (const auto& b : {every_type_batch(), every_type_batch().slice(3, 40), batch()}) {
    std::vector<std::uint8_t> joined;
    std::size_t pieces = 0;
    if (b.valid())
      encode_to(b, [&](const void* piece, std::size_t n) {
        const auto* bytes = static_cast<const std::uint8_t*>(piece);
        joined.insert(joined.end(), bytes, bytes + n);
        ++pieces;
      });
    CHECK(joined == (b.valid() ? encode(b) : std::vector<std::uint8_t>{}));
    if (b.valid()) CHECK(encoded_size(b) == joined.size());
  }
  // 4096 rows of int64 and of 100-byte strings: the ints and the characters pass where they lie.
  std::vector<std::vector<value>> rows;
  for (std::int64_t i = 0; i < 4096; ++i) rows.push_back({i, std::string(100, static_cast<char>('a' + i % 26))});
  const auto large = make_batch(make_schema({{"n", type_id::int64, false}, {"s", type_id::string, false}}), rows);
  std::vector<std::size_t> sizes;
  encode_to(large, [&](const void*, std::size_t n) { sizes.push_back(n); });
  CHECK(std::count(sizes.begin(), sizes.end(), std::size_t{4096 * 8}) == 1);
  CHECK(std::count(sizes.begin(), sizes.end(), std::size_t{4096 * 100}) == 1);
  CHECK(decode_batch(encode(large)) == large);
}
