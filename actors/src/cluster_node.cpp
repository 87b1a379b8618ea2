#include "cluster_node.hpp"

#include <chrono>

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include "graph_inspect.hpp"
#include "protocol.hpp"
#include "worker_protocol.hpp"

namespace flow::runtime {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<batch>("flow::batch");
  cfg.add_message_type<raw_chunk>("flow::raw_chunk");
  cfg.add_message_type<epoch_stats>("flow::epoch_stats");
  cfg.add_message_type<graph_description>("flow::graph_description");
  cfg.add_message_type<instance_deployment>("flow::instance_deployment");
  cfg.add_message_type<std::vector<caf::node_id>>("std::vector<caf::node_id>");  // a driver's list of workers
}

void enable_networking(caf::actor_system_config& cfg, const cluster_settings& settings) {
  using namespace std::chrono_literals;
  // Without heartbeats a peer that hangs or whose link is cut (no FIN, no RST) is never noticed. Six
  // heartbeats per timeout: a loss shows within ~0.7 s (the target: under 1 s), while a peer whose
  // middleman thread is starved for half a second on a busy machine is still not taken for lost.
  cfg.set("middleman.heartbeat-interval", caf::timespan{100ms});
  cfg.set("middleman.connection-timeout", caf::timespan{600ms});
  cfg.load<caf::io::middleman>();
  if (!settings.tls()) return;
  cfg.openssl_certificate = settings.tls_certificate;
  cfg.openssl_key = settings.tls_key;
  cfg.openssl_cafile = settings.tls_ca;
  cfg.load<caf::openssl::manager>();
}

caf::io::middleman_actor cluster_middleman(caf::actor_system& sys, const cluster_settings& settings) {
  return cluster_middleman(sys, settings.tls());
}

caf::io::middleman_actor cluster_middleman(caf::actor_system& sys, bool tls) {
  return tls ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle();
}

bool connect_again(const caf::error& err, int attempts_made) {
  return err == caf::sec::connection_timeout && attempts_made < 4;
}

std::string error_text(caf::actor_system& sys, const caf::error& err) {
  const auto& context = err.context();
  if (context.size() == 1 && context.match_element<std::string>(0)) return context.get_as<std::string>(0);
  return sys.render(err);
}

}  // namespace flow::runtime
