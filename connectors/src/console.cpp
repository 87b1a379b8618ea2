// The console sink.
#include "flow/connectors/console.hpp"

#include <map>
#include <vector>

namespace flow::connectors {

namespace {

class console_sink final : public sink_writer {
 public:
  console_sink(std::ostream& out, const options& opts)
      : out_(out), num_rows_(opts.get_int("numRows", 20)), truncate_(opts.get_bool("truncate", true)) {
    if (num_rows_ < 0) throw error("console sink: numRows must not be negative, got " + std::to_string(num_rows_));
  }

  std::string description() const override { return "ConsoleSink"; }

  void open(const schema_ptr& input, output_mode, const std::vector<std::string>&) override { schema_ = input; }

  void write(std::int64_t epoch, const batch& rows) override { pending_[epoch].push_back(rows); }

  void commit(std::int64_t epoch) override {
    auto node = pending_.extract(epoch);
    std::vector<batch> rows;
    if (!node.empty()) {
      for (auto& b : node.mapped()) {
        if (b.num_rows() > 0) rows.push_back(std::move(b));
      }
    }
    if (rows.empty()) rows.push_back(batch::empty(schema_ ? schema_ : make_schema({})));
    out_ << "-------------------------------------------\n"
         << "Batch: " << epoch << "\n"
         << "-------------------------------------------\n"
         << format_table(rows, static_cast<std::size_t>(num_rows_), truncate_) << "\n";
    out_.flush();
  }

  void abort(std::int64_t epoch) override { pending_.erase(epoch); }

 private:
  std::ostream& out_;
  std::int64_t num_rows_;
  bool truncate_;
  schema_ptr schema_;
  std::map<std::int64_t, std::vector<batch>> pending_;
};

}  // namespace

std::unique_ptr<sink_writer> make_console_sink(std::ostream& out, options opts) {
  return std::make_unique<console_sink>(out, opts);
}

}  // namespace flow::connectors
