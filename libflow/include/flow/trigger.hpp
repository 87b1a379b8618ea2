// When a query runs its epochs (Spark's Trigger).
#pragma once

#include <chrono>
#include <string_view>

namespace flow {

enum class trigger_kind { as_fast_as_possible, processing_time, once, available_now };

struct trigger {
  trigger_kind kind = trigger_kind::as_fast_as_possible;
  std::chrono::milliseconds interval{0};
};

inline trigger processing_time(std::chrono::milliseconds interval) {
  return {trigger_kind::processing_time, interval};
}
trigger processing_time(std::string_view interval);  // "1 second", "500 ms"
inline trigger trigger_once() { return {trigger_kind::once, {}}; }
inline trigger available_now() { return {trigger_kind::available_now, {}}; }
// "1s", "once", "available-now" (the examples' --trigger flag).
trigger parse_trigger(std::string_view text);

}  // namespace flow
