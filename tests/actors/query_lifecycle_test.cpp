// The coordinator's decisions without actors, threads or sleeps: events in, actions out, time as an argument.
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

using time_point = lifecycle_clock::time_point;
const time_point t0 = time_point{} + 1h;

template <class A>
A the(const lifecycle_actions_list& actions) {
  auto found = all_of<A>(actions);
  REQUIRE(found.size() == 1);
  return found.front();
}

// The position of the first action of type A (actions.size() when there is none).
template <class A>
std::size_t position(const lifecycle_actions_list& actions) {
  for (std::size_t i = 0; i < actions.size(); ++i)
    if (std::holds_alternative<A>(actions[i])) return i;
  return actions.size();
}

plan_answer data(std::string end) { return {1, std::move(end), {}, {}}; }
plan_answer nothing(std::string why = {}) { return {0, std::move(why), {}, {}}; }
plan_answer broken(std::string what) { return {-1, std::move(what), {}, {}}; }

// A durable state holding one batch: its changes are the whole new state.
class replacing_state final : public operator_state {
 public:
  batch snapshot() const override { return rows_; }
  void restore(const batch& rows) override { rows_ = rows; }
  batch take_changes() override { return rows_; }
  void apply_changes(const batch& rows) override { rows_ = rows; }
  std::size_t num_rows() const override { return rows_.valid() ? rows_.num_rows() : 0; }
  std::size_t memory_bytes() const override { return 0; }

 private:
  batch rows_;
};

batch values(std::vector<std::int64_t> vs) {
  std::vector<std::vector<value>> rows;
  for (auto v : vs) rows.push_back({value{v}});
  return make_batch(make_schema({{"v", type_id::int64, true}}), rows);
}

std::vector<std::int64_t> values_of(const batch& b) {
  std::vector<std::int64_t> out;
  for (std::size_t r = 0; b.valid() && r < b.num_rows(); ++r) out.push_back(std::get<std::int64_t>(b.at(r, 0)));
  return out;
}

lifecycle_options options_for(flow::trigger trigger, std::size_t sources = 1, std::size_t sinks = 1) {
  lifecycle_options o;
  o.trigger = trigger;
  for (std::size_t i = 0; i < sources; ++i) {
    o.source_descriptions.push_back("Source" + std::to_string(i));
    o.initial_offsets.push_back("0");
  }
  o.sinks = sinks;
  return o;
}

// A lifecycle and a clock; the helpers answer, commit and fail as the dataflow's actors would.
struct harness {
  query_lifecycle q;
  time_point now = t0;

  lifecycle_actions_list started;

  // resume: the query continues from its durable checkpoint.
  explicit harness(lifecycle_options options, std::size_t slots = 0, std::optional<resume_point> resume = {})
      : q(std::move(options), make_slots(slots)) {
    if (resume) q.resume(std::move(*resume));
    started = q.start();
    REQUIRE(the<act::spawn_dataflow>(started).generation == 1);
  }

  static std::vector<std::unique_ptr<operator_state>> make_slots(std::size_t n) {
    std::vector<std::unique_ptr<operator_state>> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(std::make_unique<replacing_state>());
    return out;
  }

  // Every source answers the plan in `actions`, in source order.
  lifecycle_actions_list answer(const lifecycle_actions_list& actions, std::vector<plan_answer> answers) {
    auto plan = the<act::plan_sources>(actions).plan;
    lifecycle_actions_list out;
    for (std::size_t i = 0; i < answers.size(); ++i) {
      auto step = q.plan_answered(plan, i, std::move(answers[i]), now);
      out.insert(out.end(), step.begin(), step.end());
    }
    return out;
  }
  lifecycle_actions_list answer(const lifecycle_actions_list& actions, plan_answer a) {
    return answer(actions, std::vector<plan_answer>{std::move(a)});
  }

  lifecycle_actions_list commit(std::int64_t epoch, std::size_t sink = 0, std::int64_t rows = 0) {
    epoch_stats stats;
    stats.input_rows = rows;
    return q.sink_committed(q.generation(), sink, epoch, stats, {}, now);
  }

  lifecycle_actions_list all_down() { return q.actor_down("an actor of the dataflow ended: killed", true, now); }
};

}  // namespace

TEST_CASE("lifecycle: available-now runs every planned epoch, pipelined, then finishes", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::available_now, {}}));
  auto first = h.q.poll(h.now);
  CHECK(the<act::plan_sources>(first).from == std::vector<std::string>{"0"});
  CHECK(the<act::publish_status>(first).status.message == "Getting offsets from Source0");

  auto e0 = h.answer(first, data("1"));
  auto run0 = the<act::run_epoch>(e0);
  CHECK(run0.epoch == 0);
  CHECK(run0.start == std::vector<std::string>{"0"});
  CHECK(run0.end == std::vector<std::string>{"1"});
  CHECK(the<act::plan_sources>(e0).from == std::vector<std::string>{"1"});  // the next plan starts at once

  auto e1 = h.answer(e0, data("2"));
  CHECK(the<act::run_epoch>(e1).epoch == 1);
  auto drained = h.answer(e1, nothing());
  CHECK(drained.empty());  // two epochs still run: the query ends when they commit

  auto c0 = h.commit(0);
  CHECK(the<act::commit_source>(c0).end == "1");
  CHECK(the<act::publish_progress>(c0).epoch == 0);
  CHECK_FALSE(has<act::stop_dataflow>(c0));
  CHECK_FALSE(has<act::plan_sources>(c0));

  auto c1 = h.commit(1);
  CHECK(the<act::publish_progress>(c1).epoch == 1);
  CHECK(has<act::stop_dataflow>(c1));
  CHECK_FALSE(has<act::close_query>(c1));  // the actors still run
  CHECK(h.q.finished());

  auto closed = h.all_down();
  CHECK_FALSE(the<act::close_query>(closed).failure);
  CHECK(h.q.closed());
}

TEST_CASE("lifecycle: once plans one epoch", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::once, {}}));
  auto e0 = h.answer(h.q.poll(h.now), data("7"));
  CHECK(the<act::run_epoch>(e0).epoch == 0);
  CHECK_FALSE(has<act::plan_sources>(e0));
  CHECK(h.q.poll(h.now).empty());  // a later trigger plans nothing more
  auto c0 = h.commit(0);
  CHECK(has<act::publish_progress>(c0));
  CHECK(has<act::stop_dataflow>(c0));
  CHECK_FALSE(has<act::plan_sources>(c0));
}

TEST_CASE("lifecycle: as-fast-as-possible polls when idle and reports idle progress at most every interval",
          "[lifecycle]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.poll_interval = 10ms;
  options.no_data_progress_interval = 1000ms;
  harness h(options);
  auto plan1 = h.q.poll(h.now);
  h.now += 3ms;
  auto idle1 = h.answer(plan1, nothing("HTTP 401"));
  CHECK(the<act::idle_plan>(idle1).plan == the<act::plan_sources>(plan1).plan);
  auto report = the<act::publish_idle_progress>(idle1);  // the first idle trigger reports at once
  CHECK(report.next_epoch == 0);
  CHECK(report.offsets == std::vector<std::string>{"0"});
  CHECK(report.trigger_start == t0);
  CHECK(the<act::publish_status>(idle1).status.message == "Waiting for data to arrive (Source0: HTTP 401)");
  auto poll = the<act::schedule>(idle1);
  CHECK(poll.what == act::timer::poll);
  CHECK(poll.delay == 10ms);

  h.now += 10ms;
  auto idle2 = h.answer(h.q.poll(h.now), nothing());
  CHECK(has<act::idle_plan>(idle2));
  CHECK_FALSE(has<act::publish_idle_progress>(idle2));  // within the interval
  CHECK(the<act::publish_status>(idle2).status.message == "Waiting for data to arrive");
  CHECK(the<act::schedule>(idle2).what == act::timer::poll);

  h.now = t0 + 1003ms;
  CHECK(has<act::publish_idle_progress>(h.answer(h.q.poll(h.now), nothing())));

  // Data: an epoch runs and the next plan starts; no poll timer while data comes.
  auto e0 = h.answer(h.q.poll(h.now), data("5"));
  CHECK(the<act::run_epoch>(e0).end == std::vector<std::string>{"5"});
  CHECK_FALSE(has<act::schedule>(e0));
}

TEST_CASE("lifecycle: with sources that notify, no data means waiting for a notification, no poll scheduled",
          "[lifecycle][notify]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.sources_notify = true;
  options.poll_interval = 10ms;
  options.no_data_progress_interval = 10000ms;
  harness h(options);
  auto idle = h.answer(h.q.poll(h.now), nothing());
  CHECK(has<act::idle_plan>(idle));
  CHECK(the<act::publish_status>(idle).status.message == "Waiting for data to arrive");
  // Only the idle report's timer, once: the sources' status and Spark's idle progress event.
  CHECK(the<act::schedule>(idle).delay == 10000ms);

  h.now += 5ms;
  auto arrived = h.q.data_arrived(h.now);
  CHECK(the<act::plan_sources>(arrived).from == std::vector<std::string>{"0"});
  auto e0 = h.answer(arrived, data("3"));
  CHECK(the<act::run_epoch>(e0).end == std::vector<std::string>{"3"});
  auto ahead = h.answer(e0, nothing());  // the plan ahead finds nothing while epoch 0 runs
  CHECK_FALSE(has<act::schedule>(ahead));
  auto c0 = h.commit(0);  // the plan ahead found nothing: the commit waits for a notification
  CHECK_FALSE(has<act::plan_sources>(c0));
  CHECK_FALSE(has<act::schedule>(c0));  // the idle report's timer is still on
  auto report = h.answer(h.q.poll(h.now + 10000ms), nothing());
  CHECK(the<act::schedule>(report).delay == 10000ms);
}

TEST_CASE("lifecycle: a notification during a running epoch plans right after its commit, one during a plan right "
          "after the plan",
          "[lifecycle][notify]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.sources_notify = true;
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  CHECK(the<act::run_epoch>(e0).epoch == 0);
  CHECK_FALSE(has<act::schedule>(h.answer(e0, nothing())));  // the plan ahead found nothing
  CHECK(h.q.data_arrived(h.now).empty());  // epoch 0 runs: no plan yet
  auto c0 = h.commit(0);
  CHECK(the<act::plan_sources>(c0).from == std::vector<std::string>{"1"});

  // Data arrives while that plan runs, after the source looked: the plan finds nothing, the next one at once.
  CHECK(h.q.data_arrived(h.now).empty());
  auto replanned = h.answer(c0, nothing());
  CHECK(has<act::idle_plan>(replanned));
  CHECK_FALSE(has<act::schedule>(replanned));
  CHECK(the<act::plan_sources>(replanned).from == std::vector<std::string>{"1"});
  CHECK(the<act::run_epoch>(h.answer(replanned, data("2"))).epoch == 1);
}

TEST_CASE("lifecycle: with sources that notify, an epoch costs one plan ahead, none after its commit",
          "[lifecycle][notify]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.sources_notify = true;
  harness h(options);
  CHECK(has<act::idle_plan>(h.answer(h.q.poll(h.now), nothing())));
  for (int epoch = 0; epoch < 3; ++epoch) {
    auto arrived = h.q.data_arrived(h.now);
    auto run = h.answer(arrived, data(std::to_string(epoch + 1)));
    CHECK(the<act::run_epoch>(run).epoch == epoch);
    CHECK_FALSE(has<act::schedule>(h.answer(run, nothing())));  // the plan ahead arms the sources
    auto committed = h.commit(epoch);
    CHECK(has<act::publish_progress>(committed));
    CHECK_FALSE(has<act::plan_sources>(committed));
    CHECK(the<act::publish_status>(committed).status.message == "Waiting for data to arrive");
  }
  // A plan ahead that found data: the next epoch runs and plans ahead again; its commit needs no plan either.
  auto e3 = h.answer(h.q.data_arrived(h.now), data("4"));
  auto e4 = h.answer(e3, data("5"));
  CHECK(the<act::run_epoch>(e4).epoch == 4);
  CHECK_FALSE(has<act::idle_plan>(h.answer(e4, nothing())));  // epochs still run
  CHECK_FALSE(has<act::plan_sources>(h.commit(3)));
  CHECK_FALSE(has<act::plan_sources>(h.commit(4)));
}

TEST_CASE("lifecycle: with sources that notify, the epochs replayed after a restart are followed by a plan",
          "[lifecycle][notify]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.sources_notify = true;
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  h.answer(e0, nothing());  // armed
  CHECK(has<act::kill_dataflow>(h.q.actor_failed(1, "boom", false, h.now)));
  h.q.actor_down("killed", true, h.now);
  auto restarted = h.q.restart_timer(h.now + 20ms);
  CHECK(the<act::run_epoch>(restarted).epoch == 0);
  CHECK(has<act::plan_sources>(h.commit(0)));  // a replay is no plan: what came since is looked for
}

TEST_CASE("lifecycle: with sources that notify after any plan, an epoch costs no plan ahead, and a notification "
          "during an epoch plans at once",
          "[lifecycle][notify]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.sources_notify = true;
  options.sources_notify_after_any_plan = true;
  harness h(options);
  CHECK(has<act::idle_plan>(h.answer(h.q.poll(h.now), nothing())));
  for (int epoch = 0; epoch < 3; ++epoch) {
    auto run = h.answer(h.q.data_arrived(h.now), data(std::to_string(epoch + 1)));
    CHECK(the<act::run_epoch>(run).epoch == epoch);
    CHECK_FALSE(has<act::plan_sources>(run));  // the plan that found data armed the sources
    auto committed = h.commit(epoch);
    CHECK(has<act::publish_progress>(committed));
    CHECK_FALSE(has<act::plan_sources>(committed));
    CHECK(the<act::publish_status>(committed).status.message == "Waiting for data to arrive");
  }
  // Data during epoch 3: the next plan starts at once, and its epoch runs beside epoch 3 (the window is 4).
  auto e3 = h.answer(h.q.data_arrived(h.now), data("4"));
  CHECK(the<act::run_epoch>(e3).epoch == 3);
  auto ahead = h.q.data_arrived(h.now);
  CHECK(the<act::plan_sources>(ahead).from == std::vector<std::string>{"4"});
  auto e4 = h.answer(ahead, data("5"));
  CHECK(the<act::run_epoch>(e4).epoch == 4);
  CHECK(the<act::run_epoch>(e4).start == std::vector<std::string>{"4"});
  CHECK_FALSE(has<act::plan_sources>(h.commit(3)));
  CHECK_FALSE(has<act::plan_sources>(h.commit(4)));

  // A notification while a plan runs: the plan may have looked before the data came, so one more follows it.
  auto planning = h.q.data_arrived(h.now);
  CHECK(h.q.data_arrived(h.now).empty());
  auto e5 = h.answer(planning, data("6"));
  CHECK(the<act::run_epoch>(e5).epoch == 5);
  CHECK(the<act::plan_sources>(e5).from == std::vector<std::string>{"6"});
}

TEST_CASE("lifecycle: with sources that notify after any plan, a plan made on a notification during an epoch that "
          "finds nothing is followed by an idle plan after the commit (process_all_available)",
          "[lifecycle][notify]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.sources_notify = true;
  options.sources_notify_after_any_plan = true;
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  CHECK(the<act::run_epoch>(e0).epoch == 0);
  auto empty = h.answer(h.q.data_arrived(h.now), nothing());
  CHECK_FALSE(has<act::idle_plan>(empty));  // epoch 0 still runs
  auto c0 = h.commit(0);
  auto idle = h.answer(c0, nothing());
  CHECK(has<act::idle_plan>(idle));
  CHECK(the<act::publish_status>(idle).status.message == "Waiting for data to arrive");
  CHECK_FALSE(has<act::plan_sources>(idle));
}

TEST_CASE("lifecycle: a watermarked query plans after each commit even with sources that notify after any plan "
          "(its no-data epoch)",
          "[lifecycle][notify][watermark]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.sources_notify = true;
  options.sources_notify_after_any_plan = true;
  options.watermark_delays = {10};
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  CHECK(the<act::run_epoch>(e0).epoch == 0);
  epoch_stats seen;
  seen.see_event_time(0, 1000);
  auto c0 = h.q.sink_committed(h.q.generation(), 0, 0, seen, {}, h.now);
  auto e1 = h.answer(c0, nothing());
  CHECK(the<act::run_epoch>(e1).watermark == 990);  // the no-data epoch for the new watermark
}

TEST_CASE("lifecycle: notifications plan only for the as-fast-as-possible trigger", "[lifecycle][notify]") {
  auto options = options_for(processing_time(1000ms));
  options.sources_notify = true;
  harness h(options);
  CHECK(h.q.data_arrived(h.now).empty());
  auto tick = h.q.tick(h.now);
  CHECK(has<act::plan_sources>(tick));
}

TEST_CASE("lifecycle: processing time fires one epoch per tick, a tick while busy fires after the commit",
          "[lifecycle]") {
  auto options = options_for(processing_time(1000ms));
  options.max_epochs_in_flight = 4;  // a processing-time trigger runs one epoch at a time anyway
  query_lifecycle q(options, {});
  auto started = q.start();
  CHECK(the<act::schedule>(started).what == act::timer::tick);
  CHECK(the<act::schedule>(started).delay == 0ms);

  auto tick1 = q.tick(t0);
  CHECK(the<act::schedule>(tick1).delay == 1000ms);  // the next tick
  auto e0 = q.plan_answered(the<act::plan_sources>(tick1).plan, 0, data("1"), t0 + 1ms);
  CHECK(the<act::run_epoch>(e0).epoch == 0);
  CHECK_FALSE(has<act::plan_sources>(e0));  // no plan ahead: one epoch per tick

  auto busy_tick = q.tick(t0 + 1000ms);  // epoch 0 still runs
  CHECK_FALSE(has<act::plan_sources>(busy_tick));
  CHECK(the<act::schedule>(busy_tick).delay == 1000ms);

  auto c0 = q.sink_committed(1, 0, 0, {}, {}, t0 + 1500ms);
  CHECK(has<act::publish_progress>(c0));
  CHECK(position<act::publish_progress>(c0) < position<act::plan_sources>(c0));
  auto plan2 = the<act::plan_sources>(c0);  // the tick that came while busy fires now
  CHECK(plan2.from == std::vector<std::string>{"1"});
  auto e1 = q.plan_answered(plan2.plan, 0, data("2"), t0 + 1501ms);
  auto c1 = q.sink_committed(1, 0, the<act::run_epoch>(e1).epoch, {}, {}, t0 + 1600ms);
  CHECK(has<act::publish_progress>(c1));
  CHECK_FALSE(has<act::plan_sources>(c1));  // no tick came meanwhile: wait for the next one
  CHECK(the<act::publish_status>(c1).status.message == "Waiting for next trigger");
  CHECK(has<act::plan_sources>(q.tick(t0 + 2000ms)));
}

TEST_CASE("lifecycle: pipelining keeps at most max_epochs_in_flight epochs running, the next one planned ahead "
          "runs at a commit without a plan of its own", "[lifecycle]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.max_epochs_in_flight = 2;
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  auto e1 = h.answer(e0, data("2"));
  CHECK(the<act::run_epoch>(e1).epoch == 1);
  CHECK(the<act::plan_sources>(e1).from == std::vector<std::string>{"2"});  // two running: one plan ahead
  auto ahead = h.answer(e1, data("3"));
  CHECK_FALSE(has<act::run_epoch>(ahead));  // held: the window is full
  CHECK_FALSE(has<act::plan_sources>(ahead));
  CHECK(h.q.poll(h.now).empty());
  CHECK(h.q.log().logged() == 2);

  auto c0 = h.commit(0);  // one committed: the held plan's epoch runs at once, and the next plan goes ahead
  CHECK(position<act::publish_progress>(c0) < position<act::run_epoch>(c0));
  const auto run2 = the<act::run_epoch>(c0);
  CHECK(run2.epoch == 2);
  CHECK(run2.start == std::vector<std::string>{"2"});
  CHECK(run2.end == std::vector<std::string>{"3"});
  CHECK(the<act::plan_sources>(c0).from == std::vector<std::string>{"3"});
  CHECK(h.q.log().logged() == 2);
}

TEST_CASE("lifecycle: a plan held ahead of a full window is dropped by stop and by a failure", "[lifecycle]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.max_epochs_in_flight = 1;
  SECTION("stop") {
    harness h(options);
    auto e0 = h.answer(h.q.poll(h.now), data("1"));
    CHECK_FALSE(has<act::run_epoch>(h.answer(e0, data("2"))));
    CHECK(h.q.stop().empty());  // epoch 0 still runs
    auto c0 = h.commit(0);
    CHECK_FALSE(has<act::run_epoch>(c0));
    CHECK(has<act::stop_dataflow>(c0));
  }
  SECTION("failure") {
    harness h(options);
    auto e0 = h.answer(h.q.poll(h.now), data("1"));
    CHECK_FALSE(has<act::run_epoch>(h.answer(e0, data("2"))));
    h.q.actor_failed(h.q.generation(), "boom", false, h.now);
    h.all_down();
    auto restarted = h.q.restart_timer(h.now);
    CHECK(the<act::run_epoch>(restarted).end == std::vector<std::string>{"1"});  // the replay of epoch 0
    CHECK_FALSE(has<act::plan_sources>(restarted));
    auto c0 = h.commit(0);
    CHECK(the<act::plan_sources>(c0).from == std::vector<std::string>{"1"});  // planned again, not "2"
  }
}

TEST_CASE("lifecycle: a failure kills, backs off, restores the committed state and replays uncommitted epochs "
          "one at a time",
          "[lifecycle]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.max_epochs_in_flight = 4;
  options.initial_backoff = 20ms;
  harness h(options, 1);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  auto e1 = h.answer(e0, data("2"));
  auto e2 = h.answer(e1, data("3"));
  auto late_plan = h.answer(e2, nothing());  // idle while epochs run: nothing to do yet
  CHECK(late_plan.empty());
  CHECK(h.q.state_changed(1, 0, 0, values({10}), h.now).empty());
  auto c0 = h.commit(0);
  CHECK(the<act::publish_progress>(c0).epoch == 0);
  CHECK(the<act::publish_progress>(c0).restarts == 0);
  auto pending_plan = the<act::plan_sources>(c0);
  CHECK(h.q.state_changed(1, 1, 0, values({10, 20}), h.now).empty());  // epoch 1: no sink commit yet

  auto failed = h.q.actor_failed(1, "instance 0 of map: boom", false, h.now);
  CHECK(has<act::kill_dataflow>(failed));
  CHECK_FALSE(has<act::stop_dataflow>(failed));
  CHECK(the<act::publish_status>(failed).status.message == "Restarting after failure: instance 0 of map: boom");
  CHECK(h.q.actor_down("killed", false, h.now).empty());
  auto down = h.all_down();
  CHECK(the<act::schedule>(down).what == act::timer::restart);
  CHECK(the<act::schedule>(down).delay == 20ms);

  // Messages of the old generation and answers to its plan change nothing.
  CHECK(h.q.plan_answered(pending_plan.plan, 0, data("9"), h.now).empty());
  CHECK(h.q.sink_committed(1, 0, 1, {}, {}, h.now).empty());

  h.now += 20ms;
  auto restarted = h.q.restart_timer(h.now);
  auto aborted = all_of<act::abort_epoch>(restarted);
  REQUIRE(aborted.size() == 2);
  CHECK(aborted[0].epoch == 1);
  CHECK(aborted[1].epoch == 2);
  CHECK(the<act::spawn_dataflow>(restarted).generation == 2);
  CHECK(position<act::spawn_dataflow>(restarted) < position<act::run_epoch>(restarted));
  CHECK(values_of(h.q.slot_state(0).snapshot()) == std::vector<std::int64_t>{10});  // as of epoch 0, not epoch 1's changes
  auto replay1 = the<act::run_epoch>(restarted);
  CHECK(replay1.epoch == 1);
  CHECK(replay1.start == std::vector<std::string>{"1"});
  CHECK(replay1.end == std::vector<std::string>{"2"});
  CHECK_FALSE(has<act::plan_sources>(restarted));

  CHECK(h.q.state_changed(2, 1, 0, values({10, 20}), h.now).empty());
  auto c1 = h.commit(1);
  CHECK(the<act::publish_progress>(c1).restarts == 1);
  auto replay2 = the<act::run_epoch>(c1);  // the next replay only once epoch 1 committed
  CHECK(replay2.epoch == 2);
  CHECK(replay2.end == std::vector<std::string>{"3"});
  CHECK_FALSE(has<act::plan_sources>(c1));

  CHECK(h.q.state_changed(2, 2, 0, values({10, 20, 30}), h.now).empty());
  auto c2 = h.commit(2);
  CHECK(the<act::publish_progress>(c2).restarts == 0);
  CHECK(the<act::plan_sources>(c2).from == std::vector<std::string>{"3"});  // new data again, after the replays
  CHECK(values_of(h.q.slot_state(0).snapshot()) == std::vector<std::int64_t>{10, 20, 30});
}

TEST_CASE("lifecycle: the backoff starts at initial_backoff, doubles, is capped and resets at a commit",
          "[lifecycle]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.initial_backoff = 20ms;
  options.max_backoff = 50ms;
  options.max_failures = 10;
  harness h(options);
  h.answer(h.q.poll(h.now), data("1"));
  auto fail = [&] {
    h.q.actor_failed(h.q.generation(), "boom", false, h.now);
    auto delay = the<act::schedule>(h.all_down()).delay;
    h.q.restart_timer(h.now);
    return delay;
  };
  CHECK(fail() == 20ms);
  CHECK(fail() == 40ms);
  CHECK(fail() == 50ms);
  CHECK(fail() == 50ms);
  CHECK(has<act::publish_progress>(h.commit(0)));
  CHECK(fail() == 20ms);
}

TEST_CASE("lifecycle: more than max_failures within the window fails the query with the count", "[lifecycle]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.max_failures = 2;
  options.failure_window = 1000ms;
  harness h(options);
  h.answer(h.q.poll(h.now), data("1"));
  auto fail_and_restart = [&] {
    h.q.actor_failed(h.q.generation(), "boom", false, h.now);
    h.all_down();
    h.q.restart_timer(h.now);
  };
  fail_and_restart();
  h.now += 600ms;
  fail_and_restart();
  h.now += 600ms;  // the first failure is out of the window now
  fail_and_restart();
  CHECK_FALSE(h.q.finished());
  h.now += 100ms;
  auto last = h.q.actor_failed(h.q.generation(), "boom", false, h.now);
  CHECK(has<act::stop_dataflow>(last));
  CHECK_FALSE(has<act::kill_dataflow>(last));
  auto closed = h.all_down();
  CHECK_FALSE(has<act::schedule>(closed));
  CHECK(the<act::close_query>(closed).failure == "boom (failed 3 times within 1000 ms; giving up)");
}

TEST_CASE("lifecycle: a permanent failure fails the query at once", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
  h.answer(h.q.poll(h.now), data("1"));
  auto failed = h.q.actor_failed(1, "malformed record in FAILFAST mode", true, h.now);
  CHECK(has<act::stop_dataflow>(failed));
  CHECK_FALSE(has<act::kill_dataflow>(failed));
  auto closed = h.all_down();
  CHECK_FALSE(has<act::schedule>(closed));
  CHECK(the<act::close_query>(closed).failure == "malformed record in FAILFAST mode");
}

TEST_CASE("lifecycle: a broken source fails the query at once", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}, 2));
  auto failed = h.answer(h.q.poll(h.now), {data("1"), broken("path does not exist")});
  CHECK_FALSE(has<act::run_epoch>(failed));
  CHECK(has<act::stop_dataflow>(failed));
  CHECK(the<act::close_query>(h.all_down()).failure == "path does not exist");
}

TEST_CASE("lifecycle: stop with nothing running finishes at once", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
  h.answer(h.q.poll(h.now), nothing());
  auto stopped = h.q.stop();
  CHECK(has<act::stop_dataflow>(stopped));
  CHECK_FALSE(the<act::close_query>(h.all_down()).failure);
  CHECK(h.q.poll(h.now).empty());
}

TEST_CASE("lifecycle: stop during a restart's backoff replays what was in flight, then finishes", "[lifecycle]") {
  SECTION("nothing in flight: the query closes at once, without a restart") {
    harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
    h.q.poll(h.now);  // a plan, not answered
    h.q.actor_failed(1, "boom", false, h.now);
    h.all_down();
    auto stopped = h.q.stop();
    CHECK(has<act::stop_dataflow>(stopped));
    CHECK(has<act::close_query>(stopped));  // no actor is left to wait for
    CHECK(h.q.restart_timer(h.now).empty());
  }
  SECTION("an epoch in flight: it is replayed and committed before the query ends") {
    harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
    h.answer(h.q.poll(h.now), data("1"));
    h.q.actor_failed(1, "boom", false, h.now);
    h.all_down();
    CHECK(h.q.stop().empty());
    auto restarted = h.q.restart_timer(h.now);
    CHECK(the<act::run_epoch>(restarted).epoch == 0);
    auto c0 = h.commit(0);
    CHECK(has<act::publish_progress>(c0));
    CHECK(has<act::stop_dataflow>(c0));
    CHECK_FALSE(has<act::plan_sources>(c0));
  }
}

TEST_CASE("lifecycle: stop while an epoch runs finishes after its commit", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  auto idle = h.answer(e0, nothing());
  CHECK_FALSE(has<act::schedule>(idle));
  CHECK(h.q.stop().empty());
  auto c0 = h.commit(0);
  CHECK(has<act::publish_progress>(c0));
  CHECK(position<act::publish_progress>(c0) < position<act::stop_dataflow>(c0));
  CHECK_FALSE(has<act::plan_sources>(c0));
}

TEST_CASE("lifecycle: an epoch commits once both sinks committed it", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::available_now, {}}, 1, 2));
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  h.answer(e0, nothing());
  auto first = h.commit(0, 1, 3);
  CHECK_FALSE(has<act::publish_progress>(first));
  CHECK_FALSE(has<act::commit_source>(first));
  auto second = h.commit(0, 0, 4);
  CHECK(the<act::publish_progress>(second).logged.info.stats.input_rows == 7);  // both sinks' figures
  CHECK(has<act::commit_source>(second));
  CHECK(has<act::stop_dataflow>(second));
}

TEST_CASE("lifecycle: a sink that committed an epoch before a failure is counted once after the replay", "[lifecycle]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}}, 1, 2);
  options.initial_backoff = 1ms;
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  h.answer(e0, nothing());
  CHECK(h.commit(0, 1, 3).empty());  // sink 1 commits, then sink 0's branch fails
  h.q.actor_failed(1, "sink 0: boom", false, h.now);
  h.all_down();
  h.now += 1ms;
  auto restarted = h.q.restart_timer(h.now);
  REQUIRE(the<act::run_epoch>(restarted).epoch == 0);
  CHECK(h.commit(0, 1, 3).empty());
  auto done = h.commit(0, 0, 4);
  CHECK(the<act::publish_progress>(done).logged.info.stats.input_rows == 7);  // not 10
}

TEST_CASE("lifecycle: a source without new data reads an empty range and is not committed", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::available_now, {}}, 2));
  auto e0 = h.answer(h.q.poll(h.now), {nothing(), data("5")});
  auto run = the<act::run_epoch>(e0);
  CHECK(run.start == std::vector<std::string>{"0", "0"});
  CHECK(run.end == std::vector<std::string>{"0", "5"});  // source 0: start == end
  h.answer(e0, {nothing(), nothing()});
  auto c0 = h.commit(0);
  auto commits = all_of<act::commit_source>(c0);
  REQUIRE(commits.size() == 1);
  CHECK(commits[0].source == 1);
  CHECK(commits[0].end == "5");
}

TEST_CASE("lifecycle: an idle plan marks the query idle only once no epoch runs", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  auto idle_while_running = h.answer(e0, nothing());
  CHECK_FALSE(has<act::idle_plan>(idle_while_running));
  CHECK_FALSE(has<act::publish_idle_progress>(idle_while_running));
  auto c0 = h.commit(0);
  auto idle = h.answer(c0, nothing());
  CHECK(the<act::idle_plan>(idle).plan == the<act::plan_sources>(c0).plan);
}

TEST_CASE("lifecycle: the progress report's timing comes from the times given", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
  auto plan1 = h.q.poll(t0);
  h.now = t0 + 7ms;
  auto e0 = h.answer(plan1, data("1"));
  h.now = t0 + 50ms;
  auto logged = the<act::publish_progress>(h.commit(0)).logged;
  CHECK(logged.info.trigger_start == t0);
  CHECK(logged.info.run_start == t0 + 7ms);
  CHECK(logged.info.latest_offset_ms == 7);
  CHECK(logged.info.since_previous_trigger_s == 0);  // the first trigger
}

TEST_CASE("lifecycle: a crash of the coordinator closes the query at once", "[lifecycle]") {
  harness h(options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}}));
  h.answer(h.q.poll(h.now), data("1"));
  auto crashed = h.q.crashed("epoch log: epoch 9 is not logged");
  CHECK(has<act::stop_dataflow>(crashed));
  CHECK(the<act::close_query>(crashed).failure == "coordinator: epoch log: epoch 9 is not logged");
  CHECK_FALSE(the<act::close_query>(crashed).dataflow_gone);  // its sinks may still be writing: not closed
  CHECK(h.all_down().empty());  // closed once only
}

// ---------------------------------------------------------------- a durable checkpoint

TEST_CASE("lifecycle: a durable query writes an epoch's offsets before it runs and its commit before its sources "
          "free the data",
          "[lifecycle][checkpoint]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.durable = true;
  harness h(options, 1);
  auto e0 = h.answer(h.q.poll(h.now), data("5"));
  auto logged = the<act::write_offsets>(e0);
  CHECK(logged.epoch == 0);
  CHECK(logged.start == std::vector<std::string>{"0"});
  CHECK(logged.end == std::vector<std::string>{"5"});
  CHECK(position<act::write_offsets>(e0) < position<act::run_epoch>(e0));

  h.q.offsets_written(0, 7);
  CHECK_FALSE(has<act::write_commit>(h.commit(0)));  // the state slot has not reported yet
  auto done = h.q.state_changed(h.q.generation(), 0, 0, values({4, 2}), h.now);
  auto commit = the<act::write_commit>(done);
  CHECK(commit.epoch == 0);
  REQUIRE(commit.changes.size() == 1);
  CHECK(values_of(commit.changes[0]) == std::vector<std::int64_t>{4, 2});
  CHECK(position<act::write_commit>(done) < position<act::commit_source>(done));
  CHECK(position<act::write_commit>(done) < position<act::publish_progress>(done));
  CHECK(the<act::publish_progress>(done).logged.info.wal_commit_ms == 7);  // durationMs.walCommit

  // Without a checkpoint location nothing is written.
  harness plain(options_for(flow::trigger{trigger_kind::available_now, {}}));
  auto run = plain.answer(plain.q.poll(plain.now), data("5"));
  CHECK_FALSE(has<act::write_offsets>(run));
  CHECK_FALSE(has<act::write_commit>(plain.commit(0)));
}

TEST_CASE("lifecycle: a query resumed from its checkpoint re-runs the uncommitted epochs with their offsets, then "
          "plans from where they end",
          "[lifecycle][checkpoint]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.durable = true;
  resume_point point;
  point.last_committed = 6;
  point.committed_end = {"70"};
  point.uncommitted = {{7, {"70"}, {"80"}}, {8, {"80"}, {"90"}}};
  harness h(options, 0, point);
  auto replay7 = the<act::run_epoch>(h.started);
  CHECK(replay7.epoch == 7);
  CHECK(replay7.start == std::vector<std::string>{"70"});
  CHECK(replay7.end == std::vector<std::string>{"80"});
  CHECK_FALSE(has<act::write_offsets>(h.started));  // already in the checkpoint

  auto c7 = h.commit(7);
  CHECK(the<act::write_commit>(c7).epoch == 7);
  CHECK(the<act::run_epoch>(c7).epoch == 8);
  auto c8 = h.commit(8);
  CHECK(the<act::publish_progress>(c8).epoch == 8);
  CHECK(the<act::plan_sources>(c8).from == std::vector<std::string>{"90"});
  auto e9 = h.answer(c8, data("95"));
  CHECK(the<act::write_offsets>(e9).epoch == 9);
  CHECK(the<act::run_epoch>(e9).start == std::vector<std::string>{"90"});
}

TEST_CASE("lifecycle: a resumed query with nothing uncommitted plans from the last committed offsets",
          "[lifecycle][checkpoint]") {
  auto options = options_for(flow::trigger{trigger_kind::once, {}});
  options.durable = true;
  resume_point point;
  point.last_committed = 3;
  point.committed_end = {"40"};
  harness h(options, 0, point);
  CHECK_FALSE(has<act::run_epoch>(h.started));
  auto plan = h.q.poll(h.now);
  CHECK(the<act::plan_sources>(plan).from == std::vector<std::string>{"40"});  // once plans again in a new run
  auto e4 = h.answer(plan, data("41"));
  CHECK(the<act::run_epoch>(e4).epoch == 4);
}

TEST_CASE("lifecycle: a resumed complete-mode query runs an epoch without new data so that its sinks get the "
          "restored result",
          "[lifecycle][checkpoint]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.durable = true;
  resume_point point;
  point.last_committed = 2;
  point.committed_end = {"30"};
  point.emit_restored_state = true;
  harness h(options, 0, point);
  auto run = the<act::run_epoch>(h.started);
  CHECK(run.epoch == 3);
  CHECK(run.start == std::vector<std::string>{"30"});
  CHECK(run.end == std::vector<std::string>{"30"});
  CHECK(the<act::write_offsets>(h.started).epoch == 3);
  auto c3 = h.commit(3);
  CHECK_FALSE(has<act::commit_source>(c3));  // no data was read
  CHECK(the<act::plan_sources>(c3).from == std::vector<std::string>{"30"});

  // With uncommitted epochs, their re-run gives the sinks the result: no extra epoch.
  point.uncommitted = {{3, {"30"}, {"31"}}};
  harness replaying(options, 0, point);
  CHECK(the<act::run_epoch>(replaying.started).epoch == 3);
  CHECK_FALSE(has<act::write_offsets>(replaying.started));
}

TEST_CASE("lifecycle: a resumed complete-mode Once query re-emits its state and still plans its one epoch",
          "[lifecycle][checkpoint]") {
  auto options = options_for(flow::trigger{trigger_kind::once, {}});
  options.durable = true;
  resume_point point;
  point.last_committed = 0;
  point.committed_end = {"1"};
  point.emit_restored_state = true;
  harness h(options, 0, point);
  CHECK(the<act::run_epoch>(h.started).epoch == 1);  // the re-emit
  auto c1 = h.commit(1);
  CHECK_FALSE(has<act::stop_dataflow>(c1));
  auto plan = the<act::plan_sources>(c1);
  CHECK(plan.from == std::vector<std::string>{"1"});
  auto e2 = h.answer(c1, data("2"));
  CHECK(the<act::run_epoch>(e2).epoch == 2);
  CHECK(has<act::stop_dataflow>(h.commit(2)));
}

TEST_CASE("lifecycle: a failed checkpoint write fails the query", "[lifecycle][checkpoint]") {
  auto options = options_for(flow::trigger{trigger_kind::as_fast_as_possible, {}});
  options.durable = true;
  harness h(options);
  h.answer(h.q.poll(h.now), data("5"));
  auto failed = h.q.checkpoint_failed("checkpoint: cannot write '/ck/offsets/.1.tmp': No space left on device");
  CHECK(has<act::stop_dataflow>(failed));
  CHECK_FALSE(has<act::plan_sources>(failed));
  auto closed = h.all_down();
  CHECK(the<act::close_query>(closed).failure == "checkpoint: cannot write '/ck/offsets/.1.tmp': No space left on device");
}

// The lifecycle counts an epoch committed when its sinks did, before its commit file is durable: an
// available-now query can finish cleanly while that write is still under way, and the write then fail.
TEST_CASE("lifecycle: a checkpoint write that fails after the query finished cleanly still fails the query",
          "[lifecycle][checkpoint]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.durable = true;
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("5"));
  h.q.offsets_written(0, 1);
  CHECK(h.answer(e0, nothing()).empty());  // drained: the query ends with epoch 0's commit
  auto c0 = h.commit(0);
  CHECK(the<act::write_commit>(c0).epoch == 0);
  REQUIRE(has<act::stop_dataflow>(c0));
  REQUIRE(h.q.finished());

  const std::string what = "checkpoint: cannot create directory '/ck/state/0': Not a directory";
  CHECK_FALSE(has<act::stop_dataflow>(h.q.checkpoint_failed(what)));  // asked once already
  CHECK(the<act::close_query>(h.all_down()).failure == what);
}

TEST_CASE("lifecycle: resume refuses offsets of another number of sources", "[lifecycle][checkpoint]") {
  query_lifecycle q(options_for(flow::trigger{trigger_kind::once, {}}, 2), {});
  resume_point point;
  point.last_committed = 0;
  point.committed_end = {"1"};
  CHECK_THROWS_WITH(q.resume(point), Catch::Contains("offsets of 1 sources, the query has 2"));
}

TEST_CASE("lifecycle: a watermarked query runs one epoch at a time, then a no-data epoch for the final watermark",
          "[lifecycle][watermark]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.watermark_delays = {10};
  options.durable = true;
  harness h(options);
  auto e0 = h.answer(h.q.poll(h.now), data("1"));
  CHECK(the<act::run_epoch>(e0).watermark == operator_context::no_watermark);
  CHECK_FALSE(has<act::plan_sources>(e0));  // no pipelining: epoch 1's watermark must cover epoch 0

  epoch_stats seen;
  seen.see_event_time(0, 1000);
  auto c0 = h.q.sink_committed(h.q.generation(), 0, 0, seen, {}, h.now);
  auto e1 = h.answer(c0, nothing());
  // Nothing new, but the watermark moved: one epoch without data (start == end), logged with it.
  const auto no_data = the<act::run_epoch>(e1);
  CHECK(no_data.epoch == 1);
  CHECK(no_data.start == no_data.end);
  CHECK(no_data.watermark == 990);
  CHECK(the<act::write_offsets>(e1).watermark == 990);
  CHECK_FALSE(has<act::stop_dataflow>(e1));

  auto c1 = h.commit(1);
  auto end = h.answer(c1, nothing());  // the watermark did not move again: the query ends
  CHECK_FALSE(has<act::run_epoch>(end));
  CHECK(has<act::stop_dataflow>(end));
}

TEST_CASE("lifecycle: a resumed epoch runs with the watermark it was logged with", "[lifecycle][watermark]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.watermark_delays = {10};
  resume_point point;
  point.last_committed = 3;
  point.committed_end = {"4"};
  point.committed_watermark = 500;
  point.uncommitted = {{4, {"4"}, {"5"}, 700}};
  harness h(options, 0, point);
  CHECK(the<act::run_epoch>(h.started).watermark == 700);
  auto c4 = h.commit(4);
  // Later epochs continue from the newest logged watermark, and no no-data epoch runs for it.
  auto next = h.answer(c4, data("6"));
  CHECK(the<act::run_epoch>(next).watermark == 700);
}

TEST_CASE("lifecycle: an epoch's processing time is read once when planned and logged with its offsets, and a "
          "replay runs with the logged one (after a restart or a resume), a resumed log without one with the clock's",
          "[lifecycle][group_state]") {
  auto options = options_for(flow::trigger{trigger_kind::available_now, {}});
  options.durable = true;
  std::int64_t clock = 9000;
  options.processing_clock = [&clock] { return clock; };
  resume_point point;
  point.last_committed = 3;
  point.committed_end = {"4"};
  point.uncommitted = {{4, {"4"}, {"5"}, operator_context::no_watermark, 500},
                       {5, {"5"}, {"6"}, operator_context::no_watermark, std::nullopt}};  // an older log's
  harness h(options, 0, point);
  CHECK(the<act::run_epoch>(h.started).processing_time == 500);
  clock = 9100;
  CHECK(the<act::run_epoch>(h.commit(4)).processing_time == 9000);  // the clock's when resumed

  clock = 9200;
  auto e6 = h.answer(h.commit(5), data("7"));
  CHECK(the<act::write_offsets>(e6).processing_time == 9200);
  CHECK(the<act::run_epoch>(e6).processing_time == 9200);
  clock = 123456789;  // long after: a replay still runs with the logged time
  CHECK(has<act::kill_dataflow>(h.q.actor_failed(1, "boom", false, h.now)));
  h.all_down();
  auto restarted = h.q.restart_timer(h.now + 20ms);
  CHECK(the<act::run_epoch>(restarted).epoch == 6);
  CHECK(the<act::run_epoch>(restarted).processing_time == 9200);
}
