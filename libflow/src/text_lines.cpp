// Text lines: one string column per line, like Spark's text source.
#include <cstring>

#include "format_detail.hpp"

namespace flow::detail {

namespace {

class text_decoder final : public decoder {
 public:
  explicit text_decoder(schema_ptr schema) : schema_(std::move(schema)) {}

  const schema_ptr& output_schema() const override { return schema_; }

  std::size_t record_boundary(std::string_view bytes) const override { return last_line_boundary(bytes); }

  batch decode(const raw_chunk& chunk, decode_stats& stats) const override {
    std::string_view bytes = chunk.bytes();
    stats.bytes += bytes.size();
    if (chunk.starts_file() && bytes.starts_with(utf8_bom)) bytes.remove_prefix(utf8_bom.size());
    column_builder lines(type_id::string, estimate_rows(bytes));
    const char* p = bytes.data();
    const char* const end = p + bytes.size();
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      const char* line_end = nl ? nl : end;
      const char* content_end = (line_end > p && line_end[-1] == '\r') ? line_end - 1 : line_end;
      lines.append_string(std::string_view(p, static_cast<std::size_t>(content_end - p)));
      p = nl ? nl + 1 : end;
    }
    stats.rows += lines.size();
    std::vector<column> columns;
    columns.push_back(lines.finish());
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
