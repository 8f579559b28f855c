// LoRA (Hu et al. 2021, as HF peft computes it): a frozen base linear y = x W^T gains a low-rank
// update, y = x W^T + s · (dropout(x) A^T) B^T, with A [r, in] and B [out, r], s = alpha / r
// (or alpha / sqrt(r) with rsLoRA). A starts random (Kaiming-uniform, as peft), B at zero, so
// training starts from the base exactly.
//
// Adapter tensors are named as the lora_adapter file stores them, "lora/<base linear>/A" and
// ".../B" (e.g. lora/model.layers.3.self_attn.q_proj/A), and listed as ParamSpecs so that the
// optimizer, checkpoints and the tensor-parallel cut treat them like any parameter: for a column-
// parallel base (q, k, v, gate, up) B is split by rows with W and A is whole on every rank; for a
// row-parallel base (o, down) A is split by columns with W and B is whole. The whole one's
// gradient is a partial sum on each rank (tp_grad_partial): the optimizer sums it over the group.
#pragma once

#include <string>
#include <vector>

#include "nn/config.hpp"
#include "nn/llama.hpp"

namespace bellows::nn {

enum class LoraTarget { q, k, v, o, gate, up, down };

struct LoraConfig {
  int rank = 16;
  double alpha = 32;
  double dropout = 0.0;  // on the adapter's input, as peft's lora_dropout
  bool rslora = false;
  std::vector<LoraTarget> targets;  // ascending (q, k, v, o, gate, up, down order)
  double scale() const;
};

// "q,k,v,o,gate,up,down" (any subset, any order; "all") -> targets in canonical order.
// UsageError naming `flag` for an unknown or repeated name.
std::vector<LoraTarget> parse_lora_targets(const std::string& csv, const std::string& flag = "--targets");
const char* to_string(LoraTarget t);              // "q"
std::string hf_module_name(LoraTarget t);          // "self_attn.q_proj", "mlp.gate_proj"
std::string lora_base_name(int layer, LoraTarget t);  // "model.layers.3.self_attn.q_proj"
// The base linear's [out, in] in a config.
std::pair<int64_t, int64_t> lora_target_shape(const LlamaConfig& cfg, LoraTarget t);
bool column_parallel(LoraTarget t);  // q, k, v, gate, up

// UsageError naming the flag: rank <= 0 or larger than a target's smaller side, no targets,
// alpha <= 0, dropout outside [0, 1).
void check_lora(const LlamaConfig& cfg, const LoraConfig& lora);

// The adapter tensors of a shard, layer by layer, target by target, A then B, with offsets into
// one flat buffer (its own, not the base's).
std::vector<ParamSpec> lora_param_specs(const LlamaConfig& cfg, const LoraConfig& lora, const ModelShard& shard = {});

}  // namespace bellows::nn
