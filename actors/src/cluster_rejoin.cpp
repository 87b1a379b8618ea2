#include "flow/runtime/cluster_rejoin.hpp"

#include <algorithm>

namespace flow::runtime {

rejoin_schedule::rejoin_schedule(std::chrono::milliseconds first_delay, std::chrono::milliseconds max_delay)
    : first_delay_(first_delay), max_delay_(std::max(first_delay, max_delay)) {}

void rejoin_schedule::lost(const std::string& address, clock::time_point now) {
  waiting_.try_emplace(address, waiting{now, first_delay_});
}

void rejoin_schedule::failed(const std::string& address, clock::time_point now) {
  auto [it, first] = waiting_.try_emplace(address, waiting{now, first_delay_});
  it->second.next_try = now + it->second.delay;
  it->second.delay = std::min(max_delay_, it->second.delay * 2);
}

void rejoin_schedule::joined(const std::string& address) { waiting_.erase(address); }

std::vector<std::string> rejoin_schedule::due(clock::time_point now) const {
  std::vector<std::string> out;
  for (const auto& [address, w] : waiting_)
    if (w.next_try <= now) out.push_back(address);
  return out;
}

std::optional<rejoin_schedule::clock::time_point> rejoin_schedule::next_due() const {
  std::optional<clock::time_point> next;
  for (const auto& [address, w] : waiting_)
    if (!next || w.next_try < *next) next = w.next_try;
  return next;
}

}  // namespace flow::runtime
