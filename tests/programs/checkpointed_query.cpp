// A small program for the process-crash tests (tests/actors/end_to_end_crash_test.cpp): one stateless
// query on a checkpoint, into the csv file sink, that the tests kill with SIGKILL and start again.
//   checkpointed_query files IN_DIR OUT_DIR CHECKPOINT   csv files (id,payload) one per epoch, until none is left
//   checkpointed_query socket PORT OUT_DIR CHECKPOINT    lines from 127.0.0.1:PORT (walEnabled) until SIGTERM
#include <signal.h>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>

#include "flow/session.hpp"

using namespace std::chrono_literals;

namespace {

flow::streaming_query start(flow::session& session, const std::string& mode, const std::string& input,
                            const std::string& output, const std::string& checkpoint) {
  if (mode == "files") {
    auto schema = flow::make_schema({{"id", flow::type_id::int64, true}, {"payload", flow::type_id::string, true}});
    return session.read_stream().format("csv").schema(schema).option("maxFilesPerTrigger", 1LL).load(input)
        .select({flow::col("id"), flow::col("payload")})
        .write_stream().format("csv").option("path", output).option("checkpointLocation", checkpoint)
        .trigger(flow::available_now()).start();
  }
  return session.read_stream().format("socket").option("host", "127.0.0.1").option("port", std::stoi(input))
      .option("walEnabled", "true").load()
      .select({flow::col("value")})
      .write_stream().format("csv").option("path", output).option("checkpointLocation", checkpoint)
      .trigger(flow::processing_time(20ms)).start();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 || (std::string(argv[1]) != "files" && std::string(argv[1]) != "socket")) {
    std::cerr << "usage: checkpointed_query files IN_DIR OUT_DIR CHECKPOINT | socket PORT OUT_DIR CHECKPOINT\n";
    return 2;
  }
  // Blocked before any thread starts, so that only sigwait below receives SIGTERM.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    flow::session session;
    auto query = start(session, argv[1], argv[2], argv[3], argv[4]);
    std::cout << "started" << std::endl;
    if (std::string(argv[1]) == "files") {
      query.await_termination();
    } else {
      int received = 0;
      sigwait(&stop_signals, &received);
      query.stop();
    }
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
