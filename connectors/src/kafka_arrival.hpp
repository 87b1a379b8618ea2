// How the Kafka source says when records arrive (source_reader::notify_when_data): a consumer of its own,
// assigned to every partition at its end while armed; its queue writes to a pipe when a record (or an
// error) lands in it, and an arrival_watch waits on that pipe. The broker holds the consumer's fetches
// open until data comes (fetch.wait.max.ms), so an idle query neither polls nor spins.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "arrival_watch.hpp"
#include "kafka_support.hpp"

namespace flow::connectors::kafka {

class arrival_consumer {
 public:
  // A consumer made from the source's options (kafka.*), so that it reaches the brokers as the source does.
  arrival_consumer(const options& opts, std::function<void()> arrived);
  ~arrival_consumer();
  arrival_consumer(const arrival_consumer&) = delete;
  arrival_consumer& operator=(const arrival_consumer&) = delete;

  // Calls arrived() once a record at or after ends[tp] arrives, or once recheck_at has passed (partitions
  // and topics that appear later are found by the plan that follows).
  void arm(const partition_offsets& ends, arrival_watch::clock::time_point recheck_at);
  // Stops fetching: a plan found data, and the query reads it with the source's own consumer.
  void disarm();

 private:
  // Empties the pipe and the queue; true when the queue held a record or an error.
  bool drain();
  void on_wake();

  std::function<void()> arrived_;
  std::mutex mutex_;  // orders arm(), disarm() and on_wake()
  bool armed_ = false;
  arrival_watch::clock::time_point recheck_at_;

  int pipe_[2] = {-1, -1};  // librdkafka writes to [1] when the empty queue gets an element
  handle_ptr consumer_;
  rd_kafka_queue_t* queue_ = nullptr;
  bool assigned_ = false;
  std::unique_ptr<arrival_watch> watch_;  // destroyed first: its thread polls pipe_[0]
};

}  // namespace flow::connectors::kafka
