// A vertex run remotely: the driver sends a worker process a graph description and a vertex index, then
// batches; the worker rebuilds the graph by registered names and runs that vertex's chain, its output
// going to a given actor. The result equals the same chains run in this process.
#include <catch2/catch.hpp>

#include <signal.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include <caf/all.hpp>

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
          }};
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

// The vertices deployed on the workers in a pipeline (vertex k on worker k % workers), fed the epochs.
epoch_rows run_on_workers(cluster_driver& driver, caf::actor_system& sys, const graph_description& description,
                          const std::vector<std::size_t>& vertices) {
  auto out = std::make_shared<collected>();
  const auto sink = caf::actor_cast<caf::actor>(sys.spawn(collector, out));
  caf::actor next = sink;
  for (std::size_t k = vertices.size(); k-- > 0;)
    next = driver.deploy(k % driver.size(), description, vertices[k], 0, 1, 1, next);
  caf::scoped_actor self{sys};
  std::int64_t epoch = 0;
  for (const auto& batches : sales_epochs()) {
    std::uint64_t seq = 0;
    for (const auto& b : batches) self->send(next, data_atom::value, epoch, seq++, std::uint32_t{0}, b);
    self->send(next, barrier_atom::value, epoch, epoch_stats{});
    ++epoch;
  }
  std::unique_lock<std::mutex> lock(out->mutex);
  const bool done = out->changed.wait_for(lock, 20s, [&] { return out->ended.size() == sales_epochs().size(); });
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);  // the actor system's end waits for it
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

TEST_CASE("a worker runs a stateless chain (select and where) as this process does", "[cluster][vertex]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  const auto description = describe_query(dir, [](data_frame df) {
    return df.select({col("word"), (col("n").cast(type_id::float64) * col("price")).as("total")}).where(col("total") > lit(1.0));
  }, output_mode::append);
  const std::vector<std::size_t> vertices{vertex_of(description, vertex_kind::source)};
  REQUIRE_FALSE(description.vertices[vertices[0]].chain.empty());
  driver_node node(driver_config({worker.address}, secret));
  const auto expected = run_here(description, vertices);
  REQUIRE(expected.size() == 3);
  CHECK(run_on_workers(*node.driver, *node.sys, description, vertices) == expected);
}

TEST_CASE("two workers run a keyed aggregation's two vertices as this process does", "[cluster][vertex]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process a(dir, secret), b(dir, secret);
  const auto description = describe_query(dir, [](data_frame df) { return df.group_by({col("word")}).sum("n"); },
                                          output_mode::complete);
  const std::vector<std::size_t> vertices{vertex_of(description, vertex_kind::source),
                                          vertex_of(description, vertex_kind::operators)};
  driver_node node(driver_config({a.address, b.address}, secret));
  const auto expected = run_here(description, vertices);
  REQUIRE(expected.size() == 3);
  CHECK(expected.at(2).size() == 5);  // complete mode: every word so far
  CHECK(run_on_workers(*node.driver, *node.sys, description, vertices) == expected);
  node.driver.reset();
  for (auto* w : {&a, &b}) {
    w->process->signal(SIGTERM);
    std::string last, line;
    while (!(line = w->process->read_line(10s)).empty()) last = line;
    CHECK_THAT(last, Catch::Matches("worker 127\\.0\\.0\\.1:[0-9]+: processed [0-9]+ rows in 3 epochs"));
  }
}

TEST_CASE("a worker refuses a graph naming an operator it does not have and other bad deploys", "[cluster][vertex]") {
  temp_dir dir;
  const auto secret = make_secret_file(dir, "secret", "a-shared-cluster-secret-0123");
  worker_process worker(dir, secret);
  auto description = describe_query(dir, [](data_frame df) { return df.where(col("n") > lit(std::int64_t{1})); },
                                    output_mode::append);
  const auto source = vertex_of(description, vertex_kind::source);
  REQUIRE_FALSE(description.vertices[source].chain.empty());
  description.vertices[source].chain[0].name = "no-such-operator";
  driver_node node(driver_config({worker.address}, secret));
  const auto message = error_of([&] { node.driver->deploy(0, description, source, 0, 1, 1, caf::actor{}); });
  CHECK_THAT(message, Catch::Contains("cannot run vertex " + std::to_string(source)));
  CHECK_THAT(message, Catch::Contains("unknown stream operator 'no-such-operator'"));
  CHECK(eventually([&] { return worker.log().find("no-such-operator") != std::string::npos; }, 5s));
  // A sink, a vertex out of range and an instance out of range are refused as well.
  description.vertices[source].chain[0].name = "filter";
  const auto sink = vertex_of(description, vertex_kind::sink);
  CHECK_THAT(error_of([&] { node.driver->deploy(0, description, sink, 0, 1, 1, caf::actor{}); }),
             Catch::Contains("is a sink: workers run operator chains"));
  CHECK_THAT(error_of([&] { node.driver->deploy(0, description, 99, 0, 1, 1, caf::actor{}); }),
             Catch::Contains("vertex 99 is not in the graph"));
  CHECK_THAT(error_of([&] { node.driver->deploy(0, description, source, 2, 2, 1, caf::actor{}); }),
             Catch::Contains("instance 2 of a parallelism of 2"));
}
