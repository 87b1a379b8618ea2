#include "flow/join.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "flow/plan_codec.hpp"

namespace flow {

namespace {

struct join_type_name {
  join_type type;
  std::string_view names[3];
};

constexpr join_type_name join_type_names[] = {
    {join_type::inner, {"inner", "inner", "inner"}},
    {join_type::left_outer, {"left_outer", "leftouter", "left"}},
    {join_type::left_semi, {"left_semi", "leftsemi", "semi"}},
    {join_type::left_anti, {"left_anti", "leftanti", "anti"}},
    {join_type::right_outer, {"right_outer", "rightouter", "right"}},
    {join_type::full_outer, {"full_outer", "fullouter", "full"}},
};

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool keeps_right_columns(join_type type) { return type != join_type::left_semi && type != join_type::left_anti; }

// The index of column `name` on one side of a join, with the side in the error.
std::size_t key_index(const schema& side, const std::string& name, std::string_view which) {
  auto index = side.find(name);
  if (!index) {
    throw error("join: key column '" + name + "' is not a column of the " + std::string(which) + " side [" +
                side.to_string() + "]; join on columns both sides have");
  }
  return *index;
}

std::vector<std::size_t> other_columns(const schema& side, const std::vector<std::string>& keys) {
  std::vector<std::size_t> rest;
  for (std::size_t i = 0; i < side.size(); ++i) {
    if (std::find(keys.begin(), keys.end(), side[i].name) == keys.end()) rest.push_back(i);
  }
  return rest;
}

std::vector<column> key_columns_of(const batch& rows, const std::vector<std::size_t>& indexes) {
  std::vector<column> columns;
  for (auto i : indexes) columns.push_back(rows.col(i));
  return columns;
}

// rows followed by one row of nulls (every column made nullable).
batch with_null_row(const batch& rows) {
  std::vector<field> fields;
  std::vector<column> columns;
  for (std::size_t c = 0; c < rows.num_columns(); ++c) {
    field f = rows.schema()[c];
    f.nullable = true;
    fields.push_back(f);
    column_builder out(f.type, rows.num_rows() + 1);
    for (std::size_t r = 0; r < rows.num_rows(); ++r) out.append_from(rows.col(c), r);
    out.append_null();
    columns.push_back(out.finish());
  }
  return batch(make_schema(std::move(fields)), std::move(columns));
}

}  // namespace

std::string_view to_string(join_type t) {
  for (const auto& entry : join_type_names) {
    if (entry.type == t) return entry.names[0];
  }
  return "unknown";
}

join_type parse_join_type(std::string_view text) {
  const std::string wanted = lower(text);
  for (const auto& entry : join_type_names) {
    for (auto name : entry.names) {
      if (wanted == name) return entry.type;
    }
  }
  if (wanted == "outer") return join_type::full_outer;
  throw error("join: unsupported join type '" + std::string(text) +
              "'; supported join types include: inner, outer, full, fullouter, full_outer, left, leftouter, "
              "left_outer, right, rightouter, right_outer, semi, leftsemi, left_semi, anti, leftanti, left_anti");
}

schema_ptr join_output_schema(const schema& left, const schema& right, const std::vector<std::string>& keys,
                              join_type type) {
  if (keys.empty()) throw error("join: give at least one key column (joins without keys are not supported)");
  std::vector<field> fields;
  for (const auto& name : keys) {
    const field& l = left[key_index(left, name, "left (stream)")];
    const field& r = right[key_index(right, name, "right (static)")];
    if (l.type != r.type) {
      throw error("join: key column '" + name + "' is " + std::string(type_name(l.type)) + " on the left and " +
                  std::string(type_name(r.type)) + " on the right; cast one side to the other's type first, e.g. "
                  "select(col(\"" + name + "\").cast(\"" + std::string(type_name(l.type)) + "\"))");
    }
    if (std::count(keys.begin(), keys.end(), name) > 1) throw error("join: key column '" + name + "' is given twice");
    fields.push_back(l);
  }
  for (auto i : other_columns(left, keys)) fields.push_back(left[i]);
  if (keeps_right_columns(type)) {
    for (auto i : other_columns(right, keys)) {
      field f = right[i];
      if (type == join_type::left_outer) f.nullable = true;
      fields.push_back(f);
    }
  }
  return make_schema(std::move(fields));
}

schema_ptr join_output_schema(const schema& left, const schema& right, join_type type) {
  std::vector<field> fields = left.fields();
  for (const auto& f : right.fields()) {
    if (left.find(f.name)) {
      throw error("join: both sides have a column '" + f.name + "', which a join condition cannot tell apart; "
                  "rename one side's first (select(col(\"" + f.name + "\").as(...), ...)), or join on the column "
                  "with join(other, {\"" + f.name + "\"}, type)");
    }
  }
  if (keeps_right_columns(type)) {
    for (field f : right.fields()) {
      if (type == join_type::left_outer) f.nullable = true;
      fields.push_back(f);
    }
  }
  return make_schema(std::move(fields));
}

// ---------------------------------------------------------------- join_table

join_table::join_table(const batch& rows, const std::vector<std::string>& keys) {
  std::vector<std::size_t> indexes;
  std::vector<type_id> types;
  for (const auto& name : keys) {
    indexes.push_back(key_index(rows.schema(), name, "right (static)"));
    types.push_back(rows.schema()[indexes.back()].type);
  }
  layout_ = key_layout(types);
  source_ = rows;
  rows_ = with_null_row(rows);
  null_row_ = static_cast<std::uint32_t>(rows.num_rows());
  if (keys.empty()) return;  // a join on a condition probes no index
  const auto key_columns = key_columns_of(rows, indexes);
  const encoded_keys encoded = encode_keys(layout_, key_columns, rows.num_rows());
  for (std::size_t r = 0; r < rows.num_rows(); ++r) {
    const bool null_key = std::any_of(key_columns.begin(), key_columns.end(), [&](const column& c) { return c.is_null(r); });
    if (!null_key) index_[std::string(encoded.key(r))].push_back(static_cast<std::uint32_t>(r));
  }
  if (keys.size() == 1 && (types[0] == type_id::int64 || types[0] == type_id::timestamp)) build_direct(key_columns[0]);
}

void join_table::build_direct(const column& keys) {
  // At most this many slots per static row (and at least 4096 in all): a sparse key keeps the hash index.
  constexpr std::uint64_t slots_per_row = 4, min_slots = 4096;
  std::optional<std::int64_t> low, high;
  for (std::size_t r = 0; r < keys.size(); ++r) {
    if (keys.is_null(r)) continue;
    const std::int64_t v = keys.ints()[r];
    low = std::min(v, low.value_or(v));
    high = std::max(v, high.value_or(v));
  }
  if (!low) return;
  const std::uint64_t slots = static_cast<std::uint64_t>(*high) - static_cast<std::uint64_t>(*low) + 1;
  if (slots == 0 || slots > std::max(min_slots, slots_per_row * keys.size())) return;
  direct_base_ = *low;
  // A counting sort of the rows by key, each key's rows in row order.
  direct_first_.assign(slots + 1, 0);
  for (std::size_t r = 0; r < keys.size(); ++r)
    if (!keys.is_null(r)) ++direct_first_[static_cast<std::uint64_t>(keys.ints()[r]) - static_cast<std::uint64_t>(*low) + 1];
  for (std::size_t s = 0; s < slots; ++s) direct_first_[s + 1] += direct_first_[s];
  direct_rows_.resize(direct_first_.back());
  std::vector<std::uint32_t> next(direct_first_.begin(), direct_first_.end() - 1);
  for (std::size_t r = 0; r < keys.size(); ++r)
    if (!keys.is_null(r))
      direct_rows_[next[static_cast<std::uint64_t>(keys.ints()[r]) - static_cast<std::uint64_t>(*low)]++] = static_cast<std::uint32_t>(r);
  for (std::size_t s = 0; s < slots; ++s)
    if (direct_first_[s + 1] - direct_first_[s] > 1) return;
  direct_only_.assign(slots + 1, no_row);
  for (std::size_t s = 0; s < slots; ++s)
    if (direct_first_[s + 1] > direct_first_[s]) direct_only_[s] = direct_rows_[direct_first_[s]];
}

std::span<const std::uint32_t> join_table::matches(std::string_view key) const {
  auto it = index_.find(key);
  if (it == index_.end()) return {};
  return it->second;
}

// ---------------------------------------------------------------- stream_static_join_operator

namespace {

void refuse_right_and_full(join_type type) {
  if (type == join_type::right_outer || type == join_type::full_outer) {
    throw error("join: " + std::string(to_string(type)) +
                " is not supported with a static data frame on the right; put the static frame on the left side of "
                "a static join, or use inner, left_outer, left_semi or left_anti");
  }
}

// Pairs of stream rows and static rows whose condition is evaluated in one batch, at most.
constexpr std::size_t pairs_per_evaluation = std::size_t{1} << 16;

}  // namespace

stream_static_join_operator::stream_static_join_operator(schema_ptr left, const batch& right, std::vector<std::string> keys,
                                                         join_type type)
    : left_(std::move(left)), keys_(std::move(keys)), type_(type) {
  refuse_right_and_full(type_);
  output_ = join_output_schema(*left_, right.schema(), keys_, type_);
  for (const auto& name : keys_) left_keys_.push_back(*left_->find(name));
  left_rest_ = other_columns(*left_, keys_);
  if (keeps_right_columns(type_)) right_rest_ = other_columns(right.schema(), keys_);
  table_ = std::make_shared<const join_table>(right, keys_);
}

stream_static_join_operator::stream_static_join_operator(schema_ptr left, const batch& right, const expr& condition,
                                                         join_type type)
    : left_(std::move(left)), condition_expr_(condition), type_(type) {
  refuse_right_and_full(type_);
  if (!condition.valid()) throw error("join: the condition is an empty expression");
  output_ = join_output_schema(*left_, right.schema(), type_);
  std::vector<field> pair_fields = left_->fields();
  for (const auto& f : right.schema().fields()) pair_fields.push_back(f);
  pairs_ = make_schema(std::move(pair_fields));
  condition_ = bind(condition, *pairs_);
  if (condition_.type() != type_id::boolean) {
    throw error("join: the condition '" + condition.name() + "' is " + std::string(type_name(condition_.type())) +
                ", not boolean; use a comparison such as (col(\"a\") == col(\"b\"))");
  }
  for (std::size_t i = 0; i < left_->size(); ++i) left_rest_.push_back(i);
  if (keeps_right_columns(type_)) {
    for (std::size_t i = 0; i < right.num_columns(); ++i) right_rest_.push_back(i);
  }
  table_ = std::make_shared<const join_table>(right, keys_);
}

stream_static_join_operator::matches_by_row stream_static_join_operator::match_keys(const batch& input) const {
  // A selection's key column is read where it is, not copied first.
  if (table_->direct()) return match_direct(input.base_col(left_keys_[0]), input.selection());
  const auto keys = key_columns_of(input, left_keys_);
  const encoded_keys encoded = encode_keys(table_->layout(), keys, input.num_rows());
  matches_by_row m;
  m.offsets.push_back(0);
  for (std::size_t r = 0; r < input.num_rows(); ++r) {
    const bool null_key = std::any_of(keys.begin(), keys.end(), [&](const column& c) { return c.is_null(r); });
    if (!null_key) {
      const auto found = table_->matches(encoded.key(r));
      m.match_rows.insert(m.match_rows.end(), found.begin(), found.end());
    }
    m.offsets.push_back(static_cast<std::uint32_t>(m.match_rows.size()));
  }
  return m;
}

stream_static_join_operator::matches_by_row stream_static_join_operator::match_direct(
    const column& keys, const std::vector<std::uint32_t>* rows) const {
  const std::size_t n = rows ? rows->size() : keys.size();
  matches_by_row m;
  m.offsets.resize(n + 1);
  m.offsets[0] = 0;
  m.match_rows.reserve(n);
  const std::int64_t* values = keys.ints();
  const bool has_nulls = keys.has_nulls();
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t row = rows ? (*rows)[r] : r;
    if (!has_nulls || keys.valid(row)) {
      const auto found = table_->matches(values[row]);
      if (found.size() == 1) m.match_rows.push_back(found[0]);  // a dimension table's id: no range insert
      else m.match_rows.insert(m.match_rows.end(), found.begin(), found.end());
    }
    m.offsets[r + 1] = static_cast<std::uint32_t>(m.match_rows.size());
  }
  return m;
}

stream_static_join_operator::matches_by_row stream_static_join_operator::match_condition(const batch& input) const {
  const batch& right = table_->source();
  const std::size_t static_rows = right.num_rows();
  matches_by_row m;
  m.offsets.push_back(0);
  const std::size_t rows_per_evaluation = std::max<std::size_t>(1, pairs_per_evaluation / std::max<std::size_t>(1, static_rows));
  for (std::size_t first = 0; first < input.num_rows(); first += rows_per_evaluation) {
    const std::size_t rows = std::min(rows_per_evaluation, input.num_rows() - first);
    // Every pair of the stream rows [first, first + rows) and the static rows, stream row by stream row.
    std::vector<std::uint32_t> left_rows, right_rows;
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t s = 0; s < static_rows; ++s) {
        left_rows.push_back(static_cast<std::uint32_t>(first + r));
        right_rows.push_back(static_cast<std::uint32_t>(s));
      }
    }
    std::vector<column> columns;
    for (const auto& c : input.columns()) columns.push_back(take_rows(c, left_rows));
    for (const auto& c : right.columns()) columns.push_back(take_rows(c, right_rows));
    const column holds = condition_.evaluate(batch(pairs_, std::move(columns)));
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t s = 0; s < static_rows; ++s) {
        const std::size_t pair = r * static_rows + s;
        if (holds.valid(pair) && holds.bools()[pair]) m.match_rows.push_back(static_cast<std::uint32_t>(s));
      }
      m.offsets.push_back(static_cast<std::uint32_t>(m.match_rows.size()));
    }
  }
  return m;
}

void stream_static_join_operator::inner_direct_pairs(const batch& input, std::vector<std::uint32_t>& left_rows,
                                                     std::vector<std::uint32_t>& right_rows) const {
  const column& keys = input.base_col(left_keys_[0]);
  const std::vector<std::uint32_t>* rows = input.selection();
  const std::int64_t* values = keys.ints();
  const bool has_nulls = keys.has_nulls();
  left_rows.reserve(input.num_rows());
  right_rows.reserve(input.num_rows());
  for (std::size_t r = 0; r < input.num_rows(); ++r) {
    const std::size_t row = rows ? (*rows)[r] : r;
    if (has_nulls && !keys.valid(row)) continue;
    for (auto match : table_->matches(values[row])) {
      left_rows.push_back(static_cast<std::uint32_t>(r));
      right_rows.push_back(match);
    }
  }
}

void stream_static_join_operator::inner_unique_pairs(const batch& input, std::vector<std::uint32_t>& left_rows,
                                                     std::vector<std::uint32_t>& right_rows) const {
  const column& keys = input.base_col(left_keys_[0]);
  const std::vector<std::uint32_t>* rows = input.selection();
  const std::int64_t* values = keys.ints();
  const bool has_nulls = keys.has_nulls();
  const std::size_t n = input.num_rows();
  left_rows.resize(n);
  right_rows.resize(n);
  std::size_t pairs = 0;
  // Each row's pair is written, and the next one overwrites it unless it matched.
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t row = rows ? (*rows)[r] : r;
    const std::uint32_t match = has_nulls && !keys.valid(row) ? join_table::no_row : table_->only_match(values[row]);
    left_rows[pairs] = static_cast<std::uint32_t>(r);
    right_rows[pairs] = match;
    pairs += match != join_table::no_row;
  }
  left_rows.resize(pairs);
  right_rows.resize(pairs);
}

batch stream_static_join_operator::apply(const batch& input) const {
  std::vector<std::uint32_t> left_rows, right_rows;
  const bool inner_on_key = type_ == join_type::inner && !condition_expr_.valid();
  if (inner_on_key && table_->direct_unique()) inner_unique_pairs(input, left_rows, right_rows);
  else if (inner_on_key && table_->direct()) inner_direct_pairs(input, left_rows, right_rows);
  else pair_rows(input, left_rows, right_rows);
  return joined(input, std::move(left_rows), right_rows);
}

void stream_static_join_operator::pair_rows(const batch& input, std::vector<std::uint32_t>& left_rows,
                                            std::vector<std::uint32_t>& right_rows) const {
  const matches_by_row m = condition_expr_.valid() ? match_condition(input) : match_keys(input);
  left_rows.reserve(input.num_rows());
  for (std::size_t r = 0; r < input.num_rows(); ++r) {
    const std::span<const std::uint32_t> found(m.match_rows.data() + m.offsets[r], m.offsets[r + 1] - m.offsets[r]);
    const auto row = static_cast<std::uint32_t>(r);
    switch (type_) {
      case join_type::left_semi:
        if (!found.empty()) left_rows.push_back(row);
        break;
      case join_type::left_anti:
        if (found.empty()) left_rows.push_back(row);
        break;
      case join_type::left_outer:
        if (found.empty()) {
          left_rows.push_back(row);
          right_rows.push_back(table_->null_row());
        }
        [[fallthrough]];
      default:
        for (auto match : found) {
          left_rows.push_back(row);
          right_rows.push_back(match);
        }
    }
  }
}

batch stream_static_join_operator::joined(const batch& input, std::vector<std::uint32_t> left_rows,
                                          const std::vector<std::uint32_t>& right_rows) const {
  // Every row matched once (an inner join on a dimension table's id): the left columns pass as they are.
  bool every_row_once = left_rows.size() == input.num_rows();
  for (std::size_t r = 0; every_row_once && r < left_rows.size(); ++r) every_row_once = left_rows[r] == r;
  // The left columns of a selection (a filter's output) are taken from the columns it selects from, in one copy.
  const auto* selection = input.selection();
  if (selection) {
    for (auto& row : left_rows) row = (*selection)[row];
  }
  auto left_column = [&](std::size_t c) {
    return every_row_once && !selection ? input.col(c) : take_rows(input.base_col(c), left_rows);
  };
  // Only a left outer join pads with the null row; the others take from the rows as given (no validity to check).
  const batch& right = type_ == join_type::left_outer ? table_->rows() : table_->source();
  std::vector<column> columns;
  for (auto c : left_keys_) columns.push_back(left_column(c));
  for (auto c : left_rest_) columns.push_back(left_column(c));
  for (auto c : right_rest_) columns.push_back(take_rows(right.col(c), right_rows));
  return batch(output_, std::move(columns));
}

std::string stream_static_join_operator::describe() const {
  std::string on = condition_expr_.valid() ? condition_expr_.name() : "";
  for (const auto& k : keys_) on += (on.empty() ? "" : ", ") + k;
  return "StreamStaticJoin " + std::string(to_string(type_)) + " [" + on + "] with " +
         std::to_string(table_->source().num_rows()) + " static rows";
}

std::optional<operator_descriptor> stream_static_join_operator::descriptor() const {
  codec_writer out;
  out.write(to_string(type_)).write(std::to_string(keys_.size()));
  for (const auto& k : keys_) out.write(k);
  // No keys: a join on the condition, which follows.
  if (keys_.empty()) out.write(condition_expr_);
  const auto bytes = encode(table_->source());
  out.write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  return operator_descriptor{"stream_static_join", out.text()};
}

operator_ptr stream_static_join_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  const join_type type = parse_join_type(reader.read_string());
  const std::string count = reader.read_string();
  std::size_t key_count = 0;
  try {
    key_count = std::stoul(count);
  } catch (const std::exception&) {
    throw error("stream_static_join: the key count '" + count + "' is not a number");
  }
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < key_count; ++i) keys.push_back(reader.read_string());
  const expr condition = keys.empty() ? reader.read_expr() : expr{};
  const std::string bytes = reader.read_string();
  reader.expect_end();
  const batch right = decode_batch(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (keys.empty()) return std::make_shared<stream_static_join_operator>(input, right, condition, type);
  return std::make_shared<stream_static_join_operator>(input, right, std::move(keys), type);
}

}  // namespace flow
