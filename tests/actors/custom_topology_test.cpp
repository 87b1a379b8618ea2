// examples/custom_topology as a user runs it (its command line is fixed): over twelve days of the retail
// data, both files against sums computed here from the CSV rows, the same bytes at parallelism 1, 2 and
// 4, and the refusal of a bad command line.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "flow/session.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct expected_results {
  std::map<std::string, std::pair<double, std::set<std::string>>> countries;
  std::map<std::string, std::int64_t> units;
};

// The sums computed directly from the files with a static read.
expected_results compute(const fs::path& dir) {
  flow::session session(flow::session_config{1, 1});
  expected_results out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    auto rows = session.read().format("csv").option("header", true).option("inferSchema", true)
                    .load(entry.path().string()).collect_batch();
    const auto& invoice = rows.col("InvoiceNo");
    const auto& stock = rows.col("StockCode");
    const auto& quantity = rows.col("Quantity");
    const auto& price = rows.col("UnitPrice");
    const auto& country = rows.col("Country");
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      auto& c = out.countries[std::string(country.str(i))];
      c.first += price.doubles()[i] * static_cast<double>(quantity.ints()[i]);
      c.second.insert(std::string(invoice.str(i)));
      out.units[std::string(stock.str(i))] += quantity.ints()[i];
    }
  }
  return out;
}

std::vector<std::vector<std::string>> csv_lines(const fs::path& file) {
  std::vector<std::vector<std::string>> out;
  std::istringstream text(flow::test::read_file(file));
  for (std::string line; std::getline(text, line);) {
    std::vector<std::string> fields;
    std::stringstream parts(line);
    for (std::string field; std::getline(parts, field, ',');) fields.push_back(field);
    out.push_back(fields);
  }
  return out;
}

int run(const std::vector<std::string>& args, const fs::path& log) {
  flow::test::child_process example(FLOW_CUSTOM_TOPOLOGY_EXAMPLE, args, log, log);
  return example.wait_exit(120s);
}

}  // namespace

TEST_CASE("custom_topology writes per-country revenue and per-code units, the same at parallelism 1, 2 and 4", "[example][topology]") {
  flow::test::temp_dir dir;
  const fs::path data = dir / "data";
  fs::create_directories(data);
  std::vector<fs::path> days;
  for (const auto& entry : fs::directory_iterator(flow::test::shared_data_dir() / "retail-by-day")) days.push_back(entry.path());
  std::sort(days.begin(), days.end());
  REQUIRE(days.size() >= 12);
  for (std::size_t i = 0; i < 12; ++i) fs::copy_file(days[i], data / days[i].filename());
  const auto expected = compute(data);

  std::string first_countries, first_units;
  for (int parallelism : {1, 2, 4}) {
    INFO("parallelism " << parallelism);
    const fs::path out = dir / ("out" + std::to_string(parallelism));
    REQUIRE(run({"--data", data.string(), "--parallelism", std::to_string(parallelism), "--output-dir", out.string()},
                dir / "log.txt") == 0);
    auto countries = csv_lines(out / "country_revenue.csv");
    REQUIRE(countries.size() == expected.countries.size() + 1);
    CHECK(countries[0] == std::vector<std::string>{"Country", "revenue", "invoices"});
    auto c = expected.countries.begin();
    for (std::size_t i = 1; i < countries.size(); ++i, ++c) {
      REQUIRE(countries[i].size() == 3);
      CHECK(countries[i][0] == c->first);  // sorted by Country
      const auto& revenue = countries[i][1];
      CHECK(revenue.size() - revenue.find('.') - 1 >= 2);  // at least 2 decimals
      CHECK(std::stod(revenue) == Approx(c->second.first).margin(0.006));
      CHECK(std::stoll(countries[i][2]) == static_cast<long long>(c->second.second.size()));
    }
    auto units = csv_lines(out / "stock_units.csv");
    REQUIRE(units.size() == expected.units.size() + 1);
    CHECK(units[0] == std::vector<std::string>{"StockCode", "units"});
    auto u = expected.units.begin();
    for (std::size_t i = 1; i < units.size(); ++i, ++u) {
      CHECK(units[i][0] == u->first);
      CHECK(std::stoll(units[i][1]) == u->second);
    }
    if (parallelism == 1) {
      first_countries = flow::test::read_file(out / "country_revenue.csv");
      first_units = flow::test::read_file(out / "stock_units.csv");
    } else {
      CHECK(flow::test::read_file(out / "country_revenue.csv") == first_countries);
      CHECK(flow::test::read_file(out / "stock_units.csv") == first_units);
    }
  }
  // The keyed operators' state in RocksDB instead of memory: the same bytes, and no working files left.
  const fs::path out = dir / "out-rocksdb";
  REQUIRE(run({"--data", data.string(), "--parallelism", "2", "--output-dir", out.string(), "--flow.state-backend=rocksdb"},
              dir / "log.txt") == 0);
  CHECK(flow::test::read_file(out / "country_revenue.csv") == first_countries);
  CHECK(flow::test::read_file(out / "stock_units.csv") == first_units);
  CHECK(run({"--data", data.string(), "--output-dir", out.string(), "--flow.state-backend=leveldb"}, dir / "log.txt") != 0);
  CHECK_THAT(flow::test::read_file(dir / "log.txt"),
             Catch::Contains("unknown state backend 'leveldb': use one of memory, rocksdb"));
}

TEST_CASE("custom_topology refuses a command line without --output-dir or with a bad parallelism", "[example][topology]") {
  flow::test::temp_dir dir;
  CHECK(run({"--data", (flow::test::shared_data_dir() / "retail-by-day").string()}, dir / "log.txt") == 1);
  CHECK_THAT(flow::test::read_file(dir / "log.txt"), Catch::Contains("--output-dir OUT is required"));
  CHECK(run({"--parallelism", "0", "--output-dir", (dir / "o").string()}, dir / "log.txt") == 1);
  CHECK_THAT(flow::test::read_file(dir / "log.txt"), Catch::Contains("--parallelism needs a whole number 1..256"));
  CHECK(run({"--data", (dir / "missing").string(), "--output-dir", (dir / "o").string()}, dir / "log.txt") != 0);
  CHECK_THAT(flow::test::read_file(dir / "log.txt"), Catch::Contains("no such directory"));
}
