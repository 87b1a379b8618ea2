#include "flow/stream_join.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "flow/keys.hpp"
#include "flow/plan_codec.hpp"

namespace flow {

// ---------------------------------------------------------------- the condition

namespace {

void flatten_conjuncts(const expr& e, std::vector<expr>& out) {
  if (e.node().kind == expr_kind::logical_and) {
    for (const auto& child : e.node().children) flatten_conjuncts(child, out);
  } else {
    out.push_back(e);
  }
}

// A column reference, optionally plus or minus an interval: col("t") + lit("1 hour").
struct shifted_column {
  std::string column;
  std::int64_t shift = 0;
};

std::int64_t interval_micros(const value& v) {
  if (const auto* micros = std::get_if<std::int64_t>(&v)) return *micros;
  if (const auto* text = std::get_if<std::string>(&v)) return parse_duration_micros(*text);
  throw error("join: the interval " + to_string(v) + " is neither a duration (lit(\"1 hour\")) nor microseconds");
}

std::optional<shifted_column> as_shifted_column(const expr& e) {
  const expr_node& n = e.node();
  if (n.kind == expr_kind::column_ref) return shifted_column{n.name, 0};
  if ((n.kind == expr_kind::add || n.kind == expr_kind::sub) && n.children.size() == 2 &&
      n.children[0].node().kind == expr_kind::column_ref && n.children[1].node().kind == expr_kind::literal) {
    const std::int64_t shift = interval_micros(n.children[1].node().literal);
    return shifted_column{n.children[0].node().name, n.kind == expr_kind::add ? shift : -shift};
  }
  return std::nullopt;
}

[[noreturn]] void unsupported_conjunct(const expr& conjunct) {
  throw error("join: the condition '" + conjunct.name() +
              "' is not supported in a stream-stream join; use equalities between a left and a right column "
              "(col(\"id\") == col(\"rid\")) and comparisons of a left and a right timestamp column with an "
              "optional interval (col(\"rt\") <= col(\"lt\") + lit(\"1 hour\")), joined with &&");
}

}  // namespace

stream_join_spec stream_join_on_columns(std::vector<std::string> keys, join_type type) {
  stream_join_spec spec;
  spec.type = type;
  spec.left_keys = keys;
  spec.right_keys = std::move(keys);
  spec.using_columns = true;
  return spec;
}

stream_join_spec stream_join_on_condition(const schema& left, const schema& right, const expr& condition,
                                          join_type type) {
  if (!condition.valid()) throw error("join: the condition is an empty expression");
  join_output_schema(left, right, join_type::inner);  // refuses a column name both sides have
  stream_join_spec spec;
  spec.type = type;
  std::vector<expr> conjuncts;
  flatten_conjuncts(condition, conjuncts);
  for (const auto& conjunct : conjuncts) {
    const expr_node& n = conjunct.node();
    if (n.children.size() != 2) unsupported_conjunct(conjunct);
    const auto a = as_shifted_column(n.children[0]);
    const auto b = as_shifted_column(n.children[1]);
    if (!a || !b) unsupported_conjunct(conjunct);
    const bool a_left = left.find(a->column).has_value(), b_left = left.find(b->column).has_value();
    const bool a_right = right.find(a->column).has_value(), b_right = right.find(b->column).has_value();
    if (!((a_left && b_right) || (a_right && b_left))) {
      throw error("join: the condition '" + conjunct.name() +
                  "' does not compare a column of the left side with one of the right side; columns of the left: [" +
                  left.to_string() + "], of the right: [" + right.to_string() + "]");
    }
    const shifted_column& l = a_left ? *a : *b;
    const shifted_column& r = a_left ? *b : *a;
    if (n.kind == expr_kind::eq) {
      if (l.shift != 0 || r.shift != 0) unsupported_conjunct(conjunct);
      spec.left_keys.push_back(l.column);
      spec.right_keys.push_back(r.column);
      continue;
    }
    if (n.kind != expr_kind::lt && n.kind != expr_kind::le && n.kind != expr_kind::gt && n.kind != expr_kind::ge)
      unsupported_conjunct(conjunct);
    if (left[*left.find(l.column)].type != type_id::timestamp || right[*right.find(r.column)].type != type_id::timestamp)
      throw error("join: the time range '" + conjunct.name() + "' compares columns that are not both timestamps");
    if ((!spec.left_time.empty() && spec.left_time != l.column) || (!spec.right_time.empty() && spec.right_time != r.column))
      throw error("join: the time range '" + conjunct.name() + "' compares other columns than an earlier one (" +
                  spec.left_time + ", " + spec.right_time + "); bound one pair of event-time columns");
    spec.left_time = l.column;
    spec.right_time = r.column;
    // As a bound on right - left: written left first, l + ls OP r + rs is right - left OP' ls - rs with OP'
    // the mirror of OP; written right first, r + rs OP l + ls is right - left OP ls - rs.
    const std::int64_t bound = l.shift - r.shift;
    bool right_at_least = false, strict = false;  // right - left >= bound (else <=), strict: > or <
    switch (n.kind) {
      case expr_kind::lt: right_at_least = a_left; strict = true; break;
      case expr_kind::le: right_at_least = a_left; break;
      case expr_kind::gt: right_at_least = !a_left; strict = true; break;
      default: right_at_least = !a_left; break;
    }
    if (right_at_least) spec.lower = std::max(spec.lower, strict ? bound + 1 : bound);
    else spec.upper = std::min(spec.upper, strict ? bound - 1 : bound);
  }
  if (spec.left_keys.empty())
    throw error("join: the condition '" + condition.name() +
                "' has no equality between a left and a right column; a stream-stream join needs one (a key)");
  return spec;
}

// ---------------------------------------------------------------- the plan

plan_ptr make_stream_join(plan_ptr left, plan_ptr right, stream_join_spec spec) {
  if (!left || !right) throw error("join: a side of the join has no plan; build both with a data frame");
  if (spec.type != join_type::inner && spec.type != join_type::left_outer && spec.type != join_type::right_outer)
    throw error("join: " + std::string(to_string(spec.type)) +
                " is not supported between two streaming DataFrames/Datasets; use inner, left_outer or right_outer");
  if (spec.type != join_type::inner) {
    const bool watermarks = !watermark_columns(*left).empty() && !watermark_columns(*right).empty();
    const bool bounded = !spec.left_time.empty() && spec.lower != stream_join_spec::unbounded_below &&
                         spec.upper != stream_join_spec::unbounded_above;
    if (!watermarks || !bounded) {
      const std::string name = spec.type == join_type::left_outer ? "LeftOuter" : "RightOuter";
      throw error("join: Stream-stream " + name +
                  " join between two streaming DataFrame/Datasets is not supported without a watermark in the join "
                  "keys, or a watermark on the nullable side and an appropriate range condition; call "
                  "with_watermark on both sides and join on a condition bounding the right side's event time on "
                  "both ends (col(\"rt\") >= col(\"lt\") && col(\"rt\") <= col(\"lt\") + lit(\"1 hour\"))");
    }
  }
  auto op = std::make_shared<const stream_join_operator>(left->output, right->output, std::move(spec));
  plan_node node;
  node.kind = plan_kind::join;
  node.output = op->output_schema();
  node.op = std::move(op);
  node.children = {std::move(left), std::move(right)};
  return std::make_shared<const plan_node>(std::move(node));
}

// ---------------------------------------------------------------- the buffered rows

namespace {

constexpr std::uint32_t no_row = ~std::uint32_t{0};

// One side's buffered rows, numbered in arrival order (which is also the order of their ids). A batch's
// accepted rows stay in the batch itself (a chunk, its columns shared, not copied); per row the buffer
// keeps where it is, its id, event time, encoded join key (a fixed-width key without its null word: a
// buffered row's key is never null) and flags. An open-addressing table maps each join key to its newest
// row, next_ chains a key's older rows. Evicted rows stay, dead, until compact().
// Bookkeeping for take_changes: rows before committed_ existed at the last one; removed_ and flagged_ are
// those of them evicted or newly matched since.
class side_buffer {
 public:
  std::size_t size() const { return ids_.size(); }
  std::size_t live_rows() const { return live_count_; }
  bool live(std::uint32_t r) const { return live_[r] != 0; }
  bool matched(std::uint32_t r) const { return matched_[r] != 0; }
  std::int64_t time(std::uint32_t r) const { return times_[r]; }
  std::int64_t id(std::uint32_t r) const { return ids_[r]; }
  const batch& chunk(std::uint32_t r) const { return chunks_[chunk_of_[r]]; }
  std::uint32_t position(std::uint32_t r) const { return position_[r]; }
  std::uint32_t next(std::uint32_t r) const { return next_[r]; }
  // The part of a key's hash a slot keeps (the low half): it places the key and tells most keys apart.
  static std::uint32_t tag_of(std::uint64_t hash) { return static_cast<std::uint32_t>(hash); }

  // Puts the rows added since the last call into the key table (before first()); layout and key_columns
  // are the side's join keys. Rows are keyed and linked only when probed: the runtime's committed copy of
  // the state never probes, so it never encodes their keys nor builds the table.
  void link_pending(const key_layout& layout, const std::vector<std::size_t>& key_columns) {
    key_pending(layout, key_columns);
    constexpr std::size_t ahead = 8;  // rows whose slot is fetched while earlier ones are linked
    if (size() > linked_ && 2 * (keys_ + size() - linked_) > slots_.size()) grow(keys_ + size() - linked_);
    if (next_.size() < size()) {  // sized here, not per added row: the committed copy never links
      grow_to(next_, size());
      next_.resize(size(), no_row);
    }
    for (; linked_ < size(); ++linked_) {
      if (linked_ + ahead < size()) prefetch(tags_[linked_ + ahead]);
      link(static_cast<std::uint32_t>(linked_));
    }
  }
  // Starts loading the slot of this hash's tag into the cache (a probe of it follows soon).
  void prefetch(std::uint32_t tag) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[tag & mask_]);
  }
  // The newest row with row i's key of keys (not null; the layout of this side's keys), no_row when none
  // (follow next() for the older ones; check live()). Call link_pending() after adding rows.
  std::uint32_t first(const encoded_keys& keys, std::size_t i) const {
    if (slots_.empty()) return no_row;
    const auto tag = tag_of(keys.hashes[i]);
    for (std::size_t at = tag & mask_;; at = (at + 1) & mask_) {
      const slot& s = slots_[at];
      if (s.head == no_row) return no_row;
      if (s.tag == tag && (keys.fixed() ? same_words(s.head, keys.row_words(i)) : key_bytes(s.head) == keys.row_bytes(i)))
        return s.head;
    }
  }
  void set_matched(std::uint32_t r) {
    if (matched_[r]) return;
    matched_[r] = 1;
    if (r < committed_) flagged_.push_back(r);
  }
  void evict(std::uint32_t r) {
    live_[r] = 0;
    --live_count_;
    if (r < committed_) removed_.push_back(r);
  }
  // Adds a chunk whose rows picked[i] are buffered, with their ids, times, matched flags and, when known,
  // the chunk's encoded join keys (else link_pending encodes them).
  void add_chunk(batch rows, const std::vector<std::uint32_t>& picked, const std::vector<std::int64_t>& ids,
                 const std::vector<std::int64_t>& times, const std::vector<std::uint8_t>& matched,
                 const encoded_keys* keys) {
    if (picked.empty()) return;
    if (!ids_.empty() && ids.front() <= ids_.back())
      throw error("stream_stream_join: buffered rows arrived out of id order (a corrupt checkpoint?)");
    const auto chunk = static_cast<std::uint32_t>(chunks_.size());
    chunks_.push_back(std::move(rows));
    const bool keyed = keys && keyed_ == size();
    reserve(size() + picked.size());
    const std::size_t n = picked.size();
    chunk_of_.insert(chunk_of_.end(), n, chunk);
    position_.insert(position_.end(), picked.begin(), picked.end());
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    times_.insert(times_.end(), times.begin(), times.end());
    live_.insert(live_.end(), n, 1);
    matched_.insert(matched_.end(), matched.begin(), matched.end());  // 0 or 1 each
    live_count_ += n;
    if (keyed) add_keys(*keys, picked);
  }
  // The live row with this id, no_row when none (ids ascend with row numbers).
  // hint: where to start looking; changes list a side's rows in id order, so the previous row found is a
  // good hint and the search gallops forward from it (back to a plain search when id lies before it).
  std::uint32_t find_id(std::int64_t id, std::size_t hint) const {
    std::size_t low = hint < size() && ids_[hint] <= id ? hint : 0, high = size();
    for (std::size_t step = 1; low + step < high; step *= 2) {
      if (ids_[low + step] >= id) {
        high = low + step + 1;
        break;
      }
      low += step;
    }
    const auto it = std::lower_bound(ids_.begin() + static_cast<std::ptrdiff_t>(low),
                                     ids_.begin() + static_cast<std::ptrdiff_t>(high), id);
    if (it == ids_.begin() + static_cast<std::ptrdiff_t>(high) || *it != id) return no_row;
    const auto r = static_cast<std::uint32_t>(it - ids_.begin());
    return live(r) ? r : no_row;
  }
  // The rows changed since the last commit(): those evicted, and those live that are new or newly matched.
  void changed_rows(std::vector<std::uint32_t>& removed, std::vector<std::uint32_t>& put) const {
    removed = removed_;
    for (auto r : flagged_) {
      if (live(r)) put.push_back(r);
    }
    for (auto r = static_cast<std::uint32_t>(committed_); r < size(); ++r) {
      if (live(r)) put.push_back(r);
    }
  }
  void live_rows(std::vector<std::uint32_t>& rows) const {
    for (std::uint32_t r = 0; r < size(); ++r) {
      if (live(r)) rows.push_back(r);
    }
  }
  // Column c of these rows (in this order) as parts for concat_columns: a slice of its chunk for each run
  // of consecutive positions in one chunk, the run's rows taken out of it otherwise.
  void column_parts(std::size_t c, const std::vector<std::uint32_t>& rows, std::vector<column>& parts) const {
    std::vector<std::uint32_t> positions;
    for (std::size_t first = 0; first < rows.size();) {
      const std::uint32_t chunk = chunk_of_[rows[first]];
      bool consecutive = true;
      std::size_t last = first + 1;
      for (; last < rows.size() && chunk_of_[rows[last]] == chunk; ++last)
        consecutive = consecutive && position_[rows[last]] == position_[rows[last - 1]] + 1;
      const column& from = chunks_[chunk].col(c);
      if (consecutive) {
        parts.push_back(from.slice(position_[rows[first]], last - first));
      } else {
        positions.clear();
        for (std::size_t i = first; i < last; ++i) positions.push_back(position_[rows[i]]);
        parts.push_back(take_rows(from, positions));
      }
      first = last;
    }
  }
  // The rows added since the last commit(), when all of them are still live (else 0).
  std::size_t new_live_rows() const {
    for (auto r = static_cast<std::uint32_t>(committed_); r < size(); ++r) {
      if (!live(r)) return 0;
    }
    return size() - committed_;
  }
  // The rows added since the last commit() are rows 0, 1, ... of `rows` (this side's columns), all live:
  // they now point there, and the chunks that held them are dropped (before commit()).
  void move_new_rows(batch rows) {
    chunks_.resize(committed_chunks_);
    const auto chunk = static_cast<std::uint32_t>(chunks_.size());
    chunks_.push_back(std::move(rows));
    for (std::size_t r = committed_; r < size(); ++r) {
      chunk_of_[r] = chunk;
      position_[r] = static_cast<std::uint32_t>(r - committed_);
    }
  }
  // Forgets the changes; drops the dead rows when they are the majority, else the run of dead rows they
  // start with (rows are evicted about in arrival order) when it is an eighth of them or more.
  void commit() {
    removed_.clear();
    flagged_.clear();
    if (size() - live_count_ > live_count_ && size() >= 1024) compact();
    else drop_dead_prefix();
    committed_ = size();
    committed_chunks_ = chunks_.size();
  }
  void clear() { *this = side_buffer(); }
  std::size_t memory_bytes() const {
    std::size_t bytes = key_bytes_.capacity() + key_offsets_.capacity() * sizeof(std::size_t) +
                        key_words_.capacity() * sizeof(std::uint64_t) + slots_.capacity() * sizeof(slot) +
                        (tags_.capacity() + next_.capacity()) * sizeof(std::uint32_t);
    bytes += ids_.capacity() * (2 * sizeof(std::int64_t) + 2 * sizeof(std::uint32_t) + 2);
    for (const auto& c : chunks_) bytes += c.byte_size();
    return bytes;
  }

 private:
  // Row r's key: words_per_key_ words when fixed, else bytes.
  const std::uint64_t* key_words(std::uint32_t r) const { return key_words_.data() + r * words_per_key_; }
  std::string_view key_bytes(std::uint32_t r) const {
    return std::string_view(key_bytes_).substr(key_offsets_[r], key_offsets_[r + 1] - key_offsets_[r]);
  }
  bool same_words(std::uint32_t r, const std::uint64_t* words) const {
    const std::uint64_t* mine = key_words(r);
    if (words_per_key_ == 1) return mine[0] == words[0];
    return std::equal(mine, mine + words_per_key_, words);
  }
  bool same_key(std::uint32_t a, std::uint32_t b) const {
    return words_per_key_ != 0 ? same_words(a, key_words(b)) : key_bytes(a) == key_bytes(b);
  }
  // Room for this many rows, grown geometrically (add_keys grows the keys' buffers alike). Nothing ever
  // shrinks (compact() works in place): a buffer holding a few epochs' rows reuses its memory instead of
  // faulting in fresh pages.
  void reserve(std::size_t rows) {
    if (rows <= ids_.capacity()) return;
    const std::size_t capacity = std::max(rows, 2 * ids_.capacity());
    for (auto* v : {&ids_, &times_}) v->reserve(capacity);
    for (auto* v : {&chunk_of_, &position_}) v->reserve(capacity);
    live_.reserve(capacity);
    matched_.reserve(capacity);
  }
  // Keys rows keyed_ .. keyed_ + picked.size(), whose keys are keys' rows picked[i].
  void add_keys(const encoded_keys& keys, const std::vector<std::uint32_t>& picked) {
    grow_to(tags_, keyed_ + picked.size());
    for (const auto p : picked) tags_.push_back(tag_of(keys.hashes[p]));
    keyed_ += picked.size();
    if (!keys.fixed()) {
      grow_to(key_bytes_, key_bytes_.size() + keys.bytes.size());
      grow_to(key_offsets_, keyed_ + 1);
      for (const auto p : picked) {
        key_bytes_.append(keys.row_bytes(p));
        key_offsets_.push_back(key_bytes_.size());
      }
      return;
    }
    words_per_key_ = keys.key_words - 1;  // the same for every chunk
    const std::size_t at = key_words_.size();
    grow_to(key_words_, at + picked.size() * words_per_key_);
    key_words_.resize(at + picked.size() * words_per_key_);
    std::uint64_t nulls = 0;
    std::uint64_t* into = key_words_.data() + at;
    for (const auto p : picked) {
      const std::uint64_t* row = keys.row_words(p);
      for (std::size_t w = 0; w < words_per_key_; ++w) *into++ = row[w];
      nulls |= row[words_per_key_];
    }
    if (nulls != 0)
      throw error("stream_stream_join: a buffered row has a null join key (a corrupt checkpoint?); restart the "
                  "query from an intact checkpoint or a new location");
  }
  template <class Buffer>
  static void grow_to(Buffer& buffer, std::size_t size) {
    if (size > buffer.capacity()) buffer.reserve(std::max(size, 2 * buffer.capacity()));
  }
  // Encodes the keys of the rows added without them, a run of rows of one chunk at a time.
  void key_pending(const key_layout& layout, const std::vector<std::size_t>& key_columns) {
    std::vector<std::uint32_t> positions, picked;
    while (keyed_ < size()) {
      const std::uint32_t chunk = chunk_of_[keyed_];
      positions.clear();
      for (std::size_t r = keyed_; r < size() && chunk_of_[r] == chunk; ++r) positions.push_back(position_[r]);
      std::vector<column> columns;
      for (auto k : key_columns) columns.push_back(take_rows(chunks_[chunk].col(k), positions));
      picked.resize(positions.size());
      for (std::uint32_t i = 0; i < picked.size(); ++i) picked[i] = i;
      add_keys(encode_keys(layout, columns, positions.size()), picked);
    }
  }
  // Makes row r its key's newest row (the table has room: link_pending grows it first).
  void link(std::uint32_t r) {
    const auto tag = tags_[r];
    for (std::size_t at = tag & mask_;; at = (at + 1) & mask_) {
      slot& s = slots_[at];
      if (s.head == no_row) {
        s = {r, tag};
        ++keys_;
        return;
      }
      if (s.tag == tag && same_key(s.head, r)) {
        next_[r] = s.head;
        s.head = r;
        return;
      }
    }
  }
  // Rebuilds the table with room for `keys` keys at a load of at most one half.
  void grow(std::size_t keys) {
    std::vector<slot> old = std::move(slots_);
    std::size_t capacity = std::max<std::size_t>(64, old.size());
    while (capacity < 2 * keys) capacity *= 2;
    slots_.assign(capacity, slot{});
    mask_ = capacity - 1;
    for (const slot& s : old) {
      if (s.head == no_row) continue;
      std::size_t at = s.tag & mask_;
      while (slots_[at].head != no_row) at = (at + 1) & mask_;
      slots_[at] = s;
    }
  }
  // Drops the leading dead rows and the chunks only they used, keeping every later row's key, links and
  // table slot (renumbered): the buffer then holds about the rows the watermark keeps and reuses its
  // memory every epoch instead of growing until compact() (fresh pages cost more than the move).
  void drop_dead_prefix() {
    std::size_t dead = 0;
    while (dead < size() && !live(static_cast<std::uint32_t>(dead))) ++dead;
    if (dead == 0 || 8 * dead < size()) return;
    const auto shift = static_cast<std::uint32_t>(dead);
    const std::uint32_t chunks = dead < size() ? chunk_of_[dead] : static_cast<std::uint32_t>(chunks_.size());
    auto drop_front = [](auto& v, std::size_t n) { v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size()))); };
    chunks_.erase(chunks_.begin(), chunks_.begin() + chunks);
    drop_front(chunk_of_, dead);
    for (auto& c : chunk_of_) c -= chunks;
    for (auto* v : {&position_, &tags_}) drop_front(*v, dead);
    for (auto* v : {&ids_, &times_}) drop_front(*v, dead);
    for (auto* v : {&live_, &matched_}) drop_front(*v, dead);
    const std::size_t keyed_dead = std::min(dead, keyed_);
    if (words_per_key_ != 0) {
      drop_front(key_words_, keyed_dead * words_per_key_);
    } else if (keyed_dead > 0) {
      const std::size_t bytes = key_offsets_[keyed_dead];
      key_bytes_.erase(0, bytes);
      drop_front(key_offsets_, keyed_dead);
      for (auto& o : key_offsets_) o -= bytes;
    }
    keyed_ -= keyed_dead;
    // A key's rows are chained newest to oldest: a link into the dropped rows ends its chain, and a slot
    // whose newest row is dropped has no row left.
    drop_front(next_, dead);
    for (auto& n : next_) n = n == no_row || n < shift ? no_row : n - shift;
    linked_ = linked_ > dead ? linked_ - dead : 0;
    if (slots_.empty()) return;
    // One pass in probe order from an empty slot (the table is at most half full): a slot of dropped rows
    // is emptied, and a later slot of the same run of full slots is put back where its probe now ends.
    std::size_t start = 0;
    while (slots_[start].head != no_row) ++start;
    bool hole = false;
    std::size_t emptied = 0;
    for (std::size_t i = 1; i <= mask_; ++i) {
      slot& s = slots_[(start + i) & mask_];
      if (s.head == no_row) {
        hole = false;
      } else if (s.head < shift) {
        s = slot{};
        ++emptied;
        hole = true;
      } else if (!hole) {
        s.head -= shift;
      } else {
        const slot moved{s.head - shift, s.tag};
        s = slot{};
        std::size_t at = moved.tag & mask_;
        while (slots_[at].head != no_row) at = (at + 1) & mask_;
        slots_[at] = moved;
      }
    }
    keys_ -= emptied;
  }
  // Keeps the live rows only (in order, moved down in place), and of each chunk mostly dead only its live
  // rows. The key table is rebuilt at the next probe.
  void compact() {
    std::vector<batch> kept_chunks;
    std::vector<std::uint32_t> alive, positions;
    std::uint32_t kept = 0;
    std::size_t kept_key_bytes = 0, kept_keyed = 0;
    for (std::uint32_t r = 0; r < size();) {
      const std::uint32_t chunk = chunk_of_[r];
      alive.clear();
      std::uint32_t end = r;
      for (; end < size() && chunk_of_[end] == chunk; ++end) {
        if (live(end)) alive.push_back(end);
      }
      r = end;
      if (alive.empty()) continue;
      const batch& rows = chunks_[chunk];
      const auto new_chunk = static_cast<std::uint32_t>(kept_chunks.size());
      const bool whole = 2 * alive.size() >= rows.num_rows();
      if (whole) {
        kept_chunks.push_back(rows);
      } else {
        positions.clear();
        for (auto a : alive) positions.push_back(position_[a]);
        std::vector<column> columns;
        for (const auto& c : rows.columns()) columns.push_back(take_rows(c, positions));
        kept_chunks.push_back(batch(rows.schema_ref(), std::move(columns)));
      }
      for (std::uint32_t i = 0; i < alive.size(); ++i, ++kept) {
        // kept <= a: row a and its key bytes are read before anything at or after them is overwritten.
        const std::uint32_t a = alive[i];
        if (a < keyed_) {  // the keyed rows are a prefix, and so are the kept ones among them
          if (words_per_key_ != 0) {
            std::memmove(key_words_.data() + kept * words_per_key_, key_words(a), words_per_key_ * sizeof(std::uint64_t));
          } else {
            const std::string_view key = key_bytes(a);
            std::memmove(key_bytes_.data() + kept_key_bytes, key.data(), key.size());
            kept_key_bytes += key.size();
            key_offsets_[kept + 1] = kept_key_bytes;
          }
          tags_[kept] = tags_[a];
          ++kept_keyed;
        }
        chunk_of_[kept] = new_chunk;
        position_[kept] = whole ? position_[a] : i;
        ids_[kept] = ids_[a];
        times_[kept] = times_[a];
        matched_[kept] = matched_[a];
        live_[kept] = 1;
      }
    }
    chunks_ = std::move(kept_chunks);
    for (auto* v : {&chunk_of_, &position_}) v->resize(kept);
    next_.clear();  // link_pending sizes it again
    for (auto* v : {&ids_, &times_}) v->resize(kept);
    tags_.resize(kept_keyed);
    key_words_.resize(kept_keyed * words_per_key_);
    live_.resize(kept);
    matched_.resize(kept);
    key_offsets_.resize(words_per_key_ == 0 ? kept_keyed + 1 : 1);
    key_bytes_.resize(kept_key_bytes);
    keyed_ = kept_keyed;
    live_count_ = kept;
    std::fill(slots_.begin(), slots_.end(), slot{});
    keys_ = 0;
    linked_ = 0;
  }

  std::vector<batch> chunks_;
  std::vector<std::uint32_t> chunk_of_, position_, next_;
  std::vector<std::int64_t> ids_, times_;
  std::vector<std::uint32_t> tags_;  // per keyed row, tag_of its key's hash
  std::vector<std::uint64_t> key_words_;     // fixed-width keys: words_per_key_ words per keyed row
  std::size_t words_per_key_ = 0;            // 0: the keys are bytes
  std::string key_bytes_;
  std::vector<std::size_t> key_offsets_{0};  // where row r's key starts in key_bytes_ ({0} when fixed)
  std::vector<std::uint8_t> live_, matched_;
  std::size_t live_count_ = 0;
  // A key's newest row (no_row when the slot is empty) and the low half of its hash: it places the key
  // (grow() needs no look at the rows) and spares probes of most other keys a look at the row's key.
  struct slot {
    std::uint32_t head = no_row;
    std::uint32_t tag = 0;
  };
  std::vector<slot> slots_;
  std::size_t mask_ = 0, keys_ = 0;
  std::size_t keyed_ = 0;   // rows before it have their key and tag
  std::size_t linked_ = 0;  // rows before it are in the table
  std::size_t committed_ = 0;
  std::size_t committed_chunks_ = 0;  // chunks_ at the last commit(): later ones hold only rows added since
  std::vector<std::uint32_t> removed_, flagged_;
};

// The checkpoint's rows (snapshot, changes): per buffered row its side, id, whether it was removed, event
// time and matched flag, then its side's columns. The sides share the columns after these: side s's k-th
// column of a type is the k-th shared column of that type, so a row carries nulls only where the other side
// has more columns of a type than its own (none when both sides have the same types).
constexpr std::size_t side_column = 0, id_column = 1, deleted_column = 2, time_column = 3, matched_column = 4,
                      first_row_column = 5;

// rows valid rows of the type's zero (false, 0, ""): a removed row's columns in the changes. Nulls there
// would give the changes' columns, in which the buffers keep their new rows, a validity bitmap (and every
// gather from them the slow path).
column zero_column(type_id type, std::size_t rows) {
  auto data = std::make_shared<column_data>(*null_column(type, rows).data());
  data->validity.clear();
  data->null_count = 0;
  return column(std::move(data));
}

struct checkpoint_layout {
  schema_ptr rows;
  std::vector<std::size_t> columns[2];  // side s's column c is column columns[s][c] of rows
};

checkpoint_layout make_checkpoint_layout(const stream_join_operator& join) {
  std::vector<field> fields{{"__side", type_id::int64, false},
                            {"__id", type_id::int64, false},
                            {"__deleted", type_id::boolean, false},
                            {"__time", type_id::int64, false},
                            {"__matched", type_id::boolean, false}};
  checkpoint_layout layout;
  for (std::size_t s = 0; s < 2; ++s) {
    std::vector<bool> taken(fields.size(), false);
    for (const field& f : join.side_schema(s)->fields()) {
      std::size_t at = first_row_column;
      while (at < fields.size() && (taken[at] || fields[at].type != f.type)) ++at;
      if (at == fields.size()) {
        fields.push_back({"__column" + std::to_string(at - first_row_column), f.type, true});
        taken.push_back(false);
      }
      taken[at] = true;
      layout.columns[s].push_back(at);
    }
  }
  layout.rows = make_schema(std::move(fields));
  return layout;
}

// Where rows written with this schema keep side s's columns: layout's, or (for a checkpoint written before
// the sides shared their columns) the left side's columns after the header, then the right side's.
std::vector<std::size_t> side_columns_of(const schema& written, const checkpoint_layout& layout, std::size_t s) {
  if (written == *layout.rows) return layout.columns[s];
  const std::size_t left = layout.columns[0].size(), right = layout.columns[1].size();
  if (written.size() != first_row_column + left + right || written[first_row_column].name.rfind("left.", 0) != 0)
    throw error("stream_stream_join: the checkpointed state has the columns [" + written.to_string() + "], expected [" +
                layout.rows->to_string() + "]; was it written by another query or version?");
  std::vector<std::size_t> columns;
  const std::size_t first = first_row_column + (s == 0 ? 0 : left);
  for (std::size_t c = 0; c < (s == 0 ? left : right); ++c) columns.push_back(first + c);
  return columns;
}

// One instance's state: both sides' buffered rows, in memory on either state backend (the watermark bounds
// them), checkpointed as rows of its checkpoint_layout.
class stream_join_state final : public operator_state {
 public:
  explicit stream_join_state(const stream_join_operator& join) : join_(&join), layout_(make_checkpoint_layout(join)) {}

  batch snapshot() const override {
    std::vector<std::uint32_t> removed[2], put[2];
    for (std::size_t s = 0; s < 2; ++s) sides[s].live_rows(put[s]);
    return rows_of(removed, put);
  }
  void restore(const batch& snapshot) override {
    for (auto& side : sides) side.clear();
    apply_changes(snapshot);
  }
  // The new rows of each side end its put rows in the changes: the buffer then keeps them there, in the
  // changes' columns (which the runtime's copy shares too), and drops the input batches they came in.
  batch take_changes() override {
    std::vector<std::uint32_t> removed[2], put[2];
    for (std::size_t s = 0; s < 2; ++s) sides[s].changed_rows(removed[s], put[s]);
    batch changes = rows_of(removed, put);
    std::size_t end = 0;  // of side s's rows in the changes
    for (std::size_t s = 0; s < 2; ++s) {
      end += removed[s].size() + put[s].size();
      if (const std::size_t added = sides[s].new_live_rows(); added > 0)
        sides[s].move_new_rows(side_rows(changes, layout_.columns[s], s, end - added, added));
    }
    for (auto& side : sides) side.commit();
    return changes;
  }
  void apply_changes(const batch& changes) override;
  std::size_t num_rows() const override { return sides[0].live_rows() + sides[1].live_rows(); }
  std::size_t memory_bytes() const override { return sides[0].memory_bytes() + sides[1].memory_bytes(); }

  side_buffer sides[2];
  std::int64_t epoch = -1;
  std::int64_t next_id = 0;
  // process()'s lists of the rows a batch buffers, kept to reuse their memory.
  struct buffered_rows {
    std::vector<std::uint32_t> picked;
    std::vector<std::int64_t> ids, times;
    std::vector<std::uint8_t> matched;
  } scratch;

 private:
  // Rows of layout_: side s's rows removed[s] (header, nulls), then its rows put[s] (header, its columns),
  // for side 0 then side 1. A shared column is concatenated once from slices of the buffered chunks.
  batch rows_of(const std::vector<std::uint32_t> (&removed)[2], const std::vector<std::uint32_t> (&put)[2]) const {
    const std::size_t rows = removed[0].size() + put[0].size() + removed[1].size() + put[1].size();
    const schema& fields = *layout_.rows;
    // The header's buffers, sized at once and filled in place.
    std::vector<std::shared_ptr<column_data>> header;
    for (std::size_t c = 0; c < first_row_column; ++c) {
      auto data = std::make_shared<column_data>();
      data->type = fields[c].type;
      data->length = rows;
      if (data->type == type_id::boolean) data->bools.resize(rows);
      else data->ints.resize(rows);
      header.push_back(std::move(data));
    }
    std::size_t row = 0;
    std::vector<std::vector<column>> parts(fields.size());
    for (std::size_t s = 0; s < 2; ++s) {
      auto add = [&](std::uint32_t r, bool deleted) {
        header[side_column]->ints[row] = static_cast<std::int64_t>(s);
        header[id_column]->ints[row] = sides[s].id(r);
        header[deleted_column]->bools[row] = deleted ? 1 : 0;
        header[time_column]->ints[row] = sides[s].time(r);
        header[matched_column]->bools[row] = sides[s].matched(r) ? 1 : 0;
        ++row;
      };
      for (auto r : removed[s]) add(r, true);
      for (auto r : put[s]) add(r, false);
      std::vector<bool> own(fields.size(), false);
      for (std::size_t c = 0; c < layout_.columns[s].size(); ++c) {
        const std::size_t at = layout_.columns[s][c];
        own[at] = true;
        if (!removed[s].empty()) parts[at].push_back(zero_column(fields[at].type, removed[s].size()));
        sides[s].column_parts(c, put[s], parts[at]);
      }
      const std::size_t side_rows = removed[s].size() + put[s].size();
      for (std::size_t at = first_row_column; at < fields.size(); ++at)
        if (!own[at] && side_rows > 0) parts[at].push_back(null_column(fields[at].type, side_rows));
    }
    std::vector<column> columns;
    for (auto& data : header) columns.push_back(column(std::move(data)));
    for (std::size_t at = first_row_column; at < fields.size(); ++at)
      columns.push_back(concat_columns(fields[at].type, parts[at]));
    return batch(layout_.rows, std::move(columns));
  }

  // Rows [first, first + count) of side s's columns (at `columns` of rows), as a batch of the side's schema.
  batch side_rows(const batch& rows, const std::vector<std::size_t>& columns, std::size_t s, std::size_t first,
                  std::size_t count) const {
    std::vector<column> out;
    for (const std::size_t at : columns) out.push_back(rows.col(at).slice(first, count));
    return batch(join_->side(s).rows, std::move(out));
  }

  const stream_join_operator* join_;
  checkpoint_layout layout_;
};

void stream_join_state::apply_changes(const batch& changes) {
  if (changes.num_columns() < first_row_column)
    throw error("stream_stream_join: the checkpointed state has " + std::to_string(changes.num_columns()) +
                " columns, expected " + std::to_string(layout_.rows->size()) + " [" + layout_.rows->to_string() +
                "]; was it written by another query or version?");
  const auto* side_of = changes.col(side_column).ints();
  const auto* ids = changes.col(id_column).ints();
  const auto* deleted = changes.col(deleted_column).bools();
  const auto* times = changes.col(time_column).ints();
  const auto* matched = changes.col(matched_column).bools();
  std::vector<std::uint32_t> added[2];
  std::size_t found[2] = {0, 0};  // per side, the row last found: the next search starts there
  for (std::size_t i = 0; i < changes.num_rows(); ++i) {
    const auto s = static_cast<std::size_t>(side_of[i]);
    if (s > 1) throw error("stream_stream_join: the checkpointed state names side " + std::to_string(side_of[i]));
    // Ids ascend in a buffer: one above its last is a new row, no search needed.
    const std::uint32_t r = sides[s].size() > 0 && ids[i] <= sides[s].id(static_cast<std::uint32_t>(sides[s].size() - 1))
                                ? sides[s].find_id(ids[i], found[s])
                                : no_row;
    if (r != no_row) found[s] = r;
    if (deleted[i]) {
      if (r != no_row) sides[s].evict(r);
    } else if (r != no_row) {
      if (matched[i]) sides[s].set_matched(r);
    } else {
      added[s].push_back(static_cast<std::uint32_t>(i));
    }
  }
  for (std::size_t s = 0; s < 2; ++s) {
    auto& rows = added[s];
    if (rows.empty()) continue;
    const auto by_id = [&](std::uint32_t a, std::uint32_t b) { return ids[a] < ids[b]; };
    const bool in_order = std::is_sorted(rows.begin(), rows.end(), by_id);
    if (!in_order) std::sort(rows.begin(), rows.end(), by_id);
    // A side's new rows are one run of the changes (rows_of writes them so): kept where they are, in the
    // changes' columns, which the instance that wrote them keeps its own new rows in too.
    const bool run = in_order && rows.back() - rows.front() + 1 == rows.size();
    const auto columns_of_side = side_columns_of(changes.schema(), layout_, s);
    batch chunk = run ? side_rows(changes, columns_of_side, s, rows.front(), rows.size()) : batch();
    if (!run) {
      std::vector<column> columns;
      for (const std::size_t at : columns_of_side) columns.push_back(take_rows(changes.col(at), rows));
      chunk = batch(join_->side(s).rows, std::move(columns));
    }
    std::vector<std::uint32_t> picked(rows.size());
    std::vector<std::int64_t> row_ids(rows.size()), row_times(rows.size());
    std::vector<std::uint8_t> row_matched(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      picked[i] = static_cast<std::uint32_t>(i);
      row_ids[i] = ids[rows[i]];
      row_times[i] = times[rows[i]];
      row_matched[i] = matched[rows[i]];
    }
    sides[s].add_chunk(std::move(chunk), picked, row_ids, row_times, row_matched, nullptr);
  }
  for (auto& side : sides) side.commit();
}

stream_join_state& typed(operator_state* state) {
  auto* join = dynamic_cast<stream_join_state*>(state);
  if (!join) throw error("stream_stream_join: the runtime passed a state of another operator");
  return *join;
}

// A row of one side: a row of a batch (an input batch or a buffered chunk), or nulls (none).
struct row_source {
  const batch* rows = nullptr;
  std::uint32_t row = 0;

  bool present() const { return rows != nullptr; }
};

// A value of the output: row `row` of column `from`, or null (from is null).
struct cell {
  const column* from = nullptr;
  std::uint32_t row = 0;
};

// The cells as one column, with one type dispatch for all of them: fixed-width values and strings without
// nulls are copied straight into the column's buffers, anything else through a builder.
column gather_cells(type_id type, const std::vector<cell>& cells) {
  const std::size_t n = cells.size();
  const bool plain = type != type_id::window && type != type_id::string_list &&
                     std::all_of(cells.begin(), cells.end(), [](const cell& c) { return c.from && !c.from->has_nulls(); });
  if (!plain) {
    column_builder out(type, n);
    for (const cell& c : cells) {
      if (c.from) out.append_from(*c.from, c.row);
      else out.append_null();
    }
    return out.finish();
  }
  auto data = std::make_shared<column_data>();
  data->type = type;
  data->length = n;
  auto copy = [&](auto values_of, auto& into) {
    into.resize(n);
    for (std::size_t i = 0; i < n; ++i) into[i] = values_of(*cells[i].from)[cells[i].row];
  };
  switch (type) {
    case type_id::boolean: copy([](const column& c) { return c.bools(); }, data->bools); break;
    case type_id::int64:
    case type_id::timestamp: copy([](const column& c) { return c.ints(); }, data->ints); break;
    case type_id::float64: copy([](const column& c) { return c.doubles(); }, data->doubles); break;
    case type_id::string: {
      data->offsets.resize(n + 1);
      std::uint64_t chars = 0;
      data->offsets[0] = 0;
      for (std::size_t i = 0; i < n; ++i) {
        chars += cells[i].from->str(cells[i].row).size();
        if (chars > std::numeric_limits<std::uint32_t>::max())
          throw error("stream_stream_join: an output string column exceeds 4 GiB of characters; use smaller batches");
        data->offsets[i + 1] = static_cast<std::uint32_t>(chars);
      }
      data->chars.resize(chars);
      for (std::size_t i = 0; i < n; ++i) {
        const std::string_view text = cells[i].from->str(cells[i].row);
        std::memcpy(data->chars.data() + data->offsets[i], text.data(), text.size());
      }
      break;
    }
    case type_id::window:
    case type_id::string_list: break;  // not plain
  }
  return column(std::move(data));
}

// The output rows of a call: the pairs of source rows first, then gathered a column at a time.
class output_builder {
 public:
  explicit output_builder(const stream_join_operator& op) : op_(op) {}
  void add(const row_source& left, const row_source& right) {
    left_.push_back(left);
    right_.push_back(right);
  }
  void emit(operator_context& ctx) {
    if (left_.empty()) return;
    const auto& columns = op_.output_columns();
    std::vector<column> out;
    std::vector<cell> cells(left_.size());
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const auto& from = columns[c];
      for (std::size_t i = 0; i < cells.size(); ++i) {
        const row_source& left = left_[i];
        const row_source& right = right_[i];
        // A using-column key is in both sides: the preferred side's value when that side is there.
        const bool take_right =
            from.left && from.right ? (from.prefer_right ? right.present() : !left.present()) : !from.left;
        const row_source& source = take_right ? right : left;
        cells[i] = source.present() ? cell{&source.rows->col(take_right ? *from.right : *from.left), source.row} : cell{};
      }
      out.push_back(gather_cells((*op_.output_schema())[c].type, cells));
    }
    ctx.emit(batch(op_.output_schema(), std::move(out)));
  }

 private:
  const stream_join_operator& op_;
  std::vector<row_source> left_, right_;
};

std::optional<std::size_t> time_index(const schema& side, const std::string& name) {
  if (name.empty()) return std::nullopt;
  return side.find(name);
}

}  // namespace

// ---------------------------------------------------------------- the operator

stream_join_operator::stream_join_operator(schema_ptr left, schema_ptr right, stream_join_spec spec)
    : spec_(std::move(spec)) {
  if (spec_.left_keys.empty() || spec_.left_keys.size() != spec_.right_keys.size())
    throw error("join: a stream-stream join needs key columns on both sides, as many on each");
  sides_[0].rows = std::move(left);
  sides_[1].rows = std::move(right);
  std::vector<type_id> key_types;
  for (std::size_t k = 0; k < spec_.left_keys.size(); ++k) {
    const std::string& l = spec_.left_keys[k];
    const std::string& r = spec_.right_keys[k];
    const auto li = sides_[0].rows->find(l);
    const auto ri = sides_[1].rows->find(r);
    if (!li) throw error("join: key column '" + l + "' is not a column of the left side [" + sides_[0].rows->to_string() + "]");
    if (!ri) throw error("join: key column '" + r + "' is not a column of the right side [" + sides_[1].rows->to_string() + "]");
    const type_id lt = (*sides_[0].rows)[*li].type, rt = (*sides_[1].rows)[*ri].type;
    if (lt != rt)
      throw error("join: key column '" + l + "' is " + std::string(type_name(lt)) + " on the left and '" + r + "' is " +
                  std::string(type_name(rt)) + " on the right; cast one side to the other's type first");
    sides_[0].keys.push_back(*li);
    sides_[1].keys.push_back(*ri);
    key_types.push_back(lt);
  }
  join_keys_ = key_layout(std::move(key_types));
  sides_[0].time = time_index(*sides_[0].rows, spec_.left_time);
  sides_[1].time = time_index(*sides_[1].rows, spec_.right_time);
  if (!spec_.left_time.empty() && (!sides_[0].time || !sides_[1].time))
    throw error("join: the time range's columns '" + spec_.left_time + "' and '" + spec_.right_time +
                "' are not columns of the left and the right side");

  // Spark's output: for using-columns the keys once, then each side's other columns; else all columns of
  // both sides. The side an outer join may pad with nulls is nullable.
  const bool left_nullable = spec_.type == join_type::right_outer, right_nullable = spec_.type == join_type::left_outer;
  std::vector<field> fields;
  auto add_side = [&](std::size_t s, bool nullable) {
    for (std::size_t c = 0; c < sides_[s].rows->size(); ++c) {
      if (spec_.using_columns && std::find(sides_[s].keys.begin(), sides_[s].keys.end(), c) != sides_[s].keys.end()) continue;
      field f = (*sides_[s].rows)[c];
      f.nullable = f.nullable || nullable;
      fields.push_back(f);
      output_column from;
      (s == 0 ? from.left : from.right) = c;
      columns_.push_back(from);
    }
  };
  if (spec_.using_columns) {
    join_output_schema(*sides_[0].rows, *sides_[1].rows, spec_.left_keys, join_type::inner);  // checks names and types
    for (std::size_t k = 0; k < spec_.left_keys.size(); ++k) {
      fields.push_back((*sides_[0].rows)[sides_[0].keys[k]]);
      columns_.push_back({sides_[0].keys[k], sides_[1].keys[k], spec_.type == join_type::right_outer});
    }
  } else {
    join_output_schema(*sides_[0].rows, *sides_[1].rows, join_type::inner);  // refuses shared column names
  }
  add_side(0, left_nullable);
  add_side(1, right_nullable);
  output_ = make_schema(std::move(fields));
}

std::string stream_join_operator::name() const {
  std::string on;
  for (std::size_t k = 0; k < spec_.left_keys.size(); ++k)
    on += (k ? ", " : "") + spec_.left_keys[k] + (spec_.using_columns ? "" : " = " + spec_.right_keys[k]);
  std::string range;
  if (!spec_.left_time.empty()) {
    auto bound = [](std::int64_t b, std::int64_t unbounded) {
      return b == unbounded ? std::string("unbounded") : std::to_string(b) + " us";
    };
    range = ", " + spec_.right_time + " - " + spec_.left_time + " in [" +
            bound(spec_.lower, stream_join_spec::unbounded_below) + ", " +
            bound(spec_.upper, stream_join_spec::unbounded_above) + "]";
  }
  return "StreamingSymmetricHashJoin " + std::string(to_string(spec_.type)) + " [" + on + range + "]";
}

std::unique_ptr<operator_state> stream_join_operator::make_state() const {
  return std::make_unique<stream_join_state>(*this);
}

bool stream_join_operator::ever_evicts(std::size_t s) const {
  if (spec_.left_time.empty()) return false;
  return s == 0 ? spec_.upper != stream_join_spec::unbounded_above : spec_.lower != stream_join_spec::unbounded_below;
}

bool stream_join_operator::evictable(std::size_t s, std::int64_t time, std::int64_t watermark) const {
  if (!ever_evicts(s)) return false;
  // A future row of the other side has an event time after the watermark (one at or behind it is late, as
  // Spark's rule). A left row (time l) matches right rows in [l + lower, l + upper]; a right row (time r)
  // left rows in [r - upper, r - lower].
  return s == 0 ? time <= watermark - spec_.upper : time <= watermark + spec_.lower;
}

void stream_join_operator::process(const batch& input, std::size_t input_index, operator_state* state,
                                   operator_context& ctx) const {
  if (input_index > 1) throw error("stream_stream_join: a join has two inputs, got a batch for input " + std::to_string(input_index));
  stream_join_state& st = typed(state);
  if (ctx.epoch() != st.epoch) {
    st.epoch = ctx.epoch();
    st.next_id = 0;
  }
  const std::size_t s = input_index, other = 1 - s;
  const side_layout& mine = sides_[s];
  side_buffer& theirs = st.sides[other];
  const std::size_t n = input.num_rows();

  std::vector<column> key_columns;
  for (auto k : mine.keys) key_columns.push_back(input.col(k));
  const encoded_keys join_keys = encode_keys(join_keys_, key_columns, n);
  const std::int64_t watermark = ctx.watermark();
  const column* times = mine.time ? &input.col(*mine.time) : nullptr;
  const bool ranged = !spec_.left_time.empty();
  const bool mark_theirs = preserves(other);
  output_builder out(*this);
  std::size_t late = 0;
  // The rows this batch buffers: their positions, ids (unique within the instance: the epoch in the high
  // bits, a count within it in the low ones), event times and whether they matched.
  auto& [picked, ids, buffered_times, matched_rows] = st.scratch;
  picked.clear();
  ids.clear();
  buffered_times.clear();
  matched_rows.clear();
  auto add_pair = [&](const row_source& mine_row, const row_source& other_row) {
    if (s == 0) out.add(mine_row, other_row);
    else out.add(other_row, mine_row);
  };
  theirs.link_pending(join_keys_, sides_[other].keys);
  constexpr std::size_t ahead = 8;  // rows whose slot in the other side's table is fetched while earlier ones probe
  for (std::size_t r = 0; r < n; ++r) {
    if (r + ahead < n) theirs.prefetch(side_buffer::tag_of(join_keys.hashes[r + ahead]));
    const row_source row{&input, static_cast<std::uint32_t>(r)};
    if (times && times->valid(r) && watermark != operator_context::no_watermark && times->ints()[r] <= watermark) {
      ++late;
      continue;
    }
    const bool null_key = std::any_of(key_columns.begin(), key_columns.end(), [&](const column& c) { return c.is_null(r); });
    if (null_key || (ranged && !times->valid(r))) {
      // It can never match: an outer join's preserved side emits it at once.
      if (preserves(s)) add_pair(row, row_source{});
      continue;
    }
    const std::int64_t time = ranged ? times->ints()[r] : 0;
    bool matched = false;
    for (std::uint32_t b = theirs.first(join_keys, r); b != no_row; b = theirs.next(b)) {
      if (!theirs.live(b)) continue;
      if (ranged) {
        const std::int64_t right_minus_left = s == 0 ? theirs.time(b) - time : time - theirs.time(b);
        if (right_minus_left < spec_.lower || right_minus_left > spec_.upper) continue;
      }
      matched = true;
      if (mark_theirs) theirs.set_matched(b);
      add_pair(row, row_source{&theirs.chunk(b), theirs.position(b)});
    }
    picked.push_back(static_cast<std::uint32_t>(r));
    ids.push_back((st.epoch << 32) | st.next_id++);
    buffered_times.push_back(time);
    matched_rows.push_back(matched ? 1 : 0);
  }
  st.sides[s].add_chunk(input, picked, ids, buffered_times, matched_rows, &join_keys);
  if (late > 0) ctx.count_rows_dropped_by_watermark(late);
  out.emit(ctx);
}

void stream_join_operator::on_watermark(std::int64_t watermark, operator_state* state, operator_context& ctx) const {
  stream_join_state& st = typed(state);
  output_builder out(*this);
  for (std::size_t s = 0; s < 2; ++s) {
    if (!ever_evicts(s)) continue;
    side_buffer& side = st.sides[s];
    for (std::uint32_t r = 0; r < side.size(); ++r) {
      if (!side.live(r) || !evictable(s, side.time(r), watermark)) continue;
      if (preserves(s) && !side.matched(r)) {
        const row_source row{&side.chunk(r), side.position(r)};
        if (s == 0) out.add(row, row_source{});
        else out.add(row_source{}, row);
      }
      side.evict(r);
    }
  }
  out.emit(ctx);
}

std::optional<operator_descriptor> stream_join_operator::descriptor() const {
  codec_writer out;
  out.write(to_string(spec_.type)).write(spec_.using_columns ? "using" : "condition");
  out.write(std::to_string(spec_.left_keys.size()));
  for (std::size_t k = 0; k < spec_.left_keys.size(); ++k) out.write(spec_.left_keys[k]).write(spec_.right_keys[k]);
  out.write(spec_.left_time).write(spec_.right_time).write(std::to_string(spec_.lower)).write(std::to_string(spec_.upper));
  out.write(*sides_[1].rows);
  return operator_descriptor{"stream_stream_join", out.text()};
}

operator_ptr stream_join_operator::from_arguments(const std::string& arguments, const schema_ptr& input) {
  codec_reader reader(arguments, "its arguments");
  stream_join_spec spec;
  spec.type = parse_join_type(reader.read_string());
  spec.using_columns = reader.read_string() == "using";
  const auto keys = reader.read_number("the key count");
  for (std::int64_t k = 0; k < keys; ++k) {
    spec.left_keys.push_back(reader.read_string());
    spec.right_keys.push_back(reader.read_string());
  }
  spec.left_time = reader.read_string();
  spec.right_time = reader.read_string();
  spec.lower = reader.read_number("the lower bound");
  spec.upper = reader.read_number("the upper bound");
  schema_ptr right = reader.read_schema();
  reader.expect_end();
  return std::make_shared<stream_join_operator>(input, std::move(right), std::move(spec));
}

}  // namespace flow
