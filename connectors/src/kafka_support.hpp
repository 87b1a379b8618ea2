// What the Kafka source and sink share: librdkafka handles built from "kafka.*" options, and the
// JSON of Spark's partition lists and offsets. Private to the connectors library.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flow/formats.hpp"

namespace flow::connectors::kafka {

struct topic_partition {
  std::string topic;
  std::int32_t partition = 0;
  friend auto operator<=>(const topic_partition&, const topic_partition&) = default;
};

std::string to_string(const topic_partition& tp);

using partition_offsets = std::map<topic_partition, std::int64_t>;

// Spark's JsonUtils: {"t":{"0":23,"1":-2}} and {"t":[0,1]}. Throws flow::error naming what (an option
// name or "offset") and the expected shape.
partition_offsets parse_partition_offsets(std::string_view json, std::string_view what);
std::vector<topic_partition> parse_partitions(std::string_view json, std::string_view what);
std::string format_partition_offsets(const partition_offsets& offsets);

struct handle_deleter {
  void operator()(rd_kafka_t* handle) const;
};
using handle_ptr = std::unique_ptr<rd_kafka_t, handle_deleter>;

struct conf_deleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

// kafka.bootstrap.servers, or flow::error naming who needs it.
std::string bootstrap_servers(const options& opts, std::string_view who);
// kafka.timeoutMs (default 10000), positive.
std::chrono::milliseconds timeout(const options& opts, std::string_view who);

// A librdkafka configuration from every "kafka.*" option except ours (kafka.timeoutMs), on top of
// defaults (set first, so the user's options win). Throws flow::error naming a rejected property.
conf_ptr make_conf(const options& opts, std::string_view who,
                   const std::vector<std::pair<std::string, std::string>>& defaults);
// Takes ownership of conf. Throws flow::error with librdkafka's reason.
handle_ptr make_handle(rd_kafka_type_t type, conf_ptr conf, std::string_view who);

}  // namespace flow::connectors::kafka
