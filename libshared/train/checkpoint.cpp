#include "train/checkpoint.hpp"

#include <algorithm>
#include <set>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "io/safe_output.hpp"
#include "io/shard.hpp"
#include "log/log.hpp"

namespace bellows::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string step_name(uint64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08llu", static_cast<unsigned long long>(step));
  return buf;
}

std::vector<uint64_t> shape_u64(const std::vector<int64_t>& s) { return {s.begin(), s.end()}; }

}  // namespace

std::string save_checkpoint(const std::string& run_dir, const CheckpointData& d, const std::string& tool,
                            const json& options, unsigned keep) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  fs::create_directories(dir);
  const std::string final_dir = (dir / step_name(d.step)).string();
  {
    io::SafeOutput out(final_dir, io::SafeOutput::Kind::directory, /*overwrite=*/true);
    io::Provenance prov{tool, options, {}};
    io::ShardWriter w(out.temp_path() + "/model.h5", "checkpoint", prov);
    w.set_attr("step", d.step);
    w.set_attr("model_config", d.config.to_hf_json().dump());
    w.set_attr("tokenizer_sha256", d.tokenizer_sha256);
    w.set_attr("train_state", d.train_state.dump());
    for (const auto& p : nn::param_specs(d.config)) {
      w.write_tensor("params/" + p.name, shape_u64(p.shape), d.params.data() + p.offset);
      if (!d.exp_avg.empty()) {
        w.write_tensor("optim/exp_avg/" + p.name, shape_u64(p.shape), d.exp_avg.data() + p.offset);
        w.write_tensor("optim/exp_avg_sq/" + p.name, shape_u64(p.shape), d.exp_avg_sq.data() + p.offset);
      }
    }
    w.close();
    std::ofstream(out.temp_path() + "/config.json") << d.config.to_hf_json().dump(2) << "\n";
    out.commit();
  }
  {
    io::SafeOutput latest((dir / "latest").string(), io::SafeOutput::Kind::file, /*overwrite=*/true);
    std::ofstream(latest.temp_path()) << step_name(d.step) << "\n";
    latest.commit();
  }
  if (keep > 0) {
    auto all = list_checkpoints(run_dir);
    for (size_t i = keep; i < all.size(); ++i) {
      std::error_code ec;
      fs::remove_all(all[i], ec);
      if (ec) log::warn("could not remove old checkpoint " + all[i] + ": " + ec.message());
    }
  }
  return final_dir;
}

CheckpointData load_checkpoint(const std::string& path, bool with_optimizer) {
  std::string file = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) file = (fs::path(path) / "model.h5").string();
  if (!fs::is_regular_file(file, ec)) throw RuntimeError(file + ": no such checkpoint file");
  io::ShardReader r(file, "checkpoint");
  CheckpointData d;
  json cfg;
  try {
    cfg = json::parse(r.attr_string("model_config"));
  } catch (const json::exception& e) {
    throw RuntimeError(file + ": model_config is not valid JSON: " + e.what());
  }
  d.config = nn::LlamaConfig::from_hf_json(cfg, file + " (model_config)");
  d.tokenizer_sha256 = r.attr_string("tokenizer_sha256");
  d.step = r.attr_uint("step");
  if (r.has_attr("train_state")) {
    try {
      d.train_state = json::parse(r.attr_string("train_state"));
    } catch (const json::exception& e) {
      throw RuntimeError(file + ": train_state is not valid JSON: " + e.what());
    }
  }
  const auto specs = nn::param_specs(d.config);
  const auto listed = r.datasets();
  const std::set<std::string> names(listed.begin(), listed.end());
  const size_t n = specs.back().offset + specs.back().numel;
  d.params.resize(n);
  if (with_optimizer) {
    d.exp_avg.resize(n);
    d.exp_avg_sq.resize(n);
  }
  for (const auto& p : specs) {
    auto read = [&](const std::string& name, std::vector<float>& into) {
      if (!names.count(name))
        throw RuntimeError(file + ": has no tensor '" + name + "'");
      if (r.shape(name) != shape_u64(p.shape))
        throw RuntimeError(file + ": tensor '" + name + "' does not have the shape its model_config implies");
      auto v = r.read_all<float>(name);
      std::copy(v.begin(), v.end(), into.begin() + static_cast<std::ptrdiff_t>(p.offset));
    };
    read("params/" + p.name, d.params);
    if (with_optimizer) {
      read("optim/exp_avg/" + p.name, d.exp_avg);
      read("optim/exp_avg_sq/" + p.name, d.exp_avg_sq);
    }
  }
  return d;
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<std::string, std::string>> found;  // (name, path)
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0) found.emplace_back(name, e.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (fs::is_regular_file(fs::path(path) / "model.h5", ec)) return path;
  const fs::path latest = fs::path(path) / "checkpoints" / "latest";
  if (fs::is_regular_file(latest, ec)) {
    std::ifstream f(latest);
    std::string name;
    f >> name;
    const fs::path dir = fs::path(path) / "checkpoints" / name;
    if (fs::is_regular_file(dir / "model.h5", ec)) return dir.string();
    throw UsageError("--ckpt: " + latest.string() + " names '" + name + "', which is not a complete checkpoint");
  }
  throw UsageError("--ckpt: '" + path + "' is neither a checkpoint (directory with model.h5) nor a run directory with checkpoints/latest");
}

}  // namespace bellows::train
