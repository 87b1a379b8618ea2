// The checkpoint store on real files: what it writes, it recovers; a damaged file makes it fall back to an
// earlier consistent epoch or fail with a message saying what to do; retention bounds the files; a full disk
// or a read-only file system is an error that leaves the last good epoch recoverable.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <thread>

#include "collecting_context.hpp"
#include "flow/connectors/durable_file.hpp"
#include "flow/keyed_operator.hpp"
#include "flow/runtime/checkpoint_store.hpp"
#include "checkpoint_log.hpp"
#include "test_support.hpp"

using namespace flow;
using runtime::checkpoint_options;
using runtime::checkpoint_store;
using runtime::logged_offsets;
using flow::test::error_of;
using flow::test::fill_up;
using flow::test::small_tmpfs;
using flow::test::temp_dir;
namespace fs = std::filesystem;

namespace {

schema_ptr input_schema() { return make_schema({{"k", type_id::int64, true}, {"v", type_id::int64, true}}); }

// sum(v) per k; a key whose sum returns to 0 is removed (so that changes hold deletions too).
class sum_by_key final : public keyed_operator<std::int64_t> {
 public:
  sum_by_key()
      : keyed_operator({.name = "sum_by_key", .input = input_schema(), .keys = {"k"},
                        .output = {{"sum", type_id::int64}}, .state = {{"sum", type_id::int64}}}) {}
  void process(const batch& rows, const row_keys& keys, keyed_state<std::int64_t>& state,
               operator_context&) const override {
    for (std::size_t i = 0; i < rows.num_rows(); ++i) {
      if ((state.get(keys[i]) += rows.col(1).ints()[i]) == 0) state.remove(keys[i]);
    }
  }
  void save(const std::int64_t& sum, row_writer& out) const override { out.add(sum); }
  std::int64_t load(const batch& saved, std::size_t row) const override { return saved.col(0).ints()[row]; }
};

using sums = std::map<std::int64_t, std::int64_t>;

// The rows of an epoch: keys 0..29 (k % 2 picks the slot), values -2..2, so sums come and go.
std::vector<std::pair<std::int64_t, std::int64_t>> epoch_rows(std::int64_t epoch) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t i = 0; i < 12; ++i) out.emplace_back((epoch * 7 + i * 13) % 30, (epoch + i) % 5 - 2);
  return out;
}

// An offset as a source would give it: JSON text, with characters that need escaping.
std::string offset_text(std::int64_t epoch, std::size_t source) {
  return "{\"file\":\"dir\\\\a \\\"b\\\"\\n\",\"source\":" + std::to_string(source) + ",\"o\":" +
         std::to_string(epoch * 10) + "}";
}

logged_offsets offsets_of(std::int64_t epoch) {
  return {epoch, {offset_text(epoch, 0), offset_text(epoch, 1)}, {offset_text(epoch + 1, 0), offset_text(epoch + 1, 1)}};
}

// A query with one sum_by_key vertex of two instances, run epoch by epoch against a checkpoint store, with the
// expected sums computed independently (a std::map per epoch).
struct running_query {
  static constexpr std::size_t slots = 2;
  operator_ptr op = std::make_shared<sum_by_key>();
  std::vector<std::unique_ptr<operator_state>> live;
  std::vector<sums> expected;  // expected[e]: every slot's sums after epoch e, merged
  std::vector<std::vector<batch>> deltas;  // deltas[e]: every slot's take_changes() of epoch e

  running_query() {
    for (std::size_t s = 0; s < slots; ++s) live.push_back(op->make_state());
  }

  void run(checkpoint_store& store, std::int64_t epoch) {
    store.write_offsets(offsets_of(epoch));
    commit(store, epoch);
  }
  // Runs an epoch whose offsets are logged and commits it; without snapshot_available the caller's state is
  // past the epoch already (the store must not snapshot it then).
  void commit(checkpoint_store& store, std::int64_t epoch, bool snapshot_available = true) {
    commit(store, epoch, snapshot_available ? std::function<snapshot_source>{} : [](std::size_t) {
      return std::optional<runtime::due_snapshot>();
    });
  }
  // The same, through a commit job that takes the due snapshots from snapshot (with none: written in the
  // commit, as write_commit does).
  using snapshot_source = std::optional<runtime::due_snapshot>(std::size_t slot);
  void commit(checkpoint_store& store, std::int64_t epoch, const std::function<snapshot_source>& snapshot) {
    sums after = expected.empty() ? sums{} : expected.back();
    std::vector<std::vector<std::vector<value>>> rows(slots);
    for (auto [k, v] : epoch_rows(epoch)) {
      rows[static_cast<std::size_t>(k) % slots].push_back({k, v});
      if ((after[k] += v) == 0) after.erase(k);
    }
    std::vector<batch> changes;
    for (std::size_t s = 0; s < slots; ++s) {
      test::collecting_context ctx(epoch, s, slots);
      op->process(make_batch(input_schema(), rows[s]), 0, live[s].get(), ctx);
      changes.push_back(live[s]->take_changes());
    }
    if (!snapshot)
      store.write_commit(epoch, changes, [&](std::size_t slot) { return live[slot]->snapshot(); });
    else
      runtime::run_write_job("checkpoint", store.commit_job(epoch, changes, snapshot), store.appender());
    expected.push_back(std::move(after));
    deltas.push_back(std::move(changes));
  }
  void run(checkpoint_store& store, std::int64_t from, std::int64_t to) {
    for (std::int64_t e = from; e < to; ++e) run(store, e);
  }
};

// Fresh states for a recovery, as the runtime makes them.
struct fresh_states {
  std::vector<std::unique_ptr<operator_state>> owned;
  explicit fresh_states(const running_query& q) {
    for (std::size_t s = 0; s < running_query::slots; ++s) owned.push_back(q.op->make_state());
  }
  std::vector<operator_state*> pointers() const {
    std::vector<operator_state*> out;
    for (const auto& s : owned) out.push_back(s.get());
    return out;
  }
  // Every slot's sums, read from snapshot() rows (k, __deleted, sum).
  sums contents() const {
    sums out;
    for (const auto& s : owned) {
      const batch rows = s->snapshot();
      for (std::size_t i = 0; i < rows.num_rows(); ++i) {
        REQUIRE_FALSE(rows.col(1).bools()[i]);
        out[rows.col(0).ints()[i]] = rows.col(2).ints()[i];
      }
    }
    return out;
  }
};

std::size_t files_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}));
}

enum class damage { truncated, flipped_byte, emptied, deleted, not_a_batch };

void apply_damage(const fs::path& file, damage kind) {
  REQUIRE(fs::exists(file));
  switch (kind) {
    case damage::truncated: fs::resize_file(file, fs::file_size(file) - 3); break;
    case damage::flipped_byte: {
      std::string content = test::read_file(file);
      content[content.size() - 2] = static_cast<char>(content[content.size() - 2] ^ 0x20);
      test::write_file(file, content);
      break;
    }
    case damage::emptied: test::write_file(file, ""); break;
    case damage::deleted: fs::remove(file); break;
    case damage::not_a_batch: test::write_file(file, connectors::seal("sealed, but not an encoded batch")); break;
  }
}

// Damage to one record of the checkpoint's log.
enum class log_damage { truncated, flipped_byte, zeroed, deleted, not_a_batch };

void apply_damage(const fs::path& checkpoint, const std::string& record, log_damage kind) {
  const auto place = test::find_record(checkpoint, record);
  REQUIRE(place);
  const std::string bytes = test::read_file(place->segment).substr(place->at, place->end - place->at);
  switch (kind) {
    case log_damage::truncated: test::rewrite_record(*place, bytes.substr(0, bytes.size() - 3)); break;
    case log_damage::flipped_byte: {
      std::string flipped = bytes;
      flipped[flipped.size() - 2] = static_cast<char>(flipped[flipped.size() - 2] ^ 0x20);
      test::rewrite_record(*place, flipped);
      break;
    }
    // What a torn write leaves on a file system without a journal: the length, without the bytes.
    case log_damage::zeroed: test::rewrite_record(*place, std::string(bytes.size(), '\0')); break;
    case log_damage::deleted: test::rewrite_record(*place, ""); break;
    case log_damage::not_a_batch:
      test::rewrite_record(*place, connectors::seal(record + "\nsealed, but not an encoded batch"));
      break;
  }
}

// What recovery says about a record damaged so, when it is not the log's last.
std::string damage_name(log_damage kind) {
  switch (kind) {
    case log_damage::truncated:
    case log_damage::flipped_byte: return "damaged (checksum mismatch)";
    case log_damage::zeroed:
    case log_damage::deleted: return "missing";
    case log_damage::not_a_batch: return "not a state batch";
  }
  return {};
}

std::string damage_name(damage kind) {
  switch (kind) {
    case damage::truncated: return "truncated";
    case damage::flipped_byte: return "checksum mismatch";
    case damage::emptied: return "empty file";
    case damage::deleted: return "missing";
    case damage::not_a_batch: return "not a state batch";
  }
  return {};
}

std::string joined(const std::vector<std::string>& notes) {
  std::string out;
  for (const auto& n : notes) out += n + "\n";
  return out;
}

}  // namespace

TEST_CASE("checkpoint store: offsets, commits and state round trip through a restart", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 3});
    CHECK_FALSE(store.read_metadata());
    store.write_metadata({.version = checkpoint_store::format_version, .query_id = "q-\"1\"", .graph = "{\"vertices\": [1, 2], \"name\": \"x\"}"});
    q.run(store, 0, 10);
    CHECK(store.last_commit().epoch == 9);
    CHECK(store.last_commit().delta_bytes.size() == 2);
    CHECK(store.last_commit().total_bytes > 0);
    auto planned_at = offsets_of(10);
    planned_at.processing_time = 1606780800123;
    store.write_offsets(planned_at);
    store.write_offsets(offsets_of(11));  // without a processing time, as logs written before it was logged
  }
  CHECK(fs::exists(dir / "ckpt" / "state" / "1" / "8.snapshot"));  // every 3 epochs: 2, 5, 8
  CHECK_FALSE(fs::exists(dir / "ckpt" / "state" / "1" / "9.snapshot"));

  {
  checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 3});
  auto metadata = store.read_metadata();
  REQUIRE(metadata);
  CHECK(metadata->version == checkpoint_store::format_version);
  CHECK(metadata->query_id == "q-\"1\"");
  CHECK(metadata->graph == "{\"vertices\":[1,2],\"name\":\"x\"}");

  fresh_states states(q);
  auto recovered = store.recover(states.pointers());
  CHECK(recovered.notes.empty());
  CHECK(recovered.last_committed == 9);
  CHECK(recovered.committed_end == offsets_of(9).end);
  REQUIRE(recovered.uncommitted.size() == 2);
  CHECK(recovered.uncommitted[0].epoch == 10);
  CHECK(recovered.uncommitted[0].start == offsets_of(10).start);
  CHECK(recovered.uncommitted[1].end == offsets_of(11).end);
  CHECK(recovered.uncommitted[0].processing_time == 1606780800123);
  CHECK_FALSE(recovered.uncommitted[1].processing_time);
  CHECK(states.contents() == q.expected[9]);
  REQUIRE(q.expected[9].size() > 5);

  // The run continues on the recovered store; a second restart sees the later epochs.
  q.run(store, 10, 14);
  }  // the store (and its lock) goes, as with the process
  fresh_states again(q);
  auto second = checkpoint_store(location, {.min_batches_to_retain = 100, .snapshot_interval = 3})
                    .recover(again.pointers());
  CHECK(second.last_committed == 13);
  CHECK(second.uncommitted.empty());
  CHECK(again.contents() == q.expected[13]);
}

TEST_CASE("checkpoint store: the sources' plan records ride in the offsets records and come back, oldest first",
          "[checkpoint]") {
  temp_dir dir;
  running_query q;
  {
    checkpoint_store store((dir / "ckpt").string());
    auto epoch = [&](std::int64_t e, std::vector<std::string> plans) {
      auto offsets = offsets_of(e);
      offsets.plans = std::move(plans);
      return offsets;
    };
    store.write_offsets(epoch(0, {"{\"files\":\n\"a\"}", ""}));  // any text, newlines and quotes included
    q.commit(store, 0);
    store.write_offsets(epoch(1, {}));  // no source with a plan record: none written
    q.commit(store, 1);
    store.write_offsets(epoch(2, {"b", "c"}));  // logged, not committed: re-run, its plans restored too
  }
  const auto log = checkpoint_store::read_log((dir / "ckpt").string());
  CHECK_THAT(log.at("offsets/0"), Catch::Contains("\"plans\":["));
  CHECK_THAT(log.at("offsets/1"), !Catch::Contains("plans"));
  fresh_states states(q);
  auto recovered = checkpoint_store((dir / "ckpt").string()).recover(states.pointers());
  CHECK(recovered.last_committed == 1);
  REQUIRE(recovered.uncommitted.size() == 1);
  CHECK(recovered.uncommitted[0].plans == std::vector<std::string>{"b", "c"});
  CHECK(recovered.source_plans ==
        std::vector<std::vector<std::string>>{{"{\"files\":\n\"a\"}", "b"}, {"c"}});
}

TEST_CASE("checkpoint store: state deltas are LZ4 blocks, and those format version 2 stored plain are still read",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location);
    q.run(store, 0, 3);
  }
  const auto log = checkpoint_store::read_log(location);
  const std::string& delta = log.at("state/0/2.delta");
  CHECK(delta.starts_with("FLZ4"));
  CHECK(delta.size() < encode(q.deltas[2][0]).size());

  // As version 2 wrote them: flow::encode's bytes, in a newer segment (a later record of a name replaces it).
  std::vector<std::string> plain;
  for (std::size_t epoch = 0; epoch < q.deltas.size(); ++epoch) {
    for (std::size_t slot = 0; slot < running_query::slots; ++slot) {
      const auto bytes = encode(q.deltas[epoch][slot]);
      plain.push_back("state/" + std::to_string(slot) + "/" + std::to_string(epoch) + ".delta\n" +
                      std::string(bytes.begin(), bytes.end()));
    }
  }
  connectors::sealed_log("test", location + "/log", "9.log").append(plain);
  CHECK_FALSE(checkpoint_store::read_log(location).at("state/0/2.delta").starts_with("FLZ4"));
  fresh_states states(q);
  auto recovered = checkpoint_store(location).recover(states.pointers());
  CHECK(recovered.notes.empty());
  CHECK(recovered.last_committed == 2);
  CHECK(states.contents() == q.expected[2]);
}

TEST_CASE("checkpoint store: a fresh checkpoint recovers nothing, logged epochs are re-run", "[checkpoint]") {
  temp_dir dir;
  running_query q;
  checkpoint_store((dir / "ckpt").string()).write_offsets(offsets_of(0));
  fresh_states states(q);
  auto recovered = checkpoint_store((dir / "ckpt").string()).recover(states.pointers());
  CHECK(recovered.last_committed == -1);
  CHECK(recovered.committed_end.empty());
  REQUIRE(recovered.uncommitted.size() == 1);
  CHECK(recovered.uncommitted[0].start == offsets_of(0).start);
  CHECK(states.contents().empty());
}

TEST_CASE("checkpoint store: a damaged record or file of the last epoch falls back to the previous one",
          "[checkpoint]") {
  const log_damage kind = GENERATE(log_damage::truncated, log_damage::flipped_byte, log_damage::zeroed,
                                   log_damage::deleted, log_damage::not_a_batch);
  const damage file_kind = static_cast<damage>(static_cast<int>(kind));  // the same kinds, for a file
  CAPTURE(damage_name(kind));
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  const checkpoint_options options{.min_batches_to_retain = 100, .snapshot_interval = 3};
  running_query q;
  {
    checkpoint_store store(location, options);
    q.run(store, 0, 10);
    store.write_offsets(offsets_of(10));  // the log's last record: the records of epoch 9 come before it
  }
  const fs::path ckpt = dir / "ckpt";
  fresh_states states(q);
  auto recover = [&] { return checkpoint_store(location, options).recover(states.pointers()); };

  SECTION("a commit: epoch 9 is re-run") {
    if (kind == log_damage::not_a_batch) return;
    apply_damage(ckpt, "commits/9", kind);
    auto recovered = recover();
    CHECK(recovered.last_committed == 8);
    CHECK(states.contents() == q.expected[8]);
    REQUIRE(recovered.uncommitted.size() == 2);
    CHECK(recovered.uncommitted[0].end == offsets_of(9).end);
    if (damage_name(kind) != "missing") {
      CHECK_THAT(joined(recovered.notes), Catch::Contains("commits/9 is " + damage_name(kind)));
    }
    CHECK_FALSE(test::logged(ckpt, "state/0/9.delta"));  // what lies beyond is removed
  }
  SECTION("a delta: epoch 9 is re-run") {
    apply_damage(ckpt, "state/1/9.delta", kind);
    auto recovered = recover();
    CHECK(recovered.last_committed == 8);
    CHECK(states.contents() == q.expected[8]);
    REQUIRE(recovered.uncommitted.size() == 2);
    CHECK(recovered.uncommitted[0].epoch == 9);
    CHECK_THAT(joined(recovered.notes), Catch::Contains("state/1/9.delta is") && Catch::Contains(damage_name(kind)));
    CHECK_FALSE(test::logged(ckpt, "commits/9"));
    // A second recovery (say, after another crash) does not take the removed records back.
    fresh_states again(q);
    CHECK(checkpoint_store(location, options).recover(again.pointers()).last_committed == 8);
  }
  SECTION("a snapshot: the state is rebuilt from the older snapshot and the deltas since") {
    apply_damage(ckpt / "state" / "0" / "8.snapshot", file_kind);
    auto recovered = recover();
    CHECK(recovered.last_committed == 9);
    CHECK(recovered.uncommitted.size() == 1);
    CHECK(states.contents() == q.expected[9]);
    if (file_kind != damage::deleted) {
      CHECK_THAT(joined(recovered.notes),
                 Catch::Contains("state/0/8.snapshot is") && Catch::Contains(damage_name(file_kind)));
      CHECK_FALSE(fs::exists(ckpt / "state" / "0" / "8.snapshot"));  // not taken as a base by retention later
    }
  }
  SECTION("the offsets of the last epoch, which must then be re-run: an error naming the record") {
    if (kind == log_damage::not_a_batch) return;
    apply_damage(ckpt, "offsets/9", kind);
    const std::string message = error_of([&] { recover(); });
    CHECK_THAT(message, Catch::StartsWith("checkpoint '" + location + "': offsets/9 is"));
    CHECK_THAT(message, Catch::Contains(damage_name(kind)));
    CHECK_THAT(message, Catch::Contains("epoch 9 must be re-run with those offsets (recovering from epoch 8 because"));
    CHECK_THAT(message, Catch::EndsWith("delete the checkpoint directory to start over, or restore it from a backup"));
  }
}

TEST_CASE("checkpoint store: a torn last record of the log (a crash during an append) was never acknowledged: it "
          "is left out, and the next run appends to a segment of its own",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location);
    q.run(store, 0, 4);
  }
  const auto commit_3 = test::find_record(dir / "ckpt", "commits/3");
  REQUIRE(commit_3);
  REQUIRE(commit_3->last);
  const std::string torn = test::read_file(commit_3->segment).substr(commit_3->at, (commit_3->end - commit_3->at) / 2);
  test::rewrite_record(*commit_3, torn);
  {
    checkpoint_store store(location);
    fresh_states states(q);
    auto recovered = store.recover(states.pointers());
    CHECK(recovered.last_committed == 2);
    CHECK(recovered.notes.empty());
    REQUIRE(recovered.uncommitted.size() == 1);
    CHECK(recovered.uncommitted[0].epoch == 3);
    CHECK(states.contents() == q.expected[2]);
    store.write_offsets(offsets_of(4));
  }
  CHECK(fs::exists(dir / "ckpt" / "log" / "1.log"));
  CHECK(test::read_file(dir / "ckpt" / "log" / "0.log").ends_with(torn));  // left as it was
  fresh_states states(q);
  auto recovered = checkpoint_store(location).recover(states.pointers());
  CHECK(recovered.last_committed == 2);
  REQUIRE(recovered.uncommitted.size() == 2);
  CHECK(recovered.uncommitted[1].end == offsets_of(4).end);
}

TEST_CASE("checkpoint store: damaged logged-but-uncommitted offsets, or a gap before logged ones, are refused",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location);
    q.run(store, 0, 3);
    store.write_offsets(offsets_of(3));
    store.write_offsets(offsets_of(4));
    store.write_offsets(offsets_of(5));
  }
  // Epoch 4 may have reached a sink: planning it anew could write other data under its number.
  const auto offsets_4 = test::find_record(dir / "ckpt", "offsets/4");
  REQUIRE(offsets_4);
  apply_damage(dir / "ckpt", "offsets/4", log_damage::truncated);
  fresh_states states(q);
  CHECK_THAT(error_of([&] { checkpoint_store(location).recover(states.pointers()); }),
             Catch::Contains("offsets/4 is damaged (checksum mismatch") &&
                 Catch::Contains("may already have reached a sink") && Catch::Contains("restore the file from a backup"));
  test::rewrite_record({offsets_4->segment, offsets_4->at, offsets_4->end - 3}, "");
  fresh_states again(q);
  CHECK_THAT(error_of([&] { checkpoint_store(location).recover(again.pointers()); }),
             Catch::Contains("the offset log has a gap (offsets/4 is missing, offsets/5 exists)"));
}

TEST_CASE("checkpoint store: a damaged record whose name cannot be read, after the last intact offsets, is refused: "
          "it may be the offsets of a logged-but-uncommitted epoch",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location);
    q.run(store, 0, 2);
    // Pipelined: epoch 3 is logged (and may reach a sink) before epoch 2 commits.
    store.write_offsets(offsets_of(2));
    store.write_offsets(offsets_of(3));
    q.commit(store, 2);
  }
  const auto offsets_3 = test::find_record(dir / "ckpt", "offsets/3");
  REQUIRE(offsets_3);
  REQUIRE_FALSE(offsets_3->last);
  const std::string bytes = test::read_file(offsets_3->segment).substr(offsets_3->at, offsets_3->end - offsets_3->at);
  const bool zeroed = GENERATE(false, true);
  CAPTURE(zeroed);
  std::string damaged = bytes;
  if (zeroed) {
    damaged.assign(bytes.size(), '\0');  // a torn write on a file system without a journal
  } else {
    const std::size_t name_at = bytes.find('\n') + 1;
    damaged[name_at] = static_cast<char>(damaged[name_at] ^ 0x20);  // "Offsets/3": no name recovery knows
  }
  test::rewrite_record(*offsets_3, damaged);
  fresh_states states(q);
  const std::string message = error_of([&] { checkpoint_store(location).recover(states.pointers()); });
  CHECK_THAT(message, Catch::StartsWith("checkpoint '" + location + "': the record at byte " +
                                        std::to_string(offsets_3->at) + " of log/0.log is damaged ("));
  CHECK_THAT(message, Catch::Contains("its name cannot be read") &&
                          Catch::Contains("after the last intact offsets (offsets/2)") &&
                          Catch::Contains("may be the offsets of epoch 3") &&
                          Catch::Contains("may already have reached a sink"));
  CHECK_THAT(message, Catch::EndsWith("restore log/0.log from a backup, or delete the checkpoint directory to start "
                                      "over"));
}

TEST_CASE("checkpoint store: a damaged record whose name cannot be read, with intact offsets after it, falls back as "
          "a missing commit or delta",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location);
    q.run(store, 0, 3);
    store.write_offsets(offsets_of(3));
  }
  const auto delta = test::find_record(dir / "ckpt", "state/1/2.delta");
  REQUIRE(delta);
  std::string damaged = test::read_file(delta->segment).substr(delta->at, delta->end - delta->at);
  const std::size_t name_at = damaged.find('\n') + 1;
  damaged[name_at] = static_cast<char>(damaged[name_at] ^ 0x20);
  test::rewrite_record(*delta, damaged);
  fresh_states states(q);
  auto recovered = checkpoint_store(location).recover(states.pointers());
  CHECK(recovered.last_committed == 1);
  CHECK(states.contents() == q.expected[1]);
  REQUIRE(recovered.uncommitted.size() == 2);
  CHECK(recovered.uncommitted[1].end == offsets_of(3).end);
  CHECK_THAT(joined(recovered.notes), Catch::Contains("state/1/2.delta is missing"));
}

TEST_CASE("checkpoint store: a damaged removal record, its name readable, is not taken for an unreadable one",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location);
    q.run(store, 0, 3);
  }
  apply_damage(dir / "ckpt", "commits/2", log_damage::flipped_byte);  // the last record: a torn append
  {
    fresh_states states(q);
    REQUIRE(checkpoint_store(location).recover(states.pointers()).last_committed == 1);  // removes epoch 2's deltas
  }
  const auto removal = test::find_record(dir / "ckpt", "-state/0/2.delta");
  REQUIRE(removal);
  REQUIRE_FALSE(removal->last);
  std::string damaged = test::read_file(removal->segment).substr(removal->at, removal->end - removal->at);
  damaged[damaged.find(' ') + 1] = 'x';  // the seal's checksum
  test::rewrite_record(*removal, damaged);
  fresh_states states(q);
  auto recovered = checkpoint_store(location).recover(states.pointers());
  CHECK(recovered.last_committed == 1);
  REQUIRE(recovered.uncommitted.size() == 1);
  CHECK(recovered.uncommitted[0].epoch == 2);
}

TEST_CASE("checkpoint store: with no consistent epoch left, the start or a clear error", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;

  SECTION("every epoch is still logged: recovery starts over and re-runs them with their offsets") {
    {
      checkpoint_store store(location);
      q.run(store, 0, 3);
    }
    apply_damage(dir / "ckpt", "state/0/0.delta", log_damage::flipped_byte);
    fresh_states states(q);
    auto recovered = checkpoint_store(location).recover(states.pointers());
    CHECK(recovered.last_committed == -1);
    REQUIRE(recovered.uncommitted.size() == 3);
    CHECK(recovered.uncommitted[2].end == offsets_of(2).end);
    CHECK(states.contents().empty());
    CHECK_THAT(joined(recovered.notes), Catch::Contains("state/0/0.delta is damaged (checksum mismatch)"));
  }
  SECTION("retention removed the older epochs: an error that says what to do") {
    // Snapshots every 2 epochs exactly: by size, fewer snapshots would keep older epochs.
    const checkpoint_options options{.min_batches_to_retain = 3, .snapshot_interval = 2, .snapshot_by_size = false};
    {
      checkpoint_store store(location, options);
      q.run(store, 0, 10);
      store.write_offsets(offsets_of(10));
    }
    for (const char* epoch : {"7", "8", "9"}) apply_damage(dir / "ckpt", std::string("commits/") + epoch, log_damage::flipped_byte);
    fresh_states states(q);
    CHECK(error_of([&] { checkpoint_store(location, options).recover(states.pointers()); }) ==
          "checkpoint '" + location +
              "': commits/9 is damaged (checksum mismatch); no earlier consistent epoch is kept "
              "(minBatchesToRetain=3): the query cannot resume with exactly-once results; delete the checkpoint "
              "directory to start over, or restore it from a backup");
  }
}

TEST_CASE("checkpoint store: the state of more operator instances than the query has is refused", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location);
    q.run(store, 0, 2);
  }
  auto state = q.op->make_state();
  CHECK(error_of([&] { checkpoint_store(location).recover({state.get()}); }) ==
        "checkpoint '" + location +
            "' holds the state of 2 stateful operator instances, the query has 1: the checkpoint belongs to another "
            "query; use another checkpoint location for this one");
}

TEST_CASE("checkpoint store: metadata of another format version or damaged is a clear error", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  checkpoint_store store(location);
  // Version 1: a file per log record (offsets/<epoch>, commits/<epoch>, state/<slot>/<epoch>.delta).
  store.write_metadata({.version = 1, .query_id = "q", .graph = "{}"});
  CHECK(error_of([&] { store.read_metadata(); }) ==
        "checkpoint '" + location +
            "' was written by checkpoint format version 1; this build of libflow reads versions 2 to 3: run the query "
            "with a libflow build that reads version 1, or delete the checkpoint directory to start the query over");

  store.write_metadata({.version = checkpoint_store::format_version, .query_id = "q", .graph = "{}"});
  apply_damage(dir / "ckpt" / "metadata", damage::truncated);
  CHECK_THAT(error_of([&] { store.read_metadata(); }),
             Catch::StartsWith("checkpoint '" + location + "': metadata is damaged (truncated") &&
                 Catch::EndsWith("delete the checkpoint directory to start over, or restore it from a backup"));

  CHECK_THAT(error_of([&] { store.write_metadata({.version = checkpoint_store::format_version, .query_id = "q", .graph = "{oops"}); }),
             Catch::Contains("the query's graph fingerprint is not valid JSON"));
}

TEST_CASE("checkpoint store: retention bounds the files and keeps the retained epochs recoverable", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  const checkpoint_options options{.min_batches_to_retain = 10, .snapshot_interval = 5};
  running_query q;
  {
    checkpoint_store store(location, options);
    q.run(store, 0, 300);
  }
  const fs::path ckpt = dir / "ckpt";
  // A segment per 10 commits (epochs 0-9, 10-19, ...); a segment goes once no retained epoch (290 on) needs
  // it: its offsets and commits are older and its deltas not after the base snapshot (289). 280-289 went
  // with the commit of 299 (its snapshot made 289 the base); 290-299 stays.
  CHECK(files_in(ckpt / "log") == 1);
  const auto entries = checkpoint_store::read_log(location);
  CHECK(entries.contains("commits/290"));
  CHECK_FALSE(entries.contains("commits/289"));
  CHECK(entries.contains("state/1/290.delta"));
  for (const char* slot : {"0", "1"}) {
    // Snapshots every 5 epochs (4, 9, ...): the newest at or before epoch 290 (289), the later ones, and the
    // deltas after 289.
    CHECK(files_in(ckpt / "state" / slot) == 3);
    CHECK(fs::exists(ckpt / "state" / slot / "289.snapshot"));
    CHECK_FALSE(fs::exists(ckpt / "state" / slot / "284.snapshot"));
  }

  // The oldest retained epoch is still a consistent point: damage every later commit.
  for (int epoch = 291; epoch < 300; ++epoch) apply_damage(ckpt, "commits/" + std::to_string(epoch), log_damage::zeroed);
  fresh_states states(q);
  auto recovered = checkpoint_store(location, options).recover(states.pointers());
  CHECK(recovered.last_committed == 290);
  CHECK(recovered.uncommitted.size() == 9);
  CHECK(states.contents() == q.expected[290]);
}

TEST_CASE("checkpoint store: a full disk fails the commit and leaves the last good epoch", "[checkpoint]") {
  temp_dir dir;
  small_tmpfs disk(dir / "disk", "1m");
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs for the full-disk test (" + disk.reason + ")");
    return;
  }
  const std::string location = (dir / "disk" / "ckpt").string();
  running_query q;
  std::string failure = "<no error>";
  {
    checkpoint_store store(location);
    q.run(store, 0, 3);
    fill_up(dir / "disk" / "filler");
    // The log's last page may still take a few records; the first write that needs a new one fails.
    for (std::int64_t epoch = 3; epoch < 1000 && failure == "<no error>"; ++epoch)
      failure = error_of([&] { q.run(store, epoch); });
  }
  CHECK_THAT(failure, Catch::StartsWith("checkpoint: cannot") && Catch::Contains(location) &&
                          Catch::EndsWith("No space left on device"));
  const auto last_good = static_cast<std::int64_t>(q.expected.size()) - 1;
  REQUIRE(last_good >= 2);

  fresh_states states(q);
  auto recovered = checkpoint_store(location).recover(states.pointers());
  CHECK(recovered.last_committed == last_good);
  CHECK(states.contents() == q.expected[last_good]);
  CHECK(recovered.uncommitted.size() <= 1);  // the failed epoch's offsets, when they were written
}

TEST_CASE("checkpoint store: one run at a time", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  {
    checkpoint_store running(location);
    CHECK_THAT(error_of([&] { checkpoint_store second(location); }),
               Catch::Contains("is in use by another running query") && Catch::Contains(location));
  }
  checkpoint_store after(location);  // the lock went with the first store
  CHECK_FALSE(after.read_metadata());
}

TEST_CASE("checkpoint store: logs without metadata are refused, not taken for a fresh checkpoint", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  checkpoint_store(location).write_offsets(offsets_of(0));
  CHECK_THAT(error_of([&] { checkpoint_store(location).read_metadata(); }),
             Catch::Contains("metadata is missing although the checkpoint holds epochs"));
}

TEST_CASE("checkpoint store: a read-only file system is a clear error", "[checkpoint]") {
  temp_dir dir;
  small_tmpfs disk(dir / "disk", "1m");
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs for the read-only test (" + disk.reason + ")");
    return;
  }
  const std::string location = (dir / "disk" / "ckpt").string();
  checkpoint_store(location).write_metadata({.version = checkpoint_store::format_version, .query_id = "q", .graph = "{}"});
  REQUIRE(disk.remount_read_only());

  CHECK_THAT(error_of([&] { checkpoint_store((dir / "disk" / "other").string()); }),
             Catch::StartsWith("checkpoint: cannot create directory") && Catch::EndsWith("Read-only file system"));
  checkpoint_store existing(location);
  CHECK(existing.read_metadata()->query_id == "q");
  CHECK_THAT(error_of([&] { existing.write_metadata({.version = checkpoint_store::format_version, .query_id = "q2", .graph = "{}"}); }),
             Catch::Contains("metadata") && Catch::EndsWith("Read-only file system"));
  CHECK_THAT(error_of([&] { existing.write_offsets(offsets_of(0)); }), Catch::EndsWith("Read-only file system"));
}

TEST_CASE("checkpoint store: a snapshot not available at its epoch is taken at the next commit", "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  {
    checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 3});
    q.run(store, 0, 2);
    store.write_offsets(offsets_of(2));
    q.commit(store, 2, false);  // due at epoch 2 (3 epochs since none), but the state is already past it
    CHECK_FALSE(fs::exists(dir / "ckpt" / "state" / "0" / "2.snapshot"));
    q.run(store, 3);
    CHECK(fs::exists(dir / "ckpt" / "state" / "0" / "3.snapshot"));
    CHECK(fs::exists(dir / "ckpt" / "state" / "1" / "3.snapshot"));
  }
  checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 3});
  fresh_states states(q);
  CHECK(store.recover(states.pointers()).last_committed == 3);
  CHECK(states.contents() == q.expected[3]);
}

TEST_CASE("checkpoint store: a due row snapshot is written off the commit's round: a commit does not wait for it, "
          "and its failure fails the next commit",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  sums expected;
  // Epoch 0 adds keys 0..4999 (v = 1), each later epoch adds e + 1 to keys 0 and 1: small deltas, snapshots
  // of 5000 keys.
  auto commit = [&](checkpoint_store& store, std::int64_t epoch) {
    const std::int64_t keys = epoch == 0 ? 5000 : 2;
    store.write_offsets(offsets_of(epoch));
    std::vector<batch> changes;
    for (std::size_t s = 0; s < running_query::slots; ++s) {
      std::vector<std::vector<value>> rows;
      for (auto k = static_cast<std::int64_t>(s); k < keys; k += running_query::slots) rows.push_back({k, epoch + 1});
      test::collecting_context ctx(epoch, s, running_query::slots);
      q.op->process(make_batch(input_schema(), rows), 0, q.live[s].get(), ctx);
      changes.push_back(q.live[s]->take_changes());
    }
    runtime::run_write_job("checkpoint", store.commit_job(epoch, changes, [&](std::size_t slot) {
                             return std::optional<runtime::state_copy>(q.live[slot]->snapshot());
                           }), store.appender());
    for (std::int64_t k = 0; k < keys; ++k) expected[k] += epoch + 1;  // once the commit did not throw
  };
  auto wait_for = [](const fs::path& file) {
    for (int i = 0; i < 1000 && !fs::exists(file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(fs::exists(file));
  };
  std::string failure;
  std::uintmax_t snapshot_size = 0;
  {
    checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 1});
    commit(store, 0);
    wait_for(dir / "ckpt" / "state" / "0" / "0.snapshot");
    wait_for(dir / "ckpt" / "state" / "1" / "0.snapshot");
    snapshot_size = fs::file_size(dir / "ckpt" / "state" / "0" / "0.snapshot");
  }
  {
    // A new run: its log segment starts empty, small enough for the limit below (epoch 0's deltas are not).
    checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 1});
    fresh_states restored(q);
    REQUIRE(store.recover(restored.pointers()).last_committed == 0);
    // From now on a snapshot cannot be written (EFBIG, as ENOSPC would), the small files can.
    struct rlimit before {};
    ::getrlimit(RLIMIT_FSIZE, &before);
    auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limited = before;
    limited.rlim_cur = snapshot_size / 4;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
    commit(store, 1);  // its snapshot fails on another thread: the commit is durable all the same
    CHECK(test::logged(dir / "ckpt", "commits/1"));
    // Waits for the snapshot's thread (not for a number of commits: under load it can be late).
    CHECK(store.finish_snapshots().has_value());
    failure = error_of([&] { commit(store, 2); });
    ::setrlimit(RLIMIT_FSIZE, &before);
    std::signal(SIGXFSZ, previous_handler);
  }
  CHECK_THAT(failure, Catch::StartsWith("checkpoint: writing a state snapshot failed: checkpoint: cannot write") &&
                          Catch::Contains(".snapshot.tmp") && Catch::Contains("File too large"));
  checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 1});
  fresh_states states(q);
  store.recover(states.pointers());
  CHECK(states.contents() == expected);  // from the snapshot of epoch 0 and the deltas after it
}

TEST_CASE("checkpoint store: the failure of the last row snapshot, which no later commit reports, is what "
          "finish_snapshots returns",
          "[checkpoint]") {
  temp_dir dir;
  running_query q;
  // Epoch 1 changes nothing: by size its snapshot would not be due.
  checkpoint_store store((dir / "ckpt").string(),
                         {.min_batches_to_retain = 100, .snapshot_interval = 1, .snapshot_by_size = false});
  q.run(store, 0);
  CHECK_FALSE(store.finish_snapshots());
  // A directory holds the name of epoch 1's snapshot of slot 0: it cannot be renamed into place.
  fs::create_directories(dir / "ckpt" / "state" / "0" / "1.snapshot" / "taken");
  store.write_offsets(offsets_of(1));
  std::vector<batch> changes;
  for (auto& state : q.live) changes.push_back(state->take_changes());  // none: epoch 1 changed nothing
  runtime::run_write_job("checkpoint", store.commit_job(1, changes, [&](std::size_t slot) {
                           return std::optional<runtime::state_copy>(q.live[slot]->snapshot());
                         }), store.appender());
  CHECK(test::logged(dir / "ckpt", "commits/1"));  // the commit does not wait for its snapshot
  const auto failure = store.finish_snapshots();
  REQUIRE(failure);
  CHECK_THAT(*failure, Catch::StartsWith("checkpoint: writing a state snapshot failed: ") &&
                           Catch::Contains("1.snapshot"));
}

TEST_CASE("checkpoint store: a process killed while its row snapshot is still being copied recovers its last commit "
          "from the deltas, and snapshots again",
          "[checkpoint]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  const checkpoint_options options{.min_batches_to_retain = 100, .snapshot_interval = 3};
  const fs::path copying = dir / "copying", committed = dir / "committed";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Epochs 0 and 1, then epoch 2, whose snapshots are due: their copy never ends (as a process killed while
    // copying or encoding 1 M keys).
    checkpoint_store store(location, options);
    running_query q;
    q.run(store, 0, 2);
    store.write_offsets(offsets_of(2));
    q.commit(store, 2, [&](std::size_t) {
      return std::optional<runtime::due_snapshot>(runtime::due_snapshot([&]() -> batch {
        test::write_file(copying, "");
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      }));
    });
    test::write_file(committed, "");  // the commit was durable while its snapshots were being copied
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  for (int i = 0; i < 3000 && !(fs::exists(copying) && fs::exists(committed)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const bool reached = fs::exists(copying) && fs::exists(committed);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(reached);
  running_query q;  // the same epochs, for the expected sums
  {
    checkpoint_store reference((dir / "reference").string(), options);
    q.run(reference, 0, 4);
  }
  {
    checkpoint_store store(location, options);
    fresh_states states(q);
    CHECK(store.recover(states.pointers()).last_committed == 2);
    CHECK(states.contents() == q.expected[2]);
    CHECK_FALSE(fs::exists(dir / "ckpt" / "state" / "0" / "2.snapshot"));
  }
  // A next run commits epoch 3 and takes the snapshot the killed one owed; a restart starts from it.
  {
    checkpoint_store store(location, options);
    fresh_states states(q);
    REQUIRE(store.recover(states.pointers()).last_committed == 2);
    for (std::size_t s = 0; s < running_query::slots; ++s) states.owned[s]->apply_changes(q.deltas[3][s]);
    store.write_offsets(offsets_of(3));
    store.write_commit(3, q.deltas[3], [&](std::size_t slot) { return states.owned[slot]->snapshot(); });
  }
  CHECK(fs::exists(dir / "ckpt" / "state" / "0" / "3.snapshot"));
  CHECK(fs::exists(dir / "ckpt" / "state" / "1" / "3.snapshot"));
  checkpoint_store store(location, options);
  fresh_states states(q);
  CHECK(store.recover(states.pointers()).last_committed == 3);
  CHECK(states.contents() == q.expected[3]);
}

TEST_CASE("checkpoint store: a snapshot is due once the interval passed and the deltas since weigh as much as it",
          "[checkpoint][snapshot]") {
  using runtime::snapshot_due;
  using runtime::snapshot_progress;
  const checkpoint_options every_10{.snapshot_interval = 10};
  // None yet: the interval alone decides (epochs 0..interval-1 since "none", -1).
  CHECK_FALSE(snapshot_due(snapshot_progress{}, 8, every_10));
  CHECK(snapshot_due(snapshot_progress{}, 9, every_10));
  // Light deltas (2.5 KB an epoch against a 100 KB snapshot): not due until they add up to the snapshot.
  const snapshot_progress light{.last_epoch = 9, .last_bytes = 100'000, .delta_bytes_since = 10 * 2'500};
  CHECK_FALSE(snapshot_due(light, 19, every_10));
  CHECK_FALSE(snapshot_due({.last_epoch = 9, .last_bytes = 100'000, .delta_bytes_since = 99'999}, 49, every_10));
  // Empty deltas (idle epochs) or a state that shrank: due at the latest ten intervals after the last one.
  CHECK_FALSE(snapshot_due({.last_epoch = 9, .last_bytes = 100'000, .delta_bytes_since = 0}, 108, every_10));
  CHECK(snapshot_due({.last_epoch = 9, .last_bytes = 100'000, .delta_bytes_since = 0}, 109, every_10));
  CHECK(snapshot_due({.last_epoch = 9, .last_bytes = 100'000, .delta_bytes_since = 100'000}, 49, every_10));
  // Heavy deltas: the interval still keeps snapshots at least that many epochs apart.
  const snapshot_progress heavy{.last_epoch = 9, .last_bytes = 1'000, .delta_bytes_since = 50'000};
  CHECK_FALSE(snapshot_due(heavy, 18, every_10));
  CHECK(snapshot_due(heavy, 19, every_10));
  // An interval of 1: every epoch while the deltas are as heavy as the state, fewer when they are lighter.
  const checkpoint_options every_epoch{.snapshot_interval = 1};
  CHECK(snapshot_due({.last_epoch = 4, .last_bytes = 300, .delta_bytes_since = 300}, 5, every_epoch));
  CHECK_FALSE(snapshot_due({.last_epoch = 4, .last_bytes = 300, .delta_bytes_since = 299}, 5, every_epoch));
  // Not by size: the interval alone, whatever the deltas weigh.
  const checkpoint_options by_interval{.snapshot_interval = 10, .snapshot_by_size = false};
  CHECK(snapshot_due(light, 19, by_interval));
  CHECK_FALSE(snapshot_due(heavy, 18, by_interval));
}

TEST_CASE("checkpoint store: snapshots by size are fewer than epochs, leave at most one snapshot's worth of "
          "deltas to replay and recover exactly",
          "[checkpoint][snapshot]") {
  temp_dir dir;
  const std::string location = (dir / "ckpt").string();
  running_query q;
  constexpr std::int64_t epochs = 40;
  std::vector<std::int64_t> snapshots(running_query::slots, 0);
  {
    checkpoint_store store(location, {.min_batches_to_retain = 100, .snapshot_interval = 1});
    std::vector<std::size_t> last_snapshot(running_query::slots, 0), deltas_since(running_query::slots, 0);
    std::size_t largest_delta = 0;
    for (std::int64_t e = 0; e < epochs; ++e) {
      q.run(store, e);
      const auto stats = store.last_commit();
      REQUIRE(stats.epoch == e);
      for (std::size_t slot = 0; slot < running_query::slots; ++slot) {
        largest_delta = std::max(largest_delta, stats.delta_bytes[slot]);
        if (stats.snapshot_bytes[slot] > 0) {
          ++snapshots[slot];
          last_snapshot[slot] = stats.snapshot_bytes[slot];
          deltas_since[slot] = 0;
        } else {
          deltas_since[slot] += stats.delta_bytes[slot];
        }
        // What recovery would replay on top of the newest snapshot.
        CHECK(deltas_since[slot] < last_snapshot[slot] + largest_delta);
      }
    }
  }
  for (std::size_t slot = 0; slot < running_query::slots; ++slot) {
    CHECK(snapshots[slot] > 1);
    CHECK(snapshots[slot] < epochs / 2);  // an interval of 1 alone would take one every epoch
  }
  fresh_states states(q);
  CHECK(checkpoint_store(location, {.min_batches_to_retain = 100, .snapshot_interval = 1}).recover(states.pointers()).last_committed ==
        epochs - 1);
  CHECK(states.contents() == q.expected[epochs - 1]);
}
