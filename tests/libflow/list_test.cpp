// array<string> (string_list) columns and the split / explode / lower / upper / length / size functions.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>

#include "flow/batch.hpp"
#include "flow/expr.hpp"
#include "flow/formats.hpp"
#include "flow/operators.hpp"
#include "test_support.hpp"

using namespace flow;

namespace {

using list = std::vector<std::string>;

schema_ptr list_schema() {
  return make_schema({{"id", type_id::int64}, {"tags", type_id::string_list}, {"text", type_id::string}});
}

batch list_batch() {
  std::vector<std::vector<value>> rows;
  for (int i = 0; i < 70; ++i) {
    std::string tag = "t";
    tag += std::to_string(i);
    value tags = i % 9 == 4 ? value{} : value{list(static_cast<std::size_t>(i % 4), tag)};
    rows.push_back({std::int64_t{i}, tags, std::string(static_cast<std::size_t>(i % 3), 'x')});
  }
  rows[1][1] = list{"Señor", "", "with, comma"};
  return make_batch(list_schema(), rows);
}

// Evaluates e over a one-column string batch.
column eval_on_strings(const expr& e, const std::vector<value>& texts) {
  auto s = make_schema({{"value", type_id::string}});
  std::vector<std::vector<value>> rows;
  for (const auto& t : texts) rows.push_back({t});
  return bind(e, *s).evaluate(make_batch(s, rows));
}

list split_once(const std::string& text, const std::string& pattern) {
  auto c = eval_on_strings(split(col("value"), pattern), {text});
  return std::get<list>(c.at(0));
}

batch json_decode(const std::string& text, schema_ptr schema, const std::string& mode, decode_stats& stats) {
  options opts;
  opts.set("mode", mode);
  auto buffer = std::make_shared<const std::string>(text);
  return make_decoder("json", opts, std::move(schema))->decode(raw_chunk{buffer, 0, buffer->size(), "in.json"}, stats);
}

}  // namespace

TEST_CASE("type names, parsing and printSchema of array<string>", "[list]") {
  CHECK(type_name(type_id::string_list) == "array<string>");
  CHECK(parse_type_name("array<string>") == type_id::string_list);
  CHECK(parse_type_name("ARRAY<STRING>") == type_id::string_list);
  CHECK(parse_type_name("list<string>") == type_id::string_list);
  CHECK(type_of(value{list{"a"}}) == type_id::string_list);
  CHECK(to_string(value{list{"a", "b", "c"}}) == "[a, b, c]");
  CHECK(to_string(value{list{}}) == "[]");
  auto s = make_schema({{"id", type_id::int64}, {"hashtags", type_id::string_list}});
  CHECK(s->tree_string() ==
        "root\n"
        " |-- id: long (nullable = true)\n"
        " |-- hashtags: array (nullable = true)\n"
        " |    |-- element: string (containsNull = true)\n");
  CHECK(s->to_string() == "id: int64, hashtags: array<string>");
}

TEST_CASE("the builder appends lists, nulls and empty lists", "[list]") {
  column_builder b(type_id::string_list);
  b.begin_list();
  b.append_list_item("a");
  b.append_list_item("bc");
  b.end_list();
  b.append_null();
  b.append_list({});
  std::vector<std::string_view> items{"x", "", "yz"};
  b.append_list(items);
  b.append_value(value{list{"v"}});
  b.append_value(value{});
  auto c = b.finish();
  REQUIRE(c.size() == 6);
  CHECK(c.list_size(0) == 2);
  CHECK(c.list_item(0, 1) == "bc");
  CHECK(c.is_null(1));
  CHECK(c.list_size(1) == 0);
  CHECK(c.valid(2));
  CHECK(c.list_size(2) == 0);
  CHECK(c.at(3) == value{list{"x", "", "yz"}});
  CHECK(c.at(4) == value{list{"v"}});
  CHECK(is_null(c.at(5)));
  CHECK(c.data()->list_offsets.size() == 7);

  // The builder is reusable after finish().
  b.append_value(value{list{"again"}});
  CHECK(b.finish().at(0) == value{list{"again"}});
}

TEST_CASE("builder misuse is a flow::error", "[list]") {
  column_builder b(type_id::string_list);
  CHECK_THROWS_WITH(b.append_list_item("x"), Catch::Contains("call begin_list() first"));
  CHECK_THROWS_WITH(b.end_list(), Catch::Contains("no list is open"));
  b.begin_list();
  CHECK_THROWS_WITH(b.begin_list(), Catch::Contains("already open"));
  CHECK_THROWS_WITH(b.append_null(), Catch::Contains("end_list()"));
  CHECK_THROWS_WITH(b.finish(), Catch::Contains("still open"));
  column_builder strings(type_id::string);
  CHECK_THROWS_WITH(strings.begin_list(), Catch::Contains("not array<string>"));
  CHECK_THROWS_WITH(strings.append_value(value{list{"a"}}), Catch::Contains("array<string> value to a string column"));
  column_builder lists(type_id::string_list);
  CHECK_THROWS_WITH(lists.append_value(value{std::string("a")}), Catch::Contains("string value to a array<string>"));
}

TEST_CASE("slices of list columns are zero-copy views", "[list]") {
  auto c = make_string_list_column({{"a"}, {"b", "c"}, {}, {"d", "e", "f"}});
  auto s = c.slice(1, 3);
  CHECK(s.data() == c.data());
  CHECK(s.list_size(0) == 2);
  CHECK(s.list_item(0, 1) == "c");
  CHECK(s.list_size(1) == 0);
  CHECK(s.at(2) == value{list{"d", "e", "f"}});
  // validity bytes (none) + list offsets (4 * 4) + element offsets (6 * 4) + 5 characters
  CHECK(s.byte_size() == 16 + 24 + 5);
  CHECK(c.slice(4, 0).byte_size() == 4 + 4);
}

TEST_CASE("equality, concat, filter_rows and take_rows keep lists intact", "[list]") {
  auto b = list_batch();
  CHECK(b == make_batch(list_schema(), [&] {
          std::vector<std::vector<value>> rows;
          for (std::size_t r = 0; r < b.num_rows(); ++r) rows.push_back({b.at(r, 0), b.at(r, 1), b.at(r, 2)});
          return rows;
        }()));
  auto changed = make_batch(list_schema(), {{std::int64_t{1}, list{"a", "b"}, std::string("x")}});
  CHECK_FALSE(changed == make_batch(list_schema(), {{std::int64_t{1}, list{"a", "c"}, std::string("x")}}));
  CHECK_FALSE(changed == make_batch(list_schema(), {{std::int64_t{1}, list{"a"}, std::string("x")}}));
  CHECK_FALSE(changed == make_batch(list_schema(), {{std::int64_t{1}, value{}, std::string("x")}}));
  CHECK(make_batch(list_schema(), {{std::int64_t{1}, list{}, std::string("x")}}) !=
        make_batch(list_schema(), {{std::int64_t{1}, value{}, std::string("x")}}));

  auto joined = concat({b.slice(0, 10), b.slice(10, 35), b.slice(45, 25)});
  CHECK(joined == b);
  std::vector<std::uint8_t> keep(b.num_rows());
  for (std::size_t i = 0; i < keep.size(); ++i) keep[i] = i % 3 == 1;
  auto kept = filter_rows(b, keep);
  REQUIRE(kept.num_rows() == 23);
  for (std::size_t i = 0; i < kept.num_rows(); ++i) CHECK(kept.at(i, 1) == b.at(3 * i + 1, 1));

  auto taken = take_rows(b.col(1).slice(1, 10), {3, 0, 0, 9});
  CHECK(taken.at(0) == b.at(4, 1));
  CHECK(taken.at(1) == value{list{"Señor", "", "with, comma"}});
  CHECK(taken.at(2) == taken.at(1));
  CHECK(taken.at(3) == b.at(10, 1));
  CHECK_THROWS_WITH(take_rows(b.col(0), {70}), Catch::Contains("out of range"));
}

TEST_CASE("show() prints lists like Spark and truncates them like strings", "[list]") {
  auto s = make_schema({{"words", type_id::string_list}});
  auto b = make_batch(s, {{list{"a", "b"}}, {list{}}, {value{}}, {list{"a long word", "another long word"}}});
  CHECK(format_table(b) ==
        "+--------------------+\n"
        "|               words|\n"
        "+--------------------+\n"
        "|              [a, b]|\n"
        "|                  []|\n"
        "|                null|\n"
        "|[a long word, ano...|\n"
        "+--------------------+\n");
  CHECK(format_table(b, 20, false).find("|[a long word, another long word]|") != std::string::npos);
}

TEST_CASE("list columns round trip through the binary encoding, slices rebased", "[list][encoding]") {
  auto b = list_batch();
  flow::test::check_encoding_round_trip(b);
  flow::test::check_slices_encode_as_fresh(b, {{0, 0}, {1, 1}, {4, 1}, {5, 60}, {13, 57}});
  CHECK(decode_batch(encode(batch::empty(list_schema()))) == batch::empty(list_schema()));
}

TEST_CASE("list decoding survives truncation and flipped bytes", "[list][encoding][fuzz]") {
  auto bytes = encode(list_batch().slice(1, 12));
  flow::test::check_truncations_refused(bytes);
  auto [decoded, rejected] = flow::test::check_flipped_bytes(bytes, 4321);
  CHECK(decoded > 0);
  CHECK(rejected > 0);
}

TEST_CASE("decode rejects inconsistent list offsets", "[list][encoding]") {
  auto s = make_schema({{"l", type_id::string_list}});
  auto bytes = encode(make_batch(s, {{list{"ab"}}, {value{}}}));
  // magic 4, version 2, count 4, name length 4 + "l", type, nullable, rows 8, validity flag + 1 bitmap byte
  const std::size_t lists_at = 4 + 2 + 4 + 4 + 1 + 1 + 1 + 8 + 1 + 1;
  auto null_with_items = bytes;
  null_with_items[lists_at + 8] = 2;  // the null row's end offset
  CHECK_THROWS_WITH(decode_batch(null_with_items), Catch::StartsWith("corrupt batch encoding: "));
  auto huge = bytes;
  for (std::size_t i = 0; i < 4; ++i) huge[lists_at + 4 + i] = huge[lists_at + 8 + i] = 0xff;
  CHECK_THROWS_WITH(decode_batch(huge), Catch::Contains("element count"));
}

TEST_CASE("split on whitespace runs gives words only", "[list][split]") {
  CHECK(split_once("a b  c", "\\s+") == list{"a", "b", "c"});
  CHECK(split_once("  lead\tand\r\ntrail  ", "\\s+") == list{"lead", "and", "trail"});
  CHECK(split_once("", "\\s+").empty());
  CHECK(split_once(" \t ", "\\s+").empty());
  CHECK(split_once("a  b", "\\s") == list{"a", "b"});
  CHECK(split_once(" a\tb  c ", " +") == list{"a\tb", "c"});
}

TEST_CASE("split on literal separators follows Java's String.split with limit -1", "[list][split]") {
  CHECK(split_once("a,b,,c,", ",") == list{"a", "b", "", "c", ""});
  CHECK(split_once(",a", ",") == list{"", "a"});
  CHECK(split_once("", ",") == list{""});
  CHECK(split_once("abc", ",") == list{"abc"});
  CHECK(split_once("a::b::::c", "::") == list{"a", "b", "", "c"});
  CHECK(split_once("a|b|c", "\\|") == list{"a", "b", "c"});
  CHECK(split_once("1.2.3", "\\.") == list{"1", "2", "3"});
  CHECK(split_once("x  y", " ") == list{"x", "", "y"});
}

TEST_CASE("split with a regular expression", "[list][split]") {
  CHECK(split_once("oneAtwoBthreeC", "[ABC]") == list{"one", "two", "three", ""});
  CHECK(split_once("a1b22c", "[0-9]+") == list{"a", "b", "c"});
  CHECK(split_once("abc", "") == list{"a", "b", "c", ""});
  CHECK(split_once("#x #y", "#") == list{"", "x ", "y"});
  CHECK(split_once("a.b", ".") == list{"", "", "", ""});
  CHECK_THROWS_WITH(split(col("value"), "[a-"), Catch::Contains("split(): invalid regular expression '[a-'"));
}

TEST_CASE("split: nulls, names, types and bad inputs", "[list][split]") {
  auto c = eval_on_strings(split(col("value"), "\\s+"), {std::string("a b"), value{}});
  CHECK(c.type() == type_id::string_list);
  CHECK(c.is_null(1));
  CHECK(split(col("value"), "\\s+").name() == "split(value, \\s+, -1)");
  CHECK(split(col("value"), " ").name() == "split(value,  , -1)");
  auto s = make_schema({{"value", type_id::string, false}, {"n", type_id::int64}, {"w", type_id::window}});
  auto bound = bind(split(col("value"), ","), *s);
  CHECK(bound.type() == type_id::string_list);
  CHECK_FALSE(bound.nullable());
  // Atomic types are cast to string first, like Spark.
  auto numbers = bind(split(col("n"), "0"), *s).evaluate(make_batch(s, {{std::string("x"), std::int64_t{1020}, value{}}}));
  CHECK(numbers.at(0) == value{list{"1", "2", ""}});
  CHECK_THROWS_WITH(bind(split(col("w"), ","), *s), Catch::Contains("split() needs a string, but 'w' is window"));
}

TEST_CASE("split of the Don Quijote text matches an independent tokenizer", "[list][split]") {
  std::string text = test::read_file(test::shared_data_dir() / "text" / "quijote.txt");
  std::istringstream in(text);
  std::vector<value> lines;
  std::size_t expected_words = 0;
  for (std::string line; std::getline(in, line) && lines.size() < 2000;) {
    std::istringstream words(line);
    for (std::string w; words >> w;) ++expected_words;
    lines.emplace_back(line);
  }
  auto c = eval_on_strings(split(col("value"), "\\s+"), lines);
  std::size_t words = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    words += c.list_size(i);
    for (std::size_t j = 0; j < c.list_size(i); ++j) {
      CHECK_FALSE(c.list_item(i, j).empty());
      CHECK(c.list_item(i, j).find_first_of(" \t\r\n") == std::string_view::npos);
    }
  }
  CHECK(words == expected_words);
  CHECK(words > 10000);
}

TEST_CASE("lower, upper, length and size", "[list][functions]") {
  auto low = eval_on_strings(lower(col("value")), {std::string("DON Quijote ÉÑÜ ÀÞ ΣΑ ДЖ Łódź"), value{}});
  CHECK(low.at(0) == value{std::string("don quijote éñü àþ σα дж łódź")});
  CHECK(low.is_null(1));
  auto up = eval_on_strings(upper(col("value")), {std::string("señor ß ÿ 1€")});
  CHECK(up.at(0) == value{std::string("SEÑOR ß Ÿ 1€")});
  auto len = eval_on_strings(length(col("value")), {std::string("año"), std::string(""), value{}});
  CHECK(len.type() == type_id::int64);
  CHECK(len.at(0) == value{std::int64_t{3}});
  CHECK(len.at(1) == value{std::int64_t{0}});
  CHECK(len.is_null(2));
  // Long strings, counted 16 bytes a step: 2-, 3- and 4-byte characters across the steps, more than
  // 255 steps of continuation bytes, and a tail shorter than a step.
  std::string mixed, many;
  for (int i = 0; i < 100; ++i) mixed += "añ€😀b";  // 1 + 2 + 3 + 4 + 1 bytes, 5 characters
  for (int i = 0; i < 3000; ++i) many += "ñ";
  many += "xyz";
  auto long_len = eval_on_strings(length(col("value")), {mixed, many});
  CHECK(long_len.at(0) == value{std::int64_t{500}});
  CHECK(long_len.at(1) == value{std::int64_t{3003}});
  CHECK(lower(col("x")).name() == "lower(x)");
  CHECK(upper(col("x")).name() == "upper(x)");
  CHECK(length(col("x")).name() == "length(x)");
  CHECK(size(col("x")).name() == "size(x)");

  auto s = list_schema();
  auto sizes = bind(size(col("tags")), *s).evaluate(list_batch());
  CHECK(sizes.at(0) == value{std::int64_t{0}});
  CHECK(sizes.at(1) == value{std::int64_t{3}});
  CHECK(sizes.at(4) == value{std::int64_t{-1}});  // null list
  CHECK_FALSE(sizes.has_nulls());
  CHECK_THROWS_WITH(bind(size(col("text")), *s), Catch::Contains("size() needs an array<string>, but 'text' is string"));
  CHECK_THROWS_WITH(bind(length(col("tags")), *s), Catch::Contains("use size()"));
  CHECK_THROWS_WITH(bind(lower(col("tags")), *s), Catch::Contains("lower() needs a string"));
  // A list casts to its show() text, and lists compare element-wise.
  auto text = bind(col("tags").cast(type_id::string), *s).evaluate(list_batch());
  CHECK(text.at(1) == value{std::string("[Señor, , with, comma]")});
  CHECK_THROWS_WITH(bind(col("tags").cast(type_id::int64), *s), Catch::Contains("cannot cast"));
  auto same = bind(col("tags") == col("tags"), *s).evaluate(list_batch());
  CHECK(same.at(1) == value{true});
}

TEST_CASE("explode yields one row per element and repeats the other columns", "[list][explode]") {
  auto s = make_schema({{"id", type_id::int64}, {"value", type_id::string}});
  auto input = make_batch(s, {{std::int64_t{1}, std::string("a b")},
                              {std::int64_t{2}, value{}},
                              {std::int64_t{3}, std::string("  ")},
                              {std::int64_t{4}, std::string("c")}});
  project_operator op(*s, {col("id"), explode(split(col("value"), "\\s+")).as("word"), (col("id") * lit(10)).as("x")});
  CHECK(op.output_schema()->to_string() == "id: int64, word: string, x: int64");
  auto out = op.apply(input);
  CHECK(out == make_batch(op.output_schema(), {{std::int64_t{1}, std::string("a"), std::int64_t{10}},
                                               {std::int64_t{1}, std::string("b"), std::int64_t{10}},
                                               {std::int64_t{4}, std::string("c"), std::int64_t{40}}}));
  // Unaliased, the column is Spark's "col"; a slice of the input explodes the same rows.
  project_operator plain(*s, {explode(split(col("value"), "\\s+"))});
  CHECK(plain.output_schema()->to_string() == "col: string");
  CHECK(op.describe() == "Project [id, explode(split(value, \\s+, -1)) AS word, (id * 10) AS x]");
  CHECK(plain.describe() == "Project [explode(split(value, \\s+, -1)) AS col]");
  auto sliced = plain.apply(input.slice(1, 3));
  REQUIRE(sliced.num_rows() == 1);
  CHECK(sliced.at(0, 0) == value{std::string("c")});
  CHECK(plain.apply(batch::empty(s)).num_rows() == 0);
  CHECK(plain.apply(input.slice(1, 2)).num_rows() == 0);
}

TEST_CASE("explode of a list column with nulls, empty lists and slices", "[list][explode]") {
  auto b = list_batch();
  project_operator op(*b.schema_ref(), {explode(col("tags")).as("tag"), col("id")});
  for (auto [offset, length] : std::vector<std::pair<std::size_t, std::size_t>>{{0, 70}, {3, 20}, {4, 1}}) {
    auto input = b.slice(offset, length);
    auto out = op.apply(input);
    std::vector<std::vector<value>> expected;
    for (std::size_t r = 0; r < input.num_rows(); ++r) {
      if (input.col(1).is_null(r)) continue;
      const value tags = input.at(r, 1);
      for (const auto& tag : std::get<list>(tags)) expected.push_back({tag, input.at(r, 0)});
    }
    CHECK(out == make_batch(op.output_schema(), expected));
  }
}

TEST_CASE("explode errors name Spark's rules", "[list][explode]") {
  auto s = list_schema();
  CHECK_THROWS_WITH(project_operator(*s, {explode(col("tags")), explode(col("tags")).as("b")}),
                    Catch::Contains("Only one generator allowed per select clause") && Catch::Contains("found 2"));
  CHECK_THROWS_WITH(project_operator(*s, {lower(explode(col("tags")))}),
                    Catch::Contains("Generators are not supported when it's nested in expressions"));
  CHECK_THROWS_WITH(project_operator(*s, {explode(col("text"))}),
                    Catch::Contains("explode() needs an array<string>, but 'text' is string"));
  CHECK_THROWS_WITH(filter_operator(s, explode(col("tags")) == lit("a")),
                    Catch::Contains("Generators are not supported when it's nested"));
  CHECK_THROWS_WITH(bind(explode(col("tags")), *s), Catch::Contains("Generators are not supported outside the SELECT"));
  CHECK_THROWS_WITH(aggregate_operator(s, {explode(col("tags"))}, {agg_spec{agg_kind::count, {}, {}}}),
                    Catch::Contains("Generators are not supported outside the SELECT"));
  auto bound = bind_select_item(explode(col("tags")), *s);
  CHECK(bound.is_generator());
  CHECK_THROWS_WITH(bound.evaluate(list_batch()), Catch::Contains("generator"));
  CHECK_THROWS_WITH(bind(col("id"), *s).evaluate_generator_input(list_batch()), Catch::Contains("not a generator"));
}

TEST_CASE("aggregation groups exploded words and refuses list keys and inputs", "[list][aggregate]") {
  auto s = make_schema({{"value", type_id::string}});
  auto input = make_batch(s, {{std::string("to be or not to be")}, {std::string("be")}});
  project_operator words(*s, {explode(split(col("value"), "\\s+")).as("word")});
  auto exploded = words.apply(input);
  aggregate_operator agg(words.output_schema(), {col("word")}, {agg_spec{agg_kind::count, {}, {}}});
  auto state = agg.make_state();
  state->update(exploded);
  auto out = state->emit(output_mode::complete);
  std::map<std::string, std::int64_t> counts;
  for (std::size_t r = 0; r < out.num_rows(); ++r) {
    counts[std::get<std::string>(out.at(r, 0))] = std::get<std::int64_t>(out.at(r, 1));
  }
  CHECK(counts == std::map<std::string, std::int64_t>{{"to", 2}, {"be", 3}, {"or", 1}, {"not", 1}});

  auto ls = list_schema();
  CHECK_THROWS_WITH(aggregate_operator(ls, {col("tags")}, {agg_spec{agg_kind::count, {}, {}}}),
                    Catch::Contains("key 'tags' is array<string>"));
  for (auto kind : {agg_kind::count, agg_kind::min, agg_kind::max, agg_kind::sum}) {
    CHECK_THROWS_WITH(aggregate_operator(ls, {col("id")}, {agg_spec{kind, col("tags"), {}}}),
                      Catch::Contains("tags") && Catch::Contains("array<string>"));
  }
}

TEST_CASE("JSON arrays decode into array<string> columns", "[list][json]") {
  auto schema = make_schema({{"id", type_id::int64}, {"tags", type_id::string_list}});
  const std::string input =
      "{\"id\":1,\"tags\":[\"a\",\"b c\",\"\"]}\n"
      "{\"id\":2,\"tags\":[]}\n"
      "{\"id\":3,\"tags\":null}\n"
      "{\"id\":4}\n"
      "{\"id\":5,\"tags\":[1,2.5,true,\"x\"]}\n"
      "{\"id\":6,\"tags\":[[\"nested\"]]}\n"
      "{\"id\":7,\"tags\":[{\"a\":1}]}\n"
      "{\"id\":8,\"tags\":\"not a list\"}\n"
      "{\"id\":9,\"tags\":[\"ok\",null]}\n";
  decode_stats stats;
  auto b = json_decode(input, schema, "PERMISSIVE", stats);
  REQUIRE(b.num_rows() == 9);
  CHECK(b.at(0, 1) == value{list{"a", "b c", ""}});
  CHECK(b.at(1, 1) == value{list{}});
  CHECK(is_null(b.at(2, 1)));
  CHECK(is_null(b.at(3, 1)));
  CHECK(b.at(4, 1) == value{list{"1", "2.5", "true", "x"}});
  for (std::size_t r = 5; r < 9; ++r) CHECK(is_null(b.at(r, 1)));
  CHECK(stats.malformed == 4);

  decode_stats drop_stats;
  auto dropped = json_decode(input, schema, "DROPMALFORMED", drop_stats);
  CHECK(dropped.num_rows() == 5);
  decode_stats fail_stats;
  CHECK_THROWS_WITH(json_decode(input, schema, "FAILFAST", fail_stats),
                    Catch::Contains("line 6") && Catch::Contains("not a valid array<string>"));

  // A string column keeps an array as its JSON text.
  decode_stats text_stats;
  auto as_text = json_decode("{\"tags\":[\"a\",1]}\n", make_schema({{"tags", type_id::string}}), "PERMISSIVE", text_stats);
  CHECK(as_text.at(0, 0) == value{std::string("[\"a\",1]")});
}

TEST_CASE("JSON inferSchema infers array<string> for arrays of strings", "[list][json]") {
  const std::string sample =
      "{\"id\":1,\"tags\":[\"a\",\"b\"],\"nums\":[1,2],\"empty\":[],\"mixed\":[\"a\"]}\n"
      "{\"id\":2,\"tags\":[],\"nums\":[3],\"empty\":null,\"mixed\":\"text\"}\n";
  auto s = infer_schema("json", {}, {sample});
  CHECK(s->to_string() == "id: int64, tags: array<string>, nums: string, empty: array<string>, mixed: string");
}
