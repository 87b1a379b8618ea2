// The lifecycle's rebalance (a worker joined a running query): the dataflow is placed again at the next
// epoch boundary, with the committed state, as a restart that is no failure. Events in, actions out.
#include <catch2/catch.hpp>

#include "flow/runtime/query_lifecycle.hpp"
#include "lifecycle_checks.hpp"

using namespace flow;
using namespace flow::runtime;
using namespace std::chrono_literals;
namespace act = flow::runtime::lifecycle_actions;
using flow::test::all_of;
using flow::test::has;

namespace {

const lifecycle_clock::time_point t0 = lifecycle_clock::time_point{} + 1h;

lifecycle_options one_source(trigger_kind kind) {
  lifecycle_options o;
  o.trigger = flow::trigger{kind, kind == trigger_kind::processing_time ? 100ms : 0ms};
  o.source_descriptions = {"Source0"};
  o.initial_offsets = {"0"};
  o.sinks = 1;
  o.initial_backoff = 500ms;
  return o;
}

lifecycle_actions_list answer(query_lifecycle& q, const lifecycle_actions_list& actions, std::string end) {
  const auto plans = all_of<act::plan_sources>(actions);
  REQUIRE(plans.size() == 1);
  return q.plan_answered(plans.front().plan, 0, plan_answer{1, std::move(end), {}, {}}, t0);
}

lifecycle_actions_list commit(query_lifecycle& q, std::int64_t epoch) {
  return q.sink_committed(q.generation(), 0, epoch, epoch_stats{}, {}, t0);
}

}  // namespace

TEST_CASE("rebalance: asked while epochs run, the dataflow is placed again once they committed, no plan between",
          "[cluster][rebalance]") {
  query_lifecycle q(one_source(trigger_kind::available_now), {});
  REQUIRE(has<act::spawn_dataflow>(q.start()));
  auto e0 = answer(q, q.poll(t0), "1");  // epoch 0 runs, the next plan is under way
  REQUIRE(all_of<act::run_epoch>(e0).size() == 1);
  CHECK(q.rebalance().empty());
  auto e1 = answer(q, e0, "2");
  REQUIRE(all_of<act::run_epoch>(e1).size() == 1);
  CHECK_FALSE(has<act::plan_sources>(e1));  // no new epoch while the rebalance waits

  auto c0 = commit(q, 0);
  CHECK(has<act::publish_progress>(c0));
  CHECK_FALSE(has<act::kill_dataflow>(c0));
  CHECK_FALSE(has<act::plan_sources>(c0));

  auto c1 = commit(q, 1);
  CHECK(has<act::publish_progress>(c1));
  CHECK(has<act::kill_dataflow>(c1));
  CHECK_FALSE(has<act::plan_sources>(c1));
  REQUIRE(all_of<act::publish_status>(c1).size() == 1);
  CHECK(all_of<act::publish_status>(c1).front().status.message == "Placing the dataflow again over the cluster's workers");

  auto down = q.actor_down("killed", true, t0);
  REQUIRE(all_of<act::schedule>(down).size() == 1);
  CHECK(all_of<act::schedule>(down).front().what == act::timer::restart);
  CHECK(all_of<act::schedule>(down).front().delay == 0ms);  // no failure: no backoff

  auto restarted = q.restart_timer(t0);
  REQUIRE(all_of<act::spawn_dataflow>(restarted).size() == 1);
  CHECK(all_of<act::spawn_dataflow>(restarted).front().generation == 2);
  CHECK_FALSE(has<act::abort_epoch>(restarted));  // every epoch was committed: nothing to replay
  REQUIRE(all_of<act::plan_sources>(restarted).size() == 1);
  CHECK(all_of<act::plan_sources>(restarted).front().from == std::vector<std::string>{"2"});

  auto e2 = answer(q, restarted, "3");
  REQUIRE(all_of<act::run_epoch>(e2).size() == 1);
  auto c2 = commit(q, 2);
  REQUIRE(all_of<act::publish_progress>(c2).size() == 1);
  CHECK(all_of<act::publish_progress>(c2).front().restarts == 0);  // a rebalance is not counted as a restart
}

TEST_CASE("rebalance: asked while the query waits for its next tick, the dataflow is placed again at once",
          "[cluster][rebalance]") {
  query_lifecycle q(one_source(trigger_kind::processing_time), {});
  REQUIRE(has<act::spawn_dataflow>(q.start()));
  auto e0 = answer(q, q.tick(t0), "1");
  REQUIRE(all_of<act::run_epoch>(e0).size() == 1);
  commit(q, 0);
  auto rebalanced = q.rebalance();
  CHECK(has<act::kill_dataflow>(rebalanced));
  // A tick during the rebalance waits for the new generation.
  CHECK_FALSE(has<act::plan_sources>(q.tick(t0 + 100ms)));
  q.actor_down("killed", true, t0);
  auto restarted = q.restart_timer(t0);
  CHECK(has<act::spawn_dataflow>(restarted));
  CHECK(has<act::plan_sources>(restarted));
}
