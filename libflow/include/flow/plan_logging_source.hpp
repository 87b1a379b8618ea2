// A mix-in for sources whose plans must be logged to mean the same data after a restart (as Spark's
// SupportsAdmissionControl and the like are mix-ins of a source): the runtime asks a source_reader for it
// with dynamic_cast.
#pragma once

#include <string>
#include <vector>

namespace flow {

class plan_logging_source {
 public:
  virtual ~plan_logging_source() = default;
  // On a checkpoint: what this source needs to plan (start, end], which latest_offset(start) just returned,
  // the same way after a restart (the file source: the files it takes), for the epoch's offsets record,
  // durable before the epoch runs; empty: nothing. Lets the source keep its own log without syncing it.
  virtual std::string plan_record(const std::string& start, const std::string& end) = 0;
  // On a checkpoint, after use_checkpoint(): the plan records of the epochs whose offsets the checkpoint
  // still keeps, oldest first. Throws flow::error when they do not continue the source's own log.
  virtual void restore_plans(const std::vector<std::string>& records) = 0;
};

}  // namespace flow
