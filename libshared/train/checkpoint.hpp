// Training checkpoints: one HDF5 file of kind "checkpoint" (schemas/checkpoint.json) per saved
// step, holding every parameter under its HF name and full logical shape (fp32 master weights),
// the AdamW moments, and the trainer's state as JSON. Saved atomically:
//   RUNDIR/checkpoints/.step-00000100.partial/  -> renamed to step-00000100/ when complete,
//   then RUNDIR/checkpoints/latest (the directory's name) replaced by rename.
// A crash at any point leaves the previous checkpoints and `latest` as they were.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dist/comm.hpp"
#include "io/shard.hpp"
#include "nn/llama.hpp"

namespace bellows::train {

struct CheckpointData {
  nn::LlamaConfig config;
  std::string tokenizer_sha256;
  uint64_t step = 0;
  nlohmann::json train_state = nlohmann::json::object();
  std::vector<float> params;            // in param_specs(config) order, concatenated
  std::vector<float> exp_avg, exp_avg_sq;  // empty when the checkpoint has no optimizer state
};

// Writes RUNDIR/checkpoints/step-<step>/ atomically, updates `latest`, then removes all but the
// newest `keep` checkpoints (keep 0: keep all). Returns the new checkpoint's directory.
std::string save_checkpoint(const std::string& run_dir, const CheckpointData& d, const std::string& tool,
                            const nlohmann::json& options, unsigned keep);

// Reads a checkpoint directory (or its model.h5). with_optimizer: also the moments (a
// RuntimeError naming the file if they are missing). Throws RuntimeError naming the file for
// anything unreadable, corrupt or inconsistent with its own config.
CheckpointData load_checkpoint(const std::string& path, bool with_optimizer);

// One checkpoint file read tensor by tensor (ckpt-convert streams models larger than memory).
class CheckpointReader {
 public:
  // A checkpoint directory or its model.h5. Throws RuntimeError naming the file when it is
  // unreadable, corrupt, or its model_config is unusable.
  explicit CheckpointReader(const std::string& path);
  const std::string& file() const { return file_; }
  const nn::LlamaConfig& config() const { return config_; }
  const std::string& tokenizer_sha256() const { return tokenizer_sha256_; }
  uint64_t step() const { return step_; }
  // The trainer's state (null in weights-only checkpoints).
  const nlohmann::json& train_state() const { return train_state_; }
  bool has_optimizer() const;
  // Reads `name` ("params/<hf name>", "optim/exp_avg/<hf name>", ...) of spec p's shape into
  // out[p.numel]; RuntimeError naming the file and tensor when it is missing or misshapen. For a
  // shard's spec (param_specs(cfg, shard)) it reads the shard's slice of the logical tensor.
  void read(const std::string& name, const nn::ParamSpec& p, float* out) const;
  // The layout the checkpoint was written under ({tp, pp, dp, zero}), or null for one process.
  const nlohmann::json& saved_layout() const { return layout_; }

 private:
  std::string file_;
  io::ShardReader reader_;
  std::set<std::string> names_;
  nn::LlamaConfig config_;
  std::string tokenizer_sha256_;
  uint64_t step_ = 0;
  nlohmann::json train_state_;
  nlohmann::json layout_;
};

// Writes one checkpoint file (model.h5) tensor by tensor: the attributes first, then
// write_param() for every spec of param_specs(config), in any order; close() checks that each
// was written. train_state may be null (a weights-only checkpoint, e.g. an imported model).
class CheckpointFileWriter {
 public:
  CheckpointFileWriter(const std::string& path, const nn::LlamaConfig& config, const std::string& tokenizer_sha256,
                       uint64_t step, const nlohmann::json& train_state, const std::string& tool,
                       const nlohmann::json& options);
  void write(const std::string& name, const nn::ParamSpec& p, const float* data);
  void close();

 private:
  io::ShardWriter writer_;
  nn::LlamaConfig config_;
  std::set<std::string> written_;
};

// --- checkpoints of runs across ranks -----------------------------------------------------------
// Each rank writes the blocks of the logical tensors it owns into parts/rank-NNNNN.h5 (kind
// checkpoint_part), in parallel; rank 0 then writes model.h5, whose tensors are HDF5 virtual
// datasets over those blocks. So the checkpoint reads as whole tensors, like a single process's
// (CheckpointReader, ckpt-convert, h5py), no rank ever holds the whole model, and any layout can
// load it: each rank reads its slice by hyperslab (load_rank_slices).
struct RankSlices {
  const std::vector<nn::ParamSpec>* specs = nullptr;  // the rank's shard, param_specs(cfg, shard)
  const float* params = nullptr;                      // [total] host copy of the shard's parameters
  const float* exp_avg = nullptr;                     // [hi - lo] host copies of the moments it holds
  const float* exp_avg_sq = nullptr;
  size_t lo = 0, hi = 0;  // the flat range those moments cover (ZeRO: a 1/dp share)
  // Writes its blocks: false for a data-parallel replica of another rank's (without ZeRO only
  // dp rank 0 writes). Tensors replicated over tensor parallelism are written by tp rank 0.
  bool writes = true;
  int tp_rank = 0;
};
// Collective over `world`. Returns the new checkpoint directory on every rank.
std::string save_checkpoint_parallel(dist::Communicator& world, const std::string& run_dir,
                                     const nn::LlamaConfig& config, const std::string& tokenizer_sha256,
                                     uint64_t step, const nlohmann::json& train_state, const std::string& tool,
                                     const nlohmann::json& options, unsigned keep, const nlohmann::json& layout,
                                     const RankSlices& mine);
// Reads a shard's slices: params[total] for every spec; with exp_avg non-null also the moments of
// the flat range [lo, hi) into exp_avg/exp_avg_sq[hi - lo]. Any checkpoint, any layout.
void load_rank_slices(const CheckpointReader& r, const std::vector<nn::ParamSpec>& specs, float* params,
                      float* exp_avg, float* exp_avg_sq, size_t lo, size_t hi);

// Writes DIR/latest naming the checkpoint directory `name`, atomically.
void write_latest(const std::string& checkpoints_dir, const std::string& name);
// "step-00000100": the directory name of a step's checkpoint.
std::string checkpoint_dir_name(uint64_t step);

// Complete checkpoints under RUNDIR/checkpoints, newest first (step-* directories).
std::vector<std::string> list_checkpoints(const std::string& run_dir);

// --ckpt for lm-generate and friends: a checkpoint directory, its model.h5, or a run directory
// (its `latest`). Throws UsageError naming the path when it is none of these.
std::string resolve_checkpoint(const std::string& path);

}  // namespace bellows::train
