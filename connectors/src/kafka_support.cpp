#include "kafka_support.hpp"

#include <cctype>
#include <charconv>

namespace flow::connectors::kafka {

namespace {

// A cursor over the small JSON documents of partition lists and offsets.
class json_cursor {
 public:
  json_cursor(std::string_view text, std::string_view what, std::string_view shape)
      : text_(text), what_(what), shape_(shape) {}

  error fail(std::string_view reason) const {
    return error(std::string(what_) + ": " + std::string(reason) + " at character " + std::to_string(at_) + " of '" +
                 std::string(text_) + "'; expected JSON like " + std::string(shape_));
  }
  void skip_space() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  bool take(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!take(c)) throw fail(std::string("'") + c + "' missing");
  }
  std::string string() {
    skip_space();
    if (at_ >= text_.size() || text_[at_] != '"') throw fail("a quoted name is missing");
    std::string out;
    for (++at_; at_ < text_.size() && text_[at_] != '"'; ++at_) {
      if (text_[at_] == '\\' && at_ + 1 < text_.size()) ++at_;
      out += text_[at_];
    }
    if (at_ >= text_.size()) throw fail("unterminated string");
    ++at_;
    return out;
  }
  std::int64_t integer() {
    skip_space();
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text_.data() + at_, text_.data() + text_.size(), value);
    if (ec != std::errc{}) throw fail("an integer is missing");
    at_ = static_cast<std::size_t>(end - text_.data());
    return value;
  }
  void expect_end() {
    skip_space();
    if (at_ != text_.size()) throw fail("unexpected text after the end");
  }

 private:
  std::string_view text_;
  std::string_view what_;
  std::string_view shape_;
  std::size_t at_ = 0;
};

std::int32_t partition_number(const json_cursor& cursor, std::string_view text) {
  std::int32_t partition = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), partition);
  if (ec != std::errc{} || end != text.data() + text.size() || partition < 0)
    throw cursor.fail("partition '" + std::string(text) + "' is not a non-negative integer");
  return partition;
}

template <typename Member>
void for_each_topic(json_cursor& cursor, Member&& member) {
  cursor.expect('{');
  if (!cursor.take('}')) {
    do {
      std::string topic = cursor.string();
      if (topic.empty()) throw cursor.fail("empty topic name");
      cursor.expect(':');
      member(topic);
    } while (cursor.take(','));
    cursor.expect('}');
  }
  cursor.expect_end();
}

}  // namespace

std::string to_string(const topic_partition& tp) {
  return "topic '" + tp.topic + "' partition " + std::to_string(tp.partition);
}

partition_offsets parse_partition_offsets(std::string_view json, std::string_view what) {
  json_cursor cursor(json, what, R"({"topicA":{"0":23,"1":-1},"topicB":{"0":-2}})");
  partition_offsets offsets;
  for_each_topic(cursor, [&](const std::string& topic) {
    cursor.expect('{');
    if (cursor.take('}')) return;
    do {
      std::int32_t partition = partition_number(cursor, cursor.string());
      cursor.expect(':');
      offsets[{topic, partition}] = cursor.integer();
    } while (cursor.take(','));
    cursor.expect('}');
  });
  return offsets;
}

std::vector<topic_partition> parse_partitions(std::string_view json, std::string_view what) {
  json_cursor cursor(json, what, R"({"topicA":[0,1],"topicB":[2,4]})");
  std::vector<topic_partition> partitions;
  for_each_topic(cursor, [&](const std::string& topic) {
    cursor.expect('[');
    if (cursor.take(']')) return;
    do {
      std::int64_t partition = cursor.integer();
      if (partition < 0 || partition > INT32_MAX) throw cursor.fail("partition out of range");
      partitions.push_back({topic, static_cast<std::int32_t>(partition)});
    } while (cursor.take(','));
    cursor.expect(']');
  });
  return partitions;
}

std::string format_partition_offsets(const partition_offsets& offsets) {
  std::string out = "{";
  const std::string* topic = nullptr;
  for (const auto& [tp, offset] : offsets) {
    if (!topic || *topic != tp.topic) {
      if (topic) out += "},";
      out.append("\"").append(tp.topic).append("\":{");
      topic = &tp.topic;
    } else {
      out += ",";
    }
    out.append("\"").append(std::to_string(tp.partition)).append("\":").append(std::to_string(offset));
  }
  if (topic) out += "}";
  out += "}";
  return out;
}

void handle_deleter::operator()(rd_kafka_t* handle) const { rd_kafka_destroy(handle); }

std::string bootstrap_servers(const options& opts, std::string_view who) {
  std::string servers = opts.get("kafka.bootstrap.servers");
  if (servers.empty())
    throw error(std::string(who) + ": option kafka.bootstrap.servers is required (e.g. \"host1:9092,host2:9092\")");
  return servers;
}

std::chrono::milliseconds timeout(const options& opts, std::string_view who) {
  std::int64_t ms = opts.get_int("kafka.timeoutMs", 10000);
  if (ms <= 0) throw error(std::string(who) + ": option kafka.timeoutMs must be positive, got " + std::to_string(ms));
  return std::chrono::milliseconds(ms);
}

conf_ptr make_conf(const options& opts, std::string_view who,
                   const std::vector<std::pair<std::string, std::string>>& defaults) {
  conf_ptr conf(rd_kafka_conf_new());
  char reason[512];
  auto set = [&](const std::string& name, const std::string& value) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), reason, sizeof reason) != RD_KAFKA_CONF_OK)
      throw error(std::string(who) + ": option kafka." + name + "='" + value + "' rejected by librdkafka: " + reason);
  };
  for (const auto& [name, value] : defaults) set(name, value);
  static constexpr std::string_view prefix = "kafka.";
  for (const auto& [key, value] : opts.all()) {
    if (!key.starts_with(prefix) || key == "kafka.timeoutms") continue;
    set(key.substr(prefix.size()), value);
  }
  return conf;
}

handle_ptr make_handle(rd_kafka_type_t type, conf_ptr conf, std::string_view who) {
  char reason[512];
  rd_kafka_t* handle = rd_kafka_new(type, conf.get(), reason, sizeof reason);
  if (!handle) throw error(std::string(who) + ": cannot create the Kafka client: " + reason);
  conf.release();  // rd_kafka_new owns it now
  return handle_ptr(handle);
}

}  // namespace flow::connectors::kafka
