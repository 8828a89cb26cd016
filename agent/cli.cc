#include "agent/cli.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/daemon.h"
#include "agent/status_report.h"
#include "config/config.h"
#include "config/config_man.h"
#include "storage/queue.h"
#include "tools/simulator.h"

namespace edgeline {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kVersion = EDGELINE_VERSION;  // the project() VERSION in CMakeLists.txt

constexpr const char* kUsage = R"(usage: edgeline [--env-file FILE] COMMAND [OPTIONS]

Commands:
  run                     run the agent (MQTT -> durable queue -> InfluxDB)
  status [--json] [--watch [SECONDS]]
                          per-sink backlog, lag, last status and error; works with the
                          agent stopped. Exit 0 healthy, 3 degraded.
  config [--json|--markdown|--env-example]
                          effective configuration (secrets masked); lists every problem
                          and exits 2 if the configuration is invalid
  dlq list [--sink S] [--limit N] [--json]
                          dead-lettered payloads and lines with their reasons
  dlq replay [--sink S]   send rejected entries again, once the cause is fixed (the
                          running agent picks them up)
  dlq purge (--sink S | --all)
                          delete dead letters
  simulate [OPTIONS]      the seed's emergency generators on MQTT (simulate --help)
  version                 print the version
  help [COMMAND] [--man]  this text, a command's help, or the manual page (roff)

Global options:
  --env-file FILE         read EDGELINE_* variables from FILE (systemd EnvironmentFile
                          syntax) first; the environment overrides them
  -h, --help              this text; after a command, that command's help
  --version               print the version

Configuration comes from EDGELINE_* environment variables (see docs/CONFIGURATION.md).
`edgeline COMMAND --help` describes each command.
)";

// One command line form: its words ("dlq list"), its help text and the options it takes. The
// help texts share one format (a usage line, paragraphs, an indented option list), which
// config/config_man.cc turns into the manual page.
struct OptionSpec {
  std::string_view name;
  enum Arg { kNone, kRequired, kOptional } arg = kNone;  // kOptional: taken when not an option
};

struct CommandSpec {
  std::string_view words;
  std::string_view help;
  std::vector<OptionSpec> options;
};

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> commands = {
      {"run",
       R"(usage: edgeline [--env-file FILE] run

Runs the agent in the foreground: MQTT messages are stored in the durable queue
(EDGELINE_QUEUE_PATH) before the broker is acknowledged, then replicated to InfluxDB
(and to the downsampler and Kafka when configured) until SIGTERM or SIGINT. An invalid
configuration is reported on stderr, one line per problem, and the exit status is 2.
)",
       {}},
      {"status",
       R"(usage: edgeline [--env-file FILE] status [--json] [--watch [SECONDS]]

Per sink: state, backlog, lag, last status and last error, read from the queue file
(EDGELINE_QUEUE_PATH); works with the agent stopped. The exit status is 0 when healthy,
3 when degraded and 1 when the queue file cannot be read.

Options:
  --json              the same report as JSON
  --watch [SECONDS]   print it again every SECONDS (default 2), with backlog
                      sparklines, until interrupted
)",
       {{"--json"}, {"--watch", OptionSpec::kOptional}}},
      {"config",
       R"(usage: edgeline [--env-file FILE] config [--json | --markdown | --env-example]

Prints the effective value and source (env or default) of every EDGELINE_* variable,
secrets masked. An invalid configuration is listed on stderr, one line per problem, and
the exit status is 2.

Options:
  --json              the effective configuration as JSON
  --markdown          the reference of every variable (docs/CONFIGURATION.md)
  --env-example       an env file with every variable commented at its default
)",
       {{"--json"}, {"--markdown"}, {"--env-example"}}},
      {"dlq",
       R"(usage: edgeline [--env-file FILE] dlq list [--sink S] [--limit N] [--json]
       edgeline [--env-file FILE] dlq replay [--sink S]
       edgeline [--env-file FILE] dlq purge (--sink S | --all)

Dead letters: the payloads and lines a sink refused, with their reasons, kept in the
queue file. `edgeline dlq COMMAND --help` describes each command.
)",
       {}},
      {"dlq list",
       R"(usage: edgeline [--env-file FILE] dlq list [--sink S] [--limit N] [--json]

Lists dead letters: id, sink, kind (rejected or partial), topic, reason and payload (cut
at 200 bytes in the text output).

Options:
  --sink S            only those of sink S
  --limit N           at most N entries (default 100)
  --json              as JSON, with whole payloads
)",
       {{"--sink", OptionSpec::kRequired}, {"--limit", OptionSpec::kRequired}, {"--json"}}},
      {"dlq replay",
       R"(usage: edgeline [--env-file FILE] dlq replay [--sink S]

Marks rejected dead letters to be sent again, once their cause is fixed; the running
agent sends them, and those rejected again come back with a new reason. Entries of which
only part of the payload was kept, and those of sinks that do not replay (Kafka), are
left as they are.

Options:
  --sink S            only those of sink S (default: every sink)
)",
       {{"--sink", OptionSpec::kRequired}}},
      {"dlq purge",
       R"(usage: edgeline [--env-file FILE] dlq purge (--sink S | --all)

Deletes dead letters.

Options:
  --sink S            those of sink S
  --all               every dead letter
)",
       {{"--sink", OptionSpec::kRequired}, {"--all"}}},
      // Options are checked by ParseSimulatorArgs (tools/simulator.cc).
      {"simulate", kSimulatorUsage, {}},
      {"version",
       R"(usage: edgeline version
       edgeline --version

Prints the version.
)",
       {}},
      {"help",
       R"(usage: edgeline help [COMMAND] [--man]

Prints the list of commands, or the help of COMMAND (the same as
`edgeline COMMAND --help`).

Options:
  --man               the manual page edgeline(1) in roff, from these help texts
                      and the configuration table
)",
       {{"--man"}}},
  };
  return commands;
}

const CommandSpec* FindCommand(std::string_view words) {
  for (const CommandSpec& c : Commands()) {
    if (c.words == words) return &c;
  }
  return nullptr;
}

bool IsHelpFlag(std::string_view a) { return a == "-h" || a == "--help"; }

// A command's options by name ("" for those without a value), in the order given.
using Options = std::map<std::string, std::string>;

// Checks `args` against the command's options: `--opt value` and `--opt=value` for options with
// a value, no positional arguments. On a problem prints it and the usage on stderr and returns
// false.
bool ParseOptions(const CommandSpec& command, const std::vector<std::string>& args, Options* out) {
  auto usage_error = [&](const std::string& problem) {
    std::fprintf(stderr, "edgeline %s: %s\n\n%s", std::string(command.words).c_str(), problem.c_str(),
                 std::string(command.help).c_str());
    return false;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& o : command.options) {
      if (o.name == name) spec = &o;
    }
    if (spec == nullptr) {
      return usage_error((name.rfind('-', 0) == 0 ? "unknown option '" : "unexpected argument '") + name + "'");
    }
    if (spec->arg == OptionSpec::kNone && has_value) return usage_error(name + " takes no value");
    if (spec->arg == OptionSpec::kRequired && !has_value) {
      if (i + 1 >= args.size()) return usage_error(name + " needs a value");
      value = args[++i];
    }
    if (spec->arg == OptionSpec::kOptional && !has_value && i + 1 < args.size() && args[i + 1].rfind('-', 0) != 0) {
      value = args[++i];
    }
    (*out)[name] = value;
  }
  return true;
}

bool Has(const Options& options, const std::string& name) { return options.count(name) != 0; }

std::string ValueOr(const Options& options, const std::string& name, const std::string& def) {
  auto it = options.find(name);
  return it == options.end() || it->second.empty() ? def : it->second;
}

std::string ManPage() {
  ManPageInput input;
  input.version = std::string(kVersion);
  input.overview = kUsage;
  for (const CommandSpec& c : Commands()) {
    if (c.words != "dlq") input.commands.emplace_back(c.help);  // "dlq" only lists its three forms
  }
  return RenderManPage(input);
}

struct Args {
  std::string env_file;
  std::string command;
  std::vector<std::string> rest;
};

Result<std::map<std::string, std::string>> LoadEnv(const Args& args) {
  std::map<std::string, std::string> env;
  if (!args.env_file.empty()) {
    ASSIGN_OR_RETURN(env, ReadEnvFile(args.env_file));
  }
  for (const auto& [k, v] : EnvironmentVariables()) env[k] = v;
  return env;
}

void PrintProblems(const std::vector<ConfigProblem>& problems) {
  std::fprintf(stderr, "edgeline: invalid configuration (%zu problem%s):\n", problems.size(),
               problems.size() == 1 ? "" : "s");
  for (const auto& p : problems) std::fprintf(stderr, "  %s: %s\n", p.variable.c_str(), p.message.c_str());
}

int CmdRun(const std::map<std::string, std::string>& env) {
  ConfigParseResult parsed = ParseConfig(env);
  if (!parsed.ok()) {
    PrintProblems(parsed.problems);
    return kExitUsage;
  }
  return RunDaemon(parsed.config);
}

int CmdConfig(const std::map<std::string, std::string>& env, const Options& options) {
  if (Has(options, "--markdown")) {
    std::cout << RenderConfigurationMarkdown();
    return kExitOk;
  }
  if (Has(options, "--env-example")) {
    std::cout << RenderEnvExample();
    return kExitOk;
  }
  ConfigParseResult parsed = ParseConfig(env);
  std::cout << RenderEffectiveConfig(env, Has(options, "--json"));
  if (!parsed.ok()) {
    PrintProblems(parsed.problems);
    return kExitUsage;
  }
  return kExitOk;
}

// The queue path is all `status` and `dlq` need; they work even if other settings are invalid.
QueueOpenOptions ReadOnlyQueueOptions(const std::map<std::string, std::string>& env) {
  QueueOpenOptions options;
  auto it = env.find("EDGELINE_QUEUE_PATH");
  if (it != env.end() && !it->second.empty()) options.config.path = it->second;
  options.read_only = true;
  return options;
}

int CmdStatus(const std::map<std::string, std::string>& env, const Options& flags) {
  const bool json = Has(flags, "--json");
  const bool watch = Has(flags, "--watch");
  double interval = 2;
  try {
    size_t used = 0;
    const std::string text = ValueOr(flags, "--watch", "2");
    interval = std::stod(text, &used);
    if (used != text.size() || !(interval > 0 && interval <= 86400)) throw std::invalid_argument(text);
  } catch (...) {
    std::fprintf(stderr, "edgeline status: --watch takes a number of seconds, more than 0 (got '%s')\n",
                 ValueOr(flags, "--watch", "").c_str());
    return kExitUsage;
  }
  const QueueOpenOptions options = ReadOnlyQueueOptions(env);
  // The bound this environment configures, for when no agent has recorded the one it applies.
  StatusReportOptions report_options;
  if (ConfigParseResult parsed = ParseConfig(env); parsed.ok()) {
    report_options.max_bytes = parsed.config.queue.max_bytes;
    report_options.full_policy = parsed.config.queue.full_policy;
  }
  std::map<std::string, std::vector<int64_t>> backlog;  // --watch: pending points per refresh
  constexpr size_t kHistory = 40;                       // fits 80 columns with its label
  while (true) {
    auto queue = OpenSqliteQueue(options);
    if (!queue.ok()) {
      std::fprintf(stderr, "edgeline status: %s (has the agent run with EDGELINE_QUEUE_PATH=%s?)\n",
                   queue.status().ToString().c_str(), options.config.path.c_str());
      return kExitRuntime;
    }
    auto report = BuildStatusReport(queue->get(), options.config.path, SystemClock::Instance(), report_options);
    if (!report.ok()) {
      std::fprintf(stderr, "edgeline status: %s\n", report.status().ToString().c_str());
      return kExitRuntime;
    }
    if (watch && !json && ::isatty(STDOUT_FILENO)) std::cout << "\033[H\033[2J";
    for (const auto& s : (*report)["sinks"]) {
      auto& h = backlog[s["name"].get<std::string>()];
      h.push_back(s["pending_points"].get<int64_t>());
      if (h.size() > kHistory) h.erase(h.begin());
    }
    std::cout << (json ? report->dump(2) + "\n" : RenderStatusText(*report, watch ? &backlog : nullptr));
    std::cout.flush();
    if (!watch) return (*report)["healthy"].get<bool>() ? kStatusHealthy : kStatusDegraded;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(interval * 1000)));
  }
}

int CmdSimulate(const std::map<std::string, std::string>& env, const std::vector<std::string>& rest) {
  auto options = ParseSimulatorArgs(rest, env);
  if (!options.ok()) {
    std::fprintf(stderr, "edgeline simulate: %s\n\n%s", options.status().message().c_str(), kSimulatorUsage);
    return kExitUsage;
  }
  // Signals are taken by a waiter thread; blocked before Paho starts its threads so they
  // inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::stop_source stop;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    stop.request_stop();
  });
  const int rc = RunSimulator(*options, stop.get_token());
  if (!stop.stop_requested()) pthread_kill(waiter.native_handle(), SIGTERM);  // wake the waiter
  waiter.join();
  return rc;
}

// `dlq replay` and `dlq purge` write a flag or delete rows; SQLite's own locking lets them do so
// while the agent runs. The agent's sinks pick marked entries up within a second or so.
int CmdDlqChange(const std::map<std::string, std::string>& env, const std::string& action, const Options& flags) {
  const std::string sink = ValueOr(flags, "--sink", "");
  if (action == "purge" && sink.empty() && !Has(flags, "--all")) {
    std::fprintf(stderr, "edgeline dlq purge: give --sink S, or --all to delete every dead letter\n");
    return kExitUsage;
  }
  QueueOpenOptions options = ReadOnlyQueueOptions(env);
  options.read_only = false;
  if (::access(options.config.path.c_str(), F_OK) != 0) {
    std::fprintf(stderr, "edgeline dlq: no queue file at %s\n", options.config.path.c_str());
    return kExitRuntime;
  }
  auto queue = OpenSqliteQueue(options);
  if (!queue.ok()) {
    std::fprintf(stderr, "edgeline dlq: %s\n", queue.status().ToString().c_str());
    return kExitRuntime;
  }
  const std::string whose = sink.empty() ? "every sink" : "sink " + sink;
  if (action == "replay") {
    auto marks = (*queue)->RequestReplay(sink);
    if (!marks.ok()) {
      std::fprintf(stderr, "edgeline dlq replay: %s\n", marks.status().ToString().c_str());
      return kExitRuntime;
    }
    std::printf(
        "%lld dead letters of %s marked for replay; the running agent sends them again "
        "(rejected ones come back with a new reason)\n",
        static_cast<long long>(marks->marked), whose.c_str());
    if (marks->unreplayable > 0) {
      std::printf(
          "%lld left as they are: only part of their payload was kept, or their sink (Kafka) does not "
          "replay\n",
          static_cast<long long>(marks->unreplayable));
    }
    return kExitOk;
  }
  auto n = (*queue)->PurgeDeadLetters(sink);
  if (!n.ok()) {
    std::fprintf(stderr, "edgeline dlq purge: %s\n", n.status().ToString().c_str());
    return kExitRuntime;
  }
  std::printf("%lld dead letters of %s deleted\n", static_cast<long long>(*n), whose.c_str());
  return kExitOk;
}

int CmdDlqList(const std::map<std::string, std::string>& env, const Options& flags) {
  int64_t limit = 100;
  try {
    limit = std::stoll(ValueOr(flags, "--limit", "100"));
  } catch (...) {
    std::fprintf(stderr, "edgeline dlq: --limit needs a number\n");
    return kExitUsage;
  }
  auto queue = OpenSqliteQueue(ReadOnlyQueueOptions(env));
  if (!queue.ok()) {
    std::fprintf(stderr, "edgeline dlq: %s\n", queue.status().ToString().c_str());
    return kExitRuntime;
  }
  auto entries = (*queue)->DeadLetters(ValueOr(flags, "--sink", ""), limit);
  if (!entries.ok()) {
    std::fprintf(stderr, "edgeline dlq: %s\n", entries.status().ToString().c_str());
    return kExitRuntime;
  }
  if (Has(flags, "--json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : *entries) {
      out.push_back(
          {{"id", d.id},
           {"sink", d.sink},
           {"kind", d.kind == DeadLetterKind::kPartial ? "partial" : "rejected"},
           {"reason", d.reason},
           {"topic", d.topic},
           {"payload", d.payload},
           {"created_ns", d.created_ns}});
    }
    // Payloads are text as received; bytes that are not UTF-8 are shown as U+FFFD.
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  for (const auto& d : *entries) {
    std::string payload = d.payload.size() > 200 ? d.payload.substr(0, 200) + "..." : d.payload;
    std::cout << d.id << "\t" << d.sink << "\t" << (d.kind == DeadLetterKind::kPartial ? "partial" : "rejected") << "\t"
              << d.topic << "\t" << d.reason << "\n\t" << payload << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunCli(int argc, char** argv) {
  Args args;
  bool help = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--env-file") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "edgeline: --env-file needs a value\n\n%s", kUsage);
        return kExitUsage;
      }
      args.env_file = argv[++i];
    } else if (a.rfind("--env-file=", 0) == 0) {
      args.env_file = a.substr(11);
    } else if (IsHelpFlag(a)) {
      help = true;  // `edgeline --help dlq list` is `edgeline help dlq list`
    } else if (a == "--version") {
      std::cout << "edgeline " << kVersion << "\n";
      return kExitOk;
    } else if (a.rfind('-', 0) == 0) {
      std::fprintf(stderr, "edgeline: unknown option '%s'\n\n%s", a.c_str(), kUsage);
      return kExitUsage;
    } else {
      break;
    }
  }
  if (help) {
    args.command = "help";
  } else {
    args.command = i < argc ? argv[i++] : "help";
  }
  for (; i < argc; ++i) args.rest.emplace_back(argv[i]);

  // `dlq` takes a second word; the command's help and options are those of the pair.
  std::string words = args.command;
  if (args.command == "dlq" && !args.rest.empty() && !IsHelpFlag(args.rest[0])) {
    if (args.rest[0] != "list" && args.rest[0] != "replay" && args.rest[0] != "purge") {
      std::fprintf(stderr, "edgeline dlq: unknown command '%s'\n\n%s", args.rest[0].c_str(),
                   std::string(FindCommand("dlq")->help).c_str());
      return kExitUsage;
    }
    words += " " + args.rest[0];
    args.rest.erase(args.rest.begin());
  }
  const CommandSpec* command = FindCommand(words);
  if (command == nullptr) {
    std::fprintf(stderr, "edgeline: unknown command '%s'\n\n%s", args.command.c_str(), kUsage);
    return kExitUsage;
  }
  for (const auto& a : args.rest) {
    if (IsHelpFlag(a)) {
      std::cout << command->help;
      return kExitOk;
    }
  }

  if (words == "help") {
    // help [COMMAND WORDS...] [--man]
    std::string topic;
    bool man = false;
    for (const auto& a : args.rest) {
      if (a == "--man") {
        man = true;
      } else if (a.rfind('-', 0) == 0) {
        std::fprintf(stderr, "edgeline help: unknown option '%s'\n\n%s", a.c_str(), std::string(command->help).c_str());
        return kExitUsage;
      } else {
        topic += (topic.empty() ? "" : " ") + a;
      }
    }
    if (man) {
      std::cout << ManPage();
      return kExitOk;
    }
    if (topic.empty()) {
      std::cout << kUsage;
      return kExitOk;
    }
    const CommandSpec* about = FindCommand(topic);
    if (about == nullptr) {
      std::fprintf(stderr, "edgeline help: unknown command '%s'\n\n%s", topic.c_str(), kUsage);
      return kExitUsage;
    }
    std::cout << about->help;
    return kExitOk;
  }
  if (words == "dlq") {  // without list, replay or purge
    std::fprintf(stderr, "edgeline dlq: give a command\n\n%s", std::string(command->help).c_str());
    return kExitUsage;
  }
  Options options;
  // simulate checks its own options (ParseSimulatorArgs).
  if (words != "simulate" && !ParseOptions(*command, args.rest, &options)) return kExitUsage;
  if (words == "version") {
    std::cout << "edgeline " << kVersion << "\n";
    return kExitOk;
  }

  auto env = LoadEnv(args);
  if (!env.ok()) {
    std::fprintf(stderr, "edgeline: %s\n", env.status().ToString().c_str());
    return kExitUsage;
  }
  if (words == "run") return CmdRun(*env);
  if (words == "config") return CmdConfig(*env, options);
  if (words == "status") return CmdStatus(*env, options);
  if (words == "dlq list") return CmdDlqList(*env, options);
  if (words == "dlq replay") return CmdDlqChange(*env, "replay", options);
  if (words == "dlq purge") return CmdDlqChange(*env, "purge", options);
  return CmdSimulate(*env, args.rest);  // the only command left
}

}  // namespace edgeline
