// A vertex instance run remotely: the driver sends a worker process an instance setup (graph description,
// vertex, instance, targets, state slots, supervision), then batches; the worker rebuilds the graph by
// registered names and runs the embedded runtime's instance actor, its output going to the given targets
// and its state changes to the given coordinator. The result equals the same chains run in this process.
#include <catch2/catch.hpp>

#include <signal.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "../../actors/src/cluster_driver.hpp"
#include "../../actors/src/cluster_node.hpp"
#include "cluster_support.hpp"
#include "flow/compile.hpp"
#include "flow/graph_description.hpp"
#include "flow/runtime/chain_runner.hpp"

using namespace flow;
using namespace flow::runtime;
using namespace flow::test;
using namespace std::chrono_literals;

namespace {

schema_ptr sales_schema() {
  return make_schema({{"word", type_id::string, true}, {"n", type_id::int64, true}, {"price", type_id::float64, true}});
}

// Three epochs of two batches each; words repeat across batches and epochs.
std::vector<std::vector<batch>> sales_epochs() {
  const auto s = sales_schema();
  return {{make_batch(s, {{std::string("apple"), std::int64_t{3}, 0.5}, {std::string("pear"), std::int64_t{1}, 1.25}}),
           make_batch(s, {{std::string("apple"), std::int64_t{2}, 0.5}, {std::string("fig"), std::int64_t{7}, 2.0}})},
          {make_batch(s, {{std::string("pear"), std::int64_t{4}, 1.25}}),
           make_batch(s, {{std::string("kiwi"), std::int64_t{5}, 0.75}, {std::string("apple"), std::int64_t{1}, 0.5}})},
          {make_batch(s, {{std::string("fig"), std::int64_t{2}, 2.0}}), make_batch(s, {{std::string("plum"), std::int64_t{9}, 3.0}})}};
}

// The graph a streaming data frame compiles to, described for shipping.
graph_description describe_query(const temp_dir& dir, const std::function<data_frame(data_frame)>& query, output_mode mode) {
  session local(session_config{});
  std::filesystem::create_directories(dir / "in");
  auto df = query(local.read_stream().format("csv").schema(sales_schema()).load((dir / "in").string()));
  sink_spec sink;
  sink.format = "memory";
  sink.query_name = "result";
  sink.mode = mode;
  auto graph = compile_graph(df.plan(), sink);
  graph.resolve_parallelism(1);
  return describe(graph);
}

// What reaches the end of the chains: each epoch's rows, and which epochs ended.
struct collected {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::int64_t, std::vector<batch>> rows;
  std::set<std::int64_t> ended;
};

batch_input_actor::behavior_type collector(batch_input_actor::pointer, std::shared_ptr<collected> out) {
  return {[out](data_atom, std::int64_t epoch, std::uint64_t, std::uint32_t, const batch& rows) {
            std::lock_guard<std::mutex> lock(out->mutex);
            out->rows[epoch].push_back(rows);
          },
          [out](barrier_atom, std::int64_t epoch, const epoch_stats&) {
            std::lock_guard<std::mutex> lock(out->mutex);
            out->ended.insert(epoch);
            out->changed.notify_all();
          },
          [](clocks_atom, std::int64_t, std::int64_t, std::int64_t) {}};
}

// Each epoch's output rows, sorted.
using epoch_rows = std::map<std::int64_t, std::vector<std::vector<value>>>;

epoch_rows sorted(const std::map<std::int64_t, std::vector<batch>>& rows) {
  epoch_rows out;
  for (const auto& [epoch, batches] : rows) {
    auto& all = out[epoch];
    for (const auto& b : batches)
      for (auto& row : sorted_rows(b)) all.push_back(std::move(row));
    std::sort(all.begin(), all.end());
  }
  return out;
}

// The vertices' chains run one after the other in this process (chain_runner, the embedded runtime's).
epoch_rows run_here(const graph_description& description, const std::vector<std::size_t>& vertices) {
  const auto graph = rebuild(description);
  std::map<std::int64_t, std::vector<batch>> out;
  std::vector<std::unique_ptr<chain_runner>> runners(vertices.size());
  std::int64_t epoch = 0;
  for (std::size_t k = vertices.size(); k-- > 0;) {
    const bool last = k + 1 == vertices.size();
    chain_runner* next = last ? nullptr : runners[k + 1].get();
    runners[k] = std::make_unique<chain_runner>(graph.vertex(vertices[k]).chain, 0, 1, [&, next](std::uint64_t seq, batch rows) {
      if (next) next->process(epoch, seq, 0, rows);
      else out[epoch].push_back(std::move(rows));
    });
  }
  for (const auto& batches : sales_epochs()) {
    std::uint64_t seq = 0;
    for (const auto& b : batches) runners[0]->process(epoch, seq++, 0, b);
    for (auto& r : runners) r->end_epoch(epoch, seq);
    ++epoch;
  }
  return sorted(out);
}

// What a coordinator hears from the instances: their state changes, by epoch.
struct supervised {
  std::mutex mutex;
  std::map<std::int64_t, std::size_t> changes;
  std::vector<std::string> failures;
};

caf::behavior coordinator_stand_in(caf::event_based_actor*, std::shared_ptr<supervised> out) {
  return {[out](state_changes_atom, std::uint64_t, std::int64_t epoch, std::uint64_t, const batch&) {
            std::lock_guard<std::mutex> lock(out->mutex);
            ++out->changes[epoch];
          },
          [out](failed_atom, std::uint64_t, const std::string& what, bool) {
            std::lock_guard<std::mutex> lock(out->mutex);
            out->failures.push_back(what);
          }};
}

// The operator vertex's one instance deployed on worker 0, fed by the source vertex's chain run here.
epoch_rows run_on_worker(cluster_driver& driver, caf::actor_system& sys, const graph_description& description,
                         std::size_t source, std::size_t op, const std::shared_ptr<supervised>& heard) {
  auto out = std::make_shared<collected>();
  const auto sink = sys.spawn(collector, out);
  const auto coordinator = sys.spawn(coordinator_stand_in, heard);
  instance_setup setup;
  setup.graph = std::make_shared<const dataflow_graph>(rebuild(description));
  setup.vertex = op;
  setup.targets = {{sink}};
  for (std::size_t d = 0; d < durable_states(setup.graph->vertex(op)); ++d) {
    setup.slots.push_back(d);
    setup.restored.emplace_back();
  }
  setup.sup = supervision{caf::actor_cast<coordinator_actor>(coordinator), 1};
  const auto instance = driver.deploy(0, description, setup);
  caf::scoped_actor self{sys};
  std::int64_t epoch = 0;
  chain_runner source_chain(setup.graph->vertex(source).chain, 0, 1, [&](std::uint64_t seq, batch rows) {
    self->send(instance, data_atom::value, epoch, seq, std::uint32_t{0}, std::move(rows));
  });
  for (const auto& batches : sales_epochs()) {
    std::uint64_t seq = 0;
    for (const auto& b : batches) source_chain.process(epoch, seq++, 0, b);
    source_chain.end_epoch(epoch, seq);
    self->send(instance, barrier_atom::value, epoch, epoch_stats{});
    ++epoch;
  }
  std::unique_lock<std::mutex> lock(out->mutex);
  const bool done = out->changed.wait_for(lock, 20s, [&] { return out->ended.size() == sales_epochs().size(); });
  // The state changes wait in the stand-in's own mailbox: it may handle them after the sink saw the last
  // barrier, and must before it is ended.
  eventually([&] {
    std::lock_guard<std::mutex> heard_lock(heard->mutex);
    return heard->changes.size() == sales_epochs().size();
  }, 10s);
  for (const auto& a : {caf::actor_cast<caf::actor>(sink), coordinator, caf::actor_cast<caf::actor>(instance)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);  // the actor system's end waits for them
  REQUIRE(done);
  return sorted(out->rows);
}

std::size_t vertex_of(const graph_description& description, vertex_kind kind) {
  for (std::size_t v = 0; v < description.vertices.size(); ++v)
    if (description.vertices[v].kind == kind) return v;
  FAIL("no such vertex");
  return 0;
}

struct driver_node {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<cluster_driver> driver;
  driver_node(const session_config& config) {
    const auto settings = check_cluster_settings(config);
    add_message_types(cfg);
    enable_networking(cfg, settings);
    sys = std::make_unique<caf::actor_system>(cfg);
    driver = std::make_unique<cluster_driver>(*sys, settings);
  }
  ~driver_node() { driver.reset(); }
};

}  // namespace

TEST_CASE("a worker runs a keyed aggregation's instance as this process does and reports its state changes",
          "[cluster][vertex]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  const auto description = describe_query(dir, [](data_frame df) { return df.group_by({col("word")}).sum("n"); },
                                          output_mode::complete);
  const auto source = vertex_of(description, vertex_kind::source), op = vertex_of(description, vertex_kind::operators);
  driver_node node(driver_config({worker.address}, secret));
  CHECK(node.driver->available_slots().at(0) >= 1);
  const auto expected = run_here(description, {source, op});
  REQUIRE(expected.size() == 3);
  CHECK(expected.at(2).size() == 5);  // complete mode: every word so far
  auto heard = std::make_shared<supervised>();
  CHECK(run_on_worker(*node.driver, *node.sys, description, source, op, heard) == expected);
  {
    // The aggregation's state reported its changes of every epoch to the coordinator, across the nodes.
    std::lock_guard<std::mutex> lock(heard->mutex);
    CHECK(heard->changes.size() == 3);
    CHECK(heard->failures.empty());
  }
  node.driver.reset();
  worker.process->signal(SIGTERM);
  std::string last, line;
  while (!(line = worker.process->read_line(10s)).empty()) last = line;
  CHECK_THAT(last, Catch::Matches("worker 127\\.0\\.0\\.1:[0-9]+: processed [1-9][0-9]* rows in 3 epochs"));
}

TEST_CASE("a worker refuses a graph naming an operator it does not have and other bad deploys", "[cluster][vertex]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  auto description = describe_query(dir, [](data_frame df) { return df.group_by({col("word")}).sum("n"); },
                                    output_mode::complete);
  const auto op = vertex_of(description, vertex_kind::operators);
  driver_node node(driver_config({worker.address}, secret));
  const auto graph = std::make_shared<const dataflow_graph>(rebuild(description));
  auto deploy_error = [&](std::size_t vertex, std::size_t instance, std::size_t targets,
                          const graph_description& shipped) {
    instance_setup setup;
    setup.graph = graph;
    setup.vertex = vertex;
    setup.instance = instance;
    setup.targets.resize(targets, {batch_input_actor{}});
    setup.slots.resize(durable_states(graph->vertex(std::min(vertex, graph->vertices().size() - 1))));
    setup.restored.resize(setup.slots.size());
    return error_of([&] { node.driver->deploy(0, shipped, setup); });
  };
  CHECK_THAT(deploy_error(vertex_of(description, vertex_kind::sink), 0, 0, description),
             Catch::Contains("is a sink: workers run operator chains"));
  // A file source's instances read on workers; a socket source's cannot.
  auto socket_source = description;
  socket_source.vertices[vertex_of(description, vertex_kind::source)].scan.format = "socket";
  CHECK_THAT(deploy_error(vertex_of(description, vertex_kind::source), 0, 1, socket_source),
             Catch::Contains("is a source vertex of format 'socket': only the instances of a file source"));
  CHECK_THAT(deploy_error(op, 1, 1, description), Catch::Contains("instance 1 of a parallelism of 1"));
  CHECK_THAT(deploy_error(op, 0, 2, description), Catch::Contains("has 1 outgoing edges, the deploy names targets for 2"));
  // A graph naming an operator this worker does not have: the registry's error, logged by the worker too.
  auto unknown = description;
  REQUIRE_FALSE(unknown.vertices[op].chain.empty());
  unknown.vertices[op].chain[0].name = "no-such-operator";
  // The driver describes setup.graph: a graph rebuilt here cannot name an unknown operator, so the
  // request is made by hand.
  instance_deployment d;
  d.graph = unknown;
  d.vertex = op;
  caf::scoped_actor self{*node.sys};
  auto handle = node.sys->middleman().remote_actor<worker_actor>(
      worker.address.substr(0, worker.address.rfind(':')),
      static_cast<std::uint16_t>(std::stoi(worker.address.substr(worker.address.rfind(':') + 1))));
  REQUIRE(handle);
  std::string message;
  self->request(*handle, 5s, deploy_atom::value, d)
      .receive([&](const caf::actor&) { message = "<accepted>"; }, [&](caf::error& e) { message = error_text(*node.sys, e); });
  CHECK_THAT(message, Catch::Contains("cannot run vertex " + std::to_string(op)));
  CHECK_THAT(message, Catch::Contains("unknown stream operator 'no-such-operator'"));
  CHECK(eventually([&] { return worker.log().find("no-such-operator") != std::string::npos; }, 5s));
}
