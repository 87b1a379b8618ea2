// The built-in aggregation on the RocksDB state backend gives what the memory backend gives.
#include <catch2/catch.hpp>
#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "flow/aggregate_operators.hpp"
#include "flow/connectors/rocksdb_store.hpp"
#include "../../libflow/src/aggregate_stored.hpp"
#include "collecting_context.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::sorted_rows;
using flow::test::temp_dir;
namespace fs = std::filesystem;

namespace {

using rows_t = std::vector<std::vector<value>>;

state_backend_config rocksdb_config() {
  connectors::register_state_backends();
  return state_backend_config{.kind = "rocksdb"};
}

schema_ptr sales_schema() {
  return make_schema({{"name", type_id::string, true},
                      {"id", type_id::int64, true},
                      {"price", type_id::float64, true},
                      {"at", type_id::timestamp, true},
                      {"amount", type_id::int64, true}});
}

// Rows over few enough keys that later epochs update groups earlier epochs made. Prices are quarters, so
// float sums are exact whatever the order of folding.
batch random_sales(std::mt19937& rng, std::size_t rows) {
  const value none = null_value{};
  std::uniform_int_distribution<int> pick(0, 99);
  rows_t out;
  for (std::size_t i = 0; i < rows; ++i) {
    const int r = pick(rng);
    out.push_back({r < 5 ? none : value(std::string(1, static_cast<char>('a' + pick(rng) % 6))),
                   value(std::int64_t{pick(rng) % 20}),
                   r % 7 == 0 ? none : value(static_cast<double>(pick(rng) % 16) / 4.0),
                   value(timestamp{std::int64_t{pick(rng) % 40} * 1'000'000}),
                   r % 11 == 0 ? none : value(std::int64_t{pick(rng) - 50})});
  }
  return make_batch(sales_schema(), out);
}

std::vector<agg_spec> every_kind() {
  return {{agg_kind::sum, col("amount"), {}}, {agg_kind::count, expr{}, {}}, {agg_kind::min, col("price"), {}},
          {agg_kind::max, col("name"), {}},   {agg_kind::avg, col("amount"), {}}, {agg_kind::sum, col("price"), {}}};
}

// Several key types: strings and integers (with nulls), a float, windows.
std::vector<std::vector<expr>> key_sets() {
  return {{col("name"), col("id")}, {col("price")}, {window(col("at"), "10 seconds"), col("name")},
          {window(col("at"), "10 seconds", "5 seconds")}};
}

std::unique_ptr<operator_state> stored_state(const stream_operator& op, const fs::path& dir,
                                             const state_backend_config& config = rocksdb_config()) {
  auto state = op.make_state();
  state->use_backend(config, dir.string());
  return state;
}

struct run_result {
  std::vector<rows_t> emitted, changes;
  rows_t snapshot;
  std::size_t num_rows = 0;
  bool operator==(const run_result&) const = default;
};

// Epochs of raw batches through a partial aggregation into the final operator, as the runtime runs them.
run_result run_final(const aggregate_operator& aggregate, const final_aggregate_operator& op, operator_state& state,
                     const std::vector<std::vector<batch>>& epochs) {
  run_result run;
  flow::test::collecting_context ctx;
  for (const auto& epoch : epochs) {
    for (const batch& raw : epoch) {
      auto partial = aggregate.make_state();
      partial->update(raw);
      op.process(partial->snapshot(), 0, &state, ctx);
    }
    op.end_epoch(&state, ctx);
    run.emitted.push_back(sorted_rows(ctx.take(op.output_schema())));
    run.changes.push_back(sorted_rows(state.take_changes()));
  }
  run.snapshot = sorted_rows(state.snapshot());
  run.num_rows = state.num_rows();
  return run;
}

std::vector<std::vector<batch>> random_epochs(unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<batch>> epochs(5);
  for (auto& epoch : epochs) {
    for (int b = 0; b < 3; ++b) epoch.push_back(random_sales(rng, 60));
  }
  epochs.push_back({});  // an epoch without data
  return epochs;
}

}  // namespace

TEST_CASE("rocksdb aggregation: update and complete mode emit, change and snapshot what the memory backend does",
          "[rocksdb][aggregate]") {
  temp_dir dir;
  const auto epochs = random_epochs(7);
  int n = 0;
  for (const auto& keys : key_sets()) {
    for (const auto mode : {output_mode::update, output_mode::complete}) {
      auto aggregate = std::make_shared<const aggregate_operator>(sales_schema(), keys, every_kind());
      const final_aggregate_operator op(aggregate, mode);
      INFO(aggregate->describe() << " in " << to_string(mode) << " mode");
      auto in_memory = op.make_state();
      auto on_disk = stored_state(op, dir / std::to_string(n++));
      REQUIRE(on_disk->snapshots_to_directory());
      const run_result expected = run_final(*aggregate, op, *in_memory, epochs);
      const run_result actual = run_final(*aggregate, op, *on_disk, epochs);
      REQUIRE(expected.num_rows > 5);
      CHECK(actual.emitted == expected.emitted);
      CHECK(actual.changes == expected.changes);
      CHECK(actual.snapshot == expected.snapshot);
      CHECK(actual.num_rows == expected.num_rows);
    }
  }
}

TEST_CASE("rocksdb aggregation: a restored directory snapshot and a copy fed the changes hold the same groups",
          "[rocksdb][aggregate]") {
  temp_dir dir;
  auto aggregate = std::make_shared<const aggregate_operator>(sales_schema(), key_sets()[0], every_kind());
  const final_aggregate_operator op(aggregate, output_mode::update);
  auto state = stored_state(op, dir / "work");
  auto copy = stored_state(op, dir / "copy");  // the runtime's copy as of the last commit
  flow::test::collecting_context ctx;
  std::mt19937 rng(3);
  for (int epoch = 0; epoch < 3; ++epoch) {
    auto partial = aggregate->make_state();
    partial->update(random_sales(rng, 100));
    op.process(partial->snapshot(), 0, state.get(), ctx);
    op.end_epoch(state.get(), ctx);
    copy->apply_changes(state->take_changes());
  }
  const rows_t expected = sorted_rows(state->snapshot());
  CHECK(sorted_rows(copy->snapshot()) == expected);
  CHECK(copy->num_rows() == state->num_rows());
  state->snapshot_to((dir / "snap").string());
  CHECK(fs::exists(dir / "snap" / "CURRENT"));
  auto restored = stored_state(op, dir / "restored");
  restored->restore_from((dir / "snap").string());
  CHECK(sorted_rows(restored->snapshot()) == expected);
  CHECK(restored->num_rows() == state->num_rows());
  auto from_rows = stored_state(op, dir / "rows");
  from_rows->restore(state->snapshot());
  CHECK(sorted_rows(from_rows->snapshot()) == expected);
  CHECK(from_rows->num_rows() == state->num_rows());
}

TEST_CASE("rocksdb aggregation: append mode emits closed windows once and evicts them from the store",
          "[rocksdb][aggregate]") {
  temp_dir dir;
  const auto epochs = random_epochs(11);
  for (const auto& keys : {key_sets()[2], key_sets()[3]}) {
    const aggregate_operator aggregate(sales_schema(), keys, every_kind());
    INFO(aggregate.describe());
    auto in_memory = aggregate.make_state();
    detail::stored_aggregate_state on_disk(aggregate,
                                           make_key_value_store(rocksdb_config(), (dir / aggregate.describe()).string()));
    std::int64_t watermark = 0;
    for (const auto& epoch : epochs) {
      for (const batch& raw : epoch) {
        in_memory->update(raw);
        on_disk.update(raw);
      }
      CHECK(sorted_rows(on_disk.changed_since_emit()) == sorted_rows(in_memory->changed_since_emit()));
      watermark += 7'000'000;
      const timestamp at{watermark};
      CHECK(sorted_rows(on_disk.emit(output_mode::append, at)) == sorted_rows(in_memory->emit(output_mode::append, at)));
      CHECK(on_disk.num_groups() == in_memory->num_groups());
      CHECK(sorted_rows(on_disk.snapshot()) == sorted_rows(in_memory->snapshot()));
    }
    CHECK(on_disk.evict_groups(timestamp{INT64_MAX}).num_rows() == in_memory->evict_groups(timestamp{INT64_MAX}).num_rows());
    CHECK(on_disk.num_groups() == 0);
    CHECK(on_disk.snapshot().num_rows() == 0);
  }
}

TEST_CASE("rocksdb aggregation: 1 M groups hold far less memory than in the memory backend", "[rocksdb][aggregate]") {
  temp_dir dir;
  const schema_ptr schema = make_schema({{"id", type_id::int64, false}, {"amount", type_id::int64, false}});
  auto aggregate = std::make_shared<const aggregate_operator>(schema, std::vector<expr>{col("id")},
                                                              std::vector<agg_spec>{{agg_kind::sum, col("amount"), {}}});
  const final_aggregate_operator op(aggregate, output_mode::update);
  constexpr std::int64_t groups = 1'000'000, per_epoch = 50'000;
  auto heap_in_use = [] {
    const struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
  };
  auto held_bytes = [&](std::unique_ptr<operator_state> state) {
    const std::size_t before = heap_in_use();
    flow::test::collecting_context ctx;
    for (std::int64_t first = 0; first < groups; first += per_epoch) {
      column_builder ids(type_id::int64), amounts(type_id::int64);
      for (std::int64_t id = first; id < first + per_epoch; ++id) {
        ids.append_int(id);
        amounts.append_int(1);
      }
      auto partial = aggregate->make_state();
      partial->update(batch(schema, {ids.finish(), amounts.finish()}));
      op.process(partial->snapshot(), 0, state.get(), ctx);
      op.end_epoch(state.get(), ctx);
      ctx.emitted.clear();
      state->take_changes();
    }
    REQUIRE(state->num_rows() == static_cast<std::size_t>(groups));
    const std::size_t held = heap_in_use() - before;
    state.reset();
    return held;
  };
  const std::size_t in_memory = held_bytes(op.make_state());
  // RocksDB's block cache and memtables are a fixed budget (32 + 2 x 4 MiB by default) that 1 M small groups
  // would not outgrow; a smaller budget shows that what the state holds does not follow the groups.
  state_backend_config small = rocksdb_config();
  small.block_cache_bytes = std::size_t{4} << 20;
  small.write_buffer_bytes = std::size_t{2} << 20;
  const std::size_t on_disk = held_bytes(stored_state(op, dir / "work", small));
  if (in_memory == 0) {
    WARN("skipped the comparison: the heap in use cannot be measured here (a sanitizer build)");
    return;
  }
  INFO("heap held: memory backend " << in_memory << " bytes, rocksdb " << on_disk << " bytes");
  CHECK(on_disk * 3 < in_memory);
}

namespace {

std::size_t address_space_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoul(line.substr(7)) << 10;
  }
  return 0;
}

void lift_address_space_limit() {
  const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_AS, &unlimited);
}

// Groups with long string keys, so that RocksDB's memtables and files grow quickly.
batch long_key_rows(std::int64_t first, std::int64_t count) {
  const schema_ptr schema = make_schema({{"key", type_id::string, false}, {"amount", type_id::int64, false}});
  column_builder keys(type_id::string), amounts(type_id::int64);
  const std::string padding(200, 'x');
  for (std::int64_t id = first; id < first + count; ++id) {
    keys.append_string(std::to_string(id) + padding);
    amounts.append_int(1);
  }
  return batch(schema, {keys.finish(), amounts.finish()});
}

}  // namespace

// The child of the next test, in a process of its own (a fork of the test process would inherit RocksDB's
// default environment without its background threads, and hang for that reason alone): runs an
// aggregation on RocksDB under an address-space limit, and prints how it ended after its state is gone.
TEST_CASE("rocksdb aggregation: out-of-memory child", "[.][rocksdb-oom-child]") {
  const char* work = std::getenv("FLOW_TEST_OOM_DIR");
  if (!work) return;
  // The memtable (1 GiB: never flushed here) grows a block of 1 MiB at a time until the limit below stops
  // it. The test's own allocations must not be the ones that meet the limit: the inputs are made before it,
  // and glibc keeps what an epoch frees in its heap (no mmap, no trim) for the next epoch to reuse.
  state_backend_config config = rocksdb_config();
  config.write_buffer_bytes = std::size_t{1} << 30;
  std::string outcome;
  {
    const schema_ptr schema = long_key_rows(0, 0).schema_ref();
    auto aggregate = std::make_shared<const aggregate_operator>(
        schema, std::vector<expr>{col("key")}, std::vector<agg_spec>{{agg_kind::sum, col("amount"), {}}});
    const final_aggregate_operator op(aggregate, output_mode::update);
    mallopt(M_ARENA_MAX, 1);  // glibc reserves 64 MiB of address space per arena otherwise
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
    std::vector<batch> inputs;
    for (std::int64_t epoch = 0; epoch < 200; ++epoch) inputs.push_back(long_key_rows(epoch * 2'000, 2'000));
    try {
      auto state = stored_state(op, work, config);
      const rlimit limit{address_space_bytes() + (std::size_t{64} << 20), RLIM_INFINITY};
      setrlimit(RLIMIT_AS, &limit);
      flow::test::collecting_context ctx;
      for (const batch& input : inputs) {
        auto partial = aggregate->make_state();
        partial->update(input);
        op.process(partial->snapshot(), 0, state.get(), ctx);
        op.end_epoch(state.get(), ctx);
        ctx.emitted.clear();
        state->take_changes();
      }
      outcome = "finished";
    } catch (const error& e) {
      lift_address_space_limit();  // recording the outcome must not fail for want of memory
      outcome = e.what();
    } catch (const std::exception& e) {
      lift_address_space_limit();
      outcome = std::string("not a flow::error: ") + e.what();
    }
    lift_address_space_limit();
  }  // the state is destroyed here: the hang this test guards against was in its destructor
  std::cout << "\nOUTCOME: " << outcome << std::endl;
}

TEST_CASE("rocksdb aggregation: out of memory inside RocksDB fails the state with a clear error, never a hang",
          "[rocksdb][aggregate]") {
#ifdef __SANITIZE_ADDRESS__
  // AddressSanitizer's operator new ends the process on a failed allocation instead of throwing bad_alloc.
  WARN("skipped under AddressSanitizer: it ends the process on a failed allocation, the release build tests this");
  return;
#endif
  temp_dir dir;
  const fs::path work = dir / "work";
  ::setenv("FLOW_TEST_OOM_DIR", work.c_str(), 1);
  int status = -1;
  {
    flow::test::child_process child(fs::read_symlink("/proc/self/exe").string(), {"[rocksdb-oom-child]"},
                                    dir / "out.txt", dir / "err.txt");
    status = child.wait_exit(std::chrono::seconds(60));
  }
  ::unsetenv("FLOW_TEST_OOM_DIR");
  const std::string output = flow::test::read_file(dir / "out.txt");
  const auto at = output.find("OUTCOME: ");
  const std::string outcome = at == std::string::npos ? "" : output.substr(at + 9, output.find('\n', at) - at - 9);
  INFO("the child's outcome: " << outcome << "\nits output:\n" << output << flow::test::read_file(dir / "err.txt"));
  REQUIRE(status == 0);  // -1: it hung (killed after 60 s) or crashed
  CHECK(outcome.find("RocksDB state store in '" + work.string() + "'") != std::string::npos);
  CHECK(outcome.find("out of memory") != std::string::npos);
  CHECK(outcome.find("block_cache_bytes") != std::string::npos);
}
