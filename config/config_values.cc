// The value syntaxes of config.h: durations, sizes and listen addresses.
#include "config/config.h"

#include <charconv>

#include "common/strings.h"

namespace edgeline {
namespace {

constexpr std::string_view kDurationHint = "use e.g. 500ms, 10s, 1m, 24h, 7d or 1h30m";
constexpr std::string_view kSizeHint = "use e.g. 512, 64KiB, 64MiB, 1GiB or 10MB";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads the leading decimal digits of `*text` into `*out`, consuming them. False on overflow
// or when there is no digit.
bool ConsumeNumber(std::string_view* text, int64_t* out) {
  size_t i = 0;
  int64_t v = 0;
  while (i < text->size() && IsDigit((*text)[i])) {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (*text)[i] - '0', &v)) {
      return false;
    }
    ++i;
  }
  if (i == 0) return false;
  text->remove_prefix(i);
  *out = v;
  return true;
}

Status BadDuration(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid duration \"" + std::string(text) + "\": " + std::string(why) + "; " +
                                 std::string(kDurationHint));
}

Status BadSize(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid size \"" + std::string(text) + "\": " + std::string(why) + "; " +
                                 std::string(kSizeHint));
}

}  // namespace

Result<int64_t> ParseDurationNs(std::string_view text) {
  std::string_view t = Trim(text);
  if (t.empty()) return BadDuration(text, "empty");
  if (t == "0") return int64_t{0};
  if (t[0] == '-') return BadDuration(text, "must not be negative");
  struct Unit {
    std::string_view suffix;
    int64_t ns;
  };
  static constexpr Unit kUnits[] = {{"ns", 1},
                                    {"us", 1'000},
                                    {"\xC2\xB5s", 1'000},  // µs
                                    {"ms", 1'000'000},
                                    {"s", 1'000'000'000},
                                    {"m", 60'000'000'000},
                                    {"h", 3'600'000'000'000},
                                    {"d", 86'400'000'000'000}};
  int64_t total = 0;
  while (!t.empty()) {
    int64_t count = 0;
    if (!IsDigit(t[0])) return BadDuration(text, "expected a number");
    if (!ConsumeNumber(&t, &count)) return BadDuration(text, "too large");
    size_t unit_len = 0;
    while (unit_len < t.size() && !IsDigit(t[unit_len])) ++unit_len;
    std::string_view suffix = t.substr(0, unit_len);
    t.remove_prefix(unit_len);
    if (suffix.empty()) return BadDuration(text, "missing unit");
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (u.suffix == suffix) unit = &u;
    }
    if (unit == nullptr) return BadDuration(text, "unknown unit \"" + std::string(suffix) + "\"");
    int64_t part = 0;
    if (__builtin_mul_overflow(count, unit->ns, &part) || __builtin_add_overflow(total, part, &total)) {
      return BadDuration(text, "too large");
    }
  }
  return total;
}

Result<std::pair<std::string, int>> ParseListenAddress(std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("expected host:port, e.g. 127.0.0.1:8087");
  }
  int port = 0;
  auto [ptr, ec] = std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  if (ec != std::errc() || ptr != listen.data() + listen.size() || port < 0 || port > 65535) {
    return Status::InvalidArgument("port must be 0..65535");
  }
  std::string_view host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(std::string(host), port);
}

Result<int64_t> ParseSizeBytes(std::string_view text) {
  std::string_view t = Trim(text);
  if (t.empty()) return BadSize(text, "empty");
  if (t[0] == '-') return BadSize(text, "must not be negative");
  int64_t count = 0;
  if (!IsDigit(t[0])) return BadSize(text, "expected a number");
  if (!ConsumeNumber(&t, &count)) return BadSize(text, "too large");
  std::string unit = Lower(Trim(t));
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {{"", 1},
                                                                    {"b", 1},
                                                                    {"kb", 1000},
                                                                    {"mb", 1000 * 1000},
                                                                    {"gb", 1000 * 1000 * 1000},
                                                                    {"tb", 1000LL * 1000 * 1000 * 1000},
                                                                    {"kib", 1LL << 10},
                                                                    {"mib", 1LL << 20},
                                                                    {"gib", 1LL << 30},
                                                                    {"tib", 1LL << 40}};
  for (auto [suffix, factor] : kUnits) {
    if (unit != suffix) continue;
    int64_t bytes = 0;
    if (__builtin_mul_overflow(count, factor, &bytes)) return BadSize(text, "too large");
    return bytes;
  }
  return BadSize(text, "unknown unit \"" + std::string(Trim(t)) + "\"");
}

}  // namespace edgeline
