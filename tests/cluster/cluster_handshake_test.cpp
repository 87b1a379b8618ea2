// The join handshake without actors or sockets: both sides' proofs, what each refuses and why.
#include <catch2/catch.hpp>

#include "flow/runtime/cluster_handshake.hpp"

using namespace flow;
using namespace flow::runtime;

namespace {

const std::string secret = "0123456789abcdef-cluster";
const std::string build = "caf 1706\nlibflow 0.1.0\noperator filter\noperator project\n";

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const join_refused& e) {
    return e.what();
  }
  return "<accepted>";
}

}  // namespace

TEST_CASE("a driver and a worker with the same secret and build join", "[cluster][handshake]") {
  driver_handshake driver(secret, build);
  worker_handshake worker(secret, build);
  const std::string worker_nonce = worker.on_hello(driver.nonce(), driver.fingerprint());
  const std::string driver_proof = driver.on_challenge(worker_nonce, worker.fingerprint());
  const std::string worker_proof = worker.on_join(driver_proof);
  CHECK(worker.authenticated());
  CHECK(worker.same_build());
  driver.on_accepted(worker_proof);
  CHECK(driver.authenticated());
  CHECK(driver.same_build());
  // The secret never crosses: nothing sent holds it.
  for (const auto& sent : {driver.nonce(), worker_nonce, driver_proof, worker_proof})
    CHECK(sent.find(secret) == std::string::npos);
  CHECK(driver_proof != worker_proof);
  CHECK(local_build().find("operator project") != std::string::npos);
  CHECK(build_digest(build).size() == 16);
  CHECK(build_fingerprint(build).substr(0, 16) == build_digest(build));
}

TEST_CASE("another secret is refused by the worker and an impostor worker by the driver", "[cluster][handshake]") {
  SECTION("the worker refuses a driver with another secret") {
    driver_handshake driver("another-secret-of-16+bytes", build);
    worker_handshake worker(secret, build);
    const auto proof = driver.on_challenge(worker.on_hello(driver.nonce(), build_fingerprint(build)), build_fingerprint(build));
    CHECK_THAT(refusal([&] { worker.on_join(proof); }), Catch::Contains("driver's proof of the cluster secret is wrong"));
    CHECK_FALSE(worker.authenticated());
  }
  SECTION("the driver refuses a worker that answers without the secret") {
    driver_handshake driver(secret, build);
    worker_handshake impostor("another-secret-of-16+bytes", build);
    const auto worker_nonce = impostor.on_hello(driver.nonce(), build_fingerprint(build));
    driver.on_challenge(worker_nonce, build_fingerprint(build));
    // The impostor cannot make the worker's proof; replaying the driver's own proof fails as well.
    CHECK_THAT(refusal([&] { driver.on_accepted(std::string(64, '0')); }), Catch::Contains("worker's proof of the cluster secret is wrong"));
    CHECK_FALSE(driver.authenticated());
  }
}

TEST_CASE("a proof is good for its own exchange only", "[cluster][handshake]") {
  driver_handshake first(secret, build);
  worker_handshake worker(secret, build);
  const auto proof = first.on_challenge(worker.on_hello(first.nonce(), build_fingerprint(build)), build_fingerprint(build));
  worker.on_join(proof);
  // A recorded proof replayed in a new exchange (new nonces) is refused.
  worker_handshake next(secret, build);
  driver_handshake second(secret, build);
  next.on_hello(second.nonce(), build_fingerprint(build));
  CHECK_THAT(refusal([&] { next.on_join(proof); }), Catch::Contains("proof of the cluster secret is wrong"));
}

// Before the proofs only fingerprints cross; the lists of registered names go to an authenticated peer.
TEST_CASE("another build is refused naming what differs, the lists only after both proofs", "[cluster][handshake]") {
  const std::string other = build + "operator my-udf\n";
  driver_handshake driver(secret, build);
  worker_handshake worker(secret, other);
  const auto worker_nonce = worker.on_hello(driver.nonce(), driver.fingerprint());
  CHECK(worker.fingerprint() == build_fingerprint(other));
  CHECK(worker.fingerprint().find("operator") == std::string::npos);
  CHECK_THAT(refusal([&] { driver.build_for_comparison(); }), Catch::Contains("only to a worker that proved the secret"));
  CHECK_THAT(refusal([&] { worker.on_build(build); }), Catch::Contains("before the driver proved the secret"));
  const auto driver_proof = driver.on_challenge(worker_nonce, worker.fingerprint());
  driver.on_accepted(worker.on_join(driver_proof));
  CHECK_FALSE(driver.same_build());
  CHECK_FALSE(worker.same_build());
  CHECK_THAT(driver.mismatch(), Catch::Contains("build mismatch: the worker runs build " + build_digest(other) +
                                                ", the driver build " + build_digest(build)));
  const auto at_worker = refusal([&] { worker.on_build(driver.build_for_comparison()); });
  CHECK_THAT(at_worker, Catch::Contains("build mismatch: the worker runs build " + build_digest(other)));
  CHECK_THAT(at_worker, Catch::Contains("the driver build " + build_digest(build)));
  CHECK_THAT(at_worker, Catch::Contains("only the worker has: operator my-udf"));
  CHECK_THAT(at_worker, Catch::Contains("run the same build of the program on every node"));
  // A list that is not the one the hello's fingerprint named is refused as such.
  CHECK_THAT(refusal([&] { worker.on_build(build + "operator forged\n"); }), Catch::Contains("does not match the fingerprint"));
}

TEST_CASE("malformed reflected and out-of-order messages are refused", "[cluster][handshake]") {
  driver_handshake driver(secret, build);
  worker_handshake worker(secret, build);
  CHECK_THAT(refusal([&] { worker.on_join(std::string(64, 'a')); }), Catch::Contains("a join without a hello first"));
  CHECK_THAT(refusal([&] { worker_handshake(secret, build).on_hello("short", build_fingerprint(build)); }), Catch::Contains("malformed"));
  CHECK_THAT(refusal([&] { driver.on_challenge(driver.nonce(), build_fingerprint(build)); }), Catch::Contains("own nonce"));
  CHECK_THAT(refusal([&] { driver_handshake(secret, build).on_challenge(std::string(64, 'b'), build); }),
             Catch::Contains("build fingerprint is malformed"));
  CHECK_THAT(refusal([&] { driver.on_accepted(std::string(64, 'a')); }), Catch::Contains("never asked for"));
  worker.on_hello(driver.nonce(), build_fingerprint(build));
  CHECK_THAT(refusal([&] { worker.on_hello(driver.nonce(), build_fingerprint(build)); }), Catch::Contains("a second hello"));
}
