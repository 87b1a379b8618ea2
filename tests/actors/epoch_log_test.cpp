#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <future>

#include "flow/runtime/epoch_log.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::sorted_rows;

namespace {

using log_t = runtime::epoch_log<int>;
using committed_t = std::vector<std::pair<std::int64_t, log_t::entry>>;

std::vector<std::int64_t> epochs(const committed_t& done) {
  std::vector<std::int64_t> out;
  for (const auto& [epoch, e] : done) out.push_back(epoch);
  return out;
}

schema_ptr keyed() { return make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}}); }

// sum(v) per k.
std::shared_ptr<const aggregate_operator> sum_by_key() {
  return std::make_shared<aggregate_operator>(keyed(), std::vector<expr>{col("k")},
                                              std::vector<agg_spec>{{agg_kind::sum, col("v"), {}}});
}

// What a state partition reports at the end of an epoch: the groups its input changed.
batch changes_of(aggregate_state& table, const batch& input) {
  table.update(input);
  batch changed = table.changed_since_emit();
  table.emit(output_mode::update);
  return changed;
}

// The coordinator's copy of an aggregation partition: an operator_state over an aggregate_state.
class aggregate_slot final : public operator_state {
 public:
  explicit aggregate_slot(std::unique_ptr<aggregate_state> table) : table_(std::move(table)) {}
  batch snapshot() const override { return table_->snapshot(); }
  void restore(const batch& rows) override { table_->restore(rows); }
  batch take_changes() override { return table_->changed_since_emit(); }
  void apply_changes(const batch& rows) override { table_->replace_groups(rows); }
  std::size_t num_rows() const override { return table_->num_groups(); }
  std::size_t memory_bytes() const override { return table_->memory_bytes(); }

 private:
  std::unique_ptr<aggregate_state> table_;
};

std::vector<std::unique_ptr<operator_state>> slots(const aggregate_operator& agg, std::size_t n) {
  std::vector<std::unique_ptr<operator_state>> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(std::make_unique<aggregate_slot>(agg.make_state()));
  return out;
}

std::vector<std::string> at(std::string offset) { return {std::move(offset)}; }

batch rows(std::vector<std::pair<std::int64_t, std::int64_t>> kv) {
  std::vector<std::vector<value>> r;
  for (auto [k, v] : kv) r.push_back({k, v});
  return make_batch(keyed(), r);
}

}  // namespace

TEST_CASE("epoch log: a stateless epoch is committed by the sink and leaves the log", "[epoch_log]") {
  log_t log({}, 1);
  CHECK(log.append(at("{\"o\":0}"), at("{\"o\":5}"), 10) == 0);
  CHECK(log.append(at("{\"o\":5}"), at("{\"o\":9}"), 11) == 1);
  CHECK(log.append(at("{\"o\":9}"), at("{\"o\":12}"), 12) == 2);
  CHECK(log.logged() == 3);

  auto done = log.sink_committed(0);
  REQUIRE(epochs(done) == std::vector<std::int64_t>{0});
  CHECK(done[0].second.end == at("{\"o\":5}"));
  CHECK(done[0].second.info == 10);
  CHECK(log.logged() == 2);
  CHECK(log.last_committed() == 0);
  CHECK(log.sink_committed(0).empty());  // a repeated commit changes nothing

  // A failure now: only the epochs the sink had not committed run again, with their offsets.
  CHECK(log.restart() == std::vector<std::int64_t>{1, 2});
  CHECK(log.at(1).start == at("{\"o\":5}"));
  CHECK(log.at(2).end == at("{\"o\":12}"));
  CHECK(epochs(log.sink_committed(2)) == std::vector<std::int64_t>{1, 2});
  CHECK(log.logged() == 0);
  CHECK(log.restart().empty());
  CHECK_THROWS_WITH(log.at(1), Catch::Contains("epoch 1 is not logged"));
}

TEST_CASE("epoch log: a long stateless run keeps only the epochs in flight", "[epoch_log]") {
  log_t log({}, 1);
  std::size_t most = 0;
  for (std::int64_t e = 0; e < 10000; ++e) {
    log.append(at(std::to_string(e)), at(std::to_string(e + 1)), 0);
    most = std::max(most, log.logged());
    if (e >= 3) CHECK(epochs(log.sink_committed(e - 3)) == std::vector<std::int64_t>{e - 3});
  }
  CHECK(most == 4);
  CHECK(log.restart() == std::vector<std::int64_t>{9997, 9998, 9999});
}

TEST_CASE("epoch log: a stateful epoch commits only when every partition reported its changes", "[epoch_log]") {
  auto agg = sum_by_key();
  log_t log(slots(*agg, 2), 1);
  REQUIRE(log.stateful());
  std::vector<std::unique_ptr<aggregate_state>> live;  // what the two aggregate instances hold
  for (int p = 0; p < 2; ++p) live.push_back(agg->make_state());
  // The same inputs folded in one pass: the state as of each commit, computed independently.
  std::vector<std::unique_ptr<aggregate_state>> expected;
  for (int p = 0; p < 2; ++p) expected.push_back(agg->make_state());

  log.append(at("0"), at("1"), 0);
  log.append(at("1"), at("2"), 0);
  log.append(at("2"), at("3"), 0);
  // Pipelined: epoch 1's changes of partition 0 arrive before epoch 0 is committed.
  CHECK(log.state_changes(0, 0, changes_of(*live[0], rows({{1, 10}, {2, 5}}))).empty());
  CHECK(log.state_changes(1, 0, changes_of(*live[0], rows({{1, 1}, {4, 4}}))).empty());
  CHECK(log.sink_committed(0).empty());  // partition 1 has not reported epoch 0
  CHECK(epochs(log.state_changes(0, 1, changes_of(*live[1], rows({{3, 7}})))) == std::vector<std::int64_t>{0});
  expected[0]->update(rows({{1, 10}, {2, 5}}));
  expected[1]->update(rows({{3, 7}}));
  CHECK(sorted_rows(log.slot_state(0).snapshot()) == sorted_rows(expected[0]->snapshot()));
  CHECK(sorted_rows(log.slot_state(1).snapshot()) == sorted_rows(expected[1]->snapshot()));

  // Epoch 1: the sink commits, then partition 1 (no change) reports.
  CHECK(log.sink_committed(1).empty());
  CHECK(epochs(log.state_changes(1, 1, changes_of(*live[1], rows({})))) == std::vector<std::int64_t>{1});
  expected[0]->update(rows({{1, 1}, {4, 4}}));
  CHECK(sorted_rows(log.slot_state(0).snapshot()) == sorted_rows(expected[0]->snapshot()));
  CHECK(log.last_committed() == 1);

  // Epoch 2 fails after partition 0 changed key 1 again: the restart forgets that change, restores the
  // state of epoch 1 and replays epoch 2 only.
  CHECK(log.state_changes(2, 0, changes_of(*live[0], rows({{1, 100}}))).empty());
  CHECK(log.restart() == std::vector<std::int64_t>{2});
  CHECK(sorted_rows(log.slot_state(0).snapshot()) == sorted_rows(expected[0]->snapshot()));
  CHECK(sorted_rows(log.slot_state(1).snapshot()) == sorted_rows(expected[1]->snapshot()));
  for (int p = 0; p < 2; ++p) live[p]->restore(log.slot_state(p).snapshot());
  CHECK(log.state_changes(2, 0, changes_of(*live[0], rows({{1, 100}}))).empty());
  CHECK(log.state_changes(2, 1, changes_of(*live[1], rows({{3, 1}}))).empty());
  CHECK(epochs(log.sink_committed(2)) == std::vector<std::int64_t>{2});
  expected[0]->update(rows({{1, 100}}));
  expected[1]->update(rows({{3, 1}}));
  for (int p = 0; p < 2; ++p) CHECK(sorted_rows(log.slot_state(p).snapshot()) == sorted_rows(expected[p]->snapshot()));
  CHECK(log.logged() == 0);
  CHECK_THROWS_WITH(log.state_changes(3, 2, rows({})), Catch::Contains("state slot 2 does not exist"));
}

TEST_CASE("epoch log: with two sinks an epoch commits when both have committed it", "[epoch_log]") {
  log_t log({}, 2);
  log.append({"a0", "b0"}, {"a1", "b0"}, 0);
  log.append({"a1", "b0"}, {"a2", "b1"}, 0);
  CHECK(log.sink_committed(1, 1).empty());  // sink 1 is ahead; sink 0 has committed nothing
  CHECK(epochs(log.sink_committed(0, 0)) == std::vector<std::int64_t>{0});
  // A restart forgets sink 1's commit of epoch 1 too: both sinks write it again.
  CHECK(log.restart() == std::vector<std::int64_t>{1});
  CHECK(log.at(1).end == std::vector<std::string>{"a2", "b1"});
  CHECK(log.sink_committed(1, 0).empty());
  CHECK(epochs(log.sink_committed(1, 1)) == std::vector<std::int64_t>{1});
  CHECK_THROWS_WITH(log.sink_committed(2, 2), Catch::Contains("sink 2 does not exist"));
}

TEST_CASE("epoch log: a slot lent for a snapshot's copy is copied as lent, and the next commit's change waits "
          "for the copy",
          "[epoch_log]") {
  auto agg = sum_by_key();
  log_t log(slots(*agg, 1), 1);
  auto live = agg->make_state();
  auto expected = agg->make_state();
  log.append(at("0"), at("1"), 0);
  log.append(at("1"), at("2"), 0);
  CHECK(log.state_changes(0, 0, changes_of(*live, rows({{1, 10}, {2, 5}}))).empty());
  REQUIRE(epochs(log.sink_committed(0)) == std::vector<std::int64_t>{0});
  expected->update(rows({{1, 10}, {2, 5}}));
  const auto as_of_0 = sorted_rows(expected->snapshot());

  auto loan = log.lend_slot_state(0);
  // Epoch 1 commits on another thread (as the coordinator goes on while the snapshot thread copies).
  CHECK(log.state_changes(1, 0, changes_of(*live, rows({{1, 1}, {3, 3}}))).empty());
  auto commit = std::async(std::launch::async, [&] { return epochs(log.sink_committed(1)); });
  CHECK(commit.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  CHECK(sorted_rows(loan->copy()) == as_of_0);
  REQUIRE(commit.get() == std::vector<std::int64_t>{1});
  expected->update(rows({{1, 1}, {3, 3}}));
  CHECK(sorted_rows(log.slot_state(0).snapshot()) == sorted_rows(expected->snapshot()));

  // A loan dropped without a copy (a snapshot job the writer never ran) lets the changes through as well.
  log.append(at("2"), at("3"), 0);
  log.lend_slot_state(0).reset();
  CHECK(log.state_changes(2, 0, changes_of(*live, rows({{4, 4}}))).empty());
  CHECK(epochs(log.sink_committed(2)) == std::vector<std::int64_t>{2});
  expected->update(rows({{4, 4}}));
  CHECK(sorted_rows(log.slot_state(0).snapshot()) == sorted_rows(expected->snapshot()));
}
