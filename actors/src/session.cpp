#include "flow/session.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "flow/watermark.hpp"

#include "cluster_driver.hpp"
#include "cluster_node.hpp"
#include "cluster_worker.hpp"
#include "coordinator.hpp"
#include "graph_inspect.hpp"
#include "flow/compile.hpp"
#include "flow/formats.hpp"
#include "flow/connectors/file_source.hpp"
#include "flow/connectors/memory.hpp"
#include "flow/connectors/registry.hpp"
#include "flow/state_backend.hpp"

namespace flow {

namespace {

// Spark's LocalRelation as a source: the rows, once, as one epoch.
class local_relation_source final : public source_reader {
 public:
  local_relation_source(schema_ptr schema, std::shared_ptr<const std::vector<batch>> rows)
      : schema_(std::move(schema)), rows_(std::move(rows)) {}
  std::string description() const override { return "LocalRelation"; }
  schema_ptr output_schema() const override { return schema_; }
  std::string initial_offset() override { return "0"; }
  std::optional<std::string> latest_offset(const std::string& start) override {
    if (start == "1") return std::nullopt;
    return "1";
  }
  void begin_read(const std::string&, const std::string&) override { next_ = 0; }
  std::optional<source_unit> next() override {
    if (!rows_ || next_ >= rows_->size()) return std::nullopt;
    return source_unit{(*rows_)[next_++]};
  }

 private:
  schema_ptr schema_;
  std::shared_ptr<const std::vector<batch>> rows_;
  std::size_t next_ = 0;
};

// Keeps the committed result of a static query for the caller.
class collect_sink final : public sink_writer {
 public:
  std::string description() const override { return "CollectSink"; }
  void open(const schema_ptr&, output_mode, const std::vector<std::string>&) override {}
  void write(std::int64_t, const batch& rows) override { pending_.push_back(rows); }
  void commit(std::int64_t) override {
    std::lock_guard<std::mutex> lock(mutex_);
    committed_.insert(committed_.end(), pending_.begin(), pending_.end());
    pending_.clear();
  }
  void abort(std::int64_t) override { pending_.clear(); }
  std::vector<batch> result() {
    std::lock_guard<std::mutex> lock(mutex_);
    return committed_;
  }

 private:
  std::mutex mutex_;
  std::vector<batch> pending_, committed_;
};

std::size_t parse_count(std::string_view text, std::string_view flag) {
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || ptr != text.data() + text.size())
    throw error("invalid value '" + std::string(text) + "' for " + std::string(flag) + ": expected a whole number");
  return n;
}

session_config::idle_policy parse_idle_workers(std::string_view text) {
  if (text == "poll") return session_config::idle_policy::poll;
  if (text == "sleep") return session_config::idle_policy::sleep;
  if (text == "block") return session_config::idle_policy::block;
  throw error("invalid value '" + std::string(text) + "' for --flow.idle-workers: expected poll, sleep or block");
}

session_config::cluster_role parse_role(std::string_view text) {
  if (text == "embedded") return session_config::cluster_role::embedded;
  if (text == "driver") return session_config::cluster_role::driver;
  if (text == "worker") return session_config::cluster_role::worker;
  throw error("invalid value '" + std::string(text) + "' for --flow.role: expected embedded, driver or worker");
}

}  // namespace

class session::impl final : public session_context, public std::enable_shared_from_this<session::impl> {
 public:
  explicit impl(session_config config)
      : config_(resolve(config)),
        cluster_settings_(runtime::check_cluster_settings(config_)),
        system_(configure(actor_config_, config_, cluster_settings_)) {
    // The driver joins its workers now, so that a wrong flag or an unreachable worker fails at the start.
    if (cluster_settings_.role == session_config::cluster_role::driver)
      cluster_ = std::make_shared<runtime::cluster_driver>(system_, cluster_settings_);
  }

  ~impl() override {
    stop_all();
    if (cluster_) cluster_->stop_rejoining();
    if (cluster_) cluster_->release_ended_actors();
    cluster_.reset();  // before the actor system, which waits for the driver's monitor
  }

  void stop_all() {
    std::vector<std::shared_ptr<query_control>> queries;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [name, q] : queries_) queries.push_back(q);
      queries_.clear();
    }
    for (auto& q : queries)
      if (q->is_active()) q->stop();
  }

  const session_config& config() const { return config_; }
  const runtime::cluster_membership& cluster() const {
    static const runtime::cluster_membership none;
    return cluster_ ? cluster_->membership() : none;
  }
  std::shared_ptr<connectors::memory_catalog> catalog() { return catalog_; }

  void resolve_scan(scan_spec& scan) override { connectors::resolve_source(scan); }

  std::shared_ptr<source_reader> make_source(const scan_spec& scan) {
    if (scan.format == "local") return std::make_shared<local_relation_source>(scan.schema, scan.rows);
    return connectors::make_source(scan);
  }

  std::shared_ptr<sink_writer> make_sink(const sink_spec& spec) {
    return connectors::make_sink(spec, sink_context{catalog_, &std::cout});
  }

  // The query's setup for graph: a reader per source vertex; the caller gives the writers.
  runtime::query_setup base_setup(dataflow_graph graph) {
    runtime::query_setup setup;
    setup.graph = std::make_shared<dataflow_graph>(std::move(graph));
    for (auto v : setup.graph->sources()) setup.readers.push_back(make_source(setup.graph->vertex(v).scan));
    setup.parallelism = config_.parallelism;
    setup.max_unit_bytes = config_.max_unit_bytes;
    setup.lifecycle.max_failures = config_.max_failures;
    setup.progress_history = std::max<std::size_t>(1, config_.progress_history);
    setup.lifecycle.max_epochs_in_flight = std::max<std::size_t>(1, config_.max_epochs_in_flight);
    setup.lifecycle.no_data_progress_interval = config_.no_data_progress_interval;
    setup.lifecycle.multiple_watermark_policy = parse_watermark_policy(config_.multiple_watermark_policy);
    if (config_.processing_clock) setup.lifecycle.processing_clock = config_.processing_clock;
    setup.shared = std::make_shared<runtime::query_shared>();
    setup.shared->id = runtime::random_uuid();
    setup.shared->run_id = runtime::random_uuid();
    setup.cluster = cluster_;
    return setup;
  }

  std::vector<batch> execute(const plan_ptr& plan) override {
    sink_spec spec;  // its writer is the collect_sink below
    spec.mode = has_aggregate(*plan) ? output_mode::complete : output_mode::append;
    spec.trigger = trigger_once();
    auto setup = base_setup(compile_graph(plan, spec));
    auto sink = std::make_shared<collect_sink>();
    setup.writers = {sink};
    setup.lifecycle.trigger = spec.trigger;
    auto control = runtime::start_query(system_, std::move(setup));
    control->await_termination(std::nullopt);
    if (auto failure = control->exception()) throw error(*failure);
    return sink->result();
  }

  std::size_t input_partitions(const scan_spec& scan) override {
    if (scan.format == "local") return scan.rows ? scan.rows->size() : 0;
    auto dec = make_decoder(scan.format, scan.opts, scan.schema);
    std::size_t partitions = 0;
    for (const auto& file : connectors::list_input_files(scan.path))
      partitions += connectors::read_file_chunks(file, *dec, config_.max_unit_bytes).size();
    return partitions;
  }

  std::shared_ptr<query_control> start_stream(const plan_ptr& plan, const sink_spec& spec) override {
    return start_graph(compile_graph(plan, spec),
                       query_options{spec.query_name, spec.trigger, spec.opts.get("checkpointLocation", ""),
                                     spec.opts.get("stateStore.backend", "")});
  }

  std::shared_ptr<query_control> start_graph(dataflow_graph graph, const query_options& options) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = queries_.begin(); it != queries_.end();) it = it->second->is_active() ? std::next(it) : queries_.erase(it);
    if (!options.name.empty() && queries_.count(options.name))
      throw error("cannot start query with name '" + options.name +
                  "': a query with that name is already active; stop it or choose another name");
    auto setup = base_setup(std::move(graph));
    for (auto v : setup.graph->sinks()) setup.writers.push_back(make_sink(setup.graph->vertex(v).sink));
    setup.lifecycle.trigger = options.trigger;
    setup.lifecycle.epoch_every_tick = options.epoch_every_tick;
    setup.shared->name = options.name;
    setup.checkpoint_location = checkpoint_location(options, setup.shared->id);
    setup.checkpoint.min_batches_to_retain = config_.min_batches_to_retain;
    setup.checkpoint.snapshot_interval = config_.state_snapshot_interval;
    place_states(setup, options);
    auto id = setup.shared->id;
    auto control = runtime::start_query(system_, std::move(setup));
    queries_[options.name.empty() ? id : options.name] = control;
    return control;
  }

  batch sql(const std::string& query) override { return catalog_->sql(query); }

 private:
  // The states' backend, and for one that keeps files, a working directory of this run: inside the
  // checkpoint (RocksDB snapshots hard-link its files, so they must share a file system), else in the
  // system's temporary directory. Working files of earlier runs are never needed again.
  void place_states(runtime::query_setup& setup, const query_options& options) const {
    setup.state_backend.kind = options.state_backend.empty() ? config_.state_backend : options.state_backend;
    const auto known = state_backends();
    if (std::find(known.begin(), known.end(), setup.state_backend.kind) == known.end()) {
      std::string names;
      for (const auto& name : known) names += (names.empty() ? "" : ", ") + name;
      throw error("unknown state backend '" + setup.state_backend.kind + "': use one of " + names);
    }
    if (setup.state_backend.kind == "memory") return;
    if (setup.checkpoint_location.empty()) {
      setup.state_directory =
          (std::filesystem::temp_directory_path() / ("libflow-state-" + setup.shared->run_id)).string();
      return;
    }
    // start_query clears working/ of earlier runs once it holds the checkpoint's lock.
    setup.state_directory = (std::filesystem::path(setup.checkpoint_location) / "working" / setup.shared->run_id).string();
  }

  // The query's own location, else <the session's default>/<the query's name> (Spark's
  // spark.sql.streaming.checkpointLocation; an unnamed query gets its id, so it cannot resume).
  std::string checkpoint_location(const query_options& options, const std::string& query_id) const {
    if (!options.checkpoint_location.empty()) return options.checkpoint_location;
    if (config_.checkpoint_location.empty()) return {};
    return config_.checkpoint_location + "/" + (options.name.empty() ? query_id : options.name);
  }

  static session_config resolve(session_config c) {
    std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    if (c.threads == 0) c.threads = cores;
    if (c.parallelism == 0) c.parallelism = cores;
    return c;
  }

  static caf::actor_system_config& configure(caf::actor_system_config& cfg, const session_config& c,
                                             const runtime::cluster_settings& cluster) {
    cfg.set("scheduler.max-threads", static_cast<std::int64_t>(c.threads));
    // Work sharing: one queue under a mutex, an idle worker waits on its condition variable and each
    // enqueue wakes one. Work stealing (poll, sleep) puts a job a worker sends into its own queue and wakes
    // no one: an idle worker finds it by polling (CAF's defaults: 100 polls without pause, then 500 with
    // 50 us pauses, 25 ms, before it sleeps and steals only every 10 ms; here 50 such pauses, or 5 + 5).
    if (c.idle_workers == session_config::idle_policy::block) {
      cfg.set("scheduler.policy", caf::atom("sharing"));
    } else {
      const bool sleep = c.idle_workers == session_config::idle_policy::sleep;
      cfg.set("work-stealing.aggressive-poll-attempts", std::int64_t{sleep ? 5 : 100});
      cfg.set("work-stealing.moderate-poll-attempts", std::int64_t{sleep ? 5 : 50});
    }
    runtime::add_message_types(cfg);
    if (cluster.role == session_config::cluster_role::driver) runtime::enable_networking(cfg, cluster);
    return cfg;
  }

  session_config config_;
  runtime::cluster_settings cluster_settings_;
  caf::actor_system_config actor_config_;
  caf::actor_system system_;
  std::shared_ptr<runtime::cluster_driver> cluster_;  // a driver's: its queries run on the workers
  std::shared_ptr<connectors::memory_catalog> catalog_ = std::make_shared<connectors::memory_catalog>();
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<query_control>> queries_;
};

session::session() : session(session_config{}) {}

namespace {

// Every batch allocates its column buffers afresh (512 KiB for 64 Ki int64 rows) and frees them when the
// next operator is done. glibc serves such blocks with mmap, or hands the freed heap back to the kernel,
// so each batch page-faulted its buffers in anew (a sixth of YSB's CPU time). From the first session on,
// blocks up to 32 MiB come from the heap and up to 64 MiB of freed heap stay mapped, unless the user tunes
// glibc's malloc through GLIBC_TUNABLES.
void keep_freed_buffers() {
#ifdef __GLIBC__
  static std::once_flag once;
  std::call_once(once, [] {
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (tunables && std::string_view(tunables).find("glibc.malloc.") != std::string_view::npos) return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
  });
#endif
}

// A worker's session never opens: the process serves its driver until a signal ends it.
std::shared_ptr<session::impl> open_session(const session_config& config) {
  keep_freed_buffers();
  if (config.role == session_config::cluster_role::worker) runtime::serve_as_worker(config);
  return std::make_shared<session::impl>(config);
}

}  // namespace

session::session(session_config config) : impl_(open_session(config)) {}

session::session(int argc, char** argv) {
  session_config config;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value_of = [&](std::string_view prefix) -> std::optional<std::string_view> {
      if (arg.substr(0, prefix.size()) == prefix) return arg.substr(prefix.size());
      return std::nullopt;
    };
    // A cluster flag's value: "FLAG=VALUE" or "FLAG VALUE".
    auto cluster_value = [&](std::string_view flag) -> std::optional<std::string> {
      if (arg == flag) {
        if (i + 1 >= argc) throw error("missing value after " + std::string(flag));
        return std::string(argv[++i]);
      }
      if (auto v = value_of(std::string(flag) + "=")) return std::string(*v);
      return std::nullopt;
    };
    if (auto v = cluster_value("--flow.role")) config.role = parse_role(*v);
    else if (auto v = cluster_value("--flow.listen")) config.listen = *v;
    else if (auto v = cluster_value("--flow.workers")) config.workers = split_list(*v);
    else if (auto v = cluster_value("--flow.join")) config.join = *v;
    else if (auto v = cluster_value("--flow.secret-file")) config.secret_file = *v;
    else if (auto v = cluster_value("--flow.tls-cert")) config.tls_certificate = *v;
    else if (auto v = cluster_value("--flow.tls-key")) config.tls_key = *v;
    else if (auto v = cluster_value("--flow.tls-ca")) config.tls_ca = *v;
    else if (auto v = value_of("--flow.threads=")) config.threads = parse_count(*v, "--flow.threads");
    else if (auto v = value_of("--flow.parallelism=")) config.parallelism = parse_count(*v, "--flow.parallelism");
    else if (auto v = value_of("--flow.max-failures=")) config.max_failures = static_cast<int>(parse_count(*v, "--flow.max-failures"));
    else if (auto v = value_of("--flow.idle-workers=")) config.idle_workers = parse_idle_workers(*v);
    else if (auto v = value_of("--flow.checkpoint-location=")) config.checkpoint_location = std::string(*v);
    else if (auto v = value_of("--flow.state-backend=")) config.state_backend = std::string(*v);
    else if (auto v = value_of("--flow.no-data-progress-interval-ms="))
      config.no_data_progress_interval =
          std::chrono::milliseconds(parse_count(*v, "--flow.no-data-progress-interval-ms"));
  }
  impl_ = open_session(config);
}

session::~session() {
  if (impl_) impl_->stop_all();
}

data_frame_reader session::read() { return data_frame_reader(impl_, false); }
data_frame_reader session::read_stream() { return data_frame_reader(impl_, true); }

data_frame session::sql(const std::string& query) { return create_data_frame({impl_->sql(query)}); }

data_frame session::create_data_frame(std::vector<batch> rows) {
  if (rows.empty()) throw error("create_data_frame: give at least one batch (it defines the schema)");
  scan_spec scan;
  scan.format = "local";
  scan.path = "memory";
  scan.schema = rows.front().schema_ref();
  for (const auto& b : rows)
    if (b.schema() != *scan.schema) throw error("create_data_frame: all batches must have the same schema");
  scan.rows = std::make_shared<const std::vector<batch>>(std::move(rows));
  return data_frame(impl_, make_scan(std::move(scan)));
}

const session_config& session::config() const { return impl_->config(); }

const runtime::cluster_membership& session::cluster() const { return impl_->cluster(); }

std::shared_ptr<session_context> session::context() const { return impl_; }

}  // namespace flow
