// What every node's actor system needs: libflow's message types, and for a cluster node the middleman
// (with heartbeats, so that a hung or cut-off peer is noticed) and caf-openssl for TLS. Include only from
// actors/*.cpp.
#pragma once

#include <cstdint>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/publish.hpp>

#include "flow/runtime/cluster_settings.hpp"

namespace flow::runtime {

// Registers every type libflow's actors send (on every node alike: an unregistered type arrives empty).
void add_message_types(caf::actor_system_config& cfg);

// Loads the middleman (and the TLS manager with the settings' files) with heartbeats every 100 ms and a
// 600 ms connection timeout.
void enable_networking(caf::actor_system_config& cfg, const cluster_settings& settings);

// The middleman that connects to other nodes and carries the messages (caf-openssl's with TLS).
caf::io::middleman_actor cluster_middleman(caf::actor_system& sys, const cluster_settings& settings);
caf::io::middleman_actor cluster_middleman(caf::actor_system& sys, bool tls);

// Publishes handle on at (port 0: any free one), with TLS when the settings have it; the port, or throws
// flow::error naming flag and what to do. Typed handles only: the peer checks the published interface.
template <class Handle>
std::uint16_t publish_on(caf::actor_system& sys, const cluster_settings& settings, const Handle& handle,
                         const cluster_address& at, const std::string& flag) {
  auto port = settings.tls() ? caf::openssl::publish(handle, at.port, at.host.c_str(), true)
                             : sys.middleman().publish(handle, at.port, at.host.c_str(), true);
  if (!port)
    throw error(flag + "=" + at.to_string() + ": cannot listen there: " + sys.render(port.error()) +
                "; choose a free port on an address of this machine");
  return *port;
}

// Whether a connect that failed with err is made again after attempts_made attempts. CAF 0.17's middleman
// starts an outgoing connection's silence clock at zero, so its next heartbeat tick (0-100 ms away) ends a
// connection whose peer has not yet sent its handshake (TLS's first), failing it with connection_timeout; an
// attempt made right after that failure has the whole interval. At most 4 attempts: against a listener that
// never accepts, each leaves a connection in its backlog, and a full backlog blocks the middleman's connect
// for minutes.
bool connect_again(const caf::error& err, int attempts_made);

// An error's own text when it carries one (a refusal's reason), else CAF's rendering.
std::string error_text(caf::actor_system& sys, const caf::error& err);

}  // namespace flow::runtime
