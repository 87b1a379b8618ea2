#include "flow/graph_fingerprint.hpp"

#include <algorithm>
#include <cstdint>

#include <simdjson.h>

#include "flow/formats.hpp"

namespace flow {

namespace {

namespace dom = simdjson::dom;

// ---------------------------------------------------------------- the fingerprint as data

struct column_entry {
  std::string name, type;
  bool nullable = true;
};

struct source_entry {
  std::string vertex, identity;
  std::vector<column_entry> schema;
};

struct operator_entry {
  std::string vertex, name;
  std::int64_t parallelism = 0;
  std::vector<std::string> keys;
  std::vector<column_entry> state_schema;
};

struct fingerprint {
  std::vector<source_entry> sources;
  std::vector<operator_entry> operators;
};

// ---------------------------------------------------------------- writing

void append_strings(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, items[i]);
  }
  out += ']';
}

void append_schema(std::string& out, const schema& fields) {
  out += '[';
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += "{\"name\":";
    append_json_string(out, fields[i].name);
    out += ",\"type\":";
    append_json_string(out, type_name(fields[i].type));
    out += fields[i].nullable ? ",\"nullable\":true}" : ",\"nullable\":false}";
  }
  out += ']';
}

// ---------------------------------------------------------------- reading

class fingerprint_reader {
 public:
  // whose: "checkpoint '<dir>'" or "the query", and what to do, for the error.
  fingerprint_reader(std::string whose, std::string advice) : whose_(std::move(whose)), advice_(std::move(advice)) {}

  fingerprint read(const std::string& text) {
    dom::parser parser;
    const simdjson::padded_string padded_text(text);
    dom::element root;
    if (auto err = parser.parse(padded_text).get(root))
      fail(std::string("it is not JSON: ") + simdjson::error_message(err));
    fingerprint out;
    for (dom::element item : array_at(object_of(root, "the fingerprint"), "sources")) {
      auto source = object_of(item, "a source");
      out.sources.push_back({string_at(source, "vertex"), string_at(source, "identity"), schema_at(source, "schema")});
    }
    for (dom::element item : array_at(object_of(root, "the fingerprint"), "statefulOperators")) {
      auto op = object_of(item, "a stateful operator");
      operator_entry entry{string_at(op, "vertex"), string_at(op, "operator"), integer_at(op, "parallelism"), {},
                           schema_at(op, "stateSchema")};
      for (dom::element key : array_at(op, "keys")) entry.keys.push_back(string_of(key, "a key column"));
      out.operators.push_back(std::move(entry));
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw error(whose_ + ": the graph fingerprint is malformed (" + what + "); " + advice_);
  }

  dom::object object_of(dom::element element, const std::string& what) const {
    dom::object out;
    if (element.get_object().get(out)) fail(what + " is not a JSON object");
    return out;
  }
  std::string string_of(dom::element element, const std::string& what) const {
    std::string_view out;
    if (element.get_string().get(out)) fail(what + " is not a string");
    return std::string(out);
  }
  dom::element field(dom::object object, std::string_view key) const {
    dom::element out;
    if (object.at_key(key).get(out)) fail("field \"" + std::string(key) + "\" is missing");
    return out;
  }
  dom::array array_at(dom::object object, std::string_view key) const {
    dom::array out;
    if (field(object, key).get_array().get(out)) fail("field \"" + std::string(key) + "\" is not an array");
    return out;
  }
  std::string string_at(dom::object object, std::string_view key) const {
    return string_of(field(object, key), "field \"" + std::string(key) + "\"");
  }
  std::int64_t integer_at(dom::object object, std::string_view key) const {
    std::int64_t out = 0;
    if (field(object, key).get_int64().get(out)) fail("field \"" + std::string(key) + "\" is not an integer");
    return out;
  }
  std::vector<column_entry> schema_at(dom::object object, std::string_view key) const {
    std::vector<column_entry> out;
    for (dom::element item : array_at(object, key)) {
      auto column = object_of(item, "a column of \"" + std::string(key) + "\"");
      bool nullable = true;
      if (field(column, "nullable").get_bool().get(nullable)) fail("field \"nullable\" is not a boolean");
      out.push_back({string_at(column, "name"), string_at(column, "type"), nullable});
    }
    return out;
  }

  std::string whose_, advice_;
};

// ---------------------------------------------------------------- matching the two sides

// Entry i of the checkpoint with entry j of the query; only one side set: an entry only that side has.
struct pairing {
  std::optional<std::size_t> checkpoint, query;
};

// Pairs the entries whose keys a longest common subsequence matches; between two matches, the unmatched
// entries of both sides pair up in order (a changed entry), and what is left over is added or removed.
std::vector<pairing> align(const std::vector<std::string>& checkpoint, const std::vector<std::string>& query) {
  const std::size_t n = checkpoint.size(), m = query.size();
  // common[i][j]: the longest common subsequence of checkpoint[i..] and query[j..].
  std::vector<std::vector<std::size_t>> common(n + 1, std::vector<std::size_t>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;)
    for (std::size_t j = m; j-- > 0;)
      common[i][j] = checkpoint[i] == query[j] ? common[i + 1][j + 1] + 1 : std::max(common[i + 1][j], common[i][j + 1]);
  std::vector<pairing> out;
  std::vector<std::size_t> only_checkpoint, only_query;
  auto flush = [&] {
    const std::size_t both = std::min(only_checkpoint.size(), only_query.size());
    for (std::size_t k = 0; k < both; ++k) out.push_back({only_checkpoint[k], only_query[k]});
    for (std::size_t k = both; k < only_checkpoint.size(); ++k) out.push_back({only_checkpoint[k], std::nullopt});
    for (std::size_t k = both; k < only_query.size(); ++k) out.push_back({std::nullopt, only_query[k]});
    only_checkpoint.clear();
    only_query.clear();
  };
  std::size_t i = 0, j = 0;
  while (i < n && j < m) {
    if (checkpoint[i] == query[j] && common[i][j] == common[i + 1][j + 1] + 1) {
      flush();
      out.push_back({i++, j++});
    } else if (common[i + 1][j] >= common[i][j + 1]) {
      only_checkpoint.push_back(i++);
    } else {
      only_query.push_back(j++);
    }
  }
  while (i < n) only_checkpoint.push_back(i++);
  while (j < m) only_query.push_back(j++);
  flush();
  return out;
}

// ---------------------------------------------------------------- describing the differences

struct difference {
  std::string what, checkpoint, query;
  std::string advice;  // optional: what this particular difference needs
};

std::string show(const column_entry& c) { return c.name + ": " + c.type + (c.nullable ? "" : " not null"); }

std::string show(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}

// Columns matched by name (an added or removed column is one difference, not one per column after it); a
// query may relax a non-nullable column to nullable (the old data fits the new schema).
void compare_schemas(const std::string& what, const std::vector<column_entry>& checkpoint,
                     const std::vector<column_entry>& query, std::vector<difference>& out) {
  const std::string none = "(no such column)";
  std::vector<std::string> old_names, new_names;
  for (const auto& c : checkpoint) old_names.push_back(c.name);
  for (const auto& c : query) new_names.push_back(c.name);
  for (const auto& p : align(old_names, new_names)) {
    const column_entry* old_column = p.checkpoint ? &checkpoint[*p.checkpoint] : nullptr;
    const column_entry* new_column = p.query ? &query[*p.query] : nullptr;
    const bool same = old_column && new_column && old_column->name == new_column->name &&
                      old_column->type == new_column->type && (!old_column->nullable || new_column->nullable);
    if (!same)
      out.push_back({what + " column " + std::to_string(p.checkpoint ? *p.checkpoint : *p.query),
                     old_column ? show(*old_column) : none, new_column ? show(*new_column) : none, {}});
  }
}

std::vector<difference> compare(const source_entry& checkpoint, const source_entry& query) {
  std::vector<difference> out;
  if (checkpoint.identity != query.identity) out.push_back({"identity", checkpoint.identity, query.identity, {}});
  compare_schemas("schema", checkpoint.schema, query.schema, out);
  return out;
}

std::vector<difference> compare(const operator_entry& checkpoint, const operator_entry& query) {
  std::vector<difference> out;
  auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
  if (checkpoint.vertex != query.vertex) out.push_back({"vertex", quoted(checkpoint.vertex), quoted(query.vertex), {}});
  if (checkpoint.name != query.name) out.push_back({"operator", quoted(checkpoint.name), quoted(query.name), {}});
  if (checkpoint.parallelism != query.parallelism)
    out.push_back({"parallelism", std::to_string(checkpoint.parallelism), std::to_string(query.parallelism),
                   "its state is partitioned by key hash over the instances: run vertex \"" + query.vertex +
                       "\" with parallelism " + std::to_string(checkpoint.parallelism) +
                       " (the checkpoint's; a vertex that sets none takes the session's, --flow.parallelism), or use a new "
                       "checkpointLocation"});
  if (checkpoint.keys != query.keys) out.push_back({"key columns", show(checkpoint.keys), show(query.keys), {}});
  compare_schemas("state schema", checkpoint.state_schema, query.state_schema, out);
  return out;
}

std::string padded(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

// "  <title>:" and one aligned line per difference, checkpoint and query side by side.
void append_block(std::string& out, const std::string& title, const std::vector<difference>& differences) {
  std::size_t what_width = 0, checkpoint_width = 0;
  for (const auto& d : differences) {
    what_width = std::max(what_width, d.what.size());
    checkpoint_width = std::max(checkpoint_width, d.checkpoint.size());
  }
  out += "  " + title + ":\n";
  for (const auto& d : differences) {
    out += "    " + padded(d.what, what_width) + "  checkpoint: " + padded(d.checkpoint, checkpoint_width) +
           "   query: " + d.query + "\n";
    if (!d.advice.empty()) out += "      (" + d.advice + ")\n";
  }
}

std::string one_side(bool in_checkpoint) {
  return in_checkpoint ? "only in the checkpoint (removed from the query)" : "only in the query (added since the checkpoint was written)";
}

// "source 2", or "source 2 (source 1 in the query)" when the query has it at another place.
std::string numbered(const std::string& kind, const pairing& p) {
  std::string out = kind + " " + std::to_string(p.checkpoint ? *p.checkpoint : *p.query);
  if (p.checkpoint && p.query && *p.checkpoint != *p.query)
    out += " (" + kind + " " + std::to_string(*p.query) + " in the query)";
  return out;
}

void describe_sources(const fingerprint& checkpoint, const fingerprint& query, std::string& out) {
  std::vector<std::string> old_keys, new_keys;
  for (const auto& s : checkpoint.sources) old_keys.push_back(s.identity);
  for (const auto& s : query.sources) new_keys.push_back(s.identity);
  for (const auto& p : align(old_keys, new_keys)) {
    if (p.checkpoint && p.query) {
      auto differences = compare(checkpoint.sources[*p.checkpoint], query.sources[*p.query]);
      if (!differences.empty())
        append_block(out, numbered("source", p) + " (vertex \"" + query.sources[*p.query].vertex + "\")", differences);
    } else {
      const auto& s = p.checkpoint ? checkpoint.sources[*p.checkpoint] : query.sources[*p.query];
      out += "  " + numbered("source", p) + " (vertex \"" + s.vertex + "\", " + s.identity + "): " +
             one_side(p.checkpoint.has_value()) + "\n";
    }
  }
}

void describe_operators(const fingerprint& checkpoint, const fingerprint& query, std::string& out) {
  auto keys_of = [](const fingerprint& f) {
    std::vector<std::string> keys;
    for (const auto& op : f.operators) keys.push_back(op.vertex + '\n' + op.name);
    return keys;
  };
  for (const auto& p : align(keys_of(checkpoint), keys_of(query))) {
    const auto& op = p.checkpoint ? checkpoint.operators[*p.checkpoint] : query.operators[*p.query];
    std::string title = numbered("stateful operator", p) + " (vertex \"" + op.vertex + "\", operator \"" + op.name + "\"";
    if (p.checkpoint && p.query) {
      auto differences = compare(op, query.operators[*p.query]);
      if (!differences.empty()) append_block(out, title + ")", differences);
    } else {
      out += "  " + title + ", parallelism " + std::to_string(op.parallelism) + "): " +
             one_side(p.checkpoint.has_value()) + "\n";
    }
  }
}

}  // namespace

std::string graph_fingerprint(const dataflow_graph& graph, const std::vector<std::string>& source_identities) {
  const auto sources = graph.sources();
  if (source_identities.size() != sources.size())
    throw error("graph_fingerprint: the graph has " + std::to_string(sources.size()) + " sources, but " +
                std::to_string(source_identities.size()) + " source identities were given; give one per source");
  std::string out = "{\"sources\":[";
  for (std::size_t k = 0; k < sources.size(); ++k) {
    const auto& vertex = graph.vertex(sources[k]);
    if (k) out += ',';
    out += "{\"vertex\":";
    append_json_string(out, vertex.name);
    out += ",\"identity\":";
    append_json_string(out, source_identities[k]);
    out += ",\"schema\":";
    append_schema(out, *vertex.scan.schema);
    out += '}';
  }
  out += "],\"statefulOperators\":[";
  bool first = true;
  for (const auto& vertex : graph.vertices())
    for (const auto& op : vertex.chain) {
      auto state = op->make_state();
      if (!state || !state->durable()) continue;  // as durable_states counts the slots
      if (!first) out += ',';
      first = false;
      out += "{\"vertex\":";
      append_json_string(out, vertex.name);
      out += ",\"parallelism\":" + std::to_string(vertex.parallelism) + ",\"operator\":";
      append_json_string(out, op->name());
      out += ",\"keys\":";
      append_strings(out, op->key_columns());
      out += ",\"stateSchema\":";
      append_schema(out, state->snapshot().schema());
      out += '}';
    }
  return out + "]}";
}

namespace {

fingerprint read_checkpoint_fingerprint(const std::string& checkpoint, const std::string& checkpoint_directory) {
  return fingerprint_reader("checkpoint '" + checkpoint_directory + "' (its metadata)",
                            "the checkpoint is damaged or was not written by libflow; start the "
                            "query with a new checkpointLocation")
      .read(checkpoint);
}

}  // namespace

std::optional<std::size_t> checkpoint_parallelism(const std::string& checkpoint, const std::string& checkpoint_directory) {
  std::optional<std::size_t> common;
  for (const auto& op : read_checkpoint_fingerprint(checkpoint, checkpoint_directory).operators) {
    const auto parallelism = static_cast<std::size_t>(op.parallelism);
    if (common && *common != parallelism) return std::nullopt;
    common = parallelism;
  }
  return common;
}

std::optional<std::string> checkpoint_incompatibility(const std::string& checkpoint, const std::string& query,
                                                      const std::string& checkpoint_directory) {
  const auto old_graph = read_checkpoint_fingerprint(checkpoint, checkpoint_directory);
  const auto new_graph =
      fingerprint_reader("the query", "it must be what graph_fingerprint returned for the query").read(query);
  std::string differences;
  describe_sources(old_graph, new_graph, differences);
  describe_operators(old_graph, new_graph, differences);
  if (differences.empty()) return std::nullopt;
  return "checkpoint '" + checkpoint_directory + "' was written by a different query; it cannot resume this one:\n" +
         differences + "Start the query with a new checkpointLocation, or change it back.";
}

}  // namespace flow
