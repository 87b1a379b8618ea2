// A driver's side of a cluster: joins every worker (flow/runtime/cluster_handshake.hpp) and watches them
// (a lost worker is recorded in the membership with the reason and time); a thread of its own tries to
// join lost workers again (flow/runtime/cluster_rejoin.hpp), and joins the workers that announce
// themselves on the driver's --flow.listen (started with --flow.join) as it joins the listed ones; the
// next placement of a query's dataflow uses those that joined. Include only from actors/*.cpp.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/io/middleman_actor.hpp>

#include "flow/runtime/cluster_membership.hpp"
#include "flow/runtime/cluster_rejoin.hpp"
#include "dataflow.hpp"
#include "flow/runtime/cluster_settings.hpp"
#include "worker_protocol.hpp"

namespace flow::runtime {

// Workers that announced themselves (their handle and address), from the driver's registrar (published on
// its --flow.listen) to its rejoining thread, which joins them.
struct worker_announcements {
  std::mutex mutex;
  std::vector<std::pair<worker_actor, std::string>> pending;
};

class cluster_driver {
 public:
  // Connects to and joins every worker of settings, in order. Throws flow::error naming the first worker
  // that refuses the join, and why, or every worker when none can be reached (within a few seconds);
  // those not reached while others joined are tried again while the driver runs. With settings.listen,
  // then listens there for workers that announce themselves (or throws flow::error when it cannot).
  cluster_driver(caf::actor_system& sys, const cluster_settings& settings);
  ~cluster_driver();
  // Ends the tries to join lost workers, waiting for one under way (at most the join's timeout). Call it
  // while the actor system runs: a coordinator may hold the driver until the system's shutdown, when a
  // try's requests would never end.
  void stop_rejoining();
  cluster_driver(const cluster_driver&) = delete;
  cluster_driver& operator=(const cluster_driver&) = delete;

  cluster_membership& membership() { return *membership_; }
  const cluster_membership& membership() const { return *membership_; }
  // The workers listed and those that joined by announcing themselves, in that order.
  std::size_t size() const;
  std::string address(std::size_t worker) const;

  // Per worker, the instances it takes (its slots, as it said at the join); 0 for a worker lost or not
  // joined. What instance_placement places a dataflow's generation over.
  std::vector<std::size_t> available_slots() const;
  // Whether a worker without slots in placed (an earlier available_slots()) has joined since: a dataflow
  // placed over placed would leave it idle.
  bool joined_since(const std::vector<std::size_t>& placed) const;

  // Runs the operator vertex instance of setup on worker `worker` (its states start from setup.restored's
  // rows; graph: describe(*setup.graph), made once for all instances); returns the instance's handle.
  // Throws flow::error with the worker's reason when it refuses (an unknown operator name, a source or sink
  // vertex, ...) or cannot be reached.
  batch_input_actor deploy(std::size_t worker, const graph_description& graph, const instance_setup& setup);

  // A query's coordinator calls this as it starts and attaches the function returned to itself, before
  // anything else: CAF runs an ending actor's attachables newest first, so this one runs last, after the
  // middleman's watch has sent its down message.
  std::function<void()> coordinator_started();

  // For the session's end, before the actor system's destructor (never from an actor): waits until every
  // actor of the system has ended and the middleman has let go of them (the .cpp says why). The driver
  // watches no worker any more.
  void release_ended_actors();

 private:
  // A connection that cannot be made (nobody listens, no answer): the worker is tried again later.
  class unreachable : public error {
   public:
    using error::error;
  };
  struct joined_worker {
    worker_actor handle;
    std::string fingerprint;
  };
  static constexpr std::chrono::milliseconds rejoin_first_delay{100}, rejoin_max_delay{5000}, rejoin_poll{50};

  // Connects to and joins worker; throws unreachable, or flow::error for a refused join.
  joined_worker join(const cluster_address& worker) const;
  // Joins the worker behind handle (hello, join; its build compared); throws flow::error for a refusal.
  joined_worker handshake(const worker_actor& handle, const std::string& address) const;
  // Joins a worker that announced itself (and is not joined already): its entry added after the listed
  // ones; a refusal is logged.
  void accept_announced(const worker_actor& handle, const std::string& address);
  // Records worker w as joined and watches it.
  void admit(std::size_t w, const joined_worker& worker);
  // Admits worker w while queries may run: its peers are introduced first, so that no query places work on
  // it before the workers' direct links are up (a link coming up under running instances reorders them).
  void admit_introduced(std::size_t w, const joined_worker& worker);
  // Tells every joined worker, and worker `joining` if given, the nodes of all (whose instances may send it
  // data) and takes their slots.
  void introduce_peers(std::optional<std::size_t> joining = std::nullopt);
  void rejoin_lost_workers();

  caf::actor_system& sys_;
  const cluster_settings settings_;
  const std::string build_;
  std::shared_ptr<cluster_membership> membership_ = std::make_shared<cluster_membership>();
  mutable std::mutex workers_mutex_;  // workers_, addresses_, targets_ and slots_: the rejoining thread changes them
  std::vector<worker_actor> workers_;  // by the settings' order, then announced; an invalid handle until it joined
  std::vector<std::string> addresses_;
  std::vector<cluster_address> targets_;  // where a lost worker is tried again
  std::chrono::milliseconds timeout_;  // of a request to a worker (cluster_settings::join_timeout)
  caf::io::middleman_actor middleman_;
  struct running_coordinators {
    std::mutex mutex;
    std::condition_variable none_left;
    std::size_t count = 0;
  };
  std::shared_ptr<running_coordinators> coordinators_ = std::make_shared<running_coordinators>();
  std::vector<std::size_t> slots_;
  caf::actor monitor_;
  std::mutex rejoin_mutex_;  // rejoins_ and stopping_
  std::condition_variable woken_;
  rejoin_schedule rejoins_;
  bool stopping_ = false;
  std::shared_ptr<worker_announcements> announced_ = std::make_shared<worker_announcements>();
  registrar_actor registrar_;
  std::thread rejoiner_;
};

}  // namespace flow::runtime
