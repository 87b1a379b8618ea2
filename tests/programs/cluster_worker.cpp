// The worker of the cluster tests (tests/cluster): any libflow program given --flow.role=worker serves as
// a worker; this one is nothing else. With --extra-operator it first registers one more operator than
// its driver has: another build as far as joining is concerned (the build fingerprint covers what is
// registered), which a driver must refuse.
#include <iostream>
#include <string>

#include "flow/operator_registry.hpp"
#include "flow/session.hpp"

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--extra-operator")
        flow::register_operator("cluster-test-extra", [](const std::string&, const flow::schema_ptr&) -> flow::operator_ptr {
          throw flow::error("cluster-test-extra builds nothing");
        });
    flow::session session(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cluster_worker: " << e.what() << std::endl;
    return 1;
  }
  std::cerr << "cluster_worker: give --flow.role=worker --flow.listen=HOST:PORT --flow.secret-file FILE" << std::endl;
  return 2;
}
