// A session with --flow.role=worker: the process serves a driver (worker_protocol.hpp). Include only from
// actors/*.cpp.
#pragma once

#include "flow/session.hpp"

namespace flow::runtime {

// Checks the cluster flags (throws flow::error for bad ones), listens on --flow.listen, prints
// "worker HOST:PORT: listening (build DIGEST)", serves until SIGTERM or SIGINT reaches this process, then
// prints "worker HOST:PORT: processed R rows in E epochs" as its last line and ends the process with 0.
// HOST:PORT is the address it listens on (the bound port when --flow.listen gave port 0).
[[noreturn]] void serve_as_worker(const session_config& config);

// Blocks until one byte is read from fd (the worker's stop signal): true. A read interrupted by a signal
// is retried; at the end of the file or on another read error it returns false instead of retrying.
bool await_stop_byte(int fd);

}  // namespace flow::runtime
