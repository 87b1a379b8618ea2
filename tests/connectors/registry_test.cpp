// The connector registry: built-in and user formats through the same calls, every listed format is one it
// makes, its errors name every registered format, and registering is safe from several threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include "flow/connectors/memory.hpp"
#include "flow/connectors/registry.hpp"
#include "flow/registry.hpp"
#include "test_support.hpp"
#include "user_connectors.hpp"

using flow::test::error_of;
namespace connectors = flow::connectors;

namespace {

using strings = std::vector<std::string>;

const strings builtin_sources = {"csv", "json", "text", "socket", "http-feed", "twitter", "zmq", "kafka", "rate"};
const strings builtin_sinks = {"memory", "console", "csv", "json", "foreach", "foreachBatch", "socket", "kafka", "zmq",
                               "noop"};

bool contains(const strings& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string joined(const strings& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

TEST_CASE("registry lists every built-in source format, and each one resolves", "[registry]") {
  const strings formats = flow::source_formats();
  CHECK(std::is_sorted(formats.begin(), formats.end()));
  for (const auto& format : builtin_sources) {
    INFO(format);
    CHECK(contains(formats, format));
    flow::scan_spec scan;
    scan.format = format;
    scan.streaming = true;
    // The file formats read a path; every other source refuses one.
    scan.path = "/data/in";
    CHECK((error_of([&] { connectors::resolve_source(scan); }).find("takes no path") == std::string::npos) ==
          flow::is_text_file_format(format));
    scan.path.clear();
    // Options are missing, so most connectors refuse; none may call the format unknown.
    CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }), !Catch::Contains("unknown source format"));
    CHECK_THAT(error_of([&] { connectors::make_source(scan); }), !Catch::Contains("unknown source format"));
  }
}

TEST_CASE("registry resolves a file format by inferring its schema", "[registry]") {
  flow::test::temp_dir dir;
  flow::test::write_file(dir.path() / "a.csv", "id,name\n1,ana\n");
  flow::scan_spec scan;
  scan.format = "csv";
  scan.path = dir.path().string();
  scan.opts.set("header", "true");
  scan.opts.set("inferSchema", "true");
  connectors::resolve_source(scan);
  REQUIRE(scan.schema);
  CHECK(scan.schema->index_of("name") == 1);
  scan.schema = nullptr;
  scan.path = (dir.path() / "missing").string();
  CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }), Catch::Contains("missing"));
}

TEST_CASE("registry: an unknown source format names every registered one, sorted", "[registry]") {
  flow::scan_spec scan;
  scan.format = "parquet";
  scan.streaming = true;
  for (const auto& message : {error_of([&] { connectors::resolve_source(scan); }),
                              error_of([&] { connectors::make_source(scan); })}) {
    CHECK_THAT(message, Catch::StartsWith("unknown source format 'parquet'; registered: " +
                                          joined(flow::source_formats()) + " (names are case-sensitive;") &&
                            Catch::Contains("flow::register_source_format"));
  }
  CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }),
             Catch::Contains("csv, http-feed, json, kafka, rate, socket, text, twitter, zmq"));
}

TEST_CASE("registry lists every built-in sink format, each one is made, and an unknown one names them all",
          "[registry]") {
  const strings formats = flow::sink_formats();
  CHECK(std::is_sorted(formats.begin(), formats.end()));
  flow::sink_context ctx;
  ctx.catalog = std::make_shared<connectors::memory_catalog>();
  for (const auto& format : builtin_sinks) {
    INFO(format);
    CHECK(contains(formats, format));
    flow::sink_spec spec;
    spec.format = format;
    CHECK_THAT(error_of([&] { connectors::make_sink(spec, ctx); }), !Catch::Contains("unknown sink format"));
  }
  flow::sink_spec unknown;
  unknown.format = "parquet";
  CHECK_THAT(error_of([&] { connectors::make_sink(unknown, ctx); }),
             Catch::StartsWith("unknown sink format 'parquet'; registered: " + joined(flow::sink_formats()) +
                               " (names are case-sensitive;") &&
                 Catch::Contains("console, csv, foreach, foreachBatch, json, kafka, memory, noop, socket, zmq"));
}

TEST_CASE("registry refuses a path for a source that takes none", "[registry]") {
  flow::scan_spec scan;
  scan.format = "socket";
  scan.streaming = true;
  scan.path = "localhost:9999";
  CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }),
             Catch::Contains("load('localhost:9999'): the socket source takes no path") &&
                 Catch::Contains("call load()"));
}

TEST_CASE("a user source and sink registered by name are resolved and made like the built-ins", "[registry]") {
  auto into = std::make_shared<flow::test::collected>();
  flow::register_source_format("test-sequence", flow::test::sequence_format());
  flow::register_sink_format("test-collect", flow::test::collect_format(into));
  CHECK(contains(flow::source_formats(), "test-sequence"));
  CHECK(contains(flow::sink_formats(), "test-collect"));

  flow::scan_spec scan;
  scan.format = "test-sequence";
  scan.streaming = true;
  CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }), Catch::Contains("needs option rows"));
  scan.opts.set("rows", "4");
  scan.path = "/somewhere";
  CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }), Catch::Contains("test-sequence source takes no path"));
  scan.path.clear();
  connectors::resolve_source(scan);
  REQUIRE(scan.schema);
  CHECK(scan.schema->index_of("value") == 0);
  auto reader = connectors::make_source(scan);
  CHECK(reader->description() == "SequenceSource[rows=4]");
  CHECK(reader->latest_offset(reader->initial_offset()) == "4");

  flow::sink_spec spec;
  spec.format = "test-collect";
  spec.opts.set("label", "mine");
  std::ostream* no_console = nullptr;
  CHECK(connectors::make_sink(spec, flow::sink_context{nullptr, no_console})->description() == "CollectSink[mine]");
  CHECK_FALSE(into->had_console);
}

TEST_CASE("registry: a name registered twice is an error naming it, built-in or not", "[registry]") {
  flow::register_source_format("test-twice", flow::test::sequence_format());
  CHECK_THAT(error_of([] { flow::register_source_format("test-twice", flow::test::sequence_format()); }),
             Catch::Contains("flow::register_source_format(\"test-twice\"): a source format named 'test-twice' is "
                             "already registered; choose another name"));
  CHECK_THAT(error_of([] { flow::register_source_format("csv", flow::test::sequence_format()); }),
             Catch::Contains("'csv' is already registered"));
  auto into = std::make_shared<flow::test::collected>();
  CHECK_THAT(error_of([&] { flow::register_sink_format("console", flow::test::collect_format(into)); }),
             Catch::Contains("flow::register_sink_format(\"console\"): a sink format named 'console' is already"));
  // The first registration stands.
  flow::sink_spec spec;
  spec.format = "console";
  CHECK(connectors::make_sink(spec, flow::sink_context{})->description() != "CollectSink[unnamed]");
}

TEST_CASE("registry refuses an empty name and missing functions", "[registry]") {
  CHECK_THAT(error_of([] { flow::register_source_format("", flow::test::sequence_format()); }),
             Catch::Contains("needs a non-empty name"));
  flow::source_format no_make = flow::test::sequence_format();
  no_make.make = nullptr;
  CHECK_THAT(error_of([&] { flow::register_source_format("test-no-make", no_make); }),
             Catch::Contains("register_source_format(\"test-no-make\"): the format needs both functions"));
  CHECK_THAT(error_of([] { flow::register_sink_format("test-no-factory", nullptr); }),
             Catch::Contains("register_sink_format(\"test-no-factory\"): the factory is empty"));
  CHECK_FALSE(contains(flow::source_formats(), "test-no-make"));
  CHECK_FALSE(contains(flow::sink_formats(), "test-no-factory"));
}

TEST_CASE("registry: a source without a schema and factories returning null are clear errors", "[registry]") {
  flow::source_format no_schema = flow::test::sequence_format();
  no_schema.resolve = [](flow::scan_spec&) {};
  no_schema.make = [](const flow::scan_spec&) { return std::unique_ptr<flow::source_reader>(); };
  flow::register_source_format("test-no-schema", no_schema);
  flow::register_sink_format("test-null-sink",
                             [](const flow::sink_spec&, const flow::sink_context&) { return nullptr; });
  flow::scan_spec scan;
  scan.format = "test-no-schema";
  CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }),
             Catch::Contains("the test-no-schema source has no schema: give one with schema(...)"));
  CHECK_THAT(error_of([&] { connectors::make_source(scan); }), Catch::Contains("made no reader"));
  flow::sink_spec spec;
  spec.format = "test-null-sink";
  CHECK_THAT(error_of([&] { connectors::make_sink(spec, flow::sink_context{}); }), Catch::Contains("made no writer"));
}

TEST_CASE("registering from several threads at once is safe: each name once, lookups go on", "[registry]") {
  constexpr int threads = 8;
  constexpr int names_per_thread = 50;
  std::atomic<int> contested_wins{0};
  std::atomic<int> lookup_failures{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < names_per_thread; ++i) {
        const std::string suffix = std::to_string(t) + "-" + std::to_string(i);
        flow::register_source_format("test-thread-source-" + suffix, flow::test::sequence_format());
        flow::register_sink_format("test-thread-sink-" + suffix, flow::test::collect_format(nullptr));
        try {
          flow::register_source_format("test-contested", flow::test::sequence_format());
          ++contested_wins;
        } catch (const flow::error&) {
        }
        flow::sink_spec spec;
        spec.format = "noop";
        try {
          if (connectors::make_sink(spec, flow::sink_context{})->description().empty()) ++lookup_failures;
        } catch (const flow::error&) {
          ++lookup_failures;
        }
      }
    });
  }
  go = true;
  for (auto& worker : workers) worker.join();
  CHECK(contested_wins == 1);
  CHECK(lookup_failures == 0);
  const strings sources = flow::source_formats();
  const strings sinks = flow::sink_formats();
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < names_per_thread; ++i) {
      const std::string suffix = std::to_string(t) + "-" + std::to_string(i);
      CHECK(contains(sources, "test-thread-source-" + suffix));
      CHECK(contains(sinks, "test-thread-sink-" + suffix));
    }
}
