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
#include <string>
#include <vector>

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

// Complete checkpoints under RUNDIR/checkpoints, newest first (step-* directories).
std::vector<std::string> list_checkpoints(const std::string& run_dir);

// --ckpt for lm-generate and friends: a checkpoint directory, its model.h5, or a run directory
// (its `latest`). Throws UsageError naming the path when it is none of these.
std::string resolve_checkpoint(const std::string& path);

}  // namespace bellows::train
