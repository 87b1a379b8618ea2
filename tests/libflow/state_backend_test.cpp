#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>

#include "keyed_backend_checks.hpp"

using namespace flow;
using flow::test::backend_run;
using flow::test::error_of;
using flow::test::mixed_epochs;
using flow::test::run_epochs;
using flow::test::summary_by_key;

namespace {

using contents = std::map<std::string, std::string, std::less<>>;

// A key_value_store in a std::map; its snapshots are copies kept by directory name. Registered as "test-map".
class map_store final : public key_value_store {
 public:
  static std::map<std::string, contents>& snapshots() {
    static std::map<std::string, contents> all;
    return all;
  }
  static map_store* last;  // the store the factory made last, for inspecting it

  bool get(std::string_view key, std::string& value) const override {
    auto it = data.find(key);
    if (it == data.end()) return false;
    value = it->second;
    return true;
  }
  void apply(const key_value_batch& writes) override {
    ++batches;
    for (const auto& w : writes.writes()) {
      if (w.value) data[w.key] = *w.value;
      else data.erase(w.key);
    }
  }
  void for_each(const std::function<void(std::string_view, std::string_view)>& f) const override {
    for (const auto& [k, v] : data) f(k, v);
  }
  void clear() override { data.clear(); }
  std::size_t memory_bytes() const override { return 0; }
  std::size_t disk_bytes() const override { return 0; }
  void snapshot_to(const std::string& directory) const override { snapshots()[directory] = data; }
  void restore_from(const std::string& directory) override { data = snapshots().at(directory); }

  contents data;
  int batches = 0;
};
map_store* map_store::last = nullptr;

const bool map_store_registered = [] {
  register_state_backend("test-map", [](const state_backend_config&, const std::string&) {
    auto store = std::make_unique<map_store>();
    map_store::last = store.get();
    return store;
  });
  return true;
}();

std::unique_ptr<operator_state> state_on(const summary_by_key& op, const std::string& kind) {
  auto state = op.make_state();
  state->use_backend(state_backend_config{.kind = kind}, "unused");
  return state;
}

}  // namespace

TEST_CASE("state backend: keyed state over a key-value store emits, changes and snapshots what memory does",
          "[state_backend]") {
  for (const auto& keys : {std::vector<std::string>{"name", "id"}, std::vector<std::string>{"id"}}) {
    const summary_by_key op(keys);
    auto in_memory = state_on(op, "memory");
    auto on_store = state_on(op, "test-map");
    map_store& store = *map_store::last;
    CHECK_FALSE(in_memory->snapshots_to_directory());
    CHECK(on_store->snapshots_to_directory());

    const backend_run expected = run_epochs(op, *in_memory, mixed_epochs());
    CHECK(run_epochs(op, *on_store, mixed_epochs()) == expected);
    REQUIRE(expected.num_rows > 0);
    // The store holds every key that has a value and none that was removed; each epoch was one write batch.
    CHECK(store.data.size() == expected.num_rows);
    CHECK(store.batches == 4);  // the fifth epoch changed nothing
  }
}

TEST_CASE("state backend: after take_changes the store is read through, and memory holds no key",
          "[state_backend]") {
  const summary_by_key op({"id"});
  auto state = state_on(op, "test-map");
  const std::size_t empty_bytes = state->memory_bytes();
  const schema_ptr in = summary_by_key::input_schema();
  std::vector<std::vector<value>> rows;
  for (std::int64_t id = 0; id < 5000; ++id) rows.push_back({std::string("k"), id, id, null_value{}});
  run_epochs(op, *state, {{make_batch(in, rows)}});
  CHECK(state->num_rows() == 5000);
  CHECK(state->memory_bytes() < empty_bytes + 4096);  // the cache was emptied; the values are in the store

  // An update of a stored key starts from its stored value; a removal removes it from the store.
  const auto second = run_epochs(op, *state,
                                 {{make_batch(in, {{std::string("k"), std::int64_t{10}, std::int64_t{1}, null_value{}},
                                                   {std::string("k"), std::int64_t{11}, null_value{}, null_value{}}})}});
  REQUIRE(second.emitted[0].size() == 1);
  CHECK(second.emitted[0][0] == std::vector<value>{std::int64_t{10}, std::int64_t{11}, std::int64_t{2}});
  CHECK(second.num_rows == 4999);
  CHECK(map_store::last->data.size() == 4999);
}

TEST_CASE("state backend: restore, apply_changes and directory snapshots keep the exact state", "[state_backend]") {
  const summary_by_key op;
  auto original = state_on(op, "memory");
  auto copy = state_on(op, "test-map");
  auto restored = state_on(op, "test-map");
  run_epochs(op, *original, mixed_epochs());
  // A store-backed copy fed the whole snapshot as changes, and one restored from it, equal the original.
  copy->apply_changes(original->snapshot());
  restored->restore(original->snapshot());
  CHECK(flow::test::sorted_rows(copy->snapshot()) == flow::test::sorted_rows(original->snapshot()));
  CHECK(flow::test::sorted_rows(restored->snapshot()) == flow::test::sorted_rows(original->snapshot()));
  CHECK(restored->num_rows() == original->num_rows());

  restored->snapshot_to("snapshot-1");
  auto from_directory = state_on(op, "test-map");
  from_directory->restore_from("snapshot-1");
  CHECK(flow::test::sorted_rows(from_directory->snapshot()) == flow::test::sorted_rows(original->snapshot()));
  CHECK(from_directory->num_rows() == original->num_rows());
}

TEST_CASE("state backend: misuse and bad names get clear errors", "[state_backend]") {
  const summary_by_key op;
  CHECK(error_of([] { make_key_value_store(state_backend_config{.kind = "rockdb"}, "dir"); })
            .find("unknown state backend 'rockdb'; registered: ") != std::string::npos);
  CHECK(error_of([] { make_key_value_store(state_backend_config{}, "dir"); }).find("'memory' state backend") !=
        std::string::npos);
  CHECK(error_of([] { register_state_backend("memory", [](const state_backend_config&, const std::string&) {
          return std::unique_ptr<key_value_store>();
        }); }).find("'memory' is the built-in") != std::string::npos);
  CHECK(state_backends().front() == "memory");

  auto in_memory = state_on(op, "memory");
  CHECK(error_of([&] { in_memory->snapshot_to("dir"); }).find("snapshots as rows") != std::string::npos);

  // A backend chosen after the state got keys, and a snapshot with changes not yet taken.
  auto state = op.make_state();
  run_epochs(op, *state, {mixed_epochs()[0]});
  CHECK(error_of([&] { state->use_backend(state_backend_config{.kind = "test-map"}, "dir"); })
            .find("after the state got keys") != std::string::npos);
  auto on_store = state_on(op, "test-map");
  const stream_operator& as_operator = op;
  flow::test::collecting_context ctx;
  as_operator.process(mixed_epochs()[0][0], 0, on_store.get(), ctx);
  CHECK(error_of([&] { on_store->snapshot_to("dir"); }).find("call take_changes() first") != std::string::npos);

  // A stored value written for other state columns is refused, naming them.
  auto broken = state_on(op, "test-map");
  map_store::last->data[std::string(16, '\0')] = "\x01\x02";
  CHECK(error_of([&] { broken->snapshot(); }).find("is truncated; the store was written for other state columns") !=
        std::string::npos);
}
