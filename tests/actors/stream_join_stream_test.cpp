// Stream-stream joins through the actor runtime at parallelism 2: a retail day's invoice lines joined with
// "shipments" derived from them (two file streams, each day cut into files in time order with the rows of
// each file shuffled, one file per epoch on each side), inner and outer, against a plain loop over the same
// rows; and the same output across a restart from the checkpoint.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "flow/session.hpp"
#include "retail_day.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using flow::col;
using flow::lit;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t minute = 60'000'000;

struct line {
  std::string code, invoice;
  std::int64_t quantity = 0, at = 0;
};
struct shipment {
  std::string code;
  std::int64_t number = 0, at = 0;
};

std::string ts(std::int64_t micros) { return flow::format_timestamp(flow::timestamp{micros}); }

// Every invoice line of 2010-12-01, a shipment 0 to 89 minutes after every third of them, and shipments
// of codes no line has.
void retail_rows(std::vector<line>& lines, std::vector<shipment>& shipments) {
  const flow::batch day = flow::test::retail_day("2010-12-01");
  for (std::size_t r = 0; r < day.num_rows(); ++r) {
    const std::string code(day.col("StockCode").str(r));
    const std::int64_t at = day.col("InvoiceDate").ints()[r];
    lines.push_back({code, std::string(day.col("InvoiceNo").str(r)), day.col("Quantity").ints()[r], at});
    if (r % 3 == 0)
      shipments.push_back({code, static_cast<std::int64_t>(shipments.size()), at + static_cast<std::int64_t>(r * 7 % 90) * minute});
    if (r % 50 == 0) shipments.push_back({"NOSUCH" + std::to_string(r), static_cast<std::int64_t>(shipments.size()), at});
  }
}

// The rows cut into `files` slices in time order, each slice's rows shuffled, written as
// part-1000.csv, ... with increasing modification times (the file source's order).
template <class Row, class Write>
void write_slices(const fs::path& dir, std::vector<Row> rows, std::size_t files, std::size_t first, const std::string& header,
                  Write write_row) {
  fs::create_directories(dir);
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.at < b.at; });
  std::mt19937 random(static_cast<unsigned>(first + 3));
  const auto base = fs::file_time_type::clock::now() - 1h;
  for (std::size_t f = 0; f < files; ++f) {
    std::vector<Row> slice(rows.begin() + static_cast<std::ptrdiff_t>(f * rows.size() / files),
                           rows.begin() + static_cast<std::ptrdiff_t>((f + 1) * rows.size() / files));
    std::shuffle(slice.begin(), slice.end(), random);
    const auto file = dir / ("part-" + std::to_string(1000 + first + f) + ".csv");
    std::ofstream out(file);
    out << header << "\n";
    for (const auto& row : slice) out << write_row(row) << "\n";
    out.close();
    fs::last_write_time(file, base + std::chrono::seconds(first + f));
  }
}

void write_lines(const fs::path& dir, const std::vector<line>& rows, std::size_t files, std::size_t first) {
  write_slices(dir, rows, files, first, "StockCode,InvoiceNo,Quantity,InvoiceDate", [](const line& l) {
    return l.code + "," + l.invoice + "," + std::to_string(l.quantity) + "," + ts(l.at);
  });
}
void write_shipments(const fs::path& dir, const std::vector<shipment>& rows, std::size_t files, std::size_t first) {
  write_slices(dir, rows, files, first, "ShipCode,ShipNo,ShippedAt",
               [](const shipment& s) { return s.code + "," + std::to_string(s.number) + "," + ts(s.at); });
}

// The two streams joined on the code, a shipment within the hour after its line.
flow::data_frame shipped_lines(flow::session& session, const fs::path& dir, const std::string& type) {
  auto lines = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                   .schema(flow::make_schema({{"StockCode", flow::type_id::string, true},
                                              {"InvoiceNo", flow::type_id::string, true},
                                              {"Quantity", flow::type_id::int64, true},
                                              {"InvoiceDate", flow::type_id::timestamp, true}}))
                   .load((dir / "lines").string())
                   .with_watermark("InvoiceDate", "10 minutes");
  auto shipments = session.read_stream().format("csv").option("header", true).option("maxFilesPerTrigger", 1)
                       .schema(flow::make_schema({{"ShipCode", flow::type_id::string, true},
                                                  {"ShipNo", flow::type_id::int64, true},
                                                  {"ShippedAt", flow::type_id::timestamp, true}}))
                       .load((dir / "shipments").string())
                       .with_watermark("ShippedAt", "10 minutes");
  return lines.join(shipments,
                    (col("ShipCode") == col("StockCode")) && (col("ShippedAt") >= col("InvoiceDate")) &&
                        (col("ShippedAt") <= col("InvoiceDate") + lit("1 hour")),
                    type);
}

// The join as a plain loop: matched pairs, then the unmatched rows of an outer join's preserved side.
std::vector<std::string> expected_join(const std::vector<line>& lines, const std::vector<shipment>& shipments,
                                       const std::string& type) {
  auto line_text = [](const line& l) { return l.code + "|" + l.invoice + "|" + std::to_string(l.quantity) + "|" + ts(l.at); };
  auto shipment_text = [](const shipment& s) { return s.code + "|" + std::to_string(s.number) + "|" + ts(s.at); };
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
  for (std::size_t l = 0; l < lines.size(); ++l)
    if (type == "left_outer" && !line_matched[l]) out.push_back(line_text(lines[l]) + "|null|null|null");
  for (std::size_t s = 0; s < shipments.size(); ++s)
    if (type == "right_outer" && !shipment_matched[s]) out.push_back("null|null|null|null|" + shipment_text(shipments[s]));
  std::sort(out.begin(), out.end());
  return out;
}

// A result table's rows as the loop writes them, sorted.
std::vector<std::string> row_texts(const flow::batch& rows) {
  std::vector<std::string> out;
  for (std::size_t r = 0; r < rows.num_rows(); ++r) {
    std::string row;
    for (std::size_t c = 0; c < rows.num_columns(); ++c) {
      const flow::value v = rows.at(r, c);
      if (c > 0) row += '|';
      row += flow::is_null(v) ? std::string("null") : flow::to_string(v);
    }
    out.push_back(row);
  }
  std::sort(out.begin(), out.end());
  return out;
}

flow::session_config two_instances() {
  flow::session_config config;
  config.parallelism = 2;
  return config;
}

// One row on each side ten days later, in the last epoch: its watermark passes every row of the day, so
// the no-data epoch after it evicts them (emitting an outer join's unmatched rows). It matches nothing
// and stays in the state.
void write_flush(const fs::path& dir, std::size_t first) {
  const std::int64_t later = flow::test::retail_day("2010-12-01").col("InvoiceDate").ints()[0] + 10 * 24 * 60 * minute;
  write_lines(dir / "lines", {{"FLUSH", "0", 0, later}}, 1, first);
  write_shipments(dir / "shipments", {{"FLUSHED", 0, later}}, 1, first);
}

flow::batch run_query(flow::session& session, const flow::data_frame& frame, const std::string& table,
                      const std::string& checkpoint = {}) {
  auto writer = frame.write_stream().format("memory").query_name(table).output_mode("append").trigger(flow::available_now());
  if (!checkpoint.empty()) writer.option("checkpointLocation", checkpoint);
  auto query = writer.start();
  REQUIRE(query.await_termination(120s));
  REQUIRE_FALSE(query.exception());
  return session.sql("SELECT * FROM " + table).collect_batch();
}

}  // namespace

TEST_CASE("stream-stream join: inner, left and right outer of two shuffled retail streams equal a loop over the rows",
          "[actors][join][stream-join]") {
  std::vector<line> lines;
  std::vector<shipment> shipments;
  retail_rows(lines, shipments);
  for (const std::string type : {"inner", "left_outer", "right_outer"}) {
    INFO(type);
    flow::session session(two_instances());
    flow::test::temp_dir dir;
    write_lines(dir / "lines", lines, 6, 0);
    write_shipments(dir / "shipments", shipments, 6, 0);
    write_flush(dir.path(), 6);
    const auto expected = expected_join(lines, shipments, type);
    REQUIRE(expected.size() > 500);
    CHECK(row_texts(run_query(session, shipped_lines(session, dir.path(), type), "joined_" + type)) == expected);
  }
}

TEST_CASE("stream-stream join: a query restarted from its checkpoint gives the output of one run, in memory and RocksDB",
          "[actors][join][stream-join][checkpoint]") {
  std::vector<line> lines;
  std::vector<shipment> shipments;
  retail_rows(lines, shipments);
  const std::string backend = GENERATE(as<std::string>(), "memory", "rocksdb");
  INFO(backend);
  auto config = two_instances();
  config.state_backend = backend;
  flow::session session(config);
  flow::test::temp_dir dir;
  const auto checkpoint = (dir / "checkpoint").string();
  // The first run reads the morning, the second (restarted from the checkpoint) the rest of the day.
  std::vector<line> morning_lines, later_lines;
  for (const auto& l : lines) (l.at < lines[lines.size() / 2].at ? morning_lines : later_lines).push_back(l);
  std::vector<shipment> morning_shipments, later_shipments;
  for (const auto& s : shipments) (s.at < lines[lines.size() / 2].at ? morning_shipments : later_shipments).push_back(s);
  write_lines(dir / "lines", morning_lines, 3, 0);
  write_shipments(dir / "shipments", morning_shipments, 3, 0);
  auto first = row_texts(run_query(session, shipped_lines(session, dir.path(), "left_outer"), "first", checkpoint));
  write_lines(dir / "lines", later_lines, 3, 3);
  write_shipments(dir / "shipments", later_shipments, 3, 3);
  write_flush(dir.path(), 6);
  auto second = row_texts(run_query(session, shipped_lines(session, dir.path(), "left_outer"), "second", checkpoint));
  CHECK(!first.empty());
  first.insert(first.end(), second.begin(), second.end());
  std::sort(first.begin(), first.end());
  CHECK(first == expected_join(lines, shipments, "left_outer"));
}

TEST_CASE("stream-stream join: Spark's refusals when the query starts", "[actors][join][stream-join]") {
  flow::session session;
  flow::test::temp_dir dir;
  write_flush(dir.path(), 0);
  const auto joined = shipped_lines(session, dir.path(), "inner");
  CHECK_THAT(flow::test::error_of([&] { joined.write_stream().format("memory").query_name("u").output_mode("update").start(); }),
             Catch::Contains("Join between two streaming DataFrames/Datasets is not supported in Update output mode"));
  auto plain = [&](const std::string& side, const std::string& time) {
    return session.read_stream().format("csv").option("header", true)
        .schema(flow::make_schema({{side, flow::type_id::string, true}, {time, flow::type_id::timestamp, true}}))
        .load((dir / "lines").string());
  };
  CHECK_THAT(flow::test::error_of([&] {
               plain("StockCode", "InvoiceDate").join(plain("ShipCode", "ShippedAt"),
                                                      (col("ShipCode") == col("StockCode")) &&
                                                          (col("ShippedAt") >= col("InvoiceDate")) &&
                                                          (col("ShippedAt") <= col("InvoiceDate") + lit("1 hour")),
                                                      "left_outer");
             }),
             Catch::Contains("Stream-stream LeftOuter join between two streaming DataFrame/Datasets is not supported "
                             "without a watermark"));
}
