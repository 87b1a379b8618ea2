#include "flow/connectors/noop.hpp"

#include <map>
#include <optional>

namespace flow::connectors {

namespace {

class noop_sink final : public sink_writer {
 public:
  std::string description() const override { return "NoopSink"; }
  void open(const schema_ptr&, output_mode, const std::vector<std::string>&) override {}

  void write(std::int64_t epoch, const batch& rows) override {
    if (!already_committed(epoch)) pending_rows_[epoch] += static_cast<std::int64_t>(rows.num_rows());
  }

  void commit(std::int64_t epoch) override {
    auto node = pending_rows_.extract(epoch);
    if (already_committed(epoch)) return;
    rows_ += node.empty() ? 0 : node.mapped();
    ++epochs_;
    last_committed_ = epoch;
  }

  void abort(std::int64_t epoch) override { pending_rows_.erase(epoch); }

  connector_metrics metrics() const override { return {{"numEpochs", epochs_}, {"numOutputRows", rows_}}; }

 private:
  bool already_committed(std::int64_t epoch) const { return last_committed_ && epoch <= *last_committed_; }

  std::map<std::int64_t, std::int64_t> pending_rows_;
  std::optional<std::int64_t> last_committed_;
  std::int64_t epochs_ = 0;
  std::int64_t rows_ = 0;
};

}  // namespace

std::unique_ptr<sink_writer> make_noop_sink() { return std::make_unique<noop_sink>(); }

}  // namespace flow::connectors
