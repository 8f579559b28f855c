// LoRA adapter files (kind lora_adapter, schemas/lora_adapter.json): the A and B factors of every
// adapted projection under "lora/<base linear>/A|B", the LoRA settings, the base's config and
// fingerprint (so an adapter is never applied to another base), and, in a training checkpoint,
// the factors' AdamW moments and the trainer's state.
//
// lora-tune writes RUNDIR/checkpoints/step-N/adapter.h5 (atomically, `latest` as pretrain's);
// lm-generate --lora and ckpt-convert --lora read any adapter file, checkpoint or run directory.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/config.hpp"
#include "nn/lora.hpp"
#include "train/checkpoint.hpp"

namespace bellows::train {

struct AdapterData {
  nn::LoraConfig lora;
  nn::LlamaConfig base_config;
  std::string base_fingerprint;
  std::string tokenizer_sha256;
  uint64_t step = 0;
  nlohmann::json train_state;              // null: an exported or imported adapter
  std::vector<float> tensors;              // lora_param_specs(base_config, lora) order, concatenated
  std::vector<float> exp_avg, exp_avg_sq;  // empty without optimizer state
};

// SHA-256 over the base's parameter names, shapes and fp32 values (little-endian), in
// param_specs order, read tensor by tensor (a model larger than memory is fine).
std::string base_fingerprint(const CheckpointReader& base);
// The same digest (the same byte stream) of a base already in memory: params in
// param_specs(config) order, as load_checkpoint returns them (lm-generate --lora reads the base
// once).
std::string base_fingerprint(const nn::LlamaConfig& config, const std::vector<float>& params);

// Writes one adapter file (into a temporary name, renamed when complete).
void write_adapter_file(const std::string& path, const AdapterData& d, const std::string& tool,
                        const nlohmann::json& options);
// Reads an adapter file; with_optimizer: also the moments (RuntimeError naming the file when
// missing). RuntimeError naming the file for anything unreadable or inconsistent.
AdapterData read_adapter_file(const std::string& path, bool with_optimizer);

// RUNDIR/checkpoints/step-N/adapter.h5 (+ config.json), atomically; `latest`; keeps the newest
// `keep`. Returns the checkpoint directory.
std::string save_adapter_checkpoint(const std::string& run_dir, const AdapterData& d, const std::string& tool,
                                    const nlohmann::json& options, unsigned keep);

// --lora: an adapter file, a checkpoint directory holding adapter.h5, or a run directory (its
// `latest`). UsageError naming `flag` and the path otherwise.
std::string resolve_adapter(const std::string& path, const std::string& flag = "--lora");

// Refuses (UsageError naming both) an adapter made for another base: different shape or
// fingerprint.
void check_adapter_matches(const AdapterData& a, const std::string& adapter_path, const nn::LlamaConfig& base_config,
                           const std::string& base_fingerprint, const std::string& base_path);

// W += scaling * B A for one adapted projection (A, B: specs of lora_param_specs(a.base_config,
// a.lora); W: that base tensor, [out, in]), in double per element.
void merge_adapter_tensor(const AdapterData& a, const nn::ParamSpec& A, const nn::ParamSpec& B, float* W);
// Folds the adapter into a whole base's parameters (param_specs(base_config) order):
// W += scaling * B A, in double per element, for every adapted projection.
void merge_adapter(const AdapterData& a, std::vector<float>& params);

}  // namespace bellows::train
