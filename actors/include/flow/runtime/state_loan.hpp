// A state lent to another thread for one copy (a due snapshot's rows, taken on the checkpoint's snapshot
// thread instead of the coordinator's): the owner goes on without copying, and its next change to the
// state waits until the copy is taken or the loan dropped. Copying 1 M keys takes 13-36 ms; the owner
// usually has nothing to change in that time (docs/fault-tolerance.md, Measurements).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include "flow/batch.hpp"
#include "flow/stream_operator.hpp"

namespace flow::runtime {

class state_loans {
 public:
  // What the borrower holds: copy() at most once, on any thread.
  class loan {
   public:
    loan(std::shared_ptr<const operator_state> state, std::shared_ptr<state_loans> owner)
        : state_(std::move(state)), owner_(std::move(owner)) {}
    ~loan() { give_back(); }
    loan(const loan&) = delete;
    loan& operator=(const loan&) = delete;
    // The state as it was lent (snapshot()).
    batch copy() {
      batch rows = state_->snapshot();
      give_back();
      return rows;
    }

   private:
    void give_back() {
      if (!owner_) return;
      owner_->returned();
      owner_.reset();
      state_.reset();
    }
    std::shared_ptr<const operator_state> state_;
    std::shared_ptr<state_loans> owner_;
  };

  // Lends state, which the caller must not change until wait_returned() returns.
  static std::shared_ptr<loan> lend(const std::shared_ptr<state_loans>& self, std::shared_ptr<const operator_state> state) {
    {
      std::lock_guard lock(self->mutex_);
      ++self->out_;
    }
    return std::make_shared<loan>(std::move(state), self);
  }
  // Blocks until every loan is given back.
  void wait_returned() {
    std::unique_lock lock(mutex_);
    returned_.wait(lock, [&] { return out_ == 0; });
  }

 private:
  void returned() {
    {
      std::lock_guard lock(mutex_);
      --out_;
    }
    returned_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable returned_;
  int out_ = 0;
};

}  // namespace flow::runtime
