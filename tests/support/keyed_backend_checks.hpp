// A keyed operator whose state uses every kind of state column, and a driver that feeds it epochs: for
// checking that a state backend keeps exactly what the in-memory state keeps.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collecting_context.hpp"
#include "flow/keyed_operator.hpp"
#include "test_support.hpp"

namespace flow::test {

struct key_summary {
  std::int64_t sum = 0;
  std::int64_t rows = 0;
  double half = 0.0;
  std::optional<std::string> label;
  std::vector<std::string> labels;  // the last three labels
  bool odd = false;
  timestamp last_seen;
  window_value span;
};

// Input (name string, id int64, amount int64, label string). Per key (name, id): sums amount and keeps
// the labels; a row whose amount is null removes its key. Emits the changed keys' sums at the epoch's end.
class summary_by_key final : public keyed_operator<key_summary> {
 public:
  static schema_ptr input_schema() {
    return make_schema({{"name", type_id::string, true},
                        {"id", type_id::int64, true},
                        {"amount", type_id::int64, true},
                        {"label", type_id::string, true}});
  }
  explicit summary_by_key(std::vector<std::string> keys = {"name", "id"})
      : keyed_operator({.name = "summary_by_key",
                        .input = input_schema(),
                        .keys = std::move(keys),
                        .output = {{"sum", type_id::int64}, {"rows", type_id::int64}},
                        .state = {{"sum", type_id::int64},
                                  {"rows", type_id::int64},
                                  {"half", type_id::float64},
                                  {"label", type_id::string},
                                  {"labels", type_id::string_list},
                                  {"odd", type_id::boolean},
                                  {"last_seen", type_id::timestamp},
                                  {"span", type_id::window}}}) {}

  void process(const batch& rows, const row_keys& keys, keyed_state<key_summary>& state,
               operator_context&) const override {
    const column& amount = rows.col(2);
    const column& label = rows.col(3);
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      if (!amount.valid(i)) {
        state.remove(keys[i]);
        continue;
      }
      key_summary& s = state.get(keys[i]);
      s.sum += amount.ints()[i];
      ++s.rows;
      s.half = static_cast<double>(s.sum) * -0.5;
      if (label.valid(i)) {
        s.label = std::string(label.str(i));
        s.labels.push_back(*s.label);
        if (s.labels.size() > 3) s.labels.erase(s.labels.begin());
      }
      s.odd = s.sum % 2 != 0;
      s.last_seen = timestamp{s.rows * 1000};
      s.span = window_value{timestamp{s.sum}, timestamp{s.sum + 10}};
    }
  }
  void end_epoch(keyed_state<key_summary>& state, operator_context& ctx) const override {
    auto out = output_rows();
    state.for_each_changed([&](key_ref key, const key_summary& s) { out.add(key).add(s.sum).add(s.rows); });
    if (out.num_rows() > 0) ctx.emit(out.finish());
  }
  void save(const key_summary& s, row_writer& out) const override {
    out.add(s.sum).add(s.rows).add(s.half);
    if (s.label) out.add(*s.label);
    else out.add_null();
    out.add_list(s.labels).add(s.odd).add(s.last_seen).add(s.span);
  }
  key_summary load(const batch& saved, std::size_t row) const override {
    key_summary s;
    s.sum = saved.col(0).ints()[row];
    s.rows = saved.col(1).ints()[row];
    s.half = saved.col(2).doubles()[row];
    if (saved.col(3).valid(row)) s.label = std::string(saved.col(3).str(row));
    for (std::size_t j = 0; j < saved.col(4).list_size(row); ++j) s.labels.emplace_back(saved.col(4).list_item(row, j));
    s.odd = saved.col(5).bools()[row];
    s.last_seen = timestamp{saved.col(6).ints()[row]};
    s.span = saved.col(7).window(row);
    return s;
  }
};

// What one state went through: per epoch the emitted rows and take_changes(), sorted; then snapshot().
struct backend_run {
  std::vector<std::vector<std::vector<value>>> emitted, changes;
  std::vector<std::vector<value>> snapshot;
  std::size_t num_rows = 0;
};

// Feeds the epochs (each a list of input batches) to state and takes its changes after each.
inline backend_run run_epochs(const summary_by_key& op, operator_state& state, const std::vector<std::vector<batch>>& epochs) {
  backend_run run;
  collecting_context ctx;
  const stream_operator& as_operator = op;
  for (const auto& epoch : epochs) {
    for (const batch& b : epoch) as_operator.process(b, 0, &state, ctx);
    as_operator.end_epoch(&state, ctx);
    run.emitted.push_back(sorted_rows(ctx.take(op.output_schema())));
    run.changes.push_back(sorted_rows(state.take_changes()));
    ctx.set_epoch(ctx.epoch() + 1);
  }
  run.snapshot = sorted_rows(state.snapshot());
  run.num_rows = state.num_rows();
  return run;
}

inline bool operator==(const backend_run& a, const backend_run& b) {
  return a.emitted == b.emitted && a.changes == b.changes && a.snapshot == b.snapshot && a.num_rows == b.num_rows;
}

// Epochs over a few keys that add, update, remove and re-add keys, with and without labels.
inline std::vector<std::vector<batch>> mixed_epochs() {
  const schema_ptr in = summary_by_key::input_schema();
  auto row = [](value name, std::int64_t id, value amount, value label) {
    return std::vector<value>{std::move(name), id, std::move(amount), std::move(label)};
  };
  const value none = null_value{};
  return {
      {make_batch(in, {row(std::string("a"), 1, std::int64_t{5}, std::string("x")), row(none, 2, std::int64_t{0}, none),
                       row(std::string("b"), 1, std::int64_t{3}, none)}),
       make_batch(in, {row(std::string("a"), 1, std::int64_t{2}, std::string("y"))})},
      {make_batch(in, {row(std::string("b"), 1, none, none), row(std::string("c"), 7, std::int64_t{-4}, std::string(""))})},
      {make_batch(in, {row(std::string("a"), 1, std::int64_t{1}, std::string("z")),
                       row(std::string("a"), 1, std::int64_t{1}, std::string("w"))})},
      {make_batch(in, {row(std::string("b"), 1, std::int64_t{9}, none), row(std::string("c"), 7, none, none),
                       row(std::string("d"), 4, std::int64_t{1}, none), row(std::string("d"), 4, none, none)})},
      {},
  };
}

}  // namespace flow::test
