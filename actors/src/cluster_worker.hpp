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

}  // namespace flow::runtime
