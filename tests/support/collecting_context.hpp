// An operator_context that keeps what the operator emits: for driving operators by hand, without actors.
#pragma once

#include <cstdint>
#include <vector>

#include "flow/stream_operator.hpp"

namespace flow::test {

class collecting_context final : public operator_context {
 public:
  explicit collecting_context(std::int64_t epoch = 0, std::size_t instance = 0, std::size_t parallelism = 1)
      : epoch_(epoch), instance_(instance), parallelism_(parallelism) {}
  void emit(batch rows) override { emitted.push_back(std::move(rows)); }
  std::int64_t epoch() const override { return epoch_; }
  std::size_t instance() const override { return instance_; }
  std::size_t parallelism() const override { return parallelism_; }
  std::int64_t watermark() const override { return watermark_now; }
  std::int64_t processing_time() const override { return processing_time_now; }
  void count_rows_dropped_by_watermark(std::size_t rows) override { dropped_by_watermark += rows; }
  void set_epoch(std::int64_t epoch) { epoch_ = epoch; }
  // Everything emitted so far as one batch (of schema when nothing was emitted), then forgets it.
  batch take(const schema_ptr& schema) {
    batch all = emitted.empty() ? batch::empty(schema) : concat(emitted);
    emitted.clear();
    return all;
  }

  std::vector<batch> emitted;
  std::int64_t watermark_now = no_watermark;  // what watermark() answers
  std::int64_t processing_time_now = 0;       // what processing_time() answers
  std::size_t dropped_by_watermark = 0;

 private:
  std::int64_t epoch_;
  std::size_t instance_, parallelism_;
};

}  // namespace flow::test
