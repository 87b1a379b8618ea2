#include <catch2/catch.hpp>

#include "flow/runtime/progress.hpp"
#include "flow/formats.hpp"

using flow::runtime::query_progress;

TEST_CASE("progress reports use Spark's field names and escape text", "[progress]") {
  query_progress p;
  p.id = "id-1";
  p.run_id = "run-1";
  p.name = "compras \"por\" hora";
  p.timestamp = "2026-01-01T00:00:00.000Z";
  p.batch_id = 7;
  p.stats.input_rows = 3108;
  p.stats.state_rows_total = {106, 5};
  p.stats.state_rows_updated = {12, 2};
  p.stats.state_rows_removed = {0, 1};
  p.stats.state_memory_bytes = {4096, 512};
  p.stats.state_update_micros = {2500, 0};
  p.stats.state_rows_dropped_by_watermark = {17};
  p.stats.event_times.add({1'000'000, 3'000'000, 5'000'000.0, 2});  // 1 s and 3 s after the epoch (avg 2.5 s)
  p.watermark = 500'000;
  p.state_operators.push_back({"aggregate", 2, 2, 3, 700, 0});
  p.state_operators.push_back({"sessions", 1, 1, 1, 80, 900});
  p.input_rows_per_second = 1500.25;
  p.processed_rows_per_second = 30000;
  p.trigger_execution_ms = 4;
  p.sources.push_back({"FileStreamSource[/data/*.csv]", "{\"logOffset\":6}", "{\"logOffset\":7}", 3108, {{"filesRead", 7}}});
  p.sink_description = "MemorySink";
  auto json = flow::runtime::to_json(p);
  CHECK_THAT(json, Catch::Contains("\"batchId\":7"));
  CHECK_THAT(json, Catch::Contains("\"numInputRows\":3108"));
  CHECK_THAT(json, Catch::Contains("\"inputRowsPerSecond\":1500.2") || Catch::Contains("\"inputRowsPerSecond\":1500.3"));
  CHECK_THAT(json, Catch::Contains("\"processedRowsPerSecond\":30000.0"));
  CHECK_THAT(json, Catch::Contains("\"triggerExecution\":4"));
  CHECK_THAT(json, Catch::Contains("\"startOffset\":{\"logOffset\":6},\"endOffset\":{\"logOffset\":7}"));
  CHECK_THAT(json, Catch::Contains(
                       "\"stateOperators\":[{\"operatorName\":\"aggregate\",\"numRowsTotal\":106,\"numRowsUpdated\":12,"
                       "\"allUpdatesTimeMs\":2,\"numRowsRemoved\":0,\"numRowsDroppedByWatermark\":17,"
                       "\"commitTimeMs\":3,\"memoryUsedBytes\":4096,"
                       "\"numShufflePartitions\":2,\"numStateStoreInstances\":2,\"customMetrics\":{\"deltaBytes\":700,"
                       "\"snapshotBytes\":0,\"stateOnCurrentVersionSizeBytes\":4096}},"
                       "{\"operatorName\":\"sessions\",\"numRowsTotal\":5,\"numRowsUpdated\":2,\"allUpdatesTimeMs\":0,"
                       "\"numRowsRemoved\":1,\"numRowsDroppedByWatermark\":0,\"commitTimeMs\":1,"
                       "\"memoryUsedBytes\":512,\"numShufflePartitions\":1,"
                       "\"numStateStoreInstances\":1,\"customMetrics\":{\"deltaBytes\":80,\"snapshotBytes\":900,"
                       "\"stateOnCurrentVersionSizeBytes\":512}}],"));
  CHECK_THAT(json, Catch::Contains("\"eventTime\":{\"avg\":\"1970-01-01T00:00:02.500Z\",\"max\":\"1970-01-01T00:00:03.000Z\","
                                   "\"min\":\"1970-01-01T00:00:01.000Z\",\"watermark\":\"1970-01-01T00:00:00.500Z\"}"));
  CHECK_THAT(json, Catch::Contains("\"name\":\"compras \\\"por\\\" hora\""));
  CHECK_THAT(json, Catch::Contains("\"metrics\":{\"filesRead\":7}"));
  CHECK(json.front() == '{');
  CHECK(json.back() == '}');
}

TEST_CASE("a query without state reports no state operators and null offsets when unknown", "[progress]") {
  query_progress p;
  p.sources.emplace_back();
  auto json = flow::runtime::to_json(p);
  CHECK_THAT(json, !Catch::Contains("eventTime"));  // no watermark: left out, as Spark does
  CHECK_THAT(json, Catch::Contains("\"stateOperators\":[]"));
  CHECK_THAT(json, Catch::Contains("\"startOffset\":null"));
  CHECK_THAT(json, Catch::Contains("\"name\":null"));
}

TEST_CASE("a graph with two sources reports each with its offsets and its share of the rows", "[progress]") {
  query_progress p;
  p.stats.input_rows = 30;
  p.processed_rows_per_second = 300;
  p.sources.push_back({"A", "1", "2", 10, {}});
  p.sources.push_back({"B", "5", "5", 20, {}});
  auto json = flow::runtime::to_json(p);
  CHECK_THAT(json, Catch::Contains("{\"description\":\"A\",\"startOffset\":1,\"endOffset\":2,\"numInputRows\":10,"
                                   "\"inputRowsPerSecond\":0.0,\"processedRowsPerSecond\":100.0"));
  CHECK_THAT(json, Catch::Contains("{\"description\":\"B\",\"startOffset\":5,\"endOffset\":5,\"numInputRows\":20,"
                                   "\"inputRowsPerSecond\":0.0,\"processedRowsPerSecond\":200.0"));
}

TEST_CASE("json_escape escapes quotes, backslashes and control characters", "[progress]") {
  CHECK(flow::json_escape("a\"b\\c\n\x01") == "a\\\"b\\\\c\\n\\u0001");
}
