#include "flow/runtime/cluster_settings.hpp"

#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace flow::runtime {

namespace {

using role = session_config::cluster_role;

constexpr std::size_t min_secret_bytes = 16;

std::string role_name(role r) {
  switch (r) {
    case role::driver: return "driver";
    case role::worker: return "worker";
    case role::embedded: break;
  }
  return "embedded";
}

void check_readable_file(const std::string& path, std::string_view flag) {
  std::ifstream in(path);
  if (!in) throw error(std::string(flag) + ": cannot read '" + path + "': check the path and its permissions");
}

}  // namespace

cluster_address parse_cluster_address(std::string_view text, std::string_view flag, bool allow_any_port) {
  const auto colon = text.rfind(':');
  const std::string expected = std::string(flag) + " takes HOST:PORT (e.g. 127.0.0.1:7070), got '" + std::string(text) + "'";
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) throw error(expected);
  unsigned port = 0;
  const auto digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc{} || end != digits.data() + digits.size() || port > 65535 || (port == 0 && !allow_any_port))
    throw error(expected + ": the port must be a number from " + (allow_any_port ? "0" : "1") + " to 65535");
  return cluster_address{std::string(text.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

std::string read_cluster_secret(const std::string& path) {
  const std::string flag = "--flow.secret-file '" + path + "'";
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0)
    throw error(flag + ": no such file; make one with: openssl rand -hex 32 > FILE && chmod 600 FILE");
  if (!S_ISREG(info.st_mode)) throw error(flag + ": not a regular file");
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    throw error(flag + ": the file is open to group or others (mode " +
                std::to_string((info.st_mode >> 6) & 7) + std::to_string((info.st_mode >> 3) & 7) +
                std::to_string(info.st_mode & 7) + "); the secret must be private: chmod 600 '" + path + "'");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(flag + ": cannot read it: check its owner and permissions");
  std::stringstream contents;
  contents << in.rdbuf();
  std::string secret = contents.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.size() < min_secret_bytes)
    throw error(flag + ": the secret has " + std::to_string(secret.size()) + " bytes, at least " +
                std::to_string(min_secret_bytes) + " are needed; make one with: openssl rand -hex 32 > FILE");
  return secret;
}

cluster_settings check_cluster_settings(const session_config& config) {
  cluster_settings s;
  s.role = config.role;
  if (s.role == role::embedded && !config.workers.empty()) s.role = role::driver;
  const bool tls_given = !config.tls_certificate.empty() || !config.tls_key.empty() || !config.tls_ca.empty();
  if (s.role == role::embedded) {
    if (!config.listen.empty())
      throw error("--flow.listen is for a worker: add --flow.role=worker (or drop --flow.listen)");
    if (!config.join.empty()) throw error("--flow.join is for a worker: add --flow.role=worker --flow.listen=HOST:PORT");
    if (!config.secret_file.empty() || tls_given)
      throw error("--flow.secret-file and --flow.tls-* are for a cluster: add --flow.role=worker or --flow.workers=HOST:PORT,...");
    return s;
  }
  const std::string who = "a " + role_name(s.role);
  if (s.role == role::worker) {
    if (config.listen.empty()) throw error(who + " needs --flow.listen=HOST:PORT, the address it waits for its driver on");
    if (!config.workers.empty()) throw error("--flow.workers is for the driver, not " + who + ": drop it");
    s.listen = parse_cluster_address(config.listen, "--flow.listen", true);
    if (!config.join.empty()) s.join = parse_cluster_address(config.join, "--flow.join");
  } else {
    if (config.workers.empty()) throw error(who + " needs --flow.workers=HOST:PORT,... (its workers' --flow.listen addresses)");
    if (!config.join.empty())
      throw error("--flow.join is for a worker, not " + who + ": a driver takes the workers that join it on its --flow.listen");
    if (!config.listen.empty()) s.listen = parse_cluster_address(config.listen, "--flow.listen");
    for (const auto& w : config.workers) s.workers.push_back(parse_cluster_address(w, "--flow.workers"));
  }
  if (config.secret_file.empty())
    throw error(who + " needs --flow.secret-file FILE, the cluster secret every node shares (docs/deployment.md)");
  s.secret = read_cluster_secret(config.secret_file);
  if (tls_given) {
    if (config.tls_certificate.empty() || config.tls_key.empty() || config.tls_ca.empty())
      throw error("TLS needs all three of --flow.tls-cert, --flow.tls-key and --flow.tls-ca (PEM files); one is missing");
    check_readable_file(config.tls_certificate, "--flow.tls-cert");
    check_readable_file(config.tls_key, "--flow.tls-key");
    check_readable_file(config.tls_ca, "--flow.tls-ca");
    s.tls_certificate = config.tls_certificate;
    s.tls_key = config.tls_key;
    s.tls_ca = config.tls_ca;
  }
  if (config.join_timeout.count() <= 0)
    throw error("the cluster's join timeout must be positive, got " + std::to_string(config.join_timeout.count()) +
                " ms (session_config::join_timeout)");
  s.join_timeout = config.join_timeout;
  return s;
}

}  // namespace flow::runtime
