// Rank-aware logging to stderr. By default only rank 0 logs, so a 512-rank job writes one
// readable SLURM log; --log-all-ranks prefixes every line with its rank instead.
#pragma once

#include <iosfwd>
#include <string>

namespace bellows::log {

enum class Level { trace = 0, debug, info, warn, error };

struct Config {
  Level level = Level::info;
  bool all_ranks = false;  // log from every rank, each line prefixed "[rank R]"
  int rank = 0;
  int size = 1;
  std::ostream* sink = nullptr;  // nullptr: std::cerr
};

void configure(const Config& c);
const Config& config();

// "trace|debug|info|warn|error" -> Level; throws UsageError naming the flag otherwise.
Level parse_level(const std::string& s);
const char* level_name(Level l);

// True when a message at this level would be printed by this rank.
bool enabled(Level l);

// ISO-8601 UTC timestamp, second resolution ("2026-11-25T17:01:02Z").
std::string utc_timestamp();

void write(Level l, const std::string& msg);
inline void trace(const std::string& m) { write(Level::trace, m); }
inline void debug(const std::string& m) { write(Level::debug, m); }
inline void info(const std::string& m) { write(Level::info, m); }
inline void warn(const std::string& m) { write(Level::warn, m); }
inline void error(const std::string& m) { write(Level::error, m); }

// Prints on this rank whatever the rank filter says (fatal errors must never be hidden).
void write_always(Level l, const std::string& msg);

// From now on every line this rank prints is also appended to `path` (a run's own log file);
// "" stops. RuntimeError naming the file when it cannot be opened.
void copy_to_file(const std::string& path);

}  // namespace bellows::log
