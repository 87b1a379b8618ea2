// Joining over TLS (caf-openssl) with certificates the test makes with the openssl command line: a
// driver with a certificate of the cluster's CA joins; one without TLS, or with another CA's
// certificate, does not.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "cluster_support.hpp"

using namespace flow;
using namespace flow::test;
using namespace std::chrono_literals;

namespace {

struct certificates {
  std::string ca, certificate, key;
};

// A CA and a node certificate it signed (one for every node: the test's nodes share a host name).
certificates make_certificates(const temp_dir& dir, const std::string& name) {
  const auto in = [&](const std::string& file) { return (dir / (name + "-" + file)).string(); };
  const std::string quiet = " > /dev/null 2>&1";
  const std::string commands[] = {
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + "-ca -keyout " + in("ca.key") + " -out " + in("ca.pem"),
      "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + in("node.key") + " -out " + in("node.csr"),
      "openssl x509 -req -in " + in("node.csr") + " -CA " + in("ca.pem") + " -CAkey " + in("ca.key") +
          " -CAcreateserial -days 2 -out " + in("node.pem")};
  for (const auto& command : commands) REQUIRE(std::system((command + quiet).c_str()) == 0);
  return {in("ca.pem"), in("node.pem"), in("node.key")};
}

std::vector<std::string> tls_flags(const certificates& c) {
  return {"--flow.tls-cert", c.certificate, "--flow.tls-key", c.key, "--flow.tls-ca", c.ca};
}

session_config with_tls(session_config config, const certificates& c) {
  config.tls_certificate = c.certificate;
  config.tls_key = c.key;
  config.tls_ca = c.ca;
  return config;
}

}  // namespace

TEST_CASE("a driver joins its workers over TLS with the cluster's certificates", "[cluster][tls]") {
  if (std::system("openssl version > /dev/null 2>&1") != 0) {
    WARN("skipped: the openssl command line is not installed (Debian: apt-get install openssl)");
    return;
  }
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  const auto cluster = make_certificates(dir, "cluster");
  worker_process worker(dir, secret, tls_flags(cluster));
  {
    session driver(with_tls(driver_config({worker.address}, secret), cluster));
    CHECK(driver.cluster().joined_count() == 1);
  }
  // Another CA's certificate is refused by the TLS handshake.
  const auto stranger = make_certificates(dir, "stranger");
  const auto start = std::chrono::steady_clock::now();
  const auto message = error_of([&] { session s(with_tls(driver_config({worker.address}, secret), stranger)); });
  CHECK_THAT(message, Catch::Contains("cannot reach worker " + worker.address));
  CHECK_THAT(message, Catch::Contains("its certificate is not signed by this driver's --flow.tls-ca"));
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  // So is a driver without TLS.
  const auto plain_start = std::chrono::steady_clock::now();
  CHECK_THAT(error_of([&] { session s(driver_config({worker.address}, secret)); }),
             Catch::Contains("it may use TLS (then give this driver --flow.tls-cert"));
  CHECK(std::chrono::steady_clock::now() - plain_start < 10s);
}
