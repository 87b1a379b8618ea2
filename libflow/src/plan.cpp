#include "flow/plan.hpp"

#include <algorithm>
#include <sstream>

#include "flow/function_registry.hpp"
#include "flow/graph.hpp"
#include "flow/group_state.hpp"
#include "flow/optimizer.hpp"
#include "flow/plan_codec.hpp"
#include "flow/session_window.hpp"
#include "flow/watermark.hpp"

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

std::size_t count_aggregates(const plan_node& plan) {
  std::size_t count = plan.kind == plan_kind::aggregate ? 1 : 0;
  for (const auto& child : plan.children) count += count_aggregates(*child);
  return count;
}

// Spark's UnsupportedOperationChecker rule; static frames may aggregate several times.
void refuse_multiple_streaming_aggregations(const plan_node& plan, std::string_view what) {
  if (is_streaming(plan) && count_aggregates(plan) > 1)
    throw error(std::string(what) +
                ": Multiple streaming aggregations are not supported with streaming DataFrames/Datasets; "
                "aggregate once per query (write the first aggregation to a sink and read that as a new stream)");
}

// The schema as text, with nullability when that is where two schemas differ.
std::string schema_text(const schema& s, const schema& other) {
  std::string text = s.to_string();
  if (text != other.to_string()) return text;
  std::string nullable;
  for (const auto& f : s.fields())
    nullable += (nullable.empty() ? "" : ", ") + f.name + (f.nullable ? " nullable" : " not null");
  return text + " (" + nullable + ")";
}

// The rules of map/flat_map_groups_with_state in the topologies the plan reads.
void validate_group_states(const plan_node& plan, output_mode mode) {
  if (plan.kind == plan_kind::topology) validate_group_state_rules(*plan.graph, mode);
  for (const auto& child : plan.children) validate_group_states(*child, mode);
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
  node.children = {std::move(child)};
  return finish(std::move(node));
}

plan_ptr make_filter(plan_ptr child, expr predicate) {
  require_child(child, "where");
  plan_node node;
  node.kind = plan_kind::filter;
  node.output = filter_operator(child->output, predicate).output_schema();
  node.predicate = std::move(predicate);
  node.children = {std::move(child)};
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
  node.children = {std::move(child)};
  return finish(std::move(node));
}

plan_ptr make_aggregate(plan_ptr child, std::vector<expr> keys, std::vector<agg_spec> aggs) {
  require_child(child, "group_by");
  plan_node node;
  node.kind = plan_kind::aggregate;
  if (session_window_key_index(keys) >= 0) {
    // node.op: the session window operator (flow/session_window.hpp), checked here; compile makes it again with
    // the query's output mode.
    node.op = std::make_shared<const session_window_operator>(child->output, keys, aggs, output_mode::update);
    node.output = node.op->output_schema();
  } else {
    node.output = aggregate_operator(child->output, keys, aggs).output_schema();
  }
  node.keys = std::move(keys);
  node.aggs = std::move(aggs);
  node.children = {std::move(child)};
  refuse_multiple_streaming_aggregations(node, "group_by after an aggregation");
  return finish(std::move(node));
}

plan_ptr make_watermark(plan_ptr child, std::string column, std::string_view delay) {
  require_child(child, "with_watermark");
  plan_node node;
  node.kind = plan_kind::watermark;
  node.delay_micros = parse_duration_micros(delay);
  // The operator checks the column (a timestamp) and the delay, with the messages it gives everywhere.
  node.output = watermark_operator(child->output, column, node.delay_micros, 0).output_schema();
  node.event_time = std::move(column);
  node.children = {std::move(child)};
  return finish(std::move(node));
}

plan_ptr make_union(std::vector<plan_ptr> inputs) {
  if (inputs.size() < 2) throw error("union: give at least two inputs");
  for (const auto& input : inputs) require_child(input, "union");
  const plan_node& first = *inputs.front();
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    const plan_node& other = *inputs[i];
    if (is_streaming(other) != is_streaming(first))
      throw error(
          "union: Union between streaming and batch DataFrames/Datasets is not supported; read both with "
          "read_stream() or both with read()");
    if (*other.output != *first.output)
      throw error("union: input " + std::to_string(i + 1) + " has the schema [" +
                  schema_text(*other.output, *first.output) + "], but input 1 has [" +
                  schema_text(*first.output, *other.output) +
                  "]; union needs the same columns (names, types, order) on every input: select them alike first");
  }
  plan_node node;
  node.kind = plan_kind::union_all;
  node.output = first.output;
  node.children = std::move(inputs);
  refuse_multiple_streaming_aggregations(node, "union of aggregations");
  return finish(std::move(node));
}

namespace {

// Spark's UnsupportedOperationChecker rules for a stream joined with a static frame on its right.
void refuse_outer_joins_of_a_stream(const plan_node& child, join_type type) {
  if (is_streaming(child) && type == join_type::right_outer)
    throw error(
        "join: RightOuter join with a streaming DataFrame/Dataset on the left and a static DataFrame/DataSet on the "
        "right not supported; use inner, left_outer, left_semi or left_anti");
  if (is_streaming(child) && type == join_type::full_outer)
    throw error(
        "join: FullOuter joins with streaming DataFrames/Datasets on the left and a static DataFrame/DataSets on "
        "the right is not supported; use inner, left_outer, left_semi or left_anti");
}

plan_ptr join_node(plan_ptr child, operator_ptr join) {
  plan_node node;
  node.kind = plan_kind::join;
  node.output = join->output_schema();
  node.op = std::move(join);
  node.children = {std::move(child)};
  return finish(std::move(node));
}

}  // namespace

plan_ptr make_join(plan_ptr child, const batch& right, std::vector<std::string> keys, join_type type) {
  require_child(child, "join");
  refuse_outer_joins_of_a_stream(*child, type);
  auto join = std::make_shared<const stream_static_join_operator>(child->output, right, std::move(keys), type);
  return join_node(std::move(child), std::move(join));
}

plan_ptr make_join(plan_ptr child, const batch& right, const expr& condition, join_type type) {
  require_child(child, "join");
  refuse_outer_joins_of_a_stream(*child, type);
  auto join = std::make_shared<const stream_static_join_operator>(child->output, right, condition, type);
  return join_node(std::move(child), std::move(join));
}

plan_ptr make_deduplicate(plan_ptr child, deduplicate_spec spec) {
  require_child(child, "drop_duplicates");
  if (spec.event_time_column.empty()) {
    // Spark's rule: with a watermarked column among the keys, a key is forgotten once the watermark passes
    // that column's value, and rows behind the watermark are late.
    for (const auto& column : watermark_columns(*child)) {
      if (std::find(spec.keys.begin(), spec.keys.end(), column) == spec.keys.end()) continue;
      spec.event_time_column = column;
      spec.delay_micros = 0;
      break;
    }
  }
  plan_node node;
  node.kind = plan_kind::deduplicate;
  node.op = std::make_shared<const deduplicate_operator>(child->output, std::move(spec));
  node.output = child->output;
  node.children = {std::move(child)};
  return finish(std::move(node));
}

plan_ptr make_topology_input(std::shared_ptr<const dataflow_graph> graph, std::size_t output) {
  if (!graph || output >= graph->vertices().size())
    throw error("topology input: no such vertex in the topology's graph");
  // The query compiled from the plan adds its own sink; sinks of the topology's would run with it.
  if (!graph->sinks().empty())
    throw error("topology input: the graph has sinks; give the vertices up to the stream the frame reads");
  plan_node node;
  node.kind = plan_kind::topology;
  node.output = graph->vertex(output).output;
  node.graph = std::move(graph);
  node.graph_output = output;
  return finish(std::move(node));
}

std::vector<const scan_spec*> scans_of(const plan_node& plan) {
  if (plan.kind == plan_kind::scan) return {&plan.scan};
  std::vector<const scan_spec*> scans;
  if (plan.kind == plan_kind::topology)
    for (auto v : plan.graph->sources()) scans.push_back(&plan.graph->vertex(v).scan);
  for (const auto& child : plan.children) {
    auto more = scans_of(*child);
    scans.insert(scans.end(), more.begin(), more.end());
  }
  return scans;
}

const scan_spec& scan_of(const plan_node& plan) {
  auto scans = scans_of(plan);
  if (scans.size() != 1)
    throw error("the plan reads " + std::to_string(scans.size()) + " sources (a union), where one was expected");
  return *scans.front();
}

bool is_streaming(const plan_node& plan) { return scans_of(plan).front()->streaming; }  // make_union keeps them alike

bool has_aggregate(const plan_node& plan) { return count_aggregates(plan) > 0; }

std::vector<std::string> watermark_columns(const plan_node& plan) {
  std::vector<std::string> columns;
  if (plan.kind == plan_kind::watermark) columns.push_back(plan.event_time);
  for (const auto& child : plan.children) {
    auto more = watermark_columns(*child);
    columns.insert(columns.end(), more.begin(), more.end());
  }
  return columns;
}

std::shared_ptr<const stateless_operator> make_stateless_operator(const plan_node& node) {
  switch (node.kind) {
    case plan_kind::project: return std::make_shared<project_operator>(*node.children.front()->output, node.exprs);
    case plan_kind::filter: return std::make_shared<filter_operator>(node.children.front()->output, node.predicate);
    case plan_kind::map_batches:
      return std::make_shared<function_operator>(node.function, node.output, node.function_name);
    case plan_kind::join: return std::static_pointer_cast<const stream_static_join_operator>(node.op);
    case plan_kind::scan:
    case plan_kind::aggregate:
    case plan_kind::union_all:
    case plan_kind::topology:
    case plan_kind::watermark:
    case plan_kind::deduplicate: break;
  }
  throw error("make_stateless_operator: only a select, where, map_batches or join node is a stateless operator");
}

namespace {

std::string describe_node(const plan_node& node) {
  std::ostringstream out;
  switch (node.kind) {
    case plan_kind::scan:
      out << (node.scan.streaming ? "StreamingRelation " : "Relation ") << node.scan.format << " " << node.scan.path
          << " [" << node.output->to_string() << "]";
      break;
    case plan_kind::project: {
      out << "Project [";
      for (std::size_t i = 0; i < node.exprs.size(); ++i) out << (i ? ", " : "") << node.exprs[i].name();
      out << "]";
      break;
    }
    case plan_kind::filter: out << "Filter " << node.predicate.name(); break;
    case plan_kind::map_batches: out << "MapBatches " << node.function_name; break;
    case plan_kind::aggregate: {
      out << "Aggregate [";
      for (std::size_t i = 0; i < node.keys.size(); ++i) out << (i ? ", " : "") << node.keys[i].name();
      out << "], [" << node.output->to_string() << "]";
      break;
    }
    case plan_kind::union_all: out << "Union [" << node.output->to_string() << "]"; break;
    case plan_kind::watermark:
      out << "EventTimeWatermark " << node.event_time << ", " << node.delay_micros / 1000 << " ms";
      break;
    case plan_kind::topology:
      out << "TopologyStream " << node.graph->vertex(node.graph_output).name << " [" << node.output->to_string() << "]";
      break;
    case plan_kind::join:
    case plan_kind::deduplicate: out << node.op->name(); break;
  }
  return out.str();
}

// ":  " or "   " for each of the first `depth` levels, to continue their branches.
std::string branches(const std::vector<bool>& last_child, std::size_t depth) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i) text += last_child[i] ? "   " : ":  ";
  return text;
}

// Spark's TreeNode.treeString: ":- " before a child with siblings after it, "+- " before the last,
// and below them ":  " or "   " to continue the branch.
void explain_tree(const plan_node& node, std::vector<bool>& last_child, std::ostringstream& out) {
  if (!last_child.empty()) out << branches(last_child, last_child.size() - 1) << (last_child.back() ? "+- " : ":- ");
  out << describe_node(node) << "\n";
  if (node.kind == plan_kind::topology) {
    // The topology's vertices, as its graph explains them, indented below the node.
    const std::string indent = branches(last_child, last_child.size()) + "   ";
    std::istringstream lines(node.graph->explain());
    for (std::string line; std::getline(lines, line);) out << indent << line << "\n";
  }
  for (std::size_t i = 0; i < node.children.size(); ++i) {
    last_child.push_back(i + 1 == node.children.size());
    explain_tree(*node.children[i], last_child, out);
    last_child.pop_back();
  }
}

}  // namespace

std::string explain(const plan_node& plan) {
  std::ostringstream out;
  std::vector<bool> last_child;
  explain_tree(*optimize(std::make_shared<const plan_node>(plan)), last_child, out);
  return out.str();
}

namespace {

const plan_node* find_aggregate(const plan_node& plan) {
  if (plan.kind == plan_kind::aggregate) return &plan;
  for (const auto& child : plan.children)
    if (const auto* found = find_aggregate(*child)) return found;
  return nullptr;
}

// Spark's rule for append mode: the aggregation groups by a window (or session window) over a watermarked
// column (or by that column itself), so that a group is final once the watermark passes it.
bool groups_by_watermarked_time(const plan_node& aggregate) {
  const auto watermarked = watermark_columns(*aggregate.children.front());
  for (const auto& key : aggregate.keys) {
    const expr_node* window = find_window(key);
    const expr_node& time = window ? window->children.front().node() : key.node();
    if (time.kind == expr_kind::column_ref &&
        std::find(watermarked.begin(), watermarked.end(), time.name) != watermarked.end())
      return window != nullptr;
  }
  return false;
}

// A stream-stream join (a join node with both sides as children) anywhere in plan.
bool joins_two_streams(const plan_node& plan) {
  if (plan.kind == plan_kind::join && plan.children.size() == 2) return true;
  return std::any_of(plan.children.begin(), plan.children.end(), [](const plan_ptr& c) { return joins_two_streams(*c); });
}

}  // namespace

void validate_output_mode(const plan_node& plan, output_mode mode) {
  bool aggregated = has_aggregate(plan);
  if (!is_streaming(plan)) return;
  validate_group_states(plan, mode);
  if (mode != output_mode::append && joins_two_streams(plan))
    throw error("Join between two streaming DataFrames/Datasets is not supported in " +
                std::string(mode == output_mode::update ? "Update" : "Complete") +
                " output mode, only in Append output mode");
  if (mode == output_mode::complete && !aggregated)
    throw error(
        "complete output mode not supported when there are no streaming aggregations on streaming "
        "DataFrames; use append or update output mode");
  if (mode == output_mode::complete && aggregated && find_aggregate(plan)->op)
    throw error(
        "complete output mode not supported for session window aggregations on streaming DataFrames: a session's "
        "state is dropped once the watermark passes it; use append or update output mode");
  if (mode == output_mode::append && aggregated && !groups_by_watermarked_time(*find_aggregate(plan)))
    throw error(
        "append output mode not supported when there are streaming aggregations on streaming DataFrames "
        "without watermark; group by window(...) over a column given to with_watermark(column, delay), or use "
        "update or complete output mode");
}

}  // namespace flow
