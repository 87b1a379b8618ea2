// Reader options: case-insensitive keys, typed getters with clear errors.
#include <cctype>
#include <charconv>

#include "format_detail.hpp"

namespace flow {

using detail::ascii_lower;

void options::set(std::string key, std::string value) { values_[ascii_lower(key)] = std::move(value); }

bool options::has(std::string_view key) const { return values_.contains(ascii_lower(key)); }

std::string options::get(std::string_view key, std::string_view fallback) const {
  auto it = values_.find(ascii_lower(key));
  return it == values_.end() ? std::string(fallback) : it->second;
}

bool options::get_bool(std::string_view key, bool fallback) const {
  auto it = values_.find(ascii_lower(key));
  if (it == values_.end()) return fallback;
  std::string v = ascii_lower(it->second);
  if (v == "true") return true;
  if (v == "false") return false;
  throw error("option '" + std::string(key) + "' must be true or false, got '" + it->second + "'");
}

std::int64_t options::get_int(std::string_view key, std::int64_t fallback) const {
  auto it = values_.find(ascii_lower(key));
  if (it == values_.end()) return fallback;
  const std::string& v = it->second;
  std::int64_t result = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), result);
  if (v.empty() || ec != std::errc{} || end != v.data() + v.size()) {
    throw error("option '" + std::string(key) + "' must be an integer, got '" + v + "'");
  }
  return result;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  while (!text.empty()) {
    const auto comma = text.find(',');
    auto item = text.substr(0, comma);
    const auto first = item.find_first_not_of(" \t");
    if (first != std::string_view::npos) items.emplace_back(item.substr(first, item.find_last_not_of(" \t") + 1 - first));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return items;
}

}  // namespace flow
