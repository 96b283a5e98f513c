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
    // --help and --version exit 0; every bad option or value exits 2, as a
    // bad configuration does (CLI11's own codes, 105 and such, say nothing
    // to a script).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const oomguard::config_error& e) {
    std::cerr << "oomguard: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "oomguard: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
