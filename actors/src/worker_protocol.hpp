// A cluster worker's interface: every message a driver (or a peer worker) sends a worker and what it
// answers. Included only by the runtime's .cpp files (CAF stays out of public headers).
//
// hello, join and build: the join handshake (flow/runtime/cluster_handshake.hpp); a refusal is an error
// reply naming the reason. A hello not followed by a join within the join's timeout is forgotten. Until
// its node has joined, a peer's deploy, data and barrier messages are refused and logged by the worker.
// peers: from a joined driver, the nodes of its other joined workers, whose vertex instances may then send
// this worker's instances data (a shuffle between workers). The worker links directly to the peers whose
// node ids sort after its own (link_watch) and answers its slots (how many vertex instances it takes: its
// core count, or --flow.threads) once they are linked, at the latest after half the join's timeout.
// link_watch: worker -> a peer, over the direct link it just opened to it: watch the sender through it (a
// link's end fails the running generations). Answers true; from a node no driver has named yet, once a
// driver names it, or an error after half the join's timeout (at most 64 such requests wait).
// deploy: from a joined driver only (not from a peer it named), run one instance of an operator vertex (instance_deployment below), the same instance actor as
// the driver's (dataflow.hpp). Answers the instance's handle, a batch_input_actor (protocol.hpp) that takes
// the epoch protocol's data and barrier messages.
// announce: worker -> a driver's registrar (published on the driver's --flow.listen), from a worker started
// with --flow.join: its handle and its listen address. It proves nothing: the driver then joins the worker
// through that handle as it joins a listed worker (hello, join), and refuses and logs one that fails.
#pragma once

#include <caf/all.hpp>

#include "graph_inspect.hpp"
#include "protocol.hpp"

namespace flow::runtime {

using hello_atom = caf::atom_constant<caf::atom("hello")>;    // driver -> worker: nonce, build fingerprint
using join_atom = caf::atom_constant<caf::atom("join")>;      // driver -> worker: proof
using build_atom = caf::atom_constant<caf::atom("build")>;    // driver -> worker: build list (after proofs)
using expire_atom = caf::atom_constant<caf::atom("expire")>;  // worker -> itself: a join's, link's or watch's wait ends
using deploy_atom = caf::atom_constant<caf::atom("deploy")>;  // driver -> worker: a vertex instance
using peers_atom = caf::atom_constant<caf::atom("peers")>;    // driver -> worker: the workers' nodes, addresses
using announce_atom = caf::atom_constant<caf::atom("announce")>;  // worker -> registrar: handle, address
using link_watch_atom = caf::atom_constant<caf::atom("linkwatch")>;  // worker -> a peer it linked to directly

// An operator vertex's instance as it crosses the wire (dataflow.hpp's instance_setup without what cannot
// cross: a source's decoder, the driver's directories). The graph is rebuilt by registered names; the
// durable states start from rows (a RocksDB state's directory copy on the driver is not visible to a
// worker); the worker keeps the states with the same backend in a directory of its own.
struct instance_deployment {
  graph_description graph;
  std::uint64_t vertex = 0, instance = 0;
  std::vector<std::vector<caf::actor>> targets;  // per outgoing edge, per target instance
  std::vector<std::uint64_t> slots;
  std::uint64_t first_state_operator = 0;
  std::vector<batch> restored;  // per durable state
  std::string state_backend = "memory";
  std::uint64_t block_cache_bytes = 0, write_buffer_bytes = 0;
  caf::actor coordinator;  // supervision: where state changes and failures go
  std::uint64_t generation = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance_deployment& x) {
  return f(caf::meta::type_name("flow::instance_deployment"), x.graph, x.vertex, x.instance, x.targets, x.slots,
           x.first_state_operator, x.restored, x.state_backend, x.block_cache_bytes, x.write_buffer_bytes,
           x.coordinator, x.generation);
}

// Actor handles travel untyped (caf::actor): CAF serializes those without registration.
using worker_actor = caf::typed_actor<
    caf::replies_to<hello_atom, std::string, std::string>::with<std::string, std::string>,
    caf::replies_to<join_atom, std::string>::with<std::string>,
    caf::replies_to<build_atom, std::string>::with<std::string>,
    caf::reacts_to<expire_atom, std::uint64_t>,
    caf::replies_to<peers_atom, std::vector<caf::node_id>, std::vector<std::string>>::with<std::uint64_t>,
    caf::replies_to<link_watch_atom>::with<bool>,
    caf::replies_to<deploy_atom, instance_deployment>::with<caf::actor>>;

using registrar_actor = caf::typed_actor<caf::reacts_to<announce_atom, caf::actor, std::string>>;

}  // namespace flow::runtime
