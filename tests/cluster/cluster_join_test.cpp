// Joining real worker processes on 127.0.0.1: accepted, refused for another secret or build, a driver
// without a reachable worker, a peer that did not join, and a worker's end on SIGTERM.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <regex>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "../../actors/src/cluster_node.hpp"
#include "../../actors/src/worker_protocol.hpp"
#include "cluster_support.hpp"
#include "flow/runtime/cluster_handshake.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;

namespace {

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
  // The worker refuses first (at hello); its reason reaches the driver's error and the worker's log.
  CHECK_THAT(message, Catch::Contains("the worker runs build "));
  CHECK_THAT(message, Catch::Contains("only the worker has: operator cluster-test-extra"));
  CHECK(took < 5s);
  CHECK(eventually([&] { return other.log().find("build mismatch") != std::string::npos; }, 5s));
  CHECK_THAT(other.log(), Catch::Contains("only the worker has: operator cluster-test-extra"));
}

TEST_CASE("a driver without a reachable worker fails fast naming the address", "[cluster][join]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  std::uint16_t port = 0;
  {
    listener probe;  // a free port, closed again: nobody listens there
    port = probe.port();
  }
  const std::string address = "127.0.0.1:" + std::to_string(port);
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
  std::uint16_t port = 0;
  {
    listener probe;
    port = probe.port();
  }
  const std::string listen = "127.0.0.1:" + std::to_string(port);
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
