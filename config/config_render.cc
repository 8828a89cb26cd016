// The `edgeline config` outputs (text table, JSON, env example), docs/CONFIGURATION.md and
// MaskSecrets: every way config.h turns the table and a Config back into text.
#include "config/config.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "config/config_table.h"

namespace edgeline {

using config_internal::Group;
using config_internal::ParsedValue;
using config_internal::Variable;
using config_internal::Variables;
using config_internal::VarType;

namespace {

constexpr std::string_view kMask = "********";

// Control characters would break the aligned table (a quoted env-file value may hold newlines).
std::string EscapeForTable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeMarkdownCell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string RenderEffectiveConfig(const std::map<std::string, std::string>& env, bool json) {
  ConfigParseResult parsed = ParseConfig(env);
  struct Row {
    std::string_view name;
    std::string value;
    bool from_env;
    bool secret;
  };
  std::vector<Row> rows;
  for (const Variable& var : Variables()) {
    auto it = env.find(std::string(var.name));
    bool from_env = it != env.end();
    std::string value = config_internal::Show(var, parsed.config);
    if (var.secret) {
      value = value.empty() ? "" : std::string(kMask);
    } else if (from_env) {
      // An invalid value was not applied; show what was given rather than the default.
      ParsedValue ignored;
      std::string error;
      if (!config_internal::ParseValue(var, it->second, &ignored, &error)) value = it->second;
    }
    rows.push_back({var.name, std::move(value), from_env, var.secret});
  }

  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& row : rows) {
      out.push_back({{"name", row.name},
                     {"value", row.value},
                     {"source", row.from_env ? "env" : "default"},
                     {"secret", row.secret}});
    }
    return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }

  constexpr size_t kMaxValueWidth = 50;  // keeps typical rows within 100 columns
  size_t name_width = 8;
  size_t value_width = 5;
  for (Row& row : rows) {
    row.value = EscapeForTable(row.value);
    name_width = std::max(name_width, row.name.size());
    value_width = std::max(value_width, std::min(kMaxValueWidth, row.value.size()));
  }
  auto pad = [](std::string_view s, size_t width) {
    std::string out(s);
    if (out.size() < width) out.append(width - out.size(), ' ');
    return out;
  };
  std::string out = pad("VARIABLE", name_width) + "  " + pad("VALUE", value_width) + "  SOURCE\n";
  for (const Row& row : rows) {
    out += pad(row.name, name_width) + "  " + pad(row.value, value_width) + "  " + (row.from_env ? "env" : "default") +
           "\n";
  }
  return out;
}

std::string RenderConfigurationMarkdown() {
  std::string out =
      "# edgeline configuration\n"
      "\n"
      "<!-- Generated from the table in config/config_table.cc by `edgeline config --markdown`.\n"
      "     Do not edit by hand: config_test fails when this file is stale. -->\n"
      "\n"
      "edgeline is configured with `EDGELINE_*` environment variables. They can also be given in\n"
      "an env file (`--env-file PATH`) in systemd `EnvironmentFile=` syntax: `KEY=VALUE` lines,\n"
      "`#` or `;` comments, optional single or double quotes (double quotes understand `\\\"`,\n"
      "`\\\\` and `\\n`), and a backslash at the end of a line to continue it. A variable set in\n"
      "the environment overrides the same variable in the env file.\n"
      "\n"
      "Every problem is reported at once, naming the variable and what it expects; unknown\n"
      "`EDGELINE_*` names are problems too, so a typo cannot pass silently. `edgeline config`\n"
      "prints the effective value and source of every variable, with secrets shown as `********`.\n"
      "\n"
      "## Value syntax\n"
      "\n"
      "- **bool**: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case.\n"
      "- **duration**: a number with a unit, `ns`, `us`, `ms`, `s`, `m`, `h` or `d`, e.g.\n"
      "  `500ms`, `10s`, `24h`, `7d`; parts can be combined, e.g. `1h30m`. `0` alone means zero.\n"
      "- **size**: bytes, optionally with a unit: `KiB`, `MiB`, `GiB`, `TiB` (1024-based) or\n"
      "  `KB`, `MB`, `GB`, `TB` (1000-based); a `B` suffix is allowed. E.g. `512`, `64KiB`,\n"
      "  `10MB`.\n"
      "- **enum**: one of the listed values, in any case.\n"
      "- **list**: comma-separated; spaces around items and empty items are ignored.\n"
      "- **secret**: a string that is never printed or logged.\n"
      "\n"
      "When `EDGELINE_INFLUX_ENABLED` is true, `EDGELINE_INFLUX_API` decides what is required:\n"
      "v1 needs `EDGELINE_INFLUX_DB`; v2 needs `EDGELINE_INFLUX_ORG`, `EDGELINE_INFLUX_BUCKET`\n"
      "and `EDGELINE_INFLUX_TOKEN`; v3 needs `EDGELINE_INFLUX_DB` and `EDGELINE_INFLUX_TOKEN`.\n"
      "Minimum delays must not exceed their maximum (`EDGELINE_RETRY_MIN` and\n"
      "`EDGELINE_MQTT_RECONNECT_MIN`).\n"
      "\n"
      "Downsampling is on when any `EDGELINE_DOWNSAMPLE_*` variable is set (for the seed's task,\n"
      "`EDGELINE_DOWNSAMPLE_PRESET=seed` alone). The Kafka mirror is on when\n"
      "`EDGELINE_KAFKA_BROKERS` is set; any librdkafka producer property can be passed as\n"
      "`EDGELINE_KAFKA_PROP_<name>` with `.` written as `_` (e.g. `EDGELINE_KAFKA_PROP_LINGER_MS=20`\n"
      "sets `linger.ms`); their values are treated as secrets.\n";
  for (Group group : {Group::kQueue, Group::kMqtt, Group::kMapping, Group::kInflux, Group::kDownsample, Group::kKafka,
                      Group::kHttp, Group::kGeneral}) {
    out += "\n## " + std::string(config_internal::GroupTitle(group)) + "\n\n";
    out += "| Variable | Type | Default | Allowed | Description |\n";
    out += "|---|---|---|---|---|\n";
    for (const Variable& var : Variables()) {
      if (var.group != group) continue;
      std::string_view def = var.default_doc.empty() ? var.default_text : var.default_doc;
      std::string default_cell = def.empty() ? "*empty*" : "`" + std::string(def) + "`";
      out += "| `" + std::string(var.name) + "` | " + std::string(TypeName(var)) + " | " +
             EscapeMarkdownCell(default_cell) + " | " + EscapeMarkdownCell(AllowedText(var)) + " | " +
             EscapeMarkdownCell(var.doc) + " |\n";
    }
  }
  return out;
}

std::string RenderEnvExample() {
  std::string out =
      "# edgeline configuration (systemd EnvironmentFile). Uncomment and set what you need;\n"
      "# every variable is listed at its default. Full reference: docs/CONFIGURATION.md.\n"
      "# This file holds secrets (tokens, passwords): keep it mode 0600.\n";
  Config defaults;
  for (Group group : {Group::kQueue, Group::kMqtt, Group::kMapping, Group::kInflux, Group::kDownsample, Group::kKafka,
                      Group::kHttp, Group::kGeneral}) {
    out += "\n# ---- " + std::string(config_internal::GroupTitle(group)) + "\n";
    for (const Variable& var : Variables()) {
      if (var.group != group) continue;
      // Wrapped at about 96 columns, one comment line per chunk of words.
      std::string line = "#";
      for (std::string_view rest = var.doc; !rest.empty();) {
        size_t space = rest.find(' ');
        std::string_view word = rest.substr(0, space);
        if (line.size() + word.size() + 1 > 96) {
          out += line + "\n";
          line = "#";
        }
        line += " ";
        line += word;
        rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      }
      out += line + "\n";
      std::string value = var.default_doc.empty() ? config_internal::Show(var, defaults) : "";
      out += "#" + std::string(var.name) + "=" + value + "\n";
    }
  }
  return out;
}

std::string MaskSecrets(std::string_view text, const Config& config) {
  // Show() only reads; the table's accessor is non-const so one pointer type serves both ways.
  Config& readable = const_cast<Config&>(config);
  std::vector<std::string> secrets;
  for (const Variable& var : Variables()) {
    if (!var.secret) continue;
    std::string value = config_internal::Show(var, readable);
    if (!value.empty()) secrets.push_back(std::move(value));
  }
  // Pass-through Kafka properties may carry credentials (sasl.oauthbearer.config, ssl.key.password).
  for (const auto& [name, value] : config.kafka.properties) {
    if (value.size() >= 4) secrets.push_back(value);
  }
  // Longest first, so a secret containing another is masked whole.
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::string out(text);
  for (const std::string& secret : secrets) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), kMask);
      pos += kMask.size();
    }
  }
  return out;
}

namespace config_internal {

std::string_view TypeName(const Variable& var) {
  if (var.secret) return "secret";
  switch (var.type) {
    case VarType::kString: return "string";
    case VarType::kBool: return "bool";
    case VarType::kInt: return "int";
    case VarType::kDuration: return "duration";
    case VarType::kSize: return "size";
    case VarType::kEnum: return "enum";
    case VarType::kList: return "list";
  }
  return "?";
}

std::string AllowedText(const Variable& var) {
  auto show = [&](int64_t v) {
    if (var.type == VarType::kDuration) return config_internal::FormatDuration(v);
    if (var.type == VarType::kSize) return config_internal::FormatSize(v);
    return std::to_string(v);
  };
  switch (var.type) {
    case VarType::kString: return var.min >= 1 ? "non-empty" : "";
    case VarType::kList: return var.min >= 1 ? "at least one item" : "";
    case VarType::kBool: return "";
    case VarType::kInt:
    case VarType::kDuration:
    case VarType::kSize:
      if (var.max == std::numeric_limits<int64_t>::max()) return "at least " + show(var.min);
      return show(var.min) + " to " + show(var.max);
    case VarType::kEnum: {
      std::string out;
      for (std::string_view a : var.allowed) {
        if (!out.empty()) out += ", ";
        out += "`" + std::string(a) + "`";
      }
      return out;
    }
  }
  return "";
}

}  // namespace config_internal
}  // namespace edgeline
