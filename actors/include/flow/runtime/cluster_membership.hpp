// A driver's view of its workers: which joined, which were lost, why and when. Plain C++, no actors;
// thread-safe (the driver's monitor writes it, the session's users read it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace flow::runtime {

struct cluster_member {
  std::string address;  // HOST:PORT, as the driver was given it
  std::string build;    // the worker's build fingerprint (short)
  bool joined = true;   // false: lost
  std::string lost_reason;
  std::chrono::steady_clock::time_point joined_at, lost_at;
};

class cluster_membership {
 public:
  // Records a worker that joined (again: a new entry replaces its lost one).
  void joined(const std::string& address, const std::string& build);
  // Records a worker that could not be joined at the driver's start, and why (as lost at that time).
  void not_joined(const std::string& address, const std::string& reason);
  // Records the loss of a joined worker; a second report of the same loss is ignored.
  void lost(const std::string& address, const std::string& reason);

  std::vector<cluster_member> members() const;
  std::optional<cluster_member> member(const std::string& address) const;
  std::size_t joined_count() const;
  // Waits until address is lost or timeout passes; the member then (nullopt if unknown).
  std::optional<cluster_member> await_lost(const std::string& address, std::chrono::milliseconds timeout) const;

 private:
  std::vector<cluster_member>::iterator find(const std::string& address);
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<cluster_member> members_;
};

}  // namespace flow::runtime
