// Text lines: one string column per line, like Spark's text source.
#include <cstdint>
#include <limits>

#include "flow/line_scan.hpp"
#include "format_detail.hpp"

namespace flow::detail {

namespace {

class text_decoder final : public decoder {
 public:
  explicit text_decoder(schema_ptr schema) : schema_(std::move(schema)) {}

  const schema_ptr& output_schema() const override { return schema_; }

  std::size_t record_boundary(std::string_view bytes) const override { return last_line_boundary(bytes); }

  // Builds the string column's buffers directly: newlines found 64 bytes at a time (SSE2), each line
  // copied once into characters sized for the whole chunk, no per-row builder bookkeeping.
  batch decode(const raw_chunk& chunk, decode_stats& stats) const override {
    std::string_view bytes = chunk.bytes();
    stats.bytes += bytes.size();
    if (chunk.starts_file() && bytes.starts_with(utf8_bom)) bytes.remove_prefix(utf8_bom.size());
    if (bytes.size() > std::numeric_limits<std::uint32_t>::max())
      throw error("string column exceeds 4 GiB of characters; use smaller batches");
    auto data = std::make_shared<column_data>();
    data->type = type_id::string;
    // Lines lose their '\n' (and '\r'), so the characters never outgrow the chunk; the slack lets a
    // line be copied in whole 16-byte pieces.
    data->chars.resize(bytes.size() + line_copy_slack);
    data->offsets.reserve(estimate_rows(bytes) + 2);
    data->offsets.push_back(0);
    const char* const begin = bytes.data();
    const char* const end = begin + bytes.size();
    char* const out_begin = data->chars.data();
    char* out = out_begin;
    const char* line = begin;
    auto take_line = [&](const char* line_end) {
      const char* content_end = (line_end > line && line_end[-1] == '\r') ? line_end - 1 : line_end;
      const auto length = static_cast<std::size_t>(content_end - line);
      copy_line(out, line, length, static_cast<std::size_t>(end - line));
      out += length;
      data->offsets.push_back(static_cast<std::uint32_t>(out - out_begin));
    };
    for_each_newline(begin, end, [&](const char* nl) {
      take_line(nl);
      line = nl + 1;
    });
    if (line < end) take_line(end);  // the last line may lack its newline
    data->chars.resize(static_cast<std::size_t>(out - out_begin));
    data->length = data->offsets.size() - 1;
    stats.rows += data->length;
    std::vector<column> columns;
    columns.push_back(column(std::move(data)));
    return batch(schema_, std::move(columns));
  }

 private:
  schema_ptr schema_;
};

}  // namespace

std::shared_ptr<const decoder> make_text_decoder(const options&, schema_ptr schema) {
  if (!schema || schema->size() == 0) schema = make_schema({field{"value", type_id::string, true}});
  if (schema->size() != 1 || (*schema)[0].type != type_id::string) {
    throw error("the text format yields one string column (value), but the schema is " + schema->to_string() +
                "; drop the schema or use a single string column");
  }
  return std::make_shared<const text_decoder>(std::move(schema));
}

}  // namespace flow::detail
