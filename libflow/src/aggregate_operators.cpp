// The partial and final aggregation operators and the operator_state that holds their table.
#include "flow/aggregate_operators.hpp"

#include <utility>

namespace flow {

namespace {

// An aggregation table as an operator's state. Its changes are the groups end_epoch last emitted from
// (changed_since_emit just before the emit), which replace those groups in another copy.
class aggregate_table final : public operator_state {
 public:
  aggregate_table(const aggregate_operator& aggregate, bool durable)
      : table(aggregate.make_state()), changes(batch::empty(aggregate.state_schema())), durable_(durable) {}

  batch snapshot() const override { return table->snapshot(); }
  void restore(const batch& snapshot) override {
    table->restore(snapshot);
    changes = batch::empty(changes.schema_ref());
  }
  batch take_changes() override { return std::exchange(changes, batch::empty(changes.schema_ref())); }
  void apply_changes(const batch& rows) override { table->replace_groups(rows); }
  std::size_t num_rows() const override { return table->num_groups(); }
  std::size_t memory_bytes() const override { return table->memory_bytes(); }
  bool durable() const override { return durable_; }

  std::unique_ptr<aggregate_state> table;
  batch changes;

 private:
  bool durable_;
};

aggregate_table& table_of(operator_state* state, const stream_operator& op) {
  auto* table = dynamic_cast<aggregate_table*>(state);
  if (!table) throw error("'" + op.name() + "' was called without the state its make_state() makes");
  return *table;
}

void check_input(std::size_t input_index, const stream_operator& op) {
  if (input_index != 0) {
    throw error("'" + op.name() + "' has one input, but got a batch for input " + std::to_string(input_index));
  }
}

std::shared_ptr<const aggregate_operator> required(std::shared_ptr<const aggregate_operator> aggregate) {
  if (!aggregate) throw error("aggregation operator: the aggregate is missing");
  return aggregate;
}

}  // namespace

partial_aggregate_operator::partial_aggregate_operator(std::shared_ptr<const aggregate_operator> aggregate)
    : aggregate_(required(std::move(aggregate))) {}

std::unique_ptr<operator_state> partial_aggregate_operator::make_state() const {
  return std::make_unique<aggregate_table>(*aggregate_, false);
}

void partial_aggregate_operator::process(const batch& input, std::size_t input_index, operator_state* state,
                                         operator_context& ctx) const {
  check_input(input_index, *this);
  auto& scratch = *table_of(state, *this).table;
  scratch.update(input);
  if (scratch.num_groups() >= partial_flush_groups) end_epoch(state, ctx);
}

void partial_aggregate_operator::end_epoch(operator_state* state, operator_context& ctx) const {
  auto& scratch = *table_of(state, *this).table;
  if (scratch.num_groups() == 0) return;
  ctx.emit(scratch.snapshot());
  scratch.clear();
}

final_aggregate_operator::final_aggregate_operator(std::shared_ptr<const aggregate_operator> aggregate,
                                                   output_mode mode)
    : aggregate_(required(std::move(aggregate))), mode_(mode) {}

std::unique_ptr<operator_state> final_aggregate_operator::make_state() const {
  return std::make_unique<aggregate_table>(*aggregate_, true);
}

void final_aggregate_operator::process(const batch& input, std::size_t input_index, operator_state* state,
                                       operator_context&) const {
  check_input(input_index, *this);
  table_of(state, *this).table->merge(input);
}

void final_aggregate_operator::end_epoch(operator_state* state, operator_context& ctx) const {
  auto& table = table_of(state, *this);
  table.changes = table.table->changed_since_emit();
  batch out = table.table->emit(mode_);
  if (out.num_rows() > 0) ctx.emit(std::move(out));
}

}  // namespace flow
