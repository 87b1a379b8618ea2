// The query handle's implementation: it reads what the coordinator publishes in query_shared and
// talks to the coordinator only by messages.
#include <cstdio>
#include <random>

#include "coordinator.hpp"

namespace flow::runtime {

namespace {

class query_control_impl final : public query_control {
  template <class F>
  auto locked(F f) const -> decltype(f()) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return f();
  }

 public:
  explicit query_control_impl(std::shared_ptr<query_shared> shared) : shared_(std::move(shared)) {}

  std::string id() const override { return locked([&] { return shared_->id; }); }
  std::string run_id() const override { return locked([&] { return shared_->run_id; }); }
  std::string name() const override { return locked([&] { return shared_->name; }); }
  bool is_active() const override { return locked([&] { return shared_->active; }); }
  query_status status() const override { return locked([&] { return shared_->status; }); }
  std::optional<std::string> last_progress() const override {
    return locked([&]() -> std::optional<std::string> {
      if (shared_->progress.empty()) return std::nullopt;
      return to_json(shared_->progress.back());
    });
  }
  std::vector<std::string> recent_progress() const override {
    return locked([&] {
      std::vector<std::string> reports;
      for (const auto& p : shared_->progress) reports.push_back(to_json(p));
      return reports;
    });
  }
  std::optional<std::string> exception() const override { return locked([&] { return shared_->failure; }); }

  void stop() override {
    if (auto coordinator = locked([&] { return shared_->coordinator; })) caf::anon_send(coordinator, stop_atom::value);
    await_termination(std::nullopt);
  }

  bool await_termination(std::optional<std::chrono::milliseconds> timeout) override {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    auto ended = [&] { return !shared_->active; };
    if (!timeout) {
      shared_->changed.wait(lock, ended);
      return true;
    }
    return shared_->changed.wait_for(lock, *timeout, ended);
  }

  void process_all_available() override {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    auto asked_after = shared_->plans_started;
    // An idle query whose sources notify plans only when data arrives: this asks for a plan now.
    if (shared_->coordinator) caf::anon_send(shared_->coordinator, arrived_atom::value);
    shared_->changed.wait(lock, [&] { return !shared_->active || shared_->last_idle_plan > asked_after; });
    if (shared_->failure) throw error("query '" + shared_->name + "' failed: " + *shared_->failure);
  }

 private:
  std::shared_ptr<query_shared> shared_;
};

}  // namespace

std::shared_ptr<query_control> make_query_control(coordinator_actor coordinator, std::shared_ptr<query_shared> shared) {
  shared->update([&](query_shared& s) {
    if (s.active) s.coordinator = std::move(coordinator);  // a query that already ended has nothing to stop
  });
  return std::make_shared<query_control_impl>(std::move(shared));
}

std::string random_uuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

}  // namespace flow::runtime
