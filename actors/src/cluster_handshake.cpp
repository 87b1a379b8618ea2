#include "flow/runtime/cluster_handshake.hpp"

#include <caf/config.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <set>
#include <sstream>
#include <vector>

#include "flow/function_registry.hpp"
#include "flow/operator_registry.hpp"
#include "flow/registry.hpp"
#include "flow/state_backend.hpp"

namespace flow::runtime {

namespace {

constexpr std::size_t nonce_bytes = 32;

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string sha256_hex(const std::string& text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1)
    throw error("cluster join: SHA-256 failed in OpenSSL");
  return hex(digest.data(), size);
}

std::string random_nonce() {
  std::array<unsigned char, nonce_bytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    throw error("cluster join: OpenSSL's random generator failed (no entropy?)");
  return hex(bytes.data(), bytes.size());
}

// The role keeps a driver's proof from passing as a worker's (a reflected message); both builds'
// fingerprints are bound in, so neither side can swap them after the hello.
std::string proof(const std::string& secret, const std::string& role, const std::string& driver_nonce,
                  const std::string& worker_nonce, const std::string& driver_fingerprint,
                  const std::string& worker_fingerprint) {
  const std::string message = "libflow-join\n" + role + "\n" + driver_nonce + "\n" + worker_nonce + "\n" +
                              driver_fingerprint + "\n" + worker_fingerprint;
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(), &size))
    throw error("cluster join: HMAC-SHA256 failed in OpenSSL");
  return hex(mac.data(), size);
}

bool same_proof(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool is_hex(const std::string& text, std::size_t size) {
  return text.size() == size &&
         std::all_of(text.begin(), text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

void check_nonce(const std::string& nonce, const std::string& own, const std::string& from) {
  if (!is_hex(nonce, 2 * nonce_bytes)) throw join_refused("the " + from + "'s nonce is malformed (expected 64 hex digits): not a libflow node of this version");
  if (nonce == own) throw join_refused("the " + from + " sent back this node's own nonce (a reflected message)");
}

void check_fingerprint(const std::string& fingerprint, const std::string& from) {
  if (!is_hex(fingerprint, 64))
    throw join_refused("the " + from + "'s build fingerprint is malformed (expected 64 hex digits): not a libflow node of this version");
}

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.insert(line);
  return out;
}

// Names each side's entries the other lacks.
void check_same_build(const std::string& ours, const std::string& theirs, const std::string& we,
                      const std::string& they) {
  if (ours == theirs) return;
  const auto a = lines(ours), b = lines(theirs);
  std::string only_ours, only_theirs;
  for (const auto& l : a)
    if (!b.count(l)) only_ours += (only_ours.empty() ? "" : ", ") + l;
  for (const auto& l : b)
    if (!a.count(l)) only_theirs += (only_theirs.empty() ? "" : ", ") + l;
  throw join_refused("build mismatch: the " + we + " runs build " + build_digest(ours) + ", the " + they +
                     " build " + build_digest(theirs) + (only_ours.empty() ? "" : "; only the " + we + " has: " + only_ours) +
                     (only_theirs.empty() ? "" : "; only the " + they + " has: " + only_theirs) +
                     "; run the same build of the program on every node");
}

}  // namespace

std::string local_build() {
  std::vector<std::string> entries{"libflow " FLOW_VERSION, "caf " + std::to_string(CAF_VERSION)};
  for (const auto& name : operator_names()) entries.push_back("operator " + name);
  for (const auto& name : batch_function_names()) entries.push_back("function " + name);
  for (const auto& name : source_formats()) entries.push_back("source " + name);
  for (const auto& name : sink_formats()) entries.push_back("sink " + name);
  for (const auto& name : state_backends()) entries.push_back("state-backend " + name);
  std::sort(entries.begin(), entries.end());
  std::string out;
  for (const auto& e : entries) out += e + "\n";
  return out;
}

std::string build_digest(const std::string& build) { return build_fingerprint(build).substr(0, 16); }

std::string build_fingerprint(const std::string& build) { return sha256_hex(build); }

driver_handshake::driver_handshake(std::string secret, std::string build)
    : secret_(std::move(secret)), build_(std::move(build)), fingerprint_(build_fingerprint(build_)), nonce_(random_nonce()) {}

std::string driver_handshake::on_challenge(const std::string& worker_nonce, const std::string& worker_fingerprint) {
  if (!worker_nonce_.empty()) throw join_refused("the worker answered hello twice");
  check_nonce(worker_nonce, nonce_, "worker");
  check_fingerprint(worker_fingerprint, "worker");
  worker_nonce_ = worker_nonce;
  worker_fingerprint_ = worker_fingerprint;
  return proof(secret_, "driver", nonce_, worker_nonce_, fingerprint_, worker_fingerprint_);
}

void driver_handshake::on_accepted(const std::string& worker_proof) {
  if (worker_nonce_.empty()) throw join_refused("the worker accepted a join it was never asked for");
  if (!same_proof(worker_proof, proof(secret_, "worker", nonce_, worker_nonce_, fingerprint_, worker_fingerprint_)))
    throw join_refused("the worker's proof of the cluster secret is wrong: it has another secret (check --flow.secret-file on both)");
  authenticated_ = true;
}

const std::string& driver_handshake::build_for_comparison() const {
  if (!authenticated_) throw join_refused("the driver's build list is sent only to a worker that proved the secret");
  return build_;
}

std::string driver_handshake::mismatch() const {
  return "build mismatch: the worker runs build " + worker_fingerprint_.substr(0, 16) + ", the driver build " +
         fingerprint_.substr(0, 16) + "; run the same build of the program on every node";
}

worker_handshake::worker_handshake(std::string secret, std::string build)
    : secret_(std::move(secret)), build_(std::move(build)), fingerprint_(build_fingerprint(build_)) {}

std::string worker_handshake::on_hello(const std::string& driver_nonce, const std::string& driver_fingerprint) {
  if (!nonce_.empty()) throw join_refused("a second hello in one join");
  nonce_ = random_nonce();
  check_nonce(driver_nonce, nonce_, "driver");
  check_fingerprint(driver_fingerprint, "driver");
  driver_nonce_ = driver_nonce;
  driver_fingerprint_ = driver_fingerprint;
  return nonce_;
}

std::string worker_handshake::on_join(const std::string& driver_proof) {
  if (driver_nonce_.empty()) throw join_refused("a join without a hello first");
  if (authenticated_) throw join_refused("a second join in one exchange");
  if (!same_proof(driver_proof, proof(secret_, "driver", driver_nonce_, nonce_, driver_fingerprint_, fingerprint_)))
    throw join_refused("the driver's proof of the cluster secret is wrong: it has another secret (check --flow.secret-file on both)");
  authenticated_ = true;
  return proof(secret_, "worker", driver_nonce_, nonce_, driver_fingerprint_, fingerprint_);
}

void worker_handshake::on_build(const std::string& driver_build) const {
  if (!authenticated_) throw join_refused("a build list before the driver proved the secret");
  if (build_fingerprint(driver_build) != driver_fingerprint_)
    throw join_refused("the driver's build list does not match the fingerprint of its hello");
  check_same_build(build_, driver_build, "worker", "driver");
}

}  // namespace flow::runtime
