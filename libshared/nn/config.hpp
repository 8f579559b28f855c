// The shape of a Llama-family model, with HF config.json field names, so a config.json from the
// Hub can be read as is and ours can be written next to exported weights.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace bellows::nn {

// Llama 3's frequency-dependent RoPE rescaling (HF rope_scaling with rope_type "llama3").
struct RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;        // C
  int64_t intermediate_size = 0;  // F
  int64_t num_hidden_layers = 0;  // L
  int64_t num_attention_heads = 0;  // H
  int64_t num_key_value_heads = 0;  // KV (grouped-query attention: H is a multiple of KV)
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }  // D
  // Throws UsageError naming `what` when the shape is inconsistent.
  void validate(const std::string& what) const;
  uint64_t num_params() const;
  uint64_t num_embedding_params() const;  // token embedding (+ lm_head when untied)
  // Training FLOPs per token at sequence length T, as PaLM's MFU formula counts them: 6 per
  // non-embedding parameter (forward and backward matmuls) plus the lm_head's, plus 12 L C T
  // for attention scores and weighted sums (causal masking not discounted).
  double train_flops_per_token(int64_t seq_len) const;

  nlohmann::json to_hf_json() const;  // config.json (architectures, model_type, torch_dtype, ...)
  // Reads HF config.json fields; throws UsageError naming `what` for missing or unsupported ones.
  static LlamaConfig from_hf_json(const nlohmann::json& j, const std::string& what);
};

// Named shapes: tiny (tests), small (~20M parameters, the demo), and real models usable by
// --dry-run without weights: smollm2-135m, llama3.2-1b, llama3-8b, llama3-70b. `vocab_size` is
// the data's (0 keeps the preset's own, for the real shapes). Throws UsageError for an unknown
// name, listing the known ones.
LlamaConfig preset(const std::string& name, int64_t vocab_size);
std::vector<std::string> preset_names();

// --model: a preset name or a path to a config.json (HF field names).
LlamaConfig load_model_config(const std::string& preset_or_path, int64_t data_vocab_size);

}  // namespace bellows::nn
