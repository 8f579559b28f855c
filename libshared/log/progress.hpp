// Progress of long work: a live bar with rate and ETA on a terminal, plain periodic lines in
// batch logs (SLURM output files), nothing when switched off. Only rank 0 shows progress.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace bellows::log {

enum class ProgressMode { automatic, on, off };

// "auto|on|off" -> mode; throws UsageError naming --progress otherwise.
//   auto: bar when stderr is a terminal, periodic lines otherwise (batch logs)
//   on:   the bar even when stderr is not a terminal (srun --pty, tee, tmux logging)
//   off:  no progress output at all
ProgressMode parse_progress_mode(const std::string& s);

struct ProgressConfig {
  ProgressMode mode = ProgressMode::automatic;
  bool stderr_is_tty = false;
  bool show = true;  // false on ranks other than 0
  std::chrono::seconds line_interval{30};  // between plain lines in batch logs
};

void configure_progress(const ProgressConfig& c);
const ProgressConfig& progress_config();

class Progress {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // total == 0 means unknown (no percentage or ETA, only count and rate).
  Progress(std::string label, uint64_t total, std::string unit);
  // For tests: explicit style, sink and clock.
  Progress(std::string label, uint64_t total, std::string unit, bool bar, std::ostream* sink,
           Clock clock, std::chrono::milliseconds interval);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t n = 1);
  void set(uint64_t done);
  // Prints the final state once (bar completed and newline, or a last line).
  void finish();

  // One rendering of the current state; public for tests.
  std::string render_bar(uint64_t width) const;
  std::string render_line() const;

 private:
  void maybe_draw();
  double elapsed_seconds() const;

  std::string label_, unit_;
  uint64_t total_ = 0, done_ = 0;
  bool enabled_ = false, bar_ = false, finished_ = false;
  std::ostream* sink_ = nullptr;
  Clock clock_;
  std::chrono::milliseconds interval_{0};
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1.2k", "3.4M": short counts for the bar.
std::string human_count(double v);
// "0:42", "1:02:03": durations for ETA and elapsed time.
std::string human_duration(double seconds);

}  // namespace bellows::log
