// The stream-stream join operator, driven by hand as the runtime drives it (watermark, batches of both
// inputs, take_changes after each epoch): invoice lines of a retail day joined with "shipments" derived
// from them, fed shuffled over many epochs, against a plain loop over the same rows; late rows; bounded
// state; a restore from a snapshot; and the condition's analysis and Spark's refusals.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>

#include "collecting_context.hpp"
#include "flow/compile.hpp"
#include "flow/operator_registry.hpp"
#include "flow/stream_join.hpp"
#include "retail_day.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::error_of;

namespace {

constexpr std::int64_t minute = 60'000'000;

schema_ptr lines_schema() {
  return make_schema({{"StockCode", type_id::string, true}, {"InvoiceNo", type_id::string, true},
                      {"Quantity", type_id::int64, true}, {"InvoiceDate", type_id::timestamp, true}});
}
schema_ptr shipments_schema() {
  return make_schema({{"ShipCode", type_id::string, true}, {"ShipNo", type_id::int64, false},
                      {"ShippedAt", type_id::timestamp, true}});
}

struct line {
  std::string code, invoice;
  std::int64_t quantity, at;
};
struct shipment {
  std::string code;
  std::int64_t number, at;
};

// The invoice lines of a retail day, and a shipment for every third of them 0 to 89 minutes after it (some
// outside the hour the join allows), plus shipments of codes no line has.
void retail_rows(std::vector<line>& lines, std::vector<shipment>& shipments) {
  const batch day = flow::test::retail_day("2010-12-01");
  const column& code = day.col("StockCode");
  const column& invoice = day.col("InvoiceNo");
  const column& quantity = day.col("Quantity");
  const column& at = day.col("InvoiceDate");
  for (std::size_t r = 0; r < day.num_rows(); ++r) {
    lines.push_back({std::string(code.str(r)), std::string(invoice.str(r)), quantity.ints()[r], at.ints()[r]});
    if (r % 3 == 0) {
      const auto n = static_cast<std::int64_t>(shipments.size());
      shipments.push_back({std::string(code.str(r)), n, at.ints()[r] + static_cast<std::int64_t>(r * 7 % 90) * minute});
    }
    if (r % 50 == 0) shipments.push_back({"NOSUCH" + std::to_string(r), static_cast<std::int64_t>(shipments.size()), at.ints()[r]});
  }
}

batch lines_batch(const std::vector<line>& rows) {
  std::vector<std::vector<value>> values;
  for (const auto& l : rows) values.push_back({l.code, l.invoice, l.quantity, timestamp{l.at}});
  return make_batch(lines_schema(), values);
}
batch shipments_batch(const std::vector<shipment>& rows) {
  std::vector<std::vector<value>> values;
  for (const auto& s : rows) values.push_back({s.code, s.number, timestamp{s.at}});
  return make_batch(shipments_schema(), values);
}

const expr within_an_hour = (col("ShipCode") == col("StockCode")) && (col("ShippedAt") >= col("InvoiceDate")) &&
                            (col("ShippedAt") <= col("InvoiceDate") + lit("1 hour"));

std::string text(const value& v) { return is_null(v) ? "null" : to_string(v); }

// The rows of a batch as text, sorted.
std::vector<std::string> row_texts(const batch& rows) {
  std::vector<std::string> out;
  for (std::size_t r = 0; r < rows.num_rows(); ++r) {
    std::string row;
    for (std::size_t c = 0; c < rows.num_columns(); ++c) {
      if (c > 0) row += '|';
      row += text(rows.at(r, c));
    }
    out.push_back(row);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string line_text(const line& l) {
  return l.code + "|" + l.invoice + "|" + std::to_string(l.quantity) + "|" + to_string(value{timestamp{l.at}});
}
std::string shipment_text(const shipment& s) {
  return s.code + "|" + std::to_string(s.number) + "|" + to_string(value{timestamp{s.at}});
}

// The join as a plain loop over every pair: matches, then (outer joins) the unmatched rows with nulls.
std::vector<std::string> expected_join(const std::vector<line>& lines, const std::vector<shipment>& shipments,
                                       join_type type) {
  std::vector<std::string> out;
  std::vector<bool> line_matched(lines.size()), shipment_matched(shipments.size());
  for (std::size_t l = 0; l < lines.size(); ++l) {
    for (std::size_t s = 0; s < shipments.size(); ++s) {
      if (lines[l].code != shipments[s].code || shipments[s].at < lines[l].at || shipments[s].at > lines[l].at + 60 * minute)
        continue;
      out.push_back(line_text(lines[l]) + "|" + shipment_text(shipments[s]));
      line_matched[l] = shipment_matched[s] = true;
    }
  }
  if (type == join_type::left_outer)
    for (std::size_t l = 0; l < lines.size(); ++l)
      if (!line_matched[l]) out.push_back(line_text(lines[l]) + "|null|null|null");
  if (type == join_type::right_outer)
    for (std::size_t s = 0; s < shipments.size(); ++s)
      if (!shipment_matched[s]) out.push_back("null|null|null|null|" + shipment_text(shipments[s]));
  std::sort(out.begin(), out.end());
  return out;
}

// Runs the operator as the runtime does: per epoch the watermark of the epochs before (max event time
// seen minus the delay, the min over both inputs), on_watermark when it advanced, then the epoch's
// batches of both inputs, then take_changes. A final epoch without data follows with the watermark past
// every row.
class join_driver {
 public:
  join_driver(const stream_join_operator& op, std::int64_t delay) : op_(op), delay_(delay), state_(op.make_state()) {}

  void epoch(const batch& left, const batch& right) {
    begin_epoch();
    const stream_operator& as_stream = op_;
    as_stream.process(left, 0, state_.get(), ctx_);
    as_stream.process(right, 1, state_.get(), ctx_);
    take_changes();
    observe(left, op_.side(0).time, 0);
    observe(right, op_.side(1).time, 1);
  }
  void finish() {
    latest_[0] = latest_[1] = std::numeric_limits<std::int64_t>::max() / 2;
    begin_epoch();
    take_changes();
  }
  operator_state& state() { return *state_; }
  void replace_state(std::unique_ptr<operator_state> state) { state_ = std::move(state); }
  std::vector<std::string> output() { return row_texts(ctx_.take(op_.output_schema())); }
  std::size_t dropped() const { return ctx_.dropped_by_watermark; }
  // The runtime's copy of the state, as the checkpoint keeps it: every epoch's changes folded in.
  operator_state* checkpoint = nullptr;

 private:
  void take_changes() {
    batch changes = state_->take_changes();
    if (checkpoint) checkpoint->apply_changes(changes);
  }
  void begin_epoch() {
    ctx_.set_epoch(++epoch_);
    if (latest_[0] == operator_context::no_watermark || latest_[1] == operator_context::no_watermark) return;
    const std::int64_t watermark = std::min(latest_[0], latest_[1]) - delay_;
    if (watermark > ctx_.watermark_now) {
      ctx_.watermark_now = watermark;
      static_cast<const stream_operator&>(op_).on_watermark(watermark, state_.get(), ctx_);
    }
  }
  void observe(const batch& rows, std::optional<std::size_t> time, std::size_t side) {
    for (std::size_t r = 0; r < rows.num_rows(); ++r) latest_[side] = std::max(latest_[side], rows.col(*time).ints()[r]);
  }
  const stream_join_operator& op_;
  std::int64_t delay_;
  std::unique_ptr<operator_state> state_;
  collecting_context ctx_;
  std::int64_t epoch_ = 0;
  std::int64_t latest_[2] = {operator_context::no_watermark, operator_context::no_watermark};
};

// Runs each epoch's (left, right) batches through a join whose runtime copy of the state is kept, checks
// that the state stays below state_bound rows, and goes on from a copy restored after epoch restore_after:
// every output row, sorted.
std::vector<std::string> run_with_restore(const stream_join_operator& op, std::int64_t delay,
                                          const std::vector<std::pair<batch, batch>>& epochs,
                                          std::size_t restore_after, std::size_t state_bound) {
  join_driver driver(op, delay);
  auto checkpoint = op.make_state();
  driver.checkpoint = checkpoint.get();
  std::vector<std::string> output;
  for (std::size_t e = 0; e < epochs.size(); ++e) {
    driver.epoch(epochs[e].first, epochs[e].second);
    CHECK(driver.state().num_rows() < state_bound);
    if (e == restore_after) {
      auto restored = op.make_state();
      restored->restore(checkpoint->snapshot());
      CHECK(restored->num_rows() == driver.state().num_rows());
      driver.replace_state(std::move(restored));
    }
    const auto rows = driver.output();
    output.insert(output.end(), rows.begin(), rows.end());
  }
  driver.finish();
  const auto rest = driver.output();
  output.insert(output.end(), rest.begin(), rest.end());
  std::sort(output.begin(), output.end());
  return output;
}

// Rows in time order cut into `epochs` slices, each shuffled.
template <class Row>
std::vector<std::vector<Row>> shuffled_epochs(std::vector<Row> rows, std::size_t epochs, std::mt19937& random) {
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.at < b.at; });
  std::vector<std::vector<Row>> out(epochs);
  for (std::size_t i = 0; i < rows.size(); ++i) out[i * epochs / rows.size()].push_back(rows[i]);
  for (auto& slice : out) std::shuffle(slice.begin(), slice.end(), random);
  return out;
}

plan_ptr streaming_scan(schema_ptr rows) {
  scan_spec scan;
  scan.format = "local";
  scan.schema = std::move(rows);
  scan.streaming = true;
  return make_scan(scan);
}

sink_spec memory_sink() {
  sink_spec sink;
  sink.format = "memory";
  return sink;
}

}  // namespace

TEST_CASE("stream-stream join: the condition gives the keys and the time range", "[stream-join]") {
  const auto spec = stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour, join_type::left_outer);
  CHECK(spec.left_keys == std::vector<std::string>{"StockCode"});
  CHECK(spec.right_keys == std::vector<std::string>{"ShipCode"});
  CHECK(spec.left_time == "InvoiceDate");
  CHECK(spec.right_time == "ShippedAt");
  CHECK(spec.lower == 0);
  CHECK(spec.upper == 60 * minute);
  // Written the other way round, strict, with a shift on the right side: the same range, one microsecond in.
  const auto mirrored = stream_join_on_condition(
      *lines_schema(), *shipments_schema(),
      (col("StockCode") == col("ShipCode")) && (col("InvoiceDate") < col("ShippedAt")) &&
          (col("InvoiceDate") > col("ShippedAt") - lit("1 hour")),
      join_type::inner);
  CHECK(mirrored.lower == 1);
  CHECK(mirrored.upper == 60 * minute - 1);
  CHECK_THAT(error_of([] {
               stream_join_on_condition(*lines_schema(), *shipments_schema(), col("ShippedAt") > col("InvoiceDate"), join_type::inner);
             }),
             Catch::Contains("has no equality between a left and a right column"));
  CHECK_THAT(error_of([] {
               stream_join_on_condition(*lines_schema(), *shipments_schema(),
                                        (col("StockCode") == col("ShipCode")) || (col("Quantity") > lit(1)), join_type::inner);
             }),
             Catch::Contains("is not supported in a stream-stream join"));
}

TEST_CASE("stream-stream join: inner, left and right outer over shuffled retail epochs equal a loop over the rows",
          "[stream-join]") {
  std::vector<line> lines;
  std::vector<shipment> shipments;
  retail_rows(lines, shipments);
  for (const auto type : {join_type::inner, join_type::left_outer, join_type::right_outer}) {
    INFO(to_string(type));
    const stream_join_operator op(lines_schema(), shipments_schema(),
                                  stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour, type));
    std::mt19937 random(7);
    const auto line_epochs = shuffled_epochs(lines, 20, random);
    const auto shipment_epochs = shuffled_epochs(shipments, 20, random);
    // Each epoch's rows are later than every row of the epochs before on their side: none is late, even
    // with a short delay, which lets eviction run during the day.
    join_driver driver(op, 10 * minute);
    std::size_t most_state_rows = 0;
    for (std::size_t e = 0; e < line_epochs.size(); ++e) {
      driver.epoch(lines_batch(line_epochs[e]), shipments_batch(shipment_epochs[e]));
      most_state_rows = std::max(most_state_rows, driver.state().num_rows());
    }
    driver.finish();
    const auto expected = expected_join(lines, shipments, type);
    CHECK(expected.size() > 500);
    CHECK(driver.output() == expected);
    CHECK(driver.dropped() == 0);
    // Eviction: state never held every row, and nothing after the final watermark.
    CHECK(most_state_rows < lines.size() + shipments.size());
    CHECK(driver.state().num_rows() == 0);
  }
}

TEST_CASE("stream-stream join: rows at or behind the watermark are dropped and counted exactly", "[stream-join]") {
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::left_outer));
  join_driver driver(op, 10 * minute);
  const std::int64_t noon = 12 * 60 * minute;
  driver.epoch(lines_batch({{"A", "1", 1, noon}}), shipments_batch({{"A", 1, noon + 100 * minute}}));
  // Watermark: min(noon, noon + 100 min) - 10 min. The line at noon - 20 min, the line exactly at the
  // watermark (late as in Spark: at or behind it) and the shipment at noon - 11 min are late; the line at
  // noon - 5 min is not (and matches the shipment at noon + 30 min).
  driver.epoch(lines_batch({{"B", "2", 2, noon - 20 * minute}, {"C", "3", 3, noon - 5 * minute},
                            {"D", "4", 4, noon - 10 * minute}}),
               shipments_batch({{"A", 2, noon - 11 * minute}, {"C", 3, noon + 30 * minute}}));
  CHECK(driver.dropped() == 3);
  driver.finish();
  CHECK(driver.output() ==
        std::vector<std::string>{"A|1|1|" + to_string(value{timestamp{noon}}) + "|null|null|null",
                                 "C|3|3|" + to_string(value{timestamp{noon - 5 * minute}}) + "|C|3|" +
                                     to_string(value{timestamp{noon + 30 * minute}})});
}

TEST_CASE("stream-stream join: the state stays bounded while a long input grows", "[stream-join]") {
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::left_outer));
  join_driver driver(op, 5 * minute);
  // 200 epochs of 100 lines and 100 shipments, one minute of event time each, over 50 codes.
  std::size_t most_state_rows = 0;
  for (std::int64_t e = 0; e < 200; ++e) {
    std::vector<line> lines;
    std::vector<shipment> shipments;
    for (std::int64_t i = 0; i < 100; ++i) {
      const std::string code = std::string("C") + std::to_string(i % 50);
      lines.push_back({code, std::to_string(e * 100 + i), i, e * minute + i * 600'000});
      shipments.push_back({code, e * 100 + i, e * minute + i * 600'000 + 30 * minute});
    }
    driver.epoch(lines_batch(lines), shipments_batch(shipments));
    most_state_rows = std::max(most_state_rows, driver.state().num_rows());
    driver.output();
  }
  // A line waits an hour of event time plus the delay for its shipments (66 epochs), a shipment until the
  // watermark passes it (36 epochs, as it is 30 minutes ahead of the lines): about 10,200 of the 40,000 rows.
  CHECK(most_state_rows < 11'000);
  CHECK(most_state_rows > 9'000);
}

TEST_CASE("stream-stream join: buffers drop their leading evicted rows each epoch, so their memory stops growing",
          "[stream-join]") {
  // Rows in time order, as a rate source gives them: each epoch evicts about the oldest epoch's rows, the
  // run every buffer starts with. Keys recur every epoch, so chains reach into the rows dropped. The
  // running state and the runtime's copy both drop them at each epoch, rather than growing until the dead
  // rows are the majority: their memory varies little once the watermark bounds them. The output and a
  // copy restored late in the run still equal a loop's.
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::left_outer));
  join_driver driver(op, 5 * minute);
  auto checkpoint = op.make_state();
  driver.checkpoint = checkpoint.get();
  std::vector<line> all_lines;
  std::vector<shipment> all_shipments;
  std::vector<std::string> output;
  std::size_t least[2] = {~std::size_t{0}, ~std::size_t{0}}, most[2] = {0, 0};
  for (std::int64_t e = 0; e < 180; ++e) {
    std::vector<line> lines;
    std::vector<shipment> shipments;
    for (std::int64_t i = 0; i < 100; ++i) {
      const std::string code = std::string("C") + std::string(static_cast<std::size_t>(i % 3), 'x') + std::to_string(i % 50);
      lines.push_back({code, std::to_string(e * 100 + i), i, e * minute + i * 600'000});
      if (i % 4 != 3) shipments.push_back({code, e * 100 + i, e * minute + i * 600'000 + (i % 7) * 10 * minute});
    }
    all_lines.insert(all_lines.end(), lines.begin(), lines.end());
    all_shipments.insert(all_shipments.end(), shipments.begin(), shipments.end());
    driver.epoch(lines_batch(lines), shipments_batch(shipments));
    if (e == 150) {
      auto restored = op.make_state();
      restored->restore(checkpoint->snapshot());
      CHECK(restored->num_rows() == driver.state().num_rows());
      driver.replace_state(std::move(restored));
    }
    if (e >= 100 && e != 150) {  // the watermark has bounded the state for a while (a line waits 66 epochs)
      const std::size_t bytes[2] = {driver.state().memory_bytes(), checkpoint->memory_bytes()};
      for (std::size_t copy = 0; copy < 2; ++copy) {
        least[copy] = std::min(least[copy], bytes[copy]);
        most[copy] = std::max(most[copy], bytes[copy]);
      }
    }
    const auto rows = driver.output();
    output.insert(output.end(), rows.begin(), rows.end());
  }
  driver.finish();
  const auto rest = driver.output();
  output.insert(output.end(), rest.begin(), rest.end());
  std::sort(output.begin(), output.end());
  CHECK(output == expected_join(all_lines, all_shipments, join_type::left_outer));
  for (std::size_t copy = 0; copy < 2; ++copy) {
    INFO("copy " << copy << ": " << least[copy] << " to " << most[copy] << " bytes");
    CHECK(least[copy] > 0);
    CHECK(most[copy] * 10 < least[copy] * 12);
  }
}

TEST_CASE("stream-stream join: buffers that drop their evicted rows many times over keep giving a loop's output",
          "[stream-join]") {
  // 120 epochs of ten minutes of event time: a line is buffered about seven epochs, so each side's buffer
  // sheds its evicted rows again and again (keys of different lengths, chunks kept whole and cut down),
  // both in the running state and in the runtime's copy that a restart restores.
  std::vector<std::vector<line>> line_epochs;
  std::vector<std::vector<shipment>> shipment_epochs;
  std::vector<line> lines;
  std::vector<shipment> shipments;
  for (std::int64_t e = 0; e < 120; ++e) {
    line_epochs.emplace_back();
    shipment_epochs.emplace_back();
    for (std::int64_t i = 0; i < 30; ++i) {
      const std::int64_t at = e * 10 * minute + i * 20'000'000;
      std::string code("C");
      code.append(static_cast<std::size_t>(i % 4), 'x').append(std::to_string(i % 13));
      line_epochs.back().push_back({code, std::to_string(e * 30 + i), i, at});
      if (i % 3 != 2) shipment_epochs.back().push_back({code, e * 30 + i, at + (e + i) % 7 * 15 * minute});
    }
    lines.insert(lines.end(), line_epochs.back().begin(), line_epochs.back().end());
    shipments.insert(shipments.end(), shipment_epochs.back().begin(), shipment_epochs.back().end());
  }
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::left_outer));
  std::vector<std::pair<batch, batch>> epochs;
  for (std::size_t e = 0; e < line_epochs.size(); ++e)
    epochs.emplace_back(lines_batch(line_epochs[e]), shipments_batch(shipment_epochs[e]));
  const auto output = run_with_restore(op, 5 * minute, epochs, 77, 600);
  const auto expected = expected_join(lines, shipments, join_type::left_outer);
  CHECK(expected.size() > 2000);
  CHECK(output == expected);
}

TEST_CASE("stream-stream join: a state restored from its snapshot gives the same output as one run", "[stream-join]") {
  std::vector<line> lines;
  std::vector<shipment> shipments;
  retail_rows(lines, shipments);
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::right_outer));
  std::mt19937 random(11);
  const auto line_epochs = shuffled_epochs(lines, 10, random);
  const auto shipment_epochs = shuffled_epochs(shipments, 10, random);
  join_driver driver(op, 2 * 60 * minute);
  auto checkpoint = op.make_state();
  driver.checkpoint = checkpoint.get();
  for (std::size_t e = 0; e < line_epochs.size(); ++e) {
    driver.epoch(lines_batch(line_epochs[e]), shipments_batch(shipment_epochs[e]));
    if (e == 4) {
      // A restart: the instance's state comes back from the checkpoint's snapshot.
      auto restored = op.make_state();
      restored->restore(checkpoint->snapshot());
      CHECK(restored->num_rows() == driver.state().num_rows());
      driver.replace_state(std::move(restored));
    }
  }
  driver.finish();
  CHECK(driver.output() == expected_join(lines, shipments, join_type::right_outer));
}

TEST_CASE("stream-stream join: output schema, descriptor and Spark's refusals", "[stream-join]") {
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::right_outer));
  CHECK(op.output_schema()->to_string() ==
        "StockCode: string, InvoiceNo: string, Quantity: int64, InvoiceDate: timestamp, ShipCode: string, ShipNo: "
        "int64, ShippedAt: timestamp");
  CHECK((*op.output_schema())[4].nullable);
  const auto rebuilt = make_operator(*op.descriptor(), lines_schema());
  CHECK(rebuilt->name() == op.name());
  CHECK(*rebuilt->output_schema() == *op.output_schema());

  auto lines = streaming_scan(lines_schema());
  auto shipments = streaming_scan(shipments_schema());
  const auto outer = stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour, join_type::left_outer);
  CHECK_THAT(error_of([&] { make_stream_join(lines, shipments, outer); }),
             Catch::Contains("Stream-stream LeftOuter join between two streaming DataFrame/Datasets is not supported "
                             "without a watermark"));
  auto watermarked_lines = make_watermark(lines, "InvoiceDate", "10 minutes");
  auto watermarked_shipments = make_watermark(shipments, "ShippedAt", "10 minutes");
  // Watermarks, but no time range.
  CHECK_THAT(error_of([&] {
               make_stream_join(watermarked_lines, watermarked_shipments,
                                stream_join_on_columns({"StockCode"}, join_type::right_outer));
             }),
             Catch::Contains("Stream-stream RightOuter join"));
  const auto joined = make_stream_join(watermarked_lines, watermarked_shipments, outer);
  CHECK_THAT(error_of([&] { validate_output_mode(*joined, output_mode::update); }),
             Catch::Contains("not supported in Update output mode, only in Append output mode"));
  validate_output_mode(*joined, output_mode::append);
  // The graph: both sides into one join vertex, each by a hash edge on its keys.
  const auto graph = compile_graph(joined, memory_sink());
  std::size_t join_vertex = graph.vertices().size();
  for (std::size_t v = 0; v < graph.vertices().size(); ++v)
    if (graph.vertex(v).name == "join") join_vertex = v;
  REQUIRE(join_vertex < graph.vertices().size());
  std::map<std::size_t, std::vector<std::string>> keys_by_input;
  for (auto e : graph.inputs_of(join_vertex)) {
    CHECK(graph.edges()[e].kind == partitioning::hash);
    keys_by_input[graph.edges()[e].input] = graph.edges()[e].keys;
  }
  CHECK(keys_by_input[0] == std::vector<std::string>{"StockCode"});
  CHECK(keys_by_input[1] == std::vector<std::string>{"ShipCode"});
}

TEST_CASE("stream-stream join: a checkpointed state of another layout is refused with a clear error", "[stream-join]") {
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::inner));
  auto state = op.make_state();
  const batch other = make_batch(make_schema({{"x", type_id::int64, false}}), {{value{std::int64_t{1}}}});
  CHECK_THAT(error_of([&] { state->restore(other); }),
             Catch::Contains("the checkpointed state has 1 columns, expected 9") &&
                 Catch::Contains("was it written by another query or version?"));
}

TEST_CASE("stream-stream join: a change row carries its own side's columns only, the sides sharing columns of a type",
          "[stream-join]") {
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::inner));
  auto state = op.make_state();
  collecting_context ctx;
  ctx.set_epoch(1);
  const stream_operator& as_stream = op;
  as_stream.process(lines_batch({{"A", "1", 2, 0}, {"B", "2", 3, minute}}), 0, state.get(), ctx);
  as_stream.process(shipments_batch({{"A", 7, 10 * minute}, {"C", 8, 0}, {"D", 9, 0}}), 1, state.get(), ctx);
  const batch changes = state->take_changes();
  // The header, then the lines' StockCode and the shipments' ShipCode in one column, the lines' InvoiceNo
  // (null for shipments), Quantity and ShipNo in one, InvoiceDate and ShippedAt in one.
  REQUIRE(changes.num_columns() == 9);
  REQUIRE(changes.num_rows() == 5);
  CHECK(row_texts(changes) ==
        std::vector<std::string>{"0|4294967296|false|0|false|A|1|2|1970-01-01 00:00:00",
                                 "0|4294967297|false|60000000|false|B|2|3|1970-01-01 00:01:00",
                                 "1|4294967298|false|600000000|true|A|null|7|1970-01-01 00:10:00",
                                 "1|4294967299|false|0|false|C|null|8|1970-01-01 00:00:00",
                                 "1|4294967300|false|0|false|D|null|9|1970-01-01 00:00:00"});
  // The runtime's copy restores from them: a later shipment matches the buffered line.
  auto copy = op.make_state();
  copy->apply_changes(changes);
  collecting_context later;
  later.set_epoch(2);
  as_stream.process(shipments_batch({{"B", 10, 30 * minute}}), 1, copy.get(), later);
  CHECK(row_texts(later.take(op.output_schema())) ==
        std::vector<std::string>{"B|2|3|1970-01-01 00:01:00|B|10|1970-01-01 00:30:00"});
}

TEST_CASE("stream-stream join: a checkpoint written with both sides' columns on every row still restores",
          "[stream-join]") {
  const stream_join_operator op(lines_schema(), shipments_schema(),
                                stream_join_on_condition(*lines_schema(), *shipments_schema(), within_an_hour,
                                                         join_type::inner));
  // The layout before the sides shared columns: the header, the left side's columns, the right side's.
  std::vector<field> fields{{"__side", type_id::int64, false},
                            {"__id", type_id::int64, false},
                            {"__deleted", type_id::boolean, false},
                            {"__time", type_id::int64, false},
                            {"__matched", type_id::boolean, false}};
  for (const auto& [prefix, side] : {std::pair{"left.", lines_schema()}, std::pair{"right.", shipments_schema()}}) {
    for (field f : side->fields()) {
      f.name = prefix + f.name;
      f.nullable = true;
      fields.push_back(f);
    }
  }
  const value null{};
  const batch old = make_batch(
      make_schema(fields),
      {{std::int64_t{0}, std::int64_t{0}, false, minute, false, std::string("B"), std::string("2"), std::int64_t{3},
        timestamp{minute}, null, null, null},
       {std::int64_t{1}, std::int64_t{1}, false, std::int64_t{0}, false, null, null, null, null, std::string("C"),
        std::int64_t{8}, timestamp{0}}});
  auto state = op.make_state();
  state->restore(old);
  CHECK(state->num_rows() == 2);
  collecting_context ctx;
  ctx.set_epoch(2);
  const stream_operator& as_stream = op;
  as_stream.process(shipments_batch({{"B", 10, 30 * minute}}), 1, state.get(), ctx);
  as_stream.process(lines_batch({{"C", "5", 1, 0}}), 0, state.get(), ctx);
  CHECK(row_texts(ctx.take(op.output_schema())) ==
        std::vector<std::string>{"B|2|3|1970-01-01 00:01:00|B|10|1970-01-01 00:30:00",
                                 "C|5|1|1970-01-01 00:00:00|C|8|1970-01-01 00:00:00"});
}

TEST_CASE("stream-stream join: a using-column key comes from the side that is there, the preferred one when both are",
          "[stream-join]") {
  const auto left = make_schema({{"k", type_id::string, true}, {"lt", type_id::timestamp, true}});
  const auto right = make_schema({{"k", type_id::string, true}, {"rt", type_id::timestamp, true}});
  stream_join_spec spec = stream_join_on_columns({"k"}, join_type::right_outer);
  spec.left_time = "lt";
  spec.right_time = "rt";
  spec.lower = 0;
  spec.upper = 10 * minute;
  const stream_join_operator op(left, right, spec);
  auto state = op.make_state();
  collecting_context ctx;
  ctx.set_epoch(1);
  const stream_operator& as_stream = op;
  as_stream.process(make_batch(left, {{std::string("a"), timestamp{0}}}), 0, state.get(), ctx);
  as_stream.process(make_batch(right, {{std::string("a"), timestamp{minute}}, {std::string("b"), timestamp{2 * minute}},
                                       {value{}, timestamp{3 * minute}}}),
                    1, state.get(), ctx);
  ctx.set_epoch(2);
  ctx.watermark_now = 20 * minute;
  as_stream.on_watermark(ctx.watermark_now, state.get(), ctx);
  // The match, the null key at once, b once the watermark proves no left row can match it.
  CHECK(row_texts(ctx.take(op.output_schema())) ==
        std::vector<std::string>{"a|1970-01-01 00:00:00|1970-01-01 00:01:00", "b|null|1970-01-01 00:02:00",
                                 "null|null|1970-01-01 00:03:00"});
}

TEST_CASE("stream-stream join: int64 keys, one or two, through evictions, compaction and a restore equal a loop",
          "[stream-join]") {
  // Fixed-width keys are buffered as words (without the encoding's null word): one key (the bench's
  // shape) and two, with null keys on both sides that a left outer join emits at once or drops.
  const bool two_keys = GENERATE(false, true);
  const auto left = make_schema({{"id", type_id::int64, true}, {"part", type_id::int64, false}, {"lt", type_id::timestamp, true}});
  const auto right = make_schema({{"rid", type_id::int64, true}, {"rpart", type_id::int64, false}, {"rt", type_id::timestamp, true}});
  expr condition = (col("rt") >= col("lt")) && (col("rt") <= col("lt") + lit("10 minutes")) && (col("id") == col("rid"));
  if (two_keys) condition = condition && (col("part") == col("rpart"));
  const stream_join_operator op(left, right, stream_join_on_condition(*left, *right, condition, join_type::left_outer));
  struct row {
    std::optional<std::int64_t> id;
    std::int64_t part, at;
  };
  std::vector<std::vector<row>> left_epochs, right_epochs;
  std::vector<row> lefts, rights;
  for (std::int64_t e = 0; e < 60; ++e) {
    left_epochs.emplace_back();
    right_epochs.emplace_back();
    for (std::int64_t i = 0; i < 40; ++i) {
      const std::int64_t at = e * minute + i * 1'500'000;
      const std::int64_t id = (e * 40 + i) % 97;  // ids repeat: keys chain several rows
      left_epochs.back().push_back({i % 17 == 5 ? std::nullopt : std::optional(id), i % 3, at});
      right_epochs.back().push_back({i % 19 == 7 ? std::nullopt : std::optional(id), (i + e) % 3, at + (i % 13) * minute});
    }
    lefts.insert(lefts.end(), left_epochs.back().begin(), left_epochs.back().end());
    rights.insert(rights.end(), right_epochs.back().begin(), right_epochs.back().end());
  }
  auto to_batch = [](const schema_ptr& s, const std::vector<row>& rows) {
    std::vector<std::vector<value>> values;
    for (const auto& r : rows) values.push_back({r.id ? value{*r.id} : value{}, r.part, timestamp{r.at}});
    return make_batch(s, values);
  };
  auto row_text = [](const row& r) {
    return (r.id ? std::to_string(*r.id) : std::string("null")) + "|" + std::to_string(r.part) + "|" +
           to_string(value{timestamp{r.at}});
  };
  std::vector<std::string> expected;
  for (const auto& l : lefts) {
    bool matched = false;
    for (const auto& r : rights) {
      if (!l.id || !r.id || *l.id != *r.id || (two_keys && l.part != r.part) || r.at < l.at || r.at > l.at + 10 * minute)
        continue;
      expected.push_back(row_text(l) + "|" + row_text(r));
      matched = true;
    }
    if (!matched) expected.push_back(row_text(l) + "|null|null|null");
  }
  std::sort(expected.begin(), expected.end());

  std::vector<std::pair<batch, batch>> epochs;
  for (std::size_t e = 0; e < left_epochs.size(); ++e)
    epochs.emplace_back(to_batch(left, left_epochs[e]), to_batch(right, right_epochs[e]));
  const auto output = run_with_restore(op, 2 * minute, epochs, 31, 1500);  // about 13 minutes of both sides' rows
  CHECK(expected.size() > 3000);
  CHECK(output == expected);
}

TEST_CASE("stream-stream join: a checkpointed row with a null int64 key is refused with a clear error", "[stream-join]") {
  const auto left = make_schema({{"id", type_id::int64, true}, {"lt", type_id::timestamp, true}});
  const auto right = make_schema({{"rid", type_id::int64, true}, {"rt", type_id::timestamp, true}});
  const stream_join_operator op(left, right, stream_join_on_condition(*left, *right, col("id") == col("rid"), join_type::inner));
  auto state = op.make_state();
  collecting_context ctx;
  ctx.set_epoch(1);
  const stream_operator& as_stream = op;
  as_stream.process(make_batch(left, {{std::int64_t{1}, timestamp{0}}, {value{}, timestamp{0}}}), 0, state.get(), ctx);
  const batch changes = state->take_changes();
  REQUIRE(changes.num_rows() == 1);  // the null key is not buffered
  // The same row with its key nulled, as a damaged checkpoint could hold it.
  std::vector<column> columns = changes.columns();
  columns[5] = null_column(type_id::int64, 1);
  auto restored = op.make_state();
  restored->restore(batch(changes.schema_ref(), std::move(columns)));
  CHECK_THAT(error_of([&] {
               as_stream.process(make_batch(right, {{std::int64_t{1}, timestamp{0}}}), 1, restored.get(), ctx);
             }),
             Catch::Contains("a buffered row has a null join key (a corrupt checkpoint?)"));
}

TEST_CASE("stream-stream join: removed rows carry zeros, so the changes' columns the buffers keep have no nulls",
          "[stream-join]") {
  const auto left = make_schema({{"id", type_id::int64, true}, {"lt", type_id::timestamp, true}});
  const auto right = make_schema({{"rid", type_id::int64, true}, {"rt", type_id::timestamp, true}});
  const expr condition = (col("id") == col("rid")) && (col("rt") >= col("lt")) && (col("rt") <= col("lt") + lit("1 minute"));
  const stream_join_operator op(left, right, stream_join_on_condition(*left, *right, condition, join_type::inner));
  auto state = op.make_state();
  auto copy = op.make_state();  // the runtime's committed copy
  collecting_context ctx;
  const stream_operator& as_stream = op;
  ctx.set_epoch(1);
  as_stream.process(make_batch(left, {{std::int64_t{1}, timestamp{0}}, {std::int64_t{2}, timestamp{5 * minute}}}), 0,
                    state.get(), ctx);
  copy->apply_changes(state->take_changes());
  ctx.set_epoch(2);
  ctx.watermark_now = 2 * minute;  // evicts the left row at 0 (0 + 1 minute is behind it), keeps the one at 5
  as_stream.on_watermark(ctx.watermark_now, state.get(), ctx);
  as_stream.process(make_batch(right, {{std::int64_t{2}, timestamp{5 * minute + 1}}}), 1, state.get(), ctx);
  const batch changes = state->take_changes();
  copy->apply_changes(changes);
  CHECK(row_texts(changes) == std::vector<std::string>{"0|4294967296|true|0|false|0|1970-01-01 00:00:00",
                                                       "1|8589934592|false|300000001|true|2|1970-01-01 00:05:00.000001"});
  for (const auto& c : changes.columns()) CHECK_FALSE(c.has_nulls());
  // The buffered rows (in the instance and in the copy, which share the changes' columns) still match.
  for (auto* s : {state.get(), copy.get()}) {
    collecting_context later;
    later.set_epoch(3);
    as_stream.process(make_batch(left, {{std::int64_t{2}, timestamp{5 * minute}}}), 0, s, later);
    CHECK(row_texts(later.take(op.output_schema())) ==
          std::vector<std::string>{"2|1970-01-01 00:05:00|2|1970-01-01 00:05:00.000001"});
  }
  CHECK(copy->num_rows() == state->num_rows());
}
