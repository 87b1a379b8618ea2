// What a query's coordinator publishes and its handle (query_control.cpp) reads, under one mutex.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "protocol.hpp"
#include "flow/dataframe.hpp"
#include "flow/runtime/progress.hpp"

namespace flow::runtime {

struct query_shared {
  std::mutex mutex;
  std::condition_variable changed;
  std::string id, run_id, name;
  bool active = true;
  query_status status{"Initializing sources", false, false};
  // Newest last; rendered as JSON when the handle is asked (most reports are never read).
  std::deque<query_progress> progress;
  std::optional<std::string> failure;
  std::uint64_t plans_started = 0;
  std::uint64_t last_idle_plan = 0;  // number of the last plan that found no new data
  // The coordinator, for the handles' stop(); reset when the query ends, so that a handle kept after
  // that (by a signal handler, say) does not keep the actor alive: a detached coordinator's thread would
  // never end and the actor system would wait for it forever.
  coordinator_actor coordinator;

  // Runs f(*this) under the mutex. Wakes the waiters (await_termination, process_all_available) only when
  // what they wait for changed: a wake-up per status or progress update cost every epoch several context
  // switches of the waiting thread.
  template <class F>
  void update(F f) {
    std::lock_guard<std::mutex> lock(mutex);
    const bool was_active = active;
    const std::uint64_t idle_plan_before = last_idle_plan;
    f(*this);
    if (active != was_active || last_idle_plan != idle_plan_before) changed.notify_all();
  }
};

}  // namespace flow::runtime
