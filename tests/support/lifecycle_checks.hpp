#pragma once
// Picking actions of one kind out of what the query lifecycle emitted (tests of query_lifecycle).
#include <variant>
#include <vector>

#include "flow/runtime/query_lifecycle.hpp"

namespace flow::test {

template <class A>
std::vector<A> all_of(const runtime::lifecycle_actions_list& actions) {
  std::vector<A> out;
  for (const auto& a : actions)
    if (const auto* found = std::get_if<A>(&a)) out.push_back(*found);
  return out;
}

template <class A>
bool has(const runtime::lifecycle_actions_list& actions) {
  return !all_of<A>(actions).empty();
}

}  // namespace flow::test
