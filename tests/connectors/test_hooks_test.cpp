#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "flow/connectors/test_hooks.hpp"
#include "flow/types.hpp"

using flow::connectors::epoch_from_environment;

TEST_CASE("a test hook's epoch comes from its environment variable, and a value that is no epoch is a clear error",
          "[test-hooks]") {
  constexpr const char* variable = "FLOW_TEST_HOOK_UNDER_TEST";
  ::unsetenv(variable);
  CHECK_FALSE(epoch_from_environment(variable, "file sink").has_value());
  ::setenv(variable, "7", 1);
  CHECK(epoch_from_environment(variable, "file sink") == 7);
  for (const char* bad : {"", "x", "-1", "3x", "99999999999999999999"}) {
    ::setenv(variable, bad, 1);
    INFO("value '" << bad << "'");
    try {
      (void)epoch_from_environment(variable, "file sink");
      FAIL("accepted");
    } catch (const flow::error& e) {
      const std::string message = e.what();
      CHECK(message.find("file sink: FLOW_TEST_HOOK_UNDER_TEST='" + std::string(bad) + "'") != std::string::npos);
      CHECK(message.find("unset it") != std::string::npos);
    }
  }
  ::unsetenv(variable);
}
