// The rule-based optimizer: rewrites a logical plan into one with the same result that runs cheaper.
// compile_graph and append_plan run it, and explain() shows its result. Its rule:
//   column pruning below a filter: select(exprs) over where(p) over X needs only the columns that exprs
//   and p read, so a select of just those (zero-copy) goes between X and the filter, and the filter
//   copies the kept rows of those columns only (a filter copies every column of its input).
#pragma once

#include "flow/plan.hpp"

namespace flow {

// The plan with every rule applied, bottom up; plan itself when no rule applies. Nodes are not modified.
plan_ptr optimize(const plan_ptr& plan);

}  // namespace flow
