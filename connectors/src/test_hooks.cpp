#include "flow/connectors/test_hooks.hpp"

#include <charconv>
#include <cstdlib>
#include <string>

#include "flow/types.hpp"

namespace flow::connectors {

std::optional<std::int64_t> epoch_from_environment(const char* variable, std::string_view owner) {
  const char* set = std::getenv(variable);
  if (!set) return std::nullopt;
  const std::string_view text = set;
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 0)
    throw error(std::string(owner) + ": " + variable + "='" + set + "' is not an epoch number (a test hook); unset it");
  return value;
}

}  // namespace flow::connectors
