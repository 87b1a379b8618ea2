#include "cluster_worker.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include <caf/io/middleman.hpp>

#include "cluster_node.hpp"
#include "dataflow.hpp"
#include "flow/connectors/registry.hpp"
#include "flow/runtime/cluster_handshake.hpp"
#include "flow/runtime/cluster_settings.hpp"
#include "worker_protocol.hpp"

namespace flow::runtime {

namespace {

// What the worker and its vertex instances share: which nodes it trusts (drivers that joined, and the
// workers a driver named), and the last line's figures.
struct worker_shared final : instance_guard {
  std::string name;  // HOST:PORT
  std::mutex mutex;
  std::set<caf::node_id> trusted, refused;
  std::set<std::int64_t> epochs;
  std::atomic<std::int64_t> rows{0}, file_bytes{0};

  void trust(const caf::node_id& node) {
    std::lock_guard<std::mutex> lock(mutex);
    trusted.insert(node);
  }
  bool trusts(const caf::strong_actor_ptr& sender) {
    if (!sender) return false;
    std::lock_guard<std::mutex> lock(mutex);
    return trusted.count(sender->node()) > 0;
  }
  // Logs (once per node) and refuses a message from a node this worker does not trust.
  caf::error refuse(const caf::strong_actor_ptr& sender, const std::string& what) {
    const auto node = sender ? sender->node() : caf::node_id{};
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      first = refused.insert(node).second;
    }
    if (first)
      std::cerr << "worker " << name << ": refused " << what << " from " << (sender ? caf::to_string(node) : "an anonymous sender")
                << ": it has not joined (further refusals from it are not logged)" << std::endl;
    return caf::make_error(caf::sec::runtime_error, "worker " + name + " refused " + what + ": join first");
  }

  // instance_guard: what the vertex instances on this worker call.
  bool admits(const caf::strong_actor_ptr& sender) override {
    if (trusts(sender)) return true;
    refuse(sender, "data or a barrier");
    return false;
  }
  void received(std::size_t n) override { rows += static_cast<std::int64_t>(n); }
  void read_from_files(std::size_t bytes) override { file_bytes += static_cast<std::int64_t>(bytes); }
  void completed(std::int64_t epoch) override {
    std::lock_guard<std::mutex> lock(mutex);
    epochs.insert(epoch);
  }
  void unacknowledged(std::size_t bytes) override {
    auto seen = most_unacked.load();
    while (bytes > seen && !most_unacked.compare_exchange_weak(seen, bytes)) {}
  }
  std::atomic<std::size_t> most_unacked{0};  // the most bytes one instance had unacked at one target on another node
};

// The instance setup a deploy describes; throws flow::error for one this worker must not run.
instance_setup setup_of(const instance_deployment& d, const std::shared_ptr<worker_shared>& shared,
                        const std::string& state_directory) {
  instance_setup setup;
  setup.graph = std::make_shared<const dataflow_graph>(rebuild(d.graph));
  const auto& graph = *setup.graph;
  if (d.vertex >= graph.vertices().size())
    throw error("vertex " + std::to_string(d.vertex) + " is not in the graph (it has " +
                std::to_string(graph.vertices().size()) + ")");
  const auto& vertex = graph.vertex(d.vertex);
  if (vertex.kind == vertex_kind::sink) throw error("vertex '" + vertex.name + "' is a sink: workers run operator chains");
  if (vertex.kind == vertex_kind::source) {
    // Only the instances of a file source (csv, json, text) and of a Kafka source run on workers: they read
    // the files or the partitions' offset ranges the driver plans for them. No other source is made here:
    // one may connect somewhere as it is made.
    if (vertex.scan.format == "csv" || vertex.scan.format == "json" || vertex.scan.format == "text")
      setup.chunk_decoder = chain_decoder(make_decoder(vertex.scan.format, vertex.scan.opts, vertex.scan.schema), vertex);
    else if (vertex.scan.format == "kafka")
      setup.range_reader = connectors::make_source(vertex.scan);
    else
      throw error("vertex '" + vertex.name + "' is a source vertex of format '" + vertex.scan.format +
                  "': only the instances of a file source (csv, json, text) or of a Kafka source read on workers; "
                  "the others decode their reader's records on the driver");
    const auto sources = graph.sources();
    setup.source_index = static_cast<std::size_t>(std::find(sources.begin(), sources.end(), d.vertex) - sources.begin());
  }
  if (d.instance >= vertex.parallelism)
    throw error("instance " + std::to_string(d.instance) + " of a parallelism of " + std::to_string(vertex.parallelism) +
                ": instances count from 0 to parallelism - 1");
  const auto outputs = graph.outputs_of(d.vertex);
  if (d.targets.size() != outputs.size())
    throw error("vertex '" + vertex.name + "' has " + std::to_string(outputs.size()) + " outgoing edges, the deploy names targets for " +
                std::to_string(d.targets.size()));
  for (std::size_t e = 0; e < outputs.size(); ++e) {
    const auto& to = graph.vertex(graph.edges()[outputs[e]].to);
    const std::size_t expected = to.kind == vertex_kind::sink ? 1 : to.parallelism;
    if (d.targets[e].size() != expected)
      throw error("vertex '" + to.name + "' has " + std::to_string(expected) + " instances, the deploy names " +
                  std::to_string(d.targets[e].size()));
    auto& handles = setup.targets.emplace_back();
    for (const auto& target : d.targets[e]) handles.push_back(caf::actor_cast<batch_input_actor>(target));
  }
  if (d.slots.size() != durable_states(vertex) || d.restored.size() != d.slots.size())
    throw error("vertex '" + vertex.name + "' has " + std::to_string(durable_states(vertex)) +
                " durable states, the deploy names " + std::to_string(d.slots.size()) + " slots and " +
                std::to_string(d.restored.size()) + " restored states");
  setup.vertex = static_cast<std::size_t>(d.vertex);
  setup.instance = static_cast<std::size_t>(d.instance);
  setup.slots = d.slots;
  setup.first_state_operator = static_cast<std::size_t>(d.first_state_operator);
  for (const auto& rows : d.restored) setup.restored.emplace_back(rows);
  setup.states.backend.kind = d.state_backend;
  setup.states.backend.block_cache_bytes = static_cast<std::size_t>(d.block_cache_bytes);
  setup.states.backend.write_buffer_bytes = static_cast<std::size_t>(d.write_buffer_bytes);
  setup.states.directory = state_directory + "/generation-" + std::to_string(d.generation) + "/vertex-" +
                           std::to_string(d.vertex) + "-" + std::to_string(d.instance);
  setup.sup = supervision{caf::actor_cast<coordinator_actor>(d.coordinator), d.generation};
  setup.guard = shared;
  return setup;
}

struct peer_link_attempt;

struct worker_state {
  std::shared_ptr<worker_shared> shared;
  std::string secret, build;
  std::size_t slots = 1;
  std::string state_directory;  // the states' working files of this worker's instances
  // The instances it runs (monitored), by their coordinator (monitored): a coordinator that ends (its
  // driver lost) takes its instances along; the worker's end takes all.
  std::shared_ptr<std::map<caf::actor_addr, std::vector<caf::actor>>> instances =
      std::make_shared<std::map<caf::actor_addr, std::vector<caf::actor>>>();
  // Joins under way, by the driver's node; each is forgotten when its join has not come within
  // join_timeout of its hello (the expiry's id tells a newer hello of the same node from it).
  struct pending_join {
    worker_handshake handshake;
    std::uint64_t id;
  };
  std::map<caf::node_id, pending_join> joining;
  std::uint64_t next_join_id = 0;
  std::chrono::milliseconds join_timeout{0};
  std::set<caf::node_id> drivers;  // joined: they may name peers and deploy instances
  bool tls = false;  // peers are connected through caf-openssl's middleman (else CAF's)
  // The newest generation deployed here, by its coordinator (erased with its instances).
  struct deployed_generation {
    caf::actor coordinator;
    std::uint64_t generation;
  };
  std::map<caf::actor_addr, deployed_generation> generations;
  std::map<caf::actor_addr, std::string> peer_links;  // peers' worker actors reached directly (monitored): address
  std::map<caf::node_id, std::string> peer_addresses;  // every peer a driver named: its address
  // Requests to watch a direct link from nodes not named yet (the driver tells the workers in parallel, so
  // a peer may link before this worker heard of it), one per node, at most max_unnamed_watches: answered
  // once a driver names the node, refused half the join's timeout after they came. Ids from next_join_id.
  struct waiting_watch {
    caf::actor peer;
    caf::typed_response_promise<bool> answer;
    std::uint64_t id;
  };
  static constexpr std::size_t max_unnamed_watches = 64;
  std::map<caf::node_id, waiting_watch> unnamed_watches;
  // Links to peers under way, by id (from next_join_id): the driver is answered at the latest when the
  // id's expire_atom comes. connecting: the peers whose connect the middleman still makes (its connect
  // blocks: a second one to a peer that drops SYNs would only queue behind the first).
  std::map<std::uint64_t, std::shared_ptr<peer_link_attempt>> linking;
  std::set<caf::node_id> connecting;
  std::set<caf::node_id> lost_peer_links;  // peers whose direct link ended: their data goes through the driver
};

using worker_pointer = worker_actor::stateful_pointer<worker_state>;

void fail_running_generations(worker_pointer self, const std::string& what);

// Watches a peer's worker actor through the direct link (its proxy ends when the link does). A link that
// comes up under a query that may run fails the running generations, which restart from their checkpoint:
// the messages on the way through the driver could arrive after newer ones sent directly. That is a link
// to a peer whose earlier link ended, or one that came up late (after the driver was answered). The end
// that opened the link reports it; the watched end (opened == false) only forgets the earlier loss, so
// that one relink costs one restart.
void watch_peer(worker_pointer self, const caf::actor& peer, const std::string& address, bool opened, bool late = false) {
  auto& st = self->state;
  self->monitor(peer);
  st.peer_links[peer.address()] = address;
  std::cerr << "worker " << st.shared->name << ": connected to its peer " << address << " directly" << std::endl;
  const bool relinked = st.lost_peer_links.erase(peer.node()) > 0;
  if (!opened) return;
  if (relinked)
    fail_running_generations(self, "worker " + st.shared->name + " has a direct link to its peer " + address +
                                       " again; data between them may arrive out of order");
  else if (late)
    fail_running_generations(self, "worker " + st.shared->name + " linked its peer " + address +
                                       " directly after it had answered the driver; data between them may arrive out of order");
}

// One peer this worker links to: the driver's answer waits for it until it settles or the deadline.
struct peer_link_attempt {
  caf::node_id node;
  cluster_address peer;
  std::string address;
  std::chrono::steady_clock::time_point deadline;
  std::function<void()> answer_driver;
  bool linked = false;  // connected; the peer's answer to link_watch may still be on its way
  bool answered = false;
  void settle() {
    if (answered) return;
    answered = true;
    answer_driver();
  }
};

// One direct connection to a peer, made again while connect_again says so within the deadline, then the
// peer asked to watch this worker through it. Both ends watch: each sees the link end through its own
// heartbeats, and until the peer has seen it, its messages to this worker (a restarted generation's among
// them) go into the dead link. The request has no timeout: CAF's middleman goes on connecting after the
// deadline (a SYN lost, then answered), and such a late link is watched too.
void connect_peer(worker_pointer self, std::shared_ptr<peer_link_attempt> attempt, int attempts_made) {
  self->state.connecting.insert(attempt->node);
  self->request(cluster_middleman(self->system(), self->state.tls), caf::infinite, caf::connect_atom::value,
                attempt->peer.host, attempt->peer.port)
      .then([self, attempt](const caf::node_id& reached, caf::strong_actor_ptr& handle, const std::set<std::string>&) {
              auto& st = self->state;
              st.connecting.erase(attempt->node);
              auto actor = caf::actor_cast<caf::actor>(handle);
              if (!actor || reached != attempt->node) {
                std::cerr << "worker " << st.shared->name << ": " << attempt->address
                          << " is not the peer the driver named; their data goes through the driver" << std::endl;
              } else if (st.peer_links.count(actor.address()) == 0) {
                watch_peer(self, actor, attempt->address, true, attempt->answered);
                attempt->linked = true;
                self->request(caf::actor_cast<worker_actor>(actor), st.join_timeout / 2, link_watch_atom::value)
                    .then([attempt](bool) { attempt->settle(); },
                          [self, attempt](caf::error& err) {
                            std::cerr << "worker " << self->state.shared->name << ": its peer " << attempt->address
                                      << " does not watch their direct link (" << error_text(self->system(), err)
                                      << "); a cut of it may go unnoticed there" << std::endl;
                            attempt->settle();
                          });
                return;
              }
              attempt->settle();
            },
            [self, attempt, attempts_made](caf::error& err) {
              if (connect_again(err, attempts_made + 1) && std::chrono::steady_clock::now() < attempt->deadline) {
                connect_peer(self, attempt, attempts_made + 1);
                return;
              }
              self->state.connecting.erase(attempt->node);
              if (!attempt->answered)
                std::cerr << "worker " << self->state.shared->name << ": cannot connect to its peer " << attempt->address << " ("
                          << error_text(self->system(), err) << "); their data goes through the driver" << std::endl;
              attempt->settle();
            });
}

// Connects this worker to each peer whose node id sorts after its own (one connection per pair), then
// answers the driver its slots. Without it CAF routes messages to a peer through the driver, the node that
// named it (BASP's indirect route): every batch a shuffle sends between workers crosses the network twice
// and the driver's middleman copies it on. The connections are made before the driver deploys instances
// (it waits for the answer), so no message goes one way and a later one the other. A peer not linked
// within half the join's timeout (a network that joins each worker to the driver only) keeps the route
// through the driver; the driver is answered then (expire_atom), and a link that still comes up later
// restarts the running generations (watch_peer).
caf::result<std::uint64_t> connect_peers(worker_pointer self, const std::vector<caf::node_id>& peers,
                                         const std::vector<std::string>& addresses) {
  auto& st = self->state;
  const auto slots = std::uint64_t{st.slots};
  auto promise = self->make_response_promise<std::uint64_t>();
  auto pending = std::make_shared<std::size_t>(1);  // one for this call, released at its end
  std::function<void()> one_done = [promise, pending, slots]() mutable {
    if (--*pending == 0) promise.deliver(slots);
  };
  const auto deadline = std::chrono::steady_clock::now() + st.join_timeout / 2;
  for (std::size_t i = 0; i < peers.size() && i < addresses.size(); ++i) {
    if (!(self->node() < peers[i])) continue;
    if (st.connecting.count(peers[i]) > 0) {
      std::cerr << "worker " << st.shared->name << ": a connect to its peer " << addresses[i]
                << " is still under way; their data goes through the driver until it succeeds" << std::endl;
      continue;
    }
    auto attempt = std::make_shared<peer_link_attempt>();
    try {
      attempt->peer = parse_cluster_address(addresses[i], "a peer's address");
    } catch (const error& e) {
      std::cerr << "worker " << st.shared->name << ": " << e.what() << "; its data goes through the driver" << std::endl;
      continue;
    }
    attempt->node = peers[i];
    attempt->address = addresses[i];
    attempt->deadline = deadline;
    attempt->answer_driver = one_done;
    ++*pending;
    const auto id = ++st.next_join_id;
    st.linking[id] = attempt;
    self->delayed_send(self, st.join_timeout / 2, expire_atom::value, id);
    connect_peer(self, std::move(attempt), 0);
  }
  one_done();
  return promise;
}

// A direct link to a peer ended (cut, or the peer gone) while this worker may still reach the driver: the
// batches in flight on it are lost and the driver, whose own links hold, would not notice, so the running
// generations fail here and their coordinators restart them (from the last checkpointed epoch, as for a
// lost worker; a stale generation's report is ignored). The peer's messages then take the route through
// the driver.
void peer_link_lost(worker_pointer self, const caf::node_id& peer_node, const std::string& address, const caf::error& reason) {
  const std::string what = "worker " + self->state.shared->name + " lost its direct link to its peer " + address + " (" +
                           error_text(self->system(), reason) + "); data between them may be lost";
  self->state.lost_peer_links.insert(peer_node);
  fail_running_generations(self, what);
}

void fail_running_generations(worker_pointer self, const std::string& what) {
  std::cerr << what << std::endl;
  for (const auto& [key, deployed] : self->state.generations)
    caf::anon_send(deployed.coordinator, failed_atom::value, deployed.generation, what, false);
}

worker_actor::behavior_type worker(worker_pointer self, std::shared_ptr<worker_shared> shared,
                                   std::string secret, std::size_t slots, std::string state_directory,
                                   std::chrono::milliseconds join_timeout, bool tls) {
  self->state.shared = std::move(shared);
  self->state.secret = std::move(secret);
  self->state.build = local_build();
  self->state.slots = slots;
  self->state.state_directory = std::move(state_directory);
  self->state.join_timeout = join_timeout;
  self->state.tls = tls;
  // Not linked: a coordinator ends an old generation's instances with exit_reason::kill, which a linked
  // worker could not trap.
  self->attach_functor([instances = self->state.instances] {
    for (const auto& [coordinator, handles] : *instances)
      for (const auto& instance : handles) caf::anon_send_exit(instance, caf::exit_reason::kill);
  });
  self->set_down_handler([self](caf::down_msg& msg) {
    if (auto peer = self->state.peer_links.find(msg.source); peer != self->state.peer_links.end()) {
      peer_link_lost(self, msg.source.node(), peer->second, msg.reason);
      self->state.peer_links.erase(peer);
      return;
    }
    auto& instances = *self->state.instances;
    if (auto it = instances.find(msg.source); it != instances.end()) {
      for (const auto& instance : it->second) self->send_exit(instance, caf::exit_reason::kill);
      instances.erase(it);
      self->state.generations.erase(msg.source);
      return;
    }
    for (auto& [coordinator, handles] : instances)
      handles.erase(std::remove_if(handles.begin(), handles.end(), [&](const caf::actor& h) { return h.address() == msg.source; }),
                    handles.end());
  });
  // The refusal's text goes to the driver and to this worker's log.
  auto refuse_join = [self](const caf::node_id& node, const std::string& reason) {
    self->state.joining.erase(node);
    std::cerr << "worker " << self->state.shared->name << ": refused the join of " << caf::to_string(node) << ": "
              << reason << std::endl;
    return caf::make_error(caf::sec::runtime_error, reason);
  };
  return {
      [self, refuse_join](hello_atom, const std::string& nonce, const std::string& fingerprint)
          -> caf::result<std::string, std::string> {
        if (!self->current_sender()) return self->state.shared->refuse(nullptr, "a hello");
        const auto node = self->current_sender()->node();
        auto& st = self->state;
        const auto id = ++st.next_join_id;
        auto& pending = st.joining.insert_or_assign(node, worker_state::pending_join{worker_handshake(st.secret, st.build), id})
                            .first->second;
        self->delayed_send(self, st.join_timeout, expire_atom::value, id);
        try {
          return {pending.handshake.on_hello(nonce, fingerprint), pending.handshake.fingerprint()};
        } catch (const join_refused& e) {
          return refuse_join(node, e.what());
        }
      },
      [self, refuse_join](join_atom, const std::string& proof) -> caf::result<std::string> {
        if (!self->current_sender()) return self->state.shared->refuse(nullptr, "a join");
        const auto node = self->current_sender()->node();
        auto it = self->state.joining.find(node);
        if (it == self->state.joining.end()) return refuse_join(node, "a join without a hello first");
        try {
          auto answer = it->second.handshake.on_join(proof);
          // Another build: the driver, now authenticated, sends its list (build_atom) to be told what differs.
          if (!it->second.handshake.same_build()) return answer;
          self->state.joining.erase(it);
          self->state.shared->trust(node);
          self->state.drivers.insert(node);
          std::cerr << "worker " << self->state.shared->name << ": driver " << caf::to_string(node) << " joined" << std::endl;
          return answer;
        } catch (const join_refused& e) {
          return refuse_join(node, e.what());
        }
      },
      [self, refuse_join](build_atom, const std::string& driver_build) -> caf::result<std::string> {
        if (!self->current_sender()) return self->state.shared->refuse(nullptr, "a build list");
        const auto node = self->current_sender()->node();
        auto it = self->state.joining.find(node);
        if (it == self->state.joining.end()) return refuse_join(node, "a build list without a hello first");
        try {
          it->second.handshake.on_build(driver_build);
        } catch (const join_refused& e) {
          return refuse_join(node, e.what());
        }
        return refuse_join(node, "a build list although the builds' fingerprints agree");
      },
      [self](expire_atom, std::uint64_t id) {
        if (self->current_sender() != caf::actor_cast<caf::strong_actor_ptr>(self)) return;
        auto& st = self->state;
        const auto unnamed = std::find_if(st.unnamed_watches.begin(), st.unnamed_watches.end(),
                                          [id](const auto& entry) { return entry.second.id == id; });
        if (unnamed != st.unnamed_watches.end()) {
          unnamed->second.answer.deliver(caf::make_error(caf::sec::runtime_error, "no driver named " + caf::to_string(unnamed->first) +
                                                                                      " a peer of this worker in time"));
          st.unnamed_watches.erase(unnamed);
          return;
        }
        if (const auto link = st.linking.find(id); link != st.linking.end()) {
          const auto& attempt = *link->second;
          if (!attempt.answered && attempt.linked) {
            std::cerr << "worker " << st.shared->name << ": its peer " << attempt.address << " has not confirmed within "
                      << (st.join_timeout / 2).count() << " ms that it watches their direct link" << std::endl;
          } else if (!attempt.answered) {
            std::cerr << "worker " << st.shared->name << ": no direct link to its peer " << attempt.address << " within "
                      << (st.join_timeout / 2).count() << " ms; their data goes through the driver (a link that comes up "
                      << "later restarts the running queries)" << std::endl;
          }
          link->second->settle();
          st.linking.erase(link);
          return;
        }
        const auto it = std::find_if(st.joining.begin(), st.joining.end(), [id](const auto& entry) { return entry.second.id == id; });
        if (it == st.joining.end()) return;
        std::cerr << "worker " << st.shared->name << ": forgot the unfinished join of " << caf::to_string(it->first)
                  << " (no join within " << st.join_timeout.count() << " ms of its hello)" << std::endl;
        st.joining.erase(it);
      },
      [self](peers_atom, const std::vector<caf::node_id>& peers,
             const std::vector<std::string>& addresses) -> caf::result<std::uint64_t> {
        auto& shared = self->state.shared;
        if (!shared->trusts(self->current_sender()) || self->state.drivers.count(self->current_sender()->node()) == 0)
          return shared->refuse(self->current_sender(), "a list of peers");
        for (const auto& peer : peers) shared->trust(peer);
        auto& st = self->state;
        for (std::size_t i = 0; i < peers.size() && i < addresses.size(); ++i) st.peer_addresses[peers[i]] = addresses[i];
        for (auto waiting = st.unnamed_watches.begin(); waiting != st.unnamed_watches.end();) {
          const auto named = st.peer_addresses.find(waiting->first);
          if (named == st.peer_addresses.end()) {
            ++waiting;
            continue;
          }
          if (st.peer_links.count(waiting->second.peer.address()) == 0) watch_peer(self, waiting->second.peer, named->second, false);
          waiting->second.answer.deliver(true);
          waiting = st.unnamed_watches.erase(waiting);
        }
        return connect_peers(self, peers, addresses);
      },
      [self](link_watch_atom) -> caf::result<bool> {
        auto& st = self->state;
        const auto sender = self->current_sender();
        if (!sender) return st.shared->refuse(sender, "a request to watch a link");
        if (st.drivers.count(sender->node()) > 0)
          return caf::make_error(caf::sec::runtime_error, "a driver's link is watched by the driver, not by the worker");
        auto peer = caf::actor_cast<caf::actor>(sender);
        if (const auto named = st.peer_addresses.find(sender->node()); named != st.peer_addresses.end()) {
          if (st.peer_links.count(peer.address()) == 0) watch_peer(self, peer, named->second, false);
          return true;
        }
        if (st.unnamed_watches.size() >= worker_state::max_unnamed_watches && st.unnamed_watches.count(sender->node()) == 0)
          return st.shared->refuse(sender, "a request to watch a link (" + std::to_string(worker_state::max_unnamed_watches) +
                                               " from nodes no driver named wait already)");
        const auto id = ++st.next_join_id;
        auto answer = self->make_response_promise<bool>();
        auto [entry, first] = st.unnamed_watches.try_emplace(sender->node(), worker_state::waiting_watch{peer, answer, id});
        if (!first) {
          entry->second.answer.deliver(caf::make_error(caf::sec::runtime_error, "a newer request to watch the link came"));
          entry->second = {peer, answer, id};
        }
        self->delayed_send(self, st.join_timeout / 2, expire_atom::value, id);
        return answer;
      },
      [self](deploy_atom, const instance_deployment& deployment) -> caf::result<caf::actor> {
        auto& shared = self->state.shared;
        if (!self->current_sender() || self->state.drivers.count(self->current_sender()->node()) == 0)
          return shared->refuse(self->current_sender(), "a deploy");
        try {
          auto instance = caf::actor_cast<caf::actor>(spawn_instance(self->system(), setup_of(deployment, shared, self->state.state_directory)));
          self->monitor(instance);
          auto [of_coordinator, first] = self->state.instances->try_emplace(deployment.coordinator.address());
          if (first) self->monitor(deployment.coordinator);
          of_coordinator->second.push_back(instance);
          auto& deployed = self->state.generations[deployment.coordinator.address()];
          if (first || deployment.generation > deployed.generation) deployed = {deployment.coordinator, deployment.generation};
          return instance;
        } catch (const std::exception& e) {
          std::cerr << "worker " << shared->name << ": cannot run vertex " << deployment.vertex << ": " << e.what() << std::endl;
          return caf::make_error(caf::sec::runtime_error,
                                 "cannot run vertex " + std::to_string(deployment.vertex) + ": " + e.what());
        }
      }};
}

// A worker started with --flow.join: announces itself to that driver's registrar, again whenever it loses
// the registrar (the driver restarted, the link was cut), and every second while it cannot reach it.
class announcer {
 public:
  announcer(caf::actor_system& sys, const cluster_settings& settings, worker_actor worker, std::string name)
      : sys_(sys), settings_(settings), worker_(std::move(worker)), name_(std::move(name)),
        thread_([this] { run(); }) {}
  ~announcer() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    stop_.notify_all();
    thread_.join();
  }
  announcer(const announcer&) = delete;
  announcer& operator=(const announcer&) = delete;

 private:
  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }
  // The registrar at --flow.join, or why not (the wait bounded by the join's timeout).
  std::variant<registrar_actor, std::string> connect() {
    caf::scoped_actor self{sys_};
    std::variant<registrar_actor, std::string> result = std::string("no answer");
    self->request(cluster_middleman(sys_, settings_), settings_.join_timeout, caf::connect_atom::value, settings_.join.host,
                  settings_.join.port)
        .receive(
            [&](const caf::node_id&, caf::strong_actor_ptr& actor, const std::set<std::string>& interface) {
              if (actor && interface == sys_.message_types<registrar_actor>()) result = caf::actor_cast<registrar_actor>(std::move(actor));
              else result = std::string("nothing there takes workers: start the driver with --flow.listen=") + settings_.join.to_string();
            },
            [&](caf::error& err) { result = sys_.render(err); });
    return result;
  }
  void run() {
    const std::string driver = settings_.join.to_string();
    bool reported = false;
    while (!stopping()) {
      auto found = connect();
      if (auto* registrar = std::get_if<registrar_actor>(&found)) {
        reported = false;
        caf::scoped_actor self{sys_};
        self->monitor(*registrar);
        self->send(*registrar, announce_atom::value, caf::actor_cast<caf::actor>(worker_), name_);
        std::cerr << "worker " << name_ << ": announced itself to the driver at " << driver << std::endl;
        bool lost = false;
        while (!lost && !stopping())
          self->receive([&](const caf::down_msg&) { lost = true; }, caf::after(std::chrono::milliseconds(100)) >> [] {});
        if (lost)
          std::cerr << "worker " << name_ << ": lost the driver at " << driver << "; announcing itself again once it answers"
                    << std::endl;
      } else if (!reported) {
        std::cerr << "worker " << name_ << ": cannot reach the driver at " << driver << " (--flow.join): "
                  << std::get<std::string>(found) << "; trying again every second" << std::endl;
        reported = true;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      stop_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
    }
  }

  caf::actor_system& sys_;
  const cluster_settings settings_;
  const worker_actor worker_;
  const std::string name_;
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;  // last: it starts once the rest is made
};

int stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] auto written = ::write(stop_pipe[1], &byte, 1);
}

// Blocks until SIGTERM or SIGINT reaches the process (false: the pipe failed). The handler runs in
// whichever thread takes the signal; this one unblocks both, and Linux gives a signal sent to the process
// to its main thread when that thread does not block it, ahead of a thread waiting in sigwait (such as
// the examples' signal_stopper).
bool await_stop_signal() {
  if (::pipe(stop_pipe) != 0) throw error("worker: cannot make a pipe for the stop signal");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
  return await_stop_byte(stop_pipe[0]);
}

}  // namespace

bool await_stop_byte(int fd) {
  char byte = 0;
  for (;;) {
    const auto n = ::read(fd, &byte, 1);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

void serve_as_worker(const session_config& config) {
  const auto settings = check_cluster_settings(config);
  std::string name;
  std::int64_t rows = 0, file_bytes = 0;
  std::size_t epochs = 0, most_unacked = 0;
  {
    caf::actor_system_config cfg;
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    cfg.set("scheduler.max-threads", static_cast<std::int64_t>(config.threads == 0 ? cores : config.threads));
    add_message_types(cfg);
    enable_networking(cfg, settings);
    caf::actor_system sys{cfg};
    auto shared = std::make_shared<worker_shared>();
    const auto state_directory =
        (std::filesystem::temp_directory_path() / ("libflow-worker-" + std::to_string(::getpid()))).string();
    auto handle = sys.spawn(worker, shared, settings.secret, config.threads == 0 ? cores : config.threads, state_directory,
                            settings.join_timeout, settings.tls());
    std::uint16_t port = 0;
    try {
      port = publish_on(sys, settings, handle, settings.listen, "--flow.listen");
    } catch (const error&) {
      caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
      throw;
    }
    name = settings.listen.host + ":" + std::to_string(port);
    shared->name = name;
    if (!settings.tls())
      std::cerr << "worker " << name << ": without TLS: after a join this worker trusts messages by the sender's node id, "
                << "which a host that reaches this port can claim; admit only the cluster's hosts to it "
                << "(docs/deployment.md, The cluster secret)" << std::endl;
    std::cout << "worker " << name << ": listening (build " << build_digest(local_build()) << ")" << std::endl;
    std::optional<announcer> announcing;
    if (settings.join.port != 0) announcing.emplace(sys, settings, handle, name);
    if (!await_stop_signal())
      std::cerr << "worker " << name << ": cannot wait for the stop signal (" << std::strerror(errno) << "): stopping" << std::endl;
    announcing.reset();
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    std::error_code ignored;
    std::filesystem::remove_all(state_directory, ignored);
    rows = shared->rows;
    file_bytes = shared->file_bytes;
    most_unacked = shared->most_unacked;
    std::lock_guard<std::mutex> lock(shared->mutex);
    epochs = shared->epochs.size();
  }
  std::cout << "worker " << name << ": at most " << most_unacked << " bytes sent to an instance on another node unacknowledged\n";
  std::cout << "worker " << name << ": read " << file_bytes << " bytes of files\n";
  std::cout << "worker " << name << ": processed " << rows << " rows in " << epochs << " epochs" << std::endl;
  std::exit(0);
}

}  // namespace flow::runtime
