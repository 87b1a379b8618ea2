// The sinks that take an epoch's rows at its commit: foreach and foreachBatch (hand them to user code)
// and noop (drops them).
#include "flow/connectors/foreach.hpp"
#include "flow/connectors/noop.hpp"

#include <exception>
#include <map>
#include <optional>
#include <vector>

namespace flow::connectors {

namespace {

// What both sinks share: the epoch's batches held until commit, the replay rule and the metrics.
class epoch_collecting_sink : public sink_writer {
 public:
  explicit epoch_collecting_sink(std::string description) : description_(std::move(description)) {}

  std::string description() const override { return description_; }

  connector_metrics metrics() const override {
    return {{"numEpochs", epochs_delivered_}, {"numOutputRows", rows_delivered_}};
  }

  void open(const schema_ptr& input, output_mode, const std::vector<std::string>&) override { schema_ = input; }

  void write(std::int64_t epoch, const batch& rows) override {
    if (already_committed(epoch) || rows.num_rows() == 0) return;
    // Batches from different operators may name or flag fields differently: hand out the query's schema.
    if (schema_ && rows.schema() != *schema_ && rows.num_columns() == schema_->size()) {
      pending_[epoch].push_back(batch(schema_, rows.columns()));
    } else {
      pending_[epoch].push_back(rows);
    }
  }

  void commit(std::int64_t epoch) override {
    auto node = pending_.extract(epoch);
    if (already_committed(epoch)) return;
    rows_delivered_ += deliver(epoch, node.empty() ? std::vector<batch>{} : std::move(node.mapped()));
    last_committed_ = epoch;
    ++epochs_delivered_;
  }

  void abort(std::int64_t epoch) override { pending_.erase(epoch); }

 protected:
  // Hands the epoch's rows to the user's code; returns how many rows it took.
  virtual std::int64_t deliver(std::int64_t epoch, std::vector<batch> rows) = 0;
  const schema_ptr& schema() const { return schema_; }

 private:
  bool already_committed(std::int64_t epoch) const { return last_committed_ && epoch <= *last_committed_; }

  schema_ptr schema_;
  std::map<std::int64_t, std::vector<batch>> pending_;
  std::optional<std::int64_t> last_committed_;
  const std::string description_;
  std::int64_t epochs_delivered_ = 0;
  std::int64_t rows_delivered_ = 0;
};

class foreach_sink final : public epoch_collecting_sink {
 public:
  explicit foreach_sink(std::shared_ptr<foreach_writer> writer)
      : epoch_collecting_sink("ForeachSink"), writer_(std::move(writer)) {
    if (!writer_) throw error("foreach sink: no writer given; pass a foreach_writer to foreach(...)");
  }

 private:
  std::int64_t deliver(std::int64_t epoch, std::vector<batch> rows) override {
    constexpr std::int64_t partition = 0;
    std::int64_t processed = 0;
    if (writer_->open(partition, epoch)) {
      try {
        for (const auto& b : rows) {
          for (std::size_t i = 0; i < b.num_rows(); ++i) writer_->process(row_view(b, i));
        }
      } catch (...) {
        auto failure = std::current_exception();
        writer_->close(exception_message(failure));
        std::rethrow_exception(failure);
      }
      for (const auto& b : rows) processed += static_cast<std::int64_t>(b.num_rows());
    }
    writer_->close(std::nullopt);
    return processed;
  }

  std::shared_ptr<foreach_writer> writer_;
};

class foreach_batch_sink final : public epoch_collecting_sink {
 public:
  explicit foreach_batch_sink(foreach_batch_function fn)
      : epoch_collecting_sink("ForeachBatchSink"), fn_(std::move(fn)) {
    if (!fn_) throw error("foreachBatch sink: no function given; pass one to foreach_batch(...)");
  }

 private:
  std::int64_t deliver(std::int64_t epoch, std::vector<batch> rows) override {
    batch whole = rows.empty()       ? batch::empty(schema() ? schema() : make_schema({}))
                  : rows.size() == 1 ? rows.front()
                                     : concat(rows);
    fn_(whole, epoch);
    return static_cast<std::int64_t>(whole.num_rows());
  }

  foreach_batch_function fn_;
};

class noop_sink final : public epoch_collecting_sink {
 public:
  noop_sink() : epoch_collecting_sink("NoopSink") {}

 private:
  std::int64_t deliver(std::int64_t, std::vector<batch> rows) override {
    std::int64_t n = 0;
    for (const auto& b : rows) n += static_cast<std::int64_t>(b.num_rows());
    return n;
  }
};

}  // namespace

std::unique_ptr<sink_writer> make_foreach_sink(std::shared_ptr<foreach_writer> writer) {
  return std::make_unique<foreach_sink>(std::move(writer));
}

std::unique_ptr<sink_writer> make_foreach_batch_sink(foreach_batch_function fn) {
  return std::make_unique<foreach_batch_sink>(std::move(fn));
}

std::unique_ptr<sink_writer> make_noop_sink() { return std::make_unique<noop_sink>(); }

}  // namespace flow::connectors
