#include "cluster_driver.hpp"

#include <algorithm>
#include <iostream>
#include <chrono>
#include <map>
#include <set>
#include <tuple>
#include <variant>

#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>

#include "cluster_node.hpp"
#include "flow/runtime/cluster_handshake.hpp"

namespace flow::runtime {

namespace {

using namespace std::chrono_literals;

using watch_atom = caf::atom_constant<caf::atom("watch")>;

struct monitor_state {
  std::map<caf::actor_addr, std::string> addresses;
};

// Records a worker's loss: its actor's down message (the connection closed, or the heartbeats stopped).
caf::behavior worker_monitor(caf::stateful_actor<monitor_state>* self, std::shared_ptr<cluster_membership> membership) {
  self->set_down_handler([=](caf::down_msg& down) {
    auto it = self->state.addresses.find(down.source);
    if (it == self->state.addresses.end()) return;
    const std::string reason = down.reason == caf::exit_reason::remote_link_unreachable
                                   ? "connection lost (the worker process ended or the network is cut)"
                                   : "its actor ended: " + self->system().render(down.reason);
    membership->lost(it->second, reason);
    self->state.addresses.erase(it);
  });
  return {[=](watch_atom, const caf::actor& worker, const std::string& address) {
    self->monitor(worker);
    self->state.addresses[worker.address()] = address;
  }};
}

// Takes the announcements of workers started with --flow.join (a bounded backlog: the driver joins each
// through its handle, which proves nothing until the handshake).
registrar_actor::behavior_type registrar(registrar_actor::pointer, std::shared_ptr<worker_announcements> inbox) {
  return {[=](announce_atom, const caf::actor& worker, const std::string& address) {
    if (!worker) return;
    std::lock_guard<std::mutex> lock(inbox->mutex);
    if (inbox->pending.size() < 64) inbox->pending.emplace_back(caf::actor_cast<worker_actor>(worker), address);
  }};
}

// One blocking request with the join's timeout: the reply, or flow::error with the refusal.
template <class... Reply, class Handle, class... Ts>
void ask(caf::actor_system& sys, std::chrono::milliseconds join_timeout, const Handle& worker,
         const std::string& address, const std::string& step, std::function<void(Reply...)> on_reply, Ts&&... xs) {
  caf::scoped_actor self{sys};
  std::string failure;
  std::exception_ptr refused;  // thrown by on_reply: rethrown once the receive is over
  self->request(worker, join_timeout, std::forward<Ts>(xs)...)
      .receive(
          [&](Reply... reply) {
            try {
              on_reply(std::move(reply)...);
            } catch (...) {
              refused = std::current_exception();
            }
          },
          [&](caf::error& err) { failure = error_text(sys, err); });
  if (refused) std::rethrow_exception(refused);
  if (!failure.empty())
    throw error("worker " + address + " (" + step + "): " + failure);
}

// The worker's actor at host:port through the middleman (caf-openssl's with TLS), or why not. Unlike
// middleman::remote_actor, the wait is bounded by the join's timeout, whatever the middleman does (its
// connection timeout covers a peer that accepts and stays silent, not a connect that hangs).
// A connection cut by the middleman's heartbeat tick before the worker's handshake is made again
// (connect_again) while the join's timeout lasts.
std::variant<worker_actor, std::string> connect_worker(caf::actor_system& sys, const cluster_settings& settings,
                                                       const std::string& host, std::uint16_t port) {
  const bool tls = settings.tls();
  const auto deadline = std::chrono::steady_clock::now() + settings.join_timeout;
  const std::string expected = "check that it runs with --flow.role=worker --flow.listen=" + host + ":" +
                               std::to_string(port) + " and that the address is reachable from here";
  const std::string no_answer =
      "no answer: something listens there that is not a libflow worker, or the network drops the traffic";
  const auto manager = cluster_middleman(sys, settings);
  caf::scoped_actor self{sys};
  std::variant<worker_actor, std::string> result = no_answer;
  bool again = true;
  int attempts = 0;
  for (auto left = settings.join_timeout; again && left > 0ms;
       left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())) {
    again = false;
    ++attempts;
    self->request(manager, left, caf::connect_atom::value, host, port)
        .receive(
            [&](const caf::node_id&, caf::strong_actor_ptr& actor, const std::set<std::string>& interface) {
              if (!actor) result = "nothing is published there; " + expected;
              else if (interface != sys.message_types<worker_actor>())
                result = std::string("the actor published there is not a libflow worker of this version");
              else result = caf::actor_cast<worker_actor>(std::move(actor));
            },
            [&](caf::error& err) {
              again = connect_again(err, attempts);
              if (err == caf::sec::request_timeout || err == caf::sec::connection_timeout)
                result = no_answer;
              else if (err == caf::sec::disconnect_during_handshake)
                result = std::string("it closed the connection during the handshake: ") +
                         (tls ? "its certificate is not signed by this driver's --flow.tls-ca (or this one's not by its CA)"
                              : "it may use TLS (then give this driver --flow.tls-cert, --flow.tls-key and --flow.tls-ca too)") +
                         ", or it is not a libflow worker";
              else result = sys.render(err) + "; " + expected;
            });
  }
  return result;
}

}  // namespace

cluster_driver::joined_worker cluster_driver::join(const cluster_address& worker) const {
  auto connected = connect_worker(sys_, settings_, worker.host, worker.port);
  if (auto* reason = std::get_if<std::string>(&connected))
    throw unreachable("cannot reach worker " + worker.to_string() + ": " + *reason);
  return handshake(std::get<worker_actor>(connected), worker.to_string());
}

cluster_driver::joined_worker cluster_driver::handshake(const worker_actor& handle, const std::string& address) const {
  joined_worker out;
  out.handle = handle;
  driver_handshake exchange(settings_.secret, build_);
  std::string proof;
  try {
    ask<std::string, std::string>(sys_, timeout_, out.handle, address, "join refused", std::function<void(std::string, std::string)>(
        [&](std::string nonce, std::string their_fingerprint) {
          out.fingerprint = their_fingerprint;
          proof = exchange.on_challenge(nonce, their_fingerprint);
        }), hello_atom::value, exchange.nonce(), exchange.fingerprint());
    ask<std::string>(sys_, timeout_, out.handle, address, "join refused", std::function<void(std::string)>(
        [&](std::string worker_proof) { exchange.on_accepted(worker_proof); }), join_atom::value, proof);
    // Another build: the worker, given this build's list now that both proved the secret, names what
    // differs in its refusal.
    if (!exchange.same_build()) {
      ask<std::string>(sys_, timeout_, out.handle, address, "join refused",
                       std::function<void(std::string)>([&](std::string) { throw join_refused(exchange.mismatch()); }),
                       build_atom::value, exchange.build_for_comparison());
    }
  } catch (const join_refused& e) {
    throw error("worker " + address + " (join refused by the driver): " + e.what());
  }
  return out;
}

void cluster_driver::accept_announced(const worker_actor& handle, const std::string& address) {
  {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    const auto known = std::find(addresses_.begin(), addresses_.end(), address);
    if (known != addresses_.end() && membership_->member(address) && membership_->member(address)->joined) return;
  }
  try {
    const auto target = parse_cluster_address(address, "the address a worker announced");
    const auto joined = handshake(handle, address);
    std::size_t w = 0;
    {
      std::lock_guard<std::mutex> lock(workers_mutex_);
      w = static_cast<std::size_t>(std::find(addresses_.begin(), addresses_.end(), address) - addresses_.begin());
      if (w == addresses_.size()) {
        addresses_.push_back(address);
        targets_.push_back(target);
        workers_.emplace_back();
        slots_.push_back(1);
      }
    }
    admit_introduced(w, joined);
    std::cerr << "libflow: worker " << address << " joined (it announced itself); running queries place work on it after their next commit"
              << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "libflow: refused the worker that announced itself as " << address << ": " << e.what() << std::endl;
  }
}

void cluster_driver::admit(std::size_t w, const joined_worker& worker) {
  std::string address;
  {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    workers_[w] = worker.handle;
    address = addresses_[w];
  }
  membership_->joined(address, worker.fingerprint.substr(0, 16));
  caf::anon_send(monitor_, watch_atom::value, caf::actor_cast<caf::actor>(worker.handle), address);
}

void cluster_driver::admit_introduced(std::size_t w, const joined_worker& worker) {
  {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    workers_[w] = worker.handle;
  }
  introduce_peers(w);
  admit(w, worker);
}

void cluster_driver::introduce_peers(std::optional<std::size_t> joining) {
  std::vector<std::tuple<std::size_t, worker_actor, std::string>> joined;
  {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    for (std::size_t w = 0; w < workers_.size(); ++w)
      if (workers_[w] && (w == joining || membership_->member(addresses_[w])->joined))
        joined.emplace_back(w, workers_[w], addresses_[w]);
  }
  std::vector<caf::node_id> nodes;
  std::vector<std::string> addresses;
  for (const auto& [w, handle, address] : joined) {
    nodes.push_back(handle.node());
    addresses.push_back(address);
  }
  // All asked at once: a worker's links to its peers wait for each peer to have heard of it.
  caf::scoped_actor self{sys_};
  using answer = decltype(self->request(std::declval<worker_actor>(), timeout_, peers_atom::value, nodes, addresses));
  std::vector<answer> answers;
  for (const auto& [w, handle, address] : joined) answers.push_back(self->request(handle, timeout_, peers_atom::value, nodes, addresses));
  std::string failure;
  for (std::size_t i = 0; i < joined.size(); ++i) {
    const auto& [w, handle, address] = joined[i];
    answers[i].receive(
        [&, w = w](std::uint64_t slots) {
          std::lock_guard<std::mutex> lock(workers_mutex_);
          slots_[w] = std::max<std::size_t>(1, static_cast<std::size_t>(slots));
        },
        [&, address = address](caf::error& err) {
          if (failure.empty()) failure = "worker " + address + " (peers refused): " + error_text(sys_, err);
        });
  }
  if (!failure.empty()) throw error(failure);
}

cluster_driver::cluster_driver(caf::actor_system& sys, const cluster_settings& settings)
    : sys_(sys), settings_(settings), build_(local_build()), timeout_(settings.join_timeout),
      middleman_(cluster_middleman(sys, settings)), monitor_(sys.spawn(worker_monitor, membership_)),
      rejoins_(rejoin_first_delay, rejoin_max_delay) {
  workers_.resize(settings.workers.size());
  slots_.assign(settings.workers.size(), 1);
  targets_ = settings.workers;
  std::string unreached;
  for (std::size_t w = 0; w < settings.workers.size(); ++w) {
    addresses_.push_back(settings.workers[w].to_string());
    // A worker that cannot be reached is tried again while the query runs; one that refuses (another
    // secret, another build) ends the start.
    try {
      admit(w, join(settings.workers[w]));
    } catch (const unreachable& e) {
      unreached += (unreached.empty() ? "" : "; ") + std::string(e.what());
      membership_->not_joined(addresses_[w], e.what());
    }
  }
  if (membership_->joined_count() == 0) throw error(unreached);
  if (!unreached.empty())
    std::cerr << "libflow: " << unreached << "; the query starts without it and places work on it once it joins" << std::endl;
  // Every worker may take data from the others' vertex instances (a shuffle between workers).
  introduce_peers();
  if (settings.listen.port != 0) {
    registrar_ = sys.spawn(registrar, announced_);
    try {
      const auto port = publish_on(sys, settings, registrar_, settings.listen, "--flow.listen");
      std::cerr << "libflow: the driver takes workers that join it (--flow.join) on " << settings.listen.host << ":" << port << std::endl;
    } catch (const error&) {
      caf::anon_send_exit(registrar_, caf::exit_reason::user_shutdown);
      throw;
    }
  }
  rejoiner_ = std::thread([this] { rejoin_lost_workers(); });
}

// The tries to join lost workers again, until the driver ends. The membership is polled: a loss shows
// there (the monitor records it), and a due try runs here, blocking for at most the join's timeout.
void cluster_driver::rejoin_lost_workers() {
  using namespace std::chrono_literals;
  std::unique_lock<std::mutex> lock(rejoin_mutex_);
  while (!stopping_) {
    std::vector<std::pair<worker_actor, std::string>> announced;
    {
      std::lock_guard<std::mutex> inbox(announced_->mutex);
      announced.swap(announced_->pending);
    }
    for (const auto& [handle, address] : announced) {
      lock.unlock();
      accept_announced(handle, address);
      lock.lock();
      if (stopping_) return;
    }
    const auto now = rejoin_schedule::clock::now();
    for (const auto& member : membership_->members())
      if (!member.joined) rejoins_.lost(member.address, now);
    for (const auto& address : rejoins_.due(now)) {
      std::size_t w = 0;
      cluster_address target;
      {
        std::lock_guard<std::mutex> workers_lock(workers_mutex_);
        w = static_cast<std::size_t>(std::find(addresses_.begin(), addresses_.end(), address) - addresses_.begin());
        if (w < targets_.size()) target = targets_[w];
      }
      if (target.port == 0) continue;
      lock.unlock();
      bool joined = false;
      try {
        admit_introduced(w, join(target));
        joined = true;
        std::cerr << "libflow: worker " << address << " joined again; running queries place work on it after their next commit" << std::endl;
      } catch (const std::exception& e) {
        if (membership_->member(address)->joined) membership_->lost(address, e.what());
      }
      lock.lock();
      if (stopping_) return;
      if (joined) rejoins_.joined(address);
      else rejoins_.failed(address, rejoin_schedule::clock::now());
    }
    woken_.wait_for(lock, rejoin_poll, [this] { return stopping_; });
  }
}

void cluster_driver::stop_rejoining() {
  {
    std::lock_guard<std::mutex> lock(rejoin_mutex_);
    stopping_ = true;
  }
  woken_.notify_all();
  if (rejoiner_.joinable()) rejoiner_.join();
}

cluster_driver::~cluster_driver() {
  stop_rejoining();
  caf::anon_send_exit(monitor_, caf::exit_reason::user_shutdown);
  if (registrar_) caf::anon_send_exit(registrar_, caf::exit_reason::user_shutdown);
}

std::size_t cluster_driver::size() const {
  std::lock_guard<std::mutex> lock(workers_mutex_);
  return workers_.size();
}

std::string cluster_driver::address(std::size_t worker) const {
  std::lock_guard<std::mutex> lock(workers_mutex_);
  return addresses_.at(worker);
}

std::function<void()> cluster_driver::coordinator_started() {
  std::lock_guard<std::mutex> lock(coordinators_->mutex);
  ++coordinators_->count;
  return [coordinators = coordinators_] {
    std::lock_guard<std::mutex> lock(coordinators->mutex);
    if (--coordinators->count == 0) coordinators->none_left.notify_all();
  };
}

// The middleman's broker watches every actor of this process that a worker knows (a query's coordinator,
// its sinks and sources). The down message an ended actor sends it names the actor as its sender, which
// holds the actor's object until the broker has handled the message; and CAF 0.17 never empties a broker's
// mailbox when the middleman stops (abstract_broker::cleanup skips scheduled_actor::cleanup). A message
// left there keeps a detached actor's object alive, so its thread never ends, and ~actor_system waits for
// that thread forever. Hence: every actor ends first (as ~actor_system waits for), and every coordinator's
// down messages are sent (an actor counts as ended before it sends them; a coordinator ends after its
// dataflow), then one request that the middleman passes to its broker, answered once the broker has
// handled everything sent before it.
void cluster_driver::release_ended_actors() {
  caf::anon_send_exit(monitor_, caf::exit_reason::user_shutdown);
  if (registrar_) caf::anon_send_exit(registrar_, caf::exit_reason::user_shutdown);
  sys_.await_all_actors_done();
  {
    std::unique_lock<std::mutex> lock(coordinators_->mutex);
    coordinators_->none_left.wait(lock, [&] { return coordinators_->count == 0; });
  }
  caf::scoped_actor self{sys_, true};
  self->request(middleman_, timeout_, caf::get_atom::value, sys_.node())
      .receive([](const caf::node_id&, const std::string&, std::uint16_t) {}, [](const caf::error&) {});
}

std::vector<std::size_t> cluster_driver::available_slots() const {
  std::lock_guard<std::mutex> lock(workers_mutex_);
  std::vector<std::size_t> out(workers_.size(), 0);
  for (std::size_t w = 0; w < workers_.size(); ++w)
    if (auto member = membership_->member(addresses_[w]); member && member->joined) out[w] = slots_[w];
  return out;
}

bool cluster_driver::joined_since(const std::vector<std::size_t>& placed) const {
  const auto now = available_slots();
  for (std::size_t w = 0; w < now.size(); ++w)
    if ((w >= placed.size() || placed[w] == 0) && now[w] > 0) return true;
  return false;
}

batch_input_actor cluster_driver::deploy(std::size_t worker, const graph_description& graph, const instance_setup& setup) {
  instance_deployment d;
  d.graph = graph;
  d.vertex = setup.vertex;
  d.instance = setup.instance;
  for (const auto& edge : setup.targets) {
    auto& handles = d.targets.emplace_back();
    for (const auto& target : edge) handles.push_back(caf::actor_cast<caf::actor>(target));
  }
  d.slots = setup.slots;
  d.first_state_operator = setup.first_state_operator;
  for (const auto& copy : setup.restored) d.restored.push_back(copy.rows);
  d.state_backend = setup.states.backend.kind;
  d.block_cache_bytes = setup.states.backend.block_cache_bytes;
  d.write_buffer_bytes = setup.states.backend.write_buffer_bytes;
  d.coordinator = caf::actor_cast<caf::actor>(setup.sup.coordinator);
  d.generation = setup.sup.generation;
  worker_actor handle;
  std::string address;
  {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    handle = workers_.at(worker);
    address = addresses_.at(worker);
  }
  if (!handle) throw error("worker " + address + " has not joined");
  caf::actor input;
  ask<caf::actor>(sys_, timeout_, handle, address,
                  "deploy of vertex '" + setup.graph->vertex(setup.vertex).name + "' refused",
                  std::function<void(caf::actor)>([&](caf::actor a) { input = std::move(a); }), deploy_atom::value,
                  std::move(d));
  return caf::actor_cast<batch_input_actor>(input);
}

}  // namespace flow::runtime
