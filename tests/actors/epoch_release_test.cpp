#include <catch2/catch.hpp>

#include "flow/runtime/epoch_release.hpp"

using flow::runtime::epoch_release;
using epochs = std::vector<std::int64_t>;

TEST_CASE("epoch release: a query without a checkpoint commits every epoch as it completes", "[release]") {
  epoch_release release(false);
  CHECK(release.complete(0));
  CHECK(release.complete(7));
}

TEST_CASE("epoch release: a durable query's sink holds a complete epoch until its offsets are durable, then "
          "commits the held epochs in order",
          "[release]") {
  epoch_release release(true);
  CHECK_FALSE(release.complete(0));  // run while its offsets were still being written
  CHECK_FALSE(release.complete(1));
  CHECK_FALSE(release.complete(2));
  CHECK(release.release(1) == epochs{0, 1});
  CHECK(release.release(1).empty());
  CHECK(release.release(0).empty());  // a release never goes back
  CHECK(release.release(5) == epochs{2});
  CHECK(release.complete(3));  // its offsets were durable before it completed
  CHECK(release.complete(5));
  CHECK_FALSE(release.complete(6));
  CHECK(release.release(6) == epochs{6});
}

TEST_CASE("epoch release: epochs released before they complete commit as they complete", "[release]") {
  epoch_release release(true);
  CHECK_FALSE(release.complete(0));
  CHECK(release.release(-1).empty());  // nothing durable yet (a fresh checkpoint)
  CHECK_FALSE(release.complete(1));
  CHECK(release.release(0) == epochs{0});
  CHECK(release.release(3) == epochs{1});
  CHECK(release.complete(2));
}
