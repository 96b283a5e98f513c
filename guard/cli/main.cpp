// oomguard: the command-line front of the guard. Subcommands live in
// *_command.cpp and register themselves (command_registry.hpp).
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "command_registry.hpp"
#include "oomguard/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"oomguard: predict and guard the device memory of a fine-tuning run"};
  app.set_version_flag("--version", "oomguard 0.1.0");
  oomguard::cli::attach_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const oomguard::config_error& e) {
    std::cerr << "oomguard: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "oomguard: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
