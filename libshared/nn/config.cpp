#include "nn/config.hpp"

#include <map>

#include "core/error.hpp"
#include "core/read_file.hpp"

namespace bellows::nn {

using nlohmann::json;

void LlamaConfig::validate(const std::string& what) const {
  auto need = [&](bool ok, const std::string& msg) {
    if (!ok) throw UsageError(what + ": " + msg);
  };
  need(vocab_size > 0, "vocab_size must be positive");
  need(hidden_size > 0 && intermediate_size > 0 && num_hidden_layers > 0, "hidden_size, intermediate_size and num_hidden_layers must be positive");
  need(num_attention_heads > 0 && hidden_size % num_attention_heads == 0,
       "hidden_size " + std::to_string(hidden_size) + " is not a multiple of num_attention_heads " + std::to_string(num_attention_heads));
  need(head_dim() % 2 == 0, "head_dim (hidden_size / num_attention_heads) must be even for RoPE");
  need(num_key_value_heads > 0 && num_key_value_heads <= num_attention_heads && num_attention_heads % num_key_value_heads == 0,
       "num_key_value_heads " + std::to_string(num_key_value_heads) + " must divide num_attention_heads " +
           std::to_string(num_attention_heads));
  need(max_position_embeddings > 0, "max_position_embeddings must be positive");
  need(rms_norm_eps > 0 && rope_theta > 0, "rms_norm_eps and rope_theta must be positive");
}

uint64_t LlamaConfig::num_embedding_params() const {
  uint64_t e = static_cast<uint64_t>(vocab_size * hidden_size);
  return tie_word_embeddings ? e : 2 * e;
}

uint64_t LlamaConfig::num_params() const {
  const uint64_t C = static_cast<uint64_t>(hidden_size), F = static_cast<uint64_t>(intermediate_size);
  const uint64_t kvd = static_cast<uint64_t>(num_key_value_heads * head_dim());
  const uint64_t per_layer = 2 * C /* norms */ + C * C /* q */ + 2 * kvd * C /* k, v */ + C * C /* o */ + 3 * C * F;
  return per_layer * static_cast<uint64_t>(num_hidden_layers) + C /* final norm */ + num_embedding_params();
}

double LlamaConfig::train_flops_per_token(int64_t seq_len) const {
  // The embedding lookup costs no FLOPs; the lm_head is a matmul like any other.
  const double n_matmul = static_cast<double>(num_params()) - static_cast<double>(vocab_size * hidden_size) *
                                                                  (tie_word_embeddings ? 0.0 : 1.0);
  return 6.0 * n_matmul + 12.0 * static_cast<double>(num_hidden_layers * hidden_size * seq_len);
}

json LlamaConfig::to_hf_json() const {
  json j = {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"vocab_size", vocab_size},
            {"hidden_size", hidden_size},
            {"intermediate_size", intermediate_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"head_dim", head_dim()},
            {"max_position_embeddings", max_position_embeddings},
            {"rms_norm_eps", rms_norm_eps},
            {"rope_theta", rope_theta},
            {"hidden_act", "silu"},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"tie_word_embeddings", tie_word_embeddings},
            {"torch_dtype", "float32"}};
  if (rope_scaling) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope_scaling->factor},
                         {"low_freq_factor", rope_scaling->low_freq_factor},
                         {"high_freq_factor", rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  return j;
}

LlamaConfig LlamaConfig::from_hf_json(const json& j, const std::string& what) {
  if (!j.is_object()) throw UsageError(what + ": a model config must be a JSON object");
  LlamaConfig c;
  auto get_int = [&](const char* k, std::optional<int64_t> dflt = std::nullopt) -> int64_t {
    if (!j.contains(k) || j[k].is_null()) {
      if (dflt) return *dflt;
      throw UsageError(what + ": missing \"" + k + "\"");
    }
    if (!j[k].is_number_integer()) throw UsageError(what + ": \"" + k + "\" must be an integer");
    return j[k].get<int64_t>();
  };
  auto get_num = [&](const char* k, double dflt) -> double {
    if (!j.contains(k) || j[k].is_null()) return dflt;
    if (!j[k].is_number()) throw UsageError(what + ": \"" + k + "\" must be a number");
    return j[k].get<double>();
  };
  if (j.contains("model_type") && j["model_type"].is_string()) {
    std::string mt = j["model_type"].get<std::string>();
    if (mt != "llama") throw UsageError(what + ": model_type '" + mt + "' is not supported (supported: llama)");
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    throw UsageError(what + ": hidden_act " + j["hidden_act"].dump() + " is not supported (Llama uses silu)");
  for (const char* k : {"attention_bias", "mlp_bias"})
    if (j.contains(k) && j[k].is_boolean() && j[k].get<bool>())
      throw UsageError(what + ": \"" + k + "\": true is not supported (Llama has no biases)");
  c.vocab_size = get_int("vocab_size");
  c.hidden_size = get_int("hidden_size");
  c.intermediate_size = get_int("intermediate_size");
  c.num_hidden_layers = get_int("num_hidden_layers");
  c.num_attention_heads = get_int("num_attention_heads");
  c.num_key_value_heads = get_int("num_key_value_heads", c.num_attention_heads);
  c.max_position_embeddings = get_int("max_position_embeddings", 2048);
  c.rms_norm_eps = get_num("rms_norm_eps", 1e-6);
  c.rope_theta = get_num("rope_theta", 10000.0);
  c.tie_word_embeddings = j.value("tie_word_embeddings", false);
  if (j.contains("head_dim") && !j["head_dim"].is_null() && c.num_attention_heads > 0 &&
      get_int("head_dim") != c.hidden_size / c.num_attention_heads)
    throw UsageError(what + ": head_dim other than hidden_size / num_attention_heads is not supported");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& r = j["rope_scaling"];
    std::string type = r.value("rope_type", r.value("type", ""));
    if (type != "llama3")
      throw UsageError(what + ": rope_scaling type '" + type + "' is not supported (supported: llama3, or null)");
    RopeScaling s;
    s.factor = r.value("factor", s.factor);
    s.low_freq_factor = r.value("low_freq_factor", s.low_freq_factor);
    s.high_freq_factor = r.value("high_freq_factor", s.high_freq_factor);
    s.original_max_position_embeddings = r.value("original_max_position_embeddings", s.original_max_position_embeddings);
    c.rope_scaling = s;
  }
  c.validate(what);
  return c;
}

namespace {

struct Preset {
  LlamaConfig cfg;
  const char* what;
};

LlamaConfig make(int64_t vocab, int64_t C, int64_t F, int64_t L, int64_t H, int64_t KV, int64_t max_pos, double theta,
                 bool tie, double eps = 1e-5) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.hidden_size = C;
  c.intermediate_size = F;
  c.num_hidden_layers = L;
  c.num_attention_heads = H;
  c.num_key_value_heads = KV;
  c.max_position_embeddings = max_pos;
  c.rope_theta = theta;
  c.tie_word_embeddings = tie;
  c.rms_norm_eps = eps;
  return c;
}

const std::map<std::string, Preset>& presets() {
  static const std::map<std::string, Preset> p = [] {
    std::map<std::string, Preset> m;
    m["tiny"] = {make(0, 64, 176, 2, 4, 2, 1024, 10000.0, false), "tests: 2 layers of width 64"};
    m["small"] = {make(0, 512, 1376, 6, 8, 4, 2048, 10000.0, true), "the demo: ~20M parameters with an 8k vocabulary"};
    m["smollm2-135m"] = {make(49152, 576, 1536, 30, 9, 3, 8192, 100000.0, true), "HuggingFaceTB/SmolLM2-135M"};
    LlamaConfig l1b = make(128256, 2048, 8192, 16, 32, 8, 131072, 500000.0, true);
    l1b.rope_scaling = RopeScaling{32.0, 1.0, 4.0, 8192};
    m["llama3.2-1b"] = {l1b, "meta-llama/Llama-3.2-1B"};
    m["llama3-8b"] = {make(128256, 4096, 14336, 32, 32, 8, 8192, 500000.0, false), "meta-llama/Meta-Llama-3-8B"};
    m["llama3-70b"] = {make(128256, 8192, 28672, 80, 64, 8, 8192, 500000.0, false), "meta-llama/Meta-Llama-3-70B"};
    return m;
  }();
  return p;
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"tiny", "small", "smollm2-135m", "llama3.2-1b", "llama3-8b", "llama3-70b"};
}

LlamaConfig preset(const std::string& name, int64_t vocab_size) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw UsageError("--model: unknown preset '" + name + "' (known: " + known + "; or a config.json path)");
  }
  LlamaConfig c = it->second.cfg;
  if (vocab_size > 0) c.vocab_size = vocab_size;
  if (c.vocab_size <= 0)
    throw UsageError("--model " + name + ": this preset takes its vocab_size from the data's tokenizer; give --data");
  c.validate("--model " + name);
  return c;
}

LlamaConfig load_model_config(const std::string& preset_or_path, int64_t data_vocab_size) {
  if (presets().count(preset_or_path)) return preset(preset_or_path, data_vocab_size);
  if (!read_whole_file(preset_or_path)) preset(preset_or_path, data_vocab_size);  // throws "unknown preset", listing them
  const json j = read_json_file(preset_or_path);
  LlamaConfig c = LlamaConfig::from_hf_json(j, preset_or_path);
  if (data_vocab_size > 0 && c.vocab_size < data_vocab_size)
    throw UsageError(preset_or_path + ": vocab_size " + std::to_string(c.vocab_size) +
                     " is smaller than the data tokenizer's vocabulary (" + std::to_string(data_vocab_size) + ")");
  return c;
}

}  // namespace bellows::nn
