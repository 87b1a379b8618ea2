#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "collecting_context.hpp"
#include "flow/keyed_operator.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::error_of;
using flow::test::sorted_rows;

namespace {

struct totals {
  std::int64_t sum = 0;
  std::int64_t rows = 0;
};

// Sums `amount` per key; a row whose amount is null removes its key. Emits the changed keys at the epoch's end.
class total_by_key final : public keyed_operator<totals> {
 public:
  total_by_key(const schema_ptr& input, std::vector<std::string> keys)
      : keyed_operator({.name = "total_by_key",
                        .input = input,
                        .keys = std::move(keys),
                        .output = {{"total", type_id::int64}, {"rows", type_id::int64}},
                        .state = {{"sum", type_id::int64}, {"rows", type_id::int64}}}),
        amount_(input->index_of("amount")) {}

  void process(const batch& rows, const row_keys& keys, keyed_state<totals>& state, operator_context&) const override {
    const column& amount = rows.col(amount_);
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      if (!amount.valid(i)) {
        state.remove(keys[i]);
        continue;
      }
      totals& t = state.get(keys[i]);
      t.sum += amount.ints()[i];
      ++t.rows;
    }
  }
  void end_epoch(keyed_state<totals>& state, operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](key_ref key, const totals& t) { out.add(key).add(t.sum).add(t.rows); });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const totals& t, row_writer& out) const override { out.add(t.sum).add(t.rows); }
  totals load(const batch& saved, std::size_t row) const override {
    return {saved.col(0).ints()[row], saved.col(1).ints()[row]};
  }

 private:
  std::size_t amount_;
};

schema_ptr input_schema() {
  return make_schema({{"name", type_id::string, true}, {"id", type_id::int64, true}, {"amount", type_id::int64, true}});
}

// The same computation, written independently: (name, id) -> totals; an absent amount removes the key.
using key_values = std::pair<value, value>;
using model = std::map<key_values, totals>;

void fold(model& m, const batch& rows) {
  for (std::size_t i = 0; i < rows.num_rows(); ++i) {
    key_values key{rows.at(i, 0), rows.at(i, 1)};
    const value amount = rows.at(i, 2);
    if (is_null(amount)) {
      m.erase(key);
      continue;
    }
    m[key].sum += std::get<std::int64_t>(amount);
    ++m[key].rows;
  }
}

// name, id, total, rows of the model's keys in `which` (all when empty), sorted.
std::vector<std::vector<value>> model_rows(const model& m, const std::set<key_values>& which = {}) {
  std::vector<std::vector<value>> rows;
  for (const auto& [key, t] : m) {
    if (which.empty() || which.count(key)) rows.push_back({key.first, key.second, t.sum, t.rows});
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::set<key_values> keys_of(const batch& rows) {
  std::set<key_values> keys;
  for (std::size_t i = 0; i < rows.num_rows(); ++i) keys.insert({rows.at(i, 0), rows.at(i, 1)});
  return keys;
}

// Random rows over few keys (nulls among them) with about one in ten amounts null (a removal).
batch random_rows(std::mt19937& rng, std::size_t n) {
  std::vector<std::vector<value>> rows;
  for (std::size_t i = 0; i < n; ++i) {
    const int name = static_cast<int>(rng() % 6), id = static_cast<int>(rng() % 4);
    rows.push_back({name == 0 ? value{null_value{}} : value{std::string(static_cast<std::size_t>(name), 'n')},
                    id == 0 ? value{null_value{}} : value{std::int64_t{id}},
                    rng() % 10 == 0 ? value{null_value{}} : value{static_cast<std::int64_t>(rng() % 100)}});
  }
  return make_batch(input_schema(), rows);
}

// The snapshot's rows without the deleted flag, as the model's rows.
std::vector<std::vector<value>> snapshot_rows(const operator_state& state) {
  const batch snap = state.snapshot();
  std::vector<std::vector<value>> rows;
  for (const auto& row : sorted_rows(snap)) {
    CHECK(row[2] == value{false});
    rows.push_back({row[0], row[1], row[3], row[4]});
  }
  return rows;
}

}  // namespace

TEST_CASE("keyed operator: each epoch emits the keys it changed, with their key columns decoded", "[keyed]") {
  total_by_key op(input_schema(), {"name", "id"});
  CHECK(op.key_columns() == std::vector<std::string>{"name", "id"});
  CHECK(op.output_schema()->to_string() == "name: string, id: int64, total: int64, rows: int64");
  CHECK(op.state_schema()->to_string() == "name: string, id: int64, __deleted: boolean, sum: int64, rows: int64");
  auto state = op.make_state();
  REQUIRE(state->durable());
  collecting_context ctx(1);
  const stream_operator& as_operator = op;

  as_operator.process(make_batch(input_schema(), {{std::string("a"), std::int64_t{1}, std::int64_t{10}},
                                                  {std::string("b"), std::int64_t{1}, std::int64_t{5}},
                                                  {std::string("a"), std::int64_t{1}, std::int64_t{7}}}),
                      0, state.get(), ctx);
  as_operator.process(make_batch(input_schema(), {{std::string("a"), std::int64_t{2}, std::int64_t{1}}}), 0,
                      state.get(), ctx);
  CHECK(ctx.emitted.empty());
  as_operator.end_epoch(state.get(), ctx);
  CHECK(sorted_rows(ctx.take(op.output_schema())) ==
        std::vector<std::vector<value>>{{std::string("a"), std::int64_t{1}, std::int64_t{17}, std::int64_t{2}},
                                        {std::string("a"), std::int64_t{2}, std::int64_t{1}, std::int64_t{1}},
                                        {std::string("b"), std::int64_t{1}, std::int64_t{5}, std::int64_t{1}}});
  CHECK(state->num_rows() == 3);
  CHECK(state->take_changes().num_rows() == 3);
  CHECK(state->take_changes().num_rows() == 0);  // taken: nothing changed since

  // Epoch 2 changes (b, 1) and removes (a, 2): only (b, 1) is emitted, and the changes hold both.
  ctx.set_epoch(2);
  as_operator.process(make_batch(input_schema(), {{std::string("b"), std::int64_t{1}, std::int64_t{1}},
                                                  {std::string("a"), std::int64_t{2}, null_value{}}}),
                      0, state.get(), ctx);
  as_operator.end_epoch(state.get(), ctx);
  CHECK(sorted_rows(ctx.take(op.output_schema())) ==
        std::vector<std::vector<value>>{{std::string("b"), std::int64_t{1}, std::int64_t{6}, std::int64_t{2}}});
  CHECK(sorted_rows(state->take_changes()) ==
        std::vector<std::vector<value>>{{std::string("a"), std::int64_t{2}, true, null_value{}, null_value{}},
                                        {std::string("b"), std::int64_t{1}, false, std::int64_t{6}, std::int64_t{2}}});
  CHECK(state->num_rows() == 2);
}

TEST_CASE("keyed state: a copy fed take_changes() equals the original, and restore continues the same", "[keyed]") {
  for (const auto& keys : {std::vector<std::string>{"name", "id"}, std::vector<std::string>{"id"}}) {
    INFO("keys: " << keys.size());
    total_by_key op(input_schema(), keys);
    auto original = op.make_state(), copy = op.make_state(), copy_from_columns = op.make_state();
    std::mt19937 rng(7);
    model truth;  // keyed by (name, id): for the single key "id", name is always "k"
    auto next_batch = [&] {
      batch rows = random_rows(rng, 50);
      if (keys.size() == 1) {
        std::vector<std::vector<value>> fixed;
        for (std::size_t i = 0; i < rows.num_rows(); ++i) fixed.push_back({std::string("k"), rows.at(i, 1), rows.at(i, 2)});
        rows = make_batch(input_schema(), fixed);
      }
      return rows;
    };
    collecting_context ctx;
    for (std::int64_t epoch = 1; epoch <= 6; ++epoch) {
      ctx.set_epoch(epoch);
      std::set<key_values> touched;
      for (int b = 0; b < 3; ++b) {
        const batch rows = next_batch();
        static_cast<const stream_operator&>(op).process(rows, 0, original.get(), ctx);
        fold(truth, rows);
        for (const auto& k : keys_of(rows)) touched.insert(k);
      }
      static_cast<const stream_operator&>(op).end_epoch(original.get(), ctx);
      // Emitted: the touched keys that still have a value, with their values.
      std::set<key_values> live_touched;
      for (const auto& k : touched) {
        if (truth.count(k)) live_touched.insert(k);
      }
      const batch out = ctx.take(op.output_schema());
      if (keys.size() == 1) {
        std::vector<std::vector<value>> expected;
        for (const auto& row : model_rows(truth, live_touched)) expected.push_back({row[1], row[2], row[3]});
        CHECK(sorted_rows(out) == expected);
      } else {
        CHECK(sorted_rows(out) == (live_touched.empty() ? std::vector<std::vector<value>>{} : model_rows(truth, live_touched)));
      }
      const batch changes = original->take_changes();
      copy->apply_changes(changes);
      // The changes carry their encoded keys (the copy reads them); without them the copy encodes the key columns.
      REQUIRE(changes.attached_keys() != nullptr);
      const batch bare(changes.schema_ref(), changes.columns());
      REQUIRE(bare.attached_keys() == nullptr);
      copy_from_columns->apply_changes(bare);
      CHECK(sorted_rows(copy->snapshot()) == sorted_rows(original->snapshot()));
      CHECK(sorted_rows(copy_from_columns->snapshot()) == sorted_rows(original->snapshot()));
      CHECK(copy->num_rows() == truth.size());
    }
    if (keys.size() == 2) CHECK(snapshot_rows(*original) == model_rows(truth));

    // A restarted instance restored from the copy continues exactly like the original.
    auto restored = op.make_state();
    restored->restore(copy->snapshot());
    CHECK(restored->take_changes().num_rows() == 0);
    collecting_context ctx_original(7), ctx_restored(7);
    const batch rows = next_batch();
    static_cast<const stream_operator&>(op).process(rows, 0, original.get(), ctx_original);
    static_cast<const stream_operator&>(op).process(rows, 0, restored.get(), ctx_restored);
    static_cast<const stream_operator&>(op).end_epoch(original.get(), ctx_original);
    static_cast<const stream_operator&>(op).end_epoch(restored.get(), ctx_restored);
    CHECK(sorted_rows(ctx_restored.take(op.output_schema())) == sorted_rows(ctx_original.take(op.output_schema())));
    CHECK(sorted_rows(restored->take_changes()) == sorted_rows(original->take_changes()));
    CHECK(sorted_rows(restored->snapshot()) == sorted_rows(original->snapshot()));
  }
}

TEST_CASE("keyed operator: reads the keys a hash edge attached to its key columns, and only those", "[keyed]") {
  total_by_key op(input_schema(), {"name", "id"});
  const stream_operator& as_operator = op;
  std::mt19937 rng(3);
  const batch rows = random_rows(rng, 400);
  // Fed the parts of a hash edge that attaches their keys, or of one that does not: the same state.
  auto attached = op.make_state(), encoded = op.make_state();
  collecting_context ctx;
  const auto with_keys = hash_partition(rows, {0, 1}, 3, true), without = hash_partition(rows, {0, 1}, 3);
  for (std::size_t p = 0; p < 3; ++p) {
    REQUIRE(with_keys[p].attached_keys() != nullptr);
    as_operator.process(with_keys[p], 0, attached.get(), ctx);
    as_operator.process(without[p], 0, encoded.get(), ctx);
  }
  CHECK(sorted_rows(attached->snapshot()) == sorted_rows(encoded->snapshot()));
  CHECK(attached->num_rows() > 10);

  // The attached keys are what the operator keys by (rows of other keys attached to these rows' columns
  // prove it), unless they are of other columns.
  const batch one = make_batch(input_schema(), {{std::string("a"), std::int64_t{1}, std::int64_t{5}}});
  const batch other = make_batch(input_schema(), {{std::string("z"), std::int64_t{9}, std::int64_t{0}}});
  auto keys_of_other = [&](std::vector<std::size_t> columns) {
    std::vector<column> key_columns;
    for (auto c : columns) key_columns.push_back(other.col(c));
    return one.with_attached_keys(std::make_shared<const encoded_key_columns>(encoded_key_columns{
        columns, std::make_shared<const encoded_keys>(encode_keys(key_columns, 1)), nullptr}));
  };
  auto state = op.make_state();
  as_operator.process(keys_of_other({0, 1}), 0, state.get(), ctx);
  CHECK(sorted_rows(state->snapshot()) ==
        std::vector<std::vector<value>>{{std::string("z"), std::int64_t{9}, false, std::int64_t{5}, std::int64_t{1}}});
  state = op.make_state();
  as_operator.process(keys_of_other({1, 0}), 0, state.get(), ctx);
  CHECK(sorted_rows(state->snapshot()) ==
        std::vector<std::vector<value>>{{std::string("a"), std::int64_t{1}, false, std::int64_t{5}, std::int64_t{1}}});
}

TEST_CASE("keyed state: null keys are keys of their own, apart from the empty string and zero", "[keyed]") {
  total_by_key op(input_schema(), {"name", "id"});
  keyed_state<totals> state(op);
  const batch rows = make_batch(input_schema(), {{null_value{}, null_value{}, std::int64_t{1}},
                                                 {std::string(), null_value{}, std::int64_t{2}},
                                                 {null_value{}, std::int64_t{0}, std::int64_t{4}},
                                                 {std::string(), std::int64_t{0}, std::int64_t{8}},
                                                 {null_value{}, null_value{}, std::int64_t{16}}});
  collecting_context ctx;
  static_cast<const stream_operator&>(op).process(rows, 0, &state, ctx);
  CHECK(state.size() == 4);
  std::map<std::vector<value>, std::int64_t> sums;
  state.for_each([&](key_ref key, const totals& t) { sums[state.key_values(key)] = t.sum; });
  CHECK(sums == std::map<std::vector<value>, std::int64_t>{{{null_value{}, null_value{}}, 17},
                                                           {{std::string(), null_value{}}, 2},
                                                           {{null_value{}, std::int64_t{0}}, 4},
                                                           {{std::string(), std::int64_t{0}}, 8}});
  // find, put and remove by a batch's keys.
  const row_keys keys(encode_keys(op.layout(), {rows.col(0), rows.col(1)}, rows.num_rows()));
  REQUIRE(state.find(keys[0]) != nullptr);
  CHECK(state.find(keys[0])->sum == 17);
  state.put(keys[1], totals{100, 1});
  CHECK(state.find(keys[1])->sum == 100);
  CHECK(state.remove(keys[2]));
  CHECK(!state.remove(keys[2]));
  CHECK(state.find(keys[2]) == nullptr);
  CHECK(state.size() == 3);
  std::size_t removed = 0;
  state.for_each_removed([&](key_ref key) {
    ++removed;
    CHECK(state.key_values(key) == std::vector<value>{null_value{}, std::int64_t{0}});
  });
  CHECK(removed == 1);
  state.get(keys[2]).sum = 5;  // back again, as a fresh value
  CHECK(state.find(keys[2])->sum == 5);
  CHECK(state.find(keys[2])->rows == 0);
}

TEST_CASE("keyed state: removing most keys compacts the store, which keeps the rest", "[keyed]") {
  total_by_key op(input_schema(), {"id"});
  keyed_state<totals> state(op);
  collecting_context ctx;
  std::vector<std::vector<value>> rows;
  for (std::int64_t id = 0; id < 5000; ++id) rows.push_back({std::string("k"), id, id});
  static_cast<const stream_operator&>(op).process(make_batch(input_schema(), rows), 0, &state, ctx);
  // The runtime's checkpoint copy is fed the changes; it must compact the same way.
  keyed_state<totals> checkpoint(op);
  checkpoint.apply_changes(state.take_changes());
  const std::size_t full = state.memory_bytes();
  const std::size_t checkpoint_full = checkpoint.memory_bytes();
  rows.clear();
  for (std::int64_t id = 0; id < 5000; ++id) {
    if (id % 10 != 0) rows.push_back({std::string("k"), id, null_value{}});
  }
  static_cast<const stream_operator&>(op).process(make_batch(input_schema(), rows), 0, &state, ctx);
  const batch removed = state.take_changes();
  CHECK(removed.num_rows() == 4500);
  CHECK(state.size() == 500);
  CHECK(state.memory_bytes() < full / 2);
  checkpoint.apply_changes(removed);
  CHECK(checkpoint.size() == 500);
  CHECK(checkpoint.memory_bytes() < checkpoint_full / 2);
  CHECK(checkpoint.take_changes().num_rows() == 0);  // what it was fed is not a change of its own
  const batch snap = state.snapshot();
  REQUIRE(snap.num_rows() == 500);
  for (std::size_t i = 0; i < snap.num_rows(); ++i) {
    CHECK(std::get<std::int64_t>(snap.at(i, 0)) % 10 == 0);
    CHECK(snap.at(i, 2) == snap.at(i, 0));  // sum == id
  }
  // Keys added after the compaction are found, old ones still are.
  static_cast<const stream_operator&>(op).process(
      make_batch(input_schema(), {{std::string("k"), std::int64_t{10}, std::int64_t{1}},
                                  {std::string("k"), std::int64_t{7}, std::int64_t{3}}}),
      0, &state, ctx);
  CHECK(state.size() == 501);
  std::map<std::int64_t, std::int64_t> changed;
  state.for_each_changed([&](key_ref key, const totals& t) { changed[std::get<std::int64_t>(state.key_values(key)[0])] = t.sum; });
  CHECK(changed == std::map<std::int64_t, std::int64_t>{{7, 3}, {10, 11}});
}

TEST_CASE("keyed operator: bad specs, batches, values and state rows are clear errors", "[keyed]") {
  CHECK_THAT(error_of([] { total_by_key(input_schema(), {"nope"}); }),
             Catch::Contains("key column 'nope' is not in its input (name: string, id: int64, amount: int64)"));
  total_by_key op(input_schema(), {"name"});
  auto state = op.make_state();
  collecting_context ctx;
  const stream_operator& as_operator = op;
  auto other = make_batch(make_schema({{"name", type_id::int64, true}, {"amount", type_id::int64, true}}),
                          {{std::int64_t{1}, std::int64_t{1}}});
  CHECK_THAT(error_of([&] { as_operator.process(other, 0, state.get(), ctx); }),
             Catch::Contains("was built for the input (name: string, id: int64, amount: int64), but got a batch of"));
  const auto good = make_batch(input_schema(), {{std::string("a"), std::int64_t{1}, std::int64_t{1}}});
  CHECK_THAT(error_of([&] { as_operator.process(good, 1, state.get(), ctx); }), Catch::Contains("has one input"));
  CHECK_THAT(error_of([&] { as_operator.process(good, 0, nullptr, ctx); }),
             Catch::Contains("'total_by_key' was called without the state its make_state() makes"));
  CHECK_THAT(error_of([&] { state->apply_changes(good); }),
             Catch::Contains("state rows must have its state schema (name: string, __deleted: boolean, sum: int64, rows: int64)"));

  as_operator.process(good, 0, state.get(), ctx);
  auto& keyed = dynamic_cast<keyed_state<totals>&>(*state);
  keyed.for_each([&](key_ref key, const totals&) {
    auto out = op.output_rows();
    CHECK_THAT(error_of([&] { out.add(key).add("text"); }), Catch::Contains("column 'total' is int64, but a string"));
    auto short_row = op.output_rows();
    short_row.add(key).add(1);
    CHECK_THAT(error_of([&] { short_row.finish(); }), Catch::Contains("column 'rows' has 0 values for 1 rows"));
    auto long_row = op.output_rows();
    CHECK_THAT(error_of([&] { long_row.add(key).add(1).add(2).add(3); }), Catch::Contains("more values than the"));
  });
}
