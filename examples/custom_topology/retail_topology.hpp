// The custom_topology example's topology, shared by the example and bench/topology_bench: the retail files
// as a stream, one source vertex feeding two branches of keyed operators (retail_operators.hpp), each
// ending in a sink that keeps the newest row per key.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flow/session.hpp"
#include "flow/topology.hpp"
#include "retail_operators.hpp"

namespace retail {

// The newest row per key of an update-mode stream (the operators emit the keys each epoch changed). Each
// key gets a number; the rows' values lie side by side, key n's at n times the row width, so that an upsert
// of a known key overwrites them in place, without copying the key or allocating.
class latest_rows {
 public:
  flow::foreach_batch_function sink() {
    return [this](const flow::batch& rows, std::int64_t) {
      std::lock_guard<std::mutex> lock(mutex_);
      const flow::column& keys = rows.col(0);
      width_ = rows.num_columns() - 1;
      for (std::size_t i = 0; i < rows.num_rows(); ++i) {
        const std::string_view key = keys.is_null(i) ? std::string_view() : keys.str(i);
        auto number = numbers_.find(key);
        if (number == numbers_.end()) {
          number = numbers_.emplace(std::string(key), numbers_.size()).first;
          values_.resize(values_.size() + width_);
        }
        flow::value* row = values_.data() + number->second * width_;
        for (std::size_t c = 0; c < width_; ++c) row[c] = rows.at(i, c + 1);
      }
    };
  }
  // Sorted by key (byte order).
  std::map<std::string, std::vector<flow::value>> rows() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, std::vector<flow::value>> sorted;
    for (const auto& [key, number] : numbers_) {
      const auto row = values_.begin() + static_cast<std::ptrdiff_t>(number * width_);
      sorted.emplace(key, std::vector<flow::value>(row, row + static_cast<std::ptrdiff_t>(width_)));
    }
    return sorted;
  }

 private:
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  std::mutex mutex_;
  std::unordered_map<std::string, std::size_t, key_hash, std::equal_to<>> numbers_;
  std::vector<flow::value> values_;
  std::size_t width_ = 0;  // values per row
};

// The retail files of data_dir as a stream, one file per epoch.
inline flow::data_frame read_sales(flow::session& session, const std::string& data_dir) {
  return session.read_stream()
      .format("csv")
      .option("header", true)
      .option("maxFilesPerTrigger", 1)
      .schema(retail_schema())
      .load(data_dir + "/*.csv");
}

// Branch 1: keyed by Country and InvoiceNo (what each invoice adds, which invoices are new), then by Country
// -> countries (Country, revenue, invoices). Branch 2: keyed by StockCode -> stock (StockCode, units).
inline void build_topology(flow::topology& topology, const flow::data_frame& sales, std::size_t parallelism,
                           latest_rows& countries, latest_rows& stock) {
  // Only the columns the branches read cross the two shuffles (the select runs in the source vertex).
  auto rows = topology.source("retail", sales, parallelism)
                  .select(std::vector<std::string>{"InvoiceNo", "StockCode", "Quantity", "UnitPrice", "Country"});
  auto invoices = std::make_shared<invoice_revenue>(rows.schema());
  rows.key_by({"Country", "InvoiceNo"})
      .apply("invoice_revenue", invoices, parallelism)
      .key_by({"Country"})
      .apply("country_revenue", std::make_shared<country_revenue>(invoices->output_schema()), parallelism)
      .sink("countries")
      .output_mode("update")
      .upsert_keys({"Country"})
      .foreach_batch(countries.sink());
  rows.key_by({"StockCode"})
      .apply("stock_units", std::make_shared<stock_units>(rows.schema()), parallelism)
      .sink("stock")
      .output_mode("update")
      .upsert_keys({"StockCode"})
      .foreach_batch(stock.sink());
}

}  // namespace retail
