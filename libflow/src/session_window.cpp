#include "flow/session_window.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>

#include "flow/aggregate_operators.hpp"
#include "flow/plan_codec.hpp"

#include "cell_encoding.hpp"

namespace flow {

namespace {

constexpr std::string_view epoch_column = "__changed_epoch";

const expr_node& unaliased(const expr& e) {
  const expr_node* node = &e.node();
  while (node->kind == expr_kind::alias) node = &node->children.front().node();
  return *node;
}

// The session window key's position, checked: exactly one, and the other keys plain columns.
std::size_t checked_session_key(const std::vector<expr>& keys) {
  const int index = session_window_key_index(keys);
  if (index < 0) throw error("session window aggregation: no session_window(...) among the grouping keys");
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (static_cast<int>(i) == index) continue;
    if (!keys[i].valid()) throw error("group_by(): key " + std::to_string(i) + " is an empty expression");
    if (is_session_window(unaliased(keys[i])))
      throw error("group_by(): only one session_window(...) key is supported");
    if (find_window(keys[i]))
      throw error("group_by(): session_window(...) cannot be combined with window(...) ('" + keys[i].name() + "')");
    if (keys[i].node().kind != expr_kind::column_ref)
      throw error("group_by(): with session_window(...) the other keys must be columns, but '" + keys[i].name() +
                  "' is an expression; add it as a column first (with_column)");
  }
  if (keys.size() < 2)
    throw error("group_by(): a streaming session window needs at least one key besides session_window(...) "
                "(Spark's rule: global session windows are not supported); add a key column such as a user id");
  return static_cast<std::size_t>(index);
}

keyed_operator_spec keyed_spec(const schema_ptr& input, const std::vector<expr>& keys) {
  const std::size_t session = checked_session_key(keys);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (i != session) names.push_back(keys[i].node().name);
  return {.name = "session_window", .input = input, .keys = std::move(names), .output = {},
          .state = {{"sessions", type_id::string_list}}};
}

// A session's window and last-change epoch, read from the front of its encoded row without decoding the rest.
struct session_header {
  std::int64_t start = 0, end = 0, changed_epoch = 0;
};

session_header read_header(std::string_view encoded) {
  detail::cell_reader reader(encoded, [] { return error("session window state: a truncated session row"); });
  session_header h;
  if (reader.valid()) {
    h.start = reader.int64();
    h.end = reader.int64();
  }
  if (reader.valid()) h.changed_epoch = reader.int64();
  return h;
}

}  // namespace

expr session_window(expr time_column, std::string_view gap) {
  if (!time_column.valid()) throw error("session_window(): the time column expression is empty");
  const std::int64_t gap_micros = parse_duration_micros(gap);
  if (gap_micros <= 0) throw error("session_window(): the gap '" + std::string(gap) + "' must be positive");
  return expr(std::make_shared<const expr_node>(
      expr_node{expr_kind::window, {std::move(time_column)}, {}, {}, {}, gap_micros, 0, 0}));
}

expr session_window(expr time_column, expr gap) {
  if (!time_column.valid()) throw error("session_window(): the time column expression is empty");
  if (!gap.valid()) throw error("session_window(): the gap expression is empty");
  return expr(std::make_shared<const expr_node>(
      expr_node{expr_kind::window, {std::move(time_column), std::move(gap)}, {}, {}, {}, 0, 0, 0}));
}

bool is_session_window(const expr_node& node) { return node.kind == expr_kind::window && node.window_slide == 0; }

int session_window_key_index(const std::vector<expr>& keys) {
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (keys[i].valid() && is_session_window(unaliased(keys[i]))) return static_cast<int>(i);
  return -1;
}

struct session_window_operator::impl {
  schema_ptr input;
  output_mode mode = output_mode::update;
  bound_expr time;
  std::int64_t gap = 0;  // 0: per row, from gap_text
  bound_expr gap_text;
  std::size_t session_key = 0;       // among the aggregation's keys
  std::size_t num_keys = 0;
  std::vector<std::size_t> other_keys;  // the aggregation's key positions of the operator's keys, in their order
  schema_ptr pre_input;                 // the input, then the row's own session [t, t + gap)
  std::shared_ptr<const aggregate_operator> aggregate;  // over pre_input, the session as a plain key column
  schema_ptr sessions;                  // an encoded session: window, changed epoch, accumulators

  // State rows of the aggregation (keys, accumulators) as a batch of the sessions schema.
  batch session_rows(const batch& state_rows, const column& changed_epochs) const {
    std::vector<column> columns{state_rows.col(session_key), changed_epochs};
    for (std::size_t c = num_keys; c < state_rows.num_columns(); ++c) columns.push_back(state_rows.col(c));
    return batch(sessions, std::move(columns));
  }
};

session_window_operator::session_window_operator(schema_ptr input, std::vector<expr> keys, std::vector<agg_spec> aggs,
                                                 output_mode mode)
    : keyed_operator(keyed_spec(input, keys)) {
  auto d = std::make_shared<impl>();
  d->input = input;
  d->mode = mode;
  d->session_key = checked_session_key(keys);
  d->num_keys = keys.size();
  const expr_node& session = unaliased(keys[d->session_key]);
  d->time = bind(session.children[0], *input);
  if (d->time.type() != type_id::timestamp)
    throw error("session_window() needs a timestamp time column, but '" + session.children[0].name() + "' is " +
                std::string(type_name(d->time.type())) + "; cast it first, e.g. CAST(" +
                session.children[0].name() + " AS TIMESTAMP)");
  d->gap = session.window_length;
  if (d->gap == 0) {
    d->gap_text = bind(session.children[1], *input);
    if (d->gap_text.type() != type_id::string)
      throw error("session_window(): the gap expression '" + session.children[1].name() + "' is " +
                  std::string(type_name(d->gap_text.type())) + "; give a duration string such as \"5 minutes\"");
  }
  const std::string session_name = keys[d->session_key].name();
  if (input->find(session_name))
    throw error("session_window(): the input already has a column '" + session_name +
                "'; rename it or alias the session window (.as(name))");
  auto fields = input->fields();
  fields.push_back(field{session_name, type_id::window, false});
  d->pre_input = make_schema(std::move(fields));
  std::vector<expr> aggregate_keys = keys;
  aggregate_keys[d->session_key] = col(session_name);
  d->aggregate = std::make_shared<const aggregate_operator>(d->pre_input, std::move(aggregate_keys), std::move(aggs));
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (i != d->session_key) d->other_keys.push_back(i);
  std::vector<field> session_fields{field{session_name, type_id::window, false},
                                    field{std::string(epoch_column), type_id::int64, false}};
  const auto& state_fields = d->aggregate->state_schema()->fields();
  session_fields.insert(session_fields.end(), state_fields.begin() + static_cast<std::ptrdiff_t>(d->num_keys),
                        state_fields.end());
  d->sessions = make_schema(std::move(session_fields));
  impl_ = std::move(d);
}

const schema_ptr& session_window_operator::output_schema() const { return impl_->aggregate->output_schema(); }

std::string session_window_operator::name() const { return "SessionWindow" + impl_->aggregate->describe(); }

std::vector<std::string> session_window_operator::output_key_names() const { return impl_->aggregate->key_names(); }

std::optional<operator_descriptor> session_window_operator::descriptor() const {
  const impl& d = *impl_;
  const std::string session_name = d.aggregate->key_names()[d.session_key];
  codec_writer out;
  out.write(*d.input).write(to_string(d.mode)).write(std::to_string(d.session_key)).write(session_name);
  out.write(d.time.source()).write(std::to_string(d.gap));
  if (d.gap == 0) out.write(d.gap_text.source());
  out.write(partial_aggregate_operator(d.aggregate).descriptor()->arguments);
  return operator_descriptor{"session_window", out.text()};
}

operator_ptr session_window_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  const schema_ptr encoded_input = reader.read_schema();
  if (*encoded_input != *input)
    throw error("session_window: it reads rows of (" + encoded_input->to_string() + "), but its input is (" +
                input->to_string() + ")");
  const output_mode mode = parse_output_mode(reader.read_string());
  const auto position = static_cast<std::size_t>(reader.read_number("the session key's position"));
  const std::string session_name = reader.read_string();
  expr time = reader.read_expr();
  const std::int64_t gap = reader.read_number("the gap");
  expr session = gap == 0 ? session_window(std::move(time), reader.read_expr())
                          : session_window(std::move(time), std::to_string(gap) + " us");
  const std::string aggregate_arguments = reader.read_string();
  reader.expect_end();
  auto fields = input->fields();
  fields.push_back(field{session_name, type_id::window, false});
  const auto partial = std::dynamic_pointer_cast<const partial_aggregate_operator>(
      partial_aggregate_operator::from_arguments(aggregate_arguments, make_schema(std::move(fields))));
  std::vector<expr> keys = partial->aggregate().keys();
  if (position >= keys.size()) throw error("session_window: the session key's position is out of range");
  keys[position] = session.name() == session_name ? session : session.as(session_name);
  return std::make_shared<session_window_operator>(input, std::move(keys), partial->aggregate().aggregates(), mode);
}

session_list session_window_operator::load(const batch& saved, std::size_t row) const {
  const column& lists = saved.col(0);
  session_list sessions;
  for (std::size_t i = 0; i < lists.list_size(row); ++i) sessions.emplace_back(lists.list_item(row, i));
  return sessions;
}

std::size_t session_window_operator::state_rows(const operator_state& state) const {
  const auto* keyed = dynamic_cast<const keyed_state<session_list>*>(&state);
  if (!keyed) missing_state();
  std::size_t sessions = 0;
  keyed->for_each([&](key_ref, const session_list& list) { sessions += list.size(); });
  return sessions;
}

std::size_t session_window_operator::state_rows_updated(const batch& changes, std::int64_t epoch) const {
  // Rows of state_schema(): the keys, "__deleted", the key's sessions.
  const std::size_t deleted = layout().types().size();
  std::size_t sessions = 0;
  for (std::size_t row = 0; row < changes.num_rows(); ++row) {
    if (changes.col(deleted).bools()[row]) continue;
    const column& lists = changes.col(deleted + 1);
    for (std::size_t i = 0; i < lists.list_size(row); ++i)
      sessions += read_header(lists.list_item(row, i)).changed_epoch == epoch ? 1 : 0;
  }
  return sessions;
}

void session_window_operator::process(const batch& rows, const row_keys&, keyed_state<session_list>& state,
                                      operator_context& ctx) const {
  const impl& d = *impl_;
  const std::size_t n = rows.num_rows();
  const column times = d.time.evaluate(rows);
  const column gaps = d.gap == 0 ? d.gap_text.evaluate(rows) : column();
  const std::int64_t watermark = ctx.watermark();
  std::vector<std::uint8_t> keep(n, 0);
  column_builder windows(type_id::window, n);
  std::size_t late = 0, kept = 0;
  std::string last_gap_text;
  std::int64_t last_gap = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!times.valid(i)) continue;
    std::int64_t gap = d.gap;
    if (gap == 0) {
      if (!gaps.valid(i)) continue;
      if (gaps.str(i) != last_gap_text || last_gap == 0) {
        last_gap_text = std::string(gaps.str(i));
        try {
          last_gap = parse_duration_micros(last_gap_text);
        } catch (const error& e) {
          throw error("session_window(): the gap '" + last_gap_text + "' of a row is not a positive duration (" +
                      e.what() + "); give durations such as \"5 minutes\", or null to skip the row");
        }
      }
      gap = last_gap;
    }
    const std::int64_t t = times.ints()[i];
    const std::int64_t end = t > std::numeric_limits<std::int64_t>::max() - gap ? std::numeric_limits<std::int64_t>::max()
                                                                                : t + gap;
    // As Spark: a row is late when its own session [t, t + gap) ended at or before the watermark.
    if (watermark != operator_context::no_watermark && end <= watermark) {
      ++late;
      continue;
    }
    keep[i] = 1;
    ++kept;
    windows.append_window({timestamp{t}, timestamp{end}});
  }
  if (late > 0) ctx.count_rows_dropped_by_watermark(late);
  if (kept == 0) return;
  auto columns = (kept == n ? rows : filter_rows(rows, keep)).columns();
  columns.push_back(windows.finish());
  auto table = d.aggregate->make_state();
  table->update(batch(d.pre_input, std::move(columns)));
  merge_sessions(table->snapshot(), state, ctx.epoch());
}

void session_window_operator::merge_sessions(const batch& fresh, keyed_state<session_list>& state,
                                             std::int64_t epoch) const {
  const impl& d = *impl_;
  auto keys_of = [&](const batch& state_rows) {
    std::vector<column> columns;
    for (auto k : d.other_keys) columns.push_back(state_rows.col(k));
    return row_keys(encode_keys(layout(), columns, state_rows.num_rows()));
  };
  // The fresh rows (one per key and row session) by key.
  const row_keys fresh_keys = keys_of(fresh);
  std::unordered_map<std::string_view, std::uint32_t> group_of;
  std::vector<std::uint32_t> first_row;  // by group
  std::vector<std::uint32_t> fresh_group(fresh.num_rows());
  for (std::uint32_t r = 0; r < fresh.num_rows(); ++r) {
    auto [it, added] = group_of.try_emplace(fresh_keys[r].bytes, static_cast<std::uint32_t>(first_row.size()));
    if (added) first_row.push_back(r);
    fresh_group[r] = it->second;
  }
  // The stored sessions of those keys.
  std::vector<std::string> stored;
  std::vector<std::uint32_t> stored_group;
  for (std::uint32_t g = 0; g < first_row.size(); ++g) {
    if (const session_list* sessions = state.find(fresh_keys[first_row[g]])) {
      for (const auto& s : *sessions) {
        stored.push_back(s);
        stored_group.push_back(g);
      }
    }
  }
  const batch old = detail::decode_cells(d.sessions, stored);

  // Per key, the sessions sorted by start and swept: one that starts at or before the end of the merged
  // session so far joins it (Spark merges overlapping and touching sessions).
  struct item {
    std::int64_t start, end;
    std::uint32_t row;
    bool is_old;
  };
  std::vector<std::vector<item>> items(first_row.size());
  const column& fresh_windows = fresh.col(d.session_key);
  for (std::uint32_t r = 0; r < fresh.num_rows(); ++r)
    items[fresh_group[r]].push_back({fresh_windows.ints()[r], fresh_windows.ends()[r], r, false});
  const column& old_windows = old.col(0);
  for (std::uint32_t j = 0; j < old.num_rows(); ++j)
    items[stored_group[j]].push_back({old_windows.ints()[j], old_windows.ends()[j], j, true});
  std::vector<window_value> fresh_merged(fresh.num_rows()), old_merged(old.num_rows());
  std::map<std::pair<std::uint32_t, std::int64_t>, std::int64_t> changed_epoch;  // (group, start): epoch
  for (std::uint32_t g = 0; g < items.size(); ++g) {
    auto& list = items[g];
    std::sort(list.begin(), list.end(), [](const item& a, const item& b) { return a.start < b.start; });
    for (std::size_t first = 0; first < list.size();) {
      std::size_t last = first + 1;
      std::int64_t end = list[first].end;
      while (last < list.size() && list[last].start <= end) end = std::max(end, list[last++].end);
      const window_value merged{timestamp{list[first].start}, timestamp{end}};
      std::int64_t epoch_of_session = std::numeric_limits<std::int64_t>::min();
      for (std::size_t i = first; i < last; ++i) {
        if (list[i].is_old) {
          old_merged[list[i].row] = merged;
          epoch_of_session = std::max(epoch_of_session, old.col(1).ints()[list[i].row]);
        } else {
          fresh_merged[list[i].row] = merged;
          epoch_of_session = epoch;
        }
      }
      changed_epoch[{g, merged.start.micros}] = epoch_of_session;
      first = last;
    }
  }

  // Every session of the keys, old and fresh, with its merged window; the aggregation folds equal ones.
  const schema_ptr& state_schema = d.aggregate->state_schema();
  std::vector<column_builder> builders;
  for (const auto& f : state_schema->fields()) builders.emplace_back(f.type, fresh.num_rows() + old.num_rows());
  for (std::uint32_t r = 0; r < fresh.num_rows(); ++r) {
    for (std::size_t c = 0; c < builders.size(); ++c) {
      if (c == d.session_key) builders[c].append_window(fresh_merged[r]);
      else builders[c].append_from(fresh.col(c), r);
    }
  }
  for (std::uint32_t j = 0; j < old.num_rows(); ++j) {
    const std::uint32_t key_row = first_row[stored_group[j]];
    for (std::size_t c = 0; c < builders.size(); ++c) {
      if (c == d.session_key) builders[c].append_window(old_merged[j]);
      else if (c < d.num_keys) builders[c].append_from(fresh.col(c), key_row);
      else builders[c].append_from(old.col(c - d.num_keys + 2), j);
    }
  }
  std::vector<column> columns;
  for (auto& b : builders) columns.push_back(b.finish());
  auto table = d.aggregate->make_state();
  table->merge(batch(state_schema, std::move(columns)));
  const batch merged = table->snapshot();

  // Back into the state: each key's sessions, encoded.
  const row_keys merged_keys = keys_of(merged);
  column_builder epochs(type_id::int64, merged.num_rows());
  std::vector<std::uint32_t> merged_group(merged.num_rows());
  for (std::uint32_t m = 0; m < merged.num_rows(); ++m) {
    merged_group[m] = group_of.at(merged_keys[m].bytes);
    epochs.append_int(changed_epoch.at({merged_group[m], merged.col(d.session_key).ints()[m]}));
  }
  const batch rows = d.session_rows(merged, epochs.finish());
  std::vector<session_list> lists(first_row.size());
  for (std::uint32_t m = 0; m < merged.num_rows(); ++m) {
    std::string encoded;
    detail::append_cells(rows, 0, m, encoded);
    lists[merged_group[m]].push_back(std::move(encoded));
  }
  for (std::uint32_t g = 0; g < first_row.size(); ++g) state.put(fresh_keys[first_row[g]], std::move(lists[g]));
}

void session_window_operator::end_epoch(keyed_state<session_list>& state, operator_context& ctx) const {
  const impl& d = *impl_;
  std::vector<std::string> emitted_keys, emitted;
  if (d.mode == output_mode::complete) {  // a static frame's one epoch (validate_output_mode refuses it on streams)
    state.for_each([&](key_ref key, const session_list& sessions) {
      for (const auto& s : sessions) {
        emitted_keys.emplace_back(key.bytes);
        emitted.push_back(s);
      }
    });
  } else if (d.mode == output_mode::update) {
    state.for_each_changed([&](key_ref key, const session_list& sessions) {
      for (const auto& s : sessions) {
        if (read_header(s).changed_epoch != ctx.epoch()) continue;
        emitted_keys.emplace_back(key.bytes);
        emitted.push_back(s);
      }
    });
  }
  const std::int64_t watermark = ctx.watermark();
  if (watermark != operator_context::no_watermark && d.mode != output_mode::complete) {
    // Collected first: keys may not change while the store is iterated.
    std::vector<std::pair<std::string, std::uint64_t>> closing;
    std::vector<session_list> open;
    std::size_t evicted = 0;
    state.for_each([&](key_ref key, const session_list& sessions) {
      session_list still_open;
      for (const auto& s : sessions) {
        if (read_header(s).end > watermark) {
          still_open.push_back(s);
        } else if (d.mode == output_mode::append) {
          emitted_keys.emplace_back(key.bytes);
          emitted.push_back(s);
        }
      }
      if (still_open.size() == sessions.size()) return;
      evicted += sessions.size() - still_open.size();
      closing.emplace_back(std::string(key.bytes), key.hash);
      open.push_back(std::move(still_open));
    });
    for (std::size_t i = 0; i < closing.size(); ++i) {
      const key_ref key{closing[i].first, closing[i].second};
      if (open[i].empty()) state.remove(key);
      else state.put(key, std::move(open[i]));
    }
    ctx.count_state_rows_removed(evicted);
  }
  if (emitted.empty()) return;

  // The emitted sessions as the aggregation's state rows, then its output.
  const batch sessions = detail::decode_cells(d.sessions, emitted);
  std::vector<column_builder> key_builders;
  for (auto type : layout().types()) key_builders.emplace_back(type, emitted.size());
  for (const auto& key : emitted_keys) append_decoded_key(layout(), key, key_builders);
  std::vector<column> columns(d.aggregate->state_schema()->size());
  columns[d.session_key] = sessions.col(0);
  for (std::size_t k = 0; k < d.other_keys.size(); ++k) columns[d.other_keys[k]] = key_builders[k].finish();
  for (std::size_t c = d.num_keys; c < columns.size(); ++c) columns[c] = sessions.col(c - d.num_keys + 2);
  auto table = d.aggregate->make_state();
  table->restore(batch(d.aggregate->state_schema(), std::move(columns)));
  batch out = table->emit(output_mode::complete);
  if (out.num_rows() > 0) ctx.emit(std::move(out));
}

}  // namespace flow
