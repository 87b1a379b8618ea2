// A batch function that takes its time: the flow control test's slow receiver (tests/cluster), registered
// by that test's driver and by its workers (cluster_worker --slow-function) so that their builds agree.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "flow/function_registry.hpp"

namespace flow::test {

inline const std::string slow_function = "cluster_test.slow";

// Each batch unchanged, 50 ms later.
inline void register_slow_function() {
  register_batch_function(slow_function, [](const batch& rows) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return rows;
  });
}

}  // namespace flow::test
