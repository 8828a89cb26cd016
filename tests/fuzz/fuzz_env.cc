// libFuzzer target for config/: env text -> ReadEnvFile and KEY=VALUE lines -> ParseConfig,
// RenderEffectiveConfig, MaskSecrets. Checked beyond "no crash, no throw":
//  - no output depends on the content of a secret (EDGELINE_*_TOKEN, *_PASSWORD,
//    EDGELINE_KAFKA_PROP_*): parsing again with every secret replaced by another value of the
//    same length must give the very same problems and `edgeline config` output, so not even a
//    part of a secret can leak; MaskSecrets removes each secret from a text;
//  - ReadEnvFile errors name file:line and a fixed reason, never the line's text;
//  - every problem names a variable and says something;
//  - a valid config survives Show() -> ParseConfig() unchanged (what `edgeline config` prints
//    can be pasted back), and durations/sizes survive Format -> Parse.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/config_table.h"
#include "tests/fuzz/fuzz_check.h"

namespace edgeline {
namespace {

using fuzz::Show;

bool IsSecret(const std::string& name) {
  if (name.rfind("EDGELINE_KAFKA_PROP_", 0) == 0) return true;
  const config_internal::Variable* var = config_internal::FindVariable(name);
  return var != nullptr && var->secret;
}

// Another value of the same length (same emptiness, so the same validation outcome).
std::string OtherValue(const std::string& v) {
  const char fill = v.find_first_not_of('Q') == std::string::npos ? 'R' : 'Q';
  return std::string(v.size(), fill);
}

std::string ProblemsText(const ConfigParseResult& r) {
  std::string out;
  for (const auto& p : r.problems) out += p.variable + ": " + p.message + "\n";
  return out;
}

std::map<std::string, std::string> SplitLines(std::string_view text) {
  std::map<std::string, std::string> env;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return env;
}

// The bytes as an env file, without touching the disk: a memfd opened by path.
std::string WriteEnvFile(std::string_view text) {
  static const int fd = memfd_create("fuzz_env", 0);
  FUZZ_CHECK(fd >= 0, "memfd_create failed");
  FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate failed");
  FUZZ_CHECK(pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()), "pwrite failed");
  return "/proc/self/fd/" + std::to_string(fd);
}

void CheckEnvFileError(const Status& st, const std::string& path, std::string_view text) {
  static const char* const kReasons[] = {"expected KEY=VALUE", "invalid variable name before '='",
                                         "unterminated single quote", "unterminated double quote"};
  const std::string& m = st.message();
  FUZZ_CHECK(m.rfind(path + ":", 0) == 0, "env file error without file: " + Show(m));
  size_t colon = m.find(": ", path.size() + 1);
  FUZZ_CHECK(colon != std::string::npos, "env file error without line: " + Show(m));
  const std::string line_no = m.substr(path.size() + 1, colon - path.size() - 1);
  FUZZ_CHECK(!line_no.empty() && line_no.find_first_not_of("0123456789") == std::string::npos,
             "env file error line number: " + Show(m));
  const std::string reason = m.substr(colon + 2);
  bool known = false;
  for (const char* r : kReasons) known = known || reason == r;
  FUZZ_CHECK(known, "env file error reason is not a fixed text (may echo the line): " + Show(m) + " for " + Show(text));
}

void CheckConfig(const std::map<std::string, std::string>& env) {
  const ConfigParseResult r = ParseConfig(env);
  for (const auto& p : r.problems) {
    FUZZ_CHECK(!p.variable.empty() && !p.message.empty(), "problem without variable or message");
  }

  // Secrets: the same env with each secret's content changed must give identical output.
  std::map<std::string, std::string> other = env;
  bool any_secret = false;
  for (auto& [name, value] : other) {
    if (!IsSecret(name)) continue;
    value = OtherValue(value);
    any_secret = true;
  }
  const std::string rendered = RenderEffectiveConfig(env, false);
  const std::string rendered_json = RenderEffectiveConfig(env, true);
  if (any_secret) {
    const ConfigParseResult r2 = ParseConfig(other);
    FUZZ_CHECK(ProblemsText(r) == ProblemsText(r2),
               "a problem message depends on a secret's value:\n" + Show(ProblemsText(r), 2000));
    FUZZ_CHECK(rendered == RenderEffectiveConfig(other, false), "`edgeline config` shows a secret's value");
    FUZZ_CHECK(rendered_json == RenderEffectiveConfig(other, true), "`edgeline config --json` shows a secret");
  }
  // MaskSecrets knows the secrets the config holds: the table's secret rows and the accepted
  // pass-through properties (an invalid EDGELINE_KAFKA_PROP_ name is a problem, never used).
  std::vector<std::string> secrets;
  for (const auto& [name, value] : env) {
    const config_internal::Variable* var = config_internal::FindVariable(name);
    if (var != nullptr && var->secret) secrets.push_back(value);
  }
  for (const auto& [property, value] : r.config.kafka.properties) {
    if (value.size() >= 4) secrets.push_back(value);  // shorter ones would mask everything
  }
  for (const std::string& value : secrets) {
    if (value.empty() || value.find('*') != std::string::npos) continue;
    const std::string masked = MaskSecrets("<" + value + ">", r.config);
    FUZZ_CHECK(masked.find(value) == std::string::npos, "MaskSecrets left a secret in " + Show(masked));
  }

  if (!r.ok()) return;
  // What `edgeline config` shows re-parses to the same config.
  Config shown_from = r.config;
  std::map<std::string, std::string> shown;
  for (const auto& [name, value] : env) {
    const config_internal::Variable* var = config_internal::FindVariable(name);
    if (var != nullptr) {
      shown[name] = config_internal::Show(*var, shown_from);
    } else if (name.rfind("EDGELINE_", 0) == 0) {
      shown[name] = value;  // pass-through properties
    }
  }
  const ConfigParseResult again = ParseConfig(shown);
  FUZZ_CHECK(again.ok(), "shown config does not re-parse: " + Show(ProblemsText(again), 2000));
  FUZZ_CHECK(again.config == r.config, "shown config re-parses differently");
}

void CheckValueSyntax(const std::string& value) {
  if (Result<int64_t> d = ParseDurationNs(value); d.ok()) {
    FUZZ_CHECK(*d >= 0, "negative duration from " + Show(value));
    Result<int64_t> again = ParseDurationNs(config_internal::FormatDuration(*d));
    FUZZ_CHECK(again.ok() && *again == *d, "duration does not round-trip: " + Show(value));
  }
  if (Result<int64_t> s = ParseSizeBytes(value); s.ok()) {
    FUZZ_CHECK(*s >= 0, "negative size from " + Show(value));
    Result<int64_t> again = ParseSizeBytes(config_internal::FormatSize(*s));
    FUZZ_CHECK(again.ok() && *again == *s, "size does not round-trip: " + Show(value));
  }
  if (auto a = ParseListenAddress(value); a.ok()) {
    FUZZ_CHECK(a->second >= 0 && a->second <= 65535, "port out of range from " + Show(value));
  }
}

}  // namespace
}  // namespace edgeline

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgeline;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::map<std::string, std::string> env = SplitLines(text);
  CheckConfig(env);
  for (const auto& [name, value] : env) CheckValueSyntax(value);

  const std::string path = WriteEnvFile(text);
  Result<std::map<std::string, std::string>> from_file = ReadEnvFile(path);
  if (!from_file.ok()) {
    CheckEnvFileError(from_file.status(), path, text);
  } else if (*from_file != env) {
    CheckConfig(*from_file);
  }
  return 0;
}
