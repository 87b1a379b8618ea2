// ZeroMQ (format "zmq") as a source (SUB or PULL socket) and a sink (PUB or PUSH socket).
// libzmq stays behind these factories: no ZeroMQ type appears here. See docs/connectors.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flow/formats.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// The source's schema: text gives value[, timestamp] (includeTimestamp) and refuses a custom schema;
// csv, json and binary require the given one. Throws flow::error naming the option when endpoint,
// socketType, bind, subscribe, messageFormat, rcvHwm, maxBufferedBytes or blockBytes is missing or
// invalid, or when the schema is missing (csv/json/binary) or given (text).
flow::schema_ptr resolve_zmq_source_schema(const flow::options& opts, flow::schema_ptr given);

// Options: endpoint (required, e.g. tcp://127.0.0.1:5555; with bind=true tcp://127.0.0.1:* picks a free
// port), socketType SUB (default) or PULL, bind (default false: connect), subscribe (SUB only:
// comma-separated topic prefixes, default all), messageFormat text (default) | csv | json | binary
// (one flow::encode'd batch per message), rcvHwm (default 1000), includeTimestamp (text only), plus
// push_source's maxBufferedBytes, blockBytes and walEnabled. One message is one record: a single frame is the
// payload (with topic filters, the matching topic prefix is stripped from it); a two-frame message is
// [topic, payload]; a message of more frames is a bad record. The socket is bound or connected here, so
// a bad endpoint or a port in use fails the query's start().
std::unique_ptr<flow::source_reader> make_zmq_source(const flow::options& opts, flow::schema_ptr schema);

// Throws flow::error naming the option when endpoint, socketType, bind, messageFormat, sndHwm, topic,
// lingerMs or sendTimeoutMs is missing or invalid.
void validate_zmq_sink_options(const flow::options& opts);

// Options: endpoint (required), socketType PUB (default) or PUSH, bind (default false: connect),
// messageFormat text (default: column "value", or the row as CSV without one) | csv | json (one message
// per row) | binary (one message per batch written, flow::encode), sndHwm (default 1000), topic (PUB
// only: sent as the first frame of [topic, payload]), sendTimeoutMs (PUSH: how long a commit waits for
// a peer to take a message before the epoch fails; default 30000), lingerMs (how long close waits for
// unsent messages; default 1000). An epoch's messages are sent at its commit.
std::unique_ptr<flow::sink_writer> make_zmq_sink(const flow::options& opts);

// The endpoints (with the port actually bound) of the zmq sources / sinks alive in this process that
// bind, oldest first: how a program that bound tcp://host:* learns where peers connect.
std::vector<std::string> bound_zmq_source_endpoints();
std::vector<std::string> bound_zmq_sink_endpoints();

}  // namespace flow::connectors

namespace flow {
using connectors::make_zmq_sink;
using connectors::make_zmq_source;
}  // namespace flow
