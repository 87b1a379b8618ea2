#include "cluster_worker.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <caf/io/middleman.hpp>
#include <caf/openssl/publish.hpp>

#include "cluster_node.hpp"
#include "flow/runtime/chain_runner.hpp"
#include "flow/runtime/cluster_handshake.hpp"
#include "flow/runtime/cluster_settings.hpp"
#include "worker_protocol.hpp"

namespace flow::runtime {

namespace {

// What the worker and its vertex instances share: which nodes it trusts (drivers that joined, and the
// workers a driver named), and the last line's figures.
struct worker_shared {
  std::string name;  // HOST:PORT
  std::mutex mutex;
  std::set<caf::node_id> trusted, refused;
  std::set<std::int64_t> epochs;
  std::atomic<std::int64_t> rows{0};

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
};

struct vertex_state {
  std::shared_ptr<worker_shared> shared;
  std::unique_ptr<chain_runner> runner;
  batch_input_actor downstream;
  std::size_t expected_barriers = 1;
  std::map<std::int64_t, std::size_t> barriers;      // by epoch: barriers received
  std::map<std::int64_t, std::uint64_t> next_seq;    // by epoch: after the last seq received
  std::map<std::int64_t, epoch_stats> first_stats;   // by epoch: the first barrier's figures, passed on
  std::int64_t epoch = -1;                           // of the batch in the runner
};

// One instance of a vertex's chain (chain_runner, as in the embedded runtime), fed by the epoch protocol.
batch_input_actor::behavior_type remote_vertex(batch_input_actor::stateful_pointer<vertex_state> self,
                                                std::shared_ptr<worker_shared> shared, dataflow_graph graph,
                                                std::size_t vertex, std::size_t instance, std::size_t parallelism,
                                                std::size_t expected_barriers, batch_input_actor downstream) {
  auto& st = self->state;
  st.shared = std::move(shared);
  st.downstream = std::move(downstream);
  st.expected_barriers = std::max<std::size_t>(1, expected_barriers);
  auto chain = graph.vertices()[vertex].chain;
  st.runner = std::make_unique<chain_runner>(std::move(chain), instance, parallelism, [self](std::uint64_t seq, batch rows) {
    self->send(self->state.downstream, data_atom::value, self->state.epoch, seq, std::uint32_t{0}, std::move(rows));
  });
  const std::string where = "vertex '" + graph.vertices()[vertex].name + "' instance " + std::to_string(instance) +
                            " on worker " + st.shared->name;
  self->set_exception_handler([self, where](std::exception_ptr& e) -> caf::error {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    const auto op = self->state.runner->running_operator();
    std::cerr << where << ": " << (op.empty() ? "" : "operator " + op + ": ") << what << std::endl;
    return caf::make_error(caf::sec::runtime_error, where + ": " + (op.empty() ? "" : "operator " + op + ": ") + what);
  });
  return {
      [self](data_atom, std::int64_t epoch, std::uint64_t seq, std::uint32_t input, const batch& rows) {
        auto& s = self->state;
        if (!s.shared->trusts(self->current_sender())) return (void)s.shared->refuse(self->current_sender(), "data");
        s.epoch = epoch;
        s.shared->rows += static_cast<std::int64_t>(rows.num_rows());
        auto& next = s.next_seq[epoch];
        next = std::max(next, seq + 1);
        s.runner->process(epoch, seq, input, rows);
      },
      [self](barrier_atom, std::int64_t epoch, const epoch_stats& upstream) {
        auto& s = self->state;
        if (!s.shared->trusts(self->current_sender())) return (void)s.shared->refuse(self->current_sender(), "a barrier");
        s.first_stats.try_emplace(epoch, upstream);
        if (++s.barriers[epoch] < s.expected_barriers) return;
        s.epoch = epoch;
        s.runner->end_epoch(epoch, s.next_seq[epoch]);
        self->send(s.downstream, barrier_atom::value, epoch, s.first_stats[epoch]);
        s.barriers.erase(epoch);
        s.next_seq.erase(epoch);
        s.first_stats.erase(epoch);
        std::lock_guard<std::mutex> lock(s.shared->mutex);
        s.shared->epochs.insert(epoch);
      }};
}

struct worker_state {
  std::shared_ptr<worker_shared> shared;
  std::string secret, build;
  std::map<caf::node_id, worker_handshake> joining;  // by the driver's node
  std::set<caf::node_id> drivers;                    // joined: they may name peers
};

worker_actor::behavior_type worker(worker_actor::stateful_pointer<worker_state> self, std::shared_ptr<worker_shared> shared,
                                   std::string secret) {
  self->state.shared = std::move(shared);
  self->state.secret = std::move(secret);
  self->state.build = local_build();
  // The refusal's text goes to the driver and to this worker's log.
  auto refuse_join = [self](const caf::node_id& node, const std::string& reason) {
    self->state.joining.erase(node);
    std::cerr << "worker " << self->state.shared->name << ": refused the join of " << caf::to_string(node) << ": "
              << reason << std::endl;
    return caf::make_error(caf::sec::runtime_error, reason);
  };
  return {
      [self, refuse_join](hello_atom, const std::string& nonce, const std::string& build)
          -> caf::result<std::string, std::string> {
        if (!self->current_sender()) return self->state.shared->refuse(nullptr, "a hello");
        const auto node = self->current_sender()->node();
        auto& handshake = self->state.joining.insert_or_assign(node, worker_handshake(self->state.secret, self->state.build))
                              .first->second;
        try {
          return {handshake.on_hello(nonce, build), self->state.build};
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
          auto answer = it->second.on_join(proof);
          self->state.joining.erase(it);
          self->state.shared->trust(node);
          self->state.drivers.insert(node);
          std::cerr << "worker " << self->state.shared->name << ": driver " << caf::to_string(node) << " joined" << std::endl;
          return answer;
        } catch (const join_refused& e) {
          return refuse_join(node, e.what());
        }
      },
      [self](peers_atom, const std::vector<caf::node_id>& peers) -> caf::result<std::uint64_t> {
        auto& shared = self->state.shared;
        if (!shared->trusts(self->current_sender()) || self->state.drivers.count(self->current_sender()->node()) == 0)
          return shared->refuse(self->current_sender(), "a list of peers");
        for (const auto& peer : peers) shared->trust(peer);
        std::lock_guard<std::mutex> lock(shared->mutex);
        return std::uint64_t{shared->trusted.size()};
      },
      [self](deploy_atom, const graph_description& description, std::uint64_t vertex, std::uint64_t instance,
             std::uint64_t parallelism, std::uint64_t expected_barriers, const caf::actor& downstream) -> caf::result<caf::actor> {
        auto& shared = self->state.shared;
        if (!shared->trusts(self->current_sender())) return shared->refuse(self->current_sender(), "a deploy");
        try {
          auto graph = rebuild(description);
          if (vertex >= graph.vertices().size())
            throw error("vertex " + std::to_string(vertex) + " is not in the graph (it has " +
                        std::to_string(graph.vertices().size()) + ")");
          if (instance >= std::max<std::uint64_t>(1, parallelism))
            throw error("instance " + std::to_string(instance) + " of a parallelism of " + std::to_string(parallelism) +
                        ": instances count from 0 to parallelism - 1");
          if (graph.vertices()[vertex].kind == vertex_kind::sink)
            throw error("vertex '" + graph.vertices()[vertex].name + "' is a sink: workers run operator chains");
          // Linked: the worker's end ends its vertex instances.
          auto input = self->spawn<caf::linked>(
              remote_vertex, shared, std::move(graph), static_cast<std::size_t>(vertex), static_cast<std::size_t>(instance),
              static_cast<std::size_t>(std::max<std::uint64_t>(1, parallelism)), static_cast<std::size_t>(expected_barriers),
              caf::actor_cast<batch_input_actor>(downstream));
          return caf::actor_cast<caf::actor>(input);
        } catch (const std::exception& e) {
          std::cerr << "worker " << shared->name << ": cannot run vertex " << vertex << ": " << e.what() << std::endl;
          return caf::make_error(caf::sec::runtime_error, "cannot run vertex " + std::to_string(vertex) + ": " + e.what());
        }
      }};
}

int stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] auto written = ::write(stop_pipe[1], &byte, 1);
}

// Blocks until SIGTERM or SIGINT reaches the process. The handler runs in whichever thread takes the signal;
// this one unblocks both, and Linux gives a signal sent to the process to its main thread when that thread
// does not block it, ahead of a thread waiting in sigwait (such as the examples' signal_stopper).
void await_stop_signal() {
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
  char byte = 0;
  while (::read(stop_pipe[0], &byte, 1) != 1) {
  }
}

}  // namespace

void serve_as_worker(const session_config& config) {
  const auto settings = check_cluster_settings(config);
  std::string name;
  std::int64_t rows = 0;
  std::size_t epochs = 0;
  {
    caf::actor_system_config cfg;
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    cfg.set("scheduler.max-threads", static_cast<std::int64_t>(config.threads == 0 ? cores : config.threads));
    add_message_types(cfg);
    enable_networking(cfg, settings);
    caf::actor_system sys{cfg};
    auto shared = std::make_shared<worker_shared>();
    auto handle = sys.spawn(worker, shared, settings.secret);
    auto port = settings.tls() ? caf::openssl::publish(handle, settings.listen.port, settings.listen.host.c_str(), true)
                               : sys.middleman().publish(handle, settings.listen.port, settings.listen.host.c_str(), true);
    if (!port) {
      caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
      throw error("--flow.listen=" + settings.listen.to_string() + ": cannot listen there: " + sys.render(port.error()) +
                  "; choose a free port on an address of this machine");
    }
    name = settings.listen.host + ":" + std::to_string(*port);
    shared->name = name;
    std::cout << "worker " << name << ": listening (build " << build_digest(local_build()) << ")" << std::endl;
    await_stop_signal();
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
    rows = shared->rows;
    std::lock_guard<std::mutex> lock(shared->mutex);
    epochs = shared->epochs.size();
  }
  std::cout << "worker " << name << ": processed " << rows << " rows in " << epochs << " epochs" << std::endl;
  std::exit(0);
}

}  // namespace flow::runtime
