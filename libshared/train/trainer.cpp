#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "core/signals.hpp"
#include "log/log.hpp"
#include "log/metrics.hpp"
#include "log/progress.hpp"
#include "dist/context.hpp"
#include "formats/convert.hpp"
#include "formats/hf_dir.hpp"
#include "cuda/backend_cuda.hpp"
#include "cuda/nccl_comm.hpp"
#include "nn/backend.hpp"
#include "nn/device.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "nn/rng.hpp"
#include "train/adapter.hpp"
#include "train/checkpoint.hpp"
#include "train/dpo.hpp"
#include "train/preference_data.hpp"
#include "train/evaluate.hpp"
#include "train/parallel.hpp"
#include "train/planner.hpp"
#include "train/run_tokenizer.hpp"
#include "train/token_data.hpp"

namespace bellows::train {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double lr_at(uint64_t step, uint64_t total, uint64_t warmup, double lr, double min_lr) {
  if (step < warmup) return lr * double(step + 1) / double(warmup);
  if (total <= warmup) return lr;
  const double progress = std::min(1.0, double(step - warmup) / double(total - warmup));
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Options {
  std::string data, valid_data, model, run_dir, init_from, resume, backend, tokenizer, device, matmul_precision;
  int seq_len = 0, micro = 0, global = 0, threads = 0;
  uint64_t steps = 0, warmup = 0, seed = 1, save_every = 0, eval_every = 0, eval_batches = 0, log_every = 1;
  unsigned keep = 3;
  double lr = 0, min_lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, wd = 0.1, clip = 1.0;
  nn::Recompute recompute = nn::Recompute::none;
  bool doc_masking = true, skip_nonfinite = false, dry_run = false;
  bool on_cuda = false;  // --device resolved
  ParallelOptions par;
  // lora-tune
  TrainMode mode = TrainMode::pretrain;
  std::string base, base_hf, base_gguf;  // exactly one in SFT mode
  std::optional<nn::LoraConfig> lora;    // SFT with adapters; none: full SFT (--full)
  std::string tool;
  // dpo-align
  std::string start_adapter;  // --lora: the adapter the policy starts from (and the reference keeps)
  DpoSettings dpo;
  bool precompute_ref = false;
};

const char* tool_name(TrainMode m) {
  switch (m) {
    case TrainMode::pretrain: return "pretrain";
    case TrainMode::sft: return "lora-tune";
    case TrainMode::dpo: return "dpo-align";
  }
  return "?";
}

// A new adapter's settings: --rank, --alpha, --dropout, --rslora, --targets.
nn::LoraConfig lora_from_flags(const cli::Invocation& inv) {
  nn::LoraConfig l;
  l.rank = int(inv.get<int64_t>("rank"));
  l.alpha = inv.get<double>("alpha");
  l.dropout = inv.get<double>("dropout");
  l.rslora = inv.get<bool>("rslora");
  l.targets = nn::parse_lora_targets(inv.get<std::string>("targets"));
  return l;
}

Options read_options(const cli::Invocation& inv, TrainMode mode) {
  Options o;
  o.mode = mode;
  o.tool = tool_name(mode);
  o.data = inv.has("data") ? inv.get<std::string>("data") : "";
  o.valid_data = inv.has("valid-data") ? inv.get<std::string>("valid-data") : "";
  o.run_dir = inv.has("output") ? inv.get<std::string>("output") : "";
  if (mode == TrainMode::pretrain) {
    o.model = inv.get<std::string>("model");
    o.init_from = inv.has("init-from") ? inv.get<std::string>("init-from") : "";
  } else if (mode == TrainMode::dpo) {
    // The policy: a checkpoint's weights, trained whole, or with adapters (a new one, or one from
    // lora-tune to continue); the LoRA settings come from --new-lora's flags or the adapter.
    if (!inv.has("policy")) throw UsageError("--policy CKPT is required (the model to align: a checkpoint or run directory)");
    o.base = resolve_checkpoint(inv.get<std::string>("policy"));
    o.model = inv.get<std::string>("policy");
    const bool fresh = inv.get<bool>("new-lora");
    if (fresh && inv.has("lora")) throw UsageError("give --lora ADAPTER (continue an adapter) or --new-lora, not both");
    if (!fresh)
      for (const char* k : {"rank", "alpha", "targets"})
        if (!inv.vm[k].defaulted())
          throw UsageError(std::string("--") + k + " sets up a new adapter: it goes with --new-lora" +
                           (inv.has("lora") ? " (--lora's adapter has its own)" : ""));
    if (!fresh && inv.get<bool>("rslora")) throw UsageError("--rslora sets up a new adapter: it goes with --new-lora");
    if (fresh) {
      o.lora = lora_from_flags(inv);
    } else if (inv.has("lora")) {
      // A resumed run compares with its own copy of the starting adapter (RUNDIR/reference/):
      // the original may have moved on since.
      const fs::path kept = fs::path(o.run_dir) / "reference" / "adapter.h5";
      if (!o.run_dir.empty() && inv.get<std::string>("resume") == "auto" && fs::is_regular_file(kept))
        o.start_adapter = kept.string();
      else
        o.start_adapter = resolve_adapter(inv.get<std::string>("lora"));
      o.lora = read_adapter_file(o.start_adapter, false).lora;
    }
    // The adapter's dropout is this run's (lora-tune's 0.05 would make the policy differ from
    // the reference before any update): 0 unless --dropout says otherwise, as TRL's DPO.
    if (o.lora) o.lora->dropout = inv.get<double>("dropout");
    o.dpo.loss = parse_dpo_loss(inv.get<std::string>("loss"));
    o.dpo.beta = inv.get<double>("beta");
    o.dpo.label_smoothing = inv.get<double>("label-smoothing");
    o.dpo.sft_weight = inv.get<double>("sft-weight");
    if (!(o.dpo.sft_weight >= 0)) throw UsageError("--sft-weight must be >= 0 (got " + std::to_string(o.dpo.sft_weight) + ")");
    dpo_pair(o.dpo.loss, o.dpo.beta, o.dpo.label_smoothing, 0, 0, 0, 0);  // refuses beta <= 0 and bad smoothing now
    o.precompute_ref = inv.get<bool>("precompute-ref");
  } else {
    int given = 0;
    for (const char* k : {"base", "base-hf", "base-gguf"}) given += inv.has(k) ? 1 : 0;
    if (given != 1) throw UsageError("give the model to tune with exactly one of --base CKPT, --base-hf DIR, --base-gguf FILE");
    o.base = inv.has("base") ? resolve_checkpoint(inv.get<std::string>("base")) : "";
    o.base_hf = inv.has("base-hf") ? inv.get<std::string>("base-hf") : "";
    o.base_gguf = inv.has("base-gguf") ? inv.get<std::string>("base-gguf") : "";
    o.model = inv.has("base") ? inv.get<std::string>("base") : (inv.has("base-hf") ? o.base_hf : o.base_gguf);
    if (!inv.get<bool>("full")) {
      o.lora = lora_from_flags(inv);
    } else {
      for (const char* k : {"rank", "alpha", "dropout", "targets"})
        if (!inv.vm[k].defaulted()) throw UsageError(std::string("--") + k + " is a LoRA setting: it does not go with --full");
      if (inv.get<bool>("rslora")) throw UsageError("--rslora is a LoRA setting: it does not go with --full");
    }
    if (inv.has("lora-rank") || inv.has("lora-targets"))
      throw UsageError("lora-tune plans its own adapters: give --rank/--targets (not --lora-rank/--lora-targets) with --dry-run");
  }
  o.resume = inv.get<std::string>("resume");
  o.backend = inv.get<std::string>("backend");
  o.device = inv.get<std::string>("device");
  o.matmul_precision = inv.has("matmul-precision") ? inv.get<std::string>("matmul-precision") : "";
  o.on_cuda = nn::resolve_device({o.device, o.backend, 0, o.matmul_precision, 0}) == "cuda";
  o.tokenizer = inv.has("tokenizer") ? inv.get<std::string>("tokenizer") : "";
  auto positive = [&](const char* k) {
    int64_t v = inv.get<int64_t>(k);
    if (v <= 0) throw UsageError(std::string("--") + k + " must be positive (got " + std::to_string(v) + ")");
    return v;
  };
  o.seq_len = int(positive("seq-len"));
  o.micro = int(positive("micro-batch"));
  o.global = int(inv.has("global-batch") ? positive("global-batch") : o.micro);
  if (o.global % o.micro != 0)
    throw UsageError("--global-batch " + std::to_string(o.global) + " is not a multiple of --micro-batch " + std::to_string(o.micro));
  o.steps = uint64_t(positive("steps"));
  o.threads = int(inv.get<int64_t>("threads"));
  o.warmup = inv.get<uint64_t>("warmup-steps");
  o.seed = inv.get<uint64_t>("seed");
  o.save_every = inv.get<uint64_t>("save-every");
  o.eval_every = inv.get<uint64_t>("eval-every");
  o.eval_batches = inv.get<uint64_t>("eval-batches");
  o.log_every = std::max<uint64_t>(1, inv.get<uint64_t>("log-every"));
  o.keep = inv.get<unsigned>("keep-checkpoints");
  o.lr = inv.has("lr") ? inv.get<double>("lr") : (o.lora ? 5e-5 : 1e-6);
  o.min_lr = inv.has("min-lr") ? inv.get<double>("min-lr") : o.lr / 10;
  o.beta1 = inv.get<double>("beta1");
  o.beta2 = inv.get<double>("beta2");
  o.eps = inv.get<double>("adam-eps");
  o.wd = inv.get<double>("weight-decay");
  o.clip = inv.get<double>("grad-clip");
  if (!(o.lr > 0) || o.min_lr < 0 || o.min_lr > o.lr) throw UsageError("--lr must be positive and --min-lr in [0, lr]");
  o.recompute = nn::parse_recompute(inv.get<std::string>("recompute"));
  const std::string dm = inv.get<std::string>("doc-masking");
  if (dm != "on" && dm != "off") throw UsageError("--doc-masking: '" + dm + "' is not on or off");
  o.doc_masking = dm == "on";
  o.skip_nonfinite = inv.get<bool>("skip-nonfinite");
  o.dry_run = inv.has("dry-run") && inv.get<bool>("dry-run");
  if (!o.dry_run && mode != TrainMode::dpo)
    if (const std::string f = planner_flag_given(inv); !f.empty())
      throw UsageError(f + " describes a planned job: it only applies with --dry-run");
  o.par.tp = int(positive("tp"));
  o.par.pp = int(positive("pp"));
  o.par.dp = inv.has("dp") ? int(positive("dp")) : 0;
  o.par.zero = int(inv.get<int64_t>("zero"));
  if (o.par.zero != 0 && o.par.zero != 1) throw UsageError("--zero must be 0 or 1 (got " + std::to_string(o.par.zero) + ")");
  o.par.allow_cross_node_tp = inv.get<bool>("allow-cross-node-tp");
  if (inv.has("pp-layers")) {
    std::istringstream list(inv.get<std::string>("pp-layers"));
    for (std::string item; std::getline(list, item, ',');) {
      try {
        size_t used = 0;
        o.par.stage_layers.push_back(std::stoi(item, &used));
        if (used != item.size()) throw std::invalid_argument(item);
      } catch (const std::exception&) {
        throw UsageError("--pp-layers: '" + item + "' is not a number (expected e.g. 3,3,2)");
      }
    }
  }
  if (o.resume != "auto" && o.resume != "none") throw UsageError("--resume: '" + o.resume + "' is not auto or none");
  if (!o.dry_run && o.data.empty())
    throw UsageError(std::string("--data DIR is required (token shards from tokenize-pack --mode ") +
                     (mode == TrainMode::pretrain ? "pretrain" : mode == TrainMode::sft ? "sft" : "preference") + ")");
  if (!o.dry_run && o.run_dir.empty()) throw UsageError("-o RUNDIR is required");
  return o;
}

std::string gib(double bytes) {
  std::ostringstream s;
  s.precision(3);
  s << bytes / double(1ull << 30) << " GiB";
  return s.str();
}

int dry_run(const Options& o, const nn::LlamaConfig& cfg, const cli::Invocation& inv) {
  if (o.mode == TrainMode::pretrain) return run_dry_run(inv, cfg, o.model);
  // lora-tune: the same plan, with this run's adapters (or full training for --full).
  PlanRequest req = plan_request_from(inv, cfg, o.model);
  req.lora_rank = o.lora ? o.lora->rank : 0;
  req.lora_targets.clear();
  if (o.lora)
    for (auto t : o.lora->targets) req.lora_targets.push_back(nn::to_string(t));
  const Plan p = make_plan(req);
  std::cout << format_plan(p) << "plan: " << plan_json(p).dump() << "\n";
  return kExitOk;
}

// Adapter tensors of this shard from the whole ones (AdapterData order), restricted to the flat
// range [lo, hi) of the shard's buffer: what a rank loads when it resumes an adapter.
void slice_adapter(const nn::LlamaConfig& cfg, const nn::LoraConfig& lora, const std::vector<float>& whole,
                   const std::vector<nn::ParamSpec>& local, size_t lo, size_t hi, float* out) {
  std::map<std::string, const nn::ParamSpec*> by_name;
  const auto whole_specs = nn::lora_param_specs(cfg, lora);
  for (const auto& p : whole_specs) by_name[p.name] = &p;
  for (const auto& p : local) {
    const size_t at = by_name.at(p.name)->offset;
    for (size_t i = std::max(p.offset, lo); i < std::min(p.offset + p.numel, hi); ++i)
      out[i - lo] = whole[at + nn::logical_index(p, i - p.offset)];
  }
}

// The whole adapter tensors (AdapterData order) on rank 0, from every rank's slices of the flat
// range [lo, hi): each logical element comes from the one rank that writes it (tp rank 0 for
// factors whole on every TP rank; dp rank 0, or every ZeRO range). Collective. Adapters are small.
std::vector<float> gather_adapter(dist::Communicator& world, const nn::LlamaConfig& cfg, const nn::LoraConfig& lora,
                                  const std::vector<nn::ParamSpec>& local, const float* values, size_t lo, size_t hi,
                                  bool writes, int tp_rank) {
  const auto whole_specs = nn::lora_param_specs(cfg, lora);
  std::map<std::string, const nn::ParamSpec*> by_name;
  for (const auto& p : whole_specs) by_name[p.name] = &p;
  std::string mine;  // (whole index, value) pairs
  if (writes)
    for (const auto& p : local) {
      if (p.tp_replicated && tp_rank != 0) continue;
      const size_t base = by_name.at(p.name)->offset;
      for (size_t i = std::max(p.offset, lo); i < std::min(p.offset + p.numel, hi); ++i) {
        const uint64_t at = base + nn::logical_index(p, i - p.offset);
        const float v = values[i - lo];
        mine.append(reinterpret_cast<const char*>(&at), sizeof at);
        mine.append(reinterpret_cast<const char*>(&v), sizeof v);
      }
    }
  const auto all = world.gather(mine, 0);
  std::vector<float> whole;
  if (world.rank() != 0) return whole;
  const size_t n = whole_specs.back().offset + whole_specs.back().numel;
  whole.assign(n, std::numeric_limits<float>::quiet_NaN());
  size_t filled = 0;
  for (const auto& part : all)
    for (size_t k = 0; k + sizeof(uint64_t) + sizeof(float) <= part.size(); k += sizeof(uint64_t) + sizeof(float)) {
      uint64_t at;
      float v;
      std::memcpy(&at, part.data() + k, sizeof at);
      std::memcpy(&v, part.data() + k + sizeof at, sizeof v);
      whole[at] = v;
      ++filled;
    }
  BELLOWS_CHECK(filled == n, "adapter gather: " + std::to_string(filled) + " of " + std::to_string(n) + " elements");
  return whole;
}

// The checkpoint a run starts from and why.
struct StartPoint {
  std::vector<std::string> candidates;  // --resume auto: the run's checkpoints, newest first
  std::string init_from;                // --init-from: a checkpoint's weights only
};

// --base-hf/--base-gguf: the base imported once into RUNDIR/base/ (a run directory like any
// import's; reused when it is there), so that every rank reads it like a checkpoint.
std::string import_base(const Options& o, dist::Communicator& world) {
  const std::string dir = (fs::path(o.run_dir) / "base").string();
  std::string problem;
  if (world.rank() == 0 && !fs::is_regular_file(fs::path(dir) / "checkpoints" / "latest")) {
    try {
      formats::ConvertOptions c;
      c.from_hf = o.base_hf;
      c.from_gguf = o.base_gguf;
      c.to = "bellows";
      c.output = dir;
      c.overwrite = true;
      fs::create_directories(o.run_dir);
      log::info("importing the base " + (o.base_hf.empty() ? o.base_gguf : o.base_hf) + " into " + dir);
      if (!o.base_hf.empty())
        formats::import_hf(c);
      else
        formats::import_gguf(c);
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  problem = world.broadcast_string(problem, 0);
  if (!problem.empty()) throw RuntimeError(problem);
  return resolve_checkpoint(dir);
}

int run(cli::Invocation& inv, TrainMode mode) {
  Options o = read_options(inv, mode);
  dist::Context& ctx = dist::Context::get();
  dist::Communicator& world = ctx.world();
  const bool root = world.rank() == 0;
  const bool dpo = o.mode == TrainMode::dpo;
  std::unique_ptr<TokenData> data;
  std::unique_ptr<PreferenceData> pref;  // dpo-align's pairs instead
  if (!o.data.empty() && dpo) {
    pref = std::make_unique<PreferenceData>(o.data);
    if (const uint64_t cut = pref->truncated_pairs(o.seq_len); cut > 0 && root)
      log::warn(o.data + ": " + std::to_string(cut) + " of " + std::to_string(pref->num_pairs()) +
                " pairs are longer than --seq-len + 1 (" + std::to_string(o.seq_len + 1) + " tokens; the longest has " +
                std::to_string(pref->longest()) + "): their prompts lose their start, then their responses their end");
  } else if (!o.data.empty()) {
    data = std::make_unique<TokenData>(o.data, "train", o.mode == TrainMode::sft ? TokenKind::sft : TokenKind::pretrain);
    if (uint64_t(o.seq_len) > data->seq_len())
      throw UsageError("--seq-len " + std::to_string(o.seq_len) + " is longer than the shards' samples (" +
                       std::to_string(data->seq_len()) + " tokens) in " + o.data);
  }
  const int64_t data_vocab = data ? int64_t(data->vocab_size()) : pref ? int64_t(pref->vocab_size()) : 0;
  const std::string data_sha = data ? data->tokenizer_sha256() : pref ? pref->tokenizer_sha256() : "";

  // Where the run starts from: its own newest checkpoint, another checkpoint's weights, or init.
  // The shape comes from the checkpoint; its tensors are read once the model is cut for this rank.
  StartPoint start;
  nn::LlamaConfig cfg;
  std::string start_sha;
  std::string start_fingerprint;  // dpo-align --lora: the policy's, computed once
  bool from_checkpoint = false;
  const std::vector<std::string> existing = o.dry_run ? std::vector<std::string>{} : list_checkpoints(o.run_dir);
  if (o.mode != TrainMode::pretrain) {
    // The base fixes the shape and the tokenizer; the run's own checkpoints are adapters (LoRA)
    // or whole models (--full) of that shape.
    if (o.base.empty()) {
      if (o.dry_run && !o.base_hf.empty()) {
        cfg = formats::read_hf_config((fs::path(o.base_hf) / "config.json").string());
        return dry_run(o, cfg, inv);
      }
      if (o.dry_run) throw UsageError("--dry-run needs the base's shape: give --base CKPT or --base-hf DIR");
      o.base = import_base(o, world);
    }
    CheckpointReader br(o.base);
    cfg = br.config();
    start_sha = br.tokenizer_sha256();
    from_checkpoint = true;
    if (o.lora) nn::check_lora(cfg, *o.lora);
    if (!o.start_adapter.empty()) {
      // dpo-align --lora: an adapter of another base is refused here, before anything is written
      // (not skipped with a warning later, as a damaged checkpoint would be).
      if (root) start_fingerprint = base_fingerprint(br);
      start_fingerprint = world.broadcast_string(start_fingerprint, 0);
      check_adapter_matches(read_adapter_file(o.start_adapter, false), o.start_adapter, cfg, start_fingerprint, o.base);
    }
  }
  if (o.resume == "auto") {
    for (const auto& dir : existing) {
      try {
        nn::LlamaConfig c;
        if (o.lora) {
          const AdapterData a = read_adapter_file((fs::path(dir) / "adapter.h5").string(), false);
          c = a.base_config;
        } else {
          CheckpointReader r(dir);
          c = r.config();
          if (!from_checkpoint) start_sha = r.tokenizer_sha256();
        }
        if (!from_checkpoint) {
          cfg = c;
          from_checkpoint = true;
        }
        if (c.to_hf_json() == cfg.to_hf_json())
          start.candidates.push_back(dir);
        else
          log::warn("skipping checkpoint " + dir + ": a model of another shape than " + o.model);
      } catch (const std::exception& e) {
        log::warn("skipping checkpoint " + dir + ": " + e.what());
      }
    }
  } else if (!existing.empty()) {
    throw UsageError("-o " + o.run_dir + " already holds checkpoints (newest " + existing.front() +
                     "): pass --resume auto to continue that run, or choose another directory");
  }
  if (o.mode != TrainMode::pretrain && !o.lora) start.init_from = o.base;  // --full: the base's weights, a fresh optimizer
  if (!o.start_adapter.empty()) start.init_from = o.start_adapter;       // dpo-align --lora: its factors, a fresh optimizer
  if (!from_checkpoint && !o.init_from.empty()) {
    start.init_from = resolve_checkpoint(o.init_from);
    CheckpointReader r(start.init_from);
    cfg = r.config();
    start_sha = r.tokenizer_sha256();
    from_checkpoint = true;
    if (inv.has("model") && o.model != o.init_from && root)
      log::info("--init-from: the model's shape comes from " + o.init_from + "; --model is not used");
  }
  if (!from_checkpoint) cfg = nn::load_model_config(o.model, data_vocab);
  if (data && cfg.vocab_size < data_vocab)
    throw UsageError("the model's vocabulary (" + std::to_string(cfg.vocab_size) + ") is smaller than the data's (" +
                     std::to_string(data_vocab) + ")");
  if (o.dry_run) return dry_run(o, cfg, inv);
  if (from_checkpoint && start_sha != data_sha)
    throw UsageError(o.data + ": the shards were made with tokenizer " + data_sha.substr(0, 12) +
                     " but the model was trained with " + start_sha.substr(0, 12) + " (" +
                     (!start.candidates.empty() ? start.candidates.front() : !o.base.empty() ? o.base : o.init_from) +
                     "): tokenize the data with the model's tokenizer");
  if (o.seq_len > cfg.max_position_embeddings)
    throw UsageError("--seq-len " + std::to_string(o.seq_len) + " exceeds the model's max_position_embeddings (" +
                     std::to_string(cfg.max_position_embeddings) + ")");
  std::unique_ptr<TokenData> valid;
  std::unique_ptr<PreferenceData> valid_pref;
  if (dpo) {
    if (!o.valid_data.empty()) {
      valid_pref = std::make_unique<PreferenceData>(o.valid_data);
      if (valid_pref->tokenizer_sha256() != data_sha)
        throw UsageError(valid_pref->files().front() + ": validation pairs come from another tokenizer than " + o.data + "'s");
    }
  } else if (!o.valid_data.empty()) {
    // SFT shards have no validation split: a --valid-data directory of them is read whole.
    valid = std::make_unique<TokenData>(o.valid_data, data->kind() == TokenKind::sft ? "train" : "valid", data->kind());
  } else if (fs::is_directory(o.data)) {
    try {
      valid = std::make_unique<TokenData>(o.data, "valid", data->kind());
    } catch (const UsageError&) {
    }  // no validation split: fine
  }
  if (valid && valid->tokenizer_sha256() != data_sha)
    throw UsageError(valid->files().front() + ": validation shards come from another tokenizer than " + o.data + "'s");
  if (valid && uint64_t(o.seq_len) > valid->seq_len())
    throw UsageError("--seq-len " + std::to_string(o.seq_len) + " is longer than the validation shards' samples");

  // The grid, this rank's groups and its part of the model.
  const std::vector<std::string> nodes = world.allgather(ctx.placement().node);
  // One rank per GPU (local rank mod visible GPUs), chosen before NCCL starts: NCCL binds each
  // rank to the device current at its initialisation. On CUDA the tensor groups run over NCCL
  // (bootstrapped through MPI, which keeps carrying everything that lives on the host).
  const nn::DeviceOptions dev{o.device, o.backend, o.threads, o.matmul_precision, ctx.placement().local_rank};
  std::unique_ptr<dist::Communicator> nccl_world;
  if (o.on_cuda) {
    const int gpu = nn::cuda_device_of(dev);
    const std::vector<std::string> gpus = world.allgather(ctx.placement().node + " " + std::to_string(gpu));
    for (size_t a = 0; a < gpus.size(); ++a)
      for (size_t b = a + 1; b < gpus.size(); ++b)
        if (gpus[a] == gpus[b])
          throw UsageError("ranks " + std::to_string(a) + " and " + std::to_string(b) + " would share GPU " +
                           gpus[a].substr(gpus[a].rfind(' ') + 1) + " of " + nodes[a] + " (" +
                           std::to_string(cuda::device_count()) + " visible): start one rank per GPU " +
                           "(srun --gpus-per-task 1, or mpirun -np <GPUs per node> per node)");
    cuda::use_device(gpu);
    if (world.size() > 1) nccl_world = cuda::make_nccl_communicator(world.split(0, world.rank()));
  }
  ParallelState ps(nccl_world ? *nccl_world : world, nodes, o.par, cfg);
  const int dp = ps.grid().dp();
  if (o.global % (o.micro * dp) != 0)
    throw UsageError("--global-batch " + std::to_string(o.global) + " must be a multiple of --micro-batch x data-parallel size (" +
                     std::to_string(o.micro) + " x " + std::to_string(dp) + ")");
  const int M = o.global / (o.micro * dp);  // micro-batches per replica per step
  if (world.size() > 1) {
    std::istringstream lines(ps.describe());
    for (std::string line; std::getline(lines, line);) log::info(line);
  }

  if (root) {
    fs::create_directories(o.run_dir);
    copy_tokenizer_into_run(o.run_dir, o.data, o.tokenizer, data_sha);
    std::ofstream(o.run_dir + "/config.json") << cfg.to_hf_json().dump(2) << "\n";
    // Each start's own log (rank 0's lines) in RUNDIR/logs/: under SLURM named by the job and
    // its restart count, so the starts of a requeued job stay apart; else by the start time.
    const dist::LaunchInfo& li = ctx.launch();
    std::string stamp = log::utc_timestamp();
    std::erase(stamp, ':');
    const std::string name = o.tool + (li.slurm_job_id.empty() ? "-" + stamp
                                                               : "-job" + li.slurm_job_id + "-restart" +
                                                                     std::to_string(li.restart_count)) + ".log";
    fs::create_directories(fs::path(o.run_dir) / "logs");
    log::copy_to_file((fs::path(o.run_dir) / "logs" / name).string());
    log::info("this start's log: " + (fs::path(o.run_dir) / "logs" / name).string());
  }
  world.barrier();

  std::string where;
  auto be = nn::make_device_backend(dev, &where);
  // The matmul peak for MFU, on a backend of its own that is gone before the model takes the
  // device's memory (on a GPU its buffers are a gigabyte).
  double peak = 0;
  if (root) peak = nn::measure_matmul_peak_gflops(*nn::make_device_backend(dev));
  world.broadcast(&peak, sizeof peak, 0);
  nn::ModelParallel mp;
  mp.shard = ps.shard();
  mp.tp = ps.grid().tp() > 1 ? &ps.tp() : nullptr;
  mp.slots = ps.slots(M);
  const int rows = dpo ? 2 * o.micro : o.micro;  // dpo-align: a chosen and a rejected row per pair
  nn::LlamaModel model(cfg, *be, rows, o.seq_len, o.recompute, mp, o.lora ? &*o.lora : nullptr);
  // What trains: the whole model (pretrain, --full) or the adapters (LoRA; the base is frozen).
  const size_t P = model.num_trainable();
  const auto specs = model.trainable_specs();
  DistributedOptimizer opt(*be, specs, P, ps);
  const size_t lo = opt.owned_begin(), hi = opt.owned_end();
  std::string fingerprint;
  if (o.lora) {
    // The base's weights, frozen, on every rank (its slices), and its fingerprint, which every
    // adapter of this run records and a resumed one must match.
    std::vector<float> base(model.num_params());
    load_rank_slices(CheckpointReader(o.base), model.params(), base.data(), nullptr, nullptr, 0, 0);
    be->upload(model.param_data(), base.data(), base.size());
    if (root) fingerprint = !start_fingerprint.empty() ? start_fingerprint : base_fingerprint(CheckpointReader(o.base));
    fingerprint = world.broadcast_string(fingerprint, 0);
    log::info("base " + o.base + " (fingerprint " + fingerprint.substr(0, 12) + "), frozen; LoRA rank " +
                        std::to_string(o.lora->rank) + ", alpha " + std::to_string(o.lora->alpha) + ", scaling " +
                        std::to_string(o.lora->scale()) + " on " + std::to_string(cfg.num_hidden_layers) + " layers");
  }
  uint64_t step = 0, consumed = 0, tokens_seen = 0;
  std::string resumed_from;
  json resumed_state;  // the train state of the checkpoint resumed from
  {
    // Every rank reads its slices; a checkpoint is used only when all ranks could.
    std::vector<float> hp(P), hm(hi - lo), hv(hi - lo);
    auto try_load = [&](const std::string& dir, bool with_optimizer) -> std::optional<json> {
      std::string problem;
      json state;
      try {
        if (o.lora) {
          // A checkpoint directory, or (dpo-align --lora) the adapter file to start from.
          const std::string file = fs::is_regular_file(dir) ? dir : (fs::path(dir) / "adapter.h5").string();
          const AdapterData a = read_adapter_file(file, with_optimizer);
          check_adapter_matches(a, file, cfg, fingerprint, o.base);
          if (a.lora.rank != o.lora->rank || a.lora.targets != o.lora->targets || a.lora.alpha != o.lora->alpha ||
              a.lora.rslora != o.lora->rslora)
            throw UsageError(file + ": its LoRA settings (rank, alpha, targets, rslora) differ from this run's");
          slice_adapter(cfg, a.lora, a.tensors, specs, 0, P, hp.data());
          if (with_optimizer) {
            slice_adapter(cfg, a.lora, a.exp_avg, specs, lo, hi, hm.data());
            slice_adapter(cfg, a.lora, a.exp_avg_sq, specs, lo, hi, hv.data());
          }
          state = a.train_state.is_null() ? json::object() : a.train_state;
        } else {
          CheckpointReader r(dir);
          if (with_optimizer && !r.has_optimizer()) throw RuntimeError(r.file() + ": holds no optimizer state");
          load_rank_slices(r, specs, hp.data(), with_optimizer ? hm.data() : nullptr, hv.data(), lo, hi);
          state = r.train_state().is_null() ? json::object() : r.train_state();
        }
      } catch (const std::exception& e) {
        problem = e.what();
      }
      const double bad = world.allreduce_value(problem.empty() ? 0.0 : 1.0, dist::ReduceOp::max);
      if (bad == 0) return state;
      if (!problem.empty())
        log::write_always(log::Level::warn, (world.size() > 1 ? "rank " + std::to_string(world.rank()) + ": " : "") +
                                                "skipping checkpoint " + dir + ": " + problem);
      return std::nullopt;
    };
    std::optional<json> state;
    for (const auto& dir : start.candidates)
      if ((state = try_load(dir, true))) {
        resumed_from = dir;
        resumed_state = *state;
        break;
      }
    if (!state && !start.init_from.empty() && !(state = try_load(start.init_from, false)))
      throw RuntimeError(start.init_from + ": cannot read its weights (see above)");
    if (state) {
      be->upload(model.trainable_data(), hp.data(), P);
      if (!resumed_from.empty()) {
        be->upload(opt.exp_avg(), hm.data(), hi - lo);
        be->upload(opt.exp_avg_sq(), hv.data(), hi - lo);
        step = state->value("step", uint64_t{0});
        consumed = state->value("consumed_samples", uint64_t{0});
        tokens_seen = state->value("tokens_seen", uint64_t{0});
        if (state->value("seed", o.seed) != o.seed)
          throw UsageError("--seed " + std::to_string(o.seed) + " differs from the resumed run's (" +
                           std::to_string(state->value("seed", o.seed)) + ")");
        log::info("resumed from " + resumed_from + " at step " + std::to_string(step));
      } else {
        log::info("initialised from " + start.init_from + " (fresh optimizer, step 0)");
      }
    } else {
      if (!start.candidates.empty()) throw RuntimeError("no checkpoint of " + o.run_dir + " could be read (see above)");
      if (o.lora)
        model.init_lora(o.seed);
      else
        model.init_weights(o.seed);
    }
  }
  if (root)
    log::info("model: " + std::to_string(cfg.num_params()) + " parameters (" + std::to_string(P) + (o.lora ? " adapter parameters" : "") +
              " trained on this rank); backend " + be->name() +
              (o.on_cuda ? " on " + where + " (matmul peak "
                         : " (" + std::to_string(be->threads()) + " threads, sgemm peak ") +
              std::to_string(int(peak)) + " GFLOP/s); activations " + gib(double(model.activation_bytes())) + " on this rank; recompute " +
              nn::to_string(o.recompute));

  // dpo-align: what the policy is compared with. A LoRA policy's reference is its base with the
  // adapters off (--new-lora) or with the adapter it started from, frozen (--lora; only that small
  // copy is kept); a full policy's is a frozen copy of its starting weights. --precompute-ref runs
  // the reference once over the data and keeps only its log-probabilities.
  std::unique_ptr<nn::LlamaModel> ref_model;
  float* ref_adapters = nullptr;  // [P] --lora: the starting adapter's factors, this rank's slices
  std::string ref_adapter_file;
  PairLogps pre_train, pre_valid;  // --precompute-ref, indexed by pair
  auto reference_pass = [&](bool on) {
    if (o.lora) model.set_reference_adapters(on, ref_adapters);
  };
  // The full policy's reference: the checkpoint --policy named when the run started (recorded
  // in every checkpoint: `--policy RUNDIR` may point at a newer checkpoint by the time it resumes).
  std::string ref_ckpt = o.base;
  if (dpo && !o.lora && resumed_state.contains("dpo")) {
    const std::string recorded = resumed_state["dpo"].value("reference", std::string());
    if (!recorded.empty() && recorded != ref_ckpt) {
      if (!fs::exists(recorded))
        throw UsageError("the run's reference " + recorded + " (the policy it started from) no longer exists; --policy " +
                         o.model + " now means " + o.base + ": start a new run to align against that");
      if (root) log::info("reference: " + recorded + ", the policy this run started from (--policy now means " + o.base + ")");
      ref_ckpt = recorded;
    }
  }
  // Forward only: full recomputation keeps just each layer's input, the least activation memory.
  auto make_ref_model = [&]() {
    nn::ModelParallel rmp = mp;
    rmp.slots = 1;
    ref_model = std::make_unique<nn::LlamaModel>(cfg, *be, rows, o.seq_len, nn::Recompute::full, rmp, nullptr, true);
    std::vector<float> w(ref_model->num_params());
    load_rank_slices(CheckpointReader(ref_ckpt), ref_model->params(), w.data(), nullptr, nullptr, 0, 0);
    be->upload(ref_model->param_data(), w.data(), w.size());
  };
  // A fresh full run's policy is its reference until the first update: --precompute-ref then
  // needs no copy at all.
  bool policy_is_reference = false;
  auto ref_runner = [&]() -> nn::LlamaModel& { return o.lora || policy_is_reference ? model : *ref_model; };
  if (dpo) {
    if (!o.start_adapter.empty()) {
      // Kept in the run directory: a resumed run compares with the same adapter even when the
      // file it came from has moved on.
      ref_adapter_file = (fs::path(o.run_dir) / "reference" / "adapter.h5").string();
      if (root && o.start_adapter != ref_adapter_file && (resumed_from.empty() || !fs::exists(ref_adapter_file))) {
        fs::create_directories(fs::path(ref_adapter_file).parent_path());
        fs::copy_file(o.start_adapter, ref_adapter_file + ".tmp", fs::copy_options::overwrite_existing);
        fs::rename(ref_adapter_file + ".tmp", ref_adapter_file);
      }
      world.barrier();
      const AdapterData a = read_adapter_file(ref_adapter_file, false);
      check_adapter_matches(a, ref_adapter_file, cfg, fingerprint, o.base);
      std::vector<float> h(P);
      slice_adapter(cfg, a.lora, a.tensors, specs, 0, P, h.data());
      ref_adapters = be->alloc(P);
      be->upload(ref_adapters, h.data(), P);
    }
    if (o.precompute_ref) {
      std::string ref_fp;
      if (root)
        ref_fp = (o.lora ? fingerprint : base_fingerprint(CheckpointReader(ref_ckpt))) +
                 (ref_adapter_file.empty() ? "" : "+adapter:" + sha256_file(ref_adapter_file));
      ref_fp = world.broadcast_string(ref_fp, 0);
      auto precompute = [&](PreferenceData& d, const std::string& split) {
        const std::string file = (fs::path(o.run_dir) / "reference" / ("logps-" + split + ".h5")).string();
        const std::string dsha = d.content_sha256();
        std::string why;
        if (fs::exists(file)) {
          try {
            ReferenceLogps r = read_reference_logps(file);
            if (r.seq_len != uint64_t(o.seq_len) || r.data_sha256 != dsha || r.reference_fingerprint != ref_fp ||
                r.chosen.size() != d.num_pairs())
              why = "it was computed for other data, another reference or another --seq-len";
            else {
              PairLogps p;
              p.chosen = std::move(r.chosen);
              p.rejected = std::move(r.rejected);
              if (root) log::info("reference log-probabilities of the " + split + " pairs from " + file);
              return p;
            }
          } catch (const std::exception& e) {
            why = e.what();
          }
          if (root) log::warn("recomputing " + file + ": " + why);
        }
        policy_is_reference = !o.lora && resumed_from.empty();
        if (!o.lora && !policy_is_reference && !ref_model) make_ref_model();
        const auto t0 = Clock::now();
        reference_pass(true);
        PairLogps p = pair_logps(ref_runner(), ps, d, o.seq_len, o.micro, 0, d.num_pairs());
        reference_pass(false);
        if (root) {
          fs::create_directories(fs::path(file).parent_path());
          ReferenceLogps r;
          r.chosen = p.chosen;
          r.rejected = p.rejected;
          r.seq_len = uint64_t(o.seq_len);
          r.tokenizer_sha256 = data_sha;
          r.data_sha256 = dsha;
          r.reference_fingerprint = ref_fp;
          write_reference_logps(file, r, p.chosen_rows, p.rejected_rows, o.tool);
          log::info("reference log-probabilities of " + std::to_string(d.num_pairs()) + " " + split + " pairs computed in " +
                    log::human_duration(seconds_since(t0)) + " and kept in " + file);
        }
        world.barrier();
        return p;
      };
      pre_train = precompute(*pref, "train");
      if (valid_pref) pre_valid = precompute(*valid_pref, "valid");
      ref_model.reset();  // training needs only the numbers
      policy_is_reference = false;
    } else if (!o.lora) {
      make_ref_model();
    }
    if (root)
      log::info(std::string("dpo: loss ") + to_string(o.dpo.loss) + ", beta " + std::to_string(o.dpo.beta) +
                (o.dpo.label_smoothing > 0 ? ", label smoothing " + std::to_string(o.dpo.label_smoothing) : "") +
                (o.dpo.sft_weight > 0 ? ", sft weight " + std::to_string(o.dpo.sft_weight) : "") + "; reference: " +
                (o.precompute_ref ? "precomputed log-probabilities"
                 : o.lora         ? (ref_adapters ? "the base with the starting adapter frozen" : "the base with the adapters off")
                                  : "a frozen copy of the policy's starting weights (" + gib(double(ref_model->num_params()) * 4 + double(ref_model->activation_bytes())) + " on this rank)"));
  }

  std::unique_ptr<log::MetricsWriter> metrics;
  if (root) metrics = std::make_unique<log::MetricsWriter>(o.run_dir + "/metrics.jsonl");
  const uint64_t tokens_per_step = uint64_t(o.global) * uint64_t(o.seq_len) * (dpo ? 2 : 1);
  // A frozen base skips its weight gradients: 4 FLOPs per matmul parameter and token, not 6 (the
  // adapters' own are negligible at small ranks and not counted).
  const double matmul_params = double(cfg.num_params()) - (cfg.tie_word_embeddings ? 0.0 : double(cfg.vocab_size * cfg.hidden_size));
  // dpo-align adds the reference's forward (a third of a full training step's FLOPs) unless precomputed.
  const double flops_per_token = cfg.train_flops_per_token(o.seq_len) - (o.lora ? 2.0 * matmul_params : 0.0) +
                                 (dpo && !o.precompute_ref ? cfg.train_flops_per_token(o.seq_len) / 3.0 : 0.0);
  const double flops_per_step = flops_per_token * double(tokens_per_step);
  Batch b;
  for (auto* v : {&b.ids, &b.targets, &b.pos, &b.doc_start}) v->assign(size_t(rows) * size_t(o.seq_len), 0);
  std::string last_saved = resumed_from;
  const json options = inv.effective_options();
  const json layout = {{"tp", ps.grid().tp()}, {"pp", ps.grid().pp()}, {"dp", dp}, {"zero", ps.zero()}};

  auto save = [&](uint64_t at_step) {
    json state = {{"step", at_step}, {"consumed_samples", consumed}, {"tokens_seen", tokens_seen},
                        {"seed", o.seed}, {"data", o.data}, {"global_batch", o.global}, {"seq_len", o.seq_len},
                        {"layout", layout}};
    if (dpo)
      state["dpo"] = {{"loss", to_string(o.dpo.loss)}, {"beta", o.dpo.beta}, {"label_smoothing", o.dpo.label_smoothing},
                      {"sft_weight", o.dpo.sft_weight}, {"reference", o.lora ? o.base : ref_ckpt},
                      {"reference_adapter", ref_adapter_file}};
    std::vector<float> hp(P), hm(hi - lo), hv(hi - lo);
    be->download(hp.data(), model.trainable_data(), P);
    be->download(hm.data(), opt.exp_avg(), hi - lo);
    be->download(hv.data(), opt.exp_avg_sq(), hi - lo);
    if (o.lora) {
      // Adapters are small: rank 0 gathers the whole factors and writes one adapter file.
      AdapterData d;
      d.tensors = gather_adapter(world, cfg, *o.lora, specs, hp.data(), 0, P, ps.coord().dp == 0, ps.coord().tp);
      const bool writes = ps.zero() || ps.coord().dp == 0;
      d.exp_avg = gather_adapter(world, cfg, *o.lora, specs, hm.data(), lo, hi, writes, ps.coord().tp);
      d.exp_avg_sq = gather_adapter(world, cfg, *o.lora, specs, hv.data(), lo, hi, writes, ps.coord().tp);
      std::string dir;
      if (root) {
        d.lora = *o.lora;
        d.base_config = cfg;
        d.base_fingerprint = fingerprint;
        d.tokenizer_sha256 = data_sha;
        d.step = at_step;
        d.train_state = state;
        d.train_state["base"] = o.base;
        dir = save_adapter_checkpoint(o.run_dir, d, o.tool, options, o.keep);
      }
      last_saved = world.broadcast_string(dir, 0);
    } else if (world.size() == 1) {
      CheckpointData d;
      d.config = cfg;
      d.tokenizer_sha256 = data_sha;
      d.step = at_step;
      d.train_state = state;
      d.params = std::move(hp);
      d.exp_avg = std::move(hm);
      d.exp_avg_sq = std::move(hv);
      last_saved = save_checkpoint(o.run_dir, d, o.tool, options, o.keep);
    } else {
      RankSlices mine;
      mine.specs = &specs;
      mine.params = hp.data();
      mine.exp_avg = hm.data();
      mine.exp_avg_sq = hv.data();
      mine.lo = lo;
      mine.hi = hi;
      mine.writes = ps.zero() || ps.coord().dp == 0;
      mine.tp_rank = ps.coord().tp;
      last_saved = save_checkpoint_parallel(world, o.run_dir, cfg, data_sha, at_step, state, o.tool,
                                            options, o.keep, layout, mine);
    }
    if (root) {
      log::info("saved checkpoint " + last_saved);
      metrics->write({{"event", "checkpoint"}, {"step", at_step}, {"path", last_saved}});
    }
  };

  if (step >= o.steps) {
    if (root)
      log::info("the run is already at step " + std::to_string(step) + " of " + std::to_string(o.steps) + ": nothing to do");
    return kExitOk;
  }
  const bool reports_loss = ps.last_stage() && ps.coord().tp == 0;  // each loss term once
  const auto run_t0 = Clock::now();
  std::vector<double> comm_by_rank(size_t(world.size()) * 3);
  // dpo-align's per-step host buffers, kept across steps: each micro-batch's rows, the
  // reference's row log-probabilities [M][rows] and the logit-gradient weights [rows * T].
  std::vector<PairRow> row_info;
  std::vector<std::vector<double>> ref(static_cast<size_t>(dpo ? M : 0));
  std::vector<float> factors;
  while (step < o.steps) {
    const auto t0 = Clock::now();
    ps.reset_comm_times();
    double data_s = 0;
    be->zero(model.trainable_grad(), P);
    // Replica d takes micro-batches d*M .. d*M + M - 1 of the step's global batch.
    const uint64_t first_mb = uint64_t(ps.coord().dp) * uint64_t(M);
    double loss = 0;
    uint64_t targets = 0;
    DpoStats dstats;
    if (dpo) {
      // The step's normalisers: its pairs, and the chosen tokens (the SFT term's mean).
      double chosen_tokens = 0;
      for (uint64_t k = 0; k < uint64_t(o.global); ++k)
        chosen_tokens += pref->row_of(pref->pair_at(consumed + k, o.seed, true), 0, o.seq_len).targets;
      auto load = [&](int mb, int slot, nn::LlamaModel& m) {
        const auto td = Clock::now();
        pref->fill(b, o.seq_len, consumed + (first_mb + uint64_t(mb)) * uint64_t(o.micro), o.micro, o.seed, true, &row_info);
        m.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data(), slot);
        data_s += seconds_since(td);
      };
      // The reference's log-probabilities of the step's rows (last stage: every tensor-parallel
      // rank needs them for its slice of the logit gradients).
      if (o.precompute_ref) {
        for (int mb = 0; mb < M; ++mb) {
          auto& r = ref[size_t(mb)];
          r.clear();
          for (int p = 0; p < o.micro; ++p) {
            const uint64_t i = pref->pair_at(consumed + (first_mb + uint64_t(mb)) * uint64_t(o.micro) + uint64_t(p), o.seed, true);
            r.push_back(pre_train.chosen[i]);
            r.push_back(pre_train.rejected[i]);
          }
        }
      } else {
        nn::LlamaModel& rm = ref_runner();
        reference_pass(true);
        pipeline_forward(
            rm, ps, M, [&](int mb, int slot) { load(mb, slot, rm); },
            [&](int mb, int) {
              if (ps.last_stage()) ref[size_t(mb)] = row_logps(rm.host_losses(), b.targets.data(), rows, o.seq_len);
            });
        reference_pass(false);
      }
      pipeline_train(
          model, ps, M, 1.0f,
          [&](int mb, int slot) {
            load(mb, slot, model);
            model.set_dropout_seed(nn::hash_seed(o.seed, consumed + (first_mb + uint64_t(mb)) * uint64_t(o.micro)), slot);
          },
          [&](int mb, int) {
            if (!ps.last_stage()) return;
            const auto pol = row_logps(model.host_losses(), b.targets.data(), rows, o.seq_len);
            DpoStats mbs;
            dpo_micro_batch(o.dpo, pol, ref[size_t(mb)], row_info, b.targets.data(), o.seq_len, double(o.global),
                            chosen_tokens, mbs, &factors);
            if (reports_loss) dstats.add(mbs);
            model.scale_logit_grads(factors.data());
          });
      double sums[DpoStats::kFields];
      dstats.to(sums);
      world.allreduce(sums, DpoStats::kFields, dist::ReduceOp::sum);
      dstats.from(sums);
      dstats.finish(o.dpo.sft_weight);
      loss = dstats.loss;
      targets = uint64_t(dstats.chosen_tokens);
    } else {
      // The loss is the mean over the step's targets: every token for pretraining, the loss-masked
      // (response) tokens for SFT; every rank counts the whole global batch's the same way.
      targets = data->count_targets(o.seq_len, consumed, uint64_t(o.global), o.seed, true);
      const float grad_scale = float(1.0 / double(std::max<uint64_t>(1, targets)));
      const double local_loss = pipeline_train(model, ps, M, grad_scale, [&](int mb, int slot) {
        const auto td = Clock::now();
        data->fill(b, o.seq_len, consumed + (first_mb + uint64_t(mb)) * uint64_t(o.micro), o.micro, o.seed, true,
                   o.doc_masking);
        model.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data(), slot);
        // Adapter dropout: masks drawn per micro-batch from (seed, its first sample).
        model.set_dropout_seed(nn::hash_seed(o.seed, consumed + (first_mb + uint64_t(mb)) * uint64_t(o.micro)), slot);
        data_s += seconds_since(td);
      });
      loss = world.allreduce_value(reports_loss ? local_loss : 0.0, dist::ReduceOp::sum) / double(std::max<uint64_t>(1, targets));
    }
    opt.reduce_gradients(model.trainable_grad());
    const double gnorm = opt.grad_norm(model.trainable_grad());
    const double lr = lr_at(step, o.steps, o.warmup, o.lr, o.min_lr);
    bool skipped = false;
    if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
      if (!o.skip_nonfinite)
        throw RuntimeError("step " + std::to_string(step + 1) + ": the loss or gradient is not finite (loss " +
                           std::to_string(loss) + ", grad norm " + std::to_string(gnorm) + "); stopped without saving it. " +
                           (last_saved.empty() ? "No checkpoint was saved yet."
                                               : "Last good checkpoint: " + last_saved + " (resume with --resume auto)") +
                           "; --skip-nonfinite skips such steps instead");
      skipped = true;
      log::warn("step " + std::to_string(step + 1) + ": non-finite loss or gradient, update skipped (--skip-nonfinite)");
    } else {
      if (o.clip > 0 && gnorm > o.clip) opt.scale_gradients(model.trainable_grad(), float(o.clip / gnorm));
      opt.step(model.trainable_data(), model.trainable_grad(), {lr, o.beta1, o.beta2, o.eps, o.wd, step + 1});
    }
    consumed += uint64_t(o.global);
    tokens_seen += tokens_per_step;
    ++step;
    // Communication time per rank and group, so that a stall shows where it is.
    const ParallelState::CommTimes ct = ps.comm_times();
    std::fill(comm_by_rank.begin(), comm_by_rank.end(), 0.0);
    comm_by_rank[size_t(world.rank()) * 3 + 0] = ct.tp;
    comm_by_rank[size_t(world.rank()) * 3 + 1] = ct.pp;
    comm_by_rank[size_t(world.rank()) * 3 + 2] = ct.dp;
    if (world.size() > 1) world.allreduce(comm_by_rank.data(), comm_by_rank.size(), dist::ReduceOp::sum);
    const double step_s = seconds_since(t0);
    const double comm_s = ct.tp + ct.pp + ct.dp;
    const double flops = flops_per_step / step_s;
    const double mfu = flops / (peak * 1e9 * world.size());
    if (root) {
      json by_rank = json::array();
      for (int r = 0; r < world.size(); ++r)
        by_rank.push_back({{"tp", comm_by_rank[size_t(r) * 3]}, {"pp", comm_by_rank[size_t(r) * 3 + 1]},
                           {"dp", comm_by_rank[size_t(r) * 3 + 2]}});
      json rec = {{"event", "step"}, {"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", gnorm}, {"targets", targets},
                  {"tokens", tokens_seen}, {"tokens_per_s", double(tokens_per_step) / step_s},
                  {"flops_per_s", flops}, {"mfu", mfu},
                  {"time_s", {{"step", step_s}, {"compute", step_s - data_s - comm_s}, {"communication", comm_s},
                              {"tp", ct.tp}, {"pp", ct.pp}, {"dp", ct.dp}, {"data", data_s}}},
                  {"skipped", skipped}};
      if (world.size() > 1) rec["comm_s_by_rank"] = by_rank;
      if (dpo) {
        // TRL's names; rewards are beta * (policy - reference) log-probabilities of the responses.
        const double n = std::max(1.0, dstats.pairs);
        rec["dpo_loss"] = dstats.dpo_loss / n;
        if (o.dpo.sft_weight > 0) rec["sft_loss"] = dstats.sft_nll / std::max(1.0, dstats.chosen_tokens);
        rec["rewards/chosen"] = dstats.reward_chosen / n;
        rec["rewards/rejected"] = dstats.reward_rejected / n;
        rec["rewards/accuracies"] = dstats.correct / n;
        rec["rewards/margins"] = dstats.margin / n;
        rec["logps/chosen"] = dstats.logp_chosen / n;
        rec["logps/rejected"] = dstats.logp_rejected / n;
        rec["pairs"] = dstats.pairs;
      }
      metrics->write(rec);
    }
    if (root && (step % o.log_every == 0 || step == o.steps)) {
      std::ostringstream line;
      line.precision(4);
      line << "step " << step << "/" << o.steps << " loss " << loss << " lr " << lr << " grad_norm " << gnorm << " | "
           << int(double(tokens_per_step) / step_s) << " tok/s, " << flops / 1e9 << " GFLOP/s, MFU " << 100.0 * mfu
           << "% | data " << 100.0 * data_s / step_s << "%, comm " << 100.0 * comm_s / step_s << "%";
      if (world.size() > 1)
        line << " (tp " << 100.0 * ct.tp / step_s << "%, pp " << 100.0 * ct.pp / step_s << "%, dp " << 100.0 * ct.dp / step_s
             << "%)";
      if (dpo) {
        const double n = std::max(1.0, dstats.pairs);
        line << " | rewards beta*dlogp chosen " << dstats.reward_chosen / n << " rejected " << dstats.reward_rejected / n
             << " acc " << dstats.correct / n << " margin " << dstats.margin / n;
      }
      line << " | elapsed " << log::human_duration(seconds_since(run_t0));
      log::info(line.str());
    }
    if (valid_pref && o.eval_every > 0 && (step % o.eval_every == 0 || step == o.steps)) {
      // Held-out pairs in file order: the policy's and the reference's log-probabilities.
      const uint64_t n = o.eval_batches == 0 ? valid_pref->num_pairs()
                                             : std::min(valid_pref->num_pairs(), o.eval_batches * uint64_t(o.micro));
      const PairLogps pol = pair_logps(model, ps, *valid_pref, o.seq_len, o.micro, 0, n);
      std::vector<double> rc, rr;
      if (o.precompute_ref) {
        rc.assign(pre_valid.chosen.begin(), pre_valid.chosen.begin() + long(n));
        rr.assign(pre_valid.rejected.begin(), pre_valid.rejected.begin() + long(n));
      } else {
        reference_pass(true);
        PairLogps r = pair_logps(ref_runner(), ps, *valid_pref, o.seq_len, o.micro, 0, n);
        reference_pass(false);
        rc = std::move(r.chosen);
        rr = std::move(r.rejected);
      }
      const DpoStats e = dpo_stats(o.dpo, pol, rc, rr);
      if (root) {
        const double k = std::max(1.0, e.pairs);
        metrics->write({{"event", "eval"}, {"step", step}, {"eval_loss", e.loss}, {"eval_rewards/accuracies", e.correct / k},
                        {"eval_rewards/margins", e.margin / k}, {"eval_rewards/chosen", e.reward_chosen / k},
                        {"eval_rewards/rejected", e.reward_rejected / k}, {"eval_logps/chosen", e.logp_chosen / k},
                        {"eval_logps/rejected", e.logp_rejected / k}, {"eval_pairs", e.pairs}});
        std::ostringstream line;
        line.precision(4);
        line << "step " << step << " validation: loss " << e.loss << ", reward accuracy " << e.correct / k << ", margin "
             << e.margin / k << " (" << e.pairs << " held-out pairs)";
        log::info(line.str());
      }
    }
    if (valid && o.eval_every > 0 && (step % o.eval_every == 0 || step == o.steps)) {
      // Signals are left pending here: the step's end below checkpoints on them.
      const EvalResult e = evaluate_parallel(model, ps, *valid, b, o.eval_batches * uint64_t(o.micro), o.doc_masking);
      if (root) {
        metrics->write({{"event", "eval"}, {"step", step}, {"eval_loss", e.loss}, {"eval_ppl", std::exp(e.loss)},
                        {"eval_tokens", e.tokens}, {"eval_unigram_entropy", e.unigram_entropy}});
        log::info("step " + std::to_string(step) + " validation loss " + std::to_string(e.loss) + " (perplexity " +
                  std::to_string(std::exp(e.loss)) + ", " + std::to_string(e.tokens) + " tokens)");
      }
    }
    // Every rank acts on a signal any rank received, at the same step (a launcher may deliver it
    // to the ranks at different moments).
    const int sig = int(world.allreduce_value(int64_t(pending_signal()), dist::ReduceOp::max));
    if (sig != 0 && sig != SIGINT) {
      log::warn("signal " + std::to_string(sig) + " received: checkpointing at step " + std::to_string(step) + " and stopping");
      save(step);
      log::info("stopped at step " + std::to_string(step) + "; rerun with --resume auto to continue");
      // Every rank's last words are out before any exits (a launcher may kill the rest at the first exit).
      world.barrier();
      return kExitCheckpointed;
    }
    check_interrupt();  // SIGINT: stop now, as every tool does
    if ((o.save_every > 0 && step % o.save_every == 0) || step == o.steps) save(step);
  }
  return kExitOk;
}

}  // namespace

void add_training_options(cli::ToolSpec& s, TrainMode mode) {
  namespace po = cli::po;
  const bool dpo = mode == TrainMode::dpo;
  const bool sft = mode == TrainMode::sft || dpo;  // both tune a given model
  po::options_description d(sft ? "Data and base model" : "Data and model");
  d.add_options()
      ("data", po::value<std::string>()->value_name("DIR"),
       dpo   ? "preference shards (pref-*.h5) from tokenize-pack --mode preference"
       : sft ? "SFT token shards (train-*.h5) from tokenize-pack --mode sft"
             : "token shards (train-*.h5) from tokenize-pack --mode pretrain")
      ("valid-data", po::value<std::string>()->value_name("DIR"),
       dpo ? "held-out preference shards (reward accuracy, margin and loss every --eval-every steps)"
           : "validation shards (default: DIR's valid-*.h5, if any)")
      ("tokenizer", po::value<std::string>()->value_name("PATH"),
       "the shards' tokenizer, copied into RUNDIR (default: found through DIR/report.json)");
  if (dpo) {
    d.add_options()
        ("policy", po::value<std::string>()->value_name("CKPT"),
         "the model to align: a checkpoint or run directory (the base, with --lora/--new-lora)")
        ("lora", po::value<std::string>()->value_name("ADAPTER"),
         "continue this adapter of the policy (lora-tune's); the reference keeps it frozen")
        ("new-lora", po::bool_switch(), "train a new adapter (--rank, --alpha, --targets); the reference is the base alone");
  } else if (sft) {
    d.add_options()
        ("base", po::value<std::string>()->value_name("CKPT"), "the model to tune: a checkpoint or run directory (frozen with LoRA)")
        ("base-hf", po::value<std::string>()->value_name("DIR"), "... or an HF model directory (imported into RUNDIR/base/)")
        ("base-gguf", po::value<std::string>()->value_name("FILE"), "... or a GGUF file (imported into RUNDIR/base/)");
  } else {
    d.add_options()
        ("model", po::value<std::string>()->default_value("tiny")->value_name("M"), "preset name or config.json")
        ("init-from", po::value<std::string>()->value_name("CKPT"), "start from these weights (fresh optimizer, step 0)");
  }
  d.add_options()
      ("seq-len", po::value<int64_t>()->default_value(256)->value_name("T"), "tokens per sample (<= the shards')")
      ("doc-masking", po::value<std::string>()->default_value("on")->value_name("on|off"),
       sft ? "restart attention and positions at each packed example (off: one causal window per row)"
           : "restart attention and positions at document starts stored in the shards");
  po::options_description l(dpo ? "New adapter (--new-lora; without --lora/--new-lora every weight trains)" : "LoRA");
  if (sft)
    l.add_options()
        ("rank", po::value<int64_t>()->default_value(16)->value_name("R"), "adapter rank r")
        ("alpha", po::value<double>()->default_value(32, "32")->value_name("X"), "adapter alpha: the update is scaled by alpha/r")
        ("dropout", po::value<double>()->default_value(dpo ? 0.0 : 0.05, dpo ? "0" : "0.05")->value_name("P"),
         dpo ? "dropout on the adapters' input (off by default, as TRL's DPO disables dropout)" : "dropout on the adapters' input")
        ("targets", po::value<std::string>()->default_value("q,k,v,o,gate,up,down")->value_name("LIST"),
         "projections to adapt: q,k,v,o,gate,up,down (any subset) or all")
        ("rslora", po::bool_switch(), "rank-stabilised scaling alpha/sqrt(r)");
  if (sft && !dpo) l.add_options()("full", po::bool_switch(), "full-parameter SFT instead: every weight trains (no adapters)");
  po::options_description pref("Preference objective");
  pref.add_options()
      ("loss", po::value<std::string>()->default_value("sigmoid")->value_name("L"),
       "sigmoid (DPO) | ipo (on per-token mean log-probs) | hinge (SLiC)")
      ("beta", po::value<double>()->default_value(0.1, "0.1")->value_name("X"), "strength of the reference: rewards are beta * (log p - log p_ref)")
      ("label-smoothing", po::value<double>()->default_value(0.0, "0")->value_name("E"), "sigmoid only: robust/cDPO, the share of flipped labels assumed")
      ("sft-weight", po::value<double>()->default_value(0.0, "0")->value_name("W"), "add W x the chosen responses' mean NLL (RPO)")
      ("precompute-ref", po::bool_switch(),
       "run the reference once over the data and keep its log-probabilities (RUNDIR/reference/) instead of a reference pass per step");
  po::options_description t("Training");
  t.add_options()
      ("steps", po::value<int64_t>()->default_value(100)->value_name("N"), "optimizer steps")
      ("micro-batch", po::value<int64_t>()->default_value(dpo ? 4 : 8)->value_name("B"),
       dpo ? "pairs per forward/backward (2 B rows: chosen and rejected)" : "samples per forward/backward")
      ("global-batch", po::value<int64_t>()->value_name("G"),
       dpo ? "pairs per optimizer step (a multiple of B; default B)" : "samples per optimizer step (a multiple of B; default B)")
      ("lr", dpo ? po::value<double>()->value_name("X") : po::value<double>()->default_value(sft ? 2e-4 : 1e-3, sft ? "2e-4" : "1e-3")->value_name("X"),
       dpo ? "peak learning rate (default 5e-5 for adapters, 1e-6 for the full model, as TRL's DPO)" : "peak learning rate")
      ("min-lr", po::value<double>()->value_name("X"), "floor of the cosine decay (default lr/10)")
      ("warmup-steps", po::value<uint64_t>()->default_value(10)->value_name("N"), "linear warmup")
      ("beta1", po::value<double>()->default_value(0.9, "0.9")->value_name("X"), "AdamW beta1")
      ("beta2", po::value<double>()->default_value(0.95, "0.95")->value_name("X"), "AdamW beta2")
      ("adam-eps", po::value<double>()->default_value(1e-8, "1e-8")->value_name("X"), "AdamW epsilon")
      ("weight-decay", po::value<double>()->default_value(sft ? 0.0 : 0.1, sft ? "0" : "0.1")->value_name("X"),
       "decoupled weight decay (not on norms)")
      ("grad-clip", po::value<double>()->default_value(1.0, "1.0")->value_name("X"), "clip the global gradient norm (0: off)")
      ("seed", po::value<uint64_t>()->default_value(1)->value_name("N"),
       sft ? "adapter initialisation, dropout and data order" : "initialisation and data order")
      ("recompute", po::value<std::string>()->default_value("none")->value_name("MODE"), "none | selective | full")
      ("skip-nonfinite", po::bool_switch(), "skip a step whose loss or gradient is NaN/Inf instead of stopping");
  po::options_description r("Run");
  r.add_options()
      ("resume", po::value<std::string>()->default_value("none")->value_name("MODE"), "auto: continue from RUNDIR's newest checkpoint")
      ("save-every", po::value<uint64_t>()->default_value(0)->value_name("N"), "checkpoint every N steps (always at the end)")
      ("keep-checkpoints", po::value<unsigned>()->default_value(3)->value_name("K"), "keep the newest K (0: all)")
      ("eval-every", po::value<uint64_t>()->default_value(0)->value_name("N"), "validation loss every N steps and at the end")
      ("eval-batches", po::value<uint64_t>()->default_value(8)->value_name("N"), "micro-batches per validation")
      ("log-every", po::value<uint64_t>()->default_value(1)->value_name("N"), "a log line every N steps")
      ("device", po::value<std::string>()->default_value("auto")->value_name("D"),
       "auto | cpu | cuda (auto: cuda when this build has CUDA and a GPU is usable; one GPU per rank, local rank mod visible GPUs)")
      ("matmul-precision", po::value<std::string>()->value_name("P"),
       "CUDA GEMMs: fp32 | tf32 | bf16 (default bf16: bf16 tensor cores, fp32 accumulation; weights, optimizer and activations stay fp32)")
      ("backend", po::value<std::string>()->default_value("cpu")->value_name("B"), "CPU implementation: cpu | ref (the slow reference)")
      ("threads", po::value<int64_t>()->default_value(0)->value_name("N"), "CPU threads per rank (0: all cores)");
  po::options_description par("Parallelism (ranks from mpirun/srun; rank = tp + TP * (dp + DP * pp))");
  par.add_options()
      ("tp", po::value<int64_t>()->default_value(1)->value_name("T"), "tensor-parallel size (consecutive ranks: keep it within a node)")
      ("pp", po::value<int64_t>()->default_value(1)->value_name("P"), "pipeline-parallel stages (1F1B schedule)")
      ("dp", po::value<int64_t>()->value_name("D"), "data-parallel size (default: ranks / (T x P))")
      ("zero", po::value<int64_t>()->default_value(0)->value_name("0|1"), "1: shard AdamW state across data-parallel ranks (ZeRO-1)")
      ("pp-layers", po::value<std::string>()->value_name("N,N,.."), "layers per pipeline stage (default: balanced)")
      ("allow-cross-node-tp", po::bool_switch(), "start even when a tensor-parallel group spans nodes (slow)");
  po::options_description plan("Planning (--dry-run)");
  plan.add_options()("dry-run", po::bool_switch(), "print the per-rank memory, compute and traffic plan and exit");
  add_planner_options(plan);
  s.groups.push_back(d);
  if (sft) s.groups.push_back(l);
  if (dpo) s.groups.push_back(pref);
  for (auto* g : {&t, &r, &par}) s.groups.push_back(*g);
  if (!dpo) s.groups.push_back(plan);  // the planner does not count a reference model (yet)
  s.writes_output = false;
  po::options_description out("Output");
  out.add_options()("output,o", po::value<std::string>()->value_name("RUNDIR"), "the run directory (created; reused by --resume auto)");
  s.groups.push_back(out);
}

int run_training(cli::Invocation& inv, TrainMode mode) { return run(inv, mode); }

}  // namespace bellows::train
