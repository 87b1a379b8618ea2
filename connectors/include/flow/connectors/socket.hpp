// Lines of text over TCP (Spark's "socket" format, socketTextStream), as a source and as a sink.
// Plain POSIX sockets behind these factories: no socket type appears here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// value: string, plus timestamp: timestamp (arrival time) with includeTimestamp=true.
flow::schema_ptr socket_source_schema(const flow::options& opts);

// Throws flow::error naming the option when host, port, mode, maxLineBytes, reconnectInitialMs,
// reconnectMaxMs, maxBufferedBytes or blockBytes is missing or invalid.
void validate_socket_source_options(const flow::options& opts);

// Options: host, port (both required), mode "client" (default: connect to host:port, reconnect with
// backoff) or "server" (listen on host:port, port 0 = a free one, accept any number of producers),
// includeTimestamp (default false), maxLineBytes (default 1 MiB: a longer line is a bad record),
// reconnectInitialMs (100), reconnectMaxMs (5000), plus push_source's maxBufferedBytes, blockBytes and walEnabled.
// Lines end at '\n'; a trailing '\r' and a UTF-8 byte-order mark opening a connection are stripped.
// Offsets are {"offset":N}, replayable until committed; across process restarts only with walEnabled on a
// checkpoint (push_source.hpp).
// In server mode the port is bound here, so a port in use fails the query's start().
std::unique_ptr<flow::source_reader> make_socket_source(const flow::options& opts);

// The port a server-mode socket source listens on (the free one picked for port 0); 0 for any other reader.
std::uint16_t socket_source_bound_port(const flow::source_reader& source);

// The ports the server-mode socket sources alive in this process listen on, oldest first: how a
// program that started a query with port 0 learns where producers connect.
std::vector<std::uint16_t> listening_socket_ports();

// Throws flow::error naming the option when host, port, reconnectInitialMs, reconnectMaxMs or
// writeTimeoutMs is missing or invalid.
void validate_socket_sink_options(const flow::options& opts);

// Options: host, port (both required), reconnectInitialMs (100), reconnectMaxMs (5000), writeTimeoutMs
// (30000: how long a commit keeps reconnecting before the epoch fails). Writes each row's "value"
// column as one line (the row as CSV when there is no "value" column). An epoch's lines are sent at its
// commit, in full again on a new connection when the send fails: at-least-once up to the peer's kernel.
std::unique_ptr<flow::sink_writer> make_socket_sink(const flow::options& opts);

// Shared by the socket source and sink (file descriptors as plain ints).
namespace socket_detail {

// The "port" option: required, 1..65535 (0 too when allow_zero). who names the connector in errors.
std::uint16_t port_option(const flow::options& opts, bool allow_zero, const std::string& who);
// A positive integer option, with its default.
std::int64_t positive_option(const flow::options& opts, const std::string& key, std::int64_t fallback,
                             const std::string& who);
// Connects to host:port (name lookup, every address in turn) within timeout. Returns a non-blocking,
// close-on-exec socket, or -1 with the reason in error. A readable wake_fd (if >= 0) cuts the wait short.
int connect_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout, int wake_fd,
                std::string& error);

}  // namespace socket_detail

}  // namespace flow::connectors

namespace flow {
using connectors::make_socket_sink;
using connectors::make_socket_source;
}  // namespace flow
