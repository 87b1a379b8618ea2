// The Kafka source and sink against librdkafka's in-process mock cluster (the real Kafka protocol on 127.0.0.1).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "flow/connectors/kafka.hpp"
#include "kafka_support.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::type_id;
using flow::value;
using namespace flow::test;
using record = flow::test::kafka_record;

namespace {

flow::options source_options(const mock_kafka& kafka, const std::string& topic) {
  flow::options opts;
  opts.set("kafka.bootstrap.servers", kafka.bootstraps());
  opts.set("subscribe", topic);
  opts.set("startingOffsets", "earliest");
  opts.set("kafka.timeoutMs", "5000");
  return opts;
}

// A sink writing to topic on the mock cluster.
flow::options sink_options(const mock_kafka& kafka, const std::string& topic) {
  flow::options opts;
  opts.set("kafka.bootstrap.servers", kafka.bootstraps());
  opts.set("topic", topic);
  opts.set("kafka.timeoutMs", "5000");
  return opts;
}

std::vector<flow::batch> read_range(flow::source_reader& source, const std::string& start, const std::string& end) {
  source.begin_read(start, end);
  std::vector<flow::batch> batches;
  while (auto unit = source.next()) batches.push_back(std::get<flow::batch>(*unit));
  return batches;
}

std::vector<record> records_of(const std::vector<flow::batch>& batches) {
  std::vector<record> out;
  for (const auto& b : batches) {
    for (std::size_t r = 0; r < b.num_rows(); ++r)
      out.push_back({std::string(b.col("key").str(r)), std::string(b.col("value").str(r)),
                     static_cast<std::int32_t>(b.col("partition").ints()[r])});
  }
  return out;
}

// Produces `per_partition[p]` records to partition p: key "k<p>", value "<topic>-<p>-<i>".
std::vector<record> fill(mock_kafka& kafka, const std::string& topic, const std::vector<int>& per_partition,
                         int first = 0) {
  std::vector<record> produced;
  for (std::size_t p = 0; p < per_partition.size(); ++p) {
    for (int i = first; i < first + per_partition[p]; ++i) {
      std::string value = topic;
      value.append("-").append(std::to_string(p)).append("-").append(std::to_string(i));
      record r{std::string("k").append(std::to_string(p)), value, static_cast<std::int32_t>(p)};
      kafka.produce(topic, r.partition, r.key, r.value);
      produced.push_back(r);
    }
  }
  kafka.flush();
  return produced;
}

flow::schema_ptr key_value_schema() {
  return flow::make_schema({{"key", type_id::string, true}, {"value", type_id::string, true}});
}

}  // namespace

TEST_CASE("kafka source reads exactly an offset range and replays it identically", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("events", 3);
  auto produced = fill(kafka, "events", {10, 10, 10});

  auto source = flow::make_kafka_source(source_options(kafka, "events"));
  CHECK(source->description() == "KafkaV2[Subscribe[events]]");
  CHECK(source->output_schema()->to_string() ==
        "key: string, value: string, topic: string, partition: int64, offset: int64, timestamp: timestamp");
  auto start = source->initial_offset();
  CHECK(start == R"({"events":{"0":0,"1":0,"2":0}})");
  auto end = source->latest_offset(start);
  REQUIRE(end);
  CHECK(*end == R"({"events":{"0":10,"1":10,"2":10}})");

  auto batches = read_range(*source, start, *end);
  CHECK(records_of(batches) == produced);  // partition by partition, in offset order
  const auto& first = batches.front();
  CHECK(first.col("topic").str(0) == "events");
  CHECK(first.col("offset").ints()[9] == 9);
  CHECK_FALSE(first.col("timestamp").is_null(0));
  CHECK(metric(source->metrics(), "numRecordsRead") == 30);
  CHECK(metric(source->metrics(), "offsetsBehindLatest") == 0);
  CHECK_FALSE(source->latest_offset(*end));

  // A replay after reading part of a later range gives the same batches.
  auto more = fill(kafka, "events", {5, 0, 5}, 10);
  auto later = source->latest_offset(*end);
  REQUIRE(later);
  CHECK(*later == R"({"events":{"0":15,"1":10,"2":15}})");
  source->begin_read(*end, *later);
  REQUIRE(source->next());
  CHECK(read_range(*source, start, *end) == batches);
  CHECK(records_of(read_range(*source, *end, *later)) == more);
  CHECK(records_of(read_range(*source, R"({"events":{"0":3,"1":10,"2":14}})", *later)).size() == 13);
}

TEST_CASE("kafka source splits maxOffsetsPerTrigger across partitions like Spark", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("skewed", 3);
  fill(kafka, "skewed", {10, 20, 30});
  auto opts = source_options(kafka, "skewed");
  opts.set("maxOffsetsPerTrigger", "12");
  auto source = flow::make_kafka_source(opts);
  auto start = source->initial_offset();
  auto end = source->latest_offset(start);
  REQUIRE(end);
  CHECK(*end == R"({"skewed":{"0":2,"1":4,"2":6}})");  // 12 in proportion 10:20:30
  CHECK(records_of(read_range(*source, start, *end)).size() == 12);
  CHECK(metric(source->metrics(), "offsetsBehindLatest") == 48);
  CHECK(metric(source->metrics(), "maxOffsetsBehindLatest") == 24);
  CHECK(metric(source->metrics(), "minOffsetsBehindLatest") == 8);

  // A small backlog is not starved: at least one offset per partition with data.
  auto tiny = flow::options(opts);
  tiny.set("maxOffsetsPerTrigger", "5");
  tiny.set("startingOffsets", R"({"skewed":{"0":9,"1":-2,"2":-1}})");
  auto limited = flow::make_kafka_source(tiny);
  auto from = limited->initial_offset();
  CHECK(from == R"({"skewed":{"0":9,"1":0,"2":30}})");
  CHECK(*limited->latest_offset(from) == R"({"skewed":{"0":10,"1":4,"2":30}})");

  // Trigger.Once reads everything available.
  limited->set_rate_limits_enabled(false);
  CHECK(*limited->latest_offset(from) == R"({"skewed":{"0":10,"1":20,"2":30}})");
}

TEST_CASE("kafka source: assign, latest starting offsets and topics created later", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("a", 2);
  fill(kafka, "a", {3, 4});
  flow::options opts;
  opts.set("kafka.bootstrap.servers", kafka.bootstraps());
  opts.set("assign", R"({"a":[1]})");
  opts.set("startingOffsets", "latest");
  auto source = flow::make_kafka_source(opts);
  CHECK(source->description() == "KafkaV2[Assign[a-1]]");
  auto start = source->initial_offset();
  CHECK(start == R"({"a":{"1":4}})");
  CHECK_FALSE(source->latest_offset(start));
  kafka.produce("a", 0, "x", "not assigned");
  kafka.produce("a", 1, "y", "new");
  kafka.flush();
  auto end = source->latest_offset(start);
  REQUIRE(end);
  CHECK(records_of(read_range(*source, start, *end)) == std::vector<record>{{"y", "new", 1}});

  // A partition missing from the start offset (added since) is read from its beginning.
  auto subscribed = flow::make_kafka_source(source_options(kafka, "a"));
  auto grown = subscribed->latest_offset(R"({"a":{"0":4}})");
  REQUIRE(grown);
  CHECK(*grown == R"({"a":{"0":4,"1":5}})");
  auto added = records_of(read_range(*subscribed, R"({"a":{"0":4}})", *grown));
  REQUIRE(added.size() == 5);
  CHECK(added.front() == record{"k1", "a-1-0", 1});
}

TEST_CASE("kafka source notifies when a record arrives after a plan that found none, and when a recheck is due",
          "[kafka][notify]") {
  mock_kafka kafka;
  kafka.create_topic("n", 2);
  fill(kafka, "n", {2, 1});
  auto source = flow::make_kafka_source(source_options(kafka, "n"));
  std::atomic<int> calls{0};
  REQUIRE(source->notify_when_data([&] { ++calls; }));
  auto start = source->initial_offset();
  auto end = source->latest_offset(start);
  REQUIRE(end);
  CHECK_FALSE(source->latest_offset(*end));
  std::this_thread::sleep_for(200ms);
  CHECK(calls == 0);  // nothing arrived, no recheck due (1 s)

  const auto produced_at = std::chrono::steady_clock::now();
  kafka.produce("n", 1, "k", "late");
  kafka.flush();
  REQUIRE(flow::test::eventually([&] { return calls.load() == 1; }, 10s));
  CHECK(std::chrono::steady_clock::now() - produced_at < 900ms);  // the record woke it, not the recheck
  auto next = source->latest_offset(*end);
  REQUIRE(next);
  CHECK(records_of(read_range(*source, *end, *next)) == std::vector<record>{{"k", "late", 1}});

  // With nothing arriving, the recheck wakes the query once a second: the plan then finds partitions
  // and topics that appeared since.
  CHECK_FALSE(source->latest_offset(*next));
  const auto idle_since = std::chrono::steady_clock::now();
  REQUIRE(flow::test::eventually([&] { return calls.load() == 2; }, 10s));
  CHECK(std::chrono::steady_clock::now() - idle_since >= 900ms);
  source->stop();
}

TEST_CASE("kafka source reports lost data and skips it when failOnDataLoss is false", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("lossy", 1);
  fill(kafka, "lossy", {10});
  auto opts = source_options(kafka, "lossy");
  auto source = flow::make_kafka_source(opts);
  // Offsets past the log's end are refused by the broker (OFFSET_OUT_OF_RANGE), as deleted ones are.
  source->begin_read(R"({"lossy":{"0":100}})", R"({"lossy":{"0":105}})");
  auto message = flow::test::error_of([&] { source->next(); });
  CHECK_THAT(message, Catch::Contains("offset 100 of topic 'lossy' partition 0") && Catch::Contains("out of range") &&
                          Catch::Contains("failOnDataLoss"));
  CHECK_THAT(flow::test::error_of([&] { source->latest_offset(R"({"lossy":{"0":100}})"); }),
             Catch::Contains("went back from offset 100 to 10") && Catch::Contains("failOnDataLoss"));

  opts.set("failOnDataLoss", "false");
  auto lenient = flow::make_kafka_source(opts);
  CHECK(read_range(*lenient, R"({"lossy":{"0":100}})", R"({"lossy":{"0":105}})").empty());
  CHECK(metric(lenient->metrics(), "numRecordsLost") == 5);
  CHECK(*lenient->latest_offset(R"({"lossy":{"0":100}})") == R"({"lossy":{"0":10}})");
}

TEST_CASE("kafka source fails clearly on an unreachable broker and on bad options", "[kafka]") {
  flow::options opts;
  opts.set("kafka.bootstrap.servers", "127.0.0.1:1");
  opts.set("subscribe", "t");
  opts.set("kafka.timeoutMs", "300");
  auto source = flow::make_kafka_source(opts);
  auto started = std::chrono::steady_clock::now();
  CHECK_THAT(flow::test::error_of([&] { source->initial_offset(); }),
             Catch::Contains("cannot get the partitions of topic 't' from brokers '127.0.0.1:1' within 300 ms"));
  CHECK(std::chrono::steady_clock::now() - started < 5s);

  auto error_for = [](std::vector<std::pair<std::string, std::string>> settings) {
    flow::options o;
    for (auto& [k, v] : settings) o.set(k, v);
    return flow::test::error_of([&] { flow::connectors::validate_kafka_source_options(o); });
  };
  CHECK_THAT(error_for({{"subscribe", "t"}}), Catch::Contains("kafka.bootstrap.servers is required"));
  CHECK_THAT(error_for({{"kafka.bootstrap.servers", "h:1"}}), Catch::Contains("one of the options subscribe"));
  CHECK_THAT(error_for({{"kafka.bootstrap.servers", "h:1"}, {"subscribe", "t"}, {"assign", R"({"t":[0]})"}}),
             Catch::Contains("only one of the options subscribe and assign"));
  CHECK_THAT(error_for({{"kafka.bootstrap.servers", "h:1"}, {"assign", R"({"t":[0,}})"}}),
             Catch::Contains("option assign") && Catch::Contains(R"({"topicA":[0,1])"));
  CHECK_THAT(error_for({{"kafka.bootstrap.servers", "h:1"}, {"subscribe", "t"}, {"startingOffsets", "{\"t\":3}"}}),
             Catch::Contains("startingOffsets"));
  CHECK_THAT(error_for({{"kafka.bootstrap.servers", "h:1"}, {"subscribe", "t"}, {"maxOffsetsPerTrigger", "0"}}),
             Catch::Contains("maxOffsetsPerTrigger must be positive"));
  CHECK_THAT(error_for({{"kafka.bootstrap.servers", "h:1"}, {"subscribe", "t"}, {"kafka.auto.offset.reset", "earliest"}}),
             Catch::Contains("use startingOffsets"));
  CHECK_THAT(error_for({{"kafka.bootstrap.servers", "h:1"}, {"subscribe", "t"}, {"kafka.no.such.setting", "1"}}),
             Catch::Contains("kafka.no.such.setting='1' rejected by librdkafka"));
}

TEST_CASE("kafka source wants an offset for every partition in startingOffsets", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("three", 3);
  auto opts = source_options(kafka, "three");
  opts.set("startingOffsets", R"({"three":{"0":-2,"1":-1}})");
  auto source = flow::make_kafka_source(opts);
  CHECK_THAT(flow::test::error_of([&] { source->initial_offset(); }),
             Catch::Contains("every partition") && Catch::Contains("partitions: [three-0, three-1, three-2]"));
}

TEST_CASE("kafka sink produces key and value, commits by flushing, skips committed replays", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("out", 2);
  auto sink = flow::make_kafka_sink(sink_options(kafka, "out"));
  CHECK(sink->description() == "KafkaSink[out]");
  sink->open(key_value_schema(), flow::output_mode::append, {});
  auto rows = flow::make_batch(key_value_schema(), {{value{std::string("a")}, value{std::string("1")}},
                                                    {value{}, value{std::string("2")}}});
  sink->write(0, rows);
  sink->commit(0);
  sink->write(0, rows);  // a replay of a committed epoch: already in Kafka
  sink->commit(0);
  sink->write(1, rows.slice(0, 1));
  sink->commit(1);
  CHECK(metric(sink->metrics(), "numRecordsWritten") == 3);
  CHECK(metric(sink->metrics(), "numErrors") == 0);
  CHECK(flow::test::key_value_pairs(read_topic(kafka.bootstraps(), "out", 2, 3)) ==
        std::multiset<std::string>{"a=1", "=2", "a=1"});
  sink->close();
}

TEST_CASE("kafka sink routes by a topic column and checks its input", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("left", 1);
  kafka.create_topic("right", 1);
  flow::options opts;
  opts.set("kafka.bootstrap.servers", kafka.bootstraps());
  auto sink = flow::make_kafka_sink(opts);
  auto schema = flow::make_schema({{"topic", type_id::string, true}, {"value", type_id::string, true}});
  sink->open(schema, flow::output_mode::append, {});
  sink->write(0, flow::make_batch(schema, {{value{std::string("left")}, value{std::string("l")}},
                                           {value{std::string("right")}, value{std::string("r")}}}));
  sink->commit(0);
  CHECK(read_topic(kafka.bootstraps(), "right", 1, 1) == std::vector<record>{{"", "r", 0}});

  auto no_topic = flow::make_kafka_sink(opts);
  CHECK_THAT(flow::test::error_of([&] { no_topic->open(key_value_schema(), flow::output_mode::append, {}); }),
             Catch::Contains("set the option topic or give the rows a 'topic' column"));
  opts.set("topic", "left");
  auto typed = flow::make_kafka_sink(opts);
  CHECK_THAT(flow::test::error_of([&] {
               typed->open(flow::make_schema({{"value", type_id::int64, true}}), flow::output_mode::append, {});
             }),
             Catch::Contains("column 'value' must be a string, found int64"));
  CHECK_THAT(flow::test::error_of([&] {
               typed->open(flow::make_schema({{"v", type_id::string, true}}), flow::output_mode::append, {});
             }),
             Catch::Contains("need a 'value' column"));
  flow::options missing;
  CHECK_THAT(flow::test::error_of([&] { flow::make_kafka_sink(missing); }),
             Catch::Contains("kafka.bootstrap.servers is required"));
}

TEST_CASE("kafka sink commit fails on delivery errors and on an unreachable broker", "[kafka]") {
  mock_kafka kafka;
  kafka.create_topic("guarded", 1);
  auto sink = flow::make_kafka_sink(sink_options(kafka, "guarded"));
  sink->open(key_value_schema(), flow::output_mode::append, {});
  auto rows = flow::make_batch(key_value_schema(), {{value{std::string("k")}, value{std::string("v")}}});
  constexpr std::int16_t produce_api_key = 0;  // the Kafka protocol's ApiKey of Produce requests
  rd_kafka_mock_push_request_errors(kafka.cluster(), produce_api_key, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  sink->write(0, rows);
  CHECK_THAT(flow::test::error_of([&] { sink->commit(0); }),
             Catch::Contains("1 records of epoch 0 were not delivered") && Catch::Contains("guarded"));
  CHECK(metric(sink->metrics(), "numErrors") == 1);
  sink->abort(0);
  sink->write(0, rows);  // the replay succeeds
  sink->commit(0);
  CHECK(metric(sink->metrics(), "numRecordsWritten") == 1);

  flow::options nowhere;
  nowhere.set("kafka.bootstrap.servers", "127.0.0.1:1");
  nowhere.set("topic", "t");
  nowhere.set("kafka.timeoutMs", "300");
  auto lost = flow::make_kafka_sink(nowhere);
  lost->open(key_value_schema(), flow::output_mode::append, {});
  lost->write(0, rows);
  CHECK_THAT(flow::test::error_of([&] { lost->commit(0); }),
             Catch::Contains("1 records of epoch 0 not acknowledged by brokers '127.0.0.1:1' within 300 ms"));
  lost->abort(0);
}

namespace {

// The options of an exactly-once sink writing to topic on the mock cluster.
flow::options transactional_options(const mock_kafka& kafka, const std::string& topic) {
  auto opts = sink_options(kafka, topic);
  opts.set("deliveryGuarantee", "exactly-once");
  return opts;
}

// A sink made from opts on the checkpoint directory the runtime would give it (DIR/sinks/<k>).
std::unique_ptr<flow::sink_writer> sink_on_checkpoint(const flow::options& opts, const std::string& directory) {
  auto sink = flow::make_kafka_sink(opts);
  sink->use_checkpoint(directory);
  return sink;
}

flow::batch key_values(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<std::vector<value>> rows;
  for (const auto& [k, v] : pairs) rows.push_back({value{k}, value{v}});
  return flow::make_batch(key_value_schema(), rows);
}

}  // namespace

TEST_CASE("kafka sink exactly-once: one transaction per epoch, and a restarted sink writes no committed epoch again",
          "[kafka][transactions]") {
  mock_kafka kafka;
  kafka.create_topic("out", 1);
  kafka.create_topic("libflow-sink-epochs", 1);
  flow::test::temp_dir checkpoint;
  const auto opts = transactional_options(kafka, "out");

  auto first = sink_on_checkpoint(opts, checkpoint.path().string());
  first->open(key_value_schema(), flow::output_mode::append, {});
  first->write(0, key_values({{"a", "1"}, {"b", "2"}}));
  first->commit(0);
  first->write(1, key_values({{"c", "3"}}));
  first->commit(1);
  CHECK(metric(first->metrics(), "numRecordsWritten") == 3);  // the epoch markers are not counted
  first.reset();  // the process dies

  // The process restarts on the same checkpoint and re-runs epoch 1 (its checkpoint commit was not written).
  auto second = sink_on_checkpoint(opts, checkpoint.path().string());
  second->open(key_value_schema(), flow::output_mode::append, {});
  second->write(1, key_values({{"c", "3"}}));
  second->commit(1);
  second->write(2, key_values({{"d", "4"}}));
  second->commit(2);
  CHECK(metric(second->metrics(), "numRecordsWritten") == 1);

  // isolation.level=read_committed (librdkafka's default, as in read_topic).
  CHECK(flow::test::key_value_pairs(flow::test::read_whole_topic(kafka.bootstraps(), "out", 1)) ==
        std::multiset<std::string>{"a=1", "b=2", "c=3", "d=4"});
  second->close();
  // Fencing the first producer is not checked: the mock gives each init_transactions a new producer id
  // instead of bumping the id's epoch (docs/connectors.md, "Kafka sink": what the mock cluster lacks).
}

TEST_CASE("kafka sink exactly-once: the transactional id lives in the checkpoint, and a new checkpoint starts over",
          "[kafka][transactions]") {
  mock_kafka kafka;
  kafka.create_topic("out", 1);
  kafka.create_topic("libflow-sink-epochs", 1);
  flow::test::temp_dir checkpoint;
  flow::test::temp_dir other_checkpoint;
  auto first = sink_on_checkpoint(transactional_options(kafka, "out"), checkpoint.path().string());
  first->open(key_value_schema(), flow::output_mode::append, {});
  first->write(0, key_values({{"a", "1"}}));
  first->commit(0);
  const auto id_file = checkpoint.path() / "transactional-id";
  REQUIRE(std::filesystem::exists(id_file));

  // Another checkpoint is another query: its epoch 0 is new data.
  auto other = sink_on_checkpoint(transactional_options(kafka, "out"), other_checkpoint.path().string());
  other->open(key_value_schema(), flow::output_mode::append, {});
  other->write(0, key_values({{"b", "2"}}));
  other->commit(0);
  CHECK(flow::test::key_value_pairs(flow::test::read_whole_topic(kafka.bootstraps(), "out", 1)) ==
        std::multiset<std::string>{"a=1", "b=2"});

  // A damaged id file is an error, not a new id (that would write the committed epochs again).
  {
    std::ofstream damage(id_file, std::ios::binary | std::ios::app);
    damage << "x";
  }
  auto damaged = sink_on_checkpoint(transactional_options(kafka, "out"), checkpoint.path().string());
  CHECK_THAT(flow::test::error_of([&] { damaged->open(key_value_schema(), flow::output_mode::append, {}); }),
             Catch::Contains("transactional id kept in") && Catch::Contains("is damaged") &&
                 Catch::Contains("kafka.transactional.id"));
}

TEST_CASE("kafka sink exactly-once: an aborted epoch is written again by its replay, and the marker topic is made on use",
          "[kafka][transactions]") {
  mock_kafka kafka;
  kafka.create_topic("out", 1);
  flow::test::temp_dir checkpoint;
  auto opts = transactional_options(kafka, "out");
  opts.set("epochMarkerTopic", "my-markers");
  opts.set("kafka.transactional.id", "retail-export");
  auto sink = sink_on_checkpoint(opts, checkpoint.path().string());
  sink->open(key_value_schema(), flow::output_mode::append, {});
  CHECK_FALSE(std::filesystem::exists(checkpoint.path() / "transactional-id"));  // the given id is used
  sink->write(0, key_values({{"a", "1"}}));
  sink->abort(0);  // e.g. a stage failed: the runtime replays the epoch
  sink->write(0, key_values({{"a", "1"}}));
  sink->commit(0);
  auto restarted = sink_on_checkpoint(opts, checkpoint.path().string());
  restarted->open(key_value_schema(), flow::output_mode::append, {});
  restarted->write(0, key_values({{"a", "1"}}));
  restarted->commit(0);
  CHECK(metric(restarted->metrics(), "numRecordsWritten") == 0);
  auto markers = flow::test::read_whole_topic(kafka.bootstraps(), "my-markers", 1);
  REQUIRE(markers.size() == 1);
  CHECK(markers[0].key == "retail-export");
  CHECK(markers[0].value == "0");
}

TEST_CASE("kafka sink exactly-once: bad options are clear errors", "[kafka][transactions]") {
  flow::options opts;
  opts.set("kafka.bootstrap.servers", "127.0.0.1:1");
  opts.set("topic", "t");
  opts.set("deliveryGuarantee", "exactly-once");
  auto given_id = opts;
  given_id.set("kafka.transactional.id", "given");  // even with an id given: the epochs would restart at 0
  for (const auto& without : {opts, given_id}) {
    auto sink = flow::make_kafka_sink(without);
    CHECK_THAT(flow::test::error_of([&] { sink->open(key_value_schema(), flow::output_mode::append, {}); }),
               Catch::Contains("deliveryGuarantee=exactly-once needs a checkpoint") &&
                   Catch::Contains("checkpointLocation") && Catch::Contains("at-least-once"));
  }
  opts.set("deliveryGuarantee", "exactly_once");
  CHECK_THAT(flow::test::error_of([&] { flow::make_kafka_sink(opts); }),
             Catch::Contains("deliveryGuarantee must be at-least-once (default) or exactly-once, got 'exactly_once'"));
  flow::options plain;
  plain.set("kafka.bootstrap.servers", "127.0.0.1:1");
  plain.set("topic", "t");
  plain.set("kafka.transactional.id", "x");
  CHECK_THAT(flow::test::error_of([&] { flow::make_kafka_sink(plain); }),
             Catch::Contains("kafka.transactional.id is set but deliveryGuarantee is at-least-once"));

  // An unreachable broker: init_transactions times out with the reason.
  flow::test::temp_dir checkpoint;
  opts.set("deliveryGuarantee", "exactly-once");
  opts.set("kafka.timeoutMs", "300");
  auto sink = sink_on_checkpoint(opts, checkpoint.path().string());
  CHECK_THAT(flow::test::error_of([&] { sink->open(key_value_schema(), flow::output_mode::append, {}); }),
             Catch::Contains("kafka sink: cannot initialise transactions") && Catch::Contains("brokers '127.0.0.1:1'"));
}
