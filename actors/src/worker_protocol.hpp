// A cluster worker's interface: every message a driver sends a worker and what it answers. Included only
// by the runtime's .cpp files (CAF stays out of public headers).
//
// hello and join: the join handshake (flow/runtime/cluster_handshake.hpp); a refusal is an error reply
// naming the reason. Until its node has joined, a peer's deploy, data and barrier messages are refused and
// logged by the worker.
// peers: from a joined driver, the nodes of its other joined workers, whose vertex instances may then send
// this worker's instances data (a shuffle between workers). Answers how many nodes the worker now trusts.
// deploy: run one instance of a vertex of the graph (rebuilt from the description by registered names):
// vertex index, instance, parallelism, how many upstream barriers end an epoch, and where its output goes
// (a batch_input_actor). Answers the instance's input, a batch_input_actor (protocol.hpp) that takes the
// epoch protocol's data and barrier messages.
#pragma once

#include <caf/all.hpp>

#include "graph_inspect.hpp"
#include "protocol.hpp"

namespace flow::runtime {

using hello_atom = caf::atom_constant<caf::atom("hello")>;    // driver -> worker: nonce, build
using join_atom = caf::atom_constant<caf::atom("join")>;      // driver -> worker: proof
using deploy_atom = caf::atom_constant<caf::atom("deploy")>;  // driver -> worker: a vertex instance
using peers_atom = caf::atom_constant<caf::atom("peers")>;    // driver -> worker: the other workers' nodes

// Actor handles travel untyped (caf::actor): CAF serializes those without registration.
using worker_actor = caf::typed_actor<
    caf::replies_to<hello_atom, std::string, std::string>::with<std::string, std::string>,
    caf::replies_to<join_atom, std::string>::with<std::string>,
    caf::replies_to<peers_atom, std::vector<caf::node_id>>::with<std::uint64_t>,
    caf::replies_to<deploy_atom, graph_description, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                    caf::actor>::with<caf::actor>>;

}  // namespace flow::runtime
