// A thread-safe table of values by name: what the open registries (connector formats, batch functions)
// are built on, so that they all refuse a name twice and answer an unknown name alike.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flow/types.hpp"

namespace flow {

template <class Value>
class named_registry {
 public:
  // kind names an entry in messages ("source format"); register_call is the public call that adds one
  // ("flow::register_source_format"), named in errors as the fix. builtins adds the built-in entries (with
  // add(), like any other) before the registry is used.
  named_registry(std::string kind, std::string register_call,
                 const std::function<void(named_registry&)>& builtins = {})
      : kind_(std::move(kind)), register_call_(std::move(register_call)) {
    if (builtins) builtins(*this);
  }
  named_registry(const named_registry&) = delete;
  named_registry& operator=(const named_registry&) = delete;

  // Throws flow::error for an empty name or one already registered (entries are never replaced).
  void add(std::string name, Value value) {
    if (name.empty()) throw error(register_call_ + "(\"\"): a " + kind_ + " needs a non-empty name");
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.count(name))
      throw error(register_call_ + "(\"" + name + "\"): a " + kind_ + " named '" + name +
                  "' is already registered; choose another name");
    entries_.emplace(std::move(name), std::move(value));
  }

  // Throws flow::error listing every registered name (sorted) when name is unknown.
  Value find(std::string_view name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = entries_.find(name); it != entries_.end()) return it->second;
    std::string registered;
    for (const auto& entry : entries_) registered += (registered.empty() ? "" : ", ") + entry.first;
    throw error("unknown " + kind_ + " '" + std::string(name) + "'; registered: " +
                (registered.empty() ? "none" : registered) + " (names are case-sensitive; " + register_call_ +
                " adds one)");
  }

  // Sorted.
  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& entry : entries_) out.push_back(entry.first);
    return out;
  }

 private:
  std::string kind_;
  std::string register_call_;
  mutable std::mutex mutex_;
  std::map<std::string, Value, std::less<>> entries_;
};

}  // namespace flow
