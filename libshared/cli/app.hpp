// Command-line handling shared by every tool: Boost.Program_options plus the common flags
// (--help, --version, --config, --log-level, --log-all-ranks, --progress, and for tools that
// write, -o/--output and --overwrite; for tools with metrics, --metrics).
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bellows::cli {

namespace po = boost::program_options;

struct Invocation;

struct ToolSpec {
  std::string name;         // executable name, e.g. "shard-inspect"
  std::string summary;      // one line: what the tool does
  std::string usage;        // e.g. "shard-inspect [options] PATH..."
  std::string description;  // a paragraph for --help
  std::vector<std::string> examples;
  std::vector<po::options_description> groups;  // the tool's own options, grouped
  po::positional_options_description positional;
  bool writes_output = false;  // adds -o/--output and --overwrite
  bool output_required = true;  // with writes_output: -o must be given (else the tool checks)
  bool has_metrics = false;    // adds --metrics FILE
  std::function<int(Invocation&)> run;
};

// The parsed command line (and config file), handed to the tool's run function.
struct Invocation {
  std::string tool;
  po::variables_map vm;
  std::vector<std::string> argv;  // as given, for provenance
  std::string config_file;        // "" when none

  bool has(const std::string& key) const { return vm.count(key) > 0 && !vm[key].defaulted(); }
  template <class T>
  T get(const std::string& key) const { return vm[key].as<T>(); }
  // Every option's effective value (defaults included), for report.json and file provenance.
  nlohmann::json effective_options() const;
};

// Parse result before the tool runs.
struct Parsed {
  enum class Action { run, help, version } action = Action::run;
  Invocation inv;
};

// Parses argv, then the --config INI file (command line wins). Throws UsageError with one line
// naming the flag, or the config file and line, and what is wrong.
Parsed parse(const ToolSpec& spec, int argc, const char* const* argv);

// The full --help text: usage, description, option groups, examples, exit codes.
std::string help_text(const ToolSpec& spec);

// All options of a tool, common ones included (for help, parsing and the schema tests).
po::options_description all_options(const ToolSpec& spec);

// "key = value" INI: returns pairs in file order; [section] headers other than the tool's own
// name are skipped (one file can configure several tools). Throws UsageError naming file:line.
std::vector<std::pair<std::string, std::string>> read_ini(const std::string& path, const std::string& tool);

}  // namespace bellows::cli
