// A Llama-family causal LM as HF's LlamaForCausalLM defines it, with forward and backward written
// out layer by layer (no autograd), on any Backend.
//
// Parameters, and their gradients, each live in one contiguous buffer, tensor after tensor in
// the order of params() (HF names and shapes), so that the optimizer, the gradient norm and
// (later) the data-parallel all-reduce see one array. Every activation buffer is allocated once,
// for a fixed micro-batch B x T, when the model is built.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/backend.hpp"
#include "nn/config.hpp"

namespace bellows::nn {

struct ParamSpec {
  std::string name;            // HF name, e.g. model.layers.0.self_attn.q_proj.weight
  std::vector<int64_t> shape;  // logical shape, [out, in] for Linear weights
  size_t offset = 0;           // into the parameter (and gradient) buffer
  size_t numel = 0;
  bool decay = true;           // AdamW weight decay applies (not to norms)
};

// The parameter list of a config, with offsets; the order every checkpoint and buffer uses.
std::vector<ParamSpec> param_specs(const LlamaConfig& cfg);

// Where each weight of a config sits in the parameter buffer (offsets from param_specs), for the
// code that runs the model (training, and generation with a KV cache).
struct ParamLayout {
  struct Layer {
    size_t attn_norm, q, k, v, o, mlp_norm, gate, up, down;
  };
  size_t embed = 0, final_norm = 0, lm_head = 0;  // lm_head == embed when the embeddings are tied
  std::vector<Layer> layers;
  size_t total = 0;  // floats in the buffer
  static ParamLayout of(const LlamaConfig& cfg);
};

enum class Recompute {
  none,       // keep every activation for the backward
  selective,  // keep all but the attention probabilities [B,H,T,T], recomputed per layer
  full        // keep only each layer's input; rerun the layer's forward before its backward
};
Recompute parse_recompute(const std::string& s);  // UsageError naming --recompute
const char* to_string(Recompute r);

class LlamaModel {
 public:
  LlamaModel(const LlamaConfig& cfg, Backend& be, int B, int T, Recompute recompute = Recompute::none);

  const LlamaConfig& config() const { return cfg_; }
  const std::vector<ParamSpec>& params() const { return specs_; }
  size_t num_params() const { return n_params_; }
  float* param_data() { return params_; }
  float* grad_data() { return grads_; }
  int batch() const { return B_; }
  int seq_len() const { return T_; }
  Backend& backend() { return be_; }

  // HF's initialisation: Linear and Embedding weights ~ N(0, 0.02), norm weights 1. Each tensor
  // draws from its own stream seeded by (seed, its name), so values do not depend on layout.
  void init_weights(uint64_t seed, double stddev = 0.02);

  // One micro-batch, host arrays of B*T: input ids, targets (-1: no loss), positions for RoPE
  // and, per token, the index (within its row) of the first token its attention may see.
  void set_batch(const int32_t* ids, const int32_t* targets, const int32_t* pos, const int32_t* doc_start);
  // Forward pass; returns the sum of the per-token losses over targets != -1. With
  // grad_scale != 0 the logits buffer is turned into dloss/dlogits * grad_scale, ready for
  // backward(); with 0, logits() holds the logits afterwards.
  double forward(float grad_scale);
  // Backward pass of the last forward; accumulates (+=) into the gradient buffer.
  void backward();
  const float* logits() const { return logits_; }    // [B*T, V] on the backend
  const float* losses() const { return losses_; }    // [B*T]

  size_t activation_bytes() const { return act_bytes_; }
  // Bytes of activations a model of this config would allocate (for --dry-run).
  static size_t activation_floats(const LlamaConfig& cfg, int B, int T, Recompute rc);

 private:
  struct LayerAct {  // activation buffers; shared ones point at the same memory
    float* ln1;        // [N,C]
    float* rstd1;      // [N]
    float* q;          // [N,H*D] after RoPE
    float* k;          // [N,KV*D] after RoPE
    float* v;          // [N,KV*D]
    float* att;        // [B,H,T,T] softmax probabilities
    float* atty;       // [N,H*D] attention output, before o_proj
    float* resid_mid;  // [N,C] after the attention residual
    float* ln2;        // [N,C]
    float* rstd2;      // [N]
    float* gate;       // [N,F]
    float* up;         // [N,F]
    float* h;          // [N,F] silu(gate) * up
  };
  void layer_forward(int l);
  void layer_backward(int l);
  float* P(size_t off) { return params_ + off; }
  float* G(size_t off) { return grads_ + off; }

  LlamaConfig cfg_;
  Backend& be_;
  int B_, T_, N_, C_, F_, H_, KV_, D_, V_;
  Recompute recompute_;
  std::vector<ParamSpec> specs_;
  size_t n_params_ = 0;
  float* params_ = nullptr;
  float* grads_ = nullptr;
  ParamLayout layout_;  // offsets into params_ and grads_

  float* rope_cos_ = nullptr;  // [T_max, D/2]
  float* rope_sin_ = nullptr;
  int32_t* ids_ = nullptr;        // [N]
  int32_t* targets_ = nullptr;    // [N]
  int32_t* pos_ = nullptr;        // [N]
  int32_t* doc_start_ = nullptr;  // [N]

  std::vector<float*> resid_;  // [L+1] x [N,C]: the input of each layer, then the final hidden state
  std::vector<LayerAct> act_;  // [L]
  float* lnf_ = nullptr;       // [N,C]
  float* rstdf_ = nullptr;     // [N]
  float* logits_ = nullptr;    // [N,V]; dlogits after forward(grad_scale != 0)
  float* losses_ = nullptr;    // [N]
  // Gradient buffers, one set reused by every layer.
  float* dresid_ = nullptr;  // [N,C] gradient of the residual stream
  float* dln_ = nullptr;     // [N,C]
  float* dq_ = nullptr;      // [N,H*D]
  float* dk_ = nullptr;      // [N,KV*D]
  float* dv_ = nullptr;      // [N,KV*D]
  float* datty_ = nullptr;   // [N,H*D]
  float* dh_ = nullptr;      // [N,F]
  float* dgate_ = nullptr;   // [N,F]
  float* dup_ = nullptr;     // [N,F]
  size_t act_bytes_ = 0;
  std::vector<float> host_losses_;  // [N]
};

}  // namespace bellows::nn
