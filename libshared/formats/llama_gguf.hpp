// How a Llama model maps onto llama.cpp's GGUF: tensor names, the q/k row order (llama.cpp's
// RoPE rotates adjacent pairs, HF's rotate_half pairs i with i + d/2), Llama 3's frequency
// scaling stored as the rope_freqs tensor, and the llama.* metadata keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf.hpp"
#include "nn/config.hpp"

namespace bellows::formats {

// The GGUF name of an HF parameter name ("model.layers.3.self_attn.q_proj.weight" ->
// "blk.3.attn_q.weight"), and back; "" when there is none.
std::string gguf_name_of_hf(const std::string& hf);
std::string hf_name_of_gguf(const std::string& gguf);

// Which rows of q_proj / k_proj need llama.cpp's order: the number of heads the rows are
// grouped in (num_attention_heads for q, num_key_value_heads for k), or 0 for other tensors.
int64_t qk_heads(const nn::LlamaConfig& cfg, const std::string& hf_name);
// Row permutation of a [heads * d, cols] matrix, per head: to llama.cpp's order, row 2j+h of
// the output is row h*d/2 + j of the input (h in {0, 1}, j < d/2); from_gguf undoes it.
void permute_rows_to_gguf(const float* in, float* out, int64_t heads, int64_t rows, int64_t cols);
void permute_rows_from_gguf(const float* in, float* out, int64_t heads, int64_t rows, int64_t cols);

// Llama 3's rope_freqs.weight: [head_dim / 2] factors that divide each RoPE frequency.
std::vector<float> llama3_rope_freqs(const nn::LlamaConfig& cfg);
// The rope_scaling a rope_freqs tensor came from: the bellows.rope_scaling.* keys our export
// writes when `r` has them, else Llama 3.x's own parameters (low 1, high 4, original context
// 8192) with the factor read from the tensor; accepted only when they reproduce the tensor
// (within 1e-5 relative: converters compute it in float32), nullopt otherwise.
std::optional<nn::RopeScaling> rope_scaling_of_freqs(const nn::LlamaConfig& cfg, const std::vector<float>& freqs,
                                                     const GgufReader* r);

// The llama.* (and general.*) metadata of a config.
void append_llama_metadata(const nn::LlamaConfig& cfg, GgufMetadata& md);
// A config from a GGUF's llama.* keys (vocab size from llama.vocab_size or the token list;
// tie_word_embeddings when there is no output.weight); RuntimeError naming the file and key.
nn::LlamaConfig llama_config_of_gguf(const GgufReader& r);

// The double that prints shortest and still rounds to float f (1e-05 rather than
// 9.99999974737875e-06): values GGUF keeps as f32 come back as they were written in config.json.
double shortest_double_of_float(float f);

}  // namespace bellows::formats
