#include "replicator/session/agent_command_line.h"

#include <sys/wait.h>
#include <fmt/format.h>

#include <sstream>

namespace imgcast::replicator {

std::string agent_shell_command(const AgentProgram& program, const std::string& control_address,
                                int rank, const std::string& host) {
  std::string command = "exec " + shell_quote(program.path);
  for (const auto& arg : program.args) {
    command += " " + shell_quote(arg);
  }
  command += " agent --control " + shell_quote(control_address) + " --rank " +
             std::to_string(rank) + " --host " + shell_quote(host);
  return command;
}

std::vector<std::string> agent_step_argv(const std::vector<std::string>& step,
                                         const AgentProgram& program,
                                         const std::string& control_address,
                                         const std::vector<std::string>& hosts) {
  std::vector<std::string> argv = step;
  argv.push_back(program.path);
  argv.insert(argv.end(), program.args.begin(), program.args.end());
  std::string all_hosts;
  for (const auto& host : hosts) {
    all_hosts += (all_hosts.empty() ? "" : ",") + host;
  }
  for (const char* word : {"agent", "--control"}) {
    argv.emplace_back(word);
  }
  argv.push_back(control_address);
  for (const char* word : {"--rank", "auto", "--host", "auto", "--hosts"}) {
    argv.emplace_back(word);
  }
  argv.push_back(all_hosts);
  return argv;
}

std::vector<std::string> rsh_argv(const std::string& rsh, const std::string& host,
                                  const std::string& command) {
  if (rsh == "local") {
    return {"/bin/sh", "-c", command};
  }
  std::vector<std::string> argv;
  std::istringstream words(rsh);
  for (std::string word; words >> word;) {
    argv.push_back(word);
  }
  argv.push_back(host);
  argv.push_back(command);
  return argv;
}

std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) {
    return fmt::format("exited with status {}", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return fmt::format("was killed by signal {}", WTERMSIG(status));
  }
  return "ended";
}

}  // namespace imgcast::replicator
