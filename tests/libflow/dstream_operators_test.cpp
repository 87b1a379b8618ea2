// The dstream operators driven by hand, batch by batch (the epoch is the batch clock), each against a plain
// loop over the same elements: reduce_by_key_and_window with and without its inverse function over the
// words of Don Quijote, window, update_state_by_key, and map_with_state's timeouts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <sstream>

#include "collecting_context.hpp"
#include "flow/dstream_operators.hpp"
#include "test_support.hpp"

using namespace flow;
using flow::test::collecting_context;
using flow::test::error_of;
using word_count = std::pair<std::string, std::int64_t>;
using counts = std::map<std::string, std::int64_t>;

namespace {

// The words of the first lines of Don Quijote (runs of non-blanks), as (word, 1), in `batches` batches of
// consecutive lines.
std::vector<std::vector<word_count>> quijote_batches(std::size_t lines, std::size_t batches) {
  std::istringstream text(flow::test::read_file(flow::test::shared_data_dir() / "text" / "quijote.txt"));
  std::vector<std::vector<word_count>> out(batches);
  std::string line;
  for (std::size_t i = 0; i < lines && std::getline(text, line); ++i) {
    std::istringstream words(line);
    std::string word;
    while (words >> word) out[i * batches / lines].emplace_back(word, 1);
  }
  return out;
}

// One operator instance with its state, driven as the runtime drives it: process, end_epoch, then the
// state's changes folded into a checkpoint copy. restart() replaces the state by one restored from the copy.
struct driven {
  explicit driven(operator_ptr op) : op(std::move(op)), state(this->op->make_state()), checkpoint(this->op->make_state()) {}
  batch run_batch(std::int64_t epoch, const batch& input) {
    collecting_context ctx(epoch);
    if (input.num_rows() > 0) op->process(input, 0, state.get(), ctx);
    op->end_epoch(state.get(), ctx);
    checkpoint->apply_changes(state->take_changes());
    return ctx.take(op->output_schema());
  }
  void restart() {
    state = op->make_state();
    state->restore(checkpoint->snapshot());
  }
  operator_ptr op;
  std::unique_ptr<operator_state> state, checkpoint;
};

counts to_counts(const batch& rows) {
  counts out;
  for (const auto& [word, n] : dstream_codec<word_count>::read(rows)) {
    CHECK(out.count(word) == 0);  // each key once per window
    out[word] = n;
  }
  return out;
}

using window_operator = dstream_reduce_window_operator<std::string, std::int64_t>;

}  // namespace

TEST_CASE("reduce_by_key_and_window with an inverse function equals the reduction without it over Don Quijote",
          "[dstream]") {
  const auto [length, slide] = GENERATE(std::pair<std::int64_t, std::int64_t>{3, 1}, std::pair<std::int64_t, std::int64_t>{4, 2});
  CAPTURE(length, slide);
  auto batches = quijote_batches(600, 12);
  batches.resize(batches.size() + static_cast<std::size_t>(length));  // then the window drains
  const auto plus = [](std::int64_t a, std::int64_t b) { return a + b; };
  const auto minus = [](std::int64_t a, std::int64_t b) { return a - b; };
  driven reduced(std::make_shared<window_operator>(window_operator::spec{plus, {}, {}, length, slide}));
  driven inverse(std::make_shared<window_operator>(
      window_operator::spec{plus, minus, [](const word_count& w) { return w.second > 0; }, length, slide}));
  driven unfiltered(std::make_shared<window_operator>(window_operator::spec{plus, minus, {}, length, slide}));
  const auto schema = dstream_schema<word_count>();
  std::size_t windows = 0;
  for (std::int64_t epoch = 0; epoch < static_cast<std::int64_t>(batches.size()); ++epoch) {
    CAPTURE(epoch);
    if (epoch == 7) inverse.restart();  // the incremental state survives a restore from its checkpoint
    const batch input = dstream_codec<word_count>::write(schema, batches[static_cast<std::size_t>(epoch)]);
    const counts without = to_counts(reduced.run_batch(epoch, input));
    const counts with = to_counts(inverse.run_batch(epoch, input));
    const counts kept = to_counts(unfiltered.run_batch(epoch, input));
    const std::int64_t batch_number = epoch + 1;
    if (batch_number % slide != 0) {
      CHECK(without.empty());
      CHECK(with.empty());
      continue;
    }
    counts expected;  // the plain loop: the words of batches (b - length, b]
    for (std::int64_t b = std::max<std::int64_t>(1, batch_number - length + 1); b <= batch_number; ++b) {
      for (const auto& [word, n] : batches[static_cast<std::size_t>(b - 1)]) expected[word] += n;
    }
    CHECK(without == expected);
    CHECK(with == expected);
    // Without a filter, words that left the window stay with count 0, as in Spark.
    for (const auto& [word, n] : kept) CHECK(n == (expected.count(word) ? expected.at(word) : 0));
    windows += expected.empty() ? 0 : 1;
  }
  CHECK(windows >= 6);
  CHECK(inverse.state->num_rows() == 0);  // every word's count went back to 0 and the filter dropped it
  CHECK(reduced.state->num_rows() == 0);
  CHECK(unfiltered.state->num_rows() > 1000);
}

TEST_CASE("dstream window emits the elements of the last batches every slide", "[dstream]") {
  const auto schema = dstream_schema<std::string>();
  driven window(std::make_shared<dstream_window_operator>(schema, 3, 2));
  std::vector<std::vector<std::string>> batches{{"a", "b"}, {}, {"c"}, {"d", "e", "f"}, {}, {}, {"g"}, {}, {}, {}};
  for (std::int64_t epoch = 0; epoch < static_cast<std::int64_t>(batches.size()); ++epoch) {
    if (epoch == 4) window.restart();
    auto emitted = dstream_codec<std::string>::read(window.run_batch(epoch, dstream_codec<std::string>::write(schema, batches[epoch])));
    std::vector<std::string> expected;
    const std::int64_t b = epoch + 1;
    if (b % 2 == 0) {
      for (std::int64_t i = std::max<std::int64_t>(1, b - 2); i <= b; ++i) {
        for (const auto& item : batches[i - 1]) expected.push_back(item);
      }
    }
    CHECK(emitted == expected);
  }
  CHECK(window.state->num_rows() == 0);
  CHECK(error_of([&] { dstream_window_operator(schema, 0, 1); }).find("must be positive") != std::string::npos);
}

TEST_CASE("update_state_by_key keeps a state per word as a plain loop does", "[dstream]") {
  const auto batches = quijote_batches(300, 6);
  // The running count; a word idle in a batch with a count below 3 is dropped.
  auto update = [](const std::vector<std::int64_t>& values, const std::optional<std::int64_t>& state) -> std::optional<std::int64_t> {
    if (values.empty() && state.value_or(0) < 3) return std::nullopt;
    std::int64_t total = state.value_or(0);
    for (auto v : values) total += v;
    return total;
  };
  driven op(std::make_shared<dstream_update_state_operator<std::string, std::int64_t, std::int64_t>>(update, 1));
  counts loop;
  for (std::int64_t epoch = 0; epoch < 6; ++epoch) {
    if (epoch == 3) op.restart();
    const auto& rows = batches[static_cast<std::size_t>(epoch)];
    std::map<std::string, std::vector<std::int64_t>> values;
    for (const auto& [word, n] : rows) values[word].push_back(n);
    for (const auto& [word, n] : loop) values[word];
    counts next;
    for (const auto& [word, vs] : values) {
      auto it = loop.find(word);
      if (auto s = update(vs, it == loop.end() ? std::nullopt : std::optional<std::int64_t>(it->second))) next[word] = *s;
    }
    loop = next;
    CHECK(to_counts(op.run_batch(epoch, dstream_codec<word_count>::write(dstream_schema<word_count>(), rows))) == loop);
  }
  CHECK(op.state->num_rows() == loop.size());
}

TEST_CASE("map_with_state times keys out by the batch clock", "[dstream]") {
  using spec_type = state_spec<std::string, std::int64_t, std::int64_t, std::string>;
  std::vector<std::string> update_errors;
  spec_type spec{[&](const std::string& key, const std::optional<std::int64_t>& value, dstream_state<std::int64_t>& state) {
                   if (state.is_timing_out()) {
                     update_errors.push_back(error_of([&] { state.update(0); }));
                     return key + " timed out at " + std::to_string(state.get());
                   }
                   if (*value < 0) {
                     state.remove();
                     return key + " removed";
                   }
                   state.update(state.exists() ? state.get() + *value : *value);
                   return key + "=" + std::to_string(state.get());
                 },
                 std::chrono::milliseconds(2500)};
  // Batches of 1 s: a key times out once its last value is more than 2.5 s old, i.e. 3 batches later.
  driven op(std::make_shared<dstream_map_with_state_operator<std::string, std::int64_t, std::int64_t, std::string>>(
      spec, std::chrono::milliseconds(1000)));
  const std::vector<std::vector<std::pair<std::string, std::int64_t>>> batches{
      {{"a", 1}, {"b", 5}}, {{"a", 2}, {"c", 1}}, {{"c", -1}}, {}, {{"d", 1}}, {}, {}, {}, {}};
  const std::vector<std::vector<std::string>> expected{
      {"a=1", "b=5"}, {"a=3", "c=1"}, {"c removed"}, {"b timed out at 5"}, {"d=1", "a timed out at 3"}, {}, {},
      {"d timed out at 1"}, {}};
  for (std::size_t epoch = 0; epoch < batches.size(); ++epoch) {
    CAPTURE(epoch);
    if (epoch == 6) op.restart();
    auto emitted = dstream_codec<std::string>::read(op.run_batch(
        static_cast<std::int64_t>(epoch), dstream_codec<std::pair<std::string, std::int64_t>>::write(
                                              dstream_schema<std::pair<std::string, std::int64_t>>(), batches[epoch])));
    CHECK(emitted == expected[epoch]);
  }
  CHECK(op.state->num_rows() == 0);
  REQUIRE(update_errors.size() == 3);
  CHECK(update_errors[0].find("timing out") != std::string::npos);
}

TEST_CASE("dstream elements: the frame's columns are checked, nulls refused, state bytes round-trip", "[dstream]") {
  const auto ints = make_schema({{"n", type_id::int64}});
  CHECK(error_of([&] { dstream_detail::check_columns(*ints, dstream_codec<std::string>::fields(), "stream"); })
            .find("stream: the frame's columns (n: int64) do not start with the element's (string)") != std::string::npos);
  const batch with_null = make_batch(make_schema({{"value", type_id::string}}), {{std::string("x")}, {null_value{}}});
  CHECK(error_of([&] { dstream_codec<std::string>::read(with_null); }).find("row 1 of column 'value' is null") !=
        std::string::npos);
  std::string bytes;
  dstream_codec<std::pair<std::string, double>>::encode(bytes, {std::string("k\0ey", 4), 2.5});
  std::string_view in = bytes;
  CHECK(dstream_codec<std::pair<std::string, double>>::decode(in) == std::pair<std::string, double>{std::string("k\0ey", 4), 2.5});
  CHECK(in.empty());
  std::string_view truncated = std::string_view(bytes).substr(0, 5);
  CHECK(error_of([&] { dstream_codec<std::string>::decode(truncated); }).find("truncated") != std::string::npos);
}
