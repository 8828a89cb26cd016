#include "common/time_format.h"

#include <limits>

namespace edgeline {
namespace {

bool ReadDigits(std::string_view s, size_t* pos, size_t n, int64_t* out) {
  if (*pos + n > s.size()) return false;
  int64_t v = 0;
  for (size_t k = 0; k < n; ++k) {
    char c = s[*pos + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

// RFC 3339: 2025-11-24T16:00:00.123456789Z or with +hh:mm / -hh:mm; 't'/'z'/' ' accepted.
std::optional<int64_t> ParseRfc3339Ns(std::string_view s) {
  size_t p = 0;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  auto expect = [&](char c) {
    if (p >= s.size() || s[p] != c) return false;
    ++p;
    return true;
  };
  if (!ReadDigits(s, &p, 4, &year) || !expect('-') || !ReadDigits(s, &p, 2, &month) || !expect('-') ||
      !ReadDigits(s, &p, 2, &day)) {
    return std::nullopt;
  }
  if (p >= s.size() || (s[p] != 'T' && s[p] != 't' && s[p] != ' ')) return std::nullopt;
  ++p;
  if (!ReadDigits(s, &p, 2, &hour) || !expect(':') || !ReadDigits(s, &p, 2, &minute) || !expect(':') ||
      !ReadDigits(s, &p, 2, &second)) {
    return std::nullopt;
  }
  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDaysInMonth[month - 1] || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return std::nullopt;
  int64_t frac_ns = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    size_t digits = 0;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      if (digits < 9) frac_ns = frac_ns * 10 + (s[p] - '0');
      ++digits, ++p;
    }
    if (digits == 0) return std::nullopt;
    for (size_t k = digits; k < 9; ++k) frac_ns *= 10;
  }
  int64_t offset_s = 0;
  if (expect('Z') || expect('z')) {
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    const int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int64_t oh, om;
    if (!ReadDigits(s, &p, 2, &oh) || !expect(':') || !ReadDigits(s, &p, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (p != s.size()) return std::nullopt;
  const int64_t secs = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
                       hour * 3600 + minute * 60 + second - offset_s;
  // int64 ns covers 1677-09-21 .. 2262-04-11.
  if (secs < std::numeric_limits<int64_t>::min() / 1'000'000'000 + 1 ||
      secs > std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1) {
    return std::nullopt;
  }
  return secs * 1'000'000'000 + frac_ns;
}

}  // namespace edgeline
