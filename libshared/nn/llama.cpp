#include "nn/llama.hpp"

#include <cmath>

#include "core/error.hpp"
#include "nn/lora.hpp"
#include "nn/rng.hpp"

namespace bellows::nn {

void check_tensor_parallel(const LlamaConfig& c, int tp) {
  if (tp < 1) throw UsageError("--tp must be positive (got " + std::to_string(tp) + ")");
  auto need = [&](int64_t n, const std::string& what) {
    if (n % tp != 0)
      throw UsageError("--tp " + std::to_string(tp) + " does not divide the model's " + what + " (" + std::to_string(n) +
                       "): each tensor-parallel rank must hold whole " + what +
                       "; choose a --tp that divides it (pipeline parallelism cuts the depth instead)");
  };
  need(c.num_attention_heads, "attention heads");
  need(c.num_key_value_heads, "key/value heads");  // GQA: kv heads are split, never replicated
  need(c.intermediate_size, "MLP width (intermediate_size)");
}

std::pair<int64_t, int64_t> vocab_range(int64_t vocab, int r, int t) {
  return {vocab * r / t, vocab * (r + 1) / t};
}

std::vector<ParamSpec> param_specs(const LlamaConfig& c, const ModelShard& sh) {
  std::vector<ParamSpec> s;
  const int t = sh.tp_size;
  const int64_t C = c.hidden_size, F = c.intermediate_size, HD = c.num_attention_heads * c.head_dim(),
                KVD = c.num_key_value_heads * c.head_dim();
  const auto [v0, v1] = vocab_range(c.vocab_size, sh.tp_rank, t);
  // split_dim: -1 whole (replicated over TP), 0 rows [begin, begin + n), 1 columns.
  auto add = [&](std::string name, std::vector<int64_t> global, int split_dim, int64_t begin, int64_t n) {
    ParamSpec p;
    p.name = std::move(name);
    p.decay = global.size() > 1;
    p.global_shape = global;
    p.shape = global;
    if (t > 1 && split_dim >= 0) {
      p.split_dim = split_dim;
      p.split_begin = begin;
      p.shape[size_t(split_dim)] = n;
    }
    p.tp_replicated = t > 1 && split_dim < 0;
    p.numel = 1;
    for (int64_t d : p.shape) p.numel *= static_cast<size_t>(d);
    p.offset = s.empty() ? 0 : s.back().offset + s.back().numel;
    s.push_back(std::move(p));
  };
  const int r = sh.tp_rank;
  if (sh.has_embedding) add("model.embed_tokens.weight", {c.vocab_size, C}, 0, v0, v1 - v0);
  const int l1 = sh.layer_end < 0 ? int(c.num_hidden_layers) : sh.layer_end;
  for (int64_t l = sh.layer_begin; l < l1; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {C}, -1, 0, 0);
    add(p + "self_attn.q_proj.weight", {HD, C}, 0, HD / t * r, HD / t);
    add(p + "self_attn.k_proj.weight", {KVD, C}, 0, KVD / t * r, KVD / t);
    add(p + "self_attn.v_proj.weight", {KVD, C}, 0, KVD / t * r, KVD / t);
    add(p + "self_attn.o_proj.weight", {C, HD}, 1, HD / t * r, HD / t);
    add(p + "post_attention_layernorm.weight", {C}, -1, 0, 0);
    add(p + "mlp.gate_proj.weight", {F, C}, 0, F / t * r, F / t);
    add(p + "mlp.up_proj.weight", {F, C}, 0, F / t * r, F / t);
    add(p + "mlp.down_proj.weight", {C, F}, 1, F / t * r, F / t);
  }
  if (sh.has_head) {
    add("model.norm.weight", {C}, -1, 0, 0);
    if (!c.tie_word_embeddings) {
      add("lm_head.weight", {c.vocab_size, C}, 0, v0, v1 - v0);
    } else if (!sh.has_embedding) {
      add("model.embed_tokens.weight", {c.vocab_size, C}, 0, v0, v1 - v0);
      s.back().tied_copy = true;
    }
  }
  return s;
}

std::vector<ParamSpec> param_specs(const LlamaConfig& c) { return param_specs(c, ModelShard{}); }

size_t logical_index(const ParamSpec& p, size_t i) {
  if (p.split_dim < 0 || p.shape.size() < 2) return p.split_dim == 0 ? i + size_t(p.split_begin) : i;
  size_t r = i / size_t(p.shape[1]), c = i % size_t(p.shape[1]);
  if (p.split_dim == 0) r += size_t(p.split_begin);
  else c += size_t(p.split_begin);
  return r * size_t(p.global_shape[1]) + c;
}

ParamLayout ParamLayout::of(const LlamaConfig& cfg, const ModelShard& sh) {
  const auto specs = param_specs(cfg, sh);
  ParamLayout p;
  size_t i = 0;
  p.embed = p.final_norm = p.lm_head = kNone;
  if (sh.has_embedding) p.embed = specs[i++].offset;
  for (int l = 0; l < sh.layers(cfg); ++l) {
    Layer w;
    for (size_t* f : {&w.attn_norm, &w.q, &w.k, &w.v, &w.o, &w.mlp_norm, &w.gate, &w.up, &w.down}) *f = specs[i++].offset;
    p.layers.push_back(w);
  }
  if (sh.has_head) {
    p.final_norm = specs[i++].offset;
    p.lm_head = i < specs.size() ? specs[i++].offset : p.embed;  // tied on one stage: the embedding itself
  }
  p.total = specs.empty() ? 0 : specs.back().offset + specs.back().numel;
  return p;
}

ParamLayout ParamLayout::of(const LlamaConfig& cfg) { return of(cfg, ModelShard{}); }

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

LlamaModel::LlamaModel(const LlamaConfig& cfg, Backend& be, int B, int T, Recompute recompute, const ModelParallel& par,
                       const LoraConfig* lora, bool frozen)
    : cfg_(cfg), be_(be), par_(par), B_(B), T_(T), N_(B * T), C_(int(cfg.hidden_size)), F_(int(cfg.intermediate_size)),
      H_(int(cfg.num_attention_heads)), KV_(int(cfg.num_key_value_heads)), D_(int(cfg.head_dim())),
      V_(int(cfg.vocab_size)), L_(0), recompute_(recompute) {
  cfg_.validate("model config");
  BELLOWS_CHECK(B > 0 && T > 0, "micro-batch and sequence length must be positive");
  const ModelShard& sh = par_.shard;
  const int t = sh.tp_size;
  BELLOWS_CHECK(t >= 1 && sh.tp_rank >= 0 && sh.tp_rank < t && par_.slots >= 1, "bad model shard");
  BELLOWS_CHECK(t == 1 || (par_.tp && par_.tp->size() == t && par_.tp->rank() == sh.tp_rank),
                "the tensor-parallel group does not match the shard");
  check_tensor_parallel(cfg_, t);
  L_ = sh.layers(cfg_);
  BELLOWS_CHECK(sh.layer_begin >= 0 && L_ >= 0 && sh.layer_begin + L_ <= cfg_.num_hidden_layers, "bad layer range");
  H_ /= t;
  KV_ /= t;
  F_ /= t;
  const auto [v0, v1] = vocab_range(cfg_.vocab_size, sh.tp_rank, t);
  v0_ = v0;
  V_ = int(v1 - v0);
  specs_ = param_specs(cfg_, sh);
  layout_ = ParamLayout::of(cfg_, sh);
  n_params_ = layout_.total;
  params_ = be_.alloc(n_params_);
  BELLOWS_CHECK(!(frozen && lora), "a frozen model has no adapters to train");
  if (!lora && !frozen) grads_ = be_.alloc(n_params_);  // a frozen base gets no gradient buffer

  // RoPE tables for the positions a row can hold.
  const int max_pos = int(std::min<int64_t>(cfg_.max_position_embeddings, T));
  std::vector<float> cos, sin;
  rope_tables(cos, sin, max_pos, D_, cfg_.rope_theta, cfg_.rope_scaling ? &*cfg_.rope_scaling : nullptr);
  rope_cos_ = be_.alloc(cos.size());
  rope_sin_ = be_.alloc(sin.size());
  be_.upload(rope_cos_, cos.data(), cos.size());
  be_.upload(rope_sin_, sin.data(), sin.size());
  const int slots = par_.slots;
  for (int s = 0; s < slots; ++s)
    in_.push_back({be_.alloc_int(size_t(N_)), be_.alloc_int(size_t(N_)), be_.alloc_int(size_t(N_)),
                   be_.alloc_int(size_t(N_))});

  const size_t before = be_.bytes_allocated();
  const size_t N = size_t(N_), C = size_t(C_), F = size_t(F_), HD = size_t(H_ * D_), KVD = size_t(KV_ * D_);
  resid_.resize(size_t(slots));
  for (auto& r : resid_)
    for (int l = 0; l <= L_; ++l) r.push_back(be_.alloc(N * C));
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
  const size_t att_n = be_.attention_state_floats(B_, H_, T_);
  // Selective recomputation drops the [B,H,T,T] probabilities; a flash-style backend (CUDA) never
  // keeps them (its state is [B,H,T]), so there each layer keeps its own and nothing reruns.
  if (recompute_ == Recompute::selective && att_n < size_t(B_) * H_ * T_ * T_) recompute_ = Recompute::none;
  act_.resize(size_t(slots));
  if (recompute_ == Recompute::full) {
    // Every layer of every slot reruns its forward before its backward: one set serves all.
    LayerAct shared = alloc_layer();
    shared.att = be_.alloc(att_n);
    for (auto& a : act_) a.assign(size_t(L_), shared);
  } else {
    float* shared_att = recompute_ == Recompute::selective ? be_.alloc(att_n) : nullptr;
    for (auto& acts : act_)
      for (int l = 0; l < L_; ++l) {
        LayerAct a = alloc_layer();
        a.att = shared_att ? shared_att : be_.alloc(att_n);
        acts.push_back(a);
      }
  }
  if (lora) {
    check_lora(cfg_, *lora);
    lora_rank_ = lora->rank;
    lora_scale_ = float(lora->scale());
    lora_dropout_ = float(lora->dropout);
    const int tp = sh.tp_rank;
    // The base linears as this rank holds them (in, out), and their inputs' logical widths.
    const int HDl = H_ * D_, KVDl = KV_ * D_;
    lora_dims_[int(LoraTarget::q)] = {C_, HDl, C_, 0};
    lora_dims_[int(LoraTarget::k)] = {C_, KVDl, C_, 0};
    lora_dims_[int(LoraTarget::v)] = {C_, KVDl, C_, 0};
    lora_dims_[int(LoraTarget::o)] = {HDl, C_, HDl * t, HDl * tp};
    lora_dims_[int(LoraTarget::gate)] = {C_, F_, C_, 0};
    lora_dims_[int(LoraTarget::up)] = {C_, F_, C_, 0};
    lora_dims_[int(LoraTarget::down)] = {F_, C_, F_ * t, F_ * tp};
    lora_specs_ = lora_param_specs(cfg_, *lora, sh);
    n_lora_ = lora_specs_.empty() ? 0 : lora_specs_.back().offset + lora_specs_.back().numel;
    lora_params_ = be_.alloc(std::max<size_t>(1, n_lora_));
    lora_grads_ = be_.alloc(std::max<size_t>(1, n_lora_));
    size_t i = 0;
    lora_layout_.resize(size_t(L_));
    for (int l = 0; l < L_; ++l)
      for (LoraTarget tg : lora->targets) {
        LoraLayer& ll = lora_layout_[size_t(l)];
        ll.on[int(tg)] = true;
        ll.a[int(tg)] = lora_specs_[i++].offset;
        ll.b[int(tg)] = lora_specs_[i++].offset;
      }
    int max_in = 0;
    for (const auto& d : lora_dims_) max_in = std::max(max_in, d.in);
    lora_dt_ = be_.alloc(N * size_t(lora_rank_));
    lora_u_ = be_.alloc(N * size_t(max_in));
    auto alloc_lora = [&]() {
      LoraAct a;
      for (LoraTarget tg : lora->targets) {
        a.t[int(tg)] = be_.alloc(N * size_t(lora_rank_));
        if (lora_dropout_ > 0) a.mask[int(tg)] = be_.alloc(N * size_t(lora_dims_[int(tg)].in));
      }
      return a;
    };
    lora_act_.resize(size_t(slots));
    if (recompute_ == Recompute::full) {
      const LoraAct shared = alloc_lora();
      for (auto& a : lora_act_) a.assign(size_t(L_), shared);
    } else {
      for (auto& acts : lora_act_)
        for (int l = 0; l < L_; ++l) acts.push_back(alloc_lora());
    }
    dropout_seed_.assign(size_t(slots), 0);
  }
  if (sh.has_head) {
    lnf_ = be_.alloc(N * C);
    rstdf_ = be_.alloc(N);
    logits_ = be_.alloc(N * size_t(V_));
    losses_ = be_.alloc(N);
    if (t > 1) {
      ce_max_ = be_.alloc(N);
      ce_sums_ = be_.alloc(2 * N);
    }
  }
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
      // Element (i, j) of the logical [rows, cols] tensor is the (i * cols + j)-th normal of its
      // stream: a slice jumps to its rows (split_dim 0) or to its columns of every row (1).
      Rng rng(seed, p.name);
      const uint64_t cols = uint64_t(p.global_shape[1]), rows = uint64_t(p.shape[0]), n_cols = uint64_t(p.shape[1]);
      const uint64_t row0 = p.split_dim == 0 ? uint64_t(p.split_begin) : 0;
      const uint64_t col0 = p.split_dim == 1 ? uint64_t(p.split_begin) : 0;
      rng.skip(2 * row0 * cols);
      for (uint64_t i = 0; i < rows; ++i) {
        rng.skip(2 * col0);
        for (uint64_t j = 0; j < n_cols; ++j) host[i * n_cols + j] = float(rng.normal() * stddev);
        rng.skip(2 * (cols - col0 - n_cols));
      }
    }
    be_.upload(params_ + p.offset, host.data(), p.numel);
  }
}

void LlamaModel::init_lora(uint64_t seed) {
  BELLOWS_CHECK(has_lora(), "init_lora without adapters");
  std::vector<float> host;
  for (const auto& p : lora_specs_) {
    host.assign(p.numel, 0.0f);
    if (p.name.back() == 'A') {
      // Element (i, j) of the logical [r, in] A is the (i * in + j)-th uniform of its stream.
      const double bound = 1.0 / std::sqrt(double(p.global_shape[1]));
      Rng rng(seed, p.name);
      const uint64_t cols = uint64_t(p.global_shape[1]), n_cols = uint64_t(p.shape[1]);
      const uint64_t col0 = p.split_dim == 1 ? uint64_t(p.split_begin) : 0;
      for (uint64_t i = 0; i < uint64_t(p.shape[0]); ++i) {
        rng.skip(col0);
        for (uint64_t j = 0; j < n_cols; ++j) host[i * n_cols + j] = float((2 * rng.uniform() - 1) * bound);
        rng.skip(cols - col0 - n_cols);
      }
    }
    be_.upload(lora_params_ + p.offset, host.data(), p.numel);
  }
}

void LlamaModel::set_dropout_seed(uint64_t seed, int slot) {
  if (has_lora()) dropout_seed_[size_t(slot)] = seed;
}

void LlamaModel::set_reference_adapters(bool on, const float* w) {
  BELLOWS_CHECK(has_lora(), "a reference pass through adapters needs a model with adapters");
  reference_pass_ = on;
  reference_adapters_ = on ? w : nullptr;
}

void LlamaModel::scale_logit_grads(const float* factors) {
  BELLOWS_CHECK(par_.shard.has_head, "only the last pipeline stage has logits");
  if (!row_scale_) row_scale_ = be_.alloc(size_t(N_));
  be_.upload(row_scale_, factors, size_t(N_));
  be_.scale_rows(logits_, row_scale_, N_, V_);
}

void LlamaModel::lora_forward(int slot, int l, int t, const float* x, float* y) {
  const LoraLayer& w = lora_layout_[size_t(l)];
  if (!w.on[t] || (reference_pass_ && !reference_adapters_)) return;
  const float* weights = reference_pass_ ? reference_adapters_ : lora_params_;
  const LoraDims& d = lora_dims_[t];
  const LoraAct& a = lora_act_[size_t(slot)][size_t(l)];
  const float* u = x;
  if (lora_dropout_ > 0 && !reference_pass_) {
    // One mask stream per (micro-batch, layer, target): the global layer index keeps it the
    // same under any pipeline cut.
    const uint64_t seed = dropout_seed_[size_t(slot)] ^ (uint64_t(par_.shard.layer_begin + l) * 8 + uint64_t(t) + 1) *
                                                            0xD1B54A32D192ED03ull;
    be_.dropout_fwd(lora_u_, a.mask[t], x, N_, d.in, d.width, d.col0, lora_dropout_, seed);
    u = lora_u_;
  }
  be_.matmul_fwd(a.t[t], u, weights + w.a[t], N_, d.in, lora_rank_);
  be_.scale(a.t[t], size_t(N_) * size_t(lora_rank_), lora_scale_);
  be_.matmul_fwd_acc(y, a.t[t], weights + w.b[t], N_, lora_rank_, d.out);
}

void LlamaModel::lora_backward(int slot, int l, int t, const float* dy, const float* x, float* dx) {
  const LoraLayer& w = lora_layout_[size_t(l)];
  if (!w.on[t]) return;
  const LoraDims& d = lora_dims_[t];
  const LoraAct& a = lora_act_[size_t(slot)][size_t(l)];
  // t = s u A^T was kept scaled: dB += dy^T t, and d(u A^T) = s dy B.
  be_.matmul_bwd(lora_dt_, lora_grads_ + w.b[t], dy, a.t[t], lora_params_ + w.b[t], N_, lora_rank_, d.out, false);
  be_.scale(lora_dt_, size_t(N_) * size_t(lora_rank_), lora_scale_);
  const size_t n_in = size_t(N_) * size_t(d.in);
  if (lora_dropout_ > 0) {
    // u = x * mask again (the scratch held other targets' inputs since the forward): dA += dt^T u,
    // then du = dt A into the same scratch, and dx += du * mask.
    float* u = lora_u_;
    be_.zero(u, n_in);
    be_.mul_acc(u, x, a.mask[t], n_in);
    be_.matmul_bwd(nullptr, lora_grads_ + w.a[t], lora_dt_, u, lora_params_ + w.a[t], N_, d.in, lora_rank_, false);
    be_.matmul_bwd(u, nullptr, lora_dt_, nullptr, lora_params_ + w.a[t], N_, d.in, lora_rank_, false);
    be_.mul_acc(dx, u, a.mask[t], n_in);
  } else {
    be_.matmul_bwd(dx, lora_grads_ + w.a[t], lora_dt_, x, lora_params_ + w.a[t], N_, d.in, lora_rank_, true);
  }
}

void LlamaModel::set_batch(const int32_t* ids, const int32_t* targets, const int32_t* pos, const int32_t* doc_start,
                           int slot) {
  BELLOWS_CHECK(slot >= 0 && slot < par_.slots, "no such micro-batch slot");
  const int V = int(cfg_.vocab_size);
  host_ids_.resize(size_t(N_));
  host_targets_.resize(size_t(N_));
  for (int n = 0; n < N_; ++n) {
    if (ids[n] < 0 || ids[n] >= V)
      throw RuntimeError("token id " + std::to_string(ids[n]) + " is outside the model's vocabulary of " + std::to_string(V));
    if (targets[n] < -1 || targets[n] >= V)
      throw RuntimeError("target id " + std::to_string(targets[n]) + " is outside the model's vocabulary of " + std::to_string(V));
    const int t = n % T_;
    BELLOWS_CHECK(doc_start[n] >= 0 && doc_start[n] <= t && pos[n] >= 0 && pos[n] < T_, "bad position or document start");
    // Ids into this rank's vocabulary slice; -1 (embedding) / -2 (loss) where another holds them.
    const auto local = [&](int32_t id) { return id >= v0_ && id < v0_ + V_ ? int32_t(id - v0_) : -1; };
    host_ids_[size_t(n)] = local(ids[n]);
    host_targets_[size_t(n)] = targets[n] < 0 ? -1 : (local(targets[n]) < 0 ? -2 : local(targets[n]));
  }
  const SlotInputs& in = in_[size_t(slot)];
  be_.upload_int(in.ids, host_ids_.data(), size_t(N_));
  be_.upload_int(in.targets, host_targets_.data(), size_t(N_));
  be_.upload_int(in.pos, pos, size_t(N_));
  be_.upload_int(in.doc_start, doc_start, size_t(N_));
}

void LlamaModel::tp_allreduce(float* x, size_t n) {
  if (par_.shard.tp_size > 1) par_.tp->allreduce(x, n, dist::ReduceOp::sum);
}

void LlamaModel::layer_forward(int slot, int l) {
  const ParamLayout::Layer& w = layout_.layers[size_t(l)];
  LayerAct& a = act_[size_t(slot)][size_t(l)];
  const SlotInputs& in = in_[size_t(slot)];
  const float* x = resid_[size_t(slot)][size_t(l)];
  float* out = resid_[size_t(slot)][size_t(l) + 1];
  const float eps = float(cfg_.rms_norm_eps);
  be_.rmsnorm_fwd(a.ln1, a.rstd1, x, P(w.attn_norm), N_, C_, eps);
  be_.matmul_fwd(a.q, a.ln1, P(w.q), N_, C_, H_ * D_);
  be_.matmul_fwd(a.k, a.ln1, P(w.k), N_, C_, KV_ * D_);
  be_.matmul_fwd(a.v, a.ln1, P(w.v), N_, C_, KV_ * D_);
  if (has_lora()) {
    lora_forward(slot, l, int(LoraTarget::q), a.ln1, a.q);
    lora_forward(slot, l, int(LoraTarget::k), a.ln1, a.k);
    lora_forward(slot, l, int(LoraTarget::v), a.ln1, a.v);
  }
  be_.rope_fwd(a.q, in.pos, rope_cos_, rope_sin_, N_, H_, D_);
  be_.rope_fwd(a.k, in.pos, rope_cos_, rope_sin_, N_, KV_, D_);
  be_.attention_fwd(a.atty, a.att, a.q, a.k, a.v, in.doc_start, B_, T_, H_, KV_, D_);
  be_.matmul_fwd(a.resid_mid, a.atty, P(w.o), N_, H_ * D_, C_);
  if (has_lora()) lora_forward(slot, l, int(LoraTarget::o), a.atty, a.resid_mid);
  tp_allreduce(a.resid_mid, size_t(N_) * C_);  // row parallel: each rank summed its heads' share
  be_.add_inplace(a.resid_mid, x, size_t(N_) * C_);
  be_.rmsnorm_fwd(a.ln2, a.rstd2, a.resid_mid, P(w.mlp_norm), N_, C_, eps);
  be_.matmul_fwd(a.gate, a.ln2, P(w.gate), N_, C_, F_);
  be_.matmul_fwd(a.up, a.ln2, P(w.up), N_, C_, F_);
  if (has_lora()) {
    lora_forward(slot, l, int(LoraTarget::gate), a.ln2, a.gate);
    lora_forward(slot, l, int(LoraTarget::up), a.ln2, a.up);
  }
  be_.swiglu_fwd(a.h, a.gate, a.up, size_t(N_) * F_);
  be_.matmul_fwd(out, a.h, P(w.down), N_, F_, C_);
  if (has_lora()) lora_forward(slot, l, int(LoraTarget::down), a.h, out);
  tp_allreduce(out, size_t(N_) * C_);
  be_.add_inplace(out, a.resid_mid, size_t(N_) * C_);
}

void LlamaModel::loss_forward(float grad_scale, int slot) {
  const SlotInputs& in = in_[size_t(slot)];
  if (par_.shard.tp_size == 1) {
    be_.cross_entropy(losses_, logits_, in.targets, N_, V_, grad_scale);
    return;
  }
  // Vocabulary parallel: the softmax's max and normaliser, and the target's logit, are combined
  // across the slices; the [N, V] logits never leave their rank.
  be_.vocab_ce_max(ce_max_, logits_, N_, V_);
  par_.tp->allreduce(ce_max_, size_t(N_), dist::ReduceOp::max);
  be_.vocab_ce_sums(ce_sums_, logits_, ce_max_, in.targets, N_, V_);
  par_.tp->allreduce(ce_sums_, 2 * size_t(N_), dist::ReduceOp::sum);
  be_.vocab_ce_finish(losses_, logits_, in.targets, ce_max_, ce_sums_, N_, V_, grad_scale);
}

double LlamaModel::forward(float grad_scale, int slot) {
  BELLOWS_CHECK(slot >= 0 && slot < par_.slots, "no such micro-batch slot");
  const SlotInputs& in = in_[size_t(slot)];
  if (par_.shard.has_embedding) {
    be_.embedding_fwd(resid_[size_t(slot)][0], in.ids, P(layout_.embed), N_, C_);
    tp_allreduce(resid_[size_t(slot)][0], size_t(N_) * C_);  // each row came from one slice, zeros elsewhere
  }
  for (int l = 0; l < L_; ++l) layer_forward(slot, l);
  if (!par_.shard.has_head) return 0.0;
  be_.rmsnorm_fwd(lnf_, rstdf_, resid_[size_t(slot)][size_t(L_)], P(layout_.final_norm), N_, C_, float(cfg_.rms_norm_eps));
  be_.matmul_fwd(logits_, lnf_, P(layout_.lm_head), N_, C_, V_);
  loss_forward(grad_scale, slot);
  be_.download(host_losses_.data(), losses_, host_losses_.size());
  double sum = 0;
  for (float x : host_losses_) sum += x;
  return sum;
}

void LlamaModel::layer_backward(int slot, int l) {
  const ParamLayout::Layer& w = layout_.layers[size_t(l)];
  LayerAct& a = act_[size_t(slot)][size_t(l)];
  const SlotInputs& in = in_[size_t(slot)];
  const float* x = resid_[size_t(slot)][size_t(l)];
  if (recompute_ == Recompute::full) {
    layer_forward(slot, l);  // refills the shared buffers (and resid_[l+1] with the same values)
  } else if (recompute_ == Recompute::selective) {
    // The probabilities from q, k, v kept for this layer (atty comes out the same again).
    be_.attention_fwd(a.atty, a.att, a.q, a.k, a.v, in.doc_start, B_, T_, H_, KV_, D_);
  }
  // dresid_ holds d loss / d out (the layer's output). MLP block: out = h Wd^T + resid_mid.
  be_.matmul_bwd(dh_, G(w.down), dresid_, a.h, P(w.down), N_, F_, C_, false);
  if (has_lora()) lora_backward(slot, l, int(LoraTarget::down), dresid_, a.h, dh_);
  be_.swiglu_bwd(dgate_, dup_, dh_, a.gate, a.up, size_t(N_) * F_);
  be_.matmul_bwd(dln_, G(w.gate), dgate_, a.ln2, P(w.gate), N_, C_, F_, false);
  be_.matmul_bwd(dln_, G(w.up), dup_, a.ln2, P(w.up), N_, C_, F_, true);
  if (has_lora()) {
    lora_backward(slot, l, int(LoraTarget::gate), dgate_, a.ln2, dln_);
    lora_backward(slot, l, int(LoraTarget::up), dup_, a.ln2, dln_);
  }
  tp_allreduce(dln_, size_t(N_) * C_);  // column parallel: each rank's share of d ln2
  be_.rmsnorm_bwd(dresid_, G(w.mlp_norm), dln_, a.resid_mid, P(w.mlp_norm), a.rstd2, N_, C_);
  // dresid_ = d loss / d resid_mid. Attention block: resid_mid = x + atty Wo^T.
  be_.matmul_bwd(datty_, G(w.o), dresid_, a.atty, P(w.o), N_, H_ * D_, C_, false);
  if (has_lora()) lora_backward(slot, l, int(LoraTarget::o), dresid_, a.atty, datty_);
  be_.attention_bwd(dq_, dk_, dv_, datty_, a.q, a.k, a.v, a.atty, a.att, in.doc_start, B_, T_, H_, KV_, D_);
  be_.rope_bwd(dq_, in.pos, rope_cos_, rope_sin_, N_, H_, D_);
  be_.rope_bwd(dk_, in.pos, rope_cos_, rope_sin_, N_, KV_, D_);
  be_.matmul_bwd(dln_, G(w.q), dq_, a.ln1, P(w.q), N_, C_, H_ * D_, false);
  be_.matmul_bwd(dln_, G(w.k), dk_, a.ln1, P(w.k), N_, C_, KV_ * D_, true);
  be_.matmul_bwd(dln_, G(w.v), dv_, a.ln1, P(w.v), N_, C_, KV_ * D_, true);
  if (has_lora()) {
    lora_backward(slot, l, int(LoraTarget::q), dq_, a.ln1, dln_);
    lora_backward(slot, l, int(LoraTarget::k), dk_, a.ln1, dln_);
    lora_backward(slot, l, int(LoraTarget::v), dv_, a.ln1, dln_);
  }
  tp_allreduce(dln_, size_t(N_) * C_);
  be_.rmsnorm_bwd(dresid_, G(w.attn_norm), dln_, x, P(w.attn_norm), a.rstd1, N_, C_);
  // dresid_ = d loss / d x, the previous layer's output.
}

void LlamaModel::backward(int slot) {
  BELLOWS_CHECK(slot >= 0 && slot < par_.slots, "no such micro-batch slot");
  if (par_.shard.has_head) {
    // logits_ holds dloss/dlogits (the cross-entropy wrote it in place).
    be_.matmul_bwd(dln_, G(layout_.lm_head), logits_, lnf_, P(layout_.lm_head), N_, C_, V_, false);
    tp_allreduce(dln_, size_t(N_) * C_);  // each vocabulary slice's share of d lnf
    be_.zero(dresid_, size_t(N_) * C_);
    be_.rmsnorm_bwd(dresid_, G(layout_.final_norm), dln_, resid_[size_t(slot)][size_t(L_)], P(layout_.final_norm),
                    rstdf_, N_, C_);
  }
  for (int l = L_ - 1; l >= 0; --l) layer_backward(slot, l);
  if (par_.shard.has_embedding && grads_) be_.embedding_bwd(G(layout_.embed), dresid_, in_[size_t(slot)].ids, N_, C_);
}

}  // namespace bellows::nn
