// A hand-written loop against libflow at parallelism 1 and 2 on the same input, round by round (interleaved,
// so a busy machine slows each alike), each run's result checked against the hand loop's.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace bench {

inline double seconds_since(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

// One measured run: wall seconds, CPU seconds of the process (0 when not taken) and what it computed.
template <class Result>
struct timed_result {
  double seconds = 0;
  double cpu_seconds = 0;
  Result result;
};

struct compared_run {
  const char* name;
  std::size_t parallelism;  // 0: the hand loop
  std::vector<double> seconds, cpu_seconds;
  bool matches = true;  // every round's result equals the hand loop's first
};

// measure(parallelism) runs once (parallelism 0: the hand loop) and returns a timed_result<Result>;
// expected receives the hand loop's result. Returns the hand loop, parallelism 1 and 2, in that order.
template <class Result, class Measure>
std::vector<compared_run> compare_with_hand_loop(std::size_t rounds, Measure measure, Result& expected) {
  std::vector<compared_run> runs = {{"hand_loop", 0, {}, {}}, {"libflow_parallelism_1", 1, {}, {}},
                                    {"libflow_parallelism_2", 2, {}, {}}};
  for (std::size_t round = 0; round < rounds; ++round) {
    for (auto& run : runs) {
      timed_result<Result> fig = measure(run.parallelism);
      if (run.parallelism == 0 && round == 0) expected = fig.result;
      run.matches = run.matches && fig.result == expected;
      run.seconds.push_back(fig.seconds);
      run.cpu_seconds.push_back(fig.cpu_seconds);
    }
  }
  return runs;
}

}  // namespace bench
