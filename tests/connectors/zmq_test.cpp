// The zmq source and sink against real libzmq peers that the tests run (tcp on 127.0.0.1 with ports
// libzmq picks), driven as the runtime drives them: latest_offset, begin_read, next, commit.
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include "flow/connectors/zeromq.hpp"
#include "test_support.hpp"

using namespace flow;
using namespace flow::connectors;
using namespace std::chrono_literals;
using namespace flow::test;

namespace {

options make_options(std::initializer_list<std::pair<std::string, std::string>> values) {
  options opts;
  for (const auto& [key, value] : values) opts.set(key, value);
  return opts;
}

std::string endpoint_of(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

// A test-side socket bound to a free port on 127.0.0.1.
zmq::socket_t bound_socket(zmq::context_t& context, zmq::socket_type type) {
  zmq::socket_t socket(context, type);
  socket.set(zmq::sockopt::linger, 0);
  socket.bind("tcp://127.0.0.1:*");
  return socket;
}

void send_text(zmq::socket_t& socket, std::string_view text) {
  REQUIRE(socket.send(zmq::buffer(text), zmq::send_flags::none));
}

// Everything one epoch of the source yields, decoded (the decoder counts into stats).
batch read_epoch(source_reader& source, const std::string& start, const std::string& end, decode_stats& stats) {
  std::vector<batch> batches;
  source.begin_read(start, end);
  while (auto unit = source.next()) {
    if (auto* chunk = std::get_if<raw_chunk>(&*unit)) {
      batches.push_back(source.chunk_decoder()->decode(*chunk, stats));
    } else {
      batches.push_back(std::get<batch>(*unit));
    }
  }
  return batches.empty() ? batch::empty(source.output_schema()) : concat(batches);
}

// Runs epochs (each committed) until at least `rows` rows arrived or the deadline passed.
struct drained {
  std::vector<batch> epochs;
  std::size_t rows = 0;
  std::string offset;
  decode_stats stats;
};

drained drain(source_reader& source, std::size_t rows, std::string start = {},
              std::chrono::milliseconds timeout = 20s) {
  drained out;
  out.offset = start.empty() ? source.initial_offset() : start;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.rows < rows && std::chrono::steady_clock::now() < deadline) {
    auto end = source.latest_offset(out.offset);
    if (!end) {
      std::this_thread::sleep_for(2ms);
      continue;
    }
    batch b = read_epoch(source, out.offset, *end, out.stats);
    source.commit(*end);
    out.offset = *end;
    out.rows += b.num_rows();
    out.epochs.push_back(std::move(b));
  }
  return out;
}

// The slow joiner: sends a probe (send_probe) every few milliseconds until one reaches the SUB source,
// so its subscription is in place. Returns the offset after the probes it read.
std::string await_subscription(source_reader& source, const std::function<void()>& send_probe) {
  std::string offset = source.initial_offset();
  std::optional<std::string> end;
  REQUIRE(eventually([&] {
    send_probe();
    return (end = source.latest_offset(offset)).has_value();
  }, 10s));
  decode_stats stats;
  read_epoch(source, offset, *end, stats);
  source.commit(*end);
  return *end;
}

std::vector<std::string> strings_of(const std::vector<batch>& batches, std::size_t column) {
  std::vector<std::string> values;
  for (const auto& b : batches)
    for (std::size_t r = 0; r < b.num_rows(); ++r) values.push_back(to_string(b.at(r, column)));
  return values;
}

// Receives up to `count` messages (each as its frames) within the timeout.
std::vector<std::vector<std::string>> receive_messages(zmq::socket_t& socket, std::size_t count,
                                                       std::chrono::milliseconds timeout = 10s) {
  std::vector<std::vector<std::string>> messages;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (messages.size() < count) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (left <= 0ms || zmq::poll(&item, 1, left) == 0) break;
    std::vector<std::string> frames;
    zmq::message_t frame;
    do {
      REQUIRE(socket.recv(frame, zmq::recv_flags::none));
      frames.push_back(frame.to_string());
    } while (frame.more());
    messages.push_back(std::move(frames));
  }
  return messages;
}

schema_ptr id_name_schema() {
  return make_schema({{"id", type_id::int64, true}, {"name", type_id::string, true}});
}

batch id_name_batch(std::int64_t first, std::size_t rows) {
  column_builder ids(type_id::int64, rows), names(type_id::string, rows);
  for (std::size_t i = 0; i < rows; ++i) {
    ids.append_int(first + static_cast<std::int64_t>(i));
    names.append_string("name, \"" + std::to_string(first + static_cast<std::int64_t>(i)) + "\"");
  }
  return batch(id_name_schema(), {ids.finish(), names.finish()});
}

// A PULL source connected to endpoint that decodes messageFormat format as id_name_schema() rows in
// mode (the decoders' option); connected, with nothing sent yet, when it returns.
std::unique_ptr<source_reader> pull_source(const std::string& endpoint, const std::string& format,
                                           const std::string& mode = "PERMISSIVE") {
  auto source = make_zmq_source(make_options({{"endpoint", endpoint}, {"socketType", "pull"},
                                              {"messageFormat", format}, {"mode", mode}}),
                                id_name_schema());
  REQUIRE_FALSE(source->latest_offset(source->initial_offset()));
  return source;
}

}  // namespace

TEST_CASE("zmq options are checked with errors that name the option", "[zmq]") {
  using flow::test::error_of;
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(options{}, nullptr); }), Catch::Contains("'endpoint' is required"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "tcp://127.0.0.1:1"}, {"socketType", "REQ"}}), nullptr); }),
             Catch::Contains("'socketType' must be SUB or PULL"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "tcp://127.0.0.1:1"}, {"messageFormat", "csv"}}), nullptr); }),
             Catch::Contains("messageFormat csv needs a schema"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "tcp://127.0.0.1:1"}, {"messageFormat", "binary"}}), nullptr); }),
             Catch::Contains("needs a schema"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "tcp://127.0.0.1:1"}}), id_name_schema()); }),
             Catch::Contains("fixed schema"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "e"}, {"messageFormat", "xml"}}), nullptr); }),
             Catch::Contains("'messageFormat' must be text, csv, json or binary"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "e"}, {"socketType", "PULL"}, {"subscribe", "a"}}), nullptr); }),
             Catch::Contains("'subscribe' applies to socketType SUB only"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "e"}, {"rcvHwm", "0"}}), nullptr); }),
             Catch::Contains("'rcvHwm' must be positive"));
  CHECK_THAT(error_of([] { resolve_zmq_source_schema(make_options({{"endpoint", "e"}, {"bind", "maybe"}}), nullptr); }),
             Catch::Contains("'bind' must be true or false"));
  CHECK(resolve_zmq_source_schema(make_options({{"endpoint", "e"}, {"includeTimestamp", "true"}}), nullptr)->size() == 2);
  CHECK_THAT(error_of([] { make_zmq_source(make_options({{"endpoint", "nonsense://x"}}), nullptr); }),
             Catch::Contains("cannot connect to 'nonsense://x'"));

  CHECK_THAT(error_of([] { validate_zmq_sink_options(options{}); }), Catch::Contains("'endpoint' is required"));
  CHECK_THAT(error_of([] { validate_zmq_sink_options(make_options({{"endpoint", "e"}, {"socketType", "PULL"}})); }),
             Catch::Contains("'socketType' must be PUB or PUSH"));
  CHECK_THAT(error_of([] { validate_zmq_sink_options(make_options({{"endpoint", "e"}, {"socketType", "PUSH"}, {"topic", "t"}})); }),
             Catch::Contains("'topic' applies to socketType PUB only"));
  CHECK_THAT(error_of([] { validate_zmq_sink_options(make_options({{"endpoint", "e"}, {"lingerMs", "-1"}})); }),
             Catch::Contains("'lingerMs' must not be negative"));
  zmq::context_t context;
  auto taken = bound_socket(context, zmq::socket_type::pull);
  CHECK_THAT(error_of([&] { make_zmq_sink(make_options({{"endpoint", endpoint_of(taken)}, {"bind", "true"}})); }),
             Catch::Contains("cannot bind to"));
}

TEST_CASE("a binding PULL source takes text messages in order, one record each", "[zmq]") {
  auto source = make_zmq_source(
      make_options({{"endpoint", "tcp://127.0.0.1:*"}, {"socketType", "PULL"}, {"bind", "true"}}), nullptr);
  auto endpoints = bound_zmq_source_endpoints();
  REQUIRE(endpoints.size() == 1);
  CHECK(endpoints[0].rfind("tcp://127.0.0.1:", 0) == 0);
  CHECK(source->description() == "ZeroMQSource[endpoint: tcp://127.0.0.1:*, socketType: PULL, bind]");

  zmq::context_t context;
  zmq::socket_t producer(context, zmq::socket_type::push);
  producer.set(zmq::sockopt::linger, 0);
  producer.connect(endpoints[0]);
  std::vector<std::string> expected;
  for (int i = 0; i < 3000; ++i) {
    expected.push_back("line " + std::to_string(i) + (i % 3 == 0 ? " with, a comma" : ""));
    send_text(producer, expected.back() + (i % 2 ? "\r\n" : ""));  // a trailing line break is dropped
  }
  auto got = drain(*source, expected.size());
  CHECK(strings_of(got.epochs, 0) == expected);
  CHECK(metric(source->metrics(), "numMessagesReceived") == 3000);
  CHECK(settled_metric(*source, "numRecordsReceived", 3000) == 3000);
  CHECK(metric(source->metrics(), "numBadRecords") == 0);
  CHECK(metric(source->metrics(), "bufferedBytes") == 0);
  source->stop();
  source.reset();
  CHECK(bound_zmq_source_endpoints().empty());
}

TEST_CASE("a text message of several lines gives a row per line, each with the arrival time", "[zmq]") {
  zmq::context_t context;
  auto producer = bound_socket(context, zmq::socket_type::push);
  auto source = make_zmq_source(make_options({{"endpoint", endpoint_of(producer)}, {"socketType", "PULL"},
                                              {"includeTimestamp", "true"}}),
                                nullptr);
  REQUIRE_FALSE(source->latest_offset(source->initial_offset()));
  const auto before = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  send_text(producer, "first\r\nsecond\n");
  send_text(producer, "third");
  auto got = drain(*source, 3);
  CHECK(strings_of(got.epochs, 0) == std::vector<std::string>{"first", "second", "third"});
  for (const auto& epoch : got.epochs)
    for (std::size_t r = 0; r < epoch.num_rows(); ++r) CHECK(epoch.col(1).ints()[r] >= before);
  CHECK(metric(source->metrics(), "numMessagesReceived") == 2);
  CHECK(settled_metric(*source, "numRecordsReceived", 3) == 3);
}

TEST_CASE("a connecting PULL source decodes csv messages with the given schema", "[zmq]") {
  zmq::context_t context;
  auto producer = bound_socket(context, zmq::socket_type::push);
  auto source = pull_source(endpoint_of(producer), "csv");  // socketType in lower case
  CHECK(*source->output_schema() == *id_name_schema());
  for (int i = 0; i < 500; ++i) send_text(producer, std::to_string(i) + ",\"n," + std::to_string(i) + "\"\n");
  send_text(producer, "not a number,x");  // PERMISSIVE: a row of nulls, counted by the decoder
  auto got = drain(*source, 501);
  REQUIRE(got.rows == 501);
  batch all = concat(got.epochs);
  for (std::size_t r = 0; r < 500; ++r) {
    CHECK(all.at(r, 0) == value{static_cast<std::int64_t>(r)});
    CHECK(all.at(r, 1) == value{"n," + std::to_string(r)});
  }
  CHECK(is_null(all.at(500, 0)));
}

TEST_CASE("a csv message is decoded on its own: an unterminated quote spoils only that message", "[zmq]") {
  for (std::string mode : {"PERMISSIVE", "DROPMALFORMED"}) {
    INFO(mode);
    zmq::context_t context;
    auto producer = bound_socket(context, zmq::socket_type::push);
    auto source = pull_source(endpoint_of(producer), "csv", mode);
    send_text(producer, "-1,\"open");  // the quote never closes
    for (int i = 0; i < 1000; ++i) send_text(producer, std::to_string(i) + ",n" + std::to_string(i) + "\n");
    send_text(producer, "1000,\"two\nlines\"");  // a line break quoted within one message stays
    const std::size_t rows = mode == "PERMISSIVE" ? 1002 : 1001;
    auto got = drain(*source, rows, {}, 10s);
    REQUIRE(got.rows == rows);
    CHECK(got.stats.malformed == 1);
    batch all = concat(got.epochs);
    const std::size_t first = mode == "PERMISSIVE" ? 1 : 0;
    if (mode == "PERMISSIVE") CHECK(all.at(0, 1) == value{std::string("open")});
    for (std::size_t i = 0; i < 1000; ++i) {
      CHECK(all.at(first + i, 0) == value{static_cast<std::int64_t>(i)});
      std::string name = "n";  // appended piecewise: g++ 12 warns falsely (-Wrestrict) on "n" + to_string(i)
      name += std::to_string(i);
      CHECK(all.at(first + i, 1) == value{name});
    }
    CHECK(all.at(first + 1000, 1) == value{std::string("two\nlines")});
  }
}

TEST_CASE("a SUB source keeps the subscribed topics, from multipart and single-frame messages", "[zmq]") {
  zmq::context_t context;
  auto publisher = bound_socket(context, zmq::socket_type::pub);
  auto schema = make_schema({{"id", type_id::int64, true}, {"temp", type_id::float64, true}});
  auto source = make_zmq_source(make_options({{"endpoint", endpoint_of(publisher)}, {"messageFormat", "json"},
                                              {"subscribe", "sensor.a,sensor.b"}}),
                                schema);
  std::string offset = await_subscription(*source, [&] {
    REQUIRE(publisher.send(zmq::str_buffer("sensor.a"), zmq::send_flags::sndmore));
    REQUIRE(publisher.send(zmq::str_buffer("{\"id\":-1}"), zmq::send_flags::none));
  });
  // Probes still in flight land before the data: skipped below by their id.
  for (int i = 0; i < 100; ++i) {
    std::string json = "{\"id\":" + std::to_string(i) + ",\"temp\":" + std::to_string(i) + ".5}";
    if (i % 3 == 0) {
      REQUIRE(publisher.send(zmq::str_buffer("sensor.a"), zmq::send_flags::sndmore));
      REQUIRE(publisher.send(zmq::buffer(json), zmq::send_flags::none));
    } else if (i % 3 == 1) {
      send_text(publisher, "sensor.b" + json);  // the topic opens the single frame
    } else {
      // Spread over lines: still one record.
      send_text(publisher, "sensor.a{\n  \"id\": " + std::to_string(i) + ",\n  \"temp\": " + std::to_string(i) + ".5\n}\n");
    }
    send_text(publisher, "sensor.c" + json);  // not subscribed
    REQUIRE(publisher.send(zmq::str_buffer("other"), zmq::send_flags::sndmore));
    REQUIRE(publisher.send(zmq::buffer(json), zmq::send_flags::none));
  }
  send_text(publisher, "sensor.a{\"id\":1000,\"temp\":");  // truncated JSON: the decoder counts it
  std::vector<std::int64_t> ids;
  double temp_sum = 0;
  while (ids.size() < 100) {
    auto got = drain(*source, 1, offset, 10s);
    offset = got.offset;
    if (got.rows == 0) break;
    for (const auto& b : got.epochs)
      for (std::size_t r = 0; r < b.num_rows(); ++r) {
        if (is_null(b.at(r, 0)) || std::get<std::int64_t>(b.at(r, 0)) < 0) continue;
        ids.push_back(std::get<std::int64_t>(b.at(r, 0)));
        temp_sum += std::get<double>(b.at(r, 1));
      }
  }
  std::vector<std::int64_t> expected(100);
  for (int i = 0; i < 100; ++i) expected[static_cast<std::size_t>(i)] = i;
  CHECK(ids == expected);
  CHECK(temp_sum == Approx(4950 + 50));
  CHECK(source->description() ==
        "ZeroMQSource[endpoint: " + endpoint_of(publisher) + ", socketType: SUB, subscribe: sensor.a,sensor.b]");
}

TEST_CASE("a binary source decodes encoded batches and counts undecodable frames as bad records", "[zmq]") {
  zmq::context_t context;
  auto producer = bound_socket(context, zmq::socket_type::push);
  auto source = pull_source(endpoint_of(producer), "binary");
  std::vector<std::uint8_t> first = encode(id_name_batch(0, 700));
  send_text(producer, std::string_view(reinterpret_cast<const char*>(first.data()), first.size()));
  send_text(producer, "garbage, not a batch");
  send_text(producer, std::string_view(reinterpret_cast<const char*>(first.data()), first.size() / 2));  // truncated
  auto other = encode(batch::empty(make_schema({{"id", type_id::int64, true}})));
  send_text(producer, std::string_view(reinterpret_cast<const char*>(other.data()), other.size()));  // another schema
  REQUIRE(producer.send(zmq::str_buffer("a"), zmq::send_flags::sndmore));  // three frames: not [topic, payload]
  REQUIRE(producer.send(zmq::str_buffer("b"), zmq::send_flags::sndmore));
  REQUIRE(producer.send(zmq::str_buffer("c"), zmq::send_flags::none));
  std::vector<std::uint8_t> second = encode(id_name_batch(700, 300));
  REQUIRE(producer.send(zmq::str_buffer("key"), zmq::send_flags::sndmore));  // [topic, payload]
  REQUIRE(producer.send(zmq::buffer(second), zmq::send_flags::none));

  auto got = drain(*source, 1000);
  REQUIRE(got.rows == 1000);
  batch all = concat(got.epochs);
  CHECK(all == id_name_batch(0, 1000));
  CHECK(metric(source->metrics(), "numBadRecords") == 4);
  CHECK(metric(source->metrics(), "numMessagesReceived") == 6);
}

TEST_CASE("a stalled PULL source holds bounded memory and pushes the sender back", "[zmq][backpressure]") {
  constexpr std::size_t max_buffered = 64 << 10, message_bytes = 1000;
  zmq::context_t context;
  auto producer = bound_socket(context, zmq::socket_type::push);
  producer.set(zmq::sockopt::sndhwm, 10);
  producer.set(zmq::sockopt::sndtimeo, 300);
  auto source = make_zmq_source(make_options({{"endpoint", endpoint_of(producer)}, {"socketType", "PULL"},
                                              {"rcvHwm", "10"}, {"maxBufferedBytes", std::to_string(max_buffered)},
                                              {"blockBytes", "4096"}}),
                                nullptr);
  const std::string start = source->initial_offset();
  REQUIRE_FALSE(source->latest_offset(start));  // starts the receiver; the query then stalls: no commit

  std::size_t sent = 0;
  auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    std::string message = std::to_string(sent) + std::string(message_bytes, 'x');
    if (!producer.send(zmq::buffer(message), zmq::send_flags::none)) break;  // blocked for 300 ms: pushed back
    ++sent;
  }
  INFO("sent before blocking: " << sent);
  REQUIRE(std::chrono::steady_clock::now() < give_up);
  CHECK(metric(source->metrics(), "bufferedBytes") <= static_cast<std::int64_t>(max_buffered + message_bytes + 32));
  CHECK(metric(source->metrics(), "numReceiverStalls") >= 1);
  CHECK(sent < 100000);  // the kernel's socket buffers hold some, but not an unbounded amount

  // The query resumes: every message arrives, once, in order, and the sender gets going again.
  std::thread more([&] {
    for (std::size_t i = 0; i < 200; ++i) {
      std::string message = std::to_string(sent + i) + std::string(message_bytes, 'x');
      while (!producer.send(zmq::buffer(message), zmq::send_flags::none)) {
      }
    }
  });
  auto got = drain(*source, sent + 200);
  more.join();
  auto values = strings_of(got.epochs, 0);
  REQUIRE(values.size() == sent + 200);
  for (std::size_t i = 0; i < values.size(); ++i) REQUIRE(values[i] == std::to_string(i) + std::string(message_bytes, 'x'));
}

TEST_CASE("a stalled SUB source holds bounded memory while the publisher drops", "[zmq][backpressure]") {
  constexpr std::size_t max_buffered = 64 << 10, messages = 20000;
  zmq::context_t context;
  auto publisher = bound_socket(context, zmq::socket_type::pub);
  publisher.set(zmq::sockopt::sndhwm, 10);
  auto source = make_zmq_source(make_options({{"endpoint", endpoint_of(publisher)}, {"rcvHwm", "10"},
                                              {"maxBufferedBytes", std::to_string(max_buffered)},
                                              {"blockBytes", "4096"}}),
                                nullptr);
  std::string offset = await_subscription(*source, [&] { send_text(publisher, "probe"); });
  const std::string padding(1000, 'x');
  auto started = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < messages; ++i) send_text(publisher, std::to_string(i) + padding);  // never blocks
  auto publish_time = std::chrono::steady_clock::now() - started;
  CHECK(publish_time < 5s);
  // The query stalls (no epoch runs): the receiver finds the log full and waits.
  CHECK(eventually([&] { return metric(source->metrics(), "numReceiverStalls") >= 1; }, 10s));
  CHECK(metric(source->metrics(), "bufferedBytes") <= static_cast<std::int64_t>(max_buffered + 1100));

  auto got = drain(*source, messages, offset, 3s);  // drains what was kept, then finds nothing more
  std::vector<std::size_t> numbers;
  for (const auto& v : strings_of(got.epochs, 0))
    if (v != "probe") numbers.push_back(std::stoul(v.substr(0, v.size() - padding.size())));
  INFO("kept " << numbers.size() << " of " << messages);
  CHECK(numbers.size() < messages);  // the rest were dropped at the high-water marks
  CHECK(numbers.size() > 0);
  CHECK(std::is_sorted(numbers.begin(), numbers.end()));
  CHECK(std::adjacent_find(numbers.begin(), numbers.end()) == numbers.end());
}

TEST_CASE("the sink sends each format, once per committed epoch", "[zmq][sink]") {
  zmq::context_t context;
  auto consumer = bound_socket(context, zmq::socket_type::pull);
  auto rows = id_name_batch(5, 3);
  auto run = [&](const std::string& format) {
    auto sink = make_zmq_sink(make_options({{"endpoint", endpoint_of(consumer)}, {"socketType", "PUSH"},
                                            {"messageFormat", format}}));
    sink->open(rows.schema_ref(), output_mode::append, {});
    sink->write(0, rows);
    sink->write(0, rows.slice(0, 1));
    sink->write(1, rows.slice(2, 1));
    sink->abort(1);
    CHECK(receive_messages(consumer, 1, 100ms).empty());  // nothing before the commit
    sink->commit(0);
    sink->commit(0);  // a replay of a committed epoch sends nothing again
    auto messages = receive_messages(consumer, format == "binary" ? 2 : 4);
    CHECK(receive_messages(consumer, 1, 100ms).empty());
    CHECK(metric(sink->metrics(), "numRowsWritten") == 4);
    return messages;
  };
  SECTION("text: the row as CSV without a value column") {
    auto messages = run("text");
    REQUIRE(messages.size() == 4);
    CHECK(messages[0] == std::vector<std::string>{"5,\"name, \"\"5\"\"\""});
    CHECK(messages[3] == messages[0]);
  }
  SECTION("json") {
    auto messages = run("json");
    REQUIRE(messages.size() == 4);
    CHECK(messages[1] == std::vector<std::string>{"{\"id\":6,\"name\":\"name, \\\"6\\\"\"}"});
  }
  SECTION("binary: one message per batch written") {
    auto messages = run("binary");
    REQUIRE(messages.size() == 2);
    const auto& bytes = messages[0][0];
    CHECK(decode_batch(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == rows);
    CHECK(messages[1][0].size() < bytes.size());
  }
}

TEST_CASE("a PUB sink sends topic and payload frames to subscribers, text taking the value column", "[zmq][sink]") {
  zmq::context_t context;
  auto sink = make_zmq_sink(make_options({{"endpoint", "tcp://127.0.0.1:*"}, {"bind", "true"}, {"topic", "words"}}));
  auto endpoints = bound_zmq_sink_endpoints();
  REQUIRE(endpoints.size() == 1);
  zmq::socket_t subscriber(context, zmq::socket_type::sub);
  subscriber.set(zmq::sockopt::linger, 0);
  subscriber.set(zmq::sockopt::subscribe, "words");
  subscriber.connect(endpoints[0]);
  auto schema = make_schema({{"n", type_id::int64, true}, {"value", type_id::string, true}});
  sink->open(schema, output_mode::append, {});
  auto make_rows = [&](std::vector<std::string> words) {
    column_builder n(type_id::int64, words.size()), values(type_id::string, words.size());
    for (auto& w : words) {
      n.append_int(1);
      values.append_string(w);
    }
    return batch(schema, {n.finish(), values.finish()});
  };
  // Slow joiner: probe epochs until one reaches the subscriber.
  std::int64_t epoch = 0;
  std::vector<std::vector<std::string>> got;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    sink->write(epoch, make_rows({"probe"}));
    sink->commit(epoch++);
    got = receive_messages(subscriber, 1, 20ms);
  }
  REQUIRE_FALSE(got.empty());
  receive_messages(subscriber, 1000, 100ms);  // later probes
  sink->write(epoch, make_rows({"to", "be", "or"}));
  sink->commit(epoch);
  got = receive_messages(subscriber, 3);
  CHECK(got == std::vector<std::vector<std::string>>{{"words", "to"}, {"words", "be"}, {"words", "or"}});
}

TEST_CASE("a PUSH sink without a peer fails the commit after sendTimeoutMs", "[zmq][sink]") {
  auto sink = make_zmq_sink(make_options({{"endpoint", "tcp://127.0.0.1:1"}, {"socketType", "PUSH"},
                                          {"sendTimeoutMs", "200"}, {"lingerMs", "0"}}));
  auto rows = id_name_batch(0, 2);
  sink->open(rows.schema_ref(), output_mode::append, {});
  sink->write(0, rows);
  auto started = std::chrono::steady_clock::now();
  CHECK_THAT(flow::test::error_of([&] { sink->commit(0); }), Catch::Contains("within sendTimeoutMs=200"));
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("what the sink writes in each format, the source reads back", "[zmq][sink]") {
  for (std::string format : {"csv", "json", "binary"}) {
    INFO(format);
    auto sink = make_zmq_sink(make_options({{"endpoint", "tcp://127.0.0.1:*"}, {"bind", "true"}, {"socketType", "PUSH"},
                                            {"messageFormat", format}}));
    auto source = pull_source(bound_zmq_sink_endpoints().back(), format);
    auto rows = id_name_batch(-3, 200);
    sink->open(rows.schema_ref(), output_mode::append, {});
    sink->write(0, rows.slice(0, 150));
    sink->write(0, rows.slice(150, 50));
    sink->commit(0);
    auto got = drain(*source, 200);
    CHECK(concat(got.epochs) == rows);
    CHECK(metric(source->metrics(), "numBadRecords") == 0);
  }
}

TEST_CASE("a PULL source with walEnabled replays csv messages, line breaks included, after a restart", "[zmq][wal]") {
  zmq::context_t context;
  auto push = bound_socket(context, zmq::socket_type::push);
  temp_dir checkpoint;
  auto make_source = [&] {
    auto source = make_zmq_source(make_options({{"endpoint", endpoint_of(push)}, {"socketType", "pull"},
                                                {"messageFormat", "csv"}, {"walEnabled", "true"}}),
                                  id_name_schema());
    source->use_checkpoint(checkpoint.path().string());
    return source;
  };
  const std::string start = "{\"offset\":0}", end = "{\"offset\":2}";
  batch planned;
  {
    auto source = make_source();
    REQUIRE_FALSE(source->latest_offset(start));
    send_text(push, "1,\"two\nlines\"");
    send_text(push, "2,one line");
    REQUIRE(eventually([&] { return source->latest_offset(start) == end; }));
    decode_stats stats;
    planned = read_epoch(*source, start, end, stats);
    REQUIRE(planned.num_rows() == 2);
  }  // gone before the epoch committed
  auto restarted = make_source();
  decode_stats stats;
  CHECK(sorted_rows(read_epoch(*restarted, start, end, stats)) == sorted_rows(planned));
  CHECK(stats.malformed == 0);
}
