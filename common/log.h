// Minimal leveled logger: one line per event on stderr, journal-friendly (no colours),
// "2026-11-24T20:40:00.123Z level component: message". Thread-safe (one write per line).
// Never pass secrets: callers log names of settings, never their values.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace edgeline {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* out);
void LogLine(LogLevel level, std::string_view component, std::string_view message);

// Builds the message only when the level is enabled.
class LogMessage {
 public:
  LogMessage(LogLevel level, std::string_view component) : level_(level), component_(component) {}
  ~LogMessage() { LogLine(level_, component_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::string_view component_;
  std::ostringstream stream_;
};

// Lets the macro be a single expression (safe in an unbraced if/else).
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace edgeline

#define EDGELINE_LOG(level, component)                      \
  (::edgeline::LogLevel::level < ::edgeline::GetLogLevel()) \
      ? (void)0                                             \
      : ::edgeline::LogVoidify() & ::edgeline::LogMessage(::edgeline::LogLevel::level, component).stream()

#define LOG_DEBUG(c) EDGELINE_LOG(kDebug, c)
#define LOG_INFO(c) EDGELINE_LOG(kInfo, c)
#define LOG_WARN(c) EDGELINE_LOG(kWarn, c)
#define LOG_ERROR(c) EDGELINE_LOG(kError, c)
