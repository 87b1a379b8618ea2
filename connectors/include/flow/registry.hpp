// The open registries: a user's own sources, sinks and batch functions, registered by name next to the
// built-in ones, which register through the same calls. After
//   flow::register_source_format("my-source", {resolve, make});
// session.read_stream().format("my-source") reads with it, and write_stream().format("my-sink") writes with
// a sink registered by register_sink_format. Registration is thread-safe and may happen at any time, also
// from static initialisers; a name is registered once (registering it again throws flow::error naming it).
// An unknown format fails load() / start() with every registered name. See docs/connectors.md.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "flow/dataframe.hpp"
#include "flow/function_registry.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {
class memory_catalog;
}

namespace flow {

// A source connector.
struct source_format {
  // Runs at load() in the caller's thread: checks scan.opts (and scan.path when takes_path) and sets
  // scan.schema to what the reader will emit (the connector's own schema, or the one the user gave with
  // schema(...), left in scan.schema). scan.streaming tells read_stream() from read(). Throws flow::error
  // saying what is wrong and what to do.
  std::function<void(scan_spec& scan)> resolve;
  // Runs when a query starts, with the resolved scan: makes the query's reader.
  std::function<std::unique_ptr<source_reader>(const scan_spec& scan)> make;
  // Whether the source reads the path of load(path); otherwise load(path) is refused and load() is used.
  bool takes_path = false;
};

// What a sink may need from the session.
struct sink_context {
  std::shared_ptr<connectors::memory_catalog> catalog;  // the memory sink's tables
  std::ostream* console = nullptr;                      // the console sink's stream (standard output)
};

// A sink connector: runs when a query starts, with the writer's settings (spec.opts, query name, output
// mode, trigger); the query's schema comes to sink_writer::open. Throws flow::error for bad options.
using sink_factory = std::function<std::unique_ptr<sink_writer>(const sink_spec& spec, const sink_context& ctx)>;

// Throw flow::error for an empty name, a missing function, or a name already registered.
void register_source_format(std::string name, source_format format);
void register_sink_format(std::string name, sink_factory factory);

// Every registered name, sorted.
std::vector<std::string> source_formats();
std::vector<std::string> sink_formats();

}  // namespace flow
