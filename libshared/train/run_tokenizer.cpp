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

std::string run_dir_of_checkpoint(const std::string& ckpt) {
  std::error_code ec;
  fs::path dir = fs::absolute(ckpt, ec);
  if (fs::is_regular_file(dir, ec)) dir = dir.parent_path();  // model.h5 -> step-N/
  // Drop a trailing separator ("step-N/") so that parent_path climbs a level.
  if (dir.filename().empty()) dir = dir.parent_path();
  return dir.parent_path().parent_path().string();
}

namespace {

// tokenize-pack's settings as bellows_tokenizer.json records them (its --pattern,
// --special-token TOKEN=ID list, --eos-token, --bos-token).
struct Settings {
  tok::LoadOptions load;
  std::string eos, bos;
};

Settings read_settings(const json& meta, const std::string& what) {
  Settings s;
  auto str = [&](const char* key) -> std::string {
    if (!meta.contains(key) || meta[key].is_null()) return "";
    if (!meta[key].is_string()) throw UsageError(what + ": \"" + key + "\" must be a string");
    return meta[key].get<std::string>();
  };
  if (!str("pattern").empty()) s.load.pattern = str("pattern");
  s.eos = str("eos-token");
  s.bos = str("bos-token");
  if (meta.contains("special-token") && !meta["special-token"].is_null()) {
    const json& list = meta["special-token"];
    if (!list.is_array()) throw UsageError(what + ": \"special-token\" must be a list of \"TOKEN=ID\"");
    for (const auto& e : list)
      s.load.extra_specials.push_back(
          tok::parse_special_token(e.is_string() ? e.get<std::string>() : e.dump(), what + ": special token"));
  }
  return s;
}

void set_named(tok::Tokenizer& t, const std::string& name, bool eos, const std::string& what) {
  if (name.empty()) return;
  auto id = t.token_id(name);
  if (!id) throw UsageError(what + ": " + (eos ? "eos" : "bos") + "-token '" + name + "' is not a token of " + t.path());
  if (eos) t.set_eos(*id);
  else t.set_bos(*id);
}

}  // namespace

std::optional<tok::Tokenizer> checkpoint_tokenizer(const std::string& ckpt, const std::string& explicit_path,
                                                   const std::string& sha256) {
  const fs::path dir = fs::path(run_dir_of_checkpoint(ckpt)) / "tokenizer";
  const fs::path meta_path = dir / "bellows_tokenizer.json";
  std::error_code ec;
  json meta = json::object();
  const bool have_meta = fs::is_regular_file(meta_path, ec);
  if (have_meta) {
    meta = read_json_file(meta_path.string());
    if (!meta.is_object()) throw UsageError(meta_path.string() + ": expected a JSON object");
  }
  std::string path = explicit_path;
  if (path.empty()) {
    if (!have_meta) return std::nullopt;
    if (!meta.contains("file") || !meta["file"].is_string())
      throw UsageError(meta_path.string() + ": has no \"file\" naming the tokenizer");
    path = (dir / meta["file"].get<std::string>()).string();
    if (!fs::is_regular_file(path, ec))
      throw UsageError(meta_path.string() + " names '" + path + "', which does not exist (give --tokenizer PATH)");
  } else if (!fs::is_regular_file(path, ec)) {
    throw UsageError("--tokenizer: '" + path + "' does not exist");
  }
  const Settings s = read_settings(meta, meta_path.string());
  tok::Tokenizer t = tok::Tokenizer::load(path, s.load);
  if (t.sha256() != sha256)
    throw UsageError((explicit_path.empty() ? "the run's tokenizer " : "--tokenizer ") + path + " (sha256 " +
                     t.sha256().substr(0, 12) + ") is not the tokenizer " + ckpt + " was trained with (sha256 " +
                     sha256.substr(0, 12) + ")");
  set_named(t, s.eos, true, meta_path.string());
  set_named(t, s.bos, false, meta_path.string());
  return t;
}

}  // namespace bellows::train
