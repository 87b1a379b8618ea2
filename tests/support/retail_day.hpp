// One day of ../shared/data/retail-by-day decoded as the custom_topology example's retail schema
// (CustomerID a double, InvoiceDate a timestamp), FAILFAST.
#pragma once

#include <memory>
#include <string>

#include "../../examples/custom_topology/retail_operators.hpp"
#include "flow/formats.hpp"
#include "test_support.hpp"

namespace flow::test {

inline batch retail_day(const std::string& day) {
  const auto path = shared_data_dir() / "retail-by-day" / (day + ".csv");
  auto text = std::make_shared<const std::string>(read_file(path));
  options opts;
  opts.set("header", "true");
  opts.set("mode", "FAILFAST");
  decode_stats stats;
  return make_decoder("csv", opts, retail::retail_schema())->decode(raw_chunk{text, 0, text->size(), path.string(), 1}, stats);
}

}  // namespace flow::test
