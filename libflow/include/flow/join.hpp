// Joins of a stream with a static data frame (Spark's stream-static join), on equal key columns or on a
// condition over both sides' columns. The
// static side is read once: join_table holds its rows and a hash table from each key to its rows, built
// once and shared, immutable, by every instance of the join (and shipped with the operator's descriptor,
// "stream_static_join", to other processes). docs/joins-and-dedup.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flow/keys.hpp"
#include "flow/operators.hpp"

namespace flow {

enum class join_type { inner, left_outer, left_semi, left_anti, right_outer, full_outer };
std::string_view to_string(join_type t);
// Spark's names and spellings: inner; left, leftouter, left_outer; right, rightouter, right_outer; full,
// outer, fullouter, full_outer; leftsemi, left_semi, semi; leftanti, left_anti, anti (any case). Throws
// flow::error listing them for anything else.
join_type parse_join_type(std::string_view text);

// The output of a join on key columns, as Spark's join(other, Seq(keys...), type) gives it: the keys
// (the left side's), the left side's other columns, then (not for semi and anti joins) the right side's
// other columns, nullable in a left outer join. Throws flow::error naming the column when a key is
// missing on either side or has different types on the two sides.
schema_ptr join_output_schema(const schema& left, const schema& right, const std::vector<std::string>& keys,
                              join_type type);

// The output of a join on a condition, as Spark's join(other, condition, type) gives it: the left side's
// columns, then (not for semi and anti joins) the right side's, nullable in a left outer join. Throws
// flow::error naming the column when both sides have a column of that name (the condition could not tell them
// apart).
schema_ptr join_output_schema(const schema& left, const schema& right, join_type type);

// The static side: its rows, and for each key the rows that have it (no keys: no index, a join on a
// condition). A row with a null key matches nothing (null = null is not true in SQL). Immutable.
class join_table {
 public:
  join_table(const batch& rows, const std::vector<std::string>& keys);
  const key_layout& layout() const { return layout_; }
  // The rows as given.
  const batch& source() const { return source_; }
  // The rows (every column nullable), then one row of nulls (index null_row()) that pads unmatched rows of an outer join.
  const batch& rows() const { return rows_; }
  std::uint32_t null_row() const { return null_row_; }
  // Indexes into rows() of the rows whose key is `key` (encoded with layout()); empty when none.
  std::span<const std::uint32_t> matches(std::string_view key) const;
  std::size_t num_keys() const { return index_.size(); }
  // One int64 or timestamp key whose values span a small range (an id of a dimension table): an array
  // indexed by value - smallest value finds its rows without encoding or hashing the key.
  bool direct() const { return !direct_first_.empty(); }
  // direct() only: the rows whose key is `key`; empty when none.
  std::span<const std::uint32_t> matches(std::int64_t key) const {
    const std::uint64_t slot = static_cast<std::uint64_t>(key) - static_cast<std::uint64_t>(direct_base_);
    if (slot >= direct_first_.size() - 1) return {};
    return {direct_rows_.data() + direct_first_[slot], direct_first_[slot + 1] - direct_first_[slot]};
  }
  // direct() and no key on two rows (a dimension table's primary key).
  bool direct_unique() const { return !direct_only_.empty(); }
  static constexpr std::uint32_t no_row = UINT32_MAX;
  // direct_unique() only: the row whose key is `key`, or no_row; without a branch on whether there is one.
  std::uint32_t only_match(std::int64_t key) const {
    const std::uint64_t slot = static_cast<std::uint64_t>(key) - static_cast<std::uint64_t>(direct_base_);
    return direct_only_[std::min<std::uint64_t>(slot, direct_only_.size() - 1)];
  }

 private:
  void build_direct(const column& keys);
  key_layout layout_;
  batch source_, rows_;
  std::uint32_t null_row_ = 0;
  // Looked up by string_view: probing a row's key allocates nothing.
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  std::unordered_map<std::string, std::vector<std::uint32_t>, key_hash, std::equal_to<>> index_;
  // direct(): value v's rows are direct_rows_[direct_first_[v - direct_base_], direct_first_[v - direct_base_ + 1]).
  std::int64_t direct_base_ = 0;
  std::vector<std::uint32_t> direct_first_, direct_rows_;
  // direct_unique(): value v's row is direct_only_[v - direct_base_] (no_row: none); one more no_row entry
  // that every value outside the range reads.
  std::vector<std::uint32_t> direct_only_;
};

// stream.join(static, keys, type): each stream batch joined with the static table, in whichever instance
// it arrives (no shuffle, no state). Spark's rules for a stream on the left: inner, left_outer, left_semi
// and left_anti; right_outer and full_outer are refused (flow::error) when the operator is built.
class stream_static_join_operator final : public stateless_operator {
 public:
  // right: the static side's rows (all of them, in one batch).
  stream_static_join_operator(schema_ptr left, const batch& right, std::vector<std::string> keys, join_type type);
  // On a boolean condition over the columns of both sides (a row pair matches where it is true; null is
  // false), evaluated for every pair of a stream row and a static row: meant for small static tables.
  stream_static_join_operator(schema_ptr left, const batch& right, const expr& condition, join_type type);
  // The factory registered as "stream_static_join".
  static operator_ptr from_arguments(const std::string& arguments, const schema_ptr& input);

  const schema_ptr& output_schema() const override { return output_; }
  batch apply(const batch& input) const override;
  std::string describe() const override;
  std::optional<operator_descriptor> descriptor() const override;
  join_type type() const { return type_; }

 private:
  // For each row of input: the static rows it matches are match_rows[offsets[row], offsets[row + 1]).
  struct matches_by_row {
    std::vector<std::uint32_t> offsets, match_rows;
  };
  matches_by_row match_keys(const batch& input) const;
  // table_->direct(): the one key column, at rows (null: every row).
  matches_by_row match_direct(const column& keys, const std::vector<std::uint32_t>* rows) const;
  matches_by_row match_condition(const batch& input) const;
  // The (input row, static row) pairs of the join: left_rows[i] with right_rows[i] (a left semi or anti join:
  // left_rows only; a left outer join pairs an unmatched row with table_->null_row()).
  void pair_rows(const batch& input, std::vector<std::uint32_t>& left_rows, std::vector<std::uint32_t>& right_rows) const;
  // pair_rows of an inner join on a direct index (a dimension table's id) in one pass, without matches_by_row.
  void inner_direct_pairs(const batch& input, std::vector<std::uint32_t>& left_rows, std::vector<std::uint32_t>& right_rows) const;
  // inner_direct_pairs on a unique key (table_->direct_unique()): one lookup per row, no branch per row.
  void inner_unique_pairs(const batch& input, std::vector<std::uint32_t>& left_rows, std::vector<std::uint32_t>& right_rows) const;
  // The output rows of the pairs.
  batch joined(const batch& input, std::vector<std::uint32_t> left_rows, const std::vector<std::uint32_t>& right_rows) const;

  schema_ptr left_;
  std::vector<std::string> keys_;
  expr condition_expr_;     // a join on a condition: the condition, bound to pairs_ as condition_
  schema_ptr pairs_;        // the left side's columns, then the right side's
  bound_expr condition_;
  join_type type_;
  std::vector<std::size_t> left_keys_, left_rest_, right_rest_;
  std::shared_ptr<const join_table> table_;
  schema_ptr output_;
};

}  // namespace flow
