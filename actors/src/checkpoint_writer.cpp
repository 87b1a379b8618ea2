#include "flow/runtime/checkpoint_writer.hpp"

#include <chrono>
#include <exception>

namespace flow::runtime {

namespace {

// The jobs' files merged stage by stage, in job order within a stage.
write_stages merge_stages(std::vector<write_stages> per_job) {
  write_stages merged;
  for (auto& stages : per_job) {
    if (merged.size() < stages.size()) merged.resize(stages.size());
    for (std::size_t k = 0; k < stages.size(); ++k)
      for (auto& file : stages[k]) merged[k].push_back(std::move(file));
  }
  return merged;
}

}  // namespace

void run_write_job(std::string_view owner, const write_job& job) {
  const auto started = std::chrono::steady_clock::now();
  connectors::write_files_atomically(owner, job.prepare());
  if (job.durable) job.durable(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
}

checkpoint_writer::checkpoint_writer(std::string owner, std::function<void(const round_report&)> on_round)
    : owner_(std::move(owner)), on_round_(std::move(on_round)), thread_([this] { run(); }) {}

checkpoint_writer::~checkpoint_writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

std::uint64_t checkpoint_writer::submit(write_job job) {
  std::uint64_t number = 0;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
    number = ++submitted_;
  }
  wake_.notify_one();
  return number;
}

std::optional<std::string> checkpoint_writer::finish() {
  std::unique_lock lock(mutex_);
  round_ended_.wait(lock, [&] { return done_ >= submitted_; });
  return failure_;
}

void checkpoint_writer::run() {
  for (;;) {
    std::deque<write_job> round;
    round_report report{durable_through_, 0, std::nullopt};
    std::uint64_t through = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      round.swap(queue_);
      through = submitted_;
      report.jobs = round.size();
      report.failure = failure_;
    }
    if (!report.failure) {
      try {
        const auto started = std::chrono::steady_clock::now();
        std::vector<write_stages> files;
        for (const auto& job : round) files.push_back(job.prepare());
        connectors::write_files_atomically(owner_, merge_stages(std::move(files)));
        const double round_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        for (const auto& job : round)
          if (job.durable) job.durable(round_ms);
        durable_through_ = report.durable_through = through;
      } catch (const std::exception& e) {
        report.failure = e.what();
      }
    }
    on_round_(report);
    {
      std::lock_guard lock(mutex_);
      failure_ = report.failure;
      done_ = through;
    }
    round_ended_.notify_all();
  }
}

}  // namespace flow::runtime
