// The sessions example as a user runs it: its --output over three retail days against a plain loop over the
// same rows (sessions per customer, distinct invoices, spend), with and without a watermark; a bad flag.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "retail_day.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct session_line {
  std::string customer, start, end;
  std::int64_t length_seconds = 0, invoices = 0;
  double spend = 0;
};

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
  return fields;
}

std::vector<session_line> read_sessions(const fs::path& csv) {
  std::stringstream in(flow::test::read_file(csv));
  std::string line;
  std::getline(in, line);
  CHECK(line == "CustomerID,session_start,session_end,length_seconds,invoices,spend");
  std::vector<session_line> sessions;
  while (std::getline(in, line)) {
    const auto f = fields_of(line);
    REQUIRE(f.size() == 6);
    sessions.push_back({f[0], f[1], f[2], std::stoll(f[3]), std::stoll(f[4]), std::stod(f[5])});
  }
  return sessions;
}

// The sessions of the first `days` retail days by a plain loop: per customer, the lines in time order, a
// session running on while the next line is at most the gap after the previous one's time.
std::vector<session_line> expected_sessions(std::size_t days) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(flow::test::shared_data_dir() / "retail-by-day"))
    if (entry.path().extension() == ".csv") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  struct line {
    std::int64_t time;
    std::string invoice;
    double spend;
  };
  std::map<double, std::vector<line>> lines_of;
  for (std::size_t d = 0; d < days; ++d) {
    const flow::batch rows = flow::test::retail_day(names[d]);
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      if (!rows.col("CustomerID").valid(i)) continue;
      lines_of[rows.col("CustomerID").doubles()[i]].push_back(
          {rows.col("InvoiceDate").ints()[i], std::string(rows.col("InvoiceNo").str(i)),
           rows.col("UnitPrice").doubles()[i] * static_cast<double>(rows.col("Quantity").ints()[i])});
    }
  }
  const std::int64_t gap = 30LL * 60 * 1'000'000;
  std::vector<session_line> sessions;
  for (auto& [customer, lines] : lines_of) {
    std::stable_sort(lines.begin(), lines.end(), [](const line& a, const line& b) { return a.time < b.time; });
    for (std::size_t first = 0; first < lines.size();) {
      std::size_t next = first + 1;
      while (next < lines.size() && lines[next].time <= lines[next - 1].time + gap) ++next;
      std::set<std::string> invoices;
      double spend = 0;
      for (std::size_t i = first; i < next; ++i) {
        invoices.insert(lines[i].invoice);
        spend += lines[i].spend;
      }
      const std::int64_t start = lines[first].time, end = lines[next - 1].time + gap;
      sessions.push_back({flow::to_string(flow::value{customer}), flow::format_timestamp(flow::timestamp{start}),
                          flow::format_timestamp(flow::timestamp{end}), (end - start) / 1'000'000,
                          static_cast<std::int64_t>(invoices.size()), spend});
      first = next;
    }
  }
  return sessions;
}

void check_same(const std::vector<session_line>& actual, const std::vector<session_line>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    INFO("session " << i << ": customer " << expected[i].customer << " from " << expected[i].start);
    CHECK(actual[i].customer == expected[i].customer);
    CHECK(actual[i].start == expected[i].start);
    CHECK(actual[i].end == expected[i].end);
    CHECK(actual[i].length_seconds == expected[i].length_seconds);
    CHECK(actual[i].invoices == expected[i].invoices);
    CHECK(std::abs(actual[i].spend - expected[i].spend) < 0.005);
  }
}

}  // namespace

TEST_CASE("sessions --output holds the retail sessions per customer of a plain loop, with and without a watermark",
          "[example][session_window]") {
  flow::test::temp_dir dir;
  const auto data = flow::test::retail_days(dir, 3);
  const auto expected = expected_sessions(3);
  REQUIRE(expected.size() > 100);
  for (const auto& extra : {std::vector<std::string>{}, std::vector<std::string>{"--watermark", "2 hours"}}) {
    INFO((extra.empty() ? "without" : "with") << " a watermark");
    const auto out = dir / "sessions.csv";
    std::vector<std::string> args{"--data", data.string(), "--output", out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    flow::test::child_process run(FLOW_SESSIONS_EXAMPLE, args, dir / "log.txt");
    REQUIRE(run.wait_exit(120s) == 0);
    check_same(read_sessions(out), expected);
  }
}

TEST_CASE("sessions refuses a bad gap and a missing --data with a usage error", "[example][session_window]") {
  flow::test::temp_dir dir;
  for (const auto& [args, reason] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--data", "x", "--output", "y", "--gap", "0 minutes"}, "--gap: "},
           {{"--output", "y"}, "--data DIR is required"}}) {
    flow::test::child_process run(FLOW_SESSIONS_EXAMPLE, args, dir / "stdout.txt", dir / "stderr.txt");
    CHECK(run.wait_exit(30s) == 1);
    CHECK_THAT(flow::test::read_file(dir / "stderr.txt"), Catch::Contains(reason) && Catch::Contains("usage: sessions"));
  }
}
