// Command-line parsing with conventional exit codes. CLI11's own codes (106 for a bad option, 109
// for an extra argument, ...) mean nothing to a shell or to fsck(8): a usage error exits with the
// program's usage code (2 for most programs, 16 for fsck as fsck(8) defines it), and --help and
// --version with 0.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

namespace vlunfs::tools {

// Parses argv into `app`. Returns nullopt when the program should go on, or the code it should exit
// with now, after CLI11 printed the help, the version or the error (with "Run with --help").
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, int usage_code) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : usage_code;
  }
  return std::nullopt;
}

}  // namespace vlunfs::tools
