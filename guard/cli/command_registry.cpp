#include "command_registry.hpp"

#include <algorithm>

namespace oomguard::cli {

std::vector<CommandEntry>& registered_commands() {
  static std::vector<CommandEntry> commands;  // function-local: safe from init-order issues
  return commands;
}

RegisterCommand::RegisterCommand(std::string name, CommandSetup setup) {
  registered_commands().push_back({std::move(name), std::move(setup)});
}

void attach_commands(CLI::App& app) {
  auto& commands = registered_commands();
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& c : commands) c.setup(app);
  app.require_subcommand(1);
}

}  // namespace oomguard::cli
