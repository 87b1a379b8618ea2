// A source format for benches whose input is in memory: it hands out prebuilt batches, all of them as one
// epoch (offsets "0" before, "1" after), sharing their columns (no copy).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/registry.hpp"

namespace bench {

class batches_source {
 public:
  // Registers the format (once per process and name): read_stream().format(format).load() reads the batches.
  batches_source(const std::string& format, flow::schema_ptr schema)
      : input_(std::make_shared<input>(input{std::move(schema), {}})) {
    flow::source_format source;
    source.resolve = [input = input_](flow::scan_spec& scan) { scan.schema = input->schema; };
    source.make = [input = input_](const flow::scan_spec&) -> std::unique_ptr<flow::source_reader> {
      return std::make_unique<reader>(input);
    };
    flow::register_source_format(format, source);
  }

  // What the queries started from now on read.
  void set(std::vector<flow::batch> batches) {
    input_->batches = std::make_shared<const std::vector<flow::batch>>(std::move(batches));
  }
  const std::vector<flow::batch>& batches() const { return *input_->batches; }

 private:
  struct input {
    flow::schema_ptr schema;
    std::shared_ptr<const std::vector<flow::batch>> batches;
  };

  class reader final : public flow::source_reader {
   public:
    explicit reader(const std::shared_ptr<input>& in) : schema_(in->schema), batches_(in->batches) {}
    std::string description() const override { return "BenchBatches[" + std::to_string(batches_->size()) + " batches]"; }
    flow::schema_ptr output_schema() const override { return schema_; }
    std::string initial_offset() override { return "0"; }
    std::optional<std::string> latest_offset(const std::string& start) override {
      return start == "0" ? std::optional<std::string>("1") : std::nullopt;
    }
    void begin_read(const std::string& start, const std::string& end) override {
      next_ = start == "0" && end == "1" ? 0 : batches_->size();
    }
    std::optional<flow::source_unit> next() override {
      if (next_ >= batches_->size()) return std::nullopt;
      return flow::source_unit{(*batches_)[next_++]};
    }

   private:
    flow::schema_ptr schema_;
    std::shared_ptr<const std::vector<flow::batch>> batches_;
    std::size_t next_ = 0;
  };

  std::shared_ptr<input> input_;
};

}  // namespace bench
