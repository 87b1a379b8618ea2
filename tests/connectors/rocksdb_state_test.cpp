#include <catch2/catch.hpp>
#include <malloc.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <string>

#include "flow/connectors/rocksdb_store.hpp"
#include "keyed_backend_checks.hpp"

using namespace flow;
using flow::test::backend_run;
using flow::test::error_of;
using flow::test::mixed_epochs;
using flow::test::run_epochs;
using flow::test::sorted_rows;
using flow::test::summary_by_key;
using flow::test::temp_dir;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<operator_state> state_on(const summary_by_key& op, const state_backend_config& config, const fs::path& dir) {
  auto state = op.make_state();
  state->use_backend(config, dir.string());
  return state;
}

state_backend_config rocksdb_config() {
  connectors::register_state_backends();  // as a program without queries does
  return state_backend_config{.kind = "rocksdb"};
}

// Rows (name "k", id, amount, no label) for ids [first, last).
batch id_rows(std::int64_t first, std::int64_t last, std::int64_t amount) {
  const schema_ptr schema = summary_by_key::input_schema();  // the loop below must not outlive it
  std::vector<column_builder> columns;
  for (const field& f : schema->fields()) columns.emplace_back(f.type);
  for (std::int64_t id = first; id < last; ++id) {
    columns[0].append_string("k");
    columns[1].append_int(id);
    columns[2].append_int(amount);
    columns[3].append_null();
  }
  std::vector<column> finished;
  for (auto& c : columns) finished.push_back(c.finish());
  return batch(schema, std::move(finished));
}

// Feeds keys [0, total) in epochs of `per_epoch` keys, taking the changes after each, as the runtime does.
void load_keys(const summary_by_key& op, operator_state& state, std::int64_t total, std::int64_t per_epoch) {
  const stream_operator& as_operator = op;
  flow::test::collecting_context ctx;
  for (std::int64_t first = 0; first < total; first += per_epoch) {
    as_operator.process(id_rows(first, std::min(total, first + per_epoch), 1), 0, &state, ctx);
    as_operator.end_epoch(&state, ctx);
    ctx.emitted.clear();
    state.take_changes();
  }
}

// Heap bytes in use, small and mmapped blocks (malloc's count, which RocksDB's caches and memtables go through too).
std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

std::size_t directory_bytes(const fs::path& dir) {
  std::size_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir)) total += entry.file_size();
  return total;
}

// The bytes of the files in dir that are not hard links to a file of previous.
std::size_t new_bytes(const fs::path& dir, const fs::path& previous) {
  std::set<ino_t> old_inodes;
  struct stat st {};
  for (const auto& entry : fs::directory_iterator(previous)) {
    if (stat(entry.path().c_str(), &st) == 0) old_inodes.insert(st.st_ino);
  }
  std::size_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (stat(entry.path().c_str(), &st) == 0 && !old_inodes.count(st.st_ino)) total += entry.file_size();
  }
  return total;
}

}  // namespace

TEST_CASE("rocksdb state: a keyed operator emits, changes and snapshots exactly what the memory backend does",
          "[rocksdb]") {
  temp_dir dir;
  for (const auto& keys : {std::vector<std::string>{"name", "id"}, std::vector<std::string>{"id"}}) {
    const summary_by_key op(keys);
    auto in_memory = op.make_state();
    auto on_disk = state_on(op, rocksdb_config(), dir / ("work-" + std::to_string(keys.size())));
    CHECK(on_disk->snapshots_to_directory());
    const backend_run expected = run_epochs(op, *in_memory, mixed_epochs());
    REQUIRE(expected.num_rows > 0);
    CHECK(run_epochs(op, *on_disk, mixed_epochs()) == expected);
  }
}

TEST_CASE("rocksdb state: restore_from a snapshot gives back the exact state, removed keys stay removed", "[rocksdb]") {
  temp_dir dir;
  const summary_by_key op;
  auto in_memory = op.make_state();
  auto on_disk = state_on(op, rocksdb_config(), dir / "work");
  const auto epochs = mixed_epochs();
  const std::vector<std::vector<batch>> first(epochs.begin(), epochs.begin() + 2), rest(epochs.begin() + 2, epochs.end());
  run_epochs(op, *in_memory, first);
  run_epochs(op, *on_disk, first);  // removes key ("b", 1)
  on_disk->snapshot_to((dir / "snapshot").string());
  run_epochs(op, *on_disk, rest);  // changes the working state after the snapshot

  auto restored = state_on(op, rocksdb_config(), dir / "restored");
  restored->restore_from((dir / "snapshot").string());
  CHECK(sorted_rows(restored->snapshot()) == sorted_rows(in_memory->snapshot()));
  CHECK(restored->num_rows() == in_memory->num_rows());
  // It goes on as the state that never stopped (its keys were read from the snapshot).
  CHECK(run_epochs(op, *restored, rest) == run_epochs(op, *in_memory, rest));

  // Row snapshots work on the RocksDB state too, and a restore of one replaces everything.
  auto from_rows = state_on(op, rocksdb_config(), dir / "from-rows");
  run_epochs(op, *from_rows, first);
  from_rows->restore(in_memory->snapshot());
  CHECK(sorted_rows(from_rows->snapshot()) == sorted_rows(in_memory->snapshot()));

  CHECK(error_of([&] { restored->restore_from((dir / "missing").string()); }).find("it is not a snapshot") !=
        std::string::npos);
  CHECK(error_of([&] { on_disk->snapshot_to((dir / "snapshot").string()); }).find("it must not exist yet") !=
        std::string::npos);
}

TEST_CASE("rocksdb state: a snapshot after a small change writes the changed keys, not the whole state", "[rocksdb]") {
  temp_dir dir;
  const summary_by_key op({"id"});
  // A memtable that holds the whole load: the first snapshot flushes it into one file, and no compaction
  // rewrites it between the two snapshots.
  state_backend_config config = rocksdb_config();
  config.write_buffer_bytes = std::size_t{128} << 20;
  auto state = state_on(op, config, dir / "work");
  constexpr std::int64_t keys = 300'000;
  load_keys(op, *state, keys, keys);
  state->snapshot_to((dir / "s1").string());

  // 1% of the keys change.
  const stream_operator& as_operator = op;
  flow::test::collecting_context ctx;
  as_operator.process(id_rows(0, keys / 100, 5), 0, state.get(), ctx);
  as_operator.end_epoch(state.get(), ctx);
  state->take_changes();
  state->snapshot_to((dir / "s2").string());

  const std::size_t total = directory_bytes(dir / "s2"), written = new_bytes(dir / "s2", dir / "s1");
  INFO("snapshot bytes " << total << ", not shared with the previous snapshot " << written);
  CHECK(total > std::size_t{2} << 20);
  CHECK(written * 10 < total);

  auto restored = state_on(op, rocksdb_config(), dir / "restored");
  restored->restore_from((dir / "s2").string());
  CHECK(restored->num_rows() == static_cast<std::size_t>(keys));
  const bool same_state = sorted_rows(restored->snapshot()) == sorted_rows(state->snapshot());
  CHECK(same_state);  // (not expanded: 300,000 rows)
}

TEST_CASE("rocksdb state: 1 M keys hold far less memory than in the memory backend", "[rocksdb]") {
  temp_dir dir;
  const summary_by_key op({"id"});
  constexpr std::int64_t keys = 1'000'000, per_epoch = 50'000;
  // Measured in this process, one backend at a time: what the loaded state keeps in use on the heap.
  auto held_bytes = [&](std::unique_ptr<operator_state> state) {
    const std::size_t before = heap_in_use();
    load_keys(op, *state, keys, per_epoch);
    REQUIRE(state->num_rows() == static_cast<std::size_t>(keys));
    const std::size_t held = heap_in_use() - before;
    state.reset();
    return held;
  };
  const std::size_t in_memory = held_bytes(op.make_state());
  const std::size_t on_disk = held_bytes(state_on(op, rocksdb_config(), dir / "work"));
  if (in_memory == 0) {
    // AddressSanitizer's allocator does not report to glibc's mallinfo2: the figures exist in plain builds.
    WARN("skipped the comparison: the heap in use cannot be measured here (a sanitizer build)");
    return;
  }
  INFO("heap held: memory backend " << in_memory << " bytes, rocksdb " << on_disk << " bytes");
  CHECK(on_disk * 3 < in_memory);
}

TEST_CASE("rocksdb state: an unusable working directory is a clear error", "[rocksdb]") {
  temp_dir dir;
  flow::test::write_file(dir / "file", "not a directory");
  CHECK(error_of([&] { connectors::make_rocksdb_store(rocksdb_config(), (dir / "file" / "work").string()); })
            .find("RocksDB state store") != std::string::npos);
  CHECK(error_of([&] { connectors::make_rocksdb_store(rocksdb_config(), ""); }).find("no working directory") !=
        std::string::npos);
}
