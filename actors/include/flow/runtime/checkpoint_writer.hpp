// Group commit of a checkpoint's writes: one writer thread takes every write job queued since its last
// round and makes them durable together (files with connectors::write_files_atomically: one sync per file
// and per directory, in stages; then the round's log records with one append and one fdatasync), so that
// the epochs in flight share the disk's sync latency instead of waiting for it one after the other on the
// coordinator's thread. A plain class; the coordinator owns one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "flow/connectors/durable_file.hpp"

namespace flow::runtime {

// Files by stage: no file of stage k+1 becomes durable before every file of stage k (of the whole round)
// is. A checkpoint puts its logs and state files in stage 0 and commit files in stage 1.
using write_stages = std::vector<std::vector<connectors::file_write>>;

// What a job writes: files, then records of an append-only log (durable after every file of the round).
struct write_output {
  write_output(write_stages files = {}, std::vector<std::string> records = {})
      : files(std::move(files)), records(std::move(records)) {}
  write_stages files;
  std::vector<std::string> records;
};

// Appends records to a log, durable together once it returns (checkpoint_store::log_appender).
using log_appender = std::function<void(const std::vector<std::string>& records)>;

struct write_job {
  // On the writer thread: what to write (serializing there is what keeps it off the caller's thread).
  // Throws flow::error to fail the round.
  std::function<write_output()> prepare;
  // On the writer thread, once the job's round is durable: clean-up and figures (round_ms: the round's
  // duration, from its first prepare until durable). Throws flow::error to fail the round.
  std::function<void(double round_ms)> durable;
};

// Runs a job on the calling thread: prepare, write, durable. append: where its records go.
void run_write_job(std::string_view owner, const write_job& job, const log_appender& append = {});

class checkpoint_writer {
 public:
  // What a round ended with. Jobs are numbered from 1 in the order submitted.
  struct round_report {
    std::uint64_t durable_through = 0;   // every job up to this number is durable
    std::size_t jobs = 0;                // in this round
    std::optional<std::string> failure;  // the round's jobs and every later one failed with this
  };

  // owner: for the errors of the file functions ("checkpoint"). on_round is called on the writer thread
  // after each round; it must not call back into the writer. append: where the jobs' records go (a job
  // with records fails its round without it).
  checkpoint_writer(std::string owner, std::function<void(const round_report&)> on_round, log_appender append = {});
  // Finishes the round under way; jobs not started yet are dropped (nothing of them is on disk).
  ~checkpoint_writer();
  checkpoint_writer(const checkpoint_writer&) = delete;
  checkpoint_writer& operator=(const checkpoint_writer&) = delete;

  // Queues job; returns its number. After a failure every job fails (reported by a round of its own).
  std::uint64_t submit(write_job job);
  // Waits until every job submitted so far is done (durable or failed); returns the failure, if a job failed.
  std::optional<std::string> finish();

 private:
  void run();

  std::string owner_;
  std::function<void(const round_report&)> on_round_;
  log_appender append_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<write_job> queue_;    // guarded by mutex_
  std::uint64_t submitted_ = 0;    // guarded by mutex_
  std::uint64_t done_ = 0;         // guarded by mutex_: jobs whose round ended
  std::condition_variable round_ended_;
  bool stopping_ = false;          // guarded by mutex_
  std::uint64_t durable_through_ = 0;   // writer thread only
  std::optional<std::string> failure_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace flow::runtime
