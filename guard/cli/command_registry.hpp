// Subcommands of the `oomguard` executable register themselves: each
// *_command.cpp defines one static RegisterCommand, so adding `run` or
// `report` means adding a file to guard/cli/CMakeLists.txt and nothing else.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace oomguard::cli {

// Adds the subcommand, its options and its callback to the main app.
using CommandSetup = std::function<void(CLI::App& app)>;

struct CommandEntry {
  std::string name;
  CommandSetup setup;
};

// Registered commands, sorted by name so that --help does not depend on the
// order the linker ran static initialisers in.
std::vector<CommandEntry>& registered_commands();

struct RegisterCommand {
  RegisterCommand(std::string name, CommandSetup setup);
};

// Build the app with every registered subcommand; one must be chosen.
void attach_commands(CLI::App& app);

}  // namespace oomguard::cli
