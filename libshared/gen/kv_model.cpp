#include "gen/kv_model.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "nn/llama.hpp"

namespace bellows::gen {

KvCacheModel::KvCacheModel(const nn::LlamaConfig& cfg, nn::Backend& be, int max_len, int chunk)
    : cfg_(cfg), be_(be), max_len_(max_len), chunk_(std::min(chunk, max_len)), C_(int(cfg.hidden_size)),
      F_(int(cfg.intermediate_size)), H_(int(cfg.num_attention_heads)), KV_(int(cfg.num_key_value_heads)),
      D_(int(cfg.head_dim())), V_(int(cfg.vocab_size)) {
  cfg_.validate("model config");
  BELLOWS_CHECK(max_len > 0 && max_len <= cfg_.max_position_embeddings && chunk > 0,
                "the cache must hold 1..max_position_embeddings positions");
  layout_ = nn::ParamLayout::of(cfg_);
  n_params_ = layout_.total;
  params_ = be_.alloc(n_params_);

  // The tables' rows do not depend on how many there are: the same values as LlamaModel's.
  std::vector<float> cos, sin;
  nn::rope_tables(cos, sin, max_len_, D_, cfg_.rope_theta, cfg_.rope_scaling ? &*cfg_.rope_scaling : nullptr);
  rope_cos_ = be_.alloc(cos.size());
  rope_sin_ = be_.alloc(sin.size());
  be_.upload(rope_cos_, cos.data(), cos.size());
  be_.upload(rope_sin_, sin.data(), sin.size());

  const size_t KVD = size_t(KV_) * D_, HD = size_t(H_) * D_, n = size_t(chunk_), C = size_t(C_), F = size_t(F_);
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    kcache_.push_back(be_.alloc(size_t(max_len_) * KVD));
    vcache_.push_back(be_.alloc(size_t(max_len_) * KVD));
  }
  ids_ = be_.alloc_int(n);
  posv_ = be_.alloc_int(n);
  x_ = be_.alloc(n * C);
  y_ = be_.alloc(n * C);
  ln_ = be_.alloc(n * C);
  rstd_ = be_.alloc(n);
  q_ = be_.alloc(n * HD);
  atty_ = be_.alloc(n * HD);
  mid_ = be_.alloc(n * C);
  gate_ = be_.alloc(n * F);
  up_ = be_.alloc(n * F);
  h_ = be_.alloc(n * F);
  logits_ = be_.alloc(n * size_t(V_));
  host_pos_.assign(n, 0);
}

void KvCacheModel::load_params(const std::vector<float>& host) {
  BELLOWS_CHECK(host.size() == n_params_, "parameter vector of another config");
  be_.upload(params_, host.data(), n_params_);
}

void KvCacheModel::forward(const int32_t* ids, int n, bool all_logits, std::vector<float>& logits) {
  BELLOWS_CHECK(n > 0, "forward of no tokens");
  for (int i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= V_)
      throw RuntimeError("token id " + std::to_string(ids[i]) + " is outside the model's vocabulary of " +
                         std::to_string(V_));
  if (pos_ + n > max_len_)
    throw RuntimeError("the KV cache holds " + std::to_string(max_len_) + " positions; " + std::to_string(pos_) +
                       " are used and " + std::to_string(n) + " more do not fit");
  logits.resize(all_logits ? size_t(n) * size_t(V_) : size_t(V_));
  for (int done = 0; done < n;) {
    const int m = std::min(chunk_, n - done);
    forward_chunk(ids + done, m, all_logits, done + m == n, logits, size_t(done));
    done += m;
  }
}

void KvCacheModel::forward_chunk(const int32_t* ids, int n, bool all_logits, bool last_chunk,
                                 std::vector<float>& logits, size_t logits_row0) {
  for (int i = 0; i < n; ++i) host_pos_[size_t(i)] = pos_ + i;
  be_.upload_int(ids_, ids, size_t(n));
  be_.upload_int(posv_, host_pos_.data(), size_t(n));
  be_.embedding_fwd(x_, ids_, P(layout_.embed), n, C_);
  for (int l = 0; l < int(cfg_.num_hidden_layers); ++l) layer_forward(l, n);
  pos_ += n;  // the chunk's keys and values are in the cache now
  const float eps = float(cfg_.rms_norm_eps);
  if (all_logits) {
    be_.rmsnorm_fwd(ln_, rstd_, x_, P(layout_.final_norm), n, C_, eps);
    be_.matmul_fwd(logits_, ln_, P(layout_.lm_head), n, C_, V_);
    be_.download(logits.data() + logits_row0 * size_t(V_), logits_, size_t(n) * size_t(V_));
  } else if (last_chunk) {
    be_.rmsnorm_fwd(ln_, rstd_, x_ + size_t(n - 1) * size_t(C_), P(layout_.final_norm), 1, C_, eps);
    be_.matmul_fwd(logits_, ln_, P(layout_.lm_head), 1, C_, V_);
    be_.download(logits.data(), logits_, size_t(V_));
  }
}

void KvCacheModel::layer_forward(int l, int n) {
  const nn::ParamLayout::Layer& w = layout_.layers[size_t(l)];
  const size_t KVD = size_t(KV_) * D_, N = size_t(n);
  float* kc = kcache_[size_t(l)];
  float* vc = vcache_[size_t(l)];
  float* k_new = kc + size_t(pos_) * KVD;  // [n, KV*D]: the chunk's rows of the cache
  float* v_new = vc + size_t(pos_) * KVD;
  const float eps = float(cfg_.rms_norm_eps);
  // The order of LlamaModel::layer_forward, op for op, so that the numbers agree.
  be_.rmsnorm_fwd(ln_, rstd_, x_, P(w.attn_norm), n, C_, eps);
  be_.matmul_fwd(q_, ln_, P(w.q), n, C_, H_ * D_);
  be_.matmul_fwd(k_new, ln_, P(w.k), n, C_, KV_ * D_);
  be_.matmul_fwd(v_new, ln_, P(w.v), n, C_, KV_ * D_);
  be_.rope_fwd(q_, posv_, rope_cos_, rope_sin_, n, H_, D_);
  be_.rope_fwd(k_new, posv_, rope_cos_, rope_sin_, n, KV_, D_);
  be_.attention_cached_fwd(atty_, q_, kc, vc, n, pos_, H_, KV_, D_);
  be_.matmul_fwd(mid_, atty_, P(w.o), n, H_ * D_, C_);
  be_.add_inplace(mid_, x_, N * size_t(C_));
  be_.rmsnorm_fwd(ln_, rstd_, mid_, P(w.mlp_norm), n, C_, eps);
  be_.matmul_fwd(gate_, ln_, P(w.gate), n, C_, F_);
  be_.matmul_fwd(up_, ln_, P(w.up), n, C_, F_);
  be_.swiglu_fwd(h_, gate_, up_, N * size_t(F_));
  be_.matmul_fwd(y_, h_, P(w.down), n, F_, C_);
  be_.add_inplace(y_, mid_, N * size_t(C_));
  std::swap(x_, y_);
}

}  // namespace bellows::gen
