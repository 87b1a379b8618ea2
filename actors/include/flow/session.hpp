// The entry point: a session owns the actor system (embedded, one process, all cores by default),
// the memory-sink catalog and the running queries.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flow/dataframe.hpp"
#include "flow/runtime/cluster_membership.hpp"

namespace flow {

struct session_config {
  std::size_t threads = 0;       // scheduler threads; 0 = the core count
  std::size_t parallelism = 0;   // instances per stage; 0 = the core count
  std::size_t max_unit_bytes = 256 * 1024;  // largest raw chunk a source hands to a stage
  int max_failures = 3;                     // stage restarts allowed per minute before a query fails
  std::size_t progress_history = 100;       // progress reports kept per query (recent_progress)
  std::size_t max_epochs_in_flight = 4;     // pipelined epochs (not with processing-time triggers)
  // While no data arrives, a progress report (numInputRows 0, the sources' metrics) at most this often,
  // as Spark's spark.sql.streaming.noDataProgressEventInterval; the first idle trigger reports at once.
  std::chrono::milliseconds no_data_progress_interval{10000};
  // Idle scheduler threads: poll for work for about 2.5 ms before sleeping (CAF's work stealing: 100
  // polls, then 50 with 50 us pauses: short gaps between epochs stay cheap), or sleep after 5 + 5 polls,
  // which makes short epochs wait for steals, or block at once on one shared queue that wakes an idle
  // worker for each job (CAF's work sharing: no polling; docs/performance.md, "Idle workers").
  enum class idle_policy { poll, sleep, block };
  idle_policy idle_workers = idle_policy::poll;
  // Durable checkpoints (docs/fault-tolerance.md). checkpoint_location: the default root, as Spark's
  // spark.sql.streaming.checkpointLocation (a query without its own location uses <root>/<its name>).
  std::string checkpoint_location{};
  std::int64_t min_batches_to_retain = 100;  // epochs a checkpoint can still go back to (Spark's default)
  std::int64_t state_snapshot_interval = 10;  // full state snapshots at least N epochs apart (and by size), deltas in between
  // Where keyed operators keep their state: "memory" (the default) or "rocksdb" (state larger than memory).
  std::string state_backend = "memory";
  // How the watermarks of several with_watermark inputs make the query's, as Spark's
  // spark.sql.streaming.multipleWatermarkPolicy: "min" (the slowest input; the default) or "max".
  std::string multiple_watermark_policy = "min";
  // Where an epoch's processing time comes from (ms since the Unix epoch; read once when the epoch is planned,
  // logged with its offsets, seen by operators as operator_context::processing_time). Empty: the system clock;
  // tests give a controllable one.
  std::function<std::int64_t()> processing_clock{};
  // A cluster (docs/deployment.md). embedded: this process runs everything. worker: the session serves
  // work from a driver on `listen` (HOST:PORT) until SIGTERM or SIGINT, then ends the process. driver: the
  // session joins `workers` (HOST:PORT each) at its start; giving workers alone makes a driver. A driver
  // given `listen` also joins, while it runs, the workers that announce themselves there: those started
  // with `join` = that address. Both prove the secret in secret_file (mode 600) to each other; with the
  // TLS files, over TLS.
  enum class cluster_role { embedded, driver, worker };
  cluster_role role = cluster_role::embedded;
  std::string listen{};
  std::vector<std::string> workers{};
  std::string join{};
  std::string secret_file{};
  std::string tls_certificate{}, tls_key{}, tls_ca{};  // PEM files: this node's certificate and key, the CA
  // A driver gives up on a worker that does not answer a step of the join (connect, hello, join) within this.
  std::chrono::milliseconds join_timeout{3000};
};

class session {
 public:
  session();
  // With role worker it never returns, as session(argc, argv) below. A driver joins its workers here and
  // throws flow::error naming a worker it cannot reach or join.
  explicit session(session_config config);
  // Reads --flow.threads=N, --flow.parallelism=N, --flow.max-failures=N, --flow.idle-workers=poll|sleep|block,
  // --flow.no-data-progress-interval-ms=N, --flow.checkpoint-location=DIR, --flow.state-backend=NAME and
  // the cluster's --flow.role=embedded|driver|worker, --flow.listen=HOST:PORT, --flow.workers=HOST:PORT,...,
  // --flow.join=HOST:PORT,
  // --flow.secret-file, --flow.tls-cert, --flow.tls-key, --flow.tls-ca (each cluster flag also as "FLAG VALUE");
  // ignores other arguments. Throws flow::error for a bad value.
  // A worker (--flow.role=worker) never returns: it serves until SIGTERM/SIGINT, prints its last line
  // "worker HOST:PORT: processed R rows in E epochs" and ends the process with status 0.
  session(int argc, char** argv);
  ~session();  // stops every running query
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  data_frame_reader read();
  data_frame_reader read_stream();
  // SQL over the memory sinks' tables (SQLite); the result is a static data frame.
  data_frame sql(const std::string& query);
  // A static data frame over rows in memory.
  data_frame create_data_frame(std::vector<batch> rows);
  const session_config& config() const;
  // What data frames and topologies (flow/topology.hpp) of this session run through; start_graph runs a
  // dataflow graph as a query.
  std::shared_ptr<session_context> context() const;
  // A driver's workers: joined, and lost with the reason and time (empty for an embedded session).
  const runtime::cluster_membership& cluster() const;

  class impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace flow
