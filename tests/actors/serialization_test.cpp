#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "../../actors/src/caf_types.hpp"

using namespace flow;

namespace {

timestamp ts(std::string_view text) { return *parse_timestamp(text); }

batch every_type_batch() {
  auto s = make_schema({{"flag", type_id::boolean},
                        {"quantity", type_id::int64},
                        {"price", type_id::float64},
                        {"description", type_id::string},
                        {"invoice_date", type_id::timestamp},
                        {"window", type_id::window}});
  window_value w{ts("2010-12-01 08:00:00"), ts("2010-12-01 09:00:00")};
  return make_batch(s, {{true, std::int64_t{6}, 2.55, std::string("WHITE HANGING HEART"), ts("2010-12-01 08:26:00"), w},
                        {value{}, value{}, value{}, value{}, value{}, value{}},
                        {false, std::int64_t{-1}, 6953.740000000007, std::string(""), ts("2010-12-01 08:28:00"), w},
                        {true, std::int64_t{24}, value{}, std::string("ALARM CLOCK, \"RED\""), value{}, w}});
}

std::vector<char> serialize(const batch& b) {
  std::vector<char> buffer;
  caf::binary_serializer sink{nullptr, buffer};
  auto copy = b;
  auto err = sink(copy);
  REQUIRE_FALSE(err);
  return buffer;
}

batch deserialize(const std::vector<char>& buffer) {
  batch result;
  caf::binary_deserializer source{nullptr, buffer};
  auto err = source(result);
  REQUIRE_FALSE(err);
  return result;
}

struct test_config : caf::actor_system_config {
  test_config() {
    set("scheduler.max-threads", 2);
    add_message_type<batch>("flow::batch");
    add_message_type<raw_chunk>("flow::raw_chunk");
  }
};

}  // namespace

TEST_CASE("a batch round trips through CAF's binary serializer", "[actors][serialization]") {
  auto b = every_type_batch();
  auto bytes = serialize(b);
  auto decoded = deserialize(bytes);
  CHECK(decoded == b);
  CHECK(serialize(decoded) == bytes);
}

TEST_CASE("a slice serializes like the fresh batch of its rows", "[actors][serialization]") {
  auto b = every_type_batch();
  auto slice = b.slice(1, 2);
  auto bytes = serialize(slice);
  auto decoded = deserialize(bytes);
  CHECK(decoded == slice);
  CHECK(decoded.col(0).offset() == 0);
  CHECK(bytes == serialize(concat({slice, batch::empty(b.schema_ref())})));
  CHECK(deserialize(serialize(batch())) == batch());
}

TEST_CASE("a batch decoded where it lies in the buffer leaves the next field in place", "[actors][serialization]") {
  // The bytes a batch took before: a byte sequence of its encode() bytes (CAF's size prefix, then them).
  std::vector<char> buffer, expected;
  auto b = every_type_batch();
  std::string after("the field after the batch");
  caf::binary_serializer sink{nullptr, buffer};
  REQUIRE_FALSE(sink(b, after));
  auto bytes = encode(b);
  caf::binary_serializer expected_sink{nullptr, expected};
  REQUIRE_FALSE(expected_sink(bytes, after));
  CHECK(buffer == expected);

  batch decoded;
  std::string read_after;
  caf::binary_deserializer source{nullptr, buffer};
  REQUIRE_FALSE(source(decoded, read_after));
  CHECK(decoded == b);
  CHECK(read_after == after);
  CHECK(source.remaining() == 0);
}

TEST_CASE("corrupt serialized batches give a CAF error, not a crash", "[actors][serialization]") {
  auto bytes = serialize(every_type_batch());
  for (std::size_t n = 0; n < bytes.size(); n += 7) {
    std::vector<char> truncated(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    batch result;
    caf::binary_deserializer source{nullptr, truncated};
    INFO("truncated to " << n << " bytes");
    CHECK(source(result));
  }
}

TEST_CASE("a raw_chunk sends only its visible bytes", "[actors][serialization]") {
  raw_chunk chunk{std::make_shared<const std::string>("header\nline 2\nline 3\n"), 7, 14, "day.csv", 2};
  std::vector<char> buffer;
  caf::binary_serializer sink{nullptr, buffer};
  REQUIRE_FALSE(sink(chunk));
  raw_chunk copy;
  caf::binary_deserializer source{nullptr, buffer};
  REQUIRE_FALSE(source(copy));
  CHECK(copy.bytes() == "line 2\n");
  CHECK(copy.begin == 0);
  CHECK(copy.buffer->size() == 7);
  CHECK(copy.origin == "day.csv");
  CHECK(copy.first_line == 2);
  // It does not start its file, so a receiving decoder must not take its first line for a header.
  CHECK_FALSE(copy.starts_file());
  CHECK(chunk.starts_file() == copy.starts_file());
  CHECK_FALSE(copy.framed_messages);

  // A push source's csv messages stay messages on the receiving node.
  raw_chunk messages{std::make_shared<const std::string>(), 0, 0, "zmq", 5};
  messages.framed_messages = true;
  buffer.clear();
  caf::binary_serializer message_sink{nullptr, buffer};
  REQUIRE_FALSE(message_sink(messages));
  raw_chunk message_copy;
  caf::binary_deserializer message_source{nullptr, buffer};
  REQUIRE_FALSE(message_source(message_copy));
  CHECK(message_copy.framed_messages);
}

TEST_CASE("a batch travels as a message through an actor and as serialized message", "[actors][serialization]") {
  test_config cfg;
  caf::actor_system sys{cfg};
  auto b = every_type_batch();

  // Spawned with an argument: CAF 0.17's zero-argument spawn dereferences an empty shared_ptr (UBSan).
  auto summarize = sys.spawn([](std::int64_t extra) -> caf::behavior {
    return {[extra](const batch& x) { return static_cast<std::int64_t>(x.num_rows()) + extra; }};
  }, std::int64_t{0});
  caf::scoped_actor self{sys};
  std::int64_t rows = -1;
  self->request(summarize, caf::infinite, b.slice(1, 3))
      .receive([&](std::int64_t n) { rows = n; },
               [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(rows == 3);
  self->send_exit(summarize, caf::exit_reason::user_shutdown);

  // What the middleman does with a message to a remote actor.
  auto msg = caf::make_message(b, std::string("tag"));
  std::vector<char> buffer;
  caf::binary_serializer sink{sys, buffer};
  REQUIRE_FALSE(sink(msg));
  caf::message copy;
  caf::binary_deserializer source{sys, buffer};
  REQUIRE_FALSE(source(copy));
  REQUIRE(copy.match_elements<batch, std::string>());
  CHECK(copy.get_as<batch>(0) == b);
  CHECK(copy.get_as<std::string>(1) == "tag");
  CHECK(caf::to_string(copy).find("4 rows of (flag: boolean") != std::string::npos);
}
