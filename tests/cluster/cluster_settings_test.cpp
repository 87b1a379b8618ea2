// The cluster flags: both spellings of a flag's value, and a clear error for every bad value.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "cluster_support.hpp"
#include "flow/runtime/cluster_settings.hpp"

using namespace flow;
using namespace flow::runtime;
using namespace flow::test;

namespace {

// A session from these arguments (argv[0] first); the error it throws.
std::string session_error(std::vector<std::string> args) {
  args.insert(args.begin(), "program");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return error_of([&] { session s(static_cast<int>(argv.size()), argv.data()); });
}

}  // namespace

TEST_CASE("addresses and secret files are checked", "[cluster][settings]") {
  CHECK(parse_cluster_address("127.0.0.1:7070", "--flow.workers").to_string() == "127.0.0.1:7070");
  CHECK(parse_cluster_address("node-a:0", "--flow.listen", true).port == 0);
  CHECK_THAT(error_of([] { parse_cluster_address("127.0.0.1", "--flow.workers"); }),
             Catch::Contains("--flow.workers takes HOST:PORT (e.g. 127.0.0.1:7070), got '127.0.0.1'"));
  CHECK_THAT(error_of([] { parse_cluster_address("h:70000", "--flow.workers"); }), Catch::Contains("from 1 to 65535"));
  CHECK_THAT(error_of([] { parse_cluster_address("h:0", "--flow.workers"); }), Catch::Contains("from 1 to 65535"));

  temp_dir dir;
  CHECK(read_cluster_secret(make_secret_file(dir, "good", "0123456789abcdef0123")) == "0123456789abcdef0123");
  CHECK_THAT(error_of([&] { read_cluster_secret((dir / "missing").string()); }),
             Catch::Contains("no such file; make one with: openssl rand -hex 32"));
  CHECK_THAT(error_of([&] { read_cluster_secret(make_secret_file(dir, "short", "tiny")); }),
             Catch::Contains("the secret has 4 bytes, at least 16 are needed"));
  const auto open = make_secret_file(dir, "open", "0123456789abcdef0123");
  ::chmod(open.c_str(), 0644);
  CHECK_THAT(error_of([&] { read_cluster_secret(open); }), Catch::Contains("open to group or others (mode 644)"));
  CHECK_THAT(error_of([&] { read_cluster_secret(open); }), Catch::Contains("chmod 600"));
  CHECK_THAT(error_of([&] { read_cluster_secret(dir.path().string()); }), Catch::Contains("not a regular file"));
}

TEST_CASE("the cluster flags make a driver or a worker and wrong combinations are refused", "[cluster][settings]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "0123456789abcdef0123");
  session_config c;
  CHECK(check_cluster_settings(c).role == session_config::cluster_role::embedded);
  c.workers = {"127.0.0.1:7001", "127.0.0.1:7002"};
  c.secret_file = secret;
  const auto driver = check_cluster_settings(c);
  CHECK(driver.role == session_config::cluster_role::driver);  // --flow.workers alone makes a driver
  CHECK(driver.workers.size() == 2);
  CHECK(driver.secret == "0123456789abcdef0123");
  CHECK_FALSE(driver.tls());

  session_config w;
  w.role = session_config::cluster_role::worker;
  CHECK_THAT(error_of([&] { check_cluster_settings(w); }), Catch::Contains("a worker needs --flow.listen=HOST:PORT"));
  w.listen = "127.0.0.1:0";
  CHECK_THAT(error_of([&] { check_cluster_settings(w); }), Catch::Contains("a worker needs --flow.secret-file FILE"));
  w.secret_file = secret;
  CHECK(check_cluster_settings(w).listen.port == 0);
  w.tls_certificate = secret;
  CHECK_THAT(error_of([&] { check_cluster_settings(w); }),
             Catch::Contains("TLS needs all three of --flow.tls-cert, --flow.tls-key and --flow.tls-ca"));

  session_config stray;
  stray.listen = "127.0.0.1:7000";
  CHECK_THAT(error_of([&] { check_cluster_settings(stray); }), Catch::Contains("--flow.listen is for a worker: add --flow.role=worker"));
  session_config joining = w;
  joining.tls_certificate.clear();
  joining.join = "127.0.0.1:7000";
  CHECK(check_cluster_settings(joining).join.port == 7000);
  joining.join = "127.0.0.1";
  CHECK_THAT(error_of([&] { check_cluster_settings(joining); }), Catch::Contains("--flow.join takes HOST:PORT"));
  session_config driver_listening = c;
  driver_listening.listen = "127.0.0.1:7000";
  CHECK(check_cluster_settings(driver_listening).listen.port == 7000);  // where workers announce themselves
  driver_listening.join = "127.0.0.1:7001";
  CHECK_THAT(error_of([&] { check_cluster_settings(driver_listening); }), Catch::Contains("--flow.join is for a worker, not a driver"));
  stray.listen.clear();
  stray.join = "127.0.0.1:7000";
  CHECK_THAT(error_of([&] { check_cluster_settings(stray); }), Catch::Contains("--flow.join is for a worker"));
  session_config driver_only;
  driver_only.role = session_config::cluster_role::driver;
  CHECK_THAT(error_of([&] { check_cluster_settings(driver_only); }), Catch::Contains("a driver needs --flow.workers=HOST:PORT"));
}

TEST_CASE("a session reads the cluster flags as FLAG=VALUE and as FLAG VALUE", "[cluster][settings]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "0123456789abcdef0123");
  CHECK_THAT(session_error({"--flow.role=boss"}), Catch::Contains("invalid value 'boss' for --flow.role: expected embedded, driver or worker"));
  CHECK_THAT(session_error({"--flow.workers=127.0.0.1:1", "--flow.secret-file"}), Catch::Contains("missing value after --flow.secret-file"));
  CHECK_THAT(session_error({"--flow.workers", "127.0.0.1", "--flow.secret-file", secret}),
             Catch::Contains("--flow.workers takes HOST:PORT"));
  // Both spellings reach the driver, which then finds no worker at port 1.
  for (const auto& args : {std::vector<std::string>{"--flow.workers=127.0.0.1:1", "--flow.secret-file", secret},
                           std::vector<std::string>{"--flow.workers", "127.0.0.1:1", "--flow.secret-file=" + secret}})
    CHECK_THAT(session_error(args), Catch::Contains("cannot reach worker 127.0.0.1:1"));
  CHECK_THAT(session_error({"--flow.workers=127.0.0.1:1"}), Catch::Contains("a driver needs --flow.secret-file FILE"));
}
