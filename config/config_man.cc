// RenderManPage: edgeline(1) in roff. The help texts are converted line by line (usage lines,
// paragraphs, "term  description" lists, headings ending in ':'); the ENVIRONMENT section lists
// every row of the configuration table, as docs/CONFIGURATION.md does.
#include "config/config_man.h"

#include <cctype>
#include <limits>
#include <string_view>

#include "config/config_table.h"

namespace edgeline {

using config_internal::Group;
using config_internal::Variable;
using config_internal::Variables;
using config_internal::VarType;

namespace {

// Backslashes and hyphens escaped (\- is the hyphen-minus of an option name); `code` spans bold.
std::string Escape(std::string_view text) {
  std::string out;
  bool code = false;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (c == '`') {
      out += code ? "\\fR" : "\\fB";
      code = !code;
    } else {
      out += c;
    }
  }
  if (code) out += "\\fR";
  return out;
}

// One input line of text; a leading '.' or '\'' would be read as a request, so it gets "\&".
std::string TextLine(std::string_view text) {
  std::string line = Escape(text);
  if (!line.empty() && (line[0] == '.' || line[0] == '\'')) line = "\\&" + line;
  return line + "\n";
}

// "--watch [SECONDS]": names and literals bold, placeholders (upper case only) italic, the rest
// (brackets, '|', spaces) roman.
std::string Term(std::string_view term) {
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  std::string out;
  size_t i = 0;
  while (i < term.size()) {
    if (!word_char(term[i])) {
      out += Escape(term.substr(i, 1));
      ++i;
      continue;
    }
    size_t j = i;
    bool upper = false;
    bool lower = false;
    for (; j < term.size() && word_char(term[j]); ++j) {
      upper = upper || std::isupper(static_cast<unsigned char>(term[j]));
      lower = lower || std::islower(static_cast<unsigned char>(term[j]));
    }
    out += (upper && !lower ? "\\fI" : "\\fB") + Escape(term.substr(i, j - i)) + "\\fR";
    i = j;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

struct Help {
  std::vector<std::string> usage;  // "edgeline [--env-file FILE] status [--json] ..."
  std::vector<std::string_view> body;
};

// The leading "usage: " line and the indented "edgeline ..." lines after it; the rest is body.
Help SplitHelp(std::string_view text) {
  Help help;
  bool in_usage = true;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (in_usage && help.usage.empty() && line.rfind("usage: ", 0) == 0) {
      help.usage.emplace_back(Trim(line.substr(7)));
      continue;
    }
    if (in_usage && !help.usage.empty() && !line.empty() && line[0] == ' ' && Trim(line).rfind("edgeline", 0) == 0) {
      help.usage.emplace_back(Trim(line));
      continue;
    }
    in_usage = false;
    help.body.push_back(line);
  }
  return help;
}

// Paragraphs (blank-line separated), lists ("  term  description", continuation lines indented
// further) and headings (unindented, ending in ':'; subsections when `sections`).
std::string BodyToRoff(const std::vector<std::string_view>& lines, bool sections) {
  std::string out;
  bool in_list = false;
  bool new_paragraph = true;
  for (std::string_view line : lines) {
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    std::string_view text = Trim(line);
    if (text.empty()) {
      new_paragraph = true;
      continue;
    }
    if (indent == 0 && text.back() == ':') {
      out += sections ? ".SS " + Escape(text.substr(0, text.size() - 1)) + "\n" : ".PP\n" + TextLine(text);
      in_list = false;
      new_paragraph = false;
      continue;
    }
    if (indent == 2) {
      size_t gap = text.find("  ");
      std::string_view term = text.substr(0, gap);
      std::string_view description = gap == std::string_view::npos ? std::string_view() : Trim(text.substr(gap));
      out += ".TP\n" + Term(term) + "\n";
      if (!description.empty()) out += TextLine(description);
      in_list = true;
      new_paragraph = false;
      continue;
    }
    if (indent > 2 && in_list) {
      out += TextLine(text);
      continue;
    }
    if (new_paragraph || in_list) out += ".PP\n";
    in_list = false;
    new_paragraph = false;
    out += TextLine(text);
  }
  return out;
}

// The command's words in its first usage line: "edgeline [--env-file FILE] dlq list [--sink S]"
// gives "dlq list".
std::string CommandWords(std::string_view usage) {
  std::string words;
  size_t pos = 0;
  while (pos < usage.size()) {
    size_t end = usage.find(' ', pos);
    if (end == std::string_view::npos) end = usage.size();
    std::string_view word = usage.substr(pos, end - pos);
    pos = end + 1;
    if (word == "edgeline" || word.empty()) continue;
    if (word == "[--env-file") {  // the global option's "FILE]" follows
      pos = usage.find(']', pos);
      pos = pos == std::string_view::npos ? usage.size() : pos + 2;
      continue;
    }
    if (word[0] == '[' || word[0] == '(' || word[0] == '-' || std::isupper(static_cast<unsigned char>(word[0]))) break;
    words += (words.empty() ? "" : " ") + std::string(word);
  }
  return words;
}

constexpr const char* kEnvironmentIntro = R"(.PP
Every setting is an `EDGELINE_*` environment variable. `--env-file FILE` reads them from a
file in systemd `EnvironmentFile=` syntax first (`KEY=VALUE` lines, `#` comments); a
variable set in the environment overrides the file. Every problem is reported at once, and
unknown `EDGELINE_*` names are problems too.
.PP
Values: a bool is `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`; a duration is a number
with `ns`, `us`, `ms`, `s`, `m`, `h` or `d` (e.g. `500ms`, `1h30m`); a size is bytes, or a
number with `KiB`, `MiB`, `GiB`, `TiB` (1024-based) or `KB`, `MB`, `GB`, `TB`; a list is
comma-separated. Secrets are never printed or logged.
)";

constexpr const char* kTail = R"(.SH "EXIT STATUS"
.TP
.B 0
success; for `status`, every sink is healthy
.TP
.B 1
runtime error, e.g. the queue file cannot be opened
.TP
.B 2
usage error or invalid configuration
.TP
.B 3
`status`: a sink is degraded
.SH FILES
.TP
.I /etc/edgeline/edgeline.env
the configuration of the systemd service `edgeline.service` (its `EnvironmentFile=`);
mode 0600, as it holds secrets
.TP
.I /var/lib/edgeline/queue.db
the default `EDGELINE_QUEUE_PATH`: the durable queue, dead letters and sink status
.SH "SEE ALSO"
.BR systemctl (1),
.BR journalctl (1),
.BR systemd.exec (5)
)";

// Roff source lines from text written with `code` spans (the constant sections above).
std::string Lines(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    out += line.empty() || line[0] == '.' ? std::string(line) + "\n" : TextLine(line);
  }
  return out;
}

}  // namespace

std::string RenderManPage(const ManPageInput& input) {
  std::string out =
      ".\\\" Generated by `edgeline help --man` from the command line's help texts and the\n"
      ".\\\" configuration table (config/config_table.cc).\n"
      ".TH EDGELINE 1 \"\" \"edgeline " +
      input.version +
      "\" \"User Commands\"\n"
      ".SH NAME\n"
      "edgeline \\- edge agent: MQTT to a durable SQLite queue to InfluxDB\n";
  Help overview = SplitHelp(input.overview);
  out += ".SH SYNOPSIS\n";
  for (size_t i = 0; i < overview.usage.size(); ++i) out += (i ? ".br\n" : "") + Term(overview.usage[i]) + "\n";
  out += ".SH DESCRIPTION\n";
  out += Lines(
      "edgeline takes JSON or line-protocol telemetry from an MQTT broker, writes each message to a\n"
      "durable SQLite queue before the broker is acknowledged, and replicates the queue to InfluxDB\n"
      "(v1, v2 or v3 write APIs); optionally also to a local downsampler and to Kafka.\n");
  out += BodyToRoff(overview.body, /*sections=*/true);
  out += ".SH COMMANDS\n";
  for (const std::string& text : input.commands) {
    Help help = SplitHelp(text);
    if (help.usage.empty()) continue;
    out += ".SS " + Escape(CommandWords(help.usage[0])) + "\n";
    for (size_t i = 0; i < help.usage.size(); ++i) out += (i ? ".br\n" : "") + Term(help.usage[i]) + "\n";
    out += BodyToRoff(help.body, /*sections=*/false);
  }
  out += ".SH ENVIRONMENT\n";
  out += Lines(kEnvironmentIntro);
  for (Group group : {Group::kQueue, Group::kMqtt, Group::kMapping, Group::kInflux, Group::kDownsample, Group::kKafka,
                      Group::kHttp, Group::kGeneral}) {
    out += ".SS \"" + Escape(config_internal::GroupTitle(group)) + "\"\n";
    for (const Variable& var : Variables()) {
      if (var.group != group) continue;
      std::string_view def = var.default_doc.empty() ? var.default_text : var.default_doc;
      std::string facts =
          std::string(TypeName(var)) + ", default " + (def.empty() ? "empty" : "`" + std::string(def) + "`");
      if (std::string allowed = AllowedText(var); !allowed.empty()) {
        facts += std::string("; ") + (var.type == VarType::kEnum ? "one of " : "") + allowed;
      }
      out += ".TP\n.B " + Escape(var.name) + "\n" + TextLine("(" + facts + ")") + ".br\n" + TextLine(var.doc);
    }
  }
  out += Lines(kTail);
  return out;
}

}  // namespace edgeline
