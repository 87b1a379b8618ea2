#include "flow/runtime/checkpoint_writer.hpp"

#include <chrono>
#include <exception>

#include "flow/types.hpp"

namespace flow::runtime {

namespace {

// The jobs' files merged stage by stage, in job order within a stage, and their records in job order.
write_output merge_outputs(std::vector<write_output> per_job) {
  write_output merged;
  for (auto& job : per_job) {
    if (merged.files.size() < job.files.size()) merged.files.resize(job.files.size());
    for (std::size_t k = 0; k < job.files.size(); ++k)
      for (auto& file : job.files[k]) merged.files[k].push_back(std::move(file));
    for (auto& record : job.records) merged.records.push_back(std::move(record));
  }
  return merged;
}

void write_output_durably(std::string_view owner, const write_output& output, const log_appender& append) {
  if (!output.files.empty()) connectors::write_files_atomically(owner, output.files);
  if (output.records.empty()) return;
  if (!append) throw error(std::string(owner) + ": a write job has log records but the writer has no log");
  append(output.records);
}

}  // namespace

void run_write_job(std::string_view owner, const write_job& job, const log_appender& append) {
  const auto started = std::chrono::steady_clock::now();
  write_output_durably(owner, job.prepare(), append);
  if (job.durable) job.durable(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
}

checkpoint_writer::checkpoint_writer(std::string owner, std::function<void(const round_report&)> on_round,
                                     log_appender append)
    : owner_(std::move(owner)), on_round_(std::move(on_round)), append_(std::move(append)), thread_([this] { run(); }) {}

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
        std::vector<write_output> outputs;
        for (const auto& job : round) outputs.push_back(job.prepare());
        write_output_durably(owner_, merge_outputs(std::move(outputs)), append_);
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
