#include "flow/types.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <regex>

namespace flow {

namespace {

constexpr std::int64_t micros_per_second = 1'000'000;
constexpr std::int64_t micros_per_day = 86'400 * micros_per_second;

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_letter(char c) { return ascii_lower(c) >= 'a' && ascii_lower(c) <= 'z'; }

// Reads 1 to max_digits digits at text[pos] into out, moving pos past them; false when there is none.
bool read_number(std::string_view text, std::size_t& pos, std::size_t max_digits, unsigned& out) {
  const std::size_t start = pos;
  out = 0;
  while (pos < text.size() && pos - start < max_digits && is_digit(text[pos])) {
    out = out * 10 + static_cast<unsigned>(text[pos++] - '0');
  }
  return pos > start;
}

// What Spark trims around a timestamp: blanks and ASCII control characters.
std::string_view trim_blanks_and_controls(std::string_view s) {
  auto trimmed = [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == '\x7f'; };
  while (!s.empty() && trimmed(s.front())) s.remove_prefix(1);
  while (!s.empty() && trimmed(s.back())) s.remove_suffix(1);
  return s;
}

// A zone offset as java.time.ZoneOffset reads it, in seconds east of UTC: +|-h, hh, hhmm, hhmmss, hh:mm or
// hh:mm:ss, plus the h:mm and hh:m that Spark also accepts; at most 18 hours.
std::optional<std::int64_t> offset_seconds(std::string_view text) {
  if (text.empty() || (text.front() != '+' && text.front() != '-')) return std::nullopt;
  const std::int64_t sign = text.front() == '-' ? -1 : 1;
  text.remove_prefix(1);
  auto digits_at = [&](std::size_t pos, std::size_t n, unsigned& out) {
    std::size_t end = pos;
    return read_number(text, end, n, out) && end == pos + n;
  };
  unsigned hours = 0, minutes = 0, seconds = 0;
  bool ok = false;
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    switch (text.size()) {
      case 1:
      case 2: ok = digits_at(0, text.size(), hours); break;
      case 4: ok = digits_at(0, 2, hours) && digits_at(2, 2, minutes); break;
      case 6: ok = digits_at(0, 2, hours) && digits_at(2, 2, minutes) && digits_at(4, 2, seconds); break;
      default: break;
    }
  } else if (colon == 1 || colon == 2) {
    const std::size_t rest = text.size() - colon - 1;
    ok = digits_at(0, colon, hours) &&
         ((rest == 1 || rest == 2) ? digits_at(colon + 1, rest, minutes)
                                   : rest == 5 && text[colon + 3] == ':' && digits_at(colon + 1, 2, minutes) &&
                                         digits_at(colon + 4, 2, seconds));
  }
  const std::int64_t total = static_cast<std::int64_t>(hours) * 3600 + minutes * 60 + seconds;
  if (!ok || minutes > 59 || seconds > 59 || total > 18 * 3600) return std::nullopt;
  return sign * total;
}

// A zone as Spark reads it (java.time.ZoneId): Z, UTC, GMT or UT, alone or followed by an offset, or an
// offset. Region ids (Europe/Paris) and short ids (PST) would need a time-zone database: nullopt.
std::optional<std::int64_t> zone_offset_seconds(std::string_view zone) {
  if (zone == "Z") return 0;
  for (std::string_view prefix : {"UTC", "GMT", "UT"}) {
    if (zone.starts_with(prefix)) {
      zone.remove_prefix(prefix.size());
      if (zone.empty()) return 0;
      break;
    }
  }
  return offset_seconds(zone);
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr std::array<unsigned, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && is_leap(y)) ? 29 : days[m - 1];
}

struct civil_date {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

// Howard Hinnant's civil_from_days.
civil_date civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {m <= 2 ? y + 1 : y, m, d};
}

}  // namespace

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
  std::array<char, 64> buf{};
  double magnitude = std::fabs(v);
  if (magnitude >= 1e-3 && magnitude < 1e7) {
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
    std::string out(buf.data(), end);
    if (out.find('.') == std::string::npos) out += ".0";
    return out;
  }
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
  const char* digits = buf.data() + (v < 0 ? 1 : 0);
  if (end - digits < 2 || digits[1] != '.') {
    // One digit is the shortest: Java (its Double.toString specification since JDK 19) prints two, the
    // closest two-digit decimal that reads back as v; only some subnormals differ from d.0
    // (Double.MIN_VALUE is 4.9E-324, not 5.0E-324).
    std::array<char, 64> two{};
    auto [two_end, two_ec] = std::to_chars(two.data(), two.data() + two.size(), v, std::chars_format::scientific, 1);
    double back = 0;
    std::from_chars(two.data(), two_end, back);
    if (back == v) {
      buf = two;
      end = buf.data() + (two_end - two.data());
    }
  }
  std::string_view text(buf.data(), static_cast<std::size_t>(end - buf.data()));
  std::size_t e = text.find('e');
  std::string mantissa(text.substr(0, e));
  if (mantissa.find('.') == std::string::npos) mantissa += ".0";
  std::string_view exponent = text.substr(e + 1);
  bool negative = false;
  if (!exponent.empty() && (exponent.front() == '+' || exponent.front() == '-')) {
    negative = exponent.front() == '-';
    exponent.remove_prefix(1);
  }
  while (exponent.size() > 1 && exponent.front() == '0') exponent.remove_prefix(1);
  return mantissa + "E" + (negative ? "-" : "") + std::string(exponent);
}


std::string_view type_name(type_id t) {
  switch (t) {
    case type_id::boolean: return "boolean";
    case type_id::int64: return "int64";
    case type_id::float64: return "float64";
    case type_id::string: return "string";
    case type_id::timestamp: return "timestamp";
    case type_id::window: return "window";
    case type_id::string_list: return "array<string>";
  }
  return "unknown";
}

std::optional<type_id> parse_type_name(std::string_view name) {
  name = trim(name);
  struct spelling {
    std::string_view text;
    type_id type;
  };
  static constexpr std::array<spelling, 17> spellings{{
      {"boolean", type_id::boolean},
      {"bool", type_id::boolean},
      {"int64", type_id::int64},
      {"long", type_id::int64},
      {"bigint", type_id::int64},
      {"int", type_id::int64},
      {"integer", type_id::int64},
      {"float64", type_id::float64},
      {"double", type_id::float64},
      {"float", type_id::float64},
      {"string", type_id::string},
      {"timestamp", type_id::timestamp},
      {"window", type_id::window},
      {"struct<start:timestamp,end:timestamp>", type_id::window},
      {"varchar", type_id::string},
      {"array<string>", type_id::string_list},
      {"list<string>", type_id::string_list},
  }};
  for (const auto& s : spellings) {
    if (iequals(name, s.text)) return s.type;
  }
  return std::nullopt;
}

bool is_numeric(type_id t) { return t == type_id::int64 || t == type_id::float64; }

std::optional<type_id> type_of(const value& v) {
  switch (v.index()) {
    case 1: return type_id::boolean;
    case 2: return type_id::int64;
    case 3: return type_id::float64;
    case 4: return type_id::string;
    case 5: return type_id::timestamp;
    case 6: return type_id::window;
    case 7: return type_id::string_list;
    default: return std::nullopt;
  }
}

std::string to_string(const value& v) {
  struct printer {
    std::string operator()(null_value) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return format_double(d); }
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(timestamp t) const { return format_timestamp(t); }
    std::string operator()(const window_value& w) const {
      std::string out = "{";
      out += format_timestamp(w.start);
      out += ", ";
      out += format_timestamp(w.end);
      out += '}';
      return out;
    }
    std::string operator()(const std::vector<std::string>& items) const {
      std::string out = "[";
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += items[i];
      }
      out += ']';
      return out;
    }
  };
  return std::visit(printer{}, v);
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::string exception_message(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

bool is_permanent(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const permanent_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::optional<timestamp> parse_timestamp(std::string_view text) {
  text = trim_blanks_and_controls(text);
  std::size_t pos = 0;
  auto done = [&] { return pos == text.size(); };
  auto skip = [&](char c) {
    if (done() || text[pos] != c) return false;
    ++pos;
    return true;
  };
  unsigned year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0, micros = 0;
  if (!read_number(text, pos, 4, year) || pos != 4) return std::nullopt;
  if (!done() && !(skip('-') && read_number(text, pos, 2, month))) return std::nullopt;
  if (!done() && !(skip('-') && read_number(text, pos, 2, day))) return std::nullopt;
  if (!done() && !((skip(' ') || skip('T')) && read_number(text, pos, 2, hour))) return std::nullopt;
  if (!done() && !(skip(':') && read_number(text, pos, 2, minute))) return std::nullopt;
  if (!done() && !(skip(':') && read_number(text, pos, 2, second))) return std::nullopt;
  if (skip('.')) {
    // Digits past the sixth are dropped: Spark keeps microseconds.
    unsigned digits = 0;
    for (; !done() && is_digit(text[pos]); ++pos, ++digits) {
      if (digits < 6) micros = micros * 10 + static_cast<unsigned>(text[pos] - '0');
    }
    for (; digits < 6; ++digits) micros *= 10;
  }
  std::int64_t zone_seconds = 0;
  if (!done()) {
    auto offset = zone_offset_seconds(trim_blanks_and_controls(text.substr(pos)));
    if (!offset) return std::nullopt;
    zone_seconds = *offset;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  const std::int64_t seconds = static_cast<std::int64_t>(hour) * 3600 + minute * 60 + second - zone_seconds;
  return timestamp{days_from_civil(year, month, day) * micros_per_day + seconds * micros_per_second + micros};
}

void check_timestamp_format(std::string_view pattern) {
  // The ISO 8601 layouts: every text they describe is one parse_timestamp reads.
  static const std::regex iso_layouts(
      "yyyy-MM?-dd?(( |'T')HH?(:mm?(:ss?(\\.S{1,9}|\\[\\.S{1,9}\\])?"
      "( ?(X{1,3}|x{1,3}|Z{1,3}|'Z')| ?\\[ ?(X{1,3}|x{1,3}|Z{1,3}|'Z')\\])?)?)?)?");
  if (std::regex_match(pattern.begin(), pattern.end(), iso_layouts)) return;
  throw error("option 'timestampFormat' '" + std::string(pattern) +
              "' is not supported: libflow reads ISO 8601 timestamps (yyyy-M-d[( |T)H:m:s[.fraction][zone]], "
              "e.g. yyyy-MM-dd HH:mm:ss or yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]), whatever the option says; remove the "
              "option, or read the column as a string and convert it in map_batches");
}

std::string format_timestamp(timestamp t) {
  std::int64_t days = t.micros / micros_per_day;
  std::int64_t rest = t.micros % micros_per_day;
  if (rest < 0) {
    rest += micros_per_day;
    --days;
  }
  civil_date date = civil_from_days(days);
  auto seconds_of_day = rest / micros_per_second;
  auto fraction = static_cast<unsigned>(rest % micros_per_second);
  std::array<char, 48> buf{};
  int n = std::snprintf(buf.data(), buf.size(), "%04lld-%02u-%02u %02u:%02u:%02u",
                        static_cast<long long>(date.year), date.month, date.day,
                        static_cast<unsigned>(seconds_of_day / 3600),
                        static_cast<unsigned>(seconds_of_day / 60 % 60),
                        static_cast<unsigned>(seconds_of_day % 60));
  std::string out(buf.data(), static_cast<std::size_t>(n));
  if (fraction != 0) {
    std::snprintf(buf.data(), buf.size(), ".%06u", fraction);
    std::string digits(buf.data());
    // Spark prints the fraction without trailing zeros.
    while (digits.back() == '0') digits.pop_back();
    out += digits;
  }
  return out;
}

std::int64_t parse_duration_micros(std::string_view text) {
  auto fail = [&](std::string_view why) -> error {
    return error("invalid duration '" + std::string(text) + "': " + std::string(why));
  };
  struct unit_spelling {
    std::string_view text;
    std::int64_t micros;
  };
  static constexpr std::int64_t minute = 60 * micros_per_second;
  static constexpr std::int64_t hour = 60 * minute;
  static constexpr std::int64_t week = 7 * micros_per_day;
  static constexpr std::array<unit_spelling, 28> units{{
      {"us", 1},          {"micros", 1},         {"microsecond", 1},       {"microseconds", 1},
      {"ms", 1000},       {"millis", 1000},      {"millisecond", 1000},    {"milliseconds", 1000},
      {"s", micros_per_second}, {"sec", micros_per_second}, {"secs", micros_per_second},
      {"second", micros_per_second}, {"seconds", micros_per_second},
      {"m", minute},      {"min", minute},       {"mins", minute},         {"minute", minute},
      {"minutes", minute},
      {"h", hour},        {"hr", hour},          {"hour", hour},           {"hours", hour},
      {"d", micros_per_day}, {"day", micros_per_day}, {"days", micros_per_day},
      {"w", week},        {"week", week},        {"weeks", week},
  }};

  std::string_view rest = trim(text);
  if (rest.size() > 8 && iequals(rest.substr(0, 8), "interval") && (rest[8] == ' ' || rest[8] == '\t')) {
    rest = trim(rest.substr(9));
  }
  // One or more "<amount> <unit>" parts, as in Spark's "1 hour 30 minutes".
  std::int64_t total = 0;
  do {
    std::int64_t amount = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), amount);
    if (ec == std::errc::result_out_of_range) throw fail("too large");
    if (ec != std::errc()) throw fail("expected e.g. '10 minutes'");
    if (amount < 0) throw fail("must be positive, e.g. '10 minutes'");
    rest = trim(rest.substr(static_cast<std::size_t>(ptr - rest.data())));
    std::size_t unit_length = 0;
    while (unit_length < rest.size() && is_letter(rest[unit_length])) ++unit_length;
    std::string_view unit = rest.substr(0, unit_length);
    rest = trim(rest.substr(unit_length));
    const unit_spelling* match = nullptr;
    for (const auto& u : units) {
      if (iequals(unit, u.text)) match = &u;
    }
    if (match == nullptr) throw fail("expected e.g. '10 minutes'");
    if (amount > (std::numeric_limits<std::int64_t>::max() - total) / match->micros) throw fail("too large");
    total += amount * match->micros;
  } while (!rest.empty());
  if (total <= 0) throw fail("must be positive, e.g. '10 minutes'");
  return total;
}

}  // namespace flow
