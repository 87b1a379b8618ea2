#include "flow/runtime/chain_runner.hpp"

#include <filesystem>
#include <utility>

#include "flow/connectors/durable_file.hpp"

namespace flow::runtime {

class chain_runner::context final : public operator_context {
 public:
  context(chain_runner& runner, std::size_t position) : runner_(runner), position_(position) {}
  void emit(batch rows) override {
    if (rows.num_rows() > 0) runner_.push(position_ + 1, rows);
  }
  std::int64_t epoch() const override { return runner_.epoch_; }
  std::size_t instance() const override { return runner_.instance_; }
  std::size_t parallelism() const override { return runner_.parallelism_; }
  std::int64_t watermark() const override { return runner_.watermark_; }
  std::int64_t processing_time() const override {
    return runner_.processing_time_ ? *runner_.processing_time_ : operator_context::processing_time();
  }
  void count_rows_dropped_by_watermark(std::size_t rows) override {
    epoch_stats::add_at(runner_.event_time_figures_.state_rows_dropped_by_watermark,
                        runner_.stages_[position_].stateful_index, static_cast<std::int64_t>(rows));
  }
  void count_state_rows_removed(std::size_t rows) override { runner_.stages_[position_].rows_removed += rows; }
  void observe_event_times(std::size_t input, const event_time_stats& seen) override {
    runner_.event_time_figures_.event_times.add(seen);
    runner_.event_time_figures_.see_event_time(input, seen.max);
  }

 private:
  chain_runner& runner_;
  std::size_t position_;
};

std::unique_ptr<operator_state> state_placement::make_state(const stream_operator& op, const std::string& part) const {
  auto state = op.make_state();
  if (state && backend.kind != "memory") state->use_backend(backend, directory + "/" + part);
  return state;
}

state_copy copy_state(const operator_state& state, const std::string& directory) {
  if (!state.snapshots_to_directory()) return state.snapshot();
  connectors::create_directories("state copy", std::filesystem::path(directory).parent_path().string());
  state.snapshot_to(directory);
  return state_copy::in_directory(directory);
}

void restore_state(operator_state& state, const state_copy& copy) {
  if (!copy.directory.empty()) state.restore_from(copy.directory);
  else if (copy.rows.valid() && copy.rows.num_rows() > 0) state.restore(copy.rows);
}

chain_runner::chain_runner(std::vector<operator_ptr> chain, std::size_t instance, std::size_t parallelism, output out,
                           const state_placement& placement)
    : instance_(instance), parallelism_(parallelism), out_(std::move(out)) {
  for (auto& op : chain) {
    auto state = placement.make_state(*op, "operator-" + std::to_string(stages_.size()));
    const std::size_t stateful_index = durable_.size();
    if (state && state->durable()) durable_.push_back(stages_.size());
    stages_.push_back(stage{std::move(op), std::move(state), {}, stateful_index});
  }
  for (std::size_t i = 0; i < stages_.size(); ++i) contexts_.push_back(std::make_unique<context>(*this, i));
}

chain_runner::~chain_runner() = default;

void chain_runner::restore(std::size_t durable_index, const state_copy& copy) {
  restore_state(*stages_[durable_.at(durable_index)].state, copy);
}

void chain_runner::push(std::size_t position, const batch& rows) {
  if (position == stages_.size()) return out_(seq_, rows);
  const stage* caller = running_;
  run_process(position, rows, 0);
  running_ = caller;  // an error after the emit returned is the caller's
}

void chain_runner::run_process(std::size_t position, const batch& rows, std::size_t input) {
  auto& s = stages_[position];
  running_ = &s;
  if (!s.state || !s.state->durable()) return s.op->process(rows, input, s.state.get(), *contexts_[position]);
  // The time includes what the operator's emits cost downstream in the chain: they run inside its process call.
  const auto start = std::chrono::steady_clock::now();
  s.op->process(rows, input, s.state.get(), *contexts_[position]);
  s.update_time += std::chrono::steady_clock::now() - start;
}

void chain_runner::process(std::int64_t epoch, std::uint64_t seq, std::size_t input, const batch& rows) {
  epoch_ = epoch;
  seq_ = seq;
  if (stages_.empty()) return out_(seq, rows);
  run_process(0, rows, input);
}

void chain_runner::end_epoch(std::int64_t epoch, std::uint64_t seq) {
  epoch_ = epoch;
  seq_ = seq;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    running_ = &stages_[i];
    stages_[i].op->end_epoch(stages_[i].state.get(), *contexts_[i]);
  }
}

void chain_runner::start_epoch_clocks(std::int64_t epoch, std::uint64_t seq, std::int64_t watermark,
                                      std::int64_t processing_time) {
  processing_time_ = processing_time;
  if (watermark <= watermark_) return;
  epoch_ = epoch;
  seq_ = seq;
  watermark_ = watermark;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    running_ = &stages_[i];
    stages_[i].op->on_watermark(watermark, stages_[i].state.get(), *contexts_[i]);
  }
}

void chain_runner::take_event_time_figures(epoch_stats& stats, std::size_t first_state_operator) {
  auto figures = std::exchange(event_time_figures_, epoch_stats{});
  for (std::size_t i = 0; i < figures.state_rows_dropped_by_watermark.size(); ++i)
    epoch_stats::add_at(stats.state_rows_dropped_by_watermark, first_state_operator + i,
                        figures.state_rows_dropped_by_watermark[i]);
  stats.event_times.add(figures.event_times);
  for (std::size_t i = 0; i < figures.latest_event_time.size(); ++i)
    stats.see_event_time(i, figures.latest_event_time[i]);
}

std::vector<batch> chain_runner::take_changes() {
  std::vector<batch> out;
  for (auto position : durable_) out.push_back(stages_[position].state->take_changes());
  return out;
}

std::size_t chain_runner::state_rows(std::size_t durable_index) const {
  const auto& s = stages_[durable_.at(durable_index)];
  return s.op->state_rows(*s.state);
}

std::size_t chain_runner::state_rows_updated(std::size_t durable_index, const batch& changes) const {
  return stages_[durable_.at(durable_index)].op->state_rows_updated(changes, epoch_);
}

std::size_t chain_runner::state_rows_removed(std::size_t durable_index, const batch& changes) {
  auto& s = stages_[durable_.at(durable_index)];
  return s.op->state_rows_removed(changes) + std::exchange(s.rows_removed, 0);
}

std::size_t chain_runner::state_memory_bytes(std::size_t durable_index) const {
  return stages_[durable_.at(durable_index)].state->memory_bytes();
}

std::chrono::microseconds chain_runner::take_update_time(std::size_t durable_index) {
  auto& s = stages_[durable_.at(durable_index)];
  return std::chrono::duration_cast<std::chrono::microseconds>(std::exchange(s.update_time, {}));
}

}  // namespace flow::runtime
