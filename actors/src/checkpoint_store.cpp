#include "flow/runtime/checkpoint_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <lz4.h>
#include <simdjson.h>

#include "flow/connectors/durable_file.hpp"
#include "flow/connectors/test_hooks.hpp"
#include "flow/formats.hpp"

namespace flow::runtime {

namespace fs = std::filesystem;
namespace dom = simdjson::dom;
using connectors::seal;
using connectors::unseal;

namespace {

constexpr std::string_view owner = "checkpoint";
constexpr const char* hold_offsets_variable = "FLOW_CHECKPOINT_HOLD_OFFSETS";
constexpr std::string_view start_over = "delete the checkpoint directory to start over, or restore it from a backup";

// The epoch a file name stands for ("12", or "12.delta" with suffix ".delta"); nullopt for other names.
std::optional<std::int64_t> epoch_of(std::string_view name, std::string_view suffix = {}) {
  if (!name.ends_with(suffix)) return std::nullopt;
  name.remove_suffix(suffix.size());
  std::int64_t epoch = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), epoch);
  if (ec != std::errc{} || end != name.data() + name.size() || name.empty() || epoch < 0) return std::nullopt;
  return epoch;
}

// The epochs of the files in directory named "<epoch><suffix>", ascending.
std::vector<std::int64_t> epochs_in(const std::string& directory, std::string_view suffix = {}) {
  std::vector<std::int64_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (auto epoch = epoch_of(entry.path().filename().string(), suffix)) out.push_back(*epoch);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void remove_file(const std::string& path) { ::unlink(path.c_str()); }
// A file, or a directory snapshot with what it holds.
void remove_entry(const std::string& path) {
  std::error_code ignored;
  fs::remove_all(path, ignored);
}

constexpr std::string_view rows_snapshot = ".snapshot";
constexpr std::string_view directory_snapshot = ".snapshot.d";
// Inside a directory snapshot, next to the backend's files.
constexpr const char* manifest_name = "flow-manifest";

// The epochs of a slot's snapshots of both kinds, ascending.
std::vector<std::int64_t> snapshot_epochs(const std::string& slot_dir) {
  std::vector<std::int64_t> out = epochs_in(slot_dir, rows_snapshot);
  for (std::int64_t epoch : epochs_in(slot_dir, directory_snapshot)) out.push_back(epoch);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

struct manifest_entry {
  std::string name;
  connectors::file_digest digest;
};

std::string manifest_json(std::int64_t epoch, const std::vector<manifest_entry>& files) {
  std::string out = "{\"epoch\":" + std::to_string(epoch) + ",\"files\":[";
  for (std::size_t i = 0; i < files.size(); ++i) {
    out += i > 0 ? ",{\"name\":" : "{\"name\":";
    append_json_string(out, files[i].name);
    out += ",\"bytes\":" + std::to_string(files[i].digest.bytes) +
           ",\"crc32\":" + std::to_string(files[i].digest.crc32) + "}";
  }
  return out + "]}";
}

// The payload of a sealed file, or nullopt with why ("missing", "truncated: ...", "checksum mismatch").
std::optional<std::string> read_sealed(const std::string& path, std::string& why) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    why = "missing";
    return std::nullopt;
  }
  std::string content;
  try {
    content = connectors::read_file(owner, path);
  } catch (const error& e) {
    why = e.what();
    return std::nullopt;
  }
  auto payload = unseal(content, why);
  if (!payload) why = "damaged (" + why + ")";
  return payload;
}

std::optional<dom::element> parse_json(dom::parser& parser, const std::string& text, std::string& why) {
  dom::element doc;
  if (auto err = parser.parse(text).get(doc)) {
    why = std::string("not valid JSON (") + simdjson::error_message(err) + ")";
    return std::nullopt;
  }
  return doc;
}

void append_string_array(std::string& out, const std::vector<std::string>& texts) {
  out += '[';
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, texts[i]);
  }
  out += ']';
}

std::string offsets_json(const logged_offsets& o) {
  std::string out = "{\"epoch\":" + std::to_string(o.epoch) + ",\"start\":";
  append_string_array(out, o.start);
  out += ",\"end\":";
  append_string_array(out, o.end);
  // Spark's batchWatermarkMs, in microseconds: a replayed epoch runs with the same watermark.
  if (o.watermark != operator_context::no_watermark) out += ",\"watermark\":" + std::to_string(o.watermark);
  // Spark's batchTimestampMs: a replayed epoch's processing-time timeouts see the first run's time.
  if (o.processing_time) out += ",\"processing_time_ms\":" + std::to_string(*o.processing_time);
  if (std::any_of(o.plans.begin(), o.plans.end(), [](const std::string& plan) { return !plan.empty(); })) {
    out += ",\"plans\":";
    append_string_array(out, o.plans);
  }
  out += '}';
  return out;
}

std::optional<std::vector<std::string>> string_array(const dom::object& obj, const char* key) {
  dom::array array;
  if (obj[key].get_array().get(array)) return std::nullopt;
  std::vector<std::string> out;
  for (dom::element item : array) {
    std::string_view text;
    if (item.get_string().get(text)) return std::nullopt;
    out.emplace_back(text);
  }
  return out;
}

// The log's offsets/<epoch> (text: its content, nullopt with why when missing or damaged), or nullopt with why.
std::optional<logged_offsets> read_offsets(const std::optional<std::string>& text, std::int64_t epoch,
                                           std::string& why) {
  if (!text) return std::nullopt;
  dom::parser parser;
  auto doc = parse_json(parser, *text, why);
  if (!doc) return std::nullopt;
  dom::object obj;
  logged_offsets out;
  std::optional<std::vector<std::string>> start, end;
  if (doc->get_object().get(obj) || obj["epoch"].get_int64().get(out.epoch) ||
      !(start = string_array(obj, "start")) || !(end = string_array(obj, "end"))) {
    why = "not an offsets record ({\"epoch\":N,\"start\":[...],\"end\":[...]})";
    return std::nullopt;
  }
  if (out.epoch != epoch) {
    why = "the offsets of epoch " + std::to_string(out.epoch) + ", not " + std::to_string(epoch);
    return std::nullopt;
  }
  out.start = std::move(*start);
  out.end = std::move(*end);
  if (obj["watermark"].get_int64().get(out.watermark)) out.watermark = operator_context::no_watermark;
  if (std::int64_t processing_time = 0; !obj["processing_time_ms"].get_int64().get(processing_time))
    out.processing_time = processing_time;
  if (auto plans = string_array(obj, "plans")) out.plans = std::move(*plans);
  return out;
}

// Whether the log's commits/<epoch> (text, as for read_offsets) is intact; why says what is wrong otherwise.
bool commit_intact(const std::optional<std::string>& text, std::int64_t epoch, std::string& why) {
  if (!text) return false;
  dom::parser parser;
  auto doc = parse_json(parser, *text, why);
  if (!doc) return false;
  std::int64_t recorded = -1;
  if (doc->get_object()["epoch"].get_int64().get(recorded)) {
    why = "not a commit record ({\"epoch\":N})";
    return false;
  }
  if (recorded != epoch) {
    why = "the commit of epoch " + std::to_string(recorded) + ", not " + std::to_string(epoch);
    return false;
  }
  return true;
}

// State deltas and row snapshots: flow::encode's bytes as one LZ4 block (Spark's state store codec),
// "FLZ4" <encoded bytes, 8 bytes little-endian> <block>; a batch LZ4 cannot take (2 GB or more) is stored as
// encoded, as format version 2 stored every one. docs/fault-tolerance.md, "Measurements".
constexpr std::string_view lz4_magic = "FLZ4";
constexpr std::size_t lz4_header = lz4_magic.size() + 8;

std::string encoded_state(const batch& rows) {
  const std::vector<std::uint8_t> bytes = encode(rows);
  if (bytes.size() > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE))
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const int raw = static_cast<int>(bytes.size());
  std::string out(lz4_header + static_cast<std::size_t>(LZ4_compressBound(raw)), '\0');
  out.replace(0, lz4_magic.size(), lz4_magic);
  for (std::size_t i = 0; i < 8; ++i) out[lz4_magic.size() + i] = static_cast<char>((bytes.size() >> (8 * i)) & 0xff);
  const int packed = LZ4_compress_default(reinterpret_cast<const char*>(bytes.data()), out.data() + lz4_header, raw,
                                          static_cast<int>(out.size() - lz4_header));
  if (packed <= 0) throw error(std::string(owner) + ": LZ4 could not compress a state batch of " + std::to_string(raw) + " bytes");
  out.resize(lz4_header + static_cast<std::size_t>(packed));
  return out;
}

// A state file's or delta's batch (bytes, as for read_offsets), or nullopt with why.
std::optional<batch> read_state(const std::optional<std::string>& bytes, std::string& why) {
  if (!bytes) return std::nullopt;
  std::string_view encoded = *bytes;
  std::vector<char> unpacked;
  if (encoded.starts_with(lz4_magic) && encoded.size() >= lz4_header) {
    std::uint64_t raw = 0;
    for (std::size_t i = 0; i < 8; ++i)
      raw |= static_cast<std::uint64_t>(static_cast<unsigned char>(encoded[lz4_magic.size() + i])) << (8 * i);
    const std::size_t packed = encoded.size() - lz4_header;
    // An LZ4 block expands at most 255 times: a larger size is no block of ours.
    if (raw > static_cast<std::uint64_t>(LZ4_MAX_INPUT_SIZE) || packed > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE) ||
        raw > 255 * static_cast<std::uint64_t>(packed) + 16) {
      why = "not a state batch (an LZ4 block of " + std::to_string(packed) + " bytes cannot hold " +
            std::to_string(raw) + ")";
      return std::nullopt;
    }
    unpacked.resize(static_cast<std::size_t>(raw));
    const int got = LZ4_decompress_safe(encoded.data() + lz4_header, unpacked.data(), static_cast<int>(packed),
                                        static_cast<int>(raw));
    if (got != static_cast<int>(raw)) {
      why = "not a state batch (its LZ4 block does not decompress to " + std::to_string(raw) + " bytes)";
      return std::nullopt;
    }
    encoded = std::string_view(unpacked.data(), unpacked.size());
  }
  try {
    return decode_batch(reinterpret_cast<const std::uint8_t*>(encoded.data()), encoded.size());
  } catch (const error& e) {
    why = std::string("not a state batch (") + e.what() + ")";
    return std::nullopt;
  }
}

// The manifest of a directory snapshot, or nullopt with why.
std::optional<std::vector<manifest_entry>> read_manifest(const std::string& snapshot_dir, std::string& why) {
  auto text = read_sealed(snapshot_dir + "/" + manifest_name, why);
  if (!text) {
    why = std::string(manifest_name) + " " + why;
    return std::nullopt;
  }
  dom::parser parser;
  auto doc = parse_json(parser, *text, why);
  dom::array files;
  if (!doc || doc->get_object()["files"].get_array().get(files)) {
    why = std::string(manifest_name) + " is not a manifest ({\"epoch\":N,\"files\":[...]})";
    return std::nullopt;
  }
  std::vector<manifest_entry> out;
  for (dom::element file : files) {
    std::string_view name;
    std::uint64_t bytes = 0, crc = 0;
    if (file["name"].get_string().get(name) || file["bytes"].get_uint64().get(bytes) ||
        file["crc32"].get_uint64().get(crc) || name.find('/') != std::string_view::npos) {
      why = std::string(manifest_name) + " lists a file without a plain name, bytes and crc32";
      return std::nullopt;
    }
    out.push_back({std::string(name), {bytes, static_cast<std::uint32_t>(crc)}});
  }
  return out;
}

// Whether every file the manifest lists is there with its size and checksum; why names the first that is not.
bool directory_snapshot_intact(const std::string& snapshot_dir, std::string& why) {
  auto files = read_manifest(snapshot_dir, why);
  if (!files) return false;
  for (const auto& file : *files) {
    const std::string path = snapshot_dir + "/" + file.name;
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) {
      why = "missing its file " + file.name;
      return false;
    }
    if (size != file.digest.bytes) {
      why = "damaged: its file " + file.name + " has " + std::to_string(size) + " bytes, the manifest says " +
            std::to_string(file.digest.bytes);
      return false;
    }
    try {
      if (connectors::digest_file(owner, path).crc32 != file.digest.crc32) {
        why = "damaged: its file " + file.name + " does not match its checksum";
        return false;
      }
    } catch (const error& e) {
      why = e.what();
      return false;
    }
  }
  return true;
}

std::string epoch_name(std::int64_t epoch, std::string_view suffix = {}) {
  return std::to_string(epoch) + std::string(suffix);
}

// ---- the log: DIR/log/<segment>.log, sealed records "<name>\n<content>" ("-<name>\n": name removed)

constexpr std::string_view log_suffix = ".log";
// A segment is closed (the next record starts a new one) after this many bytes, or after as many commits
// as minBatchesToRetain, so that retention can remove whole segments.
constexpr std::uint64_t segment_bytes = 64u << 20;

std::string offsets_name(std::int64_t epoch) { return "offsets/" + epoch_name(epoch); }
std::string commit_name(std::int64_t epoch) { return "commits/" + epoch_name(epoch); }
std::string delta_name(std::size_t slot, std::int64_t epoch) {
  return "state/" + std::to_string(slot) + "/" + epoch_name(epoch, ".delta");
}

std::string log_record(const std::string& name, std::string_view content) {
  std::string out;
  out.reserve(name.size() + 1 + content.size());
  out.append(name).append(1, '\n').append(content);
  return out;
}

// What a log name stands for: kind 'o' (offsets/E), 'c' (commits/E), 'd' (state/S/E.delta), 0: none of them.
struct log_name {
  char kind = 0;
  std::size_t slot = 0;
  std::int64_t epoch = -1;
};
log_name parse_log_name(std::string_view name) {
  if (name.starts_with("offsets/")) {
    if (auto e = epoch_of(name.substr(8))) return {'o', 0, *e};
  } else if (name.starts_with("commits/")) {
    if (auto e = epoch_of(name.substr(8))) return {'c', 0, *e};
  } else if (name.starts_with("state/")) {
    name.remove_prefix(6);
    const std::size_t slash = name.find('/');
    auto slot = epoch_of(name.substr(0, slash == std::string_view::npos ? 0 : slash));
    if (slot && slash != std::string_view::npos)
      if (auto e = epoch_of(name.substr(slash + 1), ".delta")) return {'d', static_cast<std::size_t>(*slot), *e};
  }
  return {};
}

// The log as recovery reads it: the newest record of every name not removed since; content, or damage set.
struct log_entry {
  std::string content;
  std::string damage;  // empty: intact
};
using log_index = std::map<std::string, log_entry, std::less<>>;

// The entry name, or nullopt with why ("missing", "damaged (checksum mismatch)").
std::optional<std::string> lookup(const log_index& index, const std::string& name, std::string& why) {
  auto it = index.find(name);
  if (it == index.end()) {
    why = "missing";
    return std::nullopt;
  }
  if (!it->second.damage.empty()) {
    why = "damaged (" + it->second.damage + ")";
    return std::nullopt;
  }
  return it->second.content;
}

// The epochs of the entries named prefix<epoch>suffix, ascending.
std::vector<std::int64_t> logged_epochs(const log_index& index, std::string_view prefix, std::string_view suffix = {}) {
  std::vector<std::int64_t> out;
  for (auto it = index.lower_bound(prefix); it != index.end() && std::string_view(it->first).starts_with(prefix); ++it)
    if (auto epoch = epoch_of(std::string_view(it->first).substr(prefix.size()), suffix)) out.push_back(*epoch);
  std::sort(out.begin(), out.end());
  return out;
}

void note_record(checkpoint_log_segment& segment, std::string_view name) {
  const log_name parsed = parse_log_name(name);
  if (parsed.kind == 'd') {
    if (segment.newest_delta.size() <= parsed.slot) segment.newest_delta.resize(parsed.slot + 1, -1);
    segment.newest_delta[parsed.slot] = std::max(segment.newest_delta[parsed.slot], parsed.epoch);
  } else if (parsed.kind != 0) {
    segment.newest_epoch = std::max(segment.newest_epoch, parsed.epoch);
    if (parsed.kind == 'c') ++segment.commits;
  }
}

// A damaged record of the log whose name cannot be read: where it is and why.
struct unnamed_damage {
  std::string segment;  // "log/<n>.log"
  std::size_t at = 0;   // its first byte in the segment
  std::string why;
};

// Reads every segment of DIR/log, oldest first, into an index (and, when segments is given, their
// summaries). A damaged record followed by an intact one in its segment is damage: its entry is marked
// damaged when its name can still be read. A damaged last record is a torn append (never acknowledged:
// each run writes a segment of its own, so this holds for every segment) and is left out. When given,
// after_last_offsets is set to the first damaged record without a readable name that no intact offsets
// record follows: offsets are logged in epoch order (a replay does not log them again), so only such a
// record can be the offsets of the epoch after the newest logged one.
log_index read_log_index(const std::string& directory, std::deque<checkpoint_log_segment>* segments,
                         std::optional<unnamed_damage>* after_last_offsets = nullptr) {
  log_index index;
  std::optional<unnamed_damage> unnamed;
  const std::string dir = directory + "/log";
  for (std::int64_t number : epochs_in(dir, log_suffix)) {
    const std::string path = dir + "/" + epoch_name(number, log_suffix);
    const auto records = connectors::scan_sealed_log(connectors::read_file(owner, path));
    checkpoint_log_segment segment;
    segment.number = number;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto& record = records[i];
      std::string_view text = record.payload;
      if (!record.intact && i + 1 == records.size()) break;
      auto name_unreadable = [&] {
        if (!unnamed) unnamed = unnamed_damage{"log/" + epoch_name(number, log_suffix), record.at, record.why};
      };
      if (!record.intact) {
        const std::size_t header_end = text.find('\n');  // the seal's header, then the name
        if (header_end == std::string_view::npos) {
          name_unreadable();
          continue;
        }
        text.remove_prefix(header_end + 1);
      }
      const std::size_t name_end = text.find('\n');
      if (name_end == std::string_view::npos) {
        if (!record.intact) name_unreadable();
        continue;
      }
      std::string name(text.substr(0, name_end));
      const char kind = parse_log_name(name).kind;
      if (record.intact && kind == 'o') unnamed.reset();
      if (!record.intact) {
        if (name.starts_with('-') && parse_log_name(std::string_view(name).substr(1)).kind != 0) continue;  // a removal
        if (kind == 0) {  // its name is damaged too: as if missing
          name_unreadable();
          continue;
        }
        note_record(segment, name);
        index[name] = {{}, record.why};
      } else if (name.starts_with('-')) {
        index.erase(name.substr(1));
      } else {
        note_record(segment, name);
        index[name] = {std::string(text.substr(name_end + 1)), {}};
      }
    }
    if (segments) segments->push_back(std::move(segment));
  }
  if (after_last_offsets) *after_last_offsets = std::move(unnamed);
  return index;
}

// A source writes its own log (the file source's batches.log) without syncing it: the plan records in
// the offsets records keep each entry durable until the segment holding them goes (docs/fault-tolerance.md).
void sync_source_files(const std::string& directory) {
  std::error_code ec;
  for (const auto& source : fs::directory_iterator(directory + "/sources", ec)) {
    std::error_code inner;
    for (const auto& entry : fs::directory_iterator(source.path(), inner))
      if (entry.is_regular_file(inner)) connectors::sync_existing_file(owner, entry.path().string());
  }
}

// One run at a time: two writing the same logs would corrupt each other's epochs. The lock goes with the
// store (its file descriptor), also when the process dies.
connectors::unique_fd take_lock(const std::string& directory) {
  const std::string path = directory + "/.lock";
  connectors::unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd && (errno == EROFS || errno == EACCES)) fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));  // read it
  if (!fd) throw error(std::string(owner) + ": cannot open '" + path + "': " + std::strerror(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      throw error("checkpoint '" + directory + "' is in use by another running query (in this process or another " +
                  "one): stop that query first, or give this one another checkpointLocation");
    throw error(std::string(owner) + ": cannot lock '" + path + "': " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

checkpoint_store::checkpoint_store(std::string directory, checkpoint_options options)
    : directory_(std::move(directory)), options_(options) {
  if (options_.min_batches_to_retain < 1 || options_.snapshot_interval < 1) {
    throw error("checkpoint '" + directory_ + "': minBatchesToRetain (" +
                std::to_string(options_.min_batches_to_retain) + ") and the snapshot interval (" +
                std::to_string(options_.snapshot_interval) + ") must each be at least 1");
  }
  hold_offsets_epoch_ = connectors::epoch_from_environment(hold_offsets_variable, "checkpoint");
  connectors::create_directories(owner, directory_);
  lock_ = take_lock(directory_);
  for (const char* sub : {"log", "state", "sources"}) {
    connectors::create_directories(owner, directory_ + "/" + sub);
  }
  // Each run appends to a segment of its own: an earlier run's torn last record stays the last of its segment.
  const auto segments = epochs_in(directory_ + "/log", log_suffix);
  next_segment_ = segments.empty() ? 0 : segments.back() + 1;
  auto on_round = [this](const checkpoint_writer::round_report& r) {
    if (!r.failure) return;
    std::lock_guard lock(snapshot_mutex_);
    if (!snapshot_failure_) snapshot_failure_ = "checkpoint: writing a state snapshot failed: " + *r.failure;
  };
  snapshot_writer_ = std::make_unique<checkpoint_writer>(std::string(owner), std::move(on_round));
}

checkpoint_store::~checkpoint_store() { snapshot_writer_->finish(); }

std::optional<std::string> checkpoint_store::finish_snapshots() {
  snapshot_writer_->finish();
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_failure_;
}

std::optional<checkpoint_metadata> checkpoint_store::read_metadata() const {
  const std::string path = directory_ + "/metadata";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    // Logs without metadata cannot be checked against the query: never take them for a fresh checkpoint.
    if (!epochs_in(directory_ + "/log", log_suffix).empty() || fs::is_directory(directory_ + "/offsets", ec))
      throw error("checkpoint '" + directory_ + "': metadata is missing although the checkpoint holds epochs; " +
                  "without it the checkpoint cannot be checked against the query: " + std::string(start_over));
    return std::nullopt;
  }
  std::string why;
  auto text = read_sealed(path, why);
  dom::parser parser;
  std::optional<dom::element> doc;
  if (text) doc = parse_json(parser, *text, why);
  checkpoint_metadata m;
  dom::object obj;
  std::int64_t version = 0;
  std::string_view id;
  dom::element graph;
  if (doc && (doc->get_object().get(obj) || obj["version"].get_int64().get(version))) {
    why = "not a metadata record ({\"version\":N,\"id\":...,\"graph\":...})";
    doc.reset();
  }
  if (doc && (version < oldest_readable_version || version > format_version)) {
    throw error("checkpoint '" + directory_ + "' was written by checkpoint format version " + std::to_string(version) +
                "; this build of libflow reads versions " + std::to_string(oldest_readable_version) + " to " +
                std::to_string(format_version) +
                ": run the query with a libflow build that reads version " + std::to_string(version) +
                ", or delete the checkpoint directory to start the query over");
  }
  if (doc && (obj["id"].get_string().get(id) || obj["graph"].get(graph))) {
    why = "not a metadata record ({\"version\":N,\"id\":...,\"graph\":...})";
    doc.reset();
  }
  if (!doc) {
    throw error("checkpoint '" + directory_ + "': metadata is " + why +
                "; without it the checkpoint cannot be checked against the query: " + std::string(start_over));
  }
  m.version = static_cast<int>(version);
  m.query_id = std::string(id);
  m.graph = simdjson::minify(graph);
  return m;
}

void checkpoint_store::write_metadata(const checkpoint_metadata& m) {
  dom::parser parser;
  std::string why;
  auto graph = parse_json(parser, m.graph, why);
  if (!graph) throw error("checkpoint '" + directory_ + "': the query's graph fingerprint is " + why);
  std::string json = "{\"version\":" + std::to_string(m.version) + ",\"id\":";
  append_json_string(json, m.query_id);
  json += ",\"graph\":" + simdjson::minify(*graph) + "}";
  connectors::write_file_atomically(owner, directory_, "metadata", seal(json));
}

std::string checkpoint_store::slot_directory(std::size_t slot) const {
  return directory_ + "/state/" + std::to_string(slot);
}

std::string checkpoint_store::source_directory(std::size_t source) {
  const std::string dir = directory_ + "/sources/" + std::to_string(source);
  connectors::create_directories(owner, dir);
  return dir;
}

std::string checkpoint_store::sink_directory(std::size_t sink) {
  const std::string dir = directory_ + "/sinks/" + std::to_string(sink);
  connectors::create_directories(owner, dir);
  return dir;
}

log_appender checkpoint_store::appender() {
  return [this](const std::vector<std::string>& records) { append_records(records); };
}

void checkpoint_store::append_records(const std::vector<std::string>& records) {
  if (log_ && (segments_.back().commits >= options_.min_batches_to_retain || log_->size() >= segment_bytes))
    log_.reset();
  if (!log_) {
    const std::int64_t number = next_segment_++;
    log_ = std::make_unique<connectors::sealed_log>(owner, directory_ + "/log", epoch_name(number, log_suffix));
    segments_.push_back({number, -1, {}, 0});
  }
  log_->append(records);
  for (const auto& record : records) note_record(segments_.back(), std::string_view(record).substr(0, record.find('\n')));
}

std::map<std::string, std::string> checkpoint_store::read_log(const std::string& directory) {
  std::map<std::string, std::string> out;
  for (auto& [name, entry] : read_log_index(directory, nullptr))
    if (entry.damage.empty()) out.emplace(name, std::move(entry.content));
  return out;
}

write_job checkpoint_store::offsets_job(const logged_offsets& epoch) const {
  return {[epoch, hold = hold_offsets_epoch_ == epoch.epoch] {
            while (hold) std::this_thread::sleep_for(std::chrono::seconds(1));
            return write_output({}, {log_record(offsets_name(epoch.epoch), offsets_json(epoch))});
          },
          {}};
}

bool snapshot_due(const snapshot_progress& slot, std::int64_t epoch, const checkpoint_options& options) {
  const std::int64_t since = epoch - slot.last_epoch;
  return since >= options.snapshot_interval &&
         (!options.snapshot_by_size || slot.delta_bytes_since >= slot.last_bytes ||
          since >= options.snapshot_interval * max_intervals_between_snapshots);
}

state_copy checkpoint_store::stage_snapshot(std::size_t slot, std::int64_t epoch, const operator_state& state) {
  if (!state.snapshots_to_directory()) return state.snapshot();
  connectors::create_directories(owner, slot_directory(slot));
  const std::string staged = slot_directory(slot) + "/." + epoch_name(epoch, rows_snapshot) + ".tmp";
  remove_entry(staged);  // a crashed attempt's
  try {
    return copy_state(state, staged);
  } catch (...) {
    remove_entry(staged);
    throw;
  }
}

// Files shared with the previous directory snapshot (the same inode: RocksDB hard-links its unchanged SST
// files) are durable and checksummed already: their entries are carried over. The others are fsynced and
// checksummed; only they count as written.
std::size_t checkpoint_store::seal_directory_snapshot(std::size_t slot, std::int64_t epoch, const std::string& staged) {
  const std::string dir = slot_directory(slot);
  try {
    std::string previous;
    std::vector<manifest_entry> previous_files;
    for (std::int64_t e : epochs_in(dir, directory_snapshot)) {
      if (e < epoch) previous = dir + "/" + epoch_name(e, directory_snapshot);
    }
    if (!previous.empty()) {
      std::string ignored;
      if (auto files = read_manifest(previous, ignored)) previous_files = std::move(*files);
    }
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(staged)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    std::vector<manifest_entry> files;
    std::size_t written = 0;
    for (const auto& name : names) {
      const std::string path = staged + "/" + name;
      struct stat now {}, before {};
      if (::stat(path.c_str(), &now) != 0 || !S_ISREG(now.st_mode))
        throw error(std::string(owner) + ": the snapshot '" + staged + "' holds '" + name +
                    "', which is not a regular file; a state backend's snapshot must hold files only");
      auto shared = std::find_if(previous_files.begin(), previous_files.end(), [&](const manifest_entry& f) {
        return f.name == name && f.digest.bytes == static_cast<std::uint64_t>(now.st_size);
      });
      const std::string previous_path = previous + "/" + name;
      if (shared != previous_files.end() && ::stat(previous_path.c_str(), &before) == 0 &&
          before.st_dev == now.st_dev && before.st_ino == now.st_ino) {
        files.push_back(*shared);
        continue;
      }
      connectors::sync_existing_file(owner, path);
      files.push_back({name, connectors::digest_file(owner, path)});
      written += files.back().digest.bytes;
    }
    const std::string manifest = seal(manifest_json(epoch, files));
    connectors::write_file_atomically(owner, staged, manifest_name, manifest);
    connectors::rename_file(owner, staged, dir + "/" + epoch_name(epoch, directory_snapshot));
    connectors::sync_directory(owner, dir);
    return written + manifest.size();
  } catch (const fs::filesystem_error& e) {
    remove_entry(staged);
    throw error(std::string(owner) + ": cannot list the snapshot '" + staged + "': " + e.code().message());
  } catch (...) {
    remove_entry(staged);
    throw;
  }
}

due_snapshot::due_snapshot(state_copy staged) {
  if (staged.directory.empty()) copy_rows = [rows = std::move(staged.rows)] { return rows; };
  else directory = std::move(staged.directory);
}

write_job checkpoint_store::commit_job(std::int64_t epoch, std::vector<batch> changes,
                                       const std::function<std::optional<due_snapshot>(std::size_t slot)>& snapshot) {
  return commit_job(epoch, std::move(changes), snapshot, true);
}

write_job checkpoint_store::commit_job(std::int64_t epoch, std::vector<batch> changes,
                                       const std::function<std::optional<due_snapshot>(std::size_t slot)>& snapshot,
                                       bool rows_snapshot_in_background) {
  // Taken now, on the caller's thread: the jobs get immutable copies or a state lent to them (state_loans:
  // its owner waits for the copy before changing it), never the caller's live state.
  std::vector<bool> due(changes.size());
  {
    std::lock_guard lock(snapshot_mutex_);
    if (snapshot_progress_.size() < changes.size()) snapshot_progress_.resize(changes.size());
    for (std::size_t slot = 0; slot < changes.size(); ++slot)
      due[slot] = snapshot_due(snapshot_progress_[slot], epoch, options_);
  }
  std::vector<std::optional<due_snapshot>> snapshots(changes.size());
  for (std::size_t slot = 0; slot < changes.size(); ++slot) {
    if (!due[slot]) continue;
    snapshots[slot] = snapshot(slot);
    if (!snapshots[slot]) continue;
    std::lock_guard lock(snapshot_mutex_);
    snapshot_progress_[slot].last_epoch = epoch;
    snapshot_progress_[slot].delta_bytes_since = 0;
  }
  auto files = std::make_shared<checkpoint_commit_stats>();
  files->epoch = epoch;
  auto in_round = std::make_shared<std::vector<std::size_t>>();  // slots whose row snapshot is in the round
  auto prepare = [this, epoch, files, in_round, changes = std::move(changes), snapshots = std::move(snapshots),
                  rows_snapshot_in_background] {
    {
      std::lock_guard lock(snapshot_mutex_);
      if (snapshot_failure_) throw error(*snapshot_failure_);
    }
    auto& stats = *files;
    stats.delta_bytes.assign(changes.size(), 0);
    stats.snapshot_bytes.assign(changes.size(), 0);
    write_output out;
    out.files.resize(1);
    for (std::size_t slot = 0; slot < changes.size(); ++slot) {
      const std::string dir = slot_directory(slot);
      // The delta is written even with a snapshot: it lets recovery fall back past a damaged snapshot.
      out.records.push_back(log_record(delta_name(slot, epoch), encoded_state(changes[slot])));
      stats.delta_bytes[slot] = out.records.back().size();
      {
        // A pipelined earlier epoch's delta lands after a later snapshot: that snapshot holds it already.
        std::lock_guard lock(snapshot_mutex_);
        if (epoch > snapshot_progress_[slot].last_epoch) snapshot_progress_[slot].delta_bytes_since += stats.delta_bytes[slot];
      }
      if (snapshots[slot] && !snapshots[slot]->directory.empty()) {
        // Made durable here, before the round's stages: a commit never precedes its snapshot.
        stats.snapshot_bytes[slot] = seal_directory_snapshot(slot, epoch, snapshots[slot]->directory);
        // Hard links to the previous snapshot's unchanged files: not weighed, the interval alone decides.
        snapshot_is_durable(slot, epoch, 0);
      } else if (snapshots[slot] && rows_snapshot_in_background) {
        // Handed over after the check above: only an earlier snapshot's failure fails this commit.
        write_snapshot_in_background(slot, epoch, snapshots[slot]->copy_rows);
      } else if (snapshots[slot]) {
        connectors::create_directories(owner, dir);
        out.files[0].push_back({dir, epoch_name(epoch, rows_snapshot), seal(encoded_state(snapshots[slot]->copy_rows()))});
        stats.snapshot_bytes[slot] = out.files[0].back().content.size();
        in_round->push_back(slot);
      }
      stats.total_bytes += stats.delta_bytes[slot] + stats.snapshot_bytes[slot];
    }
    // After its deltas in the same append (and its offsets, an earlier job's), and after the round's files:
    // recovery checks that every record a commit needs is intact, whatever part of the append a crash kept.
    out.records.push_back(log_record(commit_name(epoch), "{\"epoch\":" + std::to_string(epoch) + "}"));
    stats.total_bytes += out.records.back().size();
    return out;
  };
  return {std::move(prepare), [this, files, in_round, epoch](double round_ms) {
            for (std::size_t slot : *in_round) snapshot_is_durable(slot, epoch, files->snapshot_bytes[slot]);
            files->duration_ms = round_ms;
            commit_durable(std::move(*files));
          }};
}

// A row snapshot is not needed for the commit (the epoch's delta is): copied, encoded, sealed and written
// by a thread of its own, it keeps its CPU and bytes off the commit's round. Until it is durable, retention
// does not take it for a base; its bytes are reported with the first commit made durable after it.
void checkpoint_store::write_snapshot_in_background(std::size_t slot, std::int64_t epoch, std::function<batch()> copy_rows) {
  auto bytes = std::make_shared<std::size_t>(0);
  snapshot_writer_->submit({[this, slot, epoch, bytes, copy_rows = std::move(copy_rows)] {
                              const std::string dir = slot_directory(slot);
                              connectors::create_directories(owner, dir);
                              connectors::file_write file{dir, epoch_name(epoch, rows_snapshot),
                                                          seal(encoded_state(copy_rows()))};
                              *bytes = file.content.size();
                              return write_output(write_stages{{std::move(file)}});
                            },
                            [this, slot, epoch, bytes](double) {
                              snapshot_is_durable(slot, epoch, *bytes);
                              std::lock_guard lock(snapshot_mutex_);
                              if (unreported_snapshot_bytes_.size() <= slot) unreported_snapshot_bytes_.resize(slot + 1, 0);
                              unreported_snapshot_bytes_[slot] += *bytes;
                            }});
}

void checkpoint_store::snapshot_is_durable(std::size_t slot, std::int64_t epoch, std::size_t bytes) {
  std::lock_guard lock(snapshot_mutex_);
  // Also when a newer snapshot was decided meanwhile (interval 1, a slow write): its size is not known yet,
  // and this one's is closer than the one before.
  if (snapshot_progress_.size() > slot && snapshot_progress_[slot].last_epoch >= epoch) snapshot_progress_[slot].last_bytes = bytes;
  if (durable_snapshot_.size() <= slot) durable_snapshot_.resize(slot + 1, -1);
  durable_snapshot_[slot] = std::max(durable_snapshot_[slot], epoch);
  snapshot_durable_ = true;
}

void checkpoint_store::commit_durable(checkpoint_commit_stats stats) {
  const std::int64_t epoch = stats.epoch;
  // Listing the snapshots costs more than a commit's writes: they are looked at on the first commit of a
  // run and when a snapshot (a possible new base) became durable; the log's segments at every commit.
  bool snapshot_written = false;
  {
    std::lock_guard lock(snapshot_mutex_);
    std::swap(snapshot_written, snapshot_durable_);
    for (std::size_t slot = 0; slot < unreported_snapshot_bytes_.size() && slot < stats.snapshot_bytes.size(); ++slot) {
      stats.snapshot_bytes[slot] += unreported_snapshot_bytes_[slot];
      stats.total_bytes += unreported_snapshot_bytes_[slot];
      unreported_snapshot_bytes_[slot] = 0;
    }
  }
  if (!retention_scanned_ || snapshot_written) {
    apply_retention(epoch, stats.delta_bytes.size());
    retention_scanned_ = true;
  }
  remove_old_segments(epoch);
  constexpr std::size_t kept = 16;  // more than the epochs in flight
  std::lock_guard lock(stats_mutex_);
  recent_commits_.push_back(std::move(stats));
  if (recent_commits_.size() > kept) recent_commits_.pop_front();
}

std::optional<checkpoint_commit_stats> checkpoint_store::commit_stats(std::int64_t epoch) const {
  std::lock_guard lock(stats_mutex_);
  for (const auto& stats : recent_commits_)
    if (stats.epoch == epoch) return stats;
  return std::nullopt;
}

checkpoint_commit_stats checkpoint_store::last_commit() const {
  std::lock_guard lock(stats_mutex_);
  return recent_commits_.empty() ? checkpoint_commit_stats{} : recent_commits_.back();
}

void checkpoint_store::write_offsets(const logged_offsets& epoch) {
  run_write_job(owner, offsets_job(epoch), appender());
}

void checkpoint_store::write_commit(std::int64_t epoch, const std::vector<batch>& changes,
                                    const std::function<state_copy(std::size_t slot)>& snapshot) {
  run_write_job(owner, commit_job(
                           epoch, changes, [&](std::size_t slot) { return std::optional<due_snapshot>(snapshot(slot)); },
                           false),
                appender());
}

void checkpoint_store::apply_retention(std::int64_t newest, std::size_t slots) {
  const std::int64_t oldest_kept = newest - options_.min_batches_to_retain + 1;
  retention_base_.resize(slots, -1);
  if (oldest_kept <= 0) return;
  for (std::size_t slot = 0; slot < slots; ++slot) {
    const std::string dir = slot_directory(slot);
    std::int64_t durable = -1;
    {
      std::lock_guard lock(snapshot_mutex_);
      if (slot < durable_snapshot_.size()) durable = durable_snapshot_[slot];
    }
    // The newest durable snapshot at or before oldest_kept: rebuilding needs nothing older.
    std::int64_t base = -1;
    for (std::int64_t epoch : snapshot_epochs(dir)) {
      if (epoch <= oldest_kept && epoch <= durable) base = epoch;
    }
    if (base < 0) continue;
    retention_base_[slot] = base;
    for (std::string_view suffix : {rows_snapshot, directory_snapshot}) {
      for (std::int64_t epoch : epochs_in(dir, suffix)) {
        if (epoch < base) remove_entry(dir + "/" + epoch_name(epoch, suffix));
      }
    }
  }
}

// A segment goes once every record in it is older than what the retained epochs need: offsets and commits
// before the oldest retained epoch, deltas up to the slot's base snapshot. Only the oldest segments go, so
// a removal record ("-name") never outlives the record it removes. Removals need no sync: a segment that
// comes back after a crash holds only records recovery no longer needs.
void checkpoint_store::remove_old_segments(std::int64_t newest) {
  const std::int64_t oldest_kept = newest - options_.min_batches_to_retain + 1;
  auto needed = [&](const checkpoint_log_segment& segment) {
    if (segment.newest_epoch >= oldest_kept) return true;
    for (std::size_t slot = 0; slot < segment.newest_delta.size(); ++slot) {
      const std::int64_t base = slot < retention_base_.size() ? retention_base_[slot] : -1;
      if (segment.newest_delta[slot] > base) return true;
    }
    return false;
  };
  // The open segment stays (it is being written).
  bool sources_synced = false;
  while (segments_.size() > (log_ ? 1u : 0u) && !needed(segments_.front())) {
    if (!sources_synced) sync_source_files(directory_);
    sources_synced = true;
    remove_file(directory_ + "/log/" + epoch_name(segments_.front().number, log_suffix));
    segments_.pop_front();
  }
}

recovered_checkpoint checkpoint_store::recover(const std::vector<operator_state*>& states) {
  recovered_checkpoint out;
  segments_.clear();
  std::optional<unnamed_damage> damage_after_last_offsets;
  const log_index index = read_log_index(directory_, &segments_, &damage_after_last_offsets);

  // Leftovers of writes a crash interrupted: never valid, never renamed into place.
  std::vector<std::string> dirs = {directory_};
  std::size_t slots_on_disk = 0;
  for (std::int64_t slot : epochs_in(directory_ + "/state")) {
    slots_on_disk = std::max(slots_on_disk, static_cast<std::size_t>(slot) + 1);
  }
  for (const auto& segment : segments_) slots_on_disk = std::max(slots_on_disk, segment.newest_delta.size());
  for (std::size_t slot = 0; slot < slots_on_disk; ++slot) dirs.push_back(slot_directory(slot));
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with(".") && name.ends_with(".tmp")) remove_entry(entry.path().string());
    }
  }

  const std::vector<std::int64_t> commits = logged_epochs(index, "commits/");
  if (slots_on_disk > states.size() && !commits.empty()) {
    throw error("checkpoint '" + directory_ + "' holds the state of " + std::to_string(slots_on_disk) +
                " stateful operator instances, the query has " + std::to_string(states.size()) +
                ": the checkpoint belongs to another query; use another checkpoint location for this one");
  }

  std::vector<batch> empty;  // each slot's state as make_state() gave it, to start over from
  for (auto* state : states) empty.push_back(state->snapshot());
  auto reset = [&] {
    for (std::size_t slot = 0; slot < states.size(); ++slot) states[slot]->restore(empty[slot]);
  };
  std::vector<std::string> damaged_snapshots;

  // Rebuilds slot as of epoch from its newest intact snapshot at or before epoch (else the empty state) and
  // the deltas after it; false (why naming the file) when a delta is damaged or missing: every older base
  // would need it too.
  auto rebuild = [&](std::size_t slot, std::int64_t epoch, std::string& why) {
    const std::string prefix = "state/" + std::to_string(slot) + "/";
    // Applies the state file `name` with apply; false with file_why when it is damaged or not this state.
    auto apply_file = [&](const std::string& name, std::string& file_why, auto apply) {
      // Deltas are records of the log, snapshots files.
      const bool logged = name.ends_with(".delta");
      auto rows = read_state(logged ? lookup(index, name, file_why) : read_sealed(directory_ + "/" + name, file_why),
                             file_why);
      if (!rows) return false;
      try {
        apply(*rows);
      } catch (const error& e) {
        file_why = std::string("not this operator's state (") + e.what() + ")";
        return false;
      }
      return true;
    };
    // Restores the directory snapshot `name` (its manifest checked first); false with file_why otherwise.
    auto restore_directory = [&](const std::string& name, std::string& file_why) {
      const std::string path = directory_ + "/" + name;
      if (!directory_snapshot_intact(path, file_why)) return false;
      try {
        states[slot]->restore_from(path);
      } catch (const error& e) {
        file_why = std::string("not this operator's state (") + e.what() + ")";
        return false;
      }
      return true;
    };
    states[slot]->restore(empty[slot]);
    std::int64_t base = -1;
    const std::string slot_dir = slot_directory(slot);
    const std::vector<std::int64_t> snapshots = snapshot_epochs(slot_dir);
    for (auto s = snapshots.rbegin(); s != snapshots.rend() && base < 0; ++s) {
      if (*s > epoch) continue;
      std::error_code ec;
      const bool in_directory = fs::is_directory(slot_dir + "/" + epoch_name(*s, directory_snapshot), ec);
      const std::string name = prefix + epoch_name(*s, in_directory ? directory_snapshot : rows_snapshot);
      std::string file_why;
      if (in_directory && !states[slot]->snapshots_to_directory()) {
        // Not damaged: written by an on-disk backend. Kept, for a run with that backend.
        const std::string note = "Checkpoint snapshot " + name + " was written by an on-disk state backend " +
                                 "(rocksdb), which this query's state does not use; the state is rebuilt from an " +
                                 "older row snapshot and the deltas after it (run the query with the backend that " +
                                 "wrote it to use the snapshot).";
        if (std::find(out.notes.begin(), out.notes.end(), note) == out.notes.end()) out.notes.push_back(note);
        continue;
      }
      if (in_directory ? restore_directory(name, file_why)
                       : apply_file(name, file_why, [&](const batch& rows) { states[slot]->restore(rows); })) {
        base = *s;
      } else {
        states[slot]->restore(empty[slot]);
        if (std::find(damaged_snapshots.begin(), damaged_snapshots.end(), name) == damaged_snapshots.end()) {
          out.notes.push_back("Checkpoint file " + name + " is " + file_why +
                              "; the state is rebuilt from an older snapshot and the deltas after it.");
          damaged_snapshots.push_back(name);
        }
      }
    }
    for (std::int64_t d = base + 1; d <= epoch; ++d) {
      const std::string name = prefix + epoch_name(d, ".delta");
      std::string file_why;
      if (!apply_file(name, file_why, [&](const batch& rows) { states[slot]->apply_changes(rows); })) {
        why = name + " is " + file_why;
        return false;
      }
    }
    return true;
  };

  // The newest consistent committed epoch.
  std::optional<std::int64_t> consistent;
  std::string first_damage;  // what disqualified the newest committed epoch
  std::optional<logged_offsets> consistent_offsets;
  for (auto it = commits.rbegin(); it != commits.rend() && !consistent; ++it) {
    const std::int64_t epoch = *it;
    std::string why;
    std::optional<logged_offsets> offsets;
    bool ok = commit_intact(lookup(index, commit_name(epoch), why), epoch, why);
    if (!ok) why = "commits/" + epoch_name(epoch) + " is " + why;
    if (ok && !(offsets = read_offsets(lookup(index, offsets_name(epoch), why), epoch, why))) {
      why = "offsets/" + epoch_name(epoch) + " is " + why;
      ok = false;
    }
    for (std::size_t slot = 0; ok && slot < states.size(); ++slot) ok = rebuild(slot, epoch, why);
    if (ok) {
      consistent = epoch;
      consistent_offsets = std::move(offsets);
    } else {
      if (first_damage.empty()) first_damage = why;
      out.notes.push_back("Checkpoint file " + why + "; epoch " + std::to_string(epoch) +
                          " is not used as the recovery point, an earlier consistent one is looked for.");
      reset();
    }
  }

  const std::int64_t newest_commit = commits.empty() ? -1 : commits.back();
  if (consistent) {
    out.last_committed = *consistent;
    out.committed_end = consistent_offsets->end;
    out.committed_watermark = consistent_offsets->watermark;
  } else if (!commits.empty()) {
    // Before epoch 0 is a consistent point as long as the offsets of every epoch since are kept.
    if (index.contains(offsets_name(0))) {
      out.notes.push_back("No committed epoch is consistent; the query starts from its first epoch again, re-running "
                          "the logged epochs with their offsets.");
    } else {
      throw error("checkpoint '" + directory_ + "': " + first_damage +
                  "; no earlier consistent epoch is kept (minBatchesToRetain=" +
                  std::to_string(options_.min_batches_to_retain) +
                  "): the query cannot resume with exactly-once results; " + std::string(start_over));
    }
  }

  // Epochs after the recovery point: those committed since must be re-run with their offsets; the
  // logged-but-uncommitted ones are re-run up to the first damaged one.
  const std::vector<std::int64_t> logged = logged_epochs(index, "offsets/");
  std::int64_t next = out.last_committed + 1;
  for (;; ++next) {
    std::string why;
    auto offsets = read_offsets(lookup(index, offsets_name(next), why), next, why);
    if (offsets) {
      out.uncommitted.push_back(std::move(*offsets));
      continue;
    }
    if (next <= newest_commit) {
      throw error("checkpoint '" + directory_ + "': offsets/" + epoch_name(next) + " is " + why + ", and epoch " +
                  std::to_string(next) + " must be re-run with those offsets (recovering from " +
                  (out.last_committed < 0 ? std::string("the start") : "epoch " + std::to_string(out.last_committed)) +
                  " because " + first_damage + "): " + std::string(start_over));
    }
    // A logged epoch may have reached a sink before the crash: planning it anew could give other data
    // under the same epoch number (a file sink would skip it, foreachBatch get it twice).
    const auto later = std::find_if(logged.begin(), logged.end(), [&](std::int64_t e) { return e > next; });
    if (why != "missing" || later != logged.end()) {
      const std::string file = why != "missing" ? "offsets/" + epoch_name(next) + " is " + why
                                                : "the offset log has a gap (offsets/" + epoch_name(next) +
                                                      " is missing, offsets/" + epoch_name(*later) + " exists)";
      throw error("checkpoint '" + directory_ + "': " + file + "; a logged epoch may already have reached a sink, " +
                  "so planning it anew could write other data under its number: restore the file from a backup, " +
                  "or " + std::string(start_over.substr(0, start_over.find(", or"))));
    }
    if (const auto& damage = damage_after_last_offsets) {
      const std::string last_offsets = next > 0 ? "offsets/" + epoch_name(next - 1) : "none";
      throw error("checkpoint '" + directory_ + "': the record at byte " + std::to_string(damage->at) + " of " +
                  damage->segment + " is damaged (" + damage->why + ") and its name cannot be read; it comes " +
                  "after the last intact offsets (" + last_offsets + "), so it may be the offsets of epoch " +
                  std::to_string(next) + ", which may already have reached a sink: planning that epoch anew " +
                  "could write other data under its number: restore " + damage->segment + " from a backup, or " +
                  std::string(start_over.substr(0, start_over.find(", or"))));
    }
    break;
  }

  for (std::int64_t epoch : logged) {
    std::string why;
    const auto offsets = read_offsets(lookup(index, offsets_name(epoch), why), epoch, why);
    if (!offsets) continue;
    if (out.source_plans.size() < offsets->plans.size()) out.source_plans.resize(offsets->plans.size());
    for (std::size_t source = 0; source < offsets->plans.size(); ++source)
      if (!offsets->plans[source].empty()) out.source_plans[source].push_back(offsets->plans[source]);
  }

  // What lies beyond the recovery point is rewritten by the re-run epochs: its commits and deltas are
  // removed by records of their own (the log is append-only), its snapshots as files.
  std::vector<std::string> removals;
  for (const auto& [name, entry] : index) {
    const log_name parsed = parse_log_name(name);
    if ((parsed.kind == 'c' || parsed.kind == 'd') && parsed.epoch > out.last_committed) removals.push_back("-" + name + "\n");
  }
  if (!removals.empty()) append_records(removals);
  for (std::size_t slot = 0; slot < slots_on_disk; ++slot) {
    const std::string dir = slot_directory(slot);
    for (std::string_view suffix : {rows_snapshot, directory_snapshot}) {
      for (std::int64_t epoch : epochs_in(dir, suffix)) {
        if (epoch > out.last_committed) remove_entry(dir + "/" + epoch_name(epoch, suffix));
      }
    }
  }
  for (const auto& name : damaged_snapshots) remove_entry(directory_ + "/" + name);
  {
    std::lock_guard lock(snapshot_mutex_);
    durable_snapshot_.assign(states.size(), -1);
    snapshot_progress_.assign(states.size(), {});
    for (std::size_t slot = 0; slot < states.size(); ++slot) {
      const auto snapshots = snapshot_epochs(slot_directory(slot));
      // Its size is not looked up: the first snapshot after a restart is due by the interval alone.
      if (!snapshots.empty()) snapshot_progress_[slot].last_epoch = durable_snapshot_[slot] = snapshots.back();
    }
  }
  return out;
}

}  // namespace flow::runtime
