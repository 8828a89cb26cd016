#include "agent/cli.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "agent/daemon.h"
#include "agent/status_report.h"
#include "config/config.h"
#include "storage/queue.h"
#include "tools/simulator.h"

namespace edgeline {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

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
  help                    this text

Configuration comes from EDGELINE_* environment variables (see docs/CONFIGURATION.md);
--env-file reads a systemd EnvironmentFile first, the environment overrides it.
)";

struct Args {
  std::string env_file;
  std::string command;
  std::vector<std::string> rest;
};

bool HasFlag(const std::vector<std::string>& rest, const std::string& flag) {
  for (const auto& a : rest) {
    if (a == flag) return true;
  }
  return false;
}

std::string FlagValue(const std::vector<std::string>& rest, const std::string& flag, const std::string& def) {
  for (size_t i = 0; i + 1 < rest.size(); ++i) {
    if (rest[i] == flag) return rest[i + 1];
  }
  return def;
}

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

int CmdConfig(const std::map<std::string, std::string>& env, const std::vector<std::string>& rest) {
  if (HasFlag(rest, "--markdown")) {
    std::cout << RenderConfigurationMarkdown();
    return kExitOk;
  }
  if (HasFlag(rest, "--env-example")) {
    std::cout << RenderEnvExample();
    return kExitOk;
  }
  ConfigParseResult parsed = ParseConfig(env);
  std::cout << RenderEffectiveConfig(env, HasFlag(rest, "--json"));
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

int CmdStatus(const std::map<std::string, std::string>& env, const std::vector<std::string>& rest) {
  const bool json = HasFlag(rest, "--json");
  const bool watch = HasFlag(rest, "--watch");
  double interval = 2;
  try {
    interval = std::stod(FlagValue(rest, "--watch", "2"));
  } catch (...) {
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

// `dlq replay` and `dlq purge` write a flag or delete rows; SQLite's own locking lets them do so
// while the agent runs. The agent's sinks pick marked entries up within a second or so.
int CmdSimulate(const std::map<std::string, std::string>& env, const std::vector<std::string>& rest) {
  if (HasFlag(rest, "--help")) {
    std::cout << kSimulatorUsage;
    return kExitOk;
  }
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

int CmdDlqChange(const std::map<std::string, std::string>& env, const std::vector<std::string>& rest) {
  const std::string& action = rest[0];
  const std::string sink = FlagValue(rest, "--sink", "");
  if (action == "purge" && sink.empty() && !HasFlag(rest, "--all")) {
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

int CmdDlq(const std::map<std::string, std::string>& env, const std::vector<std::string>& rest) {
  if (!rest.empty() && (rest[0] == "replay" || rest[0] == "purge")) return CmdDlqChange(env, rest);
  if (rest.empty() || rest[0] != "list") {
    std::fprintf(stderr,
                 "usage: edgeline dlq list [--sink S] [--limit N] [--json]\n"
                 "       edgeline dlq replay [--sink S]\n"
                 "       edgeline dlq purge (--sink S | --all)\n");
    return kExitUsage;
  }
  auto queue = OpenSqliteQueue(ReadOnlyQueueOptions(env));
  if (!queue.ok()) {
    std::fprintf(stderr, "edgeline dlq: %s\n", queue.status().ToString().c_str());
    return kExitRuntime;
  }
  int64_t limit = 100;
  try {
    limit = std::stoll(FlagValue(rest, "--limit", "100"));
  } catch (...) {
    std::fprintf(stderr, "edgeline dlq: --limit needs a number\n");
    return kExitUsage;
  }
  auto entries = (*queue)->DeadLetters(FlagValue(rest, "--sink", ""), limit);
  if (!entries.ok()) {
    std::fprintf(stderr, "edgeline dlq: %s\n", entries.status().ToString().c_str());
    return kExitRuntime;
  }
  if (HasFlag(rest, "--json")) {
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
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--env-file" && i + 1 < argc) {
      args.env_file = argv[++i];
    } else if (a.rfind("--env-file=", 0) == 0) {
      args.env_file = a.substr(11);
    } else if (a == "-h" || a == "--help") {
      args.command = "help";
    } else {
      break;
    }
  }
  if (args.command.empty()) args.command = i < argc ? argv[i++] : "help";
  for (; i < argc; ++i) args.rest.emplace_back(argv[i]);

  if (args.command == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  if (args.command == "version") {
    std::cout << "edgeline 0.1.0\n";
    return kExitOk;
  }
  auto env = LoadEnv(args);
  if (!env.ok()) {
    std::fprintf(stderr, "edgeline: %s\n", env.status().ToString().c_str());
    return kExitUsage;
  }
  if (args.command == "run") return CmdRun(*env);
  if (args.command == "config") return CmdConfig(*env, args.rest);
  if (args.command == "status") return CmdStatus(*env, args.rest);
  if (args.command == "dlq") return CmdDlq(*env, args.rest);
  if (args.command == "simulate") return CmdSimulate(*env, args.rest);
  std::fprintf(stderr, "edgeline: unknown command '%s'\n\n%s", args.command.c_str(), kUsage);
  return kExitUsage;
}

}  // namespace edgeline
