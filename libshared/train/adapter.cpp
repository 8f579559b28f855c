#include "train/adapter.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "io/safe_output.hpp"
#include "io/shard.hpp"
#include "log/log.hpp"

namespace bellows::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
// One tensor's share of a base fingerprint: its name, shape and fp32 bytes (x86-64 and aarch64
// are little-endian: the values as stored).
void fingerprint_tensor(Sha256& h, const nn::ParamSpec& p, const float* values) {
  h.update(p.name);
  h.update(std::string(1, '\0'));
  for (int64_t d : p.shape) h.update(std::to_string(d) + ",");
  h.update(std::string_view(reinterpret_cast<const char*>(values), p.numel * sizeof(float)));
}
}  // namespace

std::string base_fingerprint(const CheckpointReader& base) {
  Sha256 h;
  std::vector<float> buf;
  for (const auto& p : nn::param_specs(base.config())) {
    buf.resize(p.numel);
    base.read("params/" + p.name, p, buf.data());
    fingerprint_tensor(h, p, buf.data());
  }
  return h.hex();
}

std::string base_fingerprint(const nn::LlamaConfig& config, const std::vector<float>& params) {
  Sha256 h;
  const auto specs = nn::param_specs(config);
  BELLOWS_CHECK(!specs.empty() && params.size() == specs.back().offset + specs.back().numel,
                "base_fingerprint: params of another shape than the config");
  for (const auto& p : specs) fingerprint_tensor(h, p, params.data() + p.offset);
  return h.hex();
}

namespace {

std::vector<uint64_t> shape_u64(const std::vector<int64_t>& s) { return {s.begin(), s.end()}; }

json targets_json(const nn::LoraConfig& l) {
  json t = json::array();
  for (auto x : l.targets) t.push_back(nn::to_string(x));
  return t;
}

}  // namespace

void write_adapter_file(const std::string& path, const AdapterData& d, const std::string& tool, const json& options) {
  const auto specs = nn::lora_param_specs(d.base_config, d.lora);
  const size_t n = specs.empty() ? 0 : specs.back().offset + specs.back().numel;
  BELLOWS_CHECK(d.tensors.size() == n, "adapter tensors of another shape");
  io::SafeOutput out(path, io::SafeOutput::Kind::file, /*overwrite=*/true);
  io::ShardWriter w(out.temp_path(), "lora_adapter", io::Provenance{tool, options, {}});
  w.set_attr("rank", uint64_t(d.lora.rank));
  w.set_attr("alpha", d.lora.alpha);
  w.set_attr("scaling", d.lora.scale());
  w.set_attr("rslora", uint64_t(d.lora.rslora ? 1 : 0));
  w.set_attr("dropout", d.lora.dropout);
  w.set_attr("targets", targets_json(d.lora).dump());
  w.set_attr("base_fingerprint", d.base_fingerprint);
  w.set_attr("model_config", d.base_config.to_hf_json().dump());
  w.set_attr("tokenizer_sha256", d.tokenizer_sha256);
  w.set_attr("step", d.step);
  if (!d.train_state.is_null()) w.set_attr("train_state", d.train_state.dump());
  for (const auto& p : specs) {
    w.write_tensor(p.name, shape_u64(p.shape), d.tensors.data() + p.offset);
    if (!d.exp_avg.empty()) {
      w.write_tensor("optim/exp_avg/" + p.name, shape_u64(p.shape), d.exp_avg.data() + p.offset);
      w.write_tensor("optim/exp_avg_sq/" + p.name, shape_u64(p.shape), d.exp_avg_sq.data() + p.offset);
    }
  }
  w.close();
  out.commit();
}

AdapterData read_adapter_file(const std::string& path, bool with_optimizer) {
  io::ShardReader r(path, "lora_adapter");
  AdapterData d;
  auto parse = [&](const char* name) {
    try {
      return json::parse(r.attr_string(name));
    } catch (const json::exception& e) {
      throw RuntimeError(path + ": " + name + " is not valid JSON: " + e.what());
    }
  };
  d.base_config = nn::LlamaConfig::from_hf_json(parse("model_config"), path + " (model_config)");
  d.lora.rank = int(r.attr_uint("rank"));
  d.lora.alpha = r.attr_double("alpha");
  d.lora.rslora = r.attr_uint("rslora") != 0;
  d.lora.dropout = r.attr_double("dropout");
  std::string csv;
  for (const auto& t : parse("targets")) csv += (csv.empty() ? "" : ",") + t.get<std::string>();
  try {
    d.lora.targets = nn::parse_lora_targets(csv, path + ": targets");
    nn::check_lora(d.base_config, d.lora);
  } catch (const UsageError& e) {
    throw RuntimeError(path + ": " + e.what());
  }
  if (std::abs(r.attr_double("scaling") - d.lora.scale()) > 1e-9 * std::abs(d.lora.scale()))
    throw RuntimeError(path + ": scaling " + std::to_string(r.attr_double("scaling")) + " does not follow from alpha and rank");
  d.base_fingerprint = r.attr_string("base_fingerprint");
  d.tokenizer_sha256 = r.attr_string("tokenizer_sha256");
  d.step = r.attr_uint("step");
  if (r.has_attr("train_state")) d.train_state = parse("train_state");
  const auto specs = nn::lora_param_specs(d.base_config, d.lora);
  const size_t n = specs.empty() ? 0 : specs.back().offset + specs.back().numel;
  const auto listed = r.datasets();
  const std::set<std::string> names(listed.begin(), listed.end());
  auto read = [&](const std::string& name, const nn::ParamSpec& p, float* out) {
    if (!names.count(name)) throw RuntimeError(path + ": has no tensor '" + name + "'");
    if (r.shape(name) != shape_u64(p.shape))
      throw RuntimeError(path + ": tensor '" + name + "' does not have the shape its rank and model_config imply");
    r.read_into<float>(name, out, p.numel);
  };
  d.tensors.resize(n);
  if (with_optimizer) {
    d.exp_avg.resize(n);
    d.exp_avg_sq.resize(n);
  }
  for (const auto& p : specs) {
    read(p.name, p, d.tensors.data() + p.offset);
    if (with_optimizer) {
      read("optim/exp_avg/" + p.name, p, d.exp_avg.data() + p.offset);
      read("optim/exp_avg_sq/" + p.name, p, d.exp_avg_sq.data() + p.offset);
    }
  }
  size_t expected = specs.size() * (names.count("optim/exp_avg/" + specs.front().name) ? 3 : 1);
  if (names.size() != expected)
    throw RuntimeError(path + ": holds " + std::to_string(names.size()) + " tensors, its targets and layers imply " +
                       std::to_string(expected));
  return d;
}

std::string save_adapter_checkpoint(const std::string& run_dir, const AdapterData& d, const std::string& tool,
                                    const json& options, unsigned keep) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  fs::create_directories(dir);
  const std::string final_dir = (dir / checkpoint_dir_name(d.step)).string();
  {
    io::SafeOutput out(final_dir, io::SafeOutput::Kind::directory, /*overwrite=*/true);
    write_adapter_file(out.temp_path() + "/adapter.h5", d, tool, options);
    std::ofstream(out.temp_path() + "/config.json") << d.base_config.to_hf_json().dump(2) << "\n";
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

std::string resolve_adapter(const std::string& path, const std::string& flag) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (fs::is_regular_file(fs::path(path) / "adapter.h5", ec)) return (fs::path(path) / "adapter.h5").string();
  const fs::path latest = fs::path(path) / "checkpoints" / "latest";
  if (fs::is_regular_file(latest, ec)) {
    std::ifstream f(latest);
    std::string name;
    f >> name;
    const fs::path file = fs::path(path) / "checkpoints" / name / "adapter.h5";
    if (fs::is_regular_file(file, ec)) return file.string();
    throw UsageError(flag + ": " + latest.string() + " names '" + name + "', which holds no adapter.h5");
  }
  throw UsageError(flag + ": '" + path + "' is neither an adapter file, a checkpoint directory with adapter.h5, nor a run "
                                         "directory with checkpoints/latest");
}

void check_adapter_matches(const AdapterData& a, const std::string& adapter_path, const nn::LlamaConfig& base_config,
                           const std::string& fingerprint, const std::string& base_path) {
  if (a.base_config.to_hf_json() != base_config.to_hf_json())
    throw UsageError(adapter_path + ": the adapter was made for a model of another shape than " + base_path);
  if (a.base_fingerprint != fingerprint)
    throw UsageError(adapter_path + ": the adapter was trained on another base (fingerprint " +
                     a.base_fingerprint.substr(0, 12) + ") than " + base_path + " (" + fingerprint.substr(0, 12) + ")");
}

void merge_adapter_tensor(const AdapterData& a, const nn::ParamSpec& A, const nn::ParamSpec& B, float* W) {
  const double s = a.lora.scale();
  const int r = a.lora.rank;
  const int64_t out = B.shape[0], in = A.shape[1];
  const float* a_ = a.tensors.data() + A.offset;
  const float* b_ = a.tensors.data() + B.offset;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t j = 0; j < in; ++j) {
      double acc = 0;
      for (int k = 0; k < r; ++k) acc += double(b_[o * r + k]) * a_[size_t(k) * size_t(in) + size_t(j)];
      W[o * in + j] = float(W[o * in + j] + s * acc);
    }
}

void merge_adapter(const AdapterData& a, std::vector<float>& params) {
  const auto base = nn::param_specs(a.base_config);
  const auto specs = nn::lora_param_specs(a.base_config, a.lora);
  for (size_t i = 0; i < specs.size(); i += 2) {
    // "lora/<base>/A" -> "<base>.weight"
    const std::string wname = specs[i].name.substr(5, specs[i].name.size() - 7) + ".weight";
    const auto it = std::find_if(base.begin(), base.end(), [&](const nn::ParamSpec& p) { return p.name == wname; });
    BELLOWS_CHECK(it != base.end(), "adapter of unknown base tensor " + wname);
    merge_adapter_tensor(a, specs[i], specs[i + 1], params.data() + it->offset);
  }
}

}  // namespace bellows::train
