// Spark's Dataset.show() layout (showString), cell for cell.
#include <algorithm>

#include "flow/batch.hpp"

namespace flow {

namespace {

constexpr std::size_t truncate_width = 20;
constexpr std::size_t min_column_width = 3;

// Spark measures characters, not bytes: count UTF-8 code points.
std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The first `chars` code points of s.
std::string_view prefix_chars(std::string_view s, std::size_t chars) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == chars) return s.substr(0, i);
      ++seen;
    }
  }
  return s;
}

std::string cell_text(std::string text, bool truncate) {
  if (truncate && display_width(text) > truncate_width) {
    return std::string(prefix_chars(text, truncate_width - 3)) + "...";
  }
  return text;
}

std::string format_rows(const schema& s, const std::vector<std::vector<std::string>>& body, bool has_more,
                        std::size_t num_rows, bool truncate) {
  std::vector<std::string> header;
  header.reserve(s.size());
  for (const auto& f : s.fields()) header.push_back(cell_text(f.name, truncate));

  std::vector<std::size_t> widths(s.size(), min_column_width);
  for (std::size_t c = 0; c < s.size(); ++c) widths[c] = std::max(widths[c], display_width(header[c]));
  for (const auto& row : body) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  }

  std::string separator = "+";
  for (auto w : widths) separator.append(w, '-').push_back('+');
  separator.push_back('\n');

  std::string out;
  auto append_row = [&](const std::vector<std::string>& cells) {
    out.push_back('|');
    for (std::size_t c = 0; c < cells.size(); ++c) {
      std::size_t padding = widths[c] - display_width(cells[c]);
      if (truncate) out.append(padding, ' ');
      out += cells[c];
      if (!truncate) out.append(padding, ' ');
      out.push_back('|');
    }
    out.push_back('\n');
  };
  out += separator;
  append_row(header);
  out += separator;
  for (const auto& row : body) append_row(row);
  out += separator;
  if (has_more) {
    out += "only showing top " + std::to_string(num_rows) + (num_rows == 1 ? " row\n" : " rows\n");
  }
  return out;
}

}  // namespace

std::string format_table(const std::vector<batch>& batches, std::size_t num_rows, bool truncate) {
  if (batches.empty()) return format_table(batch(), num_rows, truncate);
  const schema& s = batches.front().schema();
  std::vector<std::vector<std::string>> body;
  bool has_more = false;
  for (const auto& b : batches) {
    if (b.schema() != s) {
      throw error("format_table: batches have different schemas (" + s.to_string() + " vs " +
                  b.schema().to_string() + ")");
    }
    for (std::size_t r = 0; r < b.num_rows(); ++r) {
      if (body.size() == num_rows) {
        has_more = true;
        break;
      }
      std::vector<std::string> row;
      row.reserve(b.num_columns());
      for (std::size_t c = 0; c < b.num_columns(); ++c) row.push_back(cell_text(to_string(b.at(r, c)), truncate));
      body.push_back(std::move(row));
    }
    if (has_more) break;
  }
  return format_rows(s, body, has_more, num_rows, truncate);
}

std::string format_table(const batch& b, std::size_t num_rows, bool truncate) {
  return format_table(std::vector<batch>{b}, num_rows, truncate);
}

}  // namespace flow
