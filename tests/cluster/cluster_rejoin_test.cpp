// The driver's schedule of tries to join a lost worker again, with the time given (no waiting).
#include <catch2/catch.hpp>

#include "flow/runtime/cluster_rejoin.hpp"

using namespace flow::runtime;
using namespace std::chrono_literals;

TEST_CASE("a lost worker is tried at once, then after delays that double up to a bound", "[cluster][rejoin]") {
  rejoin_schedule schedule(100ms, 400ms);
  const auto t0 = rejoin_schedule::clock::time_point{} + 1h;
  CHECK(schedule.due(t0).empty());
  CHECK_FALSE(schedule.next_due());
  schedule.lost("a:1", t0);
  CHECK(schedule.due(t0) == std::vector<std::string>{"a:1"});
  schedule.failed("a:1", t0);
  CHECK(schedule.due(t0 + 99ms).empty());
  CHECK(schedule.due(t0 + 100ms) == std::vector<std::string>{"a:1"});
  CHECK(*schedule.next_due() == t0 + 100ms);
  // A loss seen again while it waits keeps its schedule.
  schedule.lost("a:1", t0 + 100ms);
  CHECK(*schedule.next_due() == t0 + 100ms);
  auto t = t0 + 100ms;
  for (auto expected : {200ms, 400ms, 400ms}) {
    schedule.failed("a:1", t);
    CHECK(schedule.due(t + expected - 1ms).empty());
    CHECK(schedule.next_due() == t + expected);
    t += expected;
  }
  // Joined: no more tries; a later loss starts over, at once and with the first delay.
  schedule.joined("a:1");
  CHECK_FALSE(schedule.next_due());
  schedule.lost("a:1", t);
  CHECK(schedule.due(t).size() == 1);
  schedule.failed("a:1", t);
  CHECK(schedule.next_due() == t + 100ms);
}

TEST_CASE("several lost workers are scheduled apart", "[cluster][rejoin]") {
  rejoin_schedule schedule(50ms, 1s);
  const auto t0 = rejoin_schedule::clock::time_point{} + 1h;
  schedule.lost("a:1", t0);
  schedule.lost("b:2", t0 + 10ms);
  CHECK(schedule.due(t0) == std::vector<std::string>{"a:1"});
  CHECK(schedule.due(t0 + 10ms) == std::vector<std::string>{"a:1", "b:2"});
  schedule.failed("a:1", t0 + 10ms);
  CHECK(schedule.due(t0 + 10ms) == std::vector<std::string>{"b:2"});
  schedule.joined("b:2");
  CHECK(schedule.next_due() == t0 + 60ms);
}
