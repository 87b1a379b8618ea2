#include "kafka_arrival.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>

namespace flow::connectors::kafka {

namespace {

constexpr std::string_view watcher_name = "kafka source (arrival watch)";

}  // namespace

arrival_consumer::arrival_consumer(const options& opts, std::function<void()> arrived) : arrived_(std::move(arrived)) {
  if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0)
    throw error(std::string("kafka source: cannot create a pipe to hear of new records: ") + std::strerror(errno));
  try {
    auto conf = make_conf(opts, watcher_name,
                          {{"group.id", "flow-kafka-arrival-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(reinterpret_cast<std::uintptr_t>(this))},
                           {"client.id", "flow-kafka-arrival"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"enable.partition.eof", "false"},
                           {"auto.offset.reset", "latest"}});
    consumer_ = make_handle(RD_KAFKA_CONSUMER, std::move(conf), watcher_name);
    queue_ = rd_kafka_queue_get_consumer(consumer_.get());
    if (!queue_) throw error("kafka source: librdkafka gave no consumer queue to watch for new records");
    static const char payload = 1;
    rd_kafka_queue_io_event_enable(queue_, pipe_[1], &payload, sizeof payload);
    watch_ = std::make_unique<arrival_watch>([this] { on_wake(); });
  } catch (...) {
    if (queue_) rd_kafka_queue_destroy(queue_);
    consumer_.reset();
    ::close(pipe_[0]);
    ::close(pipe_[1]);
    throw;
  }
}

arrival_consumer::~arrival_consumer() {
  watch_.reset();
  rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
  rd_kafka_queue_destroy(queue_);
  rd_kafka_assign(consumer_.get(), nullptr);
  rd_kafka_consumer_close(consumer_.get());
  consumer_.reset();
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

bool arrival_consumer::drain() {
  char bytes[64];
  while (::read(pipe_[0], bytes, sizeof bytes) > 0) {
  }
  bool received = false;
  rd_kafka_message_t* messages[64];
  ssize_t got = 0;
  while ((got = rd_kafka_consume_batch_queue(queue_, 0, messages, std::size(messages))) > 0) {
    received = true;
    for (ssize_t i = 0; i < got; ++i) rd_kafka_message_destroy(messages[i]);
  }
  return received;
}

void arrival_consumer::arm(const partition_offsets& ends, arrival_watch::clock::time_point recheck_at) {
  std::lock_guard<std::mutex> lock(mutex_);
  watch_->disarm();
  // Emptied first, so that the next element makes librdkafka write to the pipe.
  drain();
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(ends.size()));
  for (const auto& [tp, end] : ends) rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition)->offset = end;
  const bool assign_failed = rd_kafka_assign(consumer_.get(), ends.empty() ? nullptr : list) != RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_topic_partition_list_destroy(list);
  // No partitions (a topic not created yet) or a failed assignment: only recheck_at wakes the query.
  assigned_ = !ends.empty() && !assign_failed;
  armed_ = true;
  recheck_at_ = recheck_at;
  watch_->arm(assigned_ ? pipe_[0] : -1, recheck_at);
}

void arrival_consumer::disarm() {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = false;
  watch_->disarm();
  if (!assigned_) return;
  rd_kafka_assign(consumer_.get(), nullptr);
  assigned_ = false;
}

void arrival_consumer::on_wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!armed_) return;
    // An assignment puts librdkafka's own operations in the queue too: those wake the watch, not the query.
    if (!drain() && arrival_watch::clock::now() < recheck_at_) {
      watch_->arm(pipe_[0], recheck_at_);
      return;
    }
    armed_ = false;
  }
  arrived_();
}

}  // namespace flow::connectors::kafka
