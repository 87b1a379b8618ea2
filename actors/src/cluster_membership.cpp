#include "flow/runtime/cluster_membership.hpp"

#include <algorithm>

namespace flow::runtime {

std::vector<cluster_member>::iterator cluster_membership::find(const std::string& address) {
  return std::find_if(members_.begin(), members_.end(), [&](const cluster_member& m) { return m.address == address; });
}

void cluster_membership::joined(const std::string& address, const std::string& build) {
  std::lock_guard<std::mutex> lock(mutex_);
  cluster_member member{address, build, true, {}, std::chrono::steady_clock::now(), {}};
  if (auto it = find(address); it != members_.end()) *it = std::move(member);
  else members_.push_back(std::move(member));
  changed_.notify_all();
}

void cluster_membership::not_joined(const std::string& address, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  cluster_member member{address, {}, false, reason, now, now};
  if (auto it = find(address); it != members_.end()) *it = std::move(member);
  else members_.push_back(std::move(member));
  changed_.notify_all();
}

void cluster_membership::lost(const std::string& address, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = find(address);
  if (it == members_.end() || !it->joined) return;
  it->joined = false;
  it->lost_reason = reason;
  it->lost_at = std::chrono::steady_clock::now();
  changed_.notify_all();
}

std::vector<cluster_member> cluster_membership::members() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return members_;
}

std::optional<cluster_member> cluster_membership::member(const std::string& address) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& m : members_)
    if (m.address == address) return m;
  return std::nullopt;
}

std::size_t cluster_membership::joined_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<std::size_t>(std::count_if(members_.begin(), members_.end(), [](const auto& m) { return m.joined; }));
}

std::optional<cluster_member> cluster_membership::await_lost(const std::string& address,
                                                             std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  std::optional<cluster_member> found;
  changed_.wait_for(lock, timeout, [&] {
    for (const auto& m : members_)
      if (m.address == address) found = m;
    return found && !found->joined;
  });
  return found;
}

}  // namespace flow::runtime
