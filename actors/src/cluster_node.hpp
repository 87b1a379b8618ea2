// What every node's actor system needs: libflow's message types, and for a cluster node the middleman
// (with heartbeats, so that a hung or cut-off peer is noticed) and caf-openssl for TLS. Include only from
// actors/*.cpp.
#pragma once

#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>

#include "flow/runtime/cluster_settings.hpp"

namespace flow::runtime {

// Registers every type libflow's actors send (on every node alike: an unregistered type arrives empty).
void add_message_types(caf::actor_system_config& cfg);

// Loads the middleman (and the TLS manager with the settings' files) with heartbeats every 100 ms and a
// 600 ms connection timeout.
void enable_networking(caf::actor_system_config& cfg, const cluster_settings& settings);

// An error's own text when it carries one (a refusal's reason), else CAF's rendering.
std::string error_text(caf::actor_system& sys, const caf::error& err);

}  // namespace flow::runtime
