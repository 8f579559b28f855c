#include "nn/lora.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.hpp"

namespace bellows::nn {

namespace {
constexpr LoraTarget kAll[] = {LoraTarget::q,    LoraTarget::k,  LoraTarget::v,   LoraTarget::o,
                               LoraTarget::gate, LoraTarget::up, LoraTarget::down};
}

double LoraConfig::scale() const { return rslora ? alpha / std::sqrt(double(rank)) : alpha / double(rank); }

const char* to_string(LoraTarget t) {
  switch (t) {
    case LoraTarget::q: return "q";
    case LoraTarget::k: return "k";
    case LoraTarget::v: return "v";
    case LoraTarget::o: return "o";
    case LoraTarget::gate: return "gate";
    case LoraTarget::up: return "up";
    case LoraTarget::down: return "down";
  }
  return "?";
}

std::vector<LoraTarget> parse_lora_targets(const std::string& csv, const std::string& flag) {
  if (csv == "all") return {std::begin(kAll), std::end(kAll)};
  std::vector<LoraTarget> out;
  std::istringstream in(csv);
  for (std::string name; std::getline(in, name, ',');) {
    auto it = std::find_if(std::begin(kAll), std::end(kAll), [&](LoraTarget t) { return name == to_string(t); });
    if (it == std::end(kAll))
      throw UsageError(flag + ": '" + name + "' is not a projection (q, k, v, o, gate, up, down, or all)");
    if (std::find(out.begin(), out.end(), *it) != out.end()) throw UsageError(flag + ": '" + name + "' is given twice");
    out.push_back(*it);
  }
  if (out.empty()) throw UsageError(flag + ": no projection named");
  std::sort(out.begin(), out.end());
  return out;
}

std::string hf_module_name(LoraTarget t) {
  switch (t) {
    case LoraTarget::q: return "self_attn.q_proj";
    case LoraTarget::k: return "self_attn.k_proj";
    case LoraTarget::v: return "self_attn.v_proj";
    case LoraTarget::o: return "self_attn.o_proj";
    case LoraTarget::gate: return "mlp.gate_proj";
    case LoraTarget::up: return "mlp.up_proj";
    case LoraTarget::down: return "mlp.down_proj";
  }
  return "?";
}

std::string lora_base_name(int layer, LoraTarget t) {
  return "model.layers." + std::to_string(layer) + "." + hf_module_name(t);
}

std::pair<int64_t, int64_t> lora_target_shape(const LlamaConfig& c, LoraTarget t) {
  const int64_t C = c.hidden_size, F = c.intermediate_size, HD = c.num_attention_heads * c.head_dim(),
                KVD = c.num_key_value_heads * c.head_dim();
  switch (t) {
    case LoraTarget::q: return {HD, C};
    case LoraTarget::k:
    case LoraTarget::v: return {KVD, C};
    case LoraTarget::o: return {C, HD};
    case LoraTarget::gate:
    case LoraTarget::up: return {F, C};
    case LoraTarget::down: return {C, F};
  }
  return {0, 0};
}

bool column_parallel(LoraTarget t) { return t != LoraTarget::o && t != LoraTarget::down; }

void check_lora(const LlamaConfig& c, const LoraConfig& l) {
  if (l.targets.empty()) throw UsageError("--targets: no projection named");
  if (l.rank <= 0) throw UsageError("--rank must be positive (got " + std::to_string(l.rank) + ")");
  for (LoraTarget t : l.targets) {
    const auto [out, in] = lora_target_shape(c, t);
    if (l.rank > std::min(out, in))
      throw UsageError("--rank " + std::to_string(l.rank) + " is larger than the " + hf_module_name(t) + " layer (" +
                       std::to_string(out) + " x " + std::to_string(in) + "): a rank above its smaller side adds nothing");
  }
  if (!(l.alpha > 0)) throw UsageError("--alpha must be positive");
  if (!(l.dropout >= 0 && l.dropout < 1)) throw UsageError("--dropout must be in [0, 1)");
}

std::vector<ParamSpec> lora_param_specs(const LlamaConfig& c, const LoraConfig& l, const ModelShard& sh) {
  std::vector<ParamSpec> s;
  const int t = sh.tp_size, r = sh.tp_rank;
  auto add = [&](std::string name, std::vector<int64_t> global, int split_dim) {
    ParamSpec p;
    p.name = std::move(name);
    p.global_shape = global;
    p.shape = global;
    if (t > 1 && split_dim >= 0) {
      const int64_t n = global[size_t(split_dim)] / t;
      p.split_dim = split_dim;
      p.split_begin = n * r;
      p.shape[size_t(split_dim)] = n;
    }
    p.tp_replicated = p.tp_grad_partial = t > 1 && split_dim < 0;
    p.numel = size_t(p.shape[0] * p.shape[1]);
    p.offset = s.empty() ? 0 : s.back().offset + s.back().numel;
    s.push_back(std::move(p));
  };
  const int l1 = sh.layer_end < 0 ? int(c.num_hidden_layers) : sh.layer_end;
  for (int layer = sh.layer_begin; layer < l1; ++layer)
    for (LoraTarget tg : l.targets) {
      const auto [out, in] = lora_target_shape(c, tg);
      const std::string base = "lora/" + lora_base_name(layer, tg);
      const bool col = column_parallel(tg);
      add(base + "/A", {l.rank, in}, col ? -1 : 1);
      add(base + "/B", {out, l.rank}, col ? 0 : -1);
    }
  return s;
}

}  // namespace bellows::nn
