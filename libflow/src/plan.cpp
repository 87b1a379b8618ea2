#include "flow/plan.hpp"

#include <algorithm>
#include <sstream>

#include "flow/function_registry.hpp"
#include "flow/plan_codec.hpp"

namespace flow {

namespace {

// map_batches as a stateless operator: the user's function, checked against its declared schema.
class function_operator final : public stateless_operator {
 public:
  function_operator(batch_function fn, schema_ptr output, std::string name)
      : fn_(std::move(fn)), output_(std::move(output)), name_(std::move(name)) {}
  const schema_ptr& output_schema() const override { return output_; }
  batch apply(const batch& input) const override {
    batch result = fn_(input);
    if (result.schema() != *output_)
      throw error("map_batches '" + name_ + "' returned a batch with schema [" + result.schema().to_string() +
                  "], but declared [" + output_->to_string() + "]; return batches of the declared schema");
    return result;
  }
  std::string describe() const override { return "MapBatches " + name_; }
  std::optional<operator_descriptor> descriptor() const override {
    const auto registered = batch_function_names();
    if (!std::binary_search(registered.begin(), registered.end(), name_)) return std::nullopt;
    // A lambda labelled with a registered function's name is not that function: the receiver would run another.
    if (find_batch_function(name_).target_type() != fn_.target_type()) return std::nullopt;
    return operator_descriptor{"map_batches", codec_writer().write(name_).write(*output_).text()};
  }

 private:
  batch_function fn_;
  schema_ptr output_;
  std::string name_;
};

plan_ptr finish(plan_node node) { return std::make_shared<const plan_node>(std::move(node)); }

void require_child(const plan_ptr& child, std::string_view what) {
  if (!child) throw error(std::string(what) + ": the input plan is empty");
}

}  // namespace

std::shared_ptr<const stateless_operator> make_function_operator(batch_function fn, schema_ptr output, std::string name) {
  return std::make_shared<function_operator>(std::move(fn), std::move(output), std::move(name));
}

plan_ptr make_scan(scan_spec scan) {
  if (!scan.schema) throw error("scan of '" + scan.path + "': no schema; give one with schema() or set inferSchema");
  plan_node node;
  node.kind = plan_kind::scan;
  node.output = scan.schema;
  node.scan = std::move(scan);
  return finish(std::move(node));
}

plan_ptr make_project(plan_ptr child, std::vector<expr> exprs) {
  require_child(child, "select");
  if (exprs.empty()) throw error("select: give at least one column or expression");
  plan_node node;
  node.kind = plan_kind::project;
  node.output = project_operator(*child->output, exprs).output_schema();
  node.exprs = std::move(exprs);
  node.child = std::move(child);
  return finish(std::move(node));
}

plan_ptr make_filter(plan_ptr child, expr predicate) {
  require_child(child, "where");
  plan_node node;
  node.kind = plan_kind::filter;
  node.output = filter_operator(child->output, predicate).output_schema();
  node.predicate = std::move(predicate);
  node.child = std::move(child);
  return finish(std::move(node));
}

plan_ptr make_map_batches(plan_ptr child, batch_function fn, schema_ptr output, std::string name) {
  require_child(child, "map_batches");
  if (!fn) throw error("map_batches: the function is empty");
  plan_node node;
  node.kind = plan_kind::map_batches;
  node.output = output ? output : child->output;
  node.function = std::move(fn);
  node.function_output = node.output;
  node.function_name = name.empty() ? "function" : std::move(name);
  node.child = std::move(child);
  return finish(std::move(node));
}

plan_ptr make_aggregate(plan_ptr child, std::vector<expr> keys, std::vector<agg_spec> aggs) {
  require_child(child, "group_by");
  if (has_aggregate(*child))
    throw error("group_by after an aggregation: multiple streaming aggregations are not supported");
  plan_node node;
  node.kind = plan_kind::aggregate;
  node.output = aggregate_operator(child->output, keys, aggs).output_schema();
  node.keys = std::move(keys);
  node.aggs = std::move(aggs);
  node.child = std::move(child);
  return finish(std::move(node));
}

const scan_spec& scan_of(const plan_node& plan) {
  const plan_node* node = &plan;
  while (node->child) node = node->child.get();
  return node->scan;
}

bool has_aggregate(const plan_node& plan) {
  for (const plan_node* node = &plan; node; node = node->child.get())
    if (node->kind == plan_kind::aggregate) return true;
  return false;
}

std::string explain(const plan_node& plan) {
  std::ostringstream out;
  int depth = 0;
  for (const plan_node* node = &plan; node; node = node->child.get(), ++depth) {
    out << std::string(static_cast<std::size_t>(depth) * 2, ' ') << (depth ? "+- " : "");
    switch (node->kind) {
      case plan_kind::scan:
        out << (node->scan.streaming ? "StreamingRelation " : "Relation ") << node->scan.format << " "
            << node->scan.path << " [" << node->output->to_string() << "]";
        break;
      case plan_kind::project: {
        out << "Project [";
        for (std::size_t i = 0; i < node->exprs.size(); ++i) out << (i ? ", " : "") << node->exprs[i].name();
        out << "]";
        break;
      }
      case plan_kind::filter: out << "Filter " << node->predicate.name(); break;
      case plan_kind::map_batches: out << "MapBatches " << node->function_name; break;
      case plan_kind::aggregate: {
        out << "Aggregate [";
        for (std::size_t i = 0; i < node->keys.size(); ++i) out << (i ? ", " : "") << node->keys[i].name();
        out << "], [" << node->output->to_string() << "]";
        break;
      }
    }
    out << "\n";
  }
  return out.str();
}

void validate_output_mode(const plan_node& plan, output_mode mode) {
  bool aggregated = has_aggregate(plan);
  if (!scan_of(plan).streaming) return;
  if (mode == output_mode::complete && !aggregated)
    throw error(
        "complete output mode not supported when there are no streaming aggregations on streaming "
        "DataFrames; use append or update output mode");
  if (mode == output_mode::append && aggregated)
    throw error(
        "append output mode not supported when there are streaming aggregations on streaming DataFrames "
        "without watermark; use update or complete output mode");
}

physical_plan compile(const plan_ptr& plan) {
  if (!plan) throw error("cannot run an empty plan");
  std::vector<const plan_node*> chain;  // scan first
  for (const plan_node* node = plan.get(); node; node = node->child.get()) chain.insert(chain.begin(), node);

  physical_plan result;
  result.scan = chain.front()->scan;
  auto pre = std::make_shared<pipeline>(chain.front()->output);
  std::shared_ptr<pipeline> post;
  pipeline* current = pre.get();
  for (std::size_t i = 1; i < chain.size(); ++i) {
    const plan_node& node = *chain[i];
    const schema_ptr& input = chain[i - 1]->output;
    switch (node.kind) {
      case plan_kind::scan: throw error("a scan can only start a plan");
      case plan_kind::project: current->add(std::make_shared<project_operator>(*input, node.exprs)); break;
      case plan_kind::filter: current->add(std::make_shared<filter_operator>(input, node.predicate)); break;
      case plan_kind::map_batches:
        current->add(std::make_shared<function_operator>(node.function, node.output, node.function_name));
        break;
      case plan_kind::aggregate:
        result.aggregate = std::make_shared<aggregate_operator>(input, node.keys, node.aggs);
        result.key_columns = result.aggregate->key_names();
        post = std::make_shared<pipeline>(node.output);
        current = post.get();
        break;
    }
  }
  result.pre = pre;
  result.post = post;
  result.output_schema = plan->output;
  return result;
}

}  // namespace flow
