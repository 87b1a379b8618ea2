// Apache Kafka as a replayable source and an at-least-once or exactly-once sink (Spark's "kafka" format), on librdkafka.
// No librdkafka type appears here: the connector lives behind these factories.
#pragma once

#include <memory>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// Spark's Kafka schema with string for binary: key string, value string, topic string,
// partition int64, offset int64, timestamp timestamp.
flow::schema_ptr kafka_source_schema();

// Checks what can be checked without a broker: kafka.bootstrap.servers present, exactly one of
// subscribe / assign, well-formed assign and startingOffsets JSON, maxOffsetsPerTrigger positive,
// kafka.* options accepted by librdkafka. Throws flow::error naming the option.
void validate_kafka_source_options(const flow::options& opts);

// Options: kafka.bootstrap.servers (required); subscribe ("t1,t2") or assign ({"t1":[0,1]});
// startingOffsets (earliest, latest (default), or {"t1":{"0":23,"1":-2}}, -2 earliest, -1 latest);
// maxOffsetsPerTrigger; failOnDataLoss (default true); kafka.timeoutMs (default 10000); every other
// kafka.* option goes to librdkafka with the prefix removed.
// Offsets are Spark's KafkaSourceOffset JSON: {"topic":{"partition":next_offset,...}}.
// Partitions are assigned by the reader (no consumer group join), also for subscribe.
std::unique_ptr<flow::source_reader> make_kafka_source(const flow::options& opts);

// Options: kafka.bootstrap.servers (required), topic (else each row's "topic" column), kafka.timeoutMs
// (default 10000: the longest a commit waits for delivery reports), other kafka.* options to librdkafka.
// Writes column "value" (string, required) and "key" (string, optional). At-least-once, or with
// deliveryGuarantee=exactly-once (needs checkpointLocation) one Kafka transaction per epoch that also writes
// the epoch's marker to epochMarkerTopic (default libflow-sink-epochs); docs/connectors.md.
std::unique_ptr<flow::sink_writer> make_kafka_sink(const flow::options& opts);

}  // namespace flow::connectors

namespace flow {
using connectors::make_kafka_sink;
using connectors::make_kafka_source;
}  // namespace flow
