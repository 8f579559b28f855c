#include "formats/llama_gguf.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>

#include "core/error.hpp"

namespace bellows::formats {

namespace {

// HF suffix within a layer <-> GGUF suffix within a block.
const std::vector<std::pair<std::string, std::string>>& layer_names() {
  static const std::vector<std::pair<std::string, std::string>> n = {
      {"input_layernorm.weight", "attn_norm.weight"},   {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},     {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  return n;
}

// "PREFIX<digits>.REST" -> (layer, REST); nullopt otherwise.
std::optional<std::pair<std::string, std::string>> split_layer(const std::string& s, const std::string& prefix) {
  if (s.rfind(prefix, 0) != 0) return std::nullopt;
  size_t i = prefix.size(), j = i;
  while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
  if (j == i || j >= s.size() || s[j] != '.' || (s[i] == '0' && j - i > 1)) return std::nullopt;
  return std::make_pair(s.substr(i, j - i), s.substr(j + 1));
}

}  // namespace

std::string gguf_name_of_hf(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  if (auto l = split_layer(hf, "model.layers."))
    for (const auto& [h, g] : layer_names())
      if (l->second == h) return "blk." + l->first + "." + g;
  return "";
}

std::string hf_name_of_gguf(const std::string& gguf) {
  if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf == "output_norm.weight") return "model.norm.weight";
  if (gguf == "output.weight") return "lm_head.weight";
  if (auto l = split_layer(gguf, "blk."))
    for (const auto& [h, g] : layer_names())
      if (l->second == g) return "model.layers." + l->first + "." + h;
  return "";
}

int64_t qk_heads(const nn::LlamaConfig& cfg, const std::string& hf_name) {
  auto l = split_layer(hf_name, "model.layers.");
  if (!l) return 0;
  if (l->second == "self_attn.q_proj.weight") return cfg.num_attention_heads;
  if (l->second == "self_attn.k_proj.weight") return cfg.num_key_value_heads;
  return 0;
}

void permute_rows_to_gguf(const float* in, float* out, int64_t heads, int64_t rows, int64_t cols) {
  const int64_t d = rows / heads, half = d / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t k = 0; k < 2; ++k)
      for (int64_t j = 0; j < half; ++j) {
        const float* src = in + (h * d + k * half + j) * cols;
        std::copy(src, src + cols, out + (h * d + 2 * j + k) * cols);
      }
}

void permute_rows_from_gguf(const float* in, float* out, int64_t heads, int64_t rows, int64_t cols) {
  const int64_t d = rows / heads, half = d / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t k = 0; k < 2; ++k)
      for (int64_t j = 0; j < half; ++j) {
        const float* src = in + (h * d + 2 * j + k) * cols;
        std::copy(src, src + cols, out + (h * d + k * half + j) * cols);
      }
}

std::vector<float> llama3_rope_freqs(const nn::LlamaConfig& cfg) {
  BELLOWS_CHECK(cfg.rope_scaling.has_value(), "llama3_rope_freqs needs rope_scaling");
  const nn::RopeScaling& s = *cfg.rope_scaling;
  const int64_t d = cfg.head_dim();
  const double lo_wl = double(s.original_max_position_embeddings) / s.low_freq_factor;
  const double hi_wl = double(s.original_max_position_embeddings) / s.high_freq_factor;
  std::vector<float> f(size_t(d / 2));
  for (int64_t i = 0; i < d / 2; ++i) {
    const double freq = 1.0 / std::pow(cfg.rope_theta, double(2 * i) / double(d));
    const double wl = 2.0 * M_PI / freq;
    if (wl < hi_wl) {
      f[size_t(i)] = 1.0f;
    } else if (wl > lo_wl) {
      f[size_t(i)] = float(s.factor);
    } else {
      const double smooth = (double(s.original_max_position_embeddings) / wl - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      f[size_t(i)] = float(1.0 / ((1.0 - smooth) / s.factor + smooth));
    }
  }
  return f;
}

std::optional<nn::RopeScaling> rope_scaling_of_freqs(const nn::LlamaConfig& cfg, const std::vector<float>& freqs,
                                                     const GgufReader* r) {
  if (freqs.empty()) return std::nullopt;
  float factor = 0;
  for (float x : freqs) factor = std::max(factor, x);
  nn::LlamaConfig c = cfg;
  c.rope_scaling = nn::RopeScaling{shortest_double_of_float(factor), 1.0, 4.0, 8192};
  if (r) {
    auto f = [&](const char* key, double& into) {
      if (const GgufValue* v = r->find(key)) into = shortest_double_of_float(float(v->as_double(r->path() + ": " + key)));
    };
    f("bellows.rope_scaling.factor", c.rope_scaling->factor);
    f("bellows.rope_scaling.low_freq_factor", c.rope_scaling->low_freq_factor);
    f("bellows.rope_scaling.high_freq_factor", c.rope_scaling->high_freq_factor);
    if (const GgufValue* v = r->find("bellows.rope_scaling.original_max_position_embeddings"))
      c.rope_scaling->original_max_position_embeddings = int64_t(v->as_uint(r->path()));
  }
  const std::vector<float> again = llama3_rope_freqs(c);
  if (again.size() != freqs.size()) return std::nullopt;
  for (size_t i = 0; i < again.size(); ++i)
    if (std::fabs(again[i] - freqs[i]) > 1e-5f * std::fabs(freqs[i])) return std::nullopt;
  return c.rope_scaling;
}

double shortest_double_of_float(float f) {
  char buf[64];
  for (int p = 1; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, double(f));
    const double d = std::strtod(buf, nullptr);
    if (float(d) == f) return d;
  }
  return double(f);
}

void append_llama_metadata(const nn::LlamaConfig& cfg, GgufMetadata& md) {
  auto u32 = [&](const char* k, int64_t v) { md.emplace_back(k, GgufValue::make_u32(uint32_t(v))); };
  u32("llama.context_length", cfg.max_position_embeddings);
  u32("llama.embedding_length", cfg.hidden_size);
  u32("llama.block_count", cfg.num_hidden_layers);
  u32("llama.feed_forward_length", cfg.intermediate_size);
  u32("llama.attention.head_count", cfg.num_attention_heads);
  u32("llama.attention.head_count_kv", cfg.num_key_value_heads);
  md.emplace_back("llama.rope.freq_base", GgufValue::make_f32(float(cfg.rope_theta)));
  md.emplace_back("llama.attention.layer_norm_rms_epsilon", GgufValue::make_f32(float(cfg.rms_norm_eps)));
  u32("llama.rope.dimension_count", cfg.head_dim());
  u32("llama.vocab_size", cfg.vocab_size);
  if (cfg.rope_scaling) {
    // llama.cpp reads Llama 3 scaling from the rope_freqs tensor alone (its llama.rope.scaling.*
    // keys mean linear/YaRN scaling and must not be set). The parameters go under our own
    // names too, so that an import restores rope_scaling exactly, whatever they were.
    const nn::RopeScaling& r = *cfg.rope_scaling;
    md.emplace_back("bellows.rope_scaling.factor", GgufValue::make_f32(float(r.factor)));
    md.emplace_back("bellows.rope_scaling.low_freq_factor", GgufValue::make_f32(float(r.low_freq_factor)));
    md.emplace_back("bellows.rope_scaling.high_freq_factor", GgufValue::make_f32(float(r.high_freq_factor)));
    u32("bellows.rope_scaling.original_max_position_embeddings", r.original_max_position_embeddings);
  }
}

nn::LlamaConfig llama_config_of_gguf(const GgufReader& r) {
  const std::string& path = r.path();
  const GgufValue* arch = r.find("general.architecture");
  if (!arch) throw RuntimeError(path + ": has no general.architecture");
  const std::string a = arch->as_string(path + ": general.architecture");
  if (a != "llama") throw RuntimeError(path + ": architecture '" + a + "' is not supported (supported: llama)");
  auto get_uint = [&](const std::string& key, std::optional<uint64_t> dflt = std::nullopt) -> int64_t {
    const GgufValue* v = r.find(key);
    if (!v) {
      if (dflt) return int64_t(*dflt);
      throw RuntimeError(path + ": has no " + key);
    }
    const uint64_t x = v->as_uint(path + ": " + key);
    if (x > (uint64_t(1) << 40)) throw RuntimeError(path + ": " + key + " " + std::to_string(x) + " is implausibly large");
    return int64_t(x);
  };
  auto get_float = [&](const std::string& key, double dflt) -> double {
    const GgufValue* v = r.find(key);
    if (!v) return dflt;
    return shortest_double_of_float(float(v->as_double(path + ": " + key)));
  };
  nn::LlamaConfig c;
  c.hidden_size = get_uint("llama.embedding_length");
  c.intermediate_size = get_uint("llama.feed_forward_length");
  c.num_hidden_layers = get_uint("llama.block_count");
  c.num_attention_heads = get_uint("llama.attention.head_count");
  c.num_key_value_heads = get_uint("llama.attention.head_count_kv", uint64_t(c.num_attention_heads));
  c.max_position_embeddings = get_uint("llama.context_length");
  c.rms_norm_eps = get_float("llama.attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = get_float("llama.rope.freq_base", 10000.0);
  if (const GgufValue* v = r.find("llama.vocab_size")) {
    c.vocab_size = int64_t(v->as_uint(path + ": llama.vocab_size"));
  } else if (const GgufValue* t = r.find("tokenizer.ggml.tokens"); t && t->type == GgufType::array) {
    c.vocab_size = int64_t(t->arr.size());
  } else {
    throw RuntimeError(path + ": has neither llama.vocab_size nor tokenizer.ggml.tokens");
  }
  c.tie_word_embeddings = r.find_tensor("output.weight") == nullptr;
  if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
    throw RuntimeError(path + ": llama.attention.head_count does not divide llama.embedding_length");
  if (const GgufValue* v = r.find("llama.rope.dimension_count"); v && int64_t(v->as_uint(path)) != c.head_dim())
    throw RuntimeError(path + ": llama.rope.dimension_count " + std::to_string(v->as_uint(path)) +
                       " is not the head dimension (partial RoPE is not supported)");
  for (const char* k : {"llama.attention.key_length", "llama.attention.value_length"})
    if (const GgufValue* v = r.find(k); v && int64_t(v->as_uint(path)) != c.head_dim())
      throw RuntimeError(path + ": " + k + " other than embedding_length / head_count is not supported");
  if (const GgufValue* v = r.find("llama.rope.scaling.type"); v && v->as_string(path) != "none")
    throw RuntimeError(path + ": llama.rope.scaling.type '" + v->s + "' is not supported (supported: none, or Llama 3's rope_freqs)");
  try {
    c.validate(path);
  } catch (const UsageError& e) {
    throw RuntimeError(e.what());
  }
  return c;
}

}  // namespace bellows::formats
