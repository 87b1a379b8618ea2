// A small program for the Kafka exactly-once crash test (tests/actors/kafka_exactly_once_test.cpp): csv files
// (id,payload), one per epoch, into the Kafka sink with deliveryGuarantee=exactly-once on a checkpoint.
//   kafka_exactly_once_query IN_DIR BOOTSTRAP_SERVERS TOPIC CHECKPOINT [KILL_AFTER_COMMIT_EPOCH]
// With the last argument the process kills itself (SIGKILL) once Kafka committed that epoch's transaction,
// before the checkpoint's commit of it is written.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "flow/session.hpp"

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::cerr << "usage: kafka_exactly_once_query IN_DIR BOOTSTRAP_SERVERS TOPIC CHECKPOINT "
                 "[KILL_AFTER_COMMIT_EPOCH]\n";
    return 2;
  }
  if (argc == 6) setenv("FLOW_KAFKA_SINK_KILL_AFTER_COMMIT", argv[5], 1);
  try {
    flow::session session;
    auto schema = flow::make_schema({{"id", flow::type_id::int64, true}, {"payload", flow::type_id::string, true}});
    auto query = session.read_stream().format("csv").schema(schema).option("maxFilesPerTrigger", 1LL).load(argv[1])
                     .select({flow::col("id").cast("string").as("key"), flow::col("payload").as("value")})
                     .write_stream().format("kafka")
                     .option("kafka.bootstrap.servers", argv[2])
                     .option("topic", argv[3])
                     .option("deliveryGuarantee", "exactly-once")
                     .option("kafka.timeoutMs", 10000LL)
                     .option("checkpointLocation", argv[4])
                     .trigger(flow::available_now()).start();
    query.await_termination();
    if (auto failure = query.exception()) {
      std::cerr << "query failed: " << *failure << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
