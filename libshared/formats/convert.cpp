#include "formats/convert.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "core/error.hpp"
#include "core/read_file.hpp"
#include "core/sha256.hpp"
#include <sentencepiece_processor.h>
#include "formats/gguf.hpp"
#include "formats/hf_dir.hpp"
#include "formats/llama_gguf.hpp"
#include "formats/lora_export.hpp"
#include "formats/safetensors.hpp"
#include "formats/tokenizer_files.hpp"
#include "io/safe_output.hpp"
#include "log/log.hpp"
#include "log/progress.hpp"
#include "nn/llama.hpp"
#include "tok/tokenizer.hpp"
#include "train/checkpoint.hpp"
#include "train/run_tokenizer.hpp"

namespace bellows::formats {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

uint64_t parse_byte_size(const std::string& s, const std::string& flag) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  const std::string num = s.substr(0, i), unit = s.substr(i);
  static const std::vector<std::pair<std::string, double>> units = {
      {"", 1},       {"B", 1},          {"KB", 1e3},         {"MB", 1e6},          {"GB", 1e9},
      {"TB", 1e12},  {"KiB", 1024.0},   {"MiB", 1048576.0},  {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(num, &used);
    if (used != num.size()) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw UsageError(flag + ": '" + s + "' is not a size (e.g. 5GB, 500MB, 2GiB)");
  }
  for (const auto& [u, mult] : units)
    if (u == unit) {
      const double bytes = value * mult;
      if (bytes < 1 || bytes > 1e18) throw UsageError(flag + ": '" + s + "' is out of range");
      return uint64_t(bytes);
    }
  throw UsageError(flag + ": unknown unit '" + unit + "' in '" + s + "' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
}

namespace {

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

// One line per tensor for --dry-run, then the total.
struct DryRunTable {
  struct Row {
    std::string name, shape, dtype;
    uint64_t bytes;
  };
  std::vector<Row> rows;
  void add(std::string name, const std::vector<int64_t>& shape, std::string dtype, uint64_t bytes) {
    rows.push_back({std::move(name), shape_str(shape), std::move(dtype), bytes});
  }
  void print(const std::string& what, uint64_t extra_bytes) const {
    size_t w = 4;
    for (const auto& r : rows) w = std::max(w, r.name.size());
    uint64_t total = extra_bytes;
    std::printf("%s\n", what.c_str());
    std::printf("%-*s  %-22s  %-5s  %s\n", int(w), "tensor", "shape", "dtype", "bytes");
    for (const auto& r : rows) {
      std::printf("%-*s  %-22s  %-5s  %llu\n", int(w), r.name.c_str(), r.shape.c_str(), r.dtype.c_str(),
                  static_cast<unsigned long long>(r.bytes));
      total += r.bytes;
    }
    std::printf("%zu tensors, output about %s\n", rows.size(), mb(total).c_str());
  }
};

// What an export reads: the checkpoint, tensor by tensor, and the run's tokenizer.
struct ExportSource {
  std::string ckpt;
  std::unique_ptr<train::CheckpointReader> reader;
  std::vector<nn::ParamSpec> specs;
  tok::Tokenizer tokenizer;
  json tokenizer_json, tokenizer_config;  // the run's files (config may be null)
  size_t largest = 0;                     // floats in the largest tensor
};

ExportSource open_export_source(const ConvertOptions& o) {
  ExportSource s;
  s.ckpt = train::resolve_checkpoint(o.from);
  s.reader = std::make_unique<train::CheckpointReader>(s.ckpt);
  s.specs = nn::param_specs(s.reader->config());
  for (const auto& p : s.specs) s.largest = std::max(s.largest, p.numel);
  auto t = train::checkpoint_tokenizer(s.ckpt, o.tokenizer, s.reader->tokenizer_sha256());
  if (!t)
    throw UsageError(s.ckpt + ": its run directory keeps no tokenizer (RUNDIR/tokenizer/); give --tokenizer PATH");
  s.tokenizer = std::move(*t);
  if (s.tokenizer.kind() == "tiktoken")
    throw UsageError(s.tokenizer.path() + ": a tiktoken rank file cannot be exported yet (supported: HF tokenizer.json, "
                     "SentencePiece .model)");
  if (s.tokenizer.kind() == "tokenizer.json") s.tokenizer_json = read_json_file(s.tokenizer.path());
  const fs::path cfg = fs::path(s.tokenizer.path()).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::is_regular_file(cfg, ec)) s.tokenizer_config = read_json_file(cfg.string());
  return s;
}

std::string token_text(const tok::Tokenizer& t, std::optional<uint32_t> id) {
  if (!id) return "";
  return t.decode({*id});
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  f.close();
  if (!f) throw RuntimeError(p.string() + ": cannot write");
}

void log_done(const std::string& what, const ConvertSummary& s) {
  log::info(what + ": " + std::to_string(s.tensors) + " tensors, read " + mb(s.bytes_read) + ", wrote " +
            mb(s.bytes_written) + " in " + std::to_string(s.seconds).substr(0, 6) + " s (" +
            mb(uint64_t(double(s.bytes_written) / std::max(s.seconds, 1e-9))) + "/s)");
}

json summary_json(const ConvertSummary& s) {
  return {{"tensors", s.tensors}, {"bytes_read", s.bytes_read}, {"bytes_written", s.bytes_written},
          {"seconds", s.seconds}, {"mb_per_s", double(s.bytes_written) / 1e6 / std::max(s.seconds, 1e-9)}};
}

// --- export to HF -----------------------------------------------------------------------------

struct HfDtype {
  std::string st;     // safetensors dtype
  std::string torch;  // config.json torch_dtype
  size_t size;
};

HfDtype hf_dtype(const std::string& d) {
  if (d == "f32") return {"F32", "float32", 4};
  if (d == "f16") return {"F16", "float16", 2};
  if (d == "bf16") return {"BF16", "bfloat16", 2};
  throw UsageError("--dtype: '" + d + "' is not an HF export type (f32, f16, bf16)");
}

}  // namespace

ConvertSummary export_hf(const ConvertOptions& o) {
  const auto t0 = Clock::now();
  const HfDtype dt = hf_dtype(o.dtype.empty() ? "f32" : o.dtype);
  ExportSource src = open_export_source(o);
  const nn::LlamaConfig& cfg = src.reader->config();
  // --lora --merge: the adapter, checked against this base, folded into each tensor as it goes by.
  const std::unique_ptr<LoraMerge> lora = o.lora.empty() ? nullptr : std::make_unique<LoraMerge>(o.lora, *src.reader, src.ckpt);

  // Shards filled greedily in parameter order, as huggingface_hub does; a tensor larger than
  // the limit gets a shard of its own.
  std::vector<std::vector<const nn::ParamSpec*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const auto& p : src.specs) {
    const uint64_t bytes = p.numel * dt.size;
    if (!shards.back().empty() && in_shard + bytes > o.shard_size) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&p);
    in_shard += bytes;
    total += bytes;
  }
  auto shard_name = [&](size_t i) {
    if (shards.size() == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    return std::string(buf);
  };
  if (o.dry_run) {
    DryRunTable t;
    for (size_t i = 0; i < shards.size(); ++i)
      for (const auto* p : shards[i]) t.add(p->name, p->shape, dt.st, p->numel * dt.size);
    t.print("hf export of " + src.ckpt + " (" + std::to_string(shards.size()) + " shard(s), " + dt.torch + ")", 0);
    return {};
  }

  io::SafeOutput out(o.output, io::SafeOutput::Kind::directory, o.overwrite);
  const fs::path dir = out.temp_path();
  ConvertSummary sum;
  std::vector<float> buf(src.largest);
  json weight_map = json::object();
  log::Progress progress("ckpt-convert", total, "B");
  for (size_t i = 0; i < shards.size(); ++i) {
    std::vector<SafetensorsTensor> decl;
    for (const auto* p : shards[i]) {
      SafetensorsTensor t;
      t.name = p->name;
      t.dtype = dt.st;
      t.shape.assign(p->shape.begin(), p->shape.end());
      decl.push_back(t);
      weight_map[p->name] = shard_name(i);
    }
    SafetensorsWriter w((dir / shard_name(i)).string(), decl, {{"bellows_source", src.ckpt}});
    for (const auto* p : shards[i]) {
      src.reader->read("params/" + p->name, *p, buf.data());
      if (lora) lora->apply(*p, buf.data());
      w.write_f32(buf.data());
      sum.bytes_read += p->numel * 4;
      sum.tensors++;
      progress.add(p->numel * dt.size);
    }
    w.close();
    sum.bytes_written += w.file_size();
  }
  progress.finish();
  if (shards.size() > 1)
    write_text(dir / "model.safetensors.index.json",
               json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(2) + "\n");

  json config = cfg.to_hf_json();
  config["torch_dtype"] = dt.torch;
  json gen = {{"_from_model_config", true}};
  if (auto b = src.tokenizer.bos_id()) config["bos_token_id"] = gen["bos_token_id"] = *b;
  if (auto e = src.tokenizer.eos_id()) config["eos_token_id"] = gen["eos_token_id"] = *e;
  write_text(dir / "config.json", config.dump(2) + "\n");
  write_text(dir / "generation_config.json", gen.dump(2) + "\n");
  json tcfg = src.tokenizer_config;
  if (const auto* sp = src.tokenizer.sentencepiece()) {
    // transformers' LlamaTokenizer reads a SentencePiece model as tokenizer.model.
    write_text(dir / "tokenizer.model", read_whole_file(src.tokenizer.path()).value_or(""));
    if (!tcfg.is_object()) tcfg = json::object();
    if (!tcfg.contains("tokenizer_class")) tcfg["tokenizer_class"] = "LlamaTokenizer";
    if (!tcfg.contains("add_bos_token")) tcfg["add_bos_token"] = false;
    // Not transformers' legacy handling of text after special tokens: plain SentencePiece.
    if (!tcfg.contains("legacy")) tcfg["legacy"] = false;
    if (sp->unk_id() >= 0 && !tcfg.contains("unk_token")) tcfg["unk_token"] = sp->IdToPiece(sp->unk_id());
  } else {
    write_text(dir / "tokenizer.json", read_whole_file(src.tokenizer.path()).value_or(""));
  }
  auto special_text = [&](std::optional<uint32_t> id) -> std::string {
    if (!id) return "";
    if (const auto* sp = src.tokenizer.sentencepiece()) return sp->IdToPiece(int(*id));
    return token_text(src.tokenizer, id);
  };
  write_text(dir / "tokenizer_config.json",
             hf_tokenizer_config(tcfg, special_text(src.tokenizer.bos_id()), special_text(src.tokenizer.eos_id()),
                                 cfg.max_position_embeddings)
                     .dump(2) +
                 "\n");
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  json report = {{"tool", "ckpt-convert"},
                 {"from", src.ckpt},
                 {"to", "hf"},
                 {"dtype", dt.torch},
                 {"shards", shards.size()},
                 {"tokenizer_sha256", src.tokenizer.sha256()},
                 {"options", o.effective_options},
                 {"summary", summary_json(sum)}};
  if (lora) report["merged_lora"] = lora->describe();
  write_text(dir / "report.json", report.dump(2) + "\n");
  out.commit();
  log_done("hf export to " + o.output + (lora ? lora->note() : std::string()), sum);
  return sum;
}

// --- export to GGUF ---------------------------------------------------------------------------

namespace {

struct GgufPlanEntry {
  const nn::ParamSpec* spec = nullptr;  // nullptr: rope_freqs.weight (computed)
  GgufWriter::Tensor tensor;
};

GgmlType gguf_type_for(const std::string& dtype, const nn::ParamSpec& p, bool& fell_back) {
  if (p.shape.size() < 2 || dtype == "f32") return GgmlType::f32;
  if (dtype == "f16") return GgmlType::f16;
  if (dtype == "bf16") return GgmlType::bf16;
  // q8_0 blocks run along a row (the input features); rows of other widths stay f16, as
  // llama.cpp's own converter does.
  if (p.shape.back() % 32 == 0) return GgmlType::q8_0;
  fell_back = true;
  return GgmlType::f16;
}

// Bytes of a tensor's data in its ggml type.
uint64_t gguf_tensor_bytes(const GgufWriter::Tensor& t) {
  const GgmlBlock b = ggml_block(uint32_t(t.type));
  uint64_t n = 1;
  for (auto x : t.ne) n *= x;
  return n / b.elems * b.bytes;
}

uint32_t gguf_file_type(const std::string& dtype) {
  if (dtype == "f16") return 1;
  if (dtype == "bf16") return 32;
  if (dtype == "q8_0") return 7;
  return 0;
}

}  // namespace

ConvertSummary export_gguf(const ConvertOptions& o) {
  const auto t0 = Clock::now();
  const std::string dtype = o.dtype.empty() ? "f32" : o.dtype;
  if (dtype != "f32" && dtype != "f16" && dtype != "bf16" && dtype != "q8_0")
    throw UsageError("--dtype: '" + dtype + "' is not a GGUF export type (f32, f16, bf16, q8_0)");
  ExportSource src = open_export_source(o);
  const nn::LlamaConfig& cfg = src.reader->config();
  const std::unique_ptr<LoraMerge> lora = o.lora.empty() ? nullptr : std::make_unique<LoraMerge>(o.lora, *src.reader, src.ckpt);

  GgufMetadata md;
  md.emplace_back("general.architecture", GgufValue::make_string("llama"));
  md.emplace_back("general.name", GgufValue::make_string(fs::path(train::run_dir_of_checkpoint(src.ckpt)).filename().string()));
  md.emplace_back("general.file_type", GgufValue::make_u32(gguf_file_type(dtype)));
  if (dtype == "q8_0") md.emplace_back("general.quantization_version", GgufValue::make_u32(2));
  append_llama_metadata(cfg, md);
  if (const auto* sp = src.tokenizer.sentencepiece())
    append_gguf_vocab(gguf_vocab_from_sentencepiece(*sp, cfg.vocab_size, src.tokenizer_config, src.tokenizer.path()), md);
  else
    append_gguf_vocab(gguf_vocab_from_tokenizer_json(src.tokenizer_json, src.tokenizer_config, cfg.vocab_size,
                                                     src.tokenizer.bos_id(), src.tokenizer.eos_id(), src.tokenizer.path()),
                      md);

  std::vector<GgufPlanEntry> plan;
  bool fell_back = false;
  for (const auto& p : src.specs) {
    GgufPlanEntry e;
    e.spec = &p;
    e.tensor.name = gguf_name_of_hf(p.name);
    BELLOWS_CHECK(!e.tensor.name.empty(), "no GGUF name for " + p.name);
    e.tensor.ne.assign(p.shape.rbegin(), p.shape.rend());
    e.tensor.type = gguf_type_for(dtype, p, fell_back);
    plan.push_back(e);
  }
  std::vector<float> rope_freqs;
  if (cfg.rope_scaling) {
    rope_freqs = llama3_rope_freqs(cfg);
    GgufPlanEntry e;
    e.tensor = {"rope_freqs.weight", {uint64_t(rope_freqs.size())}, GgmlType::f32};
    plan.push_back(e);
  }
  if (fell_back) log::info("q8_0: tensors whose rows are not a multiple of 32 wide are written as f16");
  if (o.dry_run) {
    DryRunTable t;
    for (const auto& e : plan)
      t.add(e.tensor.name, std::vector<int64_t>(e.tensor.ne.begin(), e.tensor.ne.end()), ggml_type_name(e.tensor.type),
            gguf_tensor_bytes(e.tensor));
    t.print("gguf export of " + src.ckpt + " (" + dtype + "; shapes in ggml order, fastest dimension first)", 0);
    return {};
  }

  io::SafeOutput out(o.output, io::SafeOutput::Kind::file, o.overwrite);
  std::vector<GgufWriter::Tensor> decl;
  for (const auto& e : plan) decl.push_back(e.tensor);
  GgufWriter w(out.temp_path(), md, decl);
  ConvertSummary sum;
  std::vector<float> buf(src.largest), permuted;
  uint64_t tensor_bytes = 0;
  for (const auto& e : plan) tensor_bytes += gguf_tensor_bytes(e.tensor);
  log::Progress progress("ckpt-convert", tensor_bytes, "B");
  for (const auto& e : plan) {
    if (!e.spec) {
      w.write_f32(rope_freqs.data());
      continue;
    }
    const nn::ParamSpec& p = *e.spec;
    src.reader->read("params/" + p.name, p, buf.data());
    if (lora) lora->apply(p, buf.data());  // in HF's row order, before llama.cpp's q/k permutation
    sum.bytes_read += p.numel * 4;
    if (const int64_t heads = qk_heads(cfg, p.name)) {
      permuted.resize(p.numel);
      permute_rows_to_gguf(buf.data(), permuted.data(), heads, p.shape[0], p.shape[1]);
      w.write_f32(permuted.data());
    } else {
      w.write_f32(buf.data());
    }
    sum.tensors++;
    progress.add(gguf_tensor_bytes(e.tensor));
  }
  progress.finish();
  w.close();
  sum.bytes_written = w.file_size();
  out.commit();
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  log_done("gguf export to " + o.output + (lora ? lora->note() : std::string()), sum);
  return sum;
}

// --- import -----------------------------------------------------------------------------------

namespace {

// The run directory an import writes: checkpoints/step-00000000 (weights only), checkpoints/latest,
// tokenizer/ with bellows_tokenizer.json, report.json. Everything goes into the SafeOutput's
// temporary directory and appears at once.
class ImportedRun {
 public:
  // tokenizer_file: "tokenizer.json" or "tokenizer.model" (SentencePiece), with its bytes.
  ImportedRun(const ConvertOptions& o, const nn::LlamaConfig& cfg, const std::string& tokenizer_file,
              const std::string& tokenizer_content, const json& tokenizer_config, const std::string& source)
      : out_(o.output, io::SafeOutput::Kind::directory, o.overwrite), cfg_(cfg), source_(source), options_(o.effective_options) {
    const fs::path dir = out_.temp_path();
    fs::create_directories(dir / "tokenizer");
    write_text(dir / "tokenizer" / tokenizer_file, tokenizer_content);
    if (tokenizer_config.is_object()) write_text(dir / "tokenizer" / "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
    // Loading it is the check that our tokenizer takes what was imported.
    tok::Tokenizer t;
    try {
      t = tok::Tokenizer::load((dir / "tokenizer" / tokenizer_file).string());
    } catch (const UsageError& e) {
      throw RuntimeError(source + ": its tokenizer cannot be used: " + std::string(e.what()));
    }
    if (int64_t(t.vocab_size()) > cfg.vocab_size)
      throw RuntimeError(source + ": the tokenizer has " + std::to_string(t.vocab_size()) +
                         " tokens, more than the model's vocab_size " + std::to_string(cfg.vocab_size));
    tokenizer_sha256_ = t.sha256();
    write_text(dir / "tokenizer" / "bellows_tokenizer.json",
               json{{"file", tokenizer_file}, {"sha256", tokenizer_sha256_}, {"imported_from", source}}.dump(2) + "\n");
    step_dir_ = dir / "checkpoints" / train::checkpoint_dir_name(0);
    fs::create_directories(step_dir_);
    writer_ = std::make_unique<train::CheckpointFileWriter>((step_dir_ / "model.h5").string(), cfg, tokenizer_sha256_, 0,
                                                            json(), "ckpt-convert", options_);
  }
  void write(const nn::ParamSpec& p, const float* data) { writer_->write("params/" + p.name, p, data); }
  void commit(ConvertSummary& sum, const std::string& kind) {
    writer_->close();
    const fs::path dir = out_.temp_path();
    write_text(step_dir_ / "config.json", cfg_.to_hf_json().dump(2) + "\n");
    write_text(dir / "checkpoints" / "latest", train::checkpoint_dir_name(0) + "\n");
    std::error_code ec;
    sum.bytes_written = fs::file_size(step_dir_ / "model.h5", ec);
    write_text(dir / "report.json", json{{"tool", "ckpt-convert"},
                                         {"from", source_},
                                         {"from_kind", kind},
                                         {"to", "bellows"},
                                         {"tokenizer_sha256", tokenizer_sha256_},
                                         {"options", options_},
                                         {"summary", summary_json(sum)}}
                                            .dump(2) +
                                        "\n");
    out_.commit();
  }

 private:
  io::SafeOutput out_;
  nn::LlamaConfig cfg_;
  std::string source_;
  json options_;
  std::string tokenizer_sha256_;
  fs::path step_dir_;
  std::unique_ptr<train::CheckpointFileWriter> writer_;
};

}  // namespace

ConvertSummary import_hf(const ConvertOptions& o) {
  const auto t0 = Clock::now();
  const fs::path dir = o.from_hf;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError("--from-hf: '" + o.from_hf + "' is not a directory");
  const nn::LlamaConfig cfg = read_hf_config((dir / "config.json").string());
  HfWeights weights(dir.string());
  const auto specs = nn::param_specs(cfg);
  std::set<std::string> expected;
  size_t largest = 0;
  std::vector<std::pair<const nn::ParamSpec*, const HfWeights::Entry*>> plan;
  for (const auto& p : specs) {
    expected.insert(p.name);
    largest = std::max(largest, p.numel);
    const HfWeights::Entry* e = weights.find(p.name);
    plan.emplace_back(&p, e);
    if (!e) throw RuntimeError(o.from_hf + ": tensor '" + p.name + "' is missing (config.json implies it)");
    std::vector<int64_t> shape(e->tensor->shape.begin(), e->tensor->shape.end());
    if (shape != p.shape)
      throw RuntimeError(e->file->path() + ": tensor '" + p.name + "' has shape " + shape_str(shape) + ", config.json implies " +
                         shape_str(p.shape));
    const std::string& d = e->tensor->dtype;
    if (d != "F32" && d != "F16" && d != "BF16" && d != "F64")
      throw RuntimeError(e->file->path() + ": tensor '" + p.name + "' has dtype " + d + " (supported: F32, F16, BF16, F64)");
  }
  for (const auto& [name, e] : weights.all()) {
    if (expected.count(name)) continue;
    const bool ignorable = (name == "lm_head.weight" && cfg.tie_word_embeddings) ||
                           (name.size() > 20 && name.compare(name.size() - 20, 20, ".rotary_emb.inv_freq") == 0);
    if (!ignorable)
      throw RuntimeError(e.file->path() + ": tensor '" + name + "' is not part of a Llama model as config.json describes it");
  }
  const fs::path tj = dir / "tokenizer.json";
  if (!fs::is_regular_file(tj, ec)) {
    const bool sp = fs::exists(dir / "tokenizer.model", ec);
    throw UsageError(o.from_hf + ": has no tokenizer.json" +
                     (sp ? std::string(" (a SentencePiece tokenizer.model alone is not imported yet)") : std::string()));
  }
  if (o.dry_run) {
    DryRunTable t;
    for (const auto& p : specs) t.add(p.name, p.shape, "F32", p.numel * 4);
    t.print("import of " + o.from_hf + " into " + (o.output.empty() ? "RUNDIR" : o.output), 0);
    return {};
  }
  json tcfg;
  if (fs::is_regular_file(dir / "tokenizer_config.json", ec)) tcfg = read_json_file((dir / "tokenizer_config.json").string());
  ImportedRun run(o, cfg, "tokenizer.json", read_whole_file(tj.string()).value_or(""), tcfg, o.from_hf);
  ConvertSummary sum;
  std::vector<float> buf(largest);
  uint64_t total = 0;
  for (const auto& p : specs) total += p.numel * 4;
  log::Progress progress("ckpt-convert", total, "B");
  for (const auto& [p, e] : plan) {
    e->file->read_f32(*e->tensor, buf.data());
    sum.bytes_read += e->tensor->end - e->tensor->begin;
    run.write(*p, buf.data());
    sum.tensors++;
    progress.add(p->numel * 4);
  }
  progress.finish();
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  run.commit(sum, "hf");
  log_done("import of " + o.from_hf + " to " + o.output, sum);
  return sum;
}

ConvertSummary import_gguf(const ConvertOptions& o) {
  const auto t0 = Clock::now();
  GgufReader r(o.from_gguf);
  nn::LlamaConfig cfg = llama_config_of_gguf(r);
  if (const GgufTensorInfo* t = r.find_tensor("rope_freqs.weight")) {
    std::vector<float> f(t->numel());
    r.read_f32(*t, f.data());
    cfg.rope_scaling = rope_scaling_of_freqs(cfg, f, &r);
    if (!cfg.rope_scaling)
      throw RuntimeError(o.from_gguf + ": rope_freqs.weight is not Llama 3's frequency scaling (low 1, high 4, original context 8192)");
  }
  const auto specs = nn::param_specs(cfg);
  std::set<std::string> expected;
  size_t largest = 0;
  std::vector<std::pair<const nn::ParamSpec*, const GgufTensorInfo*>> plan;
  for (const auto& p : specs) {
    const std::string g = gguf_name_of_hf(p.name);
    expected.insert(g);
    largest = std::max(largest, p.numel);
    const GgufTensorInfo* t = r.find_tensor(g);
    if (!t) throw RuntimeError(o.from_gguf + ": tensor '" + g + "' is missing (the llama.* metadata implies it)");
    std::vector<int64_t> shape(t->ne.rbegin(), t->ne.rend());
    if (shape != p.shape)
      throw RuntimeError(o.from_gguf + ": tensor '" + g + "' has shape " + shape_str(shape) + " (reversed ne), the metadata implies " +
                         shape_str(p.shape));
    plan.emplace_back(&p, t);
  }
  for (const auto& t : r.tensors())
    if (!expected.count(t.name) && t.name != "rope_freqs.weight")
      throw RuntimeError(o.from_gguf + ": tensor '" + t.name + "' is not part of a Llama model as its metadata describes it");
  std::string tok_file, tok_content;
  json tok_config;
  if (gguf_tokenizer_model(r) == "llama") {
    SentencePieceFile sp = sentencepiece_model_from_gguf(r);
    tok_file = "tokenizer.model";
    tok_content = std::move(sp.model);
    tok_config = {{"tokenizer_class", "LlamaTokenizer"}, {"legacy", false}};
    if (!sp.bos_token.empty()) tok_config["bos_token"] = sp.bos_token;
    if (!sp.eos_token.empty()) tok_config["eos_token"] = sp.eos_token;
  } else {
    HfTokenizerFiles files = tokenizer_json_from_gguf(r);
    tok_file = "tokenizer.json";
    tok_content = files.tokenizer_json.dump() + "\n";
    tok_config = files.tokenizer_config;
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast";
  }
  if (const GgufValue* v = r.find("tokenizer.ggml.add_bos_token"); v && v->type == GgufType::boolean) tok_config["add_bos_token"] = v->b;
  tok_config["model_max_length"] = cfg.max_position_embeddings;
  if (o.dry_run) {
    DryRunTable t;
    for (const auto& [p, g] : plan) t.add(g->name + " -> " + p->name, p->shape, "F32", p->numel * 4);
    t.print("import of " + o.from_gguf + " into " + (o.output.empty() ? "RUNDIR" : o.output), 0);
    return {};
  }
  ImportedRun run(o, cfg, tok_file, tok_content, tok_config, o.from_gguf);
  ConvertSummary sum;
  std::vector<float> buf(largest), unpermuted;
  uint64_t total = 0;
  for (const auto& [p, g] : plan) total += g->nbytes;
  log::Progress progress("ckpt-convert", total, "B");
  for (const auto& [p, g] : plan) {
    r.read_f32(*g, buf.data());
    sum.bytes_read += g->nbytes;
    if (const int64_t heads = qk_heads(cfg, p->name)) {
      unpermuted.resize(p->numel);
      permute_rows_from_gguf(buf.data(), unpermuted.data(), heads, p->shape[0], p->shape[1]);
      run.write(*p, unpermuted.data());
    } else {
      run.write(*p, buf.data());
    }
    sum.tensors++;
    progress.add(g->nbytes);
  }
  progress.finish();
  sum.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  run.commit(sum, "gguf");
  log_done("import of " + o.from_gguf + " to " + o.output, sum);
  return sum;
}

// --- the tool ---------------------------------------------------------------------------------

namespace {

int run(cli::Invocation& inv) {
  ConvertOptions o;
  int sources = 0;
  if (inv.has("from")) o.from = inv.get<std::string>("from"), ++sources;
  if (inv.has("from-hf")) o.from_hf = inv.get<std::string>("from-hf"), ++sources;
  if (inv.has("from-gguf")) o.from_gguf = inv.get<std::string>("from-gguf"), ++sources;
  if (inv.has("lora")) o.lora = inv.get<std::string>("lora");
  if (inv.has("lora-from-peft")) o.lora_from_peft = inv.get<std::string>("lora-from-peft");
  if (inv.has("peft-base")) o.peft_base = inv.get<std::string>("peft-base");
  o.merge = inv.get<bool>("merge");
  if (inv.has("to")) o.to = inv.get<std::string>("to");
  if (!o.lora_from_peft.empty()) {
    // Importing an adapter: --from names the base it belongs to (its fingerprint goes into the file).
    if (o.from.empty() || sources != 1)
      throw UsageError("--lora-from-peft DIR imports an adapter of one of our checkpoints: give that base as --from CKPT "
                       "(an HF or GGUF base: import it first with --from-hf/--from-gguf)");
    if (!o.to.empty() && o.to != "lora")
      throw UsageError("--to " + o.to + ": --lora-from-peft writes our adapter file (lora_adapter), it takes no --to");
    for (const char* f : {"lora", "dtype", "tokenizer", "shard-size", "peft-base"})
      if (inv.has(f)) throw UsageError(std::string("--") + f + " does not apply to --lora-from-peft");
    if (o.merge) throw UsageError("--merge does not apply to --lora-from-peft");
    o.to = "lora";
  } else if (sources != 1) {
    throw UsageError("give exactly one of --from RUNDIR|CKPT, --from-hf DIR, --from-gguf FILE");
  }
  if (o.from.empty() && (!o.lora.empty() || o.merge))
    throw UsageError(std::string(o.lora.empty() ? "--merge" : "--lora") +
                     " applies to exports of our checkpoints (--from CKPT): import the model first, then export it with --lora");
  if (inv.has("peft-base") && o.to != "peft") throw UsageError("--peft-base applies to --to peft");
  if (o.to == "lora") {
    // checked above
  } else if (!o.from.empty()) {
    if (o.to != "hf" && o.to != "gguf" && o.to != "peft" && o.to != "gguf-lora")
      throw UsageError(o.to.empty() ? "--from needs --to hf|gguf|peft|gguf-lora"
                                    : "--to: '" + o.to + "' is not an export format (hf, gguf, peft, gguf-lora)");
    const bool adapter_only = o.to == "peft" || o.to == "gguf-lora";
    if (adapter_only && o.lora.empty()) throw UsageError("--to " + o.to + " exports a LoRA adapter: give it as --lora ADAPTER");
    if (adapter_only && o.merge)
      throw UsageError("--merge folds the adapter into a model export (--to hf|gguf); --to " + o.to + " writes the adapter alone");
    if (adapter_only && inv.has("tokenizer")) throw UsageError("--tokenizer applies to model exports (--to hf|gguf)");
    if (!adapter_only && !o.lora.empty() && !o.merge)
      throw UsageError("--lora with --to " + o.to + ": add --merge to fold the adapter into the exported weights, or export the "
                       "adapter alone with --to peft|gguf-lora");
    if (o.merge && o.lora.empty()) throw UsageError("--merge needs --lora ADAPTER (the adapter to fold in)");
  } else {
    if (!o.to.empty() && o.to != "bellows")
      throw UsageError("--to " + o.to + ": --from-hf and --from-gguf import into our checkpoint format (--to bellows, the default)");
    o.to = "bellows";
    if (inv.has("dtype")) throw UsageError("--dtype applies to exports (imports keep fp32 master weights)");
    if (inv.has("tokenizer")) throw UsageError("--tokenizer applies to exports (imports take the model's own tokenizer)");
  }
  if (inv.has("dtype")) o.dtype = inv.get<std::string>("dtype");
  if (inv.has("tokenizer")) o.tokenizer = inv.get<std::string>("tokenizer");
  if (inv.has("shard-size")) {
    if (o.to != "hf") throw UsageError("--shard-size applies to --to hf");
    o.shard_size = parse_byte_size(inv.get<std::string>("shard-size"), "--shard-size");
  }
  o.dry_run = inv.get<bool>("dry-run");
  o.overwrite = inv.get<bool>("overwrite");
  if (inv.has("output")) o.output = inv.get<std::string>("output");
  if (o.output.empty() && !o.dry_run) throw UsageError("missing required option '-o' (the output to write)");
  o.effective_options = inv.effective_options();
  if (o.to == "hf") export_hf(o);
  else if (o.to == "gguf") export_gguf(o);
  else if (o.to == "peft") export_peft(o);
  else if (o.to == "gguf-lora") export_gguf_lora(o);
  else if (o.to == "lora") import_peft_lora(o);
  else if (!o.from_hf.empty()) import_hf(o);
  else import_gguf(o);
  return kExitOk;
}

}  // namespace

cli::ToolSpec ckpt_convert_tool_spec() {
  cli::ToolSpec s;
  s.name = "ckpt-convert";
  s.summary = "convert checkpoints to and from HuggingFace safetensors and GGUF";
  s.usage =
      "ckpt-convert --from CKPT --to hf|gguf -o OUT [options]  |  ckpt-convert --from-hf DIR|--from-gguf FILE -o RUNDIR\n"
      "       ckpt-convert --from CKPT --lora ADAPTER --to peft|gguf-lora -o OUT  |  ... --lora ADAPTER --merge --to hf|gguf -o OUT\n"
      "       ckpt-convert --from CKPT --lora-from-peft DIR -o ADAPTER.h5";
  s.description =
      "Export: --from is a run directory (its newest checkpoint), a checkpoint directory or its model.h5;\n"
      "the tokenizer is the run's copy (RUNDIR/tokenizer/) unless --tokenizer names it. --to hf writes a\n"
      "directory transformers loads as LlamaForCausalLM: config.json, model.safetensors (or shards of at\n"
      "most --shard-size bytes of tensors and model.safetensors.index.json), generation_config.json,\n"
      "tokenizer.json, tokenizer_config.json and report.json. --to gguf writes one GGUF v3 file for\n"
      "llama.cpp: llama.* metadata, the tokenizer as byte-level BPE (gpt2) with llama.cpp's name for its\n"
      "pre-tokenizer, q/k rows in llama.cpp's RoPE order, and rope_freqs for Llama 3 scaling; norms stay\n"
      "f32, and with q8_0 rows not a multiple of 32 wide are written as f16.\n"
      "Import: --from-hf DIR (config.json, single or sharded safetensors in f32/f16/bf16, tokenizer.json)\n"
      "or --from-gguf FILE (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K) writes a run directory:\n"
      "checkpoints/step-00000000 with fp32 weights, checkpoints/latest, tokenizer/ and report.json, ready\n"
      "for pretrain --init-from, lm-generate --ckpt and a later export.\n"
      "LoRA adapters (lora-tune's adapter.h5, its checkpoint or run directory) go with the base --from that\n"
      "they were trained on; one made for another base (shape or weights fingerprint) is refused. --to peft\n"
      "writes an HF PEFT directory (adapter_config.json, adapter_model.safetensors) that peft loads onto the\n"
      "--to hf export; --to gguf-lora a GGUF LoRA adapter for llama.cpp (--lora / lora_path) on the --to gguf\n"
      "export (rsLoRA's alpha/sqrt(r) is written as alpha*sqrt(r), since llama.cpp divides by r); --merge\n"
      "with --to hf|gguf exports the model with W + scaling B A folded in. --lora-from-peft DIR reads a PEFT\n"
      "LoRA directory (safetensors; LoRA on q/k/v/o/gate/up/down_proj of every layer, no DoRA, no biases)\n"
      "into our adapter file for the base --from.\n"
      "Tensors are converted one at a time: memory stays near the size of the largest tensor. Outputs\n"
      "appear under their final name only when complete. --dry-run lists tensors, shapes, dtypes and the\n"
      "output size and writes nothing.";
  namespace po = cli::po;
  po::options_description g("Conversion");
  g.add_options()
      ("from", po::value<std::string>()->value_name("CKPT"), "our checkpoint to export: run directory, checkpoint directory or model.h5")
      ("from-hf", po::value<std::string>()->value_name("DIR"), "import a HuggingFace Llama directory")
      ("from-gguf", po::value<std::string>()->value_name("FILE"), "import a GGUF Llama model")
      ("to", po::value<std::string>()->value_name("FMT"), "export format: hf | gguf | peft | gguf-lora (imports write our format)")
      ("dtype", po::value<std::string>()->value_name("T"), "export tensor type: f32 (default), f16, bf16; gguf also q8_0")
      ("lora", po::value<std::string>()->value_name("ADAPTER"), "a LoRA adapter of --from: adapter.h5, its checkpoint or run directory")
      ("merge", po::bool_switch(), "with --lora and --to hf|gguf: fold the adapter into the exported weights")
      ("peft-base", po::value<std::string>()->value_name("NAME"), "--to peft: base_model_name_or_path to record (default empty)")
      ("lora-from-peft", po::value<std::string>()->value_name("DIR"), "import a PEFT LoRA directory as an adapter of --from")
      ("shard-size", po::value<std::string>()->value_name("SIZE"), "hf: tensor bytes per safetensors shard (default 5GB)")
      ("tokenizer", po::value<std::string>()->value_name("PATH"), "export: the model's tokenizer (default: RUNDIR/tokenizer/)")
      ("dry-run", po::bool_switch(), "list what would be written and write nothing");
  s.groups.push_back(g);
  s.writes_output = true;
  s.output_required = false;
  s.examples = {"ckpt-convert --from runs/small --to hf -o export/small-hf --dtype bf16",
                "ckpt-convert --from runs/small --to gguf -o small-q8_0.gguf --dtype q8_0",
                "ckpt-convert --from-hf Llama-3.2-1B/ -o runs/llama-1b",
                "ckpt-convert --from-gguf model.gguf -o runs/imported",
                "ckpt-convert --from runs/small --to hf --dry-run",
                "ckpt-convert --from runs/small --lora runs/small-sft --to peft -o export/small-sft-peft",
                "ckpt-convert --from runs/small --lora runs/small-sft --to gguf-lora -o small-sft-lora.gguf",
                "ckpt-convert --from runs/small --lora runs/small-sft --merge --to gguf --dtype q8_0 -o small-sft.gguf",
                "ckpt-convert --from runs/small --lora-from-peft peft-adapter/ -o small-adapter.h5"};
  s.run = run;
  return s;
}

}  // namespace bellows::formats
