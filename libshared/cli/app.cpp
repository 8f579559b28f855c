#include "cli/app.hpp"

#include <fstream>
#include <typeinfo>
#include <sstream>

#include "core/error.hpp"
#include "log/log.hpp"
#include "log/progress.hpp"

namespace bellows::cli {
namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

po::options_description common_options(const ToolSpec& spec) {
  po::options_description common("Common options");
  const std::string config_help = "read options from an INI file (key = value; a [" +
                                  std::string(spec.name.empty() ? "tool" : spec.name) +
                                  "] section applies to this tool only); the command line wins";
  common.add_options()
      ("help,h", "show this help and exit")
      ("version", "show version, build and placement (one line per rank under MPI) and exit")
      ("config", po::value<std::string>()->value_name("FILE"), config_help.c_str())
      ("log-level", po::value<std::string>()->default_value("info")->value_name("LEVEL"),
       "trace|debug|info|warn|error")
      ("log-all-ranks", po::bool_switch(), "log from every rank (prefixed with the rank), not only rank 0")
      ("progress", po::value<std::string>()->default_value("auto")->value_name("MODE"),
       "auto (bar on a terminal, periodic lines in batch logs) | on (always the bar) | off");
  if (spec.writes_output) {
    common.add_options()
        ("output,o", po::value<std::string>()->value_name("PATH"), "where to write the result (required)")
        ("overwrite", po::bool_switch(), "replace an existing output (it is kept until the new one is complete)");
  }
  if (spec.has_metrics) {
    common.add_options()("metrics", po::value<std::string>()->value_name("FILE"),
                         "append metrics as JSON lines to FILE (rank 0)");
  }
  return common;
}

bool is_switch(const po::option_description& d) { return d.semantic()->max_tokens() == 0; }

// Boost converts "-1" to an unsigned type by wrapping it around; refuse it instead.
void refuse_negative_unsigned(const po::parsed_options& parsed, const po::variables_map& vm, const std::string& where) {
  for (const auto& opt : parsed.options) {
    if (opt.string_key.empty() || !vm.count(opt.string_key)) continue;
    const std::type_info& t = vm[opt.string_key].value().type();
    if (t != typeid(unsigned) && t != typeid(unsigned long) && t != typeid(unsigned long long)) continue;
    for (const auto& v : opt.value) {
      size_t first = v.find_first_not_of(" \t");
      if (first != std::string::npos && v[first] == '-')
        throw UsageError(where + "--" + opt.string_key + ": must not be negative, got '" + v + "'");
    }
  }
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

}  // namespace

po::options_description all_options(const ToolSpec& spec) {
  po::options_description all;
  for (const auto& g : spec.groups) all.add(g);
  all.add(common_options(spec));
  return all;
}

std::vector<std::pair<std::string, std::string>> read_ini(const std::string& path, const std::string& tool) {
  std::ifstream in(path);
  if (!in) throw UsageError("--config: cannot open '" + path + "'");
  std::vector<std::pair<std::string, std::string>> out;
  std::string line, section;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      if (t.back() != ']') throw UsageError(path + ":" + std::to_string(lineno) + ": malformed section header '" + t + "'");
      section = trim(t.substr(1, t.size() - 2));
      continue;
    }
    auto eq = t.find('=');
    if (eq == std::string::npos)
      throw UsageError(path + ":" + std::to_string(lineno) + ": expected 'key = value', got '" + t + "'");
    if (!section.empty() && section != tool) continue;
    std::string key = trim(t.substr(0, eq)), value = trim(t.substr(eq + 1));
    if (key.empty()) throw UsageError(path + ":" + std::to_string(lineno) + ": empty key");
    out.emplace_back(key, value);
    // Keep the line number for error messages about this key.
    out.back().first = key + "\x1f" + std::to_string(lineno);
  }
  return out;
}

Parsed parse(const ToolSpec& spec, int argc, const char* const* argv) {
  Parsed p;
  p.inv.tool = spec.name;
  for (int i = 0; i < argc; ++i) p.inv.argv.emplace_back(argv[i]);
  po::options_description all = all_options(spec);
  try {
    po::parsed_options parsed = po::command_line_parser(argc, argv).options(all).positional(spec.positional).run();
    po::store(parsed, p.inv.vm);
    refuse_negative_unsigned(parsed, p.inv.vm, "");
  } catch (const po::error& e) {
    throw UsageError(one_line(e.what()) + " (see --help)");
  }
  if (p.inv.vm.count("help")) {
    p.action = Parsed::Action::help;
    return p;
  }
  if (p.inv.vm.count("version")) {
    p.action = Parsed::Action::version;
    return p;
  }
  if (p.inv.vm.count("config")) {
    p.inv.config_file = p.inv.vm["config"].as<std::string>();
    std::vector<std::string> tokens;
    for (auto& [tagged, value] : read_ini(p.inv.config_file, spec.name)) {
      std::string key = tagged.substr(0, tagged.find('\x1f'));
      std::string where = p.inv.config_file + ":" + tagged.substr(tagged.find('\x1f') + 1);
      const po::option_description* d = all.find_nothrow(key, false);
      if (!d || key == "config" || key == "help" || key == "version")
        throw UsageError(where + ": unknown option '" + key + "' for " + spec.name);
      if (is_switch(*d)) {
        if (value == "true" || value == "yes" || value == "on" || value == "1") tokens.push_back("--" + key);
        else if (!(value == "false" || value == "no" || value == "off" || value == "0"))
          throw UsageError(where + ": '" + key + "' takes true or false, got '" + value + "'");
      } else {
        tokens.push_back("--" + key + "=" + value);
      }
    }
    try {
      // store() keeps values already present, so the command line overrides the file.
      po::parsed_options parsed = po::command_line_parser(tokens).options(all).run();
      po::store(parsed, p.inv.vm);
      refuse_negative_unsigned(parsed, p.inv.vm, p.inv.config_file + ": ");
    } catch (const po::error& e) {
      throw UsageError(p.inv.config_file + ": " + one_line(e.what()));
    }
  }
  try {
    po::notify(p.inv.vm);
  } catch (const po::error& e) {
    throw UsageError(one_line(e.what()) + " (see --help)");
  }
  // Values first, then what is missing: a wrong value is the more specific complaint.
  log::parse_level(p.inv.vm["log-level"].as<std::string>());
  log::parse_progress_mode(p.inv.vm["progress"].as<std::string>());
  if (spec.writes_output && spec.output_required && !p.inv.vm.count("output"))
    throw UsageError("missing required option '--output' (-o)");
  return p;
}

std::string help_text(const ToolSpec& spec) {
  std::ostringstream os;
  os << spec.name << " - " << spec.summary << "\n\n"
     << "Usage: " << spec.usage << "\n\n";
  if (!spec.description.empty()) os << spec.description << "\n\n";
  for (const auto& g : spec.groups) os << g << "\n";
  os << common_options(spec) << "\n";
  if (!spec.examples.empty()) {
    os << "Examples:\n";
    for (const auto& e : spec.examples) os << "  " << e << "\n";
    os << "\n";
  }
  os << "Exit codes: 0 success, 1 bad input data or I/O failure, 2 usage error (flag, value,\n"
        "config file, missing input, output exists), 70 internal error (a bug: please report),\n"
        "75 training stopped on SIGTERM/SIGUSR1 after saving a checkpoint (rerun with --resume auto),\n"
        "128+N stopped by signal N (SIGINT 130, SIGTERM 143); partial outputs are removed.\n";
  return os.str();
}

nlohmann::json Invocation::effective_options() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, v] : vm) {
    if (key == "help" || key == "version") continue;
    const boost::any& a = v.value();
    if (auto s = boost::any_cast<std::string>(&a)) j[key] = *s;
    else if (auto b = boost::any_cast<bool>(&a)) j[key] = *b;
    else if (auto i = boost::any_cast<int>(&a)) j[key] = *i;
    else if (auto l = boost::any_cast<long>(&a)) j[key] = *l;
    else if (auto u = boost::any_cast<unsigned long>(&a)) j[key] = *u;
    else if (auto u32 = boost::any_cast<unsigned>(&a)) j[key] = *u32;
    else if (auto d = boost::any_cast<double>(&a)) j[key] = *d;
    else if (auto vs = boost::any_cast<std::vector<std::string>>(&a)) j[key] = *vs;
    else j[key] = "(unprintable)";
  }
  return j;
}

}  // namespace bellows::cli
