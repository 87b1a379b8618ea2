// The command line of the examples and of tools/feed_server: flags with a value (--name VALUE), switches
// (--name), command words (produce, consume), whole numbers in a range; --help and -h print the usage.
// Anything wrong on the command line throws usage_error, naming the flag and what it wants.
// Header-only and standard C++ only, so a tool can use it without linking libflow.
#pragma once

#include <climits>
#include <functional>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace flow::cli {

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class command_line {
 public:
  explicit command_line(std::string usage) : usage_(std::move(usage)) {}

  const std::string& usage() const { return usage_; }

  // --flag VALUE, given to take (which throws usage_error for a value it refuses).
  command_line& value(const std::string& flag, std::function<void(const std::string&)> take) {
    values_[flag] = std::move(take);
    return *this;
  }

  command_line& text(const std::string& flag, std::string& target) {
    return value(flag, [&target](const std::string& v) { target = v; });
  }

  // --flag N, a whole number in [min, max].
  template <class Int>
  command_line& number(const std::string& flag, Int& target, long long min, long long max = LLONG_MAX) {
    return value(flag, [&target, flag, min, max](const std::string& v) {
      target = static_cast<Int>(parse_number(flag, v, min, max));
    });
  }

  // --flag without a value: sets target.
  command_line& toggle(const std::string& flag, bool& target) {
    switches_[flag] = &target;
    return *this;
  }

  // A word without dashes that names what to do (e.g. produce or consume).
  command_line& command(std::vector<std::string> names, std::string& target) {
    for (auto& name : names) commands_[std::move(name)] = &target;
    return *this;
  }

  // Arguments starting with prefix belong to someone else (e.g. the session's --flow.* options); one
  // without "=" takes the next argument, unless that starts with "-", as its value ("--flow.secret-file F").
  command_line& pass_over(std::string prefix) {
    passed_over_.push_back(std::move(prefix));
    return *this;
  }

  // Parses argv into the targets. Returns false when --help or -h asked for the usage (printed to
  // stdout); throws usage_error for an unknown flag, a missing or bad value.
  bool parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (passed_over(arg)) {
        if (arg.find('=') == std::string::npos && i + 1 < argc && argv[i + 1][0] != '-') ++i;
        continue;
      }
      if (arg == "--help" || arg == "-h") {
        std::cout << usage_;
        return false;
      }
      if (auto s = switches_.find(arg); s != switches_.end()) {
        *s->second = true;
      } else if (auto c = commands_.find(arg); c != commands_.end()) {
        *c->second = arg;
      } else if (auto v = values_.find(arg); v != values_.end()) {
        if (i + 1 >= argc) throw usage_error("missing value after " + arg);
        v->second(argv[++i]);
      } else {
        throw usage_error(arg.rfind('-', 0) == 0 ? "unknown flag " + arg : "unexpected argument '" + arg + "'");
      }
    }
    return true;
  }

  static long long parse_number(const std::string& flag, const std::string& text, long long min, long long max) {
    long long n = 0;
    bool ok = false;
    try {
      std::size_t used = 0;
      n = std::stoll(text, &used);
      ok = used == text.size() && n >= min && n <= max;
    } catch (const std::exception&) {
    }
    if (ok) return n;
    std::string wanted = max != LLONG_MAX  ? "a whole number " + std::to_string(min) + ".." + std::to_string(max)
                         : min == 1       ? "a positive whole number"
                         : min == 0       ? "a non-negative whole number"
                                          : "a whole number from " + std::to_string(min);
    throw usage_error(flag + " needs " + wanted + ", got '" + text + "'");
  }

 private:
  bool passed_over(const std::string& arg) const {
    for (const auto& prefix : passed_over_)
      if (arg.rfind(prefix, 0) == 0) return true;
    return false;
  }

  std::string usage_;
  std::map<std::string, std::function<void(const std::string&)>> values_;
  std::map<std::string, bool*> switches_;
  std::map<std::string, std::string*> commands_;
  std::vector<std::string> passed_over_;
};

// main()'s frame for a program with this command line: parse it, run body, report. --help returns 0;
// a usage error prints "<program>: <message>" and the usage on stderr, any other error
// "<program>: <message>"; both return 1.
inline int run_main(const std::string& program, int argc, char** argv, const command_line& cli,
                    const std::function<int()>& body) {
  try {
    if (!cli.parse(argc, argv)) return 0;
    return body();
  } catch (const usage_error& e) {
    std::cerr << program << ": " << e.what() << "\n" << cli.usage();
    return 1;
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace flow::cli
