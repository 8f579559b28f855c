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

std::vector<uint64_t> shape_u64(const std::vector<int64_t>& s) { return {s.begin(), s.end()}; }

std::string file_of(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) file = (fs::path(path) / "model.h5").string();
  if (!fs::is_regular_file(file, ec)) throw RuntimeError(file + ": no such checkpoint file");
  return file;
}

json parse_attr_json(const io::ShardReader& r, const std::string& file, const char* name) {
  try {
    return json::parse(r.attr_string(name));
  } catch (const json::exception& e) {
    throw RuntimeError(file + ": " + name + " is not valid JSON: " + e.what());
  }
}

}  // namespace

std::string checkpoint_dir_name(uint64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08llu", static_cast<unsigned long long>(step));
  return buf;
}

CheckpointReader::CheckpointReader(const std::string& path) : file_(file_of(path)), reader_(file_, "checkpoint") {
  config_ = nn::LlamaConfig::from_hf_json(parse_attr_json(reader_, file_, "model_config"), file_ + " (model_config)");
  tokenizer_sha256_ = reader_.attr_string("tokenizer_sha256");
  step_ = reader_.attr_uint("step");
  if (reader_.has_attr("train_state")) train_state_ = parse_attr_json(reader_, file_, "train_state");
  const auto listed = reader_.datasets();
  names_.insert(listed.begin(), listed.end());
}

bool CheckpointReader::has_optimizer() const {
  for (const auto& n : names_)
    if (n.rfind("optim/", 0) == 0) return true;
  return false;
}

void CheckpointReader::read(const std::string& name, const nn::ParamSpec& p, float* out) const {
  if (!names_.count(name)) throw RuntimeError(file_ + ": has no tensor '" + name + "'");
  if (reader_.shape(name) != shape_u64(p.shape))
    throw RuntimeError(file_ + ": tensor '" + name + "' does not have the shape its model_config implies");
  reader_.read_into<float>(name, out, p.numel);
}

CheckpointFileWriter::CheckpointFileWriter(const std::string& path, const nn::LlamaConfig& config,
                                           const std::string& tokenizer_sha256, uint64_t step, const json& train_state,
                                           const std::string& tool, const json& options)
    : writer_(path, "checkpoint", io::Provenance{tool, options, {}}), config_(config) {
  writer_.set_attr("step", step);
  writer_.set_attr("model_config", config.to_hf_json().dump());
  writer_.set_attr("tokenizer_sha256", tokenizer_sha256);
  if (!train_state.is_null()) writer_.set_attr("train_state", train_state.dump());
}

void CheckpointFileWriter::write(const std::string& name, const nn::ParamSpec& p, const float* data) {
  writer_.write_tensor(name, shape_u64(p.shape), data);
  written_.insert(name);
}

void CheckpointFileWriter::close() {
  for (const auto& p : nn::param_specs(config_))
    BELLOWS_CHECK(written_.count("params/" + p.name), "checkpoint tensor params/" + p.name + " was not written");
  writer_.close();
}

void write_latest(const std::string& checkpoints_dir, const std::string& name) {
  io::SafeOutput latest((fs::path(checkpoints_dir) / "latest").string(), io::SafeOutput::Kind::file, /*overwrite=*/true);
  std::ofstream(latest.temp_path()) << name << "\n";
  latest.commit();
}

std::string save_checkpoint(const std::string& run_dir, const CheckpointData& d, const std::string& tool,
                            const json& options, unsigned keep) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  fs::create_directories(dir);
  const std::string final_dir = (dir / checkpoint_dir_name(d.step)).string();
  {
    io::SafeOutput out(final_dir, io::SafeOutput::Kind::directory, /*overwrite=*/true);
    CheckpointFileWriter w(out.temp_path() + "/model.h5", d.config, d.tokenizer_sha256, d.step, d.train_state, tool,
                           options);
    for (const auto& p : nn::param_specs(d.config)) {
      w.write("params/" + p.name, p, d.params.data() + p.offset);
      if (!d.exp_avg.empty()) {
        w.write("optim/exp_avg/" + p.name, p, d.exp_avg.data() + p.offset);
        w.write("optim/exp_avg_sq/" + p.name, p, d.exp_avg_sq.data() + p.offset);
      }
    }
    w.close();
    std::ofstream(out.temp_path() + "/config.json") << d.config.to_hf_json().dump(2) << "\n";
    out.commit();
  }
  write_latest(dir.string(), checkpoint_dir_name(d.step));
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
  CheckpointReader r(path);
  CheckpointData d;
  d.config = r.config();
  d.tokenizer_sha256 = r.tokenizer_sha256();
  d.step = r.step();
  if (!r.train_state().is_null()) d.train_state = r.train_state();
  const auto specs = nn::param_specs(d.config);
  const size_t n = specs.back().offset + specs.back().numel;
  d.params.resize(n);
  if (with_optimizer) {
    d.exp_avg.resize(n);
    d.exp_avg_sq.resize(n);
  }
  for (const auto& p : specs) {
    r.read("params/" + p.name, p, d.params.data() + p.offset);
    if (with_optimizer) {
      r.read("optim/exp_avg/" + p.name, p, d.exp_avg.data() + p.offset);
      r.read("optim/exp_avg_sq/" + p.name, p, d.exp_avg_sq.data() + p.offset);
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
