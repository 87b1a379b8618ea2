#include "flow/connectors/line_splitter.hpp"

#include <algorithm>
#include <cstring>

#include "flow/line_scan.hpp"

namespace flow::connectors {

namespace {

bool blank(const char* p, std::size_t length) {
  for (std::size_t i = 0; i < length; ++i)
    if (p[i] != ' ' && p[i] != '\t') return false;
  return true;
}

// Room beyond max_line_bytes an unfinished line may take: its '\r' and a byte-order mark.
constexpr std::size_t line_slack = 4;
// consume() cuts larger inputs so run offsets fit in 32 bits.
constexpr std::size_t max_consume = std::size_t{1} << 30;

}  // namespace

line_splitter::line_splitter(record_log& log, ingest_counters& counters, settings s)
    : log_(&log), counters_(&counters), settings_(s) {}

void line_splitter::reset() {
  partial_.clear();
  discarding_ = false;
  at_start_ = true;
}

bool line_splitter::finish() {
  bool ok = true;
  if (!discarding_ && !partial_.empty()) {
    std::string last = std::move(partial_);
    partial_.clear();
    ok = append_one(last);
  }
  reset();
  return ok;
}

bool line_splitter::consume(const char* data, std::size_t size) {
  while (size > max_consume) {
    if (!consume(data, max_consume)) return false;
    data += max_consume;
    size -= max_consume;
  }
  const char* p = data;
  const char* const end = data + size;
  auto keep_unfinished = [&] {
    const auto rest = static_cast<std::size_t>(end - p);
    if (!discarding_ && partial_.size() + rest > settings_.max_line_bytes + line_slack) {
      counters_->bad();
      discarding_ = true;
      partial_.clear();
    }
    if (!discarding_) partial_.append(p, rest);
  };
  // A line the previous input left unfinished, or a stream's first line that may open with a mark:
  // assembled in partial_ and appended alone.
  while (p < end && (discarding_ || !partial_.empty() || (at_start_ && settings_.strip_bom))) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (!nl) {
      keep_unfinished();
      return true;
    }
    if (discarding_) {
      discarding_ = false;
      at_start_ = false;
    } else {
      partial_.append(p, nl);
      bool ok = append_one(partial_);
      partial_.clear();
      if (!ok) return false;
    }
    p = nl + 1;
  }
  // A string column takes the complete lines that follow in one pass of its own when none can be dropped:
  // no blank lines to skip, none to remember, and none oversize, since the input is not longer than the limit.
  if (log_->framing() == record_framing::string_column && !settings_.skip_blank && settings_.keep_recent == 0 &&
      static_cast<std::size_t>(end - p) <= settings_.max_line_bytes) {
    if (const auto* last = static_cast<const char*>(memrchr(p, '\n', static_cast<std::size_t>(end - p)))) {
      const auto appended = log_->append_lines(std::string_view(p, static_cast<std::size_t>(last + 1 - p)));
      counters_->received(appended.records, appended.payload_bytes);
      if (!appended.open) return false;
      p = last + 1;
      at_start_ = false;
    }
    if (p < end) keep_unfinished();
    return true;
  }
  // The complete lines that follow go in as runs straight from data, cut only around lines dropped.
  const char* run = p;
  bool open = true;
  for_each_newline(p, end, [&](const char* nl) {
    auto length = static_cast<std::size_t>(nl - p);
    if (length > 0 && nl[-1] == '\r') --length;
    const bool oversize = length > settings_.max_line_bytes;
    if (oversize || (settings_.skip_blank && blank(p, length))) {
      open = open && flush_run(run);
      if (oversize) counters_->bad();
      run = nl + 1;
    } else {
      ends_.push_back(static_cast<std::uint32_t>(nl + 1 - run));
      run_bytes_ += length;
    }
    p = nl + 1;
  });
  if (!open) {
    ends_.clear();
    run_bytes_ = 0;
    return false;
  }
  if (p != data) at_start_ = false;
  if (!flush_run(run)) return false;
  if (p < end) keep_unfinished();
  return true;
}

bool line_splitter::flush_run(const char* run) {
  if (ends_.empty()) return true;
  bool ok = log_->append_framed(std::string_view(run, ends_.back()), ends_);
  if (ok) {
    counters_->received(ends_.size(), run_bytes_);
    if (settings_.keep_recent > 0) {
      std::size_t from = ends_.size() - std::min(ends_.size(), settings_.keep_recent);
      for (std::size_t i = from; i < ends_.size(); ++i) {
        std::size_t begin = i == 0 ? 0 : ends_[i - 1];
        std::string_view line(run + begin, ends_[i] - 1 - begin);
        if (line.ends_with('\r')) line.remove_suffix(1);
        remember(line);
      }
    }
  }
  ends_.clear();
  run_bytes_ = 0;
  return ok;
}

bool line_splitter::append_one(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (at_start_ && settings_.strip_bom && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  at_start_ = false;
  if (settings_.skip_blank && blank(line.data(), line.size())) return true;
  if (line.size() > settings_.max_line_bytes) {
    counters_->bad();
    return true;
  }
  if (!log_->append(line)) return false;
  counters_->received(1, line.size());
  remember(line);
  return true;
}

void line_splitter::remember(std::string_view line) {
  if (settings_.keep_recent == 0) return;
  recent_.emplace_back(line);
  while (recent_.size() > settings_.keep_recent) recent_.pop_front();
}

}  // namespace flow::connectors
