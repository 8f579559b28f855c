// A Llama model for generation: one sequence (B = 1), forward only, with a KV cache so that
// each new token costs one row of work instead of a rerun of the whole prefix.
//
// It is the same network as nn::LlamaModel (same backend ops, same parameter layout: the order
// and offsets of nn::param_specs, i.e. a checkpoint's params vector as is) and gives the same
// logits as LlamaModel::forward for a row holding one document that starts at position 0; the
// unit tests hold it to that. Positions run 0, 1, 2, ... with no document resets.
//
// The cache keeps, per layer, the keys after RoPE and the values of every position seen so far
// ([max_len, KV*D] each); a forward of n tokens writes their rows into it directly, so nothing is
// copied. Every buffer is allocated once, when the model is built.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"

namespace bellows::gen {

class KvCacheModel {
 public:
  // max_len: the positions the cache holds (<= max_position_embeddings); chunk: the most rows
  // one pass of the layers takes (a longer prefill runs in several passes).
  KvCacheModel(const nn::LlamaConfig& cfg, nn::Backend& be, int max_len, int chunk = 64);

  const nn::LlamaConfig& config() const { return cfg_; }
  size_t num_params() const { return n_params_; }
  float* param_data() { return params_; }  // [num_params] on the backend, param_specs order
  void load_params(const std::vector<float>& host);  // uploads a checkpoint's params vector
  nn::Backend& backend() { return be_; }
  int max_len() const { return max_len_; }
  int position() const { return pos_; }  // positions in the cache: the next token's position

  // Empties the cache (the next forward starts at position 0).
  void reset() { pos_ = 0; }

  // Runs n tokens (ids[n], host) at positions position()..position()+n-1 and appends them to the
  // cache. logits (host): with all_logits [n, V], the logits of every one of them; otherwise [V],
  // those of the last (what generation needs; the lm_head then runs on one row only). Throws
  // RuntimeError for an id outside the vocabulary or when the cache would overflow.
  void forward(const int32_t* ids, int n, bool all_logits, std::vector<float>& logits);

 private:
  void forward_chunk(const int32_t* ids, int n, bool all_logits, bool last_chunk, std::vector<float>& logits,
                     size_t logits_row0);
  void layer_forward(int l, int n);
  const float* P(size_t off) const { return params_ + off; }

  nn::LlamaConfig cfg_;
  nn::Backend& be_;
  int max_len_, chunk_, C_, F_, H_, KV_, D_, V_;
  int pos_ = 0;
  size_t n_params_ = 0;
  float* params_ = nullptr;
  nn::ParamLayout layout_;  // offsets into params_

  float* rope_cos_ = nullptr;  // [max_len, D/2]
  float* rope_sin_ = nullptr;  // [max_len, D/2]
  std::vector<float*> kcache_;  // [L] x [max_len, KV*D] keys after RoPE
  std::vector<float*> vcache_;  // [L] x [max_len, KV*D]

  // One chunk's activations (n <= chunk rows).
  int32_t* ids_ = nullptr;    // [chunk]
  int32_t* posv_ = nullptr;   // [chunk] positions of the rows
  float* x_ = nullptr;        // [chunk, C] residual stream: the layer's input
  float* y_ = nullptr;        // [chunk, C] the layer's output (then swapped with x_)
  float* ln_ = nullptr;       // [chunk, C]
  float* rstd_ = nullptr;     // [chunk]
  float* q_ = nullptr;        // [chunk, H*D] after RoPE
  float* atty_ = nullptr;     // [chunk, H*D] attention output, before o_proj
  float* mid_ = nullptr;      // [chunk, C] after the attention residual
  float* gate_ = nullptr;     // [chunk, F]
  float* up_ = nullptr;       // [chunk, F]
  float* h_ = nullptr;        // [chunk, F] silu(gate) * up
  float* logits_ = nullptr;   // [chunk, V]
  std::vector<int32_t> host_pos_;  // [chunk]
};

}  // namespace bellows::gen
