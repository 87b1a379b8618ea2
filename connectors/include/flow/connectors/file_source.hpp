// Files as a stream (Spark's FileStreamSource) and the file helpers batch reads share with it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flow/connectors/durable_file.hpp"
#include "flow/formats.hpp"
#include "flow/plan.hpp"
#include "flow/source_sink.hpp"

namespace flow::connectors {

// Default upper bound of one raw_chunk.
inline constexpr std::size_t default_max_chunk_bytes = std::size_t{1} << 20;

// path: a directory (every file in it), a glob in the last component ("dir/*.csv", fnmatch rules) or one
// file. format: csv, json or text, decoded by flow::make_decoder(format, opts, schema).
// Options: maxFilesPerTrigger (default unlimited), latestFirst (default false), maxFileAge (a duration such
// as "7 days": files older than the newest file minus this age are ignored, as in Spark), pollIntervalMs
// (default 1000: the longest time between two directory listings when inotify reports nothing),
// fileStableMs (default 1000: a file written in place is taken once its modification time is that old or it
// was seen unchanged that long; a file moved in is taken at once), maxBytesPerChunk (default 1 MiB), plus
// the decoder's options. Metrics: numFilesDiscovered, numFilesRead, numBytesRead, numFilesChangedAfterRead
// (files whose size or modification time changed after they were taken; each is reported on stderr).
// Offsets are {"logOffset":N}: the number of files planned so far, in the source's file log. On a checkpoint
// (use_checkpoint) each planned batch's files are logged before latest_offset returns and durable with the
// epoch's offsets record (plan_record), so that N names the same files after a restart and logged files are
// never taken again (docs/fault-tolerance.md).
std::unique_ptr<flow::source_reader> make_file_source(std::string path, std::string format, flow::options opts,
                                                      flow::schema_ptr schema);

// The input files of path (directory, glob or file) in processing order: modification time, then name.
// Names starting with '.' or '_' are skipped, so are subdirectories. Throws flow::error when path is missing.
std::vector<std::string> list_input_files(const std::string& path);

// Reads file whole and cuts it into chunks of at most max_chunk_bytes at the decoder's record boundaries
// (a record bigger than the limit gets a chunk of its own). The chunks share one buffer.
// Throws flow::error naming the file and the OS error when it cannot be read.
std::vector<flow::raw_chunk> read_file_chunks(const std::string& file, const flow::decoder& format_decoder,
                                              std::size_t max_chunk_bytes);

// Whether no record of format (csv, json, text) with these options spans a line end, so that the
// decoder's record boundary is always just past the last '\n': all but csv with multiLine.
bool records_end_at_line_ends(std::string_view format, const flow::options& opts);

// The chunks read_file_chunks cuts a file into, each read on its own (a file source's instance reads only
// its share of them). With line_records (records_end_at_line_ends of the decoder's format) the cuts are
// found by reading backwards from each limit to a line end, a few KiB a cut, and a chunk's bytes are read
// only when asked for; a chunk after the first has first_line 0 (its line is unknown: decoders then name
// a position by its byte offset in the file). Otherwise the file is read whole and cut. The file must not
// change while it is read. Throws flow::error naming the file and the OS error when it cannot be read.
class file_chunk_index {
 public:
  file_chunk_index(std::string file, const flow::decoder& format_decoder, std::size_t max_chunk_bytes, bool line_records);

  std::size_t size() const { return cuts_.empty() ? chunks_.size() : cuts_.size() - 1; }
  flow::raw_chunk chunk(std::size_t index) const;

 private:
  std::string file_;
  connectors::unique_fd fd_;
  std::vector<std::uint64_t> cuts_;     // chunk i is [cuts_[i], cuts_[i + 1]); empty when chunks_ holds them
  std::vector<flow::raw_chunk> chunks_;  // the whole file's chunks, for a decoder whose records may span lines
};

// Cuts an in-memory file into chunks exactly as read_file_chunks does.
std::vector<flow::raw_chunk> cut_into_chunks(std::shared_ptr<const std::string> contents, const std::string& origin,
                                             const flow::decoder& format_decoder, std::size_t max_chunk_bytes);

// Up to max_bytes from the start of file, cut after the last newline (whole file if it is smaller), for
// inferSchema. Throws flow::error naming the file and the OS error when it cannot be read.
std::string read_sample(const std::string& file, std::size_t max_bytes);

// The file formats' resolve (csv, json, text): sets scan.schema, inferring it from the first file when
// asked (json always when none is given, csv with inferSchema, text is value: string), and checks that a
// batch read has input files. Throws flow::error naming the path.
void resolve_file_scan(scan_spec& scan);

}  // namespace flow::connectors

namespace flow {
using connectors::list_input_files;
using connectors::make_file_source;
using connectors::file_chunk_index;
using connectors::records_end_at_line_ends;
using connectors::read_file_chunks;
using connectors::read_sample;
}  // namespace flow
