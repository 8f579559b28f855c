#include "log/log.hpp"

#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>

#include "core/error.hpp"

namespace bellows::log {
namespace {

Config g_config;
std::mutex g_mutex;
std::ofstream g_copy;  // copy_to_file's

void emit(Level l, const std::string& msg) {
  std::string line = utc_timestamp() + " ";
  if (g_config.size > 1 && g_config.all_ranks) line += "[rank " + std::to_string(g_config.rank) + "] ";
  line += level_name(l);
  line += ": ";
  line += msg;
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mutex);
  std::ostream& os = g_config.sink ? *g_config.sink : std::cerr;
  os << line << std::flush;
  if (g_copy.is_open()) g_copy << line << std::flush;
}

}  // namespace

void configure(const Config& c) { g_config = c; }
const Config& config() { return g_config; }

Level parse_level(const std::string& s) {
  if (s == "trace") return Level::trace;
  if (s == "debug") return Level::debug;
  if (s == "info") return Level::info;
  if (s == "warn") return Level::warn;
  if (s == "error") return Level::error;
  throw UsageError("--log-level: invalid value '" + s + "' (expected trace|debug|info|warn|error)");
}

const char* level_name(Level l) {
  switch (l) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

bool enabled(Level l) {
  if (l < g_config.level) return false;
  return g_config.rank == 0 || g_config.all_ranks;
}

std::string utc_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write(Level l, const std::string& msg) {
  if (enabled(l)) emit(l, msg);
}

void write_always(Level l, const std::string& msg) { emit(l, msg); }

void copy_to_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_copy.is_open()) g_copy.close();
  if (path.empty()) return;
  g_copy.open(path, std::ios::app);
  if (!g_copy) throw RuntimeError("cannot open the log file " + path);
}

}  // namespace bellows::log
