// The built-in aggregation as two stream operators around aggregate_operator's hash table: a partial
// aggregation in the instances before the shuffle, and the final one after it, keyed by the grouping keys.
// Both ship to other processes (flow/operator_registry.hpp: "partial_aggregate", "final_aggregate"); their
// arguments (flow/plan_codec.hpp) are the aggregation's raw input schema, its keys and its aggregates
// (kind, input expression or none for count(*), output name), and for the final one the output mode.
#pragma once

#include <memory>
#include <string>

#include "flow/operators.hpp"

namespace flow {

// Folds input rows into a scratch table and emits them as partial aggregates (state-schema rows) at the end
// of each epoch, and sooner whenever the table holds partial_flush_groups groups. Its state is not durable:
// it is empty at every epoch's end.
class partial_aggregate_operator final : public stream_operator {
 public:
  static constexpr std::size_t partial_flush_groups = std::size_t{1} << 16;

  explicit partial_aggregate_operator(std::shared_ptr<const aggregate_operator> aggregate);
  // The factory registered as "partial_aggregate": input must be the aggregation's raw input schema.
  static operator_ptr from_arguments(const std::string& arguments, const schema_ptr& input);
  std::string name() const override { return "Partial" + aggregate_->describe(); }
  const schema_ptr& output_schema() const override { return aggregate_->state_schema(); }
  // The columns its keys and aggregates read (a csv source converts only those).
  std::optional<std::vector<std::size_t>> columns_read() const override;
  std::unique_ptr<operator_state> make_state() const override;
  void process(const batch& input, std::size_t input_index, operator_state* state, operator_context& ctx) const override;
  void end_epoch(operator_state* state, operator_context& ctx) const override;
  std::optional<operator_descriptor> descriptor() const override;
  const aggregate_operator& aggregate() const { return *aggregate_; }

 private:
  std::shared_ptr<const aggregate_operator> aggregate_;
};

// Merges partial aggregates into the groups of its partition (key_columns(): the grouping keys) and emits
// at each epoch's end what the output mode asks for: update, the groups changed in the epoch; complete,
// every group. Its state (the table) is durable, kept in the query's state backend (use_backend: in
// memory, or on RocksDB with the table as the cache of one epoch's groups); take_changes() is the groups
// the last epoch changed.
class final_aggregate_operator final : public stream_operator {
 public:
  final_aggregate_operator(std::shared_ptr<const aggregate_operator> aggregate, output_mode mode);
  // The factory registered as "final_aggregate": input must be the aggregation's state schema.
  static operator_ptr from_arguments(const std::string& arguments, const schema_ptr& input);
  std::string name() const override { return aggregate_->describe(); }
  const schema_ptr& output_schema() const override { return aggregate_->output_schema(); }
  std::vector<std::string> key_columns() const override { return aggregate_->key_names(); }
  std::unique_ptr<operator_state> make_state() const override;
  void process(const batch& input, std::size_t input_index, operator_state* state, operator_context& ctx) const override;
  void end_epoch(operator_state* state, operator_context& ctx) const override;
  std::optional<operator_descriptor> descriptor() const override;

 private:
  std::shared_ptr<const aggregate_operator> aggregate_;
  output_mode mode_;
};

}  // namespace flow
