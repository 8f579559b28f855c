#include "log/metrics.hpp"

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "log/log.hpp"

namespace bellows::log {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) throw RuntimeError(path + ": cannot open metrics file: " + std::strerror(errno));
}

MetricsWriter::~MetricsWriter() {
  if (f_) std::fclose(f_);
}

void MetricsWriter::write(nlohmann::json fields) {
  nlohmann::json line = {{"time", utc_timestamp()}};
  line.update(fields);
  std::string s = line.dump() + "\n";
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size() || std::fflush(f_) != 0)
    throw RuntimeError(path_ + ": cannot write metrics: " + std::strerror(errno));
}

}  // namespace bellows::log
