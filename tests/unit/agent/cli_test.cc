// The edgeline binary's command line conventions: --help and -h on every command and subcommand
// print that command's help on stdout and exit 0 without reading the configuration or the queue;
// --version and `version` print the version; unknown options and arguments exit 2 with a message
// on stderr; `help --man` is a man page. Runs the real binary (EDGELINE_BINARY) with a clean
// environment whose queue path does not exist, with a timeout.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace {

struct Result {
  int exit_code = -1;  // -1: killed at the timeout
  std::string out;
  std::string err;
};

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/edgeline-cli-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result Edgeline(const std::vector<std::string>& args) {
    const std::string out_path = dir_ / "out";
    const std::string err_path = dir_ / "err";
    // A queue path under a directory that does not exist: a command that opens the queue fails.
    const std::string queue_env = "EDGELINE_QUEUE_PATH=" + (dir_ / "missing" / "queue.db").string();
    std::vector<std::string> argv = {EDGELINE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_t pid = ::fork();
    if (pid == 0) {
      int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      char path_env[] = "PATH=/usr/bin:/bin";
      std::vector<char*> cenv = {path_env, const_cast<char*>(queue_env.c_str()), nullptr};
      ::execve(cargv[0], cargv.data(), cenv.data());
      ::_exit(127);
    }
    Result run;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        run.out = ReadAll(out_path);
        run.err = ReadAll(err_path);
        return run;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = ReadAll(out_path);
    run.err = ReadAll(err_path);
    return run;
  }

  std::filesystem::path dir_;
};

std::string Join(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Each command form, and the first line its help starts with.
const std::vector<std::pair<std::vector<std::string>, std::string>> kCommands = {
    {{"run"}, "usage: edgeline [--env-file FILE] run\n"},
    {{"status"}, "usage: edgeline [--env-file FILE] status "},
    {{"config"}, "usage: edgeline [--env-file FILE] config "},
    {{"dlq"}, "usage: edgeline [--env-file FILE] dlq list "},
    {{"dlq", "list"}, "usage: edgeline [--env-file FILE] dlq list "},
    {{"dlq", "replay"}, "usage: edgeline [--env-file FILE] dlq replay "},
    {{"dlq", "purge"}, "usage: edgeline [--env-file FILE] dlq purge "},
    {{"simulate"}, "usage: edgeline simulate "},
    {{"version"}, "usage: edgeline version\n"},
    {{"help"}, "usage: edgeline help "},
};

TEST_F(CliTest, HelpOnEveryCommandPrintsItsHelpAndExitsZero) {
  for (const auto& [words, first_line] : kCommands) {
    for (const char* flag : {"--help", "-h"}) {
      std::vector<std::string> args = words;
      args.push_back(flag);
      Result r = Edgeline(args);
      SCOPED_TRACE("edgeline " + Join(args));
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out.rfind(first_line, 0), 0u) << r.out;
      EXPECT_EQ(r.err, "");
    }
  }
}

TEST_F(CliTest, HelpWinsOverOtherOptionsAndDoesNotReadTheEnvFile) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--env-file", "/nonexistent/edgeline.env", "dlq", "list", "--help"},
                                             {"status", "--json", "-h"},
                                             {"dlq", "purge", "--all", "--help"},
                                             {"simulate", "--qos", "1", "--help"}}) {
    Result r = Edgeline(args);
    SCOPED_TRACE("edgeline " + Join(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("usage: edgeline ", 0), 0u) << r.out;
  }
}

TEST_F(CliTest, HelpCommandAndGlobalHelpNameACommand) {
  Result top = Edgeline({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_EQ(top.out.rfind("usage: edgeline [--env-file FILE] COMMAND [OPTIONS]\n", 0), 0u) << top.out;
  EXPECT_EQ(Edgeline({"-h"}).out, top.out);
  EXPECT_EQ(Edgeline({"help"}).out, top.out);
  EXPECT_EQ(Edgeline({}).out, top.out);

  Result list_help = Edgeline({"dlq", "list", "--help"});
  Result via_help = Edgeline({"help", "dlq", "list"});
  EXPECT_EQ(via_help.exit_code, 0);
  EXPECT_EQ(via_help.out, list_help.out);
  EXPECT_EQ(Edgeline({"--help", "dlq", "list"}).out, list_help.out);

  Result unknown = Edgeline({"help", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'nosuch'"), std::string::npos) << unknown.err;
}

TEST_F(CliTest, VersionBothWays) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{"--version"}, {"version"}}) {
    Result r = Edgeline(args);
    SCOPED_TRACE("edgeline " + Join(args));
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "edgeline 0.1.0\n");
    EXPECT_EQ(r.err, "");
  }
}

TEST_F(CliTest, UnknownOptionsAndArgumentsExitTwoWithAMessageOnStderr) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--bogus"}, "edgeline: unknown option '--bogus'"},
           {{"nosuch"}, "edgeline: unknown command 'nosuch'"},
           {{"run", "--bogus"}, "edgeline run: unknown option '--bogus'"},
           {{"run", "extra"}, "edgeline run: unexpected argument 'extra'"},
           {{"status", "--bogus"}, "edgeline status: unknown option '--bogus'"},
           {{"status", "--watch", "soon"}, "edgeline status: --watch takes a number of seconds"},
           {{"config", "--yaml"}, "edgeline config: unknown option '--yaml'"},
           {{"config", "--json=yes"}, "edgeline config: --json takes no value"},
           {{"dlq"}, "edgeline dlq: give a command"},
           {{"dlq", "show"}, "edgeline dlq: unknown command 'show'"},
           {{"dlq", "list", "--bogus"}, "edgeline dlq list: unknown option '--bogus'"},
           {{"dlq", "list", "--sink"}, "edgeline dlq list: --sink needs a value"},
           {{"dlq", "replay", "--all"}, "edgeline dlq replay: unknown option '--all'"},
           {{"dlq", "purge"}, "edgeline dlq purge: give --sink S, or --all"},
           {{"simulate", "--bogus"}, "edgeline simulate: unknown argument '--bogus'"},
           {{"version", "--bogus"}, "edgeline version: unknown option '--bogus'"},
           {{"help", "--bogus"}, "edgeline help: unknown option '--bogus'"},
           {{"--env-file"}, "edgeline: --env-file needs a value"},
       }) {
    Result r = Edgeline(c.args);
    SCOPED_TRACE("edgeline " + Join(c.args));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err.rfind(c.message, 0), 0u) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(CliTest, OptionsStillReachTheCommand) {
  // The queue does not exist: dlq list and status get past option parsing and fail to open it.
  Result list = Edgeline({"dlq", "list", "--sink=influx", "--limit", "5", "--json"});
  EXPECT_EQ(list.exit_code, 1) << list.err;
  EXPECT_NE(list.err.find("edgeline dlq:"), std::string::npos) << list.err;
  Result status = Edgeline({"status", "--json"});
  EXPECT_EQ(status.exit_code, 1) << status.err;
  Result markdown = Edgeline({"config", "--markdown"});
  EXPECT_EQ(markdown.exit_code, 0);
  EXPECT_EQ(markdown.out.rfind("# edgeline configuration\n", 0), 0u);
  Result example = Edgeline({"config", "--env-example"});
  EXPECT_EQ(example.exit_code, 0);
  EXPECT_NE(example.out.find("\n#EDGELINE_QUEUE_PATH="), std::string::npos);
}

TEST_F(CliTest, ManPageHasEveryCommandAndVariable) {
  Result r = Edgeline({"help", "--man"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find(".TH EDGELINE 1 \"\" \"edgeline 0.1.0\""), r.out.find(".TH "));
  for (const char* section : {".SH NAME\n", ".SH SYNOPSIS\n", ".SH DESCRIPTION\n", ".SH COMMANDS\n",
                              ".SH ENVIRONMENT\n", ".SH \"EXIT STATUS\"\n", ".SH FILES\n"}) {
    EXPECT_NE(r.out.find(section), std::string::npos) << section;
  }
  for (const char* command :
       {"run", "status", "config", "dlq list", "dlq replay", "dlq purge", "simulate", "version", "help"}) {
    EXPECT_NE(r.out.find(std::string(".SS ") + command + "\n"), std::string::npos) << command;
  }
  // Every variable `config --env-example` lists has an entry.
  Result example = Edgeline({"config", "--env-example"});
  std::istringstream lines(example.out);
  int variables = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("#EDGELINE_", 0) != 0) continue;
    ++variables;
    std::string name = line.substr(1, line.find('=') - 1);
    std::string roff_name;
    for (char ch : name) roff_name += ch == '-' ? std::string("\\-") : std::string(1, ch);
    EXPECT_NE(r.out.find(".TP\n.B " + roff_name + "\n"), std::string::npos) << name;
  }
  EXPECT_GT(variables, 50);
  // No raw hyphen is left in text for roff to hyphenate as a dash, and no line starts with a
  // stray control character.
  std::istringstream man(r.out);
  for (std::string line; std::getline(man, line);) {
    if (line.rfind(".\\\"", 0) == 0) continue;  // comments
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '-') {
        EXPECT_TRUE(i > 0 && line[i - 1] == '\\') << line;
        break;
      }
    }
    EXPECT_FALSE(line.rfind("'", 0) == 0) << line;
  }
}

}  // namespace
