#include "formats/hf_dir.hpp"

#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "core/read_file.hpp"

namespace bellows::formats {
namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string>& supported_hf_architectures() {
  static const std::vector<std::string> a = {"LlamaForCausalLM"};
  return a;
}

nn::LlamaConfig read_hf_config(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw UsageError(path + ": does not exist (an HF model directory has config.json)");
  json j = read_json_file(path);
  if (!j.is_object()) throw UsageError(path + ": expected a JSON object");
  std::string list;
  for (const auto& a : supported_hf_architectures()) list += (list.empty() ? "" : ", ") + a;
  std::string arch = "(none)";
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    arch = j["architectures"][0].get<std::string>();
  bool ok = false;
  for (const auto& a : supported_hf_architectures()) ok = ok || arch == a;
  if (!ok) throw UsageError(path + ": architecture " + arch + " is not supported (supported: " + list + ")");
  // transformers v5 folds rope_theta and rope_scaling into rope_parameters.
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    json rp = j["rope_parameters"];
    if (rp.contains("rope_theta")) j["rope_theta"] = rp["rope_theta"];
    const std::string type = rp.value("rope_type", rp.value("type", "default"));
    if (type != "default") j["rope_scaling"] = rp;
    j.erase("rope_parameters");
  }
  return nn::LlamaConfig::from_hf_json(j, path);
}

HfWeights::HfWeights(const std::string& dir) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  std::error_code ec;
  std::map<std::string, std::string> listed;  // tensor -> shard file name, from the index
  std::vector<std::string> shard_names;
  if (fs::is_regular_file(index, ec)) {
    json j = read_json_file(index.string());
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw RuntimeError(index.string() + ": has no \"weight_map\" object");
    std::set<std::string> shards;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw RuntimeError(index.string() + ": weight_map entry '" + name + "' is not a file name");
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f == ".." || f.empty())
        throw RuntimeError(index.string() + ": weight_map entry '" + name + "' names '" + f + "', not a file in the directory");
      listed[name] = f;
      shards.insert(f);
    }
    shard_names.assign(shards.begin(), shards.end());
  } else if (fs::is_regular_file(single, ec)) {
    shard_names.push_back("model.safetensors");
  } else {
    std::string hint;
    if (fs::exists(fs::path(dir) / "pytorch_model.bin", ec) || fs::exists(fs::path(dir) / "pytorch_model.bin.index.json", ec))
      hint = " (pytorch_model.bin pickles are not read: they can run code; convert them to safetensors first)";
    throw UsageError(dir + ": has neither model.safetensors nor model.safetensors.index.json" + hint);
  }
  for (const auto& s : shard_names) {
    const std::string p = (fs::path(dir) / s).string();
    if (!fs::is_regular_file(p, ec)) throw RuntimeError(index.string() + ": lists shard '" + s + "', which does not exist");
    files_.push_back(std::make_unique<SafetensorsReader>(p));
    for (const auto& t : files_.back()->tensors()) {
      if (entries_.count(t.name))
        throw RuntimeError(p + ": tensor '" + t.name + "' is also in " + entries_.at(t.name).file->path());
      if (!listed.empty() && (!listed.count(t.name) || listed.at(t.name) != s))
        throw RuntimeError(p + ": tensor '" + t.name + "' is not listed for this shard in " + index.string());
      entries_[t.name] = Entry{files_.back().get(), &t};
    }
  }
  for (const auto& [name, file] : listed)
    if (!entries_.count(name))
      throw RuntimeError(index.string() + ": tensor '" + name + "' is listed in " + file + " but is not in it");
}

const HfWeights::Entry* HfWeights::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace bellows::formats
