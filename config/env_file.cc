#include "config/env_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/strings.h"

namespace edgeline {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsValidKey(std::string_view key) {
  if (key.empty() || IsDigit(key[0])) return false;
  return std::all_of(key.begin(), key.end(),
                     [](char c) { return c == '_' || IsDigit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

}  // namespace

std::map<std::string, std::string> EnvironmentVariables() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view kv(*entry);
    if (kv.rfind("EDGELINE_", 0) != 0) continue;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    out[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  return out;
}

Result<std::map<std::string, std::string>> ReadEnvFile(const std::string& path) {
  std::string s;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      int err = errno;
      std::string message = "cannot open env file " + path + ": " + std::strerror(err);
      return err == ENOENT ? Status::NotFound(message) : Status::IoError(message);
    }
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
    bool failed = std::ferror(f) != 0;
    int err = errno;
    std::fclose(f);
    if (failed) return Status::IoError("cannot read env file " + path + ": " + std::strerror(err));
  }

  std::map<std::string, std::string> out;
  size_t i = 0;
  int line = 1;
  // Errors carry file:line but never the line's text: it may hold a secret.
  auto error = [&](int at_line, std::string_view what) {
    return Status::InvalidArgument(path + ":" + std::to_string(at_line) + ": " + std::string(what));
  };
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
    if (i >= s.size()) break;
    if (s[i] == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (s[i] == '#' || s[i] == ';') {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    const int entry_line = line;
    size_t key_start = i;
    while (i < s.size() && s[i] != '=' && s[i] != '\n') ++i;
    if (i >= s.size() || s[i] != '=') return error(entry_line, "expected KEY=VALUE");
    std::string_view key = Trim(std::string_view(s).substr(key_start, i - key_start));
    if (key.rfind("export", 0) == 0 && key.size() > 6 && (key[6] == ' ' || key[6] == '\t')) {
      key = Trim(key.substr(6));
    }
    if (!IsValidKey(key)) return error(entry_line, "invalid variable name before '='");
    ++i;  // '='
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;

    std::string value;
    size_t keep = 0;  // length of `value` without trailing unquoted whitespace
    while (i < s.size() && s[i] != '\n') {
      char c = s[i];
      if (c == '\'') {
        size_t close = s.find('\'', i + 1);
        if (close == std::string::npos) return error(entry_line, "unterminated single quote");
        for (size_t j = i + 1; j < close; ++j) {
          if (s[j] == '\n') ++line;
          value += s[j];
        }
        keep = value.size();
        i = close + 1;
      } else if (c == '"') {
        ++i;
        bool closed = false;
        while (i < s.size()) {
          char d = s[i];
          if (d == '"') {
            closed = true;
            ++i;
            break;
          }
          if (d == '\\' && i + 1 < s.size()) {
            char e = s[i + 1];
            i += 2;
            if (e == '\n') {
              ++line;  // continuation inside quotes
            } else if (e == 'n') {
              value += '\n';
            } else if (e == '"' || e == '\\' || e == '$' || e == '`') {
              value += e;
            } else {
              value += '\\';
              value += e;
            }
            continue;
          }
          if (d == '\n') ++line;
          value += d;
          ++i;
        }
        if (!closed) return error(entry_line, "unterminated double quote");
        keep = value.size();
      } else if (c == '\\') {
        if (i + 1 < s.size() && s[i + 1] == '\n') {
          ++line;
          i += 2;
        } else if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') {
          ++line;
          i += 3;
        } else if (i + 1 < s.size()) {
          // As systemd does: an unquoted backslash makes the next character literal.
          value += s[i + 1];
          keep = value.size();
          i += 2;
        } else {
          ++i;
        }
      } else {
        value += c;
        if (c != ' ' && c != '\t' && c != '\r') keep = value.size();
        ++i;
      }
    }
    value.resize(keep);
    out[std::string(key)] = std::move(value);
  }
  return out;
}

}  // namespace edgeline
