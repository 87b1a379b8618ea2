// Joining real worker processes on 127.0.0.1: accepted, refused for another secret or build, a driver
// without a reachable worker, a peer that did not join, and a worker's end on SIGTERM.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <unistd.h>
#include <regex>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "../../actors/src/cluster_node.hpp"
#include "../../actors/src/cluster_worker.hpp"
#include "../../actors/src/worker_protocol.hpp"
#include "cluster_support.hpp"
#include "flow/runtime/cluster_handshake.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;

namespace {

// A worker's actor reached from sys without joining it (as an outsider, or a test playing a driver).
flow::runtime::worker_actor worker_handle(caf::actor_system& sys, const std::string& address) {
  const auto colon = address.rfind(':');
  auto handle = sys.middleman().remote_actor<flow::runtime::worker_actor>(
      address.substr(0, colon), static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  REQUIRE(handle);
  return *handle;
}

// Forwards connections on 127.0.0.1:port() to a worker, holding back the worker's first bytes on the first
// connection for `hold` (a handshake that comes late, as TLS's may on a loaded machine).
class late_first_handshake {
 public:
  late_first_handshake(std::uint16_t worker_port, std::chrono::milliseconds hold)
      : worker_port_(worker_port), hold_(hold), acceptor_([this] { accept_loop(); }) {}
  ~late_first_handshake() {
    stop_ = true;
    acceptor_.join();
    for (auto& relay : relays_) relay.join();
  }
  std::uint16_t port() const { return listener_.port(); }
  int connections() const { return connections_; }

 private:
  void accept_loop() {
    while (!stop_) {
      connection driver = listener_.accept(20ms);
      if (!driver.is_open()) continue;
      const bool first = connections_++ == 0;
      relays_.emplace_back([this, first, driver = std::move(driver)]() mutable { relay(std::move(driver), first); });
    }
  }
  void relay(connection driver, bool first) {
    // Not connect_to: Catch's checks belong to the test's thread.
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(worker_port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return;
    }
    connection worker{fd};
    bool held = !first;
    while (!stop_) {
      auto from_driver = driver.receive(5ms);
      if (!from_driver || (!from_driver->empty() && !worker.send(*from_driver))) return;
      auto from_worker = worker.receive(5ms);
      if (!from_worker) return;
      if (from_worker->empty()) continue;
      if (!held) {
        std::this_thread::sleep_for(hold_);
        held = true;
      }
      if (!driver.send(*from_worker)) return;
    }
  }
  listener listener_;
  std::uint16_t worker_port_;
  std::chrono::milliseconds hold_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::vector<std::thread> relays_;  // touched by the acceptor thread only until it is joined
  std::thread acceptor_;
};

// With a cluster node's heartbeats: a worker closes a connection that stays silent past its timeout.
std::unique_ptr<caf::actor_system> networked_system(caf::actor_system_config& cfg) {
  flow::runtime::add_message_types(cfg);
  flow::runtime::enable_networking(cfg, flow::runtime::cluster_settings{});
  return std::make_unique<caf::actor_system>(cfg);
}

// The reply to one request, or the refusal's text.
template <class... Reply, class... Ts>
std::string ask_text(caf::actor_system& sys, const flow::runtime::worker_actor& worker, Ts&&... xs) {
  caf::scoped_actor self{sys};
  std::string out;
  self->request(worker, 10s, std::forward<Ts>(xs)...)
      .receive([&](const Reply&... reply) { ((out += caf::deep_to_string(reply) + " "), ...); },
               [&](caf::error& e) { out = "refused: " + flow::runtime::error_text(sys, e); });
  return out;
}

// How long a driver's failed start took, and its error.
std::pair<std::string, std::chrono::milliseconds> timed_start_error(const session_config& config) {
  const auto start = std::chrono::steady_clock::now();
  std::string message = error_of([&] { session s(config); });
  return {message, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)};
}

}  // namespace

TEST_CASE("a driver joins its workers with the shared secret", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process a(dir, secret), b(dir, secret);
  {
    session driver(driver_config({a.address, b.address}, secret));
    const auto members = driver.cluster().members();
    REQUIRE(members.size() == 2);
    CHECK(members[0].address == a.address);
    CHECK(members[1].address == b.address);
    for (const auto& m : members) {
      CHECK(m.joined);
      CHECK(m.build == runtime::build_digest(runtime::local_build()));
    }
    CHECK(driver.cluster().joined_count() == 2);
  }
  CHECK(eventually([&] { return a.log().find(" joined") != std::string::npos; }, 5s));
  // An embedded session has no cluster.
  session embedded(session_config{});
  CHECK(embedded.cluster().members().empty());
}

TEST_CASE("a worker with another secret refuses the driver and both say so", "[cluster][join]") {
  temp_dir dir;
  const auto ours = make_secret_file(dir, "ours", "a-shared-cluster-secret-0123");
  const auto theirs = make_secret_file(dir, "theirs", "some-other-cluster-secret-456");
  worker_process good(dir, ours), other(dir, theirs);
  const auto [message, took] = timed_start_error(driver_config({good.address, other.address}, ours));
  CHECK_THAT(message, Catch::Contains("worker " + other.address + " (join refused)"));
  CHECK_THAT(message, Catch::Contains("proof of the cluster secret is wrong"));
  CHECK(took < 5s);
  CHECK(eventually([&] { return other.log().find("refused the join") != std::string::npos; }, 5s));
  CHECK_THAT(other.log(), Catch::Contains("the driver's proof of the cluster secret is wrong"));
}

TEST_CASE("a worker of another build is refused naming what differs", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process other(dir, secret, {"--extra-operator"});
  const auto [message, took] = timed_start_error(driver_config({other.address}, secret));
  CHECK_THAT(message, Catch::Contains("worker " + other.address + " (join refused): build mismatch"));
  // The worker names the differences once both proved the secret; its reason reaches the driver's error
  // and the worker's log.
  CHECK_THAT(message, Catch::Contains("the worker runs build "));
  CHECK_THAT(message, Catch::Contains("only the worker has: operator cluster-test-extra"));
  CHECK(took < 5s);
  CHECK(eventually([&] { return other.log().find("build mismatch") != std::string::npos; }, 5s));
  CHECK_THAT(other.log(), Catch::Contains("only the worker has: operator cluster-test-extra"));
}

TEST_CASE("a driver without a reachable worker fails fast naming the address", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const std::string address = free_address();
  const auto [message, took] = timed_start_error(driver_config({address}, secret));
  CHECK_THAT(message, Catch::Contains("cannot reach worker " + address));
  CHECK_THAT(message, Catch::Contains("check that it runs with --flow.role=worker --flow.listen=" + address));
  CHECK(took < 5s);

  // Something that accepts the connection and never answers: the join gives up after its timeout.
  listener silent;
  const std::string silent_address = "127.0.0.1:" + std::to_string(silent.port());
  auto bounded = driver_config({silent_address}, secret);
  bounded.join_timeout = session_config{}.join_timeout;
  const auto [silent_message, silent_took] = timed_start_error(bounded);
  CHECK_THAT(silent_message, Catch::Contains("cannot reach worker " + silent_address + ": no answer: something listens there that is not a libflow worker"));
  CHECK(silent_took < 8s);
}

// CAF 0.17's middleman ends an outgoing connection whose handshake has not arrived by its next heartbeat tick
// (0-100 ms): the driver tries again, and the next attempt has a whole interval.
TEST_CASE("a driver joins a worker whose first handshake comes late on another attempt", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  late_first_handshake forwarder(static_cast<std::uint16_t>(std::stoi(worker.address.substr(worker.address.rfind(':') + 1))), 300ms);
  {
    session driver(driver_config({"127.0.0.1:" + std::to_string(forwarder.port())}, secret));
    CHECK(driver.cluster().joined_count() == 1);
  }
  CHECK(forwarder.connections() >= 2);
}

TEST_CASE("a connect is made again only after the middleman's tick cut its handshake, at most 4 times", "[cluster][join]") {
  using flow::runtime::connect_again;
  CHECK(connect_again(caf::sec::connection_timeout, 1));
  CHECK(connect_again(caf::sec::connection_timeout, 3));
  CHECK_FALSE(connect_again(caf::sec::connection_timeout, 4));
  CHECK_FALSE(connect_again(caf::sec::request_timeout, 1));  // the join's own timeout passed
  CHECK_FALSE(connect_again(caf::sec::disconnect_during_handshake, 1));
  CHECK_FALSE(connect_again(caf::sec::cannot_connect_to_node, 1));
}

TEST_CASE("a peer that did not join gets no work and the worker logs it", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  caf::actor_system_config cfg;
  flow::runtime::add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  const auto colon = worker.address.rfind(':');
  auto handle = sys.middleman().remote_actor<flow::runtime::worker_actor>(
      worker.address.substr(0, colon), static_cast<std::uint16_t>(std::stoi(worker.address.substr(colon + 1))));
  REQUIRE(handle);
  caf::scoped_actor self{sys};
  std::string refusal;
  self->request(*handle, 5s, flow::runtime::deploy_atom::value, flow::runtime::instance_deployment{})
      .receive([&](const caf::actor&) { refusal = "<accepted>"; },
               [&](caf::error& e) { refusal = flow::runtime::error_text(sys, e); });
  CHECK_THAT(refusal, Catch::Contains("refused a deploy: join first"));
  CHECK(eventually([&] { return worker.log().find("refused a deploy from") != std::string::npos; }, 5s));
  // A join with a made-up proof is refused too.
  self->request(*handle, 5s, flow::runtime::join_atom::value, std::string(64, 'f'))
      .receive([&](const std::string&) { refusal = "<accepted>"; },
               [&](caf::error& e) { refusal = flow::runtime::error_text(sys, e); });
  CHECK_THAT(refusal, Catch::Contains("a join without a hello first"));
  // Anonymous messages (no sender to answer or to trust) are refused without harm: a driver joins after.
  caf::anon_send(*handle, flow::runtime::hello_atom::value, std::string(64, 'a'), std::string("build"));
  caf::anon_send(*handle, flow::runtime::join_atom::value, std::string(64, 'f'));
  CHECK(eventually([&] { return worker.log().find("from an anonymous sender") != std::string::npos; }, 5s));
  session driver(driver_config({worker.address}, secret));
  CHECK(driver.cluster().joined_count() == 1);
}

TEST_CASE("any example is a worker: it serves until SIGTERM and ends with its figures", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const std::string listen = free_address();
  worker_process worker(dir, secret, {}, FLOW_RETAIL_EXAMPLE, listen);
  CHECK(worker.address == listen);
  {
    session driver(driver_config({worker.address}, secret));
    CHECK(driver.cluster().joined_count() == 1);
  }
  worker.process->signal(SIGTERM);
  std::string last, line;
  while (!(line = worker.process->read_line(10s)).empty()) last = line;
  CHECK(last == "worker " + listen + ": processed 0 rows in 0 epochs");
  CHECK(worker.process->wait_exit(10s) == 0);
}

TEST_CASE("a worker whose listen address is taken ends with a clear error", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  listener taken;  // holds the port
  const std::string address = "127.0.0.1:" + std::to_string(taken.port());
  child_process worker(FLOW_CLUSTER_WORKER, {"--flow.role=worker", "--flow.listen=" + address, "--flow.secret-file", secret},
                       dir / "out.txt", dir / "err.txt");
  CHECK(worker.wait_exit(10s) == 1);
  CHECK_THAT(read_file(dir / "err.txt"), Catch::Contains("--flow.listen=" + address + ": cannot listen there"));
  CHECK_THAT(read_file(dir / "err.txt"), Catch::Contains("choose a free port"));
}

// Before the proofs a worker tells only its build's fingerprint: its list of registered names (what the
// program can run) goes to no one who has not proved the secret.
TEST_CASE("a worker answers a hello with its build's fingerprint, not its registered names", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  caf::actor_system_config cfg;
  auto sys = networked_system(cfg);
  const auto handle = worker_handle(*sys, worker.address);
  caf::scoped_actor self{*sys};
  std::string fingerprint;
  self->request(handle, 10s, flow::runtime::hello_atom::value, std::string(64, 'a'), std::string(64, 'b'))
      .receive([&](const std::string&, const std::string& theirs) { fingerprint = theirs; },
               [&](caf::error& e) { fingerprint = "refused: " + flow::runtime::error_text(*sys, e); });
  CHECK(fingerprint == runtime::build_fingerprint(runtime::local_build()));
  CHECK(fingerprint.find("operator") == std::string::npos);
}

// Trust relayed by a driver (its list of peers) lets another worker's instances send data, not deploy.
TEST_CASE("a peer a driver named may not deploy instances on a worker, its driver may", "[cluster][join]") {
  temp_dir dir;
  const std::string secret_text = "a-shared-cluster-secret-0123";
  const auto secret = make_secret_file(dir, "secret", secret_text);
  worker_process worker(dir, secret);
  caf::actor_system_config driver_cfg, peer_cfg;
  auto driver_sys = networked_system(driver_cfg);
  auto peer_sys = networked_system(peer_cfg);
  REQUIRE(driver_sys->node() != peer_sys->node());
  const auto from_driver = worker_handle(*driver_sys, worker.address);
  const auto from_peer = worker_handle(*peer_sys, worker.address);
  // The driver's join, step by step, then the peer named.
  runtime::driver_handshake handshake(secret_text, runtime::local_build());
  caf::scoped_actor self{*driver_sys};
  self->request(from_driver, 10s, flow::runtime::hello_atom::value, handshake.nonce(), handshake.fingerprint())
      .receive([&](const std::string& nonce, const std::string& fingerprint) {
                 const auto proof = handshake.on_challenge(nonce, fingerprint);
                 self->request(from_driver, 10s, flow::runtime::join_atom::value, proof)
                     .receive([&](const std::string& worker_proof) { handshake.on_accepted(worker_proof); },
                              [&](caf::error& e) { FAIL(flow::runtime::error_text(*driver_sys, e)); });
               },
               [&](caf::error& e) { FAIL(flow::runtime::error_text(*driver_sys, e)); });
  REQUIRE(handshake.authenticated());
  CHECK_THAT(ask_text<std::uint64_t>(*driver_sys, from_driver, flow::runtime::peers_atom::value,
                                     std::vector<caf::node_id>{peer_sys->node()}, std::vector<std::string>{}),
             !Catch::Contains("refused"));
  // The peer's deploy is refused at the door; the driver's passes it (and fails on the empty deployment).
  CHECK_THAT(ask_text<caf::actor>(*peer_sys, from_peer, flow::runtime::deploy_atom::value, flow::runtime::instance_deployment{}),
             Catch::Contains("refused a deploy: join first"));
  CHECK_THAT(ask_text<caf::actor>(*driver_sys, from_driver, flow::runtime::deploy_atom::value, flow::runtime::instance_deployment{}),
             Catch::Contains("cannot run vertex 0"));
  // Nor may the peer name peers of its own.
  CHECK_THAT(ask_text<std::uint64_t>(*peer_sys, from_peer, flow::runtime::peers_atom::value, std::vector<caf::node_id>{},
                                     std::vector<std::string>{}),
             Catch::Contains("refused a list of peers"));
}

// A peer that says hello and never joins leaves nothing behind once the join's timeout (3 s) has passed.
TEST_CASE("a worker forgets a hello whose join does not follow within the join timeout", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  caf::actor_system_config cfg;
  auto sys = networked_system(cfg);
  const auto handle = worker_handle(*sys, worker.address);
  runtime::driver_handshake handshake("a-shared-cluster-secret-0123", runtime::local_build());
  std::string proof;
  caf::scoped_actor self{*sys};
  self->request(handle, 10s, flow::runtime::hello_atom::value, handshake.nonce(), handshake.fingerprint())
      .receive([&](const std::string& nonce, const std::string& fingerprint) { proof = handshake.on_challenge(nonce, fingerprint); },
               [&](caf::error& e) { FAIL(flow::runtime::error_text(*sys, e)); });
  REQUIRE(eventually([&] { return worker.log().find("forgot the unfinished join") != std::string::npos; }, 15s));
  CHECK_THAT(worker.log(), Catch::Contains("no join within 3000 ms of its hello"));
  // The right proof, too late: its hello is gone.
  CHECK_THAT(ask_text<std::string>(*sys, handle, flow::runtime::join_atom::value, proof),
             Catch::Contains("a join without a hello first"));
}

// The worker's wait for its stop signal reads a pipe: a failed read (here the end of the file) ends the
// wait instead of retrying it forever at full speed.
TEST_CASE("a worker's wait for the stop signal ends on a byte, and on a failed read", "[cluster][join]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], "x", 1) == 1);
  CHECK(runtime::await_stop_byte(fds[0]));
  ::close(fds[1]);
  std::promise<bool> ended;
  auto result = ended.get_future();
  // Detached: should the wait spin, the test fails on the timeout instead of hanging on a join.
  std::thread([&ended, fd = fds[0]] { ended.set_value(runtime::await_stop_byte(fd)); }).detach();
  REQUIRE(result.wait_for(5s) == std::future_status::ready);
  CHECK_FALSE(result.get());
  ::close(fds[0]);
}

// A configured worker not reachable at the driver's start does not stop it while another joins: it is
// recorded as not joined with the reason, and tried again until it joins.
TEST_CASE("a driver starts without a worker it cannot reach and joins it once it listens", "[cluster][join][rejoin]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process present(dir, secret);
  const std::string late_address = free_address();
  session driver(driver_config({present.address, late_address}, secret));
  CHECK(driver.cluster().joined_count() == 1);
  const auto absent = driver.cluster().member(late_address);
  REQUIRE(absent);
  CHECK_FALSE(absent->joined);
  CHECK_THAT(absent->lost_reason, Catch::Contains("cannot reach worker " + late_address));
  worker_process late(dir, secret, {}, FLOW_CLUSTER_WORKER, late_address);
  CHECK(eventually([&] { return driver.cluster().joined_count() == 2; }, 20s));
  CHECK(eventually([&] { return late.log().find(" joined") != std::string::npos; }, 5s));
}
