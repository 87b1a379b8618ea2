// The connector registry: every format it lists is one it makes, and its errors name them all.
#include <catch2/catch.hpp>

#include <algorithm>

#include "flow/connectors/memory.hpp"
#include "flow/connectors/registry.hpp"
#include "test_support.hpp"

using flow::test::error_of;
namespace connectors = flow::connectors;

namespace {

using strings = std::vector<std::string>;

bool contains(const strings& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

TEST_CASE("registry lists every source format, and each one resolves", "[registry]") {
  const strings formats = connectors::source_formats();
  for (const char* expected : {"csv", "json", "text", "socket", "http-feed", "twitter", "zmq", "kafka", "rate"})
    CHECK(contains(formats, expected));
  for (const auto& format : formats) {
    INFO(format);
    flow::scan_spec scan;
    scan.format = format;
    scan.streaming = true;
    // The registry's file formats (resolved by the session, read from a path) are libflow's.
    scan.path = "/data/in";
    CHECK((error_of([&] { connectors::resolve_source(scan); }).find("takes no path") == std::string::npos) ==
          flow::is_text_file_format(format));
    scan.path.clear();
    // Options are missing, so most connectors refuse; none may call the format unknown.
    CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }), !Catch::Contains("unknown source format"));
    CHECK_THAT(error_of([&] { connectors::make_source(scan); }), !Catch::Contains("unknown source format"));
  }
}

TEST_CASE("registry: an unknown source format names every supported one", "[registry]") {
  flow::scan_spec scan;
  scan.format = "parquet";
  scan.streaming = true;
  for (const auto& message : {error_of([&] { connectors::resolve_source(scan); }),
                              error_of([&] { connectors::make_source(scan); })}) {
    CHECK_THAT(message, Catch::StartsWith("unknown source format 'parquet'; supported: "));
    for (const auto& format : connectors::source_formats()) CHECK_THAT(message, Catch::Contains(format));
  }
  CHECK_THAT(error_of([&] { connectors::resolve_source(scan); }),
             Catch::Contains("csv, json, text, socket, http-feed, twitter, zmq, kafka, rate"));
}

TEST_CASE("registry lists every sink format, each one is made, and an unknown one names them all", "[registry]") {
  const strings formats = connectors::sink_formats();
  for (const char* expected :
       {"memory", "console", "csv", "json", "foreach", "foreachBatch", "socket", "kafka", "zmq", "noop"})
    CHECK(contains(formats, expected));
  connectors::sink_context ctx;
  ctx.catalog = std::make_shared<connectors::memory_catalog>();
  for (const auto& format : formats) {
    INFO(format);
    flow::sink_spec spec;
    spec.format = format;
    CHECK_THAT(error_of([&] { connectors::make_sink(spec, ctx); }), !Catch::Contains("unknown sink format"));
  }
  flow::sink_spec unknown;
  unknown.format = "parquet";
  auto message = error_of([&] { connectors::make_sink(unknown, ctx); });
  CHECK_THAT(message, Catch::StartsWith("unknown sink format 'parquet'; supported: "));
  for (const auto& format : formats) CHECK_THAT(message, Catch::Contains(format));
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
