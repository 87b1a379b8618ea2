// Stateless operators (project, filter) and the output-mode / aggregate-kind names.
#include "flow/operators.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "flow/plan_codec.hpp"

namespace flow {

std::string_view to_string(output_mode m) {
  switch (m) {
    case output_mode::append: return "append";
    case output_mode::update: return "update";
    case output_mode::complete: return "complete";
  }
  return "?";
}

output_mode parse_output_mode(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "append") return output_mode::append;
  if (lower == "update") return output_mode::update;
  if (lower == "complete") return output_mode::complete;
  throw error("unknown output mode '" + std::string(text) + "'; use append, update or complete");
}

std::string_view to_string(agg_kind k) {
  switch (k) {
    case agg_kind::sum: return "sum";
    case agg_kind::count: return "count";
    case agg_kind::min: return "min";
    case agg_kind::max: return "max";
    case agg_kind::avg: return "avg";
  }
  return "?";
}

namespace {

// "(a * b) AS total" for aliases, the plain name otherwise (Spark's explain style).
std::string describe_expr(const expr& e) {
  if (!e.valid()) return e.name();
  const bool aliased = e.node().kind == expr_kind::alias;
  const expr_node& inner = aliased ? e.node().children[0].node() : e.node();
  // explode's output is named "col": show the call itself.
  std::string text = inner.kind == expr_kind::explode ? "explode(" + inner.children[0].name() + ")"
                     : aliased                        ? e.node().children[0].name()
                                                      : e.name();
  return aliased || inner.kind == expr_kind::explode ? text + " AS " + e.name() : text;
}

void check_input(const schema& expected, const batch& input, std::string_view op) {
  if (input.schema().size() != expected.size()) {
    throw error(std::string(op) + ": the batch has schema (" + input.schema().to_string() +
                "), but the operator was built for (" + expected.to_string() + ")");
  }
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (input.schema()[i].type != expected[i].type) {
      throw error(std::string(op) + ": column '" + input.schema()[i].name + "' is " +
                  std::string(type_name(input.schema()[i].type)) + " in the batch but " +
                  std::string(type_name(expected[i].type)) + " in the operator's input schema (" +
                  expected.to_string() + ")");
    }
  }
}

}  // namespace

project_operator::project_operator(const schema& input, const std::vector<expr>& exprs) {
  if (exprs.empty()) throw error("select(): needs at least one expression");
  std::vector<field> fields;
  std::vector<std::string> generators;
  for (const auto& e : exprs) {
    exprs_.push_back(bind_select_item(e, input));
    if (exprs_.back().is_generator()) generators.push_back(describe_expr(e));
    fields.push_back(field{exprs_.back().name(), exprs_.back().type(), exprs_.back().nullable()});
  }
  if (generators.size() > 1) {
    std::string found;
    for (const auto& g : generators) found += (found.empty() ? "" : ", ") + g;
    throw error("select(): only one generator (explode) is allowed per select, but found " +
                std::to_string(generators.size()) + ": " + found +
                " (Spark: Only one generator allowed per select clause); explode in separate selects");
  }
  output_ = make_schema(std::move(fields));
  std::set<std::size_t> read;
  if (std::all_of(exprs.begin(), exprs.end(), [&](const expr& e) { return collect_columns_read(e, input, read); }))
    columns_read_.emplace(read.begin(), read.end());
  for (const auto& e : exprs) {
    const expr_node* node = &e.node();
    while (node->kind == expr_kind::alias) node = &node->children[0].node();
    if (node->kind != expr_kind::column_ref) {
      input_columns_.clear();
      break;
    }
    input_columns_.push_back(input.index_of(node->name));
  }
}

namespace {

// The elements of the list rows as one string column: every element of every row, in row order.
// explode's output column: every element of lists, in order. The elements of consecutive rows lie one
// after the other in lists' buffers, laid out as a string column's (offsets + chars), so the range is
// copied whole instead of element by element.
column list_elements(const column& lists, std::size_t total) {
  const column_data& in = *lists.data();
  const std::size_t first = in.list_offsets[lists.offset()];
  const std::uint32_t base = in.offsets[first];
  auto out = std::make_shared<column_data>();
  out->type = type_id::string;
  out->length = total;
  out->offsets.assign(in.offsets.begin() + static_cast<std::ptrdiff_t>(first),
                      in.offsets.begin() + static_cast<std::ptrdiff_t>(first + total + 1));
  for (auto& offset : out->offsets) offset -= base;
  out->chars.assign(in.chars, base, out->offsets.back());
  return column(std::move(out));
}

}  // namespace

batch project_operator::apply(const batch& input) const {
  std::vector<column> columns;
  columns.reserve(exprs_.size());
  const auto generator = std::find_if(exprs_.begin(), exprs_.end(), [](const bound_expr& e) { return e.is_generator(); });
  if (!input_columns_.empty() && input.selection()) {
    for (auto c : input_columns_) columns.push_back(input.base_col(c));
    return batch::selected(output_, std::move(columns), input.selection_ref());
  }
  if (generator == exprs_.end()) {
    for (const auto& e : exprs_) columns.push_back(e.evaluate(input));
    return batch(output_, std::move(columns));
  }
  // explode: one output row per list element (null and empty lists give none); the other expressions
  // are evaluated once on the input and their rows repeated through an index of source rows.
  const column lists = generator->evaluate_generator_input(input);
  std::vector<std::uint32_t> source_rows;
  for (std::size_t i = 0; i < lists.size(); ++i) {
    source_rows.insert(source_rows.end(), lists.list_size(i), static_cast<std::uint32_t>(i));
  }
  for (const auto& e : exprs_) {
    columns.push_back(&e == &*generator ? list_elements(lists, source_rows.size()) : take_rows(e.evaluate(input), source_rows));
  }
  return batch(output_, std::move(columns));
}

std::optional<operator_descriptor> project_operator::descriptor() const {
  codec_writer arguments;
  for (const auto& e : exprs_) arguments.write(e.source());
  return operator_descriptor{"project", arguments.text()};
}

std::string project_operator::describe() const {
  std::string out = "Project [";
  for (std::size_t i = 0; i < exprs_.size(); ++i) out += (i ? ", " : "") + describe_expr(exprs_[i].source());
  return out + "]";
}

filter_operator::filter_operator(const schema_ptr& input, const expr& predicate)
    : predicate_(bind(predicate, *input)), output_(input) {
  if (predicate_.type() != type_id::boolean) {
    throw error("filter/where: the condition '" + predicate.name() + "' is " +
                std::string(type_name(predicate_.type())) + ", not boolean; use a comparison such as (" +
                predicate.name() + " > 0)");
  }
}

batch filter_operator::apply(const batch& input) const {
  check_input(*output_, input, "Filter " + predicate_.name());
  const column keep_column = predicate_.evaluate(input);
  const std::size_t n = keep_column.size();
  std::vector<std::uint32_t> rows;
  if (keep_column.has_nulls()) {
    std::vector<std::uint8_t> keep(keep_column.bools(), keep_column.bools() + n);
    for (std::size_t i = 0; i < n; ++i) keep[i] &= keep_column.valid(i) ? 1 : 0;  // null -> dropped
    rows = kept_rows(keep.data(), n);
  } else {
    rows = kept_rows(keep_column.bools(), n);
  }
  if (rows.size() == n) return input;
  if (rows.empty()) return batch::empty(output_);
  // The kept rows are handed on as a selection of the input's columns, not copied; a selection of a selection
  // (chained filters) indexes the same columns.
  if (const auto* outer = input.selection()) {
    for (auto& row : rows) row = (*outer)[row];
  }
  std::vector<column> base;
  base.reserve(input.num_columns());
  for (std::size_t c = 0; c < input.num_columns(); ++c) base.push_back(input.base_col(c));
  return batch::selected(output_, std::move(base), std::make_shared<const std::vector<std::uint32_t>>(std::move(rows)));
}

std::string filter_operator::describe() const { return "Filter " + predicate_.name(); }

std::optional<operator_descriptor> filter_operator::descriptor() const {
  return operator_descriptor{"filter", encode_expr(predicate_.source())};
}

}  // namespace flow
