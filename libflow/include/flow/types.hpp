// Logical types, scalar values and the timestamp/duration helpers shared by every layer.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace flow {

// string_list is Spark's array<string>: a list of non-null strings; the list itself may be null.
enum class type_id : std::uint8_t { boolean, int64, float64, string, timestamp, window, string_list };

std::string_view type_name(type_id t);
// Accepts Spark's spellings too ("long", "double", "bigint", "timestamp", ...).
std::optional<type_id> parse_type_name(std::string_view name);
bool is_numeric(type_id t);

// Microseconds since 1970-01-01 00:00:00 UTC.
struct timestamp {
  std::int64_t micros = 0;
  friend bool operator==(timestamp, timestamp) = default;
  friend auto operator<=>(timestamp, timestamp) = default;
};

// A time window [start, end), shown as {start, end}.
struct window_value {
  timestamp start;
  timestamp end;
  friend bool operator==(const window_value&, const window_value&) = default;
  friend auto operator<=>(const window_value&, const window_value&) = default;
};

struct null_value {
  friend bool operator==(null_value, null_value) = default;
  friend auto operator<=>(null_value, null_value) = default;
};

// A single, possibly null, value: literals, row access in tests, SQL results. A string_list value is a
// std::vector<std::string>.
using value =
    std::variant<null_value, bool, std::int64_t, double, std::string, timestamp, window_value, std::vector<std::string>>;

inline bool is_null(const value& v) { return std::holds_alternative<null_value>(v); }
std::optional<type_id> type_of(const value& v);  // nullopt for null
std::string to_string(const value& v);            // as show() prints it; lists as Spark's "[a, b, c]"
// Java's Double.toString, which Spark's show() and cast to string use: plain for 1e-3 <= |v| < 1e7
// ("0.001", "17850.0"), else "d.dddE[-]n" ("1.0E7", "1.0E-5"); "NaN", "Infinity", "-0.0".
std::string format_double(double v);

// Thrown for every user-facing error: bad plans, bad options, bad input in FAILFAST mode.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An error that running the same input again gives again (a malformed record in FAILFAST mode): the
// runtime fails the query at once instead of restarting it.
class permanent_error : public error {
 public:
  using error::error;
};

// The what() of the exception failure holds, or "unknown exception" for one that is no std::exception.
std::string exception_message(const std::exception_ptr& failure);
bool is_permanent(const std::exception_ptr& failure);

// Spark's text-to-timestamp forms (casts, CSV and JSON): yyyy[-m[m][-d[d][( |T)h[h][:m[m][:s[s][.fraction]
// [zone]]]]]] between blanks, with digits past the sixth of the fraction dropped. The zone is Z, UTC, GMT or
// UT, an offset (+01:00, +0100, +01, -05:30:15), or UTC+01:00 and the like; the time is converted to UTC,
// libflow's session time zone, in which text without a zone is read. Time-only text and region zone ids
// (Europe/Paris), which Spark also reads, are not. Returns nullopt when malformed.
std::optional<timestamp> parse_timestamp(std::string_view text);
// For the readers' timestampFormat option: returns if every text that the Java datetime pattern describes
// is one parse_timestamp reads (yyyy-MM-dd HH:mm:ss, yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX], ...), else throws
// flow::error saying what is read.
void check_timestamp_format(std::string_view pattern);
// "YYYY-MM-DD HH:MM:SS", plus ".ffffff" only when there are sub-second digits.
std::string format_timestamp(timestamp t);
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d);

// "1 hour", "10 minutes", "30s", "500 ms", "2 days" -> microseconds. Throws flow::error when malformed.
std::int64_t parse_duration_micros(std::string_view text);

}  // namespace flow
