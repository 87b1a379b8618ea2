#include <catch2/catch.hpp>

#include "flow/compile.hpp"
#include "flow/optimizer.hpp"

using namespace flow;

namespace {

schema_ptr events_schema() {
  return make_schema({{"user", type_id::string, false},
                      {"ad", type_id::int64, false},
                      {"kind", type_id::string, false},
                      {"time", type_id::int64, false},
                      {"ip", type_id::string, false}});
}

batch events() {
  return batch(events_schema(), {make_string_column({"u1", "u2", "u3", "u4"}), make_int_column({1, 2, 3, 4}),
                                 make_string_column({"view", "click", "view", "purchase"}),
                                 make_int_column({10, 20, 30, 40}), make_string_column({"a", "b", "c", "d"})});
}

plan_ptr scan_of_events() {
  scan_spec scan;
  scan.format = "local";
  scan.path = "events";
  scan.schema = events_schema();
  return make_scan(std::move(scan));
}

// Runs a plan of projects and filters over one batch of its scan's rows.
batch run(const plan_node& plan, const batch& rows) {
  if (plan.kind == plan_kind::scan) return rows;
  return make_stateless_operator(plan)->apply(run(*plan.children.front(), rows));
}

}  // namespace

TEST_CASE("optimize: a select over a filter reads only the columns both use, below the filter", "[optimizer]") {
  auto plan = make_project(make_filter(scan_of_events(), col("kind") == lit("view")), {col("ad"), (col("time") * lit(2)).as("t2")});
  auto optimized = optimize(plan);
  CHECK(explain(*plan) ==  // explain shows the plan as it runs
        "Project [ad, t2]\n"
        "+- Filter (kind = view)\n"
        "   +- Project [ad, kind, time]\n"
        "      +- Relation local events [user: string, ad: int64, kind: string, time: int64, ip: string]\n");
  CHECK(*optimized->output == *plan->output);
  CHECK(run(*optimized, events()) == run(*plan, events()));
  CHECK(run(*optimized, events()).num_rows() == 2);
  CHECK(optimize(optimized) == optimized);  // nothing left to do
}

TEST_CASE("optimize: leaves plans alone where pruning gains nothing", "[optimizer]") {
  auto every_column = make_project(make_filter(scan_of_events(), col("kind") == lit("view")),
                                   {col("user"), col("ad"), col("kind"), col("time"), col("ip")});
  CHECK(optimize(every_column) == every_column);
  auto no_filter = make_project(scan_of_events(), {col("ad")});
  CHECK(optimize(no_filter) == no_filter);
  auto filter_on_top = make_filter(make_project(scan_of_events(), {col("ad"), col("kind")}), col("ad") > lit(1));
  CHECK(optimize(filter_on_top) == filter_on_top);
}

TEST_CASE("compile_graph runs the optimizer: the filter's chain copies the needed columns only", "[optimizer][compile]") {
  auto plan = make_project(make_filter(scan_of_events(), col("kind") == lit("view")), {col("ad")});
  sink_spec sink;
  sink.format = "memory";
  sink.mode = output_mode::append;
  auto graph = compile_graph(plan, sink);
  std::vector<std::string> chain;
  for (const auto& op : graph.vertex(0).chain) chain.push_back(op->name());
  CHECK(chain == std::vector<std::string>{"Project [ad, kind]", "Filter (kind = view)", "Project [ad]"});
}
