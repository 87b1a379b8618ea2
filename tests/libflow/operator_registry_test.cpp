// Operators by registered name: the built-in ones describe themselves and are rebuilt from their
// descriptors into operators that compute the same; a user's operator registers the same way.
#include <catch2/catch.hpp>

#include <algorithm>

#include "collecting_context.hpp"
#include "flow/function_registry.hpp"
#include "flow/operator_registry.hpp"
#include "flow/plan_codec.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::error_of;

namespace {

schema_ptr items_schema() {
  return make_schema({{"Quantity", type_id::int64, true}, {"UnitPrice", type_id::float64, false}, {"Country", type_id::string, true}});
}

batch items() {
  return make_batch(items_schema(), {{std::int64_t{6}, 2.5, std::string("United Kingdom")},
                                     {std::int64_t{-1}, 4.0, null_value{}},
                                     {null_value{}, 1.0, std::string("France")},
                                     {std::int64_t{2}, 3.0, std::string("France")}});
}

// What op emits for one batch in one epoch.
std::vector<batch> run(const stream_operator& op, const batch& input) {
  flow::test::collecting_context ctx;
  auto state = op.make_state();
  op.process(input, 0, state.get(), ctx);
  op.end_epoch(state.get(), ctx);
  return ctx.emitted;
}

// The operator rebuilt from its descriptor: same name, schema, descriptor and output.
void check_rebuilt(const stream_operator& op, const schema_ptr& input) {
  INFO(op.name());
  const auto descriptor = op.descriptor();
  REQUIRE(descriptor);
  const operator_ptr rebuilt = make_operator(*descriptor, input);
  CHECK(rebuilt->name() == op.name());
  CHECK(*rebuilt->output_schema() == *op.output_schema());
  CHECK(rebuilt->descriptor() == descriptor);
  CHECK(run(*rebuilt, items()) == run(op, items()));
}

}  // namespace

TEST_CASE("operator registry: project and filter are rebuilt from their descriptors", "[operator_registry]") {
  const project_operator project(*items_schema(), {(col("UnitPrice") * col("Quantity")).as("revenue"), lower(col("Country")),
                                                   explode(split(col("Country"), " ")).as("word"), lit(2.5)});
  CHECK(project.descriptor()->name == "project");
  check_rebuilt(project, items_schema());
  const expr predicate = col("Quantity") > lit(0) && !(col("Country") == lit("France"));
  const filter_operator filter(items_schema(), predicate);
  CHECK(*filter.descriptor() == operator_descriptor{"filter", encode_expr(predicate)});
  check_rebuilt(filter, items_schema());
  // The arguments are checked against the input they are rebuilt for.
  CHECK_THAT(error_of([&] { make_operator(*filter.descriptor(), make_schema({{"Quantity", type_id::int64, true}})); }),
             Catch::Contains("cannot rebuild operator 'filter': ") && Catch::Contains("Country"));
  CHECK_THAT(error_of([] { make_operator({"filter", "(col 1:a"}, items_schema()); }),
             Catch::StartsWith("cannot rebuild operator 'filter': cannot decode its arguments: expected ')' but the text ended"));
  CHECK_THAT(error_of([] { make_operator({"project", ""}, items_schema()); }), Catch::Contains("needs at least one expression"));
}

TEST_CASE("operator registry: map_batches ships only the function registered under its name", "[operator_registry]") {
  auto doubled_schema = make_schema({{"doubled", type_id::int64, true}});
  register_batch_function("test-registry-double", [doubled_schema](const batch& rows) {
    std::vector<std::vector<value>> table;
    for (std::size_t r = 0; r < rows.num_rows(); ++r) {
      const value q = rows.at(r, 0);
      table.push_back({is_null(q) ? value{} : value{2 * std::get<std::int64_t>(q)}});
    }
    return make_batch(doubled_schema, table);
  });
  const auto registered = make_function_operator(find_batch_function("test-registry-double"), doubled_schema, "test-registry-double");
  REQUIRE(registered->descriptor());
  CHECK(registered->descriptor()->name == "map_batches");
  check_rebuilt(*registered, items_schema());
  CHECK(run(*registered, items()).at(0).at(0, 0) == value{std::int64_t{12}});

  // A lambda is not shipped: not when unnamed, nor when labelled with a registered function's name.
  auto lambda = [](const batch& rows) { return rows; };
  CHECK_FALSE(make_function_operator(lambda, items_schema(), "function")->descriptor());
  CHECK_FALSE(make_function_operator(lambda, doubled_schema, "test-registry-double")->descriptor());
  CHECK_THAT(error_of([] { make_operator({"map_batches", codec_writer().write("test-no-such-function").write(schema{}).text()}, items_schema()); }),
             Catch::Contains("unknown batch function 'test-no-such-function'"));
}

namespace {

// A user operator with arguments of its own: multiplies an int64 column by a factor.
class scale_operator final : public stream_operator {
 public:
  scale_operator(const schema_ptr& input, std::int64_t factor) : input_(input), factor_(factor) {}
  std::string name() const override { return "Scale x" + std::to_string(factor_); }
  const schema_ptr& output_schema() const override { return input_; }
  void process(const batch& input, std::size_t, operator_state*, operator_context& ctx) const override {
    std::vector<std::vector<value>> rows;
    for (std::size_t r = 0; r < input.num_rows(); ++r) rows.push_back({std::get<std::int64_t>(input.at(r, 0)) * factor_});
    ctx.emit(make_batch(input_, rows));
  }
  std::optional<operator_descriptor> descriptor() const override {
    return operator_descriptor{"test-scale", std::to_string(factor_)};
  }

 private:
  schema_ptr input_;
  std::int64_t factor_;
};

}  // namespace

TEST_CASE("operator registry: a user's operator registers like the built-in ones", "[operator_registry]") {
  register_operator("test-scale", [](const std::string& arguments, const schema_ptr& input) -> operator_ptr {
    return std::make_shared<scale_operator>(input, std::stoll(arguments));
  });
  const auto numbers = make_schema({{"n", type_id::int64, false}});
  const scale_operator scale(numbers, 3);
  const operator_ptr rebuilt = make_operator(*scale.descriptor(), numbers);
  CHECK(rebuilt->name() == "Scale x3");
  CHECK(run(*rebuilt, make_batch(numbers, {{std::int64_t{7}}})).at(0).at(0, 0) == value{std::int64_t{21}});

  const auto names = operator_names();
  CHECK(std::is_sorted(names.begin(), names.end()));
  for (const char* builtin : {"filter", "final_aggregate", "map_batches", "partial_aggregate", "project", "test-scale"})
    CHECK(std::find(names.begin(), names.end(), builtin) != names.end());
  std::string listed;
  for (const auto& name : names) listed += (listed.empty() ? "" : ", ") + name;
  CHECK_THAT(error_of([] { find_operator("Project"); }),
             Catch::Equals("unknown stream operator 'Project'; registered: " + listed +
                           " (names are case-sensitive; flow::register_operator adds one)"));
  CHECK_THAT(error_of([] { make_operator({"Project", ""}, make_schema({})); }), Catch::StartsWith("unknown stream operator 'Project'"));
  CHECK_THAT(error_of([] { register_operator("filter", [](const std::string&, const schema_ptr&) { return operator_ptr{}; }); }),
             Catch::Equals("flow::register_operator(\"filter\"): a stream operator named 'filter' is already registered; choose another name"));
  CHECK_THAT(error_of([] { register_operator("test-empty", nullptr); }),
             Catch::Equals("flow::register_operator(\"test-empty\"): the factory is empty"));
  register_operator("test-null", [](const std::string&, const schema_ptr&) { return operator_ptr{}; });
  CHECK_THAT(error_of([&] { make_operator({"test-null", ""}, numbers); }),
             Catch::Equals("the factory of operator 'test-null' returned no operator"));
}
