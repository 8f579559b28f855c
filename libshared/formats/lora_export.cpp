#include "formats/lora_export.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.hpp"
#include "core/read_file.hpp"
#include "formats/gguf.hpp"
#include "formats/llama_gguf.hpp"
#include "formats/safetensors.hpp"
#include "io/safe_output.hpp"
#include "log/log.hpp"
#include "train/run_tokenizer.hpp"

namespace bellows::formats {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr nn::LoraTarget kTargets[] = {nn::LoraTarget::q,    nn::LoraTarget::k,  nn::LoraTarget::v,   nn::LoraTarget::o,
                                       nn::LoraTarget::gate, nn::LoraTarget::up, nn::LoraTarget::down};

// "lora/model.layers.3.self_attn.q_proj/A" -> "model.layers.3.self_attn.q_proj"
std::string base_linear_of(const nn::ParamSpec& factor) { return factor.name.substr(5, factor.name.size() - 7); }

// PEFT's key of a factor: base_model.model.<linear>.lora_A.weight (the adapter name stripped, as
// peft saves).
std::string peft_key(const std::string& linear, char which) {
  return "base_model.model." + linear + ".lora_" + std::string(1, which) + ".weight";
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

std::string mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);
  return buf;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  f.close();
  if (!f) throw RuntimeError(p.string() + ": cannot write");
}

struct Row {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
  uint64_t bytes;
};

void print_dry_run(const std::string& what, const std::vector<Row>& rows) {
  size_t w = 6;
  uint64_t total = 0;
  for (const auto& r : rows) w = std::max(w, r.name.size());
  std::printf("%s\n%-*s  %-22s  %-5s  %s\n", what.c_str(), int(w), "tensor", "shape", "dtype", "bytes");
  for (const auto& r : rows) {
    std::printf("%-*s  %-22s  %-5s  %llu\n", int(w), r.name.c_str(), shape_str(r.shape).c_str(), r.dtype.c_str(),
                static_cast<unsigned long long>(r.bytes));
    total += r.bytes;
  }
  std::printf("%zu tensors, output about %s\n", rows.size(), mb(total).c_str());
}

json summary_json(const ConvertSummary& s) {
  return {{"tensors", s.tensors}, {"bytes_read", s.bytes_read}, {"bytes_written", s.bytes_written}, {"seconds", s.seconds}};
}

void log_done(const std::string& what, const ConvertSummary& s) {
  log::info(what + ": " + std::to_string(s.tensors) + " tensors, wrote " + mb(s.bytes_written) + " in " +
            std::to_string(s.seconds).substr(0, 6) + " s");
}

// alpha as peft writes it: an integer when it is one.
json number_json(double v) {
  if (std::abs(v) < 1e15 && v == std::floor(v)) return int64_t(v);
  return v;
}

std::string targets_csv(const nn::LoraConfig& l) {
  std::string s;
  for (auto t : l.targets) s += (s.empty() ? "" : ",") + std::string(nn::to_string(t));
  return s;
}

json adapter_json(const train::AdapterData& a, const std::string& path) {
  return {{"adapter", path},
          {"rank", a.lora.rank},
          {"alpha", a.lora.alpha},
          {"rslora", a.lora.rslora},
          {"scaling", a.lora.scale()},
          {"targets", targets_csv(a.lora)},
          {"step", a.step},
          {"base_fingerprint", a.base_fingerprint}};
}

}  // namespace

std::string peft_module_name(nn::LoraTarget t) {
  const std::string m = nn::hf_module_name(t);  // "self_attn.q_proj"
  return m.substr(m.find('.') + 1);
}

train::AdapterData load_adapter_for_base(const std::string& adapter_arg, const std::string& flag,
                                         const train::CheckpointReader& base, const std::string& base_path,
                                         std::string& resolved) {
  resolved = train::resolve_adapter(adapter_arg, flag);
  train::AdapterData a = train::read_adapter_file(resolved, /*with_optimizer=*/false);
  // The shape first: it is free, the fingerprint reads the whole base.
  if (a.base_config.to_hf_json() != base.config().to_hf_json())
    train::check_adapter_matches(a, resolved, base.config(), "", base_path);
  train::check_adapter_matches(a, resolved, base.config(), train::base_fingerprint(base), base_path);
  return a;
}

LoraMerge::LoraMerge(const std::string& adapter_arg, const train::CheckpointReader& base, const std::string& base_path) {
  a_ = load_adapter_for_base(adapter_arg, "--lora", base, base_path, path_);
  specs_ = nn::lora_param_specs(a_.base_config, a_.lora);
  for (size_t i = 0; i < specs_.size(); i += 2) by_weight_[base_linear_of(specs_[i]) + ".weight"] = i;
}

void LoraMerge::apply(const nn::ParamSpec& p, float* W) const {
  const auto it = by_weight_.find(p.name);
  if (it == by_weight_.end()) return;
  const nn::ParamSpec& A = specs_[it->second];
  const nn::ParamSpec& B = specs_[it->second + 1];
  BELLOWS_CHECK(p.shape.size() == 2 && p.shape[0] == B.shape[0] && p.shape[1] == A.shape[1],
                "merge of " + p.name + ": adapter of another shape");
  train::merge_adapter_tensor(a_, A, B, W);
}

json LoraMerge::describe() const { return adapter_json(a_, path_); }

std::string LoraMerge::note() const {
  return " with " + path_ + " merged (rank " + std::to_string(a_.lora.rank) + ", scaling " + std::to_string(a_.lora.scale()) +
         ", " + targets_csv(a_.lora) + ")";
}

// --- export to PEFT -----------------------------------------------------------------------------

ConvertSummary export_peft(const ConvertOptions& o) {
  const auto t0 = Clock::now();
  const std::string dtype = o.dtype.empty() ? "f32" : o.dtype;
  std::string st;
  if (dtype == "f32") st = "F32";
  else if (dtype == "f16") st = "F16";
  else if (dtype == "bf16") st = "BF16";
  else throw UsageError("--dtype: '" + dtype + "' is not a PEFT export type (f32, f16, bf16)");
  const size_t esize = dtype == "f32" ? 4 : 2;
  const std::string ckpt = train::resolve_checkpoint(o.from);
  train::CheckpointReader base(ckpt);
  std::string apath;
  const train::AdapterData a = load_adapter_for_base(o.lora, "--lora", base, ckpt, apath);
  const auto specs = nn::lora_param_specs(a.base_config, a.lora);

  // Layer by layer, projection by projection, A then B (peft's state-dict order). Our q/k rows
  // are already in HF's rotate_half order, which is what peft's LoRA on q_proj/k_proj sees.
  std::vector<SafetensorsTensor> decl;
  std::vector<Row> rows;
  for (const auto& p : specs) {
    SafetensorsTensor t;
    t.name = peft_key(base_linear_of(p), p.name.back());
    t.dtype = st;
    t.shape.assign(p.shape.begin(), p.shape.end());
    decl.push_back(t);
    rows.push_back({t.name, p.shape, st, p.numel * esize});
  }
  if (o.dry_run) {
    print_dry_run("peft export of " + apath + " (base " + ckpt + ")", rows);
    return {};
  }
  json targets = json::array();
  {
    std::vector<std::string> names;
    for (auto t : a.lora.targets) names.push_back(peft_module_name(t));
    std::sort(names.begin(), names.end());  // peft writes its set sorted
    for (auto& n : names) targets.push_back(n);
  }
  const json cfg = {{"peft_type", "LORA"},
                    {"task_type", "CAUSAL_LM"},
                    {"base_model_name_or_path", o.peft_base},
                    {"revision", nullptr},
                    {"inference_mode", true},
                    {"r", a.lora.rank},
                    {"lora_alpha", number_json(a.lora.alpha)},
                    {"lora_dropout", a.lora.dropout},
                    {"use_rslora", a.lora.rslora},
                    {"target_modules", targets},
                    {"bias", "none"},
                    {"fan_in_fan_out", false},
                    {"use_dora", false},
                    {"init_lora_weights", true},
                    {"layers_to_transform", nullptr},
                    {"layers_pattern", nullptr},
                    {"rank_pattern", json::object()},
                    {"alpha_pattern", json::object()},
                    {"modules_to_save", nullptr}};

  io::SafeOutput out(o.output, io::SafeOutput::Kind::directory, o.overwrite);
  const fs::path dir = out.temp_path();
  ConvertSummary sum;
  // No provenance in the file's metadata (report.json has it): the same adapter gives the same bytes.
  SafetensorsWriter w((dir / "adapter_model.safetensors").string(), decl);
  for (const auto& p : specs) {
    w.write_f32(a.tensors.data() + p.offset);
    sum.tensors++;
    sum.bytes_read += p.numel * 4;
  }
  w.close();
  sum.bytes_written = w.file_size();
  write_text(dir / "adapter_config.json", cfg.dump(2) + "\n");
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  write_text(dir / "report.json", json{{"tool", "ckpt-convert"},
                                       {"from", ckpt},
                                       {"lora", adapter_json(a, apath)},
                                       {"to", "peft"},
                                       {"dtype", dtype},
                                       {"options", o.effective_options},
                                       {"summary", summary_json(sum)}}
                                          .dump(2) +
                                      "\n");
  out.commit();
  log_done("peft export to " + o.output, sum);
  return sum;
}

// --- export to a GGUF LoRA adapter --------------------------------------------------------------

ConvertSummary export_gguf_lora(const ConvertOptions& o) {
  const auto t0 = Clock::now();
  const std::string dtype = o.dtype.empty() ? "f32" : o.dtype;
  GgmlType type;
  uint32_t file_type;
  if (dtype == "f32") type = GgmlType::f32, file_type = 0;
  else if (dtype == "f16") type = GgmlType::f16, file_type = 1;
  else if (dtype == "bf16") type = GgmlType::bf16, file_type = 32;
  else
    throw UsageError("--dtype: '" + dtype + "' is not a GGUF LoRA type (f32, f16, bf16; not q8_0: lora_b's rows are r "
                     "wide, rarely a multiple of q8_0's 32-element blocks)");
  const std::string ckpt = train::resolve_checkpoint(o.from);
  train::CheckpointReader base(ckpt);
  std::string apath;
  const train::AdapterData a = load_adapter_for_base(o.lora, "--lora", base, ckpt, apath);
  const nn::LlamaConfig& cfg = a.base_config;
  const auto specs = nn::lora_param_specs(cfg, a.lora);

  // llama.cpp scales B A x by adapter.lora.alpha / r (r from lora_b's ne[0]). rsLoRA's
  // alpha / sqrt(r) is the same product with alpha * sqrt(r) written instead: exact up to the
  // key's float32 rounding.
  const double alpha_gguf = a.lora.rslora ? a.lora.alpha * std::sqrt(double(a.lora.rank)) : a.lora.alpha;
  GgufMetadata md;
  md.emplace_back("general.architecture", GgufValue::make_string("llama"));
  md.emplace_back("general.type", GgufValue::make_string("adapter"));
  md.emplace_back("general.name", GgufValue::make_string(fs::path(train::run_dir_of_checkpoint(ckpt)).filename().string() + " LoRA"));
  md.emplace_back("general.file_type", GgufValue::make_u32(file_type));
  md.emplace_back("adapter.type", GgufValue::make_string("lora"));
  md.emplace_back("adapter.lora.alpha", GgufValue::make_f32(float(alpha_gguf)));
  // Ours, for the record: what the adapter was, and the base it belongs to.
  md.emplace_back("bellows.lora.alpha", GgufValue::make_f32(float(a.lora.alpha)));
  md.emplace_back("bellows.lora.rslora", GgufValue::make_bool(a.lora.rslora));
  md.emplace_back("bellows.base_fingerprint", GgufValue::make_string(a.base_fingerprint));

  std::vector<GgufWriter::Tensor> decl;
  std::vector<Row> rows;
  const GgmlBlock blk = ggml_block(uint32_t(type));
  for (const auto& p : specs) {
    const std::string g = gguf_name_of_hf(base_linear_of(p) + ".weight");
    BELLOWS_CHECK(!g.empty(), "no GGUF name for " + p.name);
    // lora_a: torch [r, in] -> ne {in, r}; lora_b: [out, r] -> ne {r, out} (ggml's reversed order).
    GgufWriter::Tensor t{g + (p.name.back() == 'A' ? ".lora_a" : ".lora_b"), {uint64_t(p.shape[1]), uint64_t(p.shape[0])}, type};
    rows.push_back({t.name, {int64_t(t.ne[0]), int64_t(t.ne[1])}, ggml_type_name(type), p.numel / blk.elems * blk.bytes});
    decl.push_back(std::move(t));
  }
  if (o.dry_run) {
    print_dry_run("gguf-lora export of " + apath + " (base " + ckpt + "; shapes in ggml order, fastest dimension first)", rows);
    return {};
  }
  io::SafeOutput out(o.output, io::SafeOutput::Kind::file, o.overwrite);
  GgufWriter w(out.temp_path(), md, decl);
  ConvertSummary sum;
  std::vector<float> permuted;
  for (const auto& p : specs) {
    const float* data = a.tensors.data() + p.offset;
    // B's rows are the base's output rows: q/k take the row order llama.cpp gives the base's
    // q/k (its RoPE rotates adjacent pairs). A's columns are the layer's input, not permuted.
    const int64_t heads = p.name.back() == 'B' ? qk_heads(cfg, base_linear_of(p) + ".weight") : 0;
    if (heads) {
      permuted.resize(p.numel);
      permute_rows_to_gguf(data, permuted.data(), heads, p.shape[0], p.shape[1]);
      data = permuted.data();
    }
    w.write_f32(data);
    sum.tensors++;
    sum.bytes_read += p.numel * 4;
  }
  w.close();
  sum.bytes_written = w.file_size();
  out.commit();
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  log_done("gguf-lora export to " + o.output +
               (a.lora.rslora ? " (rsLoRA: adapter.lora.alpha = alpha*sqrt(r) = " + std::to_string(alpha_gguf) +
                                    ", since llama.cpp divides by r)"
                              : std::string()),
           sum);
  return sum;
}

// --- import from PEFT ---------------------------------------------------------------------------

namespace {

// One setting of adapter_config.json that we cannot honour: UsageError naming the file.
[[noreturn]] void refuse(const std::string& file, const std::string& why) { throw UsageError(file + ": " + why); }

bool absent_or_null(const json& c, const char* key) { return !c.contains(key) || c[key].is_null(); }
bool empty_value(const json& v) {
  return v.is_null() || ((v.is_array() || v.is_object() || v.is_string()) && v.empty()) || (v.is_boolean() && !v.get<bool>());
}

std::vector<nn::LoraTarget> peft_targets(const json& tm, const std::string& file) {
  std::vector<nn::LoraTarget> out;
  auto supported = [] {
    std::string s;
    for (auto t : kTargets) s += (s.empty() ? "" : ", ") + peft_module_name(t);
    return s;
  };
  if (tm.is_string()) {
    if (tm.get<std::string>() == "all-linear") return {std::begin(kTargets), std::end(kTargets)};
    refuse(file, "target_modules is the pattern '" + tm.get<std::string>() +
                     "': only a list of module names (or \"all-linear\") is supported");
  }
  if (!tm.is_array() || tm.empty()) throw RuntimeError(file + ": target_modules is neither a list of module names nor a string");
  for (const auto& m : tm) {
    if (!m.is_string()) throw RuntimeError(file + ": target_modules holds " + m.dump() + ", not a module name");
    const std::string name = m.get<std::string>();
    // peft matches a name against a module's key or its suffix after a dot: "q_proj" and
    // "self_attn.q_proj" adapt every layer's q; anything longer names some layers only.
    const auto it = std::find_if(std::begin(kTargets), std::end(kTargets), [&](nn::LoraTarget t) {
      return name == peft_module_name(t) || name == nn::hf_module_name(t);
    });
    if (it == std::end(kTargets))
      refuse(file, "target module '" + name + "' is not supported (supported: " + supported() + ")");
    if (std::find(out.begin(), out.end(), *it) == out.end()) out.push_back(*it);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ConvertSummary import_peft_lora(const ConvertOptions& o) {
  const auto t0 = Clock::now();
  const fs::path dir = o.lora_from_peft;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError("--lora-from-peft: '" + o.lora_from_peft + "' is not a directory");
  const std::string cfg_path = (dir / "adapter_config.json").string();
  if (!fs::is_regular_file(cfg_path, ec))
    throw UsageError(o.lora_from_peft + ": has no adapter_config.json (not a PEFT adapter directory)");
  const json c = read_json_file(cfg_path);
  if (!c.is_object()) throw RuntimeError(cfg_path + ": is not a JSON object");

  // What the file says, and everything we cannot represent refused by name.
  const std::string peft_type = c.value("peft_type", std::string());
  if (peft_type != "LORA") refuse(cfg_path, "peft_type '" + peft_type + "' is not supported (LORA)");
  if (!absent_or_null(c, "task_type") && c["task_type"] != "CAUSAL_LM")
    refuse(cfg_path, "task_type " + c["task_type"].dump() + " is not supported (CAUSAL_LM)");
  if (c.value("use_dora", false)) refuse(cfg_path, "use_dora: DoRA adapters are not supported (plain LoRA only)");
  if (c.contains("bias") && c["bias"] != "none") refuse(cfg_path, "bias " + c["bias"].dump() + " is not supported (\"none\")");
  if (c.value("lora_bias", false)) refuse(cfg_path, "lora_bias: biases on lora_B are not supported");
  if (c.value("fan_in_fan_out", false))
    refuse(cfg_path, "fan_in_fan_out: adapters of Conv1D layers (GPT-2 style) are not supported (Llama's nn.Linear)");
  for (const char* k : {"modules_to_save", "layer_replication", "trainable_token_indices", "alora_invocation_tokens",
                        "target_parameters", "exclude_modules"})
    if (c.contains(k) && !empty_value(c[k])) refuse(cfg_path, std::string(k) + " " + c[k].dump() + " is not supported");
  if (c.contains("use_qalora") && c.value("use_qalora", false)) refuse(cfg_path, "use_qalora is not supported");

  const train::CheckpointReader base(train::resolve_checkpoint(o.from));
  const nn::LlamaConfig& cfg = base.config();
  nn::LoraConfig lora;
  if (!c.contains("r") || !c["r"].is_number_integer() || c["r"].get<int64_t>() <= 0 || c["r"].get<int64_t>() > (1 << 20))
    throw RuntimeError(cfg_path + ": r is not a positive integer");
  lora.rank = int(c["r"].get<int64_t>());
  if (!c.contains("lora_alpha") || !c["lora_alpha"].is_number() || !(c["lora_alpha"].get<double>() > 0))
    throw RuntimeError(cfg_path + ": lora_alpha is not a positive number");
  lora.alpha = c["lora_alpha"].get<double>();
  lora.rslora = c.value("use_rslora", false);
  lora.dropout = c.contains("lora_dropout") && c["lora_dropout"].is_number() ? c["lora_dropout"].get<double>() : 0.0;
  if (!c.contains("target_modules")) throw RuntimeError(cfg_path + ": has no target_modules");
  lora.targets = peft_targets(c["target_modules"], cfg_path);
  for (const char* k : {"rank_pattern", "alpha_pattern"}) {
    if (!c.contains(k) || c[k].is_null()) continue;
    if (!c[k].is_object()) throw RuntimeError(cfg_path + ": " + k + " is not an object");
    const double want = k[0] == 'r' ? double(lora.rank) : lora.alpha;
    for (const auto& [mod, v] : c[k].items())
      if (!v.is_number() || v.get<double>() != want)
        refuse(cfg_path, std::string(k) + " gives '" + mod + "' " + v.dump() +
                             ": one rank and alpha for every layer are supported (" + (k[0] == 'r' ? "r " : "lora_alpha ") +
                             number_json(want).dump() + ")");
  }
  if (c.contains("layers_to_transform") && !c["layers_to_transform"].is_null()) {
    std::set<int64_t> layers;
    const json& l = c["layers_to_transform"];
    if (l.is_number_integer()) layers.insert(l.get<int64_t>());
    else if (l.is_array())
      for (const auto& x : l)
        if (x.is_number_integer()) layers.insert(x.get<int64_t>());
    if (int64_t(layers.size()) != cfg.num_hidden_layers || *layers.begin() != 0 || *layers.rbegin() != cfg.num_hidden_layers - 1)
      refuse(cfg_path, "layers_to_transform " + l.dump() + ": adapters on some layers only are not supported (all " +
                           std::to_string(cfg.num_hidden_layers) + " layers)");
  }
  try {
    nn::check_lora(cfg, lora);
  } catch (const UsageError& e) {
    refuse(cfg_path, std::string(e.what()) + " (the adapter does not fit " + base.file() + ")");
  }

  const fs::path st_path = dir / "adapter_model.safetensors";
  if (!fs::is_regular_file(st_path, ec)) {
    if (fs::exists(dir / "adapter_model.bin", ec))
      throw UsageError(o.lora_from_peft + ": has adapter_model.bin but no adapter_model.safetensors: pickles are not read "
                                          "(they can run code); save with safe_serialization=True or convert it to safetensors");
    throw UsageError(o.lora_from_peft + ": has no adapter_model.safetensors");
  }
  SafetensorsReader st(st_path.string());
  train::AdapterData a;
  a.lora = lora;
  a.base_config = cfg;
  a.tokenizer_sha256 = base.tokenizer_sha256();
  const auto specs = nn::lora_param_specs(cfg, lora);
  std::vector<std::pair<const nn::ParamSpec*, const SafetensorsTensor*>> plan;
  std::set<std::string> expected;
  std::vector<Row> rows;
  for (const auto& p : specs) {
    const std::string key = peft_key(base_linear_of(p), p.name.back());
    expected.insert(key);
    const SafetensorsTensor* t = st.find(key);
    if (!t) throw RuntimeError(st_path.string() + ": tensor '" + key + "' is missing (adapter_config.json's r and target_modules imply it)");
    const std::vector<int64_t> shape(t->shape.begin(), t->shape.end());
    if (shape != p.shape)
      throw RuntimeError(st_path.string() + ": tensor '" + key + "' has shape " + shape_str(shape) + ", " + base.file() +
                         " and r imply " + shape_str(p.shape));
    if (t->dtype != "F32" && t->dtype != "F16" && t->dtype != "BF16" && t->dtype != "F64")
      throw RuntimeError(st_path.string() + ": tensor '" + key + "' has dtype " + t->dtype + " (supported: F32, F16, BF16, F64)");
    plan.emplace_back(&p, t);
    rows.push_back({key + " -> " + p.name, p.shape, "F32", p.numel * 4});
  }
  for (const auto& t : st.tensors())
    if (!expected.count(t.name))
      throw RuntimeError(st_path.string() + ": tensor '" + t.name + "' is not a LoRA factor of the modules adapter_config.json targets");
  if (o.dry_run) {
    print_dry_run("import of " + o.lora_from_peft + " as an adapter of " + base.file(), rows);
    return {};
  }

  io::SafeOutput out(o.output, io::SafeOutput::Kind::file, o.overwrite);  // an existing output refused before the work
  ConvertSummary sum;
  a.tensors.resize(specs.empty() ? 0 : specs.back().offset + specs.back().numel);
  for (const auto& [p, t] : plan) {
    st.read_f32(*t, a.tensors.data() + p->offset);
    for (size_t i = 0; i < p->numel; ++i)
      if (!std::isfinite(a.tensors[p->offset + i]))
        throw RuntimeError(st_path.string() + ": tensor '" + t->name + "' holds a NaN or infinity");
    sum.bytes_read += t->end - t->begin;
    sum.tensors++;
  }
  a.base_fingerprint = train::base_fingerprint(base);
  train::write_adapter_file(out.temp_path(), a, "ckpt-convert", o.effective_options);
  sum.bytes_written = fs::file_size(out.temp_path(), ec);
  out.commit();
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  log_done("import of " + o.lora_from_peft + " to " + o.output + " (rank " + std::to_string(lora.rank) + ", " +
               targets_csv(lora) + (lora.rslora ? ", rsLoRA" : "") + ")",
           sum);
  return sum;
}

}  // namespace bellows::formats
