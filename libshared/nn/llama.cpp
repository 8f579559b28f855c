#include "nn/llama.hpp"

#include <cmath>

#include "core/error.hpp"
#include "nn/rng.hpp"

namespace bellows::nn {

std::vector<ParamSpec> param_specs(const LlamaConfig& c) {
  std::vector<ParamSpec> s;
  const int64_t C = c.hidden_size, F = c.intermediate_size, HD = c.num_attention_heads * c.head_dim(),
                KVD = c.num_key_value_heads * c.head_dim();
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    ParamSpec p;
    p.name = std::move(name);
    p.decay = shape.size() > 1;
    p.numel = 1;
    for (int64_t d : shape) p.numel *= static_cast<size_t>(d);
    p.shape = std::move(shape);
    p.offset = s.empty() ? 0 : s.back().offset + s.back().numel;
    s.push_back(std::move(p));
  };
  add("model.embed_tokens.weight", {c.vocab_size, C});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {C});
    add(p + "self_attn.q_proj.weight", {HD, C});
    add(p + "self_attn.k_proj.weight", {KVD, C});
    add(p + "self_attn.v_proj.weight", {KVD, C});
    add(p + "self_attn.o_proj.weight", {C, HD});
    add(p + "post_attention_layernorm.weight", {C});
    add(p + "mlp.gate_proj.weight", {F, C});
    add(p + "mlp.up_proj.weight", {F, C});
    add(p + "mlp.down_proj.weight", {C, F});
  }
  add("model.norm.weight", {C});
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, C});
  return s;
}

ParamLayout ParamLayout::of(const LlamaConfig& cfg) {
  const auto specs = param_specs(cfg);
  ParamLayout p;
  size_t i = 0;
  p.embed = specs[i++].offset;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    Layer w;
    for (size_t* f : {&w.attn_norm, &w.q, &w.k, &w.v, &w.o, &w.mlp_norm, &w.gate, &w.up, &w.down}) *f = specs[i++].offset;
    p.layers.push_back(w);
  }
  p.final_norm = specs[i++].offset;
  p.lm_head = cfg.tie_word_embeddings ? p.embed : specs[i++].offset;
  p.total = specs.back().offset + specs.back().numel;
  return p;
}

Recompute parse_recompute(const std::string& s) {
  if (s == "none") return Recompute::none;
  if (s == "selective") return Recompute::selective;
  if (s == "full") return Recompute::full;
  throw UsageError("--recompute: '" + s + "' is not one of none, selective, full");
}

const char* to_string(Recompute r) {
  switch (r) {
    case Recompute::none: return "none";
    case Recompute::selective: return "selective";
    case Recompute::full: return "full";
  }
  return "?";
}

namespace {
// Floats of one layer's activations, split by what recomputation keeps.
struct LayerFloats {
  size_t per_layer_kept;  // ln1 rstd1 q k v atty resid_mid ln2 rstd2 gate up h
  size_t att;             // [B,H,T,T]
};
LayerFloats layer_floats(const LlamaConfig& c, size_t B, size_t T) {
  const size_t N = B * T, C = size_t(c.hidden_size), F = size_t(c.intermediate_size),
               HD = size_t(c.num_attention_heads * c.head_dim()), KVD = size_t(c.num_key_value_heads * c.head_dim());
  return {N * (C + 1 + HD + 2 * KVD + HD + C + C + 1 + 3 * F), B * size_t(c.num_attention_heads) * T * T};
}
}  // namespace

size_t LlamaModel::activation_floats(const LlamaConfig& c, int B, int T, Recompute rc) {
  const size_t N = size_t(B) * T, L = size_t(c.num_hidden_layers), C = size_t(c.hidden_size),
               F = size_t(c.intermediate_size), V = size_t(c.vocab_size),
               HD = size_t(c.num_attention_heads * c.head_dim()), KVD = size_t(c.num_key_value_heads * c.head_dim());
  LayerFloats lf = layer_floats(c, size_t(B), size_t(T));
  size_t layers = 0;
  switch (rc) {
    case Recompute::none: layers = L * (lf.per_layer_kept + lf.att); break;
    case Recompute::selective: layers = L * lf.per_layer_kept + lf.att; break;
    case Recompute::full: layers = lf.per_layer_kept + lf.att; break;
  }
  const size_t resid = (L + 1) * N * C, head = N * C + N + N * V + N;
  const size_t grads = N * C * 2 + N * HD * 2 + N * KVD * 2 + N * F * 3;
  return layers + resid + head + grads;
}

LlamaModel::LlamaModel(const LlamaConfig& cfg, Backend& be, int B, int T, Recompute recompute)
    : cfg_(cfg), be_(be), B_(B), T_(T), N_(B * T), C_(int(cfg.hidden_size)), F_(int(cfg.intermediate_size)),
      H_(int(cfg.num_attention_heads)), KV_(int(cfg.num_key_value_heads)), D_(int(cfg.head_dim())),
      V_(int(cfg.vocab_size)), recompute_(recompute) {
  cfg_.validate("model config");
  BELLOWS_CHECK(B > 0 && T > 0, "micro-batch and sequence length must be positive");
  specs_ = param_specs(cfg_);
  layout_ = ParamLayout::of(cfg_);
  n_params_ = layout_.total;
  params_ = be_.alloc(n_params_);
  grads_ = be_.alloc(n_params_);

  // RoPE tables for the positions a row can hold.
  const int max_pos = int(std::min<int64_t>(cfg_.max_position_embeddings, T));
  std::vector<float> cos, sin;
  rope_tables(cos, sin, max_pos, D_, cfg_.rope_theta, cfg_.rope_scaling ? &*cfg_.rope_scaling : nullptr);
  rope_cos_ = be_.alloc(cos.size());
  rope_sin_ = be_.alloc(sin.size());
  be_.upload(rope_cos_, cos.data(), cos.size());
  be_.upload(rope_sin_, sin.data(), sin.size());
  ids_ = be_.alloc_int(size_t(N_));
  targets_ = be_.alloc_int(size_t(N_));
  pos_ = be_.alloc_int(size_t(N_));
  doc_start_ = be_.alloc_int(size_t(N_));

  const size_t before = be_.bytes_allocated();
  const size_t N = size_t(N_), C = size_t(C_), F = size_t(F_), HD = size_t(H_ * D_), KVD = size_t(KV_ * D_);
  const int L = int(cfg_.num_hidden_layers);
  for (int l = 0; l <= L; ++l) resid_.push_back(be_.alloc(N * C));
  auto alloc_layer = [&]() {
    LayerAct a{};
    a.ln1 = be_.alloc(N * C);
    a.rstd1 = be_.alloc(N);
    a.q = be_.alloc(N * HD);
    a.k = be_.alloc(N * KVD);
    a.v = be_.alloc(N * KVD);
    a.atty = be_.alloc(N * HD);
    a.resid_mid = be_.alloc(N * C);
    a.ln2 = be_.alloc(N * C);
    a.rstd2 = be_.alloc(N);
    a.gate = be_.alloc(N * F);
    a.up = be_.alloc(N * F);
    a.h = be_.alloc(N * F);
    return a;
  };
  const size_t att_n = size_t(B_) * H_ * T_ * T_;
  if (recompute_ == Recompute::full) {
    LayerAct shared = alloc_layer();
    shared.att = be_.alloc(att_n);
    act_.assign(size_t(L), shared);
  } else {
    float* shared_att = recompute_ == Recompute::selective ? be_.alloc(att_n) : nullptr;
    for (int l = 0; l < L; ++l) {
      LayerAct a = alloc_layer();
      a.att = shared_att ? shared_att : be_.alloc(att_n);
      act_.push_back(a);
    }
  }
  lnf_ = be_.alloc(N * C);
  rstdf_ = be_.alloc(N);
  logits_ = be_.alloc(N * size_t(V_));
  losses_ = be_.alloc(N);
  dresid_ = be_.alloc(N * C);
  dln_ = be_.alloc(N * C);
  dq_ = be_.alloc(N * HD);
  dk_ = be_.alloc(N * KVD);
  dv_ = be_.alloc(N * KVD);
  datty_ = be_.alloc(N * HD);
  dh_ = be_.alloc(N * F);
  dgate_ = be_.alloc(N * F);
  dup_ = be_.alloc(N * F);
  act_bytes_ = be_.bytes_allocated() - before;
  host_losses_.assign(N, 0.0f);
}

void LlamaModel::init_weights(uint64_t seed, double stddev) {
  std::vector<float> host;
  for (const auto& p : specs_) {
    host.resize(p.numel);
    if (!p.decay) {
      std::fill(host.begin(), host.end(), 1.0f);  // RMSNorm weights start at 1
    } else {
      Rng rng(seed, p.name);
      for (auto& x : host) x = float(rng.normal() * stddev);
    }
    be_.upload(params_ + p.offset, host.data(), p.numel);
  }
}

void LlamaModel::set_batch(const int32_t* ids, const int32_t* targets, const int32_t* pos, const int32_t* doc_start) {
  for (int n = 0; n < N_; ++n) {
    if (ids[n] < 0 || ids[n] >= V_)
      throw RuntimeError("token id " + std::to_string(ids[n]) + " is outside the model's vocabulary of " + std::to_string(V_));
    if (targets[n] < -1 || targets[n] >= V_)
      throw RuntimeError("target id " + std::to_string(targets[n]) + " is outside the model's vocabulary of " + std::to_string(V_));
    const int t = n % T_;
    BELLOWS_CHECK(doc_start[n] >= 0 && doc_start[n] <= t && pos[n] >= 0 && pos[n] < T_, "bad position or document start");
  }
  be_.upload_int(ids_, ids, size_t(N_));
  be_.upload_int(targets_, targets, size_t(N_));
  be_.upload_int(pos_, pos, size_t(N_));
  be_.upload_int(doc_start_, doc_start, size_t(N_));
}

void LlamaModel::layer_forward(int l) {
  const ParamLayout::Layer& w = layout_.layers[size_t(l)];
  LayerAct& a = act_[size_t(l)];
  const float* x = resid_[size_t(l)];
  float* out = resid_[size_t(l) + 1];
  const float eps = float(cfg_.rms_norm_eps);
  be_.rmsnorm_fwd(a.ln1, a.rstd1, x, P(w.attn_norm), N_, C_, eps);
  be_.matmul_fwd(a.q, a.ln1, P(w.q), N_, C_, H_ * D_);
  be_.matmul_fwd(a.k, a.ln1, P(w.k), N_, C_, KV_ * D_);
  be_.matmul_fwd(a.v, a.ln1, P(w.v), N_, C_, KV_ * D_);
  be_.rope_fwd(a.q, pos_, rope_cos_, rope_sin_, N_, H_, D_);
  be_.rope_fwd(a.k, pos_, rope_cos_, rope_sin_, N_, KV_, D_);
  be_.attention_fwd(a.atty, a.att, a.q, a.k, a.v, doc_start_, B_, T_, H_, KV_, D_);
  be_.matmul_fwd(a.resid_mid, a.atty, P(w.o), N_, H_ * D_, C_);
  be_.add_inplace(a.resid_mid, x, size_t(N_) * C_);
  be_.rmsnorm_fwd(a.ln2, a.rstd2, a.resid_mid, P(w.mlp_norm), N_, C_, eps);
  be_.matmul_fwd(a.gate, a.ln2, P(w.gate), N_, C_, F_);
  be_.matmul_fwd(a.up, a.ln2, P(w.up), N_, C_, F_);
  be_.swiglu_fwd(a.h, a.gate, a.up, size_t(N_) * F_);
  be_.matmul_fwd(out, a.h, P(w.down), N_, F_, C_);
  be_.add_inplace(out, a.resid_mid, size_t(N_) * C_);
}

double LlamaModel::forward(float grad_scale) {
  be_.embedding_fwd(resid_[0], ids_, P(layout_.embed), N_, C_);
  const int L = int(cfg_.num_hidden_layers);
  for (int l = 0; l < L; ++l) layer_forward(l);
  be_.rmsnorm_fwd(lnf_, rstdf_, resid_[size_t(L)], P(layout_.final_norm), N_, C_, float(cfg_.rms_norm_eps));
  be_.matmul_fwd(logits_, lnf_, P(layout_.lm_head), N_, C_, V_);
  be_.cross_entropy(losses_, logits_, targets_, N_, V_, grad_scale);
  be_.download(host_losses_.data(), losses_, host_losses_.size());
  double sum = 0;
  for (float x : host_losses_) sum += x;
  return sum;
}

void LlamaModel::layer_backward(int l) {
  const ParamLayout::Layer& w = layout_.layers[size_t(l)];
  LayerAct& a = act_[size_t(l)];
  const float* x = resid_[size_t(l)];
  if (recompute_ == Recompute::full) {
    layer_forward(l);  // refills the shared buffers (and resid_[l+1] with the same values)
  } else if (recompute_ == Recompute::selective) {
    // The probabilities from q, k, v kept for this layer (atty comes out the same again).
    be_.attention_fwd(a.atty, a.att, a.q, a.k, a.v, doc_start_, B_, T_, H_, KV_, D_);
  }
  // dresid_ holds d loss / d out (the layer's output). MLP block: out = h Wd^T + resid_mid.
  be_.matmul_bwd(dh_, G(w.down), dresid_, a.h, P(w.down), N_, F_, C_, false);
  be_.swiglu_bwd(dgate_, dup_, dh_, a.gate, a.up, size_t(N_) * F_);
  be_.matmul_bwd(dln_, G(w.gate), dgate_, a.ln2, P(w.gate), N_, C_, F_, false);
  be_.matmul_bwd(dln_, G(w.up), dup_, a.ln2, P(w.up), N_, C_, F_, true);
  be_.rmsnorm_bwd(dresid_, G(w.mlp_norm), dln_, a.resid_mid, P(w.mlp_norm), a.rstd2, N_, C_);
  // dresid_ = d loss / d resid_mid. Attention block: resid_mid = x + atty Wo^T.
  be_.matmul_bwd(datty_, G(w.o), dresid_, a.atty, P(w.o), N_, H_ * D_, C_, false);
  be_.attention_bwd(dq_, dk_, dv_, datty_, a.q, a.k, a.v, a.att, doc_start_, B_, T_, H_, KV_, D_);
  be_.rope_bwd(dq_, pos_, rope_cos_, rope_sin_, N_, H_, D_);
  be_.rope_bwd(dk_, pos_, rope_cos_, rope_sin_, N_, KV_, D_);
  be_.matmul_bwd(dln_, G(w.q), dq_, a.ln1, P(w.q), N_, C_, H_ * D_, false);
  be_.matmul_bwd(dln_, G(w.k), dk_, a.ln1, P(w.k), N_, C_, KV_ * D_, true);
  be_.matmul_bwd(dln_, G(w.v), dv_, a.ln1, P(w.v), N_, C_, KV_ * D_, true);
  be_.rmsnorm_bwd(dresid_, G(w.attn_norm), dln_, x, P(w.attn_norm), a.rstd1, N_, C_);
  // dresid_ = d loss / d x, the previous layer's output.
}

void LlamaModel::backward() {
  const int L = int(cfg_.num_hidden_layers);
  // logits_ holds dloss/dlogits (cross_entropy wrote it in place).
  be_.matmul_bwd(dln_, G(layout_.lm_head), logits_, lnf_, P(layout_.lm_head), N_, C_, V_, false);
  be_.zero(dresid_, size_t(N_) * C_);
  be_.rmsnorm_bwd(dresid_, G(layout_.final_norm), dln_, resid_[size_t(L)], P(layout_.final_norm), rstdf_, N_, C_);
  for (int l = L - 1; l >= 0; --l) layer_backward(l);
  be_.embedding_bwd(G(layout_.embed), dresid_, ids_, N_, C_);
}

}  // namespace bellows::nn
