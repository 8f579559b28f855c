#include "train/checkpoint.hpp"

#include <algorithm>
#include <map>
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
  if (reader_.has_attr("parts")) {
    // Written in slices: a missing part would read as NaN, so refuse it here, by name.
    const json parts = parse_attr_json(reader_, file_, "parts");
    layout_ = parts.value("layout", json::object());
    const fs::path dir = fs::path(file_).parent_path();
    for (const auto& f : parts.value("files", json::array())) {
      const std::string part = (dir / f.get<std::string>()).string();
      if (!fs::is_regular_file(part))
        throw RuntimeError(file_ + ": its part file " + part + " is missing (the checkpoint directory was copied incompletely?)");
      // HDF5 would read an unopenable source as fill values: open each here, so that a damaged
      // part is an error naming it (ShardReader checks its header and schema).
      io::ShardReader check(part, "checkpoint_part");
    }
  }
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
  const std::vector<int64_t>& logical = p.global_shape.empty() ? p.shape : p.global_shape;
  if (reader_.shape(name) != shape_u64(logical))
    throw RuntimeError(file_ + ": tensor '" + name + "' does not have the shape its model_config implies");
  if (p.split_dim < 0) {
    reader_.read_into<float>(name, out, p.numel);
    return;
  }
  std::vector<uint64_t> offset(p.shape.size(), 0);
  offset[size_t(p.split_dim)] = uint64_t(p.split_begin);
  reader_.read_block<float>(name, offset, shape_u64(p.shape), out);
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

namespace {

// A rectangular block of a tensor: offset and count per dimension.
struct Block {
  std::vector<uint64_t> offset, count;
};

// The flat range [a, b) of a shard's tensor p (row-major in its local shape) as at most three
// blocks of the logical tensor: a partial first row, whole rows, a partial last row.
std::vector<Block> blocks_of(const nn::ParamSpec& p, size_t a, size_t b) {
  std::vector<Block> local;
  if (p.shape.size() == 1) {
    local.push_back({{a}, {b - a}});
  } else {
    const size_t cols = size_t(p.shape[1]);
    size_t r0 = a / cols, c0 = a % cols;
    const size_t r1 = b / cols, c1 = b % cols;
    if (r0 == r1) {
      local.push_back({{r0, c0}, {1, c1 - c0}});
    } else {
      if (c0 > 0) local.push_back({{r0++, c0}, {1, cols - c0}});
      if (r0 < r1) local.push_back({{r0, 0}, {r1 - r0, cols}});
      if (c1 > 0) local.push_back({{r1, 0}, {1, c1}});
    }
  }
  for (auto& blk : local)
    if (p.split_dim >= 0) blk.offset[size_t(p.split_dim)] += uint64_t(p.split_begin);
  return local;
}

// Copies block `blk` (logical coordinates) of tensor p out of `src`, which holds the tensor's
// local elements from flat index `first` on.
void gather_block(const nn::ParamSpec& p, const Block& blk, const float* src, size_t first, std::vector<float>& out) {
  std::vector<uint64_t> off = blk.offset;
  if (p.split_dim >= 0) off[size_t(p.split_dim)] -= uint64_t(p.split_begin);
  const size_t cols = p.shape.size() == 1 ? 1 : size_t(p.shape[1]);
  const size_t rows = p.shape.size() == 1 ? 1 : blk.count[0], n = p.shape.size() == 1 ? blk.count[0] : blk.count[1];
  const size_t r0 = p.shape.size() == 1 ? 0 : off[0], c0 = p.shape.size() == 1 ? off[0] : off[1];
  out.resize(rows * n);
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < n; ++j) out[i * n + j] = src[(r0 + i) * cols + c0 + j - first];
}

std::string part_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "parts/rank-%05d.h5", rank);
  return buf;
}

}  // namespace

std::string save_checkpoint_parallel(dist::Communicator& world, const std::string& run_dir, const nn::LlamaConfig& config,
                                     const std::string& tokenizer_sha256, uint64_t step, const json& train_state,
                                     const std::string& tool, const json& options, unsigned keep, const json& layout,
                                     const RankSlices& mine) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  if (world.rank() == 0) fs::create_directories(dir);
  world.barrier();
  const std::string final_dir = (dir / checkpoint_dir_name(step)).string();
  const bool with_optimizer = mine.exp_avg != nullptr;
  {
    io::SafeOutput out(final_dir, io::SafeOutput::Kind::directory, /*overwrite=*/true, &world);
    if (world.rank() == 0) fs::create_directories(fs::path(out.temp_path()) / "parts");
    world.barrier();
    json pieces = json::array();
    {
      io::ShardWriter w(out.temp_path() + "/" + part_name(world.rank()), "checkpoint_part", io::Provenance{tool, options, {}});
      w.set_attr("step", step);
      w.set_attr("rank", uint64_t(world.rank()));
      std::vector<float> buf;
      for (const auto& p : *mine.specs) {
        if (!mine.writes || p.tied_copy || (p.tp_replicated && mine.tp_rank != 0)) continue;
        const size_t a = std::max(p.offset, mine.lo), b = std::min(p.offset + p.numel, mine.hi);
        if (a >= b) continue;
        const auto blocks = blocks_of(p, a - p.offset, b - p.offset);
        for (size_t k = 0; k < blocks.size(); ++k) {
          const Block& blk = blocks[k];
          auto put = [&](const std::string& prefix, const float* src, size_t first) {
            const std::string ds = prefix + p.name + "@" + std::to_string(k);
            gather_block(p, blk, src, first, buf);
            w.write_tensor(ds, blk.count, buf.data());
            pieces.push_back({{"tensor", prefix + p.name}, {"file", part_name(world.rank())}, {"dataset", ds},
                              {"offset", blk.offset}, {"count", blk.count}});
          };
          put("params/", mine.params + p.offset, 0);
          if (with_optimizer) {
            // The moments start at flat index lo; this tensor's local element 0 is at p.offset.
            put("optim/exp_avg/", mine.exp_avg + (a - mine.lo), a - p.offset);
            put("optim/exp_avg_sq/", mine.exp_avg_sq + (a - mine.lo), a - p.offset);
          }
        }
      }
      w.close();
    }
    const std::vector<std::string> all = world.gather(pieces.dump(), 0);
    if (world.rank() == 0) {
      std::map<std::string, std::vector<io::ShardWriter::VirtualPiece>> by_tensor;
      std::map<std::string, uint64_t> covered;
      json files = json::array();
      for (int r = 0; r < world.size(); ++r) files.push_back(part_name(r));
      for (const auto& text : all)
        for (const auto& pc : json::parse(text)) {
          io::ShardWriter::VirtualPiece v{pc["file"], pc["dataset"], pc["offset"], pc["count"]};
          uint64_t n = 1;
          for (uint64_t c : v.count) n *= c;
          covered[pc["tensor"]] += n;
          by_tensor[pc["tensor"]].push_back(std::move(v));
        }
      io::ShardWriter w(out.temp_path() + "/model.h5", "checkpoint", io::Provenance{tool, options, {}});
      w.set_attr("step", step);
      w.set_attr("model_config", config.to_hf_json().dump());
      w.set_attr("tokenizer_sha256", tokenizer_sha256);
      if (!train_state.is_null()) w.set_attr("train_state", train_state.dump());
      w.set_attr("parts", json{{"layout", layout}, {"files", files}}.dump());
      for (const auto& p : nn::param_specs(config))
        for (const std::string prefix : {"params/", "optim/exp_avg/", "optim/exp_avg_sq/"}) {
          if (prefix != "params/" && !with_optimizer) continue;
          const std::string name = prefix + p.name;
          // Every element exactly once: the blocks are disjoint by construction, so the count says it.
          BELLOWS_CHECK(covered[name] == p.numel, "checkpoint tensor " + name + ": the ranks' blocks cover " +
                                                      std::to_string(covered[name]) + " of " + std::to_string(p.numel) +
                                                      " elements");
          w.write_virtual_tensor(name, shape_u64(p.shape), by_tensor[name]);
        }
      w.close();
      std::ofstream(out.temp_path() + "/config.json") << config.to_hf_json().dump(2) << "\n";
    }
    out.commit();
  }
  if (world.rank() == 0) {
    write_latest(dir.string(), checkpoint_dir_name(step));
    if (keep > 0) {
      auto existing = list_checkpoints(run_dir);
      for (size_t i = keep; i < existing.size(); ++i) {
        std::error_code ec;
        fs::remove_all(existing[i], ec);
        if (ec) log::warn("could not remove old checkpoint " + existing[i] + ": " + ec.message());
      }
    }
  }
  world.barrier();
  return final_dir;
}

void load_rank_slices(const CheckpointReader& r, const std::vector<nn::ParamSpec>& specs, float* params,
                      float* exp_avg, float* exp_avg_sq, size_t lo, size_t hi) {
  std::vector<float> tmp;
  for (const auto& p : specs) {
    r.read("params/" + p.name, p, params + p.offset);
    if (!exp_avg) continue;
    const size_t a = std::max(p.offset, lo), b = std::min(p.offset + p.numel, hi);
    if (a >= b) continue;
    tmp.resize(p.numel);
    for (auto [name, out] : {std::pair{"optim/exp_avg/", exp_avg}, std::pair{"optim/exp_avg_sq/", exp_avg_sq}}) {
      r.read(name + p.name, p, tmp.data());
      std::copy(tmp.begin() + std::ptrdiff_t(a - p.offset), tmp.begin() + std::ptrdiff_t(b - p.offset), out + (a - lo));
    }
  }
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
