// LoRA adapters (our lora_adapter files, lora-tune's output) in ckpt-convert, each checked
// against the base it belongs to (same shape, same weights fingerprint) before anything is
// written:
//   --from CKPT --lora A --to peft      -> an HF PEFT directory (adapter_config.json +
//                                           adapter_model.safetensors) that peft loads onto the
//                                           HF export of CKPT;
//   --from CKPT --lora A --to gguf-lora -> a GGUF LoRA adapter that llama.cpp applies to the
//                                           GGUF export of CKPT (--lora / lora_path);
//   --from CKPT --lora A --merge --to hf|gguf
//                                        -> the usual model export with W + scaling B A folded
//                                           in, tensor by tensor (LoraMerge below);
//   --lora-from-peft DIR --from CKPT    -> a PEFT LoRA directory back into our adapter file.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "formats/convert.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "train/adapter.hpp"
#include "train/checkpoint.hpp"

namespace bellows::formats {

// PEFT's module name of a projection ("q_proj", "gate_proj", ...).
std::string peft_module_name(nn::LoraTarget t);

// Reads the adapter `adapter_arg` names (a file, a checkpoint directory holding adapter.h5, or a
// run directory; resolve_adapter's rules, errors naming `flag`) and refuses it (UsageError
// naming both) unless it was made for `base`: same config, same fingerprint (which reads the
// base once, tensor by tensor). Returns the adapter and sets `resolved` to its file.
train::AdapterData load_adapter_for_base(const std::string& adapter_arg, const std::string& flag,
                                         const train::CheckpointReader& base, const std::string& base_path,
                                         std::string& resolved);


// An adapter folded into a model export as each base tensor goes by (--merge): apply() changes
// the adapted projections and leaves every other tensor as read.
class LoraMerge {
 public:
  LoraMerge(const std::string& adapter_arg, const train::CheckpointReader& base, const std::string& base_path);
  // p: a whole base tensor's spec (param_specs(config)), W its values in HF layout.
  void apply(const nn::ParamSpec& p, float* W) const;
  const train::AdapterData& adapter() const { return a_; }
  const std::string& path() const { return path_; }
  // What was merged, for report.json, and for the closing log line (" with A merged (...)").
  nlohmann::json describe() const;
  std::string note() const;

 private:
  train::AdapterData a_;
  std::string path_;
  std::vector<nn::ParamSpec> specs_;
  std::map<std::string, size_t> by_weight_;  // "<base linear>.weight" -> index of its A in specs_
};

ConvertSummary export_peft(const ConvertOptions& o);
ConvertSummary export_gguf_lora(const ConvertOptions& o);
ConvertSummary import_peft_lora(const ConvertOptions& o);

}  // namespace bellows::formats
