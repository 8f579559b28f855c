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

#include "dist/comm.hpp"
#include "nn/backend.hpp"
#include "nn/config.hpp"

namespace bellows::nn {

struct LoraConfig;

// The part of the model one rank holds under tensor and pipeline parallelism (Megatron's cuts):
// the layers of its pipeline stage, the embedding on the first stage, the final norm and head on
// the last; within those, its tensor-parallel slice: q/k/v and gate/up by output rows (column
// parallel), o and down by input columns (row parallel), the embedding and lm_head by vocabulary
// rows (vocabulary parallel); norms are whole on every rank. The default is the whole model.
struct ModelShard {
  int tp_rank = 0, tp_size = 1;
  int layer_begin = 0, layer_end = -1;  // [begin, end) of the config's layers; -1: to the last
  bool has_embedding = true;            // first pipeline stage
  bool has_head = true;                 // last pipeline stage: final norm, lm_head, loss
  int layers(const LlamaConfig& cfg) const { return (layer_end < 0 ? int(cfg.num_hidden_layers) : layer_end) - layer_begin; }
  bool whole(const LlamaConfig& cfg) const {
    return tp_size == 1 && layer_begin == 0 && layers(cfg) == int(cfg.num_hidden_layers) && has_embedding && has_head;
  }
};

// Throws UsageError naming --tp when the config cannot be cut tp ways (heads, kv heads and the MLP
// width must divide; the vocabulary need not).
void check_tensor_parallel(const LlamaConfig& cfg, int tp);
// [begin, end) of the vocabulary rows tensor-parallel rank r of t holds (as even as possible).
std::pair<int64_t, int64_t> vocab_range(int64_t vocab, int r, int t);

struct ParamSpec {
  std::string name;            // HF name, e.g. model.layers.0.self_attn.q_proj.weight
  std::vector<int64_t> shape;  // shape of what this rank holds ([out, in] for Linear weights)
  size_t offset = 0;           // into the parameter (and gradient) buffer
  size_t numel = 0;
  bool decay = true;           // AdamW weight decay applies (not to norms)
  // The logical tensor and where this slice sits in it: along split_dim (-1: the whole tensor)
  // from split_begin. For the whole model, global_shape == shape.
  std::vector<int64_t> global_shape;
  int split_dim = -1;
  int64_t split_begin = 0;
  // Whole on every rank of a tensor-parallel group of more than one (norms): counted once in
  // the gradient norm, written once in a checkpoint.
  bool tp_replicated = false;
  // The last pipeline stage's copy of tied embeddings (the lm_head role; the first stage owns
  // the tensor): its gradient is added to the owner's, and it is not saved.
  bool tied_copy = false;
  // Whole on every tensor-parallel rank, but each rank's gradient is only its share (a LoRA
  // factor beside a split base linear): the group's sum is the gradient.
  bool tp_grad_partial = false;
};

// The parameter list of a config, with offsets; the order every checkpoint and buffer uses.
std::vector<ParamSpec> param_specs(const LlamaConfig& cfg);
// Where element i of a shard's tensor p (row-major in p.shape) sits in the logical tensor
// (row-major in p.global_shape).
size_t logical_index(const ParamSpec& p, size_t i);
// The same for one rank's shard: its tensors, in the same order, with local shapes and offsets.
std::vector<ParamSpec> param_specs(const LlamaConfig& cfg, const ModelShard& shard);

// Where each weight of a config sits in the parameter buffer (offsets from param_specs), for the
// code that runs the model (training, and generation with a KV cache).
struct ParamLayout {
  struct Layer {
    size_t attn_norm, q, k, v, o, mlp_norm, gate, up, down;
  };
  static constexpr size_t kNone = size_t(-1);
  size_t embed = 0, final_norm = 0, lm_head = 0;  // lm_head == embed when the embeddings are tied
  std::vector<Layer> layers;                      // the shard's layers, from its first
  size_t total = 0;  // floats in the buffer
  static ParamLayout of(const LlamaConfig& cfg);
  // A shard's: embed is kNone off the first stage, final_norm and lm_head off the last.
  static ParamLayout of(const LlamaConfig& cfg, const ModelShard& shard);
};

// How a model runs when it is one rank's part of a larger one.
struct ModelParallel {
  ModelShard shard;
  // The tensor-parallel group (its rank and size must be the shard's); null when tp_size is 1.
  // The model's forward and backward all-reduce in it: after o_proj and down_proj forward, before
  // each block's input norm backward, after the embedding, and three [N]-vectors in the
  // vocabulary-parallel cross-entropy. Every rank of the group must call them in step.
  dist::Communicator* tp = nullptr;
  // Micro-batches in flight at once (a pipeline stage under 1F1B holds the activations of up to
  // pp - stage of them); set_batch/forward/backward name the slot.
  int slots = 1;
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
  // With `lora`, the base is frozen (no gradient buffer; its matmuls compute input gradients
  // only) and adapters on lora->targets are what trains.
  // frozen (without lora): forward only, no gradient buffer (DPO's reference copy).
  LlamaModel(const LlamaConfig& cfg, Backend& be, int B, int T, Recompute recompute = Recompute::none,
             const ModelParallel& par = {}, const LoraConfig* lora = nullptr, bool frozen = false);

  const LlamaConfig& config() const { return cfg_; }
  const std::vector<ParamSpec>& params() const { return specs_; }
  size_t num_params() const { return n_params_; }
  float* param_data() { return params_; }
  float* grad_data() { return grads_; }  // null when the base is frozen (LoRA)

  // What the optimizer updates: the base's parameters, or with LoRA the adapters' (their own
  // buffer, lora_param_specs order).
  bool has_lora() const { return lora_rank_ > 0; }
  const std::vector<ParamSpec>& trainable_specs() const { return has_lora() ? lora_specs_ : specs_; }
  size_t num_trainable() const { return has_lora() ? n_lora_ : n_params_; }
  float* trainable_data() { return has_lora() ? lora_params_ : params_; }
  float* trainable_grad() { return has_lora() ? lora_grads_ : grads_; }
  // peft's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform with a = sqrt(5)) from
  // a stream per tensor (layout-independent, as init_weights), B = 0.
  void init_lora(uint64_t seed);
  // The stream of the adapters' dropout masks for the next forward of `slot` (one per
  // micro-batch; a recomputed forward draws the same masks).
  void set_dropout_seed(uint64_t seed, int slot = 0);
  int batch() const { return B_; }
  int seq_len() const { return T_; }
  Backend& backend() { return be_; }

  // HF's initialisation: Linear and Embedding weights ~ N(0, 0.02), norm weights 1. Each tensor
  // draws from its own stream seeded by (seed, its name), element by element in the logical
  // tensor's order, so values do not depend on the layout (a shard takes its slice).
  void init_weights(uint64_t seed, double stddev = 0.02);

  // One micro-batch, host arrays of B*T: input ids, targets (-1: no loss), positions for RoPE
  // and, per token, the index (within its row) of the first token its attention may see.
  void set_batch(const int32_t* ids, const int32_t* targets, const int32_t* pos, const int32_t* doc_start, int slot = 0);
  // Forward pass of a slot; returns the sum of the per-token losses over targets != -1 (0 off
  // the last pipeline stage). With grad_scale != 0 the logits buffer is turned into
  // dloss/dlogits * grad_scale, ready for backward(); with 0, logits() holds the logits
  // afterwards. Off the first stage, stage_input(slot) must hold the previous stage's output.
  double forward(float grad_scale, int slot = 0);
  // Backward pass of the slot's last forward; accumulates (+=) into the gradient buffer. Off the
  // last stage, residual_grad() must hold d loss / d stage_output(slot); afterwards it holds
  // d loss / d stage_input(slot), for the previous stage.
  void backward(int slot = 0);
  const float* logits() const { return logits_; }    // [B*T, V] on the backend (this rank's vocabulary slice)
  const float* losses() const { return losses_; }    // [B*T]
  // The per-token losses of the last forward on the host, [B*T] (last pipeline stage; whole
  // across the tensor-parallel group, the same on each of its ranks).
  const std::vector<float>& host_losses() const { return host_losses_; }
  // After forward(grad_scale = 1): multiplies token n's row of d loss / d logits by factors[n]
  // (host, [B*T]), so that the backward carries a loss that weighs each token's log-probability
  // differently (DPO: each sequence by its pair's d loss / d log-prob).
  void scale_logit_grads(const float* factors);
  // DPO's reference pass on a LoRA model: while on, forwards run without adapter dropout and with
  // the frozen adapter weights w (this shard's adapter layout, on the backend), or the base alone
  // when w is null. No backward may follow such a forward.
  void set_reference_adapters(bool on, const float* w = nullptr);

  // Pipeline hand-over buffers, [B*T, C] each, on the backend.
  float* stage_input(int slot) { return resid_[size_t(slot)].front(); }
  const float* stage_output(int slot) const { return resid_[size_t(slot)].back(); }
  float* residual_grad() { return dresid_; }
  size_t hidden_floats() const { return size_t(N_) * size_t(C_); }
  const ModelShard& shard() const { return par_.shard; }

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
  void layer_forward(int slot, int l);
  void layer_backward(int slot, int l);
  // The adapter of target `t` (0..6, LoraTarget order) on layer l: y += s (drop(x) A^T) B^T, and
  // its backward (dx += ..., the factors' gradients +=).
  void lora_forward(int slot, int l, int t, const float* x, float* y);
  void lora_backward(int slot, int l, int t, const float* dy, const float* x, float* dx);
  void tp_allreduce(float* x, size_t n);
  void loss_forward(float grad_scale, int slot);
  float* P(size_t off) { return params_ + off; }
  float* G(size_t off) { return grads_ ? grads_ + off : nullptr; }

  LlamaConfig cfg_;
  Backend& be_;
  ModelParallel par_;
  // Sizes as this rank holds them: H_, KV_, F_ and V_ are its tensor-parallel share, L_ its
  // stage's layers. v0_ is its first vocabulary row.
  int B_, T_, N_, C_, F_, H_, KV_, D_, V_, L_;
  int64_t v0_ = 0;
  Recompute recompute_;
  std::vector<ParamSpec> specs_;
  size_t n_params_ = 0;
  float* params_ = nullptr;
  float* grads_ = nullptr;
  ParamLayout layout_;  // offsets into params_ and grads_

  float* rope_cos_ = nullptr;  // [T_max, D/2]
  float* rope_sin_ = nullptr;
  struct SlotInputs {
    int32_t* ids;        // [N] ids as this rank's embedding slice indexes them (-1: another slice's)
    int32_t* targets;    // [N] as this rank's vocabulary slice indexes them (-1: no loss, -2: another slice's)
    int32_t* pos;        // [N]
    int32_t* doc_start;  // [N]
  };
  std::vector<SlotInputs> in_;  // [slots]
  std::vector<int32_t> host_ids_, host_targets_;  // [N] scratch for the remapping

  std::vector<std::vector<float*>> resid_;  // [slots][L+1] x [N,C]: each layer's input, then the stage's output
  std::vector<std::vector<LayerAct>> act_;  // [slots][L]
  float* lnf_ = nullptr;       // [N,C]
  float* rstdf_ = nullptr;     // [N]
  float* logits_ = nullptr;    // [N,V]; dlogits after forward(grad_scale != 0)
  float* losses_ = nullptr;    // [N]
  float* ce_max_ = nullptr;    // [N] vocabulary-parallel cross-entropy: row max over all slices
  float* ce_sums_ = nullptr;   // [2N] sum of exp, then the target's logit, over all slices
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

  // --- LoRA (lora_rank_ 0: none) ---
  int lora_rank_ = 0;
  float lora_scale_ = 0, lora_dropout_ = 0;
  struct LoraDims {
    int in, out;         // the base linear's as this rank holds it
    int width, col0;     // its input's logical width and this rank's first column (dropout masks)
  };
  LoraDims lora_dims_[7] = {};
  struct LoraLayer {
    bool on[7] = {};
    size_t a[7] = {}, b[7] = {};  // offsets into lora_params_ / lora_grads_
  };
  std::vector<LoraLayer> lora_layout_;  // [L]
  struct LoraAct {
    float* t[7] = {};     // [N, r] s * (drop(x) A^T)
    float* mask[7] = {};  // [N, in] dropout multipliers (only with dropout)
  };
  std::vector<std::vector<LoraAct>> lora_act_;  // [slots][L]
  std::vector<ParamSpec> lora_specs_;
  size_t n_lora_ = 0;
  float* lora_params_ = nullptr;
  float* lora_grads_ = nullptr;
  float* lora_dt_ = nullptr;  // [N, r] gradient scratch
  float* lora_u_ = nullptr;   // [N, max in] dropped-out input / its gradient (scratch)
  std::vector<uint64_t> dropout_seed_;  // [slots]
  bool reference_pass_ = false;
  const float* reference_adapters_ = nullptr;  // null in a reference pass: the base alone
  float* row_scale_ = nullptr;                 // [N] scale_logit_grads' factors on the backend
};

}  // namespace bellows::nn
