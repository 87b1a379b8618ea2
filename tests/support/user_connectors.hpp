// A source and a sink as a user writes them outside libflow, for the registry tests: only public headers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flow/registry.hpp"

namespace flow::test {

// Emits value = 0, 1, 2, ... (int64), rowsPerEpoch rows per epoch until it has emitted rows in all.
// Offsets are the number of rows emitted ("0", "5", ...), so every range replays the same rows.
class sequence_source final : public source_reader {
 public:
  sequence_source(std::int64_t rows, std::int64_t rows_per_epoch) : rows_(rows), rows_per_epoch_(rows_per_epoch) {}
  static schema_ptr fixed_schema() { return make_schema({{"value", type_id::int64, false}}); }
  std::string description() const override { return "SequenceSource[rows=" + std::to_string(rows_) + "]"; }
  schema_ptr output_schema() const override { return fixed_schema(); }
  std::string initial_offset() override { return "0"; }
  std::optional<std::string> latest_offset(const std::string& start) override {
    const std::int64_t from = std::stoll(start);
    if (from >= rows_) return std::nullopt;
    return std::to_string(std::min(rows_, from + rows_per_epoch_));
  }
  void begin_read(const std::string& start, const std::string& end) override {
    std::vector<std::int64_t> values;
    for (std::int64_t v = std::stoll(start); v < std::stoll(end); ++v) values.push_back(v);
    pending_ = batch(fixed_schema(), {make_int_column(values)});
    emitted_ += static_cast<std::int64_t>(values.size());
  }
  std::optional<source_unit> next() override {
    auto unit = std::move(pending_);
    pending_.reset();
    if (!unit) return std::nullopt;
    return source_unit{std::move(*unit)};
  }
  connector_metrics metrics() const override { return {{"numRowsEmitted", emitted_}}; }

 private:
  std::int64_t rows_, rows_per_epoch_;
  std::int64_t emitted_ = 0;
  std::optional<batch> pending_;
};

// The sequence source as a registered format: options rows (required) and rowsPerEpoch (default 10).
inline source_format sequence_format() {
  source_format format;
  format.resolve = [](scan_spec& scan) {
    if (!scan.opts.has("rows")) throw error("the sequence source needs option rows: option(\"rows\", 100)");
    if (scan.opts.get_int("rows", 0) < 0 || scan.opts.get_int("rowsPerEpoch", 10) <= 0)
      throw error("the sequence source needs rows >= 0 and rowsPerEpoch > 0");
    if (scan.schema) throw error("the sequence source has a fixed schema (value: int64); drop schema(...)");
    scan.schema = sequence_source::fixed_schema();
  };
  format.make = [](const scan_spec& scan) -> std::unique_ptr<source_reader> {
    return std::make_unique<sequence_source>(scan.opts.get_int("rows", 0), scan.opts.get_int("rowsPerEpoch", 10));
  };
  return format;
}

// What a collecting sink committed, epoch by epoch, for the test to read.
struct collected {
  std::mutex mutex;
  schema_ptr schema;
  std::map<std::int64_t, std::vector<batch>> epochs;
  bool had_console = false;  // whether the sink's context carried the session's console stream
};

class collect_sink final : public sink_writer {
 public:
  collect_sink(std::shared_ptr<collected> into, std::string label) : into_(std::move(into)), label_(std::move(label)) {}
  std::string description() const override { return "CollectSink[" + label_ + "]"; }
  void open(const schema_ptr& input, output_mode, const std::vector<std::string>&) override {
    std::lock_guard<std::mutex> lock(into_->mutex);
    into_->schema = input;
  }
  void write(std::int64_t epoch, const batch& rows) override { pending_[epoch].push_back(rows); }
  void commit(std::int64_t epoch) override {
    std::lock_guard<std::mutex> lock(into_->mutex);
    into_->epochs[epoch] = std::move(pending_[epoch]);
    pending_.erase(epoch);
  }
  void abort(std::int64_t epoch) override { pending_.erase(epoch); }

 private:
  std::shared_ptr<collected> into_;
  std::string label_;
  std::map<std::int64_t, std::vector<batch>> pending_;
};

// A sink format that collects into `into`; option label names it in its description.
inline sink_factory collect_format(std::shared_ptr<collected> into) {
  return [into](const sink_spec& spec, const sink_context& ctx) -> std::unique_ptr<sink_writer> {
    {
      std::lock_guard<std::mutex> lock(into->mutex);
      into->had_console = ctx.console != nullptr;
    }
    return std::make_unique<collect_sink>(into, spec.opts.get("label", "unnamed"));
  };
}

}  // namespace flow::test
