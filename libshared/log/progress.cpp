#include "log/progress.hpp"

#include <cmath>
#include <cstdio>
#include <iostream>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "log/log.hpp"

namespace bellows::log {
namespace {
ProgressConfig g_progress;
constexpr std::chrono::milliseconds kBarRedraw{100};  // a terminal needs no more than ~10 fps
constexpr uint64_t kBarWidth = 30;
}  // namespace

ProgressMode parse_progress_mode(const std::string& s) {
  if (s == "auto") return ProgressMode::automatic;
  if (s == "on") return ProgressMode::on;
  if (s == "off") return ProgressMode::off;
  throw UsageError("--progress: invalid value '" + s + "' (expected auto|on|off)");
}

void configure_progress(const ProgressConfig& c) { g_progress = c; }
const ProgressConfig& progress_config() { return g_progress; }

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  const ProgressConfig& c = g_progress;
  enabled_ = c.show && c.mode != ProgressMode::off;
  bar_ = c.mode == ProgressMode::on || (c.mode == ProgressMode::automatic && c.stderr_is_tty);
  sink_ = &std::cerr;
  clock_ = [] { return std::chrono::steady_clock::now(); };
  interval_ = bar_ ? kBarRedraw : std::chrono::duration_cast<std::chrono::milliseconds>(c.line_interval);
  start_ = last_draw_ = clock_();
}

Progress::Progress(std::string label, uint64_t total, std::string unit, bool bar, std::ostream* sink,
                   Clock clock, std::chrono::milliseconds interval)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(true), bar_(bar),
      sink_(sink), clock_(std::move(clock)), interval_(interval) {
  start_ = last_draw_ = clock_();
}

Progress::~Progress() {
  // Finishing here keeps a terminal tidy when work ends early; an exception in flight must not
  // be masked by a failing stream, so errors are swallowed.
  try {
    if (!finished_ && enabled_ && bar_) *sink_ << "\n" << std::flush;
  } catch (...) {
  }
}

void Progress::add(uint64_t n) {
  check_interrupt();  // every progress update is a cancellation point
  done_ += n;
  maybe_draw();
}

void Progress::set(uint64_t done) {
  check_interrupt();
  done_ = done;
  maybe_draw();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(clock_() - start_).count();
}

void Progress::maybe_draw() {
  if (!enabled_ || finished_) return;
  auto now = clock_();
  if (now - last_draw_ < interval_) return;
  last_draw_ = now;
  if (bar_) {
    *sink_ << "\r" << render_bar(kBarWidth) << "\033[K" << std::flush;
  } else {
    *sink_ << utc_timestamp() << " progress: " << render_line() << "\n" << std::flush;
  }
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (bar_) {
    *sink_ << "\r" << render_bar(kBarWidth) << "\033[K\n" << std::flush;
  } else {
    *sink_ << utc_timestamp() << " progress: " << render_line() << " done\n" << std::flush;
  }
}

std::string Progress::render_bar(uint64_t width) const {
  double secs = elapsed_seconds();
  double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
  std::string s = label_ + " ";
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    auto filled = static_cast<uint64_t>(std::floor(frac * static_cast<double>(width)));
    s += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", frac * 100.0);
    s += pct;
    s += human_count(static_cast<double>(done_)) + "/" + human_count(static_cast<double>(total_)) + " " + unit_;
  } else {
    s += human_count(static_cast<double>(done_)) + " " + unit_;
  }
  s += "  " + human_count(rate) + " " + unit_ + "/s";
  if (total_ > 0 && rate > 0 && done_ < total_) {
    s += "  ETA " + human_duration(static_cast<double>(total_ - done_) / rate);
  } else {
    s += "  " + human_duration(secs);
  }
  return s;
}

std::string Progress::render_line() const {
  double secs = elapsed_seconds();
  double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
  char buf[256];
  if (total_ > 0) {
    std::snprintf(buf, sizeof buf, "%s: %llu/%llu %s (%.1f%%), %.1f %s/s, elapsed %s",
                  label_.c_str(), static_cast<unsigned long long>(done_),
                  static_cast<unsigned long long>(total_), unit_.c_str(),
                  100.0 * static_cast<double>(done_) / static_cast<double>(total_), rate, unit_.c_str(),
                  human_duration(secs).c_str());
    std::string s = buf;
    if (rate > 0 && done_ < total_)
      s += ", ETA " + human_duration(static_cast<double>(total_ - done_) / rate);
    return s;
  }
  std::snprintf(buf, sizeof buf, "%s: %llu %s, %.1f %s/s, elapsed %s", label_.c_str(),
                static_cast<unsigned long long>(done_), unit_.c_str(), rate, unit_.c_str(),
                human_duration(secs).c_str());
  return buf;
}

std::string human_count(double v) {
  char buf[32];
  if (v < 1000) std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (v < 1e6) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else if (v < 1e9) std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1fG", v / 1e9);
  return buf;
}

std::string human_duration(double seconds) {
  auto t = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  long long h = t / 3600, m = (t / 60) % 60, s = t % 60;
  char buf[32];
  if (h > 0) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", m, s);
  return buf;
}

}  // namespace bellows::log
