#include "train/run_tokenizer.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.hpp"
#include "core/read_file.hpp"
#include "core/sha256.hpp"
#include "log/log.hpp"

namespace bellows::train {
namespace fs = std::filesystem;
using nlohmann::json;

void copy_tokenizer_into_run(const std::string& run_dir, const std::string& data_dir, const std::string& explicit_path,
                             const std::string& sha256) {
  std::error_code ec;
  json report;
  const fs::path report_path = fs::path(data_dir) / "report.json";
  if (fs::is_regular_file(report_path, ec)) {
    try {
      report = read_json_file(report_path.string());
    } catch (const UsageError&) {
      report = json();  // an unreadable report only means one candidate fewer
    }
  }
  std::vector<fs::path> candidates;
  if (!explicit_path.empty()) {
    candidates.push_back(explicit_path);
  } else {
    candidates.push_back(fs::path(data_dir) / "tokenizer.json");
    if (report.is_object() && report.contains("tokenizer") && report["tokenizer"].contains("path") &&
        report["tokenizer"]["path"].is_string())
      candidates.push_back(report["tokenizer"]["path"].get<std::string>());
  }
  for (const auto& c : candidates) {
    if (!fs::is_regular_file(c, ec)) {
      if (!explicit_path.empty()) throw UsageError("--tokenizer: '" + c.string() + "' does not exist");
      continue;
    }
    const std::string content = read_whole_file(c.string()).value_or("");
    if (sha256_hex(content) != sha256) {
      if (!explicit_path.empty())
        throw UsageError("--tokenizer " + c.string() + " is not the tokenizer the shards were made with (sha256 " +
                         sha256.substr(0, 12) + ")");
      continue;
    }
    const fs::path dir = fs::path(run_dir) / "tokenizer";
    fs::create_directories(dir);
    std::ofstream(dir / c.filename(), std::ios::binary) << content;
    const fs::path cfg = c.parent_path() / "tokenizer_config.json";
    if (fs::is_regular_file(cfg, ec)) fs::copy_file(cfg, dir / "tokenizer_config.json", fs::copy_options::overwrite_existing);
    json meta = {{"file", c.filename().string()}, {"sha256", sha256}};
    if (report.is_object() && report.contains("settings")) {
      const json& st = report["settings"];
      for (const char* k : {"pattern", "special-token", "eos-token", "bos-token"})
        if (st.contains(k)) meta[k] = st[k];
    }
    std::ofstream(dir / "bellows_tokenizer.json") << meta.dump(2) << "\n";
    return;
  }
  log::warn("the shards' tokenizer (sha256 " + sha256.substr(0, 12) + ") was not found beside " + data_dir +
            ": the run directory gets no tokenizer copy (give --tokenizer PATH)");
}

}  // namespace bellows::train
