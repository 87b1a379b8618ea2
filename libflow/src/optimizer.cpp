#include "flow/optimizer.hpp"

#include <set>

namespace flow {

namespace {

// Rule: select over where over X -> select over where over select(the columns both read) over X.
plan_ptr prune_below_filter(const plan_ptr& project) {
  const plan_ptr& filter = project->children.front();
  if (filter->kind != plan_kind::filter) return project;
  const plan_ptr& input = filter->children.front();
  std::set<std::size_t> used;
  if (!collect_columns_read(filter->predicate, *input->output, used)) return project;
  for (const auto& e : project->exprs)
    if (!collect_columns_read(e, *input->output, used)) return project;
  if (used.size() == input->output->size() || used.empty()) return project;
  std::vector<expr> columns;
  for (auto index : used) columns.push_back(col((*input->output)[index].name));
  return make_project(make_filter(make_project(input, std::move(columns)), filter->predicate), project->exprs);
}

}  // namespace

plan_ptr optimize(const plan_ptr& plan) {
  if (!plan) return plan;
  std::vector<plan_ptr> children;
  bool changed = false;
  for (const auto& child : plan->children) {
    children.push_back(optimize(child));
    changed = changed || children.back() != child;
  }
  plan_ptr result = plan;
  if (changed) {
    auto copy = std::make_shared<plan_node>(*plan);
    copy->children = std::move(children);
    result = copy;
  }
  return result->kind == plan_kind::project ? prune_below_filter(result) : result;
}

}  // namespace flow
