// The dstream operators that do not depend on the element type (flow/dstream_operators.hpp).
#include "flow/dstream_operators.hpp"

#include <map>

namespace flow {

namespace dstream_detail {

batch interval_rows::take() {
  batch all = batches_.empty() ? batch::empty(schema_) : batches_.size() == 1 ? batches_.front() : concat(batches_);
  batches_.clear();
  return all;
}

std::size_t interval_rows::memory_bytes() const {
  std::size_t bytes = 0;
  for (const auto& b : batches_) bytes += b.byte_size();
  return bytes;
}

namespace {

// The input batches of the window's batches, oldest first (several may share a batch index). Its changes are the whole window (rows of
// "__batch" and the elements): a window is replaced at every batch anyway as batches enter and leave.
class window_batches final : public operator_state {
 public:
  explicit window_batches(const schema_ptr& elements) : elements_(elements) {
    std::vector<field> fields{{"__batch", type_id::int64, false}};
    fields.insert(fields.end(), elements->fields().begin(), elements->fields().end());
    state_ = make_schema(std::move(fields));
  }

  batch snapshot() const override {
    std::vector<column> columns(state_->size());
    std::vector<std::int64_t> indexes;
    std::vector<batch> parts;
    for (const auto& [b, rows] : batches) {
      indexes.insert(indexes.end(), rows.num_rows(), b);
      parts.push_back(rows);
    }
    const batch elements = parts.empty() ? batch::empty(elements_) : concat(parts);
    columns[0] = make_int_column(indexes);
    for (std::size_t c = 0; c < elements.num_columns(); ++c) columns[c + 1] = elements.col(c);
    return batch(state_, std::move(columns));
  }
  void restore(const batch& snapshot) override {
    batches.clear();
    const std::int64_t* indexes = snapshot.col(0).ints();
    std::vector<column> element_columns(snapshot.columns().begin() + 1, snapshot.columns().end());
    const batch elements(elements_, std::move(element_columns));
    // Rows of one batch index become one part.
    for (std::size_t start = 0; start < snapshot.num_rows();) {
      std::size_t end = start;
      while (end < snapshot.num_rows() && indexes[end] == indexes[start]) ++end;
      batches.emplace_back(indexes[start], elements.slice(start, end - start));
      start = end;
    }
  }
  batch take_changes() override { return snapshot(); }
  void apply_changes(const batch& changes) override { restore(changes); }
  std::size_t num_rows() const override {
    std::size_t rows = 0;
    for (const auto& [b, part] : batches) rows += part.num_rows();
    return rows;
  }
  std::size_t memory_bytes() const override {
    std::size_t bytes = 0;
    for (const auto& [b, part] : batches) bytes += part.byte_size();
    return bytes;
  }

  std::vector<std::pair<std::int64_t, batch>> batches;

 private:
  schema_ptr elements_, state_;
};

}  // namespace

}  // namespace dstream_detail

dstream_window_operator::dstream_window_operator(schema_ptr elements, std::int64_t length, std::int64_t slide)
    : elements_(std::move(elements)), length_(length), slide_(slide) {
  if (length_ <= 0 || slide_ <= 0)
    throw error("dstream window: the length (" + std::to_string(length_) + " batches) and slide (" +
                std::to_string(slide_) + " batches) must be positive");
}

std::string dstream_window_operator::name() const {
  return "window(" + std::to_string(length_) + " batches, slide " + std::to_string(slide_) + ")";
}

std::unique_ptr<operator_state> dstream_window_operator::make_state() const {
  return std::make_unique<dstream_detail::window_batches>(elements_);
}

void dstream_window_operator::process(const batch& input, std::size_t, operator_state* state,
                                      operator_context& ctx) const {
  if (input.num_rows() == 0) return;
  static_cast<dstream_detail::window_batches*>(state)->batches.emplace_back(dstream_detail::batch_index(ctx), input);
}

void dstream_window_operator::end_epoch(operator_state* state, operator_context& ctx) const {
  auto& window = static_cast<dstream_detail::window_batches*>(state)->batches;
  const std::int64_t b = dstream_detail::batch_index(ctx);
  std::erase_if(window, [&](const auto& part) { return part.first <= b - length_; });
  if (b % slide_ != 0 || window.empty()) return;
  std::vector<batch> parts;
  for (const auto& [index, rows] : window) parts.push_back(rows);
  ctx.emit(concat(parts));
}

}  // namespace flow
