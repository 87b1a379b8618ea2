// Reads back what flow::append_json_string_array writes: the memory catalog stores an array<string> cell in
// SQLite as that JSON text. Private to the connectors library.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flow::connectors {

// The strings of a JSON array of strings; nullopt for any other text.
std::optional<std::vector<std::string>> parse_json_string_array(std::string_view text);

}  // namespace flow::connectors
