// What a checkpoint commit costs with 1 M keys of a keyed_state<std::int64_t>: a delta of the keys an epoch
// changed against a full snapshot, written through the checkpoint store (encode, seal, fsync, rename), and
// the recovery of a snapshot plus 9 deltas. The numbers behind the default snapshot interval
// (docs/fault-tolerance.md). Prints one JSON line per measurement.
// Usage: checkpoint_store_bench [KEYS [DIRECTORY]] (default: 1000000 keys, a directory under the system temp dir)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench_input.hpp"
#include "flow/connectors/durable_file.hpp"
#include "flow/keyed_operator.hpp"
#include "flow/runtime/checkpoint_store.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

flow::schema_ptr input_schema() {
  return flow::make_schema({{"k", flow::type_id::int64, false}, {"v", flow::type_id::int64, false}});
}

// sum(v) per k.
class sum_by_key final : public flow::keyed_operator<std::int64_t> {
 public:
  sum_by_key()
      : keyed_operator({.name = "sum_by_key", .input = input_schema(), .keys = {"k"},
                        .output = {{"sum", flow::type_id::int64}}, .state = {{"sum", flow::type_id::int64}}}) {}
  void process(const flow::batch& rows, const flow::row_keys& keys, flow::keyed_state<std::int64_t>& state,
               flow::operator_context&) const override {
    for (std::size_t i = 0; i < rows.num_rows(); ++i) state.get(keys[i]) += rows.col(1).ints()[i];
  }
  void save(const std::int64_t& sum, flow::row_writer& out) const override { out.add(sum); }
  std::int64_t load(const flow::batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }
};

class bench_context final : public flow::operator_context {
 public:
  void emit(flow::batch) override {}
  std::int64_t epoch() const override { return 0; }
  std::size_t instance() const override { return 0; }
  std::size_t parallelism() const override { return 1; }
};

// Rows adding 1 to keys first, first + step, ... (count of them, modulo keys).
flow::batch updates(std::size_t count, std::size_t first, std::size_t step, std::size_t keys) {
  flow::column_builder k(flow::type_id::int64), v(flow::type_id::int64);
  for (std::size_t i = 0; i < count; ++i) {
    k.append_int(static_cast<std::int64_t>((first + i * step) % keys));
    v.append_int(1);
  }
  std::vector<flow::column> columns;
  columns.push_back(k.finish());
  columns.push_back(v.finish());
  return flow::batch(input_schema(), std::move(columns));
}

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

int run_bench(int argc, char** argv) {
  const std::size_t keys = argc > 1 ? bench::count_argument(argv[1], "the key count (first argument)") : 1000000;
  const fs::path root = argc > 2 ? fs::path(argv[2])
                                  : fs::temp_directory_path() / ("checkpoint-store-bench-" + std::to_string(::getpid()));
  fs::remove_all(root / "ckpt");
  const flow::operator_ptr op = std::make_shared<sum_by_key>();
  auto state = op->make_state();
  bench_context ctx;
  op->process(updates(keys, 0, 1, keys), 0, state.get(), ctx);
  state->take_changes();
  auto snapshot = [&](std::size_t) { return state->snapshot(); };

  // snapshot_interval 10: epochs 9 and 19 write a full snapshot besides their delta.
  flow::runtime::checkpoint_store store((root / "ckpt").string(), {.min_batches_to_retain = 100, .snapshot_interval = 10});
  std::int64_t epoch = 0;
  for (std::size_t changed : {std::size_t{1000}, keys / 100, keys / 10}) {
    double delta_ms = 0, snapshot_ms = 0;
    std::size_t delta_bytes = 0, snapshot_bytes = 0, snapshots = 0;
    for (int round = 0; round < 10; ++round, ++epoch) {
      op->process(updates(changed, static_cast<std::size_t>(epoch) * 7919, 104729, keys), 0, state.get(), ctx);
      store.write_offsets({epoch, {"{}"}, {"{}"}});
      store.write_commit(epoch, {state->take_changes()}, snapshot);
      const auto& stats = store.last_commit();
      if (stats.snapshot_bytes[0] > 0) {
        snapshot_ms += stats.duration_ms;
        snapshot_bytes += stats.snapshot_bytes[0];
        ++snapshots;
      } else {
        delta_ms += stats.duration_ms;
        delta_bytes += stats.delta_bytes[0];
      }
    }
    const double deltas = 10.0 - static_cast<double>(snapshots);
    std::printf("{\"bench\":\"checkpoint_store\",\"keys\":%zu,\"changed_keys\":%zu,\"delta_commit_ms\":%.2f,"
                "\"delta_bytes\":%.0f,\"snapshot_commit_ms\":%.2f,\"snapshot_bytes\":%.0f}\n",
                keys, changed, delta_ms / deltas, static_cast<double>(delta_bytes) / deltas,
                snapshot_ms / static_cast<double>(snapshots),
                static_cast<double>(snapshot_bytes) / static_cast<double>(snapshots));
  }

  // Without the commit of epoch 29 (which has a snapshot; the log's last record, cut off as a torn append
  // would leave it), recovery rebuilds epoch 28: snapshot 19 and 9 deltas.
  {
    std::filesystem::path segment;
    for (const auto& entry : std::filesystem::directory_iterator(root / "ckpt" / "log"))
      if (segment.empty() || std::stoll(entry.path().stem().string()) > std::stoll(segment.stem().string()))
        segment = entry.path();
    const auto records = flow::connectors::scan_sealed_log(flow::connectors::read_file("bench", segment.string()));
    std::filesystem::resize_file(segment, records.back().at);
  }
  auto recovered_state = op->make_state();
  const auto started = clock_type::now();
  auto recovered = flow::runtime::checkpoint_store((root / "ckpt").string()).recover({recovered_state.get()});
  std::printf("{\"bench\":\"checkpoint_store_recovery\",\"keys\":%zu,\"epoch\":%lld,\"deltas_applied\":9,"
              "\"recover_ms\":%.2f,\"rows\":%zu}\n",
              keys, static_cast<long long>(recovered.last_committed), ms_since(started), recovered_state->num_rows());
  fs::remove_all(root / "ckpt");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run("checkpoint_store_bench", [&] { return run_bench(argc, argv); });
}
