// Joining a cluster: the driver and a worker prove to each other that they hold the cluster secret and
// check that they run the same build, before any work crosses. Plain C++ (OpenSSL's libcrypto), no
// actors: the driver's and the worker's actors carry these values in their messages.
//
//   driver -> worker  hello(driver nonce, driver build)   worker: refuses another build
//   worker -> driver  (worker nonce, worker build)         driver: refuses another build
//   driver -> worker  join(driver proof)                   worker: refuses a wrong proof
//   worker -> driver  (worker proof)                       driver: refuses a wrong proof
//
// A proof is HMAC-SHA256(secret, role, both nonces, the build): the secret never crosses the wire, a
// proof is good for this one exchange only, and proofs are compared in constant time.
#pragma once

#include <string>

#include "flow/types.hpp"

namespace flow::runtime {

// What a node can run of a graph another node sends it: libflow's and CAF's versions and every
// registered operator, batch function, source and sink format and state backend, one per line, sorted.
std::string local_build();
// A build's short name for messages: the first 16 hex digits of its SHA-256.
std::string build_digest(const std::string& build);

// A refused join: what differs or failed, for the log of both sides.
class join_refused : public error {
 public:
  using error::error;
};

class driver_handshake {
 public:
  driver_handshake(std::string secret, std::string build);
  const std::string& nonce() const { return nonce_; }
  const std::string& build() const { return build_; }
  // The worker's answer to hello; returns the driver's proof for join. Throws join_refused for a bad
  // nonce, a second call, or another build (naming what each side has).
  std::string on_challenge(const std::string& worker_nonce, const std::string& worker_build);
  // The worker's proof. Throws join_refused unless it proves the secret for this exchange.
  void on_accepted(const std::string& worker_proof);
  bool authenticated() const { return authenticated_; }

 private:
  std::string secret_, build_, nonce_, worker_nonce_;
  bool authenticated_ = false;
};

class worker_handshake {
 public:
  worker_handshake(std::string secret, std::string build);
  // A driver's hello; returns the worker's nonce. Throws join_refused for a bad nonce, a second hello,
  // or another build.
  std::string on_hello(const std::string& driver_nonce, const std::string& driver_build);
  // The driver's proof; returns the worker's. Throws join_refused before a hello or for a wrong proof.
  std::string on_join(const std::string& driver_proof);
  bool authenticated() const { return authenticated_; }

 private:
  std::string secret_, build_, nonce_, driver_nonce_;
  bool authenticated_ = false;
};

}  // namespace flow::runtime
