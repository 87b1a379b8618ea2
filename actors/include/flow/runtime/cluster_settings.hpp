// The cluster flags of a session (--flow.role, --flow.listen, --flow.workers, --flow.join, --flow.secret-file
// and the TLS files), checked: what a driver and a worker need before they open a socket. Plain C++, no actors.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flow/session.hpp"

namespace flow::runtime {

struct cluster_address {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// HOST:PORT with a port 1..65535 (a worker's listen address may use port 0: any free port). Throws
// flow::error naming flag and the expected form.
cluster_address parse_cluster_address(std::string_view text, std::string_view flag, bool allow_any_port = false);

// The cluster secret: the file's contents without trailing line breaks. Throws flow::error naming the
// file when it is missing or unreadable, not a regular file, readable or writable by group or others
// (as ssh keys: chmod 600), or holds fewer than 16 bytes.
std::string read_cluster_secret(const std::string& path);

// What a session's cluster flags amount to, checked as a whole.
struct cluster_settings {
  session_config::cluster_role role = session_config::cluster_role::embedded;
  // worker: where it waits for its driver; driver (optional, port 0: none): where workers not in
  // --flow.workers announce themselves (--flow.join), to be joined as the listed ones are.
  cluster_address listen;
  std::vector<cluster_address> workers;  // driver
  cluster_address join;                  // worker (optional, port 0: none): the driver to announce itself to
  std::string secret;                    // driver, worker
  std::string tls_certificate, tls_key, tls_ca;  // all three or none
  std::chrono::milliseconds join_timeout{3000};  // driver: per step of a worker's join; worker: from a hello to its join
  bool tls() const { return !tls_certificate.empty(); }
};

// Throws flow::error naming the flag and what to do: a worker without --flow.listen, a driver without
// --flow.workers, --flow.join given to a driver, either without --flow.secret-file, a flag of the other role, a bad address, a bad
// secret file, TLS files given in part or missing.
cluster_settings check_cluster_settings(const session_config& config);

}  // namespace flow::runtime
