// Crash and stall points for tests, chosen through the environment (FLOW_FILE_SINK_KILL_BEFORE_LOG=<epoch>,
// FLOW_KAFKA_SINK_KILL_AFTER_COMMIT=<epoch>, FLOW_CHECKPOINT_HOLD_OFFSETS=<epoch>).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace flow::connectors {

// The epoch the variable names, or none when it is unset. A value that is not an epoch number is a
// flow::error naming the owner (e.g. "file sink") and the variable.
std::optional<std::int64_t> epoch_from_environment(const char* variable, std::string_view owner);

}  // namespace flow::connectors
