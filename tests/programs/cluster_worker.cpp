// The worker of the cluster tests (tests/cluster): any libflow program given --flow.role=worker serves as
// a worker; this one is nothing else. With --extra-operator it first registers one more operator than
// its driver has: another build as far as joining is concerned (the build fingerprint covers what is
// registered), which a driver must refuse. With --slow-function it registers the slow batch function of
// the flow control test (slow_function.hpp), which that test's driver registers too.
#include <iostream>
#include <string>

#include "flow/operator_registry.hpp"
#include "flow/session.hpp"
#include "slow_function.hpp"

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--extra-operator")
        flow::register_operator("cluster-test-extra", [](const std::string&, const flow::schema_ptr&) -> flow::operator_ptr {
          throw flow::error("cluster-test-extra builds nothing");
        });
      else if (std::string(argv[i]) == "--slow-function")
        flow::test::register_slow_function();
    flow::session session(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cluster_worker: " << e.what() << std::endl;
    return 1;
  }
  std::cerr << "cluster_worker: give --flow.role=worker --flow.listen=HOST:PORT --flow.secret-file FILE" << std::endl;
  return 2;
}
