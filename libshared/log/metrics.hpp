// Metrics as JSON lines: one object per event, flushed as written, so a plot or `jq` can
// follow a run while it goes and a killed run keeps every line it wrote.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace bellows::log {

class MetricsWriter {
 public:
  // Appends to `path` (a resumed run continues the same file). Throws RuntimeError naming the
  // file when it cannot be opened.
  explicit MetricsWriter(const std::string& path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Writes `fields` plus "time" (UTC, ISO-8601) as one line.
  void write(nlohmann::json fields);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace bellows::log
