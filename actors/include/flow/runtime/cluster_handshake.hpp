// Joining a cluster: the driver and a worker prove to each other that they hold the cluster secret and
// check that they run the same build, before any work crosses. Plain C++ (OpenSSL's libcrypto), no
// actors: the driver's and the worker's actors carry these values in their messages.
//
//   driver -> worker  hello(driver nonce, driver build fingerprint)
//   worker -> driver  (worker nonce, worker build fingerprint)
//   driver -> worker  join(driver proof)                   worker: refuses a wrong proof
//   worker -> driver  (worker proof)                       driver: refuses a wrong proof
// and only when the fingerprints differ, both sides now authenticated:
//   driver -> worker  build(driver build list)             worker: refuses naming what differs
//
// A proof is HMAC-SHA256(secret, role, both nonces, both fingerprints): the secret never crosses the
// wire, a proof is good for this one exchange only, and proofs are compared in constant time. Before
// the proofs nothing but a fingerprint (SHA-256 of the build list) says what a node runs: the list of
// registered names goes only to a peer that proved the secret.
#pragma once

#include <string>

#include "flow/types.hpp"

namespace flow::runtime {

// What a node can run of a graph another node sends it: libflow's and CAF's versions and every
// registered operator, batch function, source and sink format and state backend, one per line, sorted.
std::string local_build();
// A build's short name for messages: the first 16 hex digits of its SHA-256.
std::string build_digest(const std::string& build);
// What a hello carries: the build's SHA-256, 64 hex digits.
std::string build_fingerprint(const std::string& build);

// A refused join: what differs or failed, for the log of both sides.
class join_refused : public error {
 public:
  using error::error;
};

class driver_handshake {
 public:
  driver_handshake(std::string secret, std::string build);
  const std::string& nonce() const { return nonce_; }
  const std::string& fingerprint() const { return fingerprint_; }
  // The worker's answer to hello; returns the driver's proof for join. Throws join_refused for a bad
  // nonce or fingerprint, or a second call.
  std::string on_challenge(const std::string& worker_nonce, const std::string& worker_fingerprint);
  // The worker's proof. Throws join_refused unless it proves the secret for this exchange.
  void on_accepted(const std::string& worker_proof);
  bool authenticated() const { return authenticated_; }
  bool same_build() const { return fingerprint_ == worker_fingerprint_; }
  // The build list, for a worker of another fingerprint to name what differs; throws join_refused
  // before the worker proved the secret.
  const std::string& build_for_comparison() const;
  // The refusal when the builds differ (both digests), should the worker not name the differences.
  std::string mismatch() const;

 private:
  std::string secret_, build_, fingerprint_, nonce_, worker_nonce_, worker_fingerprint_;
  bool authenticated_ = false;
};

class worker_handshake {
 public:
  worker_handshake(std::string secret, std::string build);
  const std::string& fingerprint() const { return fingerprint_; }
  // A driver's hello; returns the worker's nonce. Throws join_refused for a bad nonce or fingerprint, or
  // a second hello.
  std::string on_hello(const std::string& driver_nonce, const std::string& driver_fingerprint);
  // The driver's proof; returns the worker's. Throws join_refused before a hello or for a wrong proof.
  std::string on_join(const std::string& driver_proof);
  bool authenticated() const { return authenticated_; }
  bool same_build() const { return fingerprint_ == driver_fingerprint_; }
  // An authenticated driver's build list (sent when the fingerprints differ): throws join_refused
  // naming the entries each side has that the other lacks, or for a list that is not the hello's.
  void on_build(const std::string& driver_build) const;

 private:
  std::string secret_, build_, fingerprint_, nonce_, driver_nonce_, driver_fingerprint_;
  bool authenticated_ = false;
};

}  // namespace flow::runtime
