#include "gen/lm_generate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>

#include "core/error.hpp"
#include "train/run_tokenizer.hpp"
#include "train/evaluate.hpp"
#include "gen/generate.hpp"
#include "gen/kv_model.hpp"
#include "gen/logits_json.hpp"
#include "gen/sampler.hpp"
#include "io/safe_output.hpp"
#include "log/log.hpp"
#include "nn/backend.hpp"
#include "nn/device.hpp"
#include "train/adapter.hpp"
#include "train/checkpoint.hpp"
#include "train/token_data.hpp"

namespace bellows::gen {

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    const std::string t = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos || t.size() > 10 ||
        std::stoll(t) > INT32_MAX)
      throw UsageError("--ids: '" + t + "' is not a token id (expected comma-separated non-negative integers)");
    ids.push_back(int32_t(std::stoll(t)));
  }
  if (ids.empty()) throw UsageError("--ids: no ids given");
  return ids;
}

namespace {

struct Options {
  std::string ckpt, lora, tokenizer, prompt, dump_logits, eval, backend, device, matmul_precision;
  std::string adapter_note;  // what --lora folded in, logged with the model
  std::vector<int32_t> ids;
  bool have_prompt = false, have_ids = false, bos = false, allow_special = false, print_ids = false, overwrite = false;
  bool generate = true, doc_masking = true;
  int max_new = 64, eval_batch = 8, threads = 0, eval_seq_len = 0;
  uint64_t eval_samples = 0, seed = 1;
  SamplingOptions sampling;
};

// lm-generate is one process: it takes the first visible GPU.
nn::DeviceOptions device_options(const Options& o) { return {o.device, o.backend, o.threads, o.matmul_precision, 0}; }

Options read_options(const cli::Invocation& inv) {
  Options o;
  if (!inv.has("ckpt")) throw UsageError("missing required option '--ckpt' (a checkpoint directory, its model.h5, or a run directory)");
  o.ckpt = inv.get<std::string>("ckpt");
  if (inv.has("lora")) o.lora = inv.get<std::string>("lora");
  if (inv.has("tokenizer")) o.tokenizer = inv.get<std::string>("tokenizer");
  o.have_prompt = inv.has("prompt");
  o.have_ids = inv.has("ids");
  if (o.have_prompt) o.prompt = inv.get<std::string>("prompt");
  if (o.have_ids) o.ids = parse_ids(inv.get<std::string>("ids"));
  if (inv.has("eval")) o.eval = inv.get<std::string>("eval");
  if (inv.has("dump-logits")) o.dump_logits = inv.get<std::string>("dump-logits");
  if (o.have_prompt && o.have_ids) throw UsageError("--prompt and --ids: give one of them");
  if (!o.eval.empty()) {
    if (o.have_prompt || o.have_ids || !o.dump_logits.empty())
      throw UsageError("--eval scores token shards: it takes no --prompt, --ids or --dump-logits");
  } else if (!o.have_prompt && !o.have_ids) {
    throw UsageError("nothing to do: give --prompt TEXT or --ids LIST (or --eval DATA)");
  }
  const int64_t max_new = inv.get<int64_t>("max-new-tokens");
  if (max_new < 0 || max_new > INT32_MAX) throw UsageError("--max-new-tokens must be >= 0 (got " + std::to_string(max_new) + ")");
  o.max_new = int(max_new);
  // --dump-logits is about the prompt; it generates only when asked to explicitly.
  o.generate = o.dump_logits.empty() || inv.has("max-new-tokens");
  o.sampling.temperature = inv.get<double>("temperature");
  o.sampling.top_p = inv.get<double>("top-p");
  if (!(o.sampling.temperature >= 0) || !std::isfinite(o.sampling.temperature))
    throw UsageError("--temperature must be >= 0 (0: greedy)");
  if (!(o.sampling.top_p > 0 && o.sampling.top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
  o.seed = inv.get<uint64_t>("seed");
  o.bos = inv.get<bool>("bos");
  o.allow_special = inv.get<bool>("allow-special");
  o.print_ids = inv.get<bool>("print-ids");
  o.overwrite = inv.get<bool>("overwrite");
  const int64_t eb = inv.get<int64_t>("eval-batch");
  if (eb <= 0 || eb > 65536) throw UsageError("--eval-batch must be in 1..65536 (got " + std::to_string(eb) + ")");
  o.eval_batch = int(eb);
  o.eval_samples = inv.get<uint64_t>("eval-samples");
  if (inv.has("eval-seq-len")) {
    const int64_t L = inv.get<int64_t>("eval-seq-len");
    if (L <= 0) throw UsageError("--eval-seq-len must be positive (got " + std::to_string(L) + ")");
    o.eval_seq_len = int(L);
  }
  const std::string dm = inv.get<std::string>("doc-masking");
  if (dm != "on" && dm != "off") throw UsageError("--doc-masking: '" + dm + "' is not on or off");
  o.doc_masking = dm == "on";
  o.backend = inv.get<std::string>("backend");
  const int64_t th = inv.get<int64_t>("threads");
  if (th < 0 || th > 4096) throw UsageError("--threads must be in 0..4096 (0: all cores)");
  o.threads = int(th);
  o.device = inv.get<std::string>("device");
  o.matmul_precision = inv.get<std::string>("matmul-precision");
  nn::resolve_device(device_options(o));  // a bad combination is a usage error before any work
  return o;
}

// Logged once the request is known to be valid, so that a usage error stays one line.
void log_model(const Options& o, const std::string& ckpt_path, const train::CheckpointData& ck, const nn::Backend& be,
               const std::string& where) {
  log::info("model: " + ckpt_path + " (step " + std::to_string(ck.step) + ", " + std::to_string(ck.config.num_params()) +
            " parameters); backend " + be.name() +
            (where == "cpu" ? " (" + std::to_string(be.threads()) + " threads)" : " on " + where));
  if (!o.adapter_note.empty()) log::info(o.adapter_note);
}

// --lora: the adapter must have been made for exactly this base (shape and fingerprint of the
// weights just loaded); it is folded into the weights (W += scaling B A), so generation, logits
// and --eval run the merged model at the base's speed.
std::string apply_adapter(const std::string& adapter_path, const std::string& ckpt_path, train::CheckpointData& ck) {
  const train::AdapterData a = train::read_adapter_file(adapter_path, /*with_optimizer=*/false);
  train::check_adapter_matches(a, adapter_path, ck.config, train::base_fingerprint(ck.config, ck.params), ckpt_path);
  train::merge_adapter(a, ck.params);
  std::string targets;
  for (auto t : a.lora.targets) targets += (targets.empty() ? "" : ",") + std::string(nn::to_string(t));
  std::ostringstream note;
  note << "adapter: " << adapter_path << " (rank " << a.lora.rank << ", alpha " << a.lora.alpha
       << (a.lora.rslora ? ", rsLoRA" : "") << ", scaling " << a.lora.scale() << ", " << targets << "; step " << a.step
       << ") merged into the weights";
  return note.str();
}

// --eval: the valid split of DATA when it has one, else its train split.
int run_eval(const Options& o, const std::string& ckpt_path, const train::CheckpointData& ck) {
  std::unique_ptr<train::TokenData> data;
  std::string split = "valid";
  try {
    data = std::make_unique<train::TokenData>(o.eval, "valid");
  } catch (const UsageError&) {
    split = "train";
    try {
      data = std::make_unique<train::TokenData>(o.eval, "train");
    } catch (const UsageError& e) {
      throw UsageError(std::string("--eval: ") + e.what());
    }
  }
  if (data->tokenizer_sha256() != ck.tokenizer_sha256)
    throw UsageError("--eval " + o.eval + ": the shards were made with tokenizer " + data->tokenizer_sha256().substr(0, 12) +
                     " but " + o.ckpt + " was trained with " + ck.tokenizer_sha256.substr(0, 12));
  if (int64_t(data->vocab_size()) > ck.config.vocab_size)
    throw UsageError("--eval " + o.eval + ": the shards' vocabulary (" + std::to_string(data->vocab_size()) +
                     ") is larger than the model's (" + std::to_string(ck.config.vocab_size) + ")");
  // The length the model was trained at (a run's checkpoint says), unless --eval-seq-len: scoring
  // longer samples than it saw measures RoPE extrapolation, not what it learned.
  int T = int(data->seq_len());
  const int trained = int(ck.train_state.value("seq_len", int64_t{0}));
  if (o.eval_seq_len > 0) {
    if (o.eval_seq_len > T)
      throw UsageError("--eval-seq-len " + std::to_string(o.eval_seq_len) + " is longer than the shards' samples (" +
                       std::to_string(T) + " tokens)");
    T = o.eval_seq_len;
  } else if (trained > 0 && trained < T) {
    T = trained;
    log::info("--eval: samples cut to the " + std::to_string(T) + " tokens the model was trained on (--eval-seq-len to change)");
  }
  if (T > ck.config.max_position_embeddings) {
    T = int(ck.config.max_position_embeddings);
    log::info("--eval: samples cut to the model's max_position_embeddings (" + std::to_string(T) + " of " +
              std::to_string(data->seq_len()) + " tokens)");
  }
  std::string where;
  auto be = nn::make_device_backend(device_options(o), &where);
  log_model(o, ckpt_path, ck, *be, where);
  const train::EvalResult r = train::evaluate(ck.config, ck.params, *be, *data, o.eval_batch, T, o.eval_samples, o.doc_masking);
  log::info("--eval: " + std::to_string(r.samples) + " samples of the " + split + " split of " + o.eval + " (" +
            std::to_string(data->num_samples()) + " there)");
  std::printf("loss %.6f perplexity %.6f tokens %llu unigram_entropy %.6f\n", r.loss, std::exp(r.loss),
              static_cast<unsigned long long>(r.tokens), r.unigram_entropy);
  std::fflush(stdout);
  return kExitOk;
}

// Streams text as tokens arrive. Byte-level BPE and tiktoken ids decode to their bytes
// concatenated, so each id is decoded alone; SentencePiece pieces decode differently in context
// (the leading space of the first), so there the shown ids are decoded whole each time and only
// the bytes past what is already printed go out. Ids the model has but the tokenizer lacks (a
// vocabulary padded for the matmuls) print nothing, with one warning.
class TextStream {
 public:
  explicit TextStream(const tok::Tokenizer& t) : t_(t), whole_(t.kind() == "sentencepiece") {}
  void push(const std::vector<uint32_t>& ids) {
    std::vector<uint32_t> known;
    for (uint32_t id : ids) {
      if (id < t_.vocab_size()) {
        known.push_back(id);
      } else if (!warned_) {
        log::warn("token id " + std::to_string(id) + " is beyond the tokenizer's vocabulary (" +
                  std::to_string(t_.vocab_size()) + "): such tokens print nothing");
        warned_ = true;
      }
    }
    std::string s;
    if (whole_) {
      ids_.insert(ids_.end(), known.begin(), known.end());
      s = t_.decode(ids_);
      s = s.size() > printed_ ? s.substr(printed_) : "";
      printed_ += s.size();
    } else {
      s = t_.decode(known);
    }
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  }

 private:
  const tok::Tokenizer& t_;
  bool whole_;
  bool warned_ = false;
  std::vector<uint32_t> ids_;  // SentencePiece: every id shown so far
  size_t printed_ = 0;         // SentencePiece: bytes printed so far
};

void print_ids(const std::vector<int32_t>& prompt, const std::vector<uint32_t>& more) {
  std::string line;
  for (int32_t id : prompt) line += (line.empty() ? "" : ",") + std::to_string(id);
  for (uint32_t id : more) line += (line.empty() ? "" : ",") + std::to_string(id);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int run_generate(const Options& o, const std::string& ckpt_path, const train::CheckpointData& ck) {
  const nn::LlamaConfig& cfg = ck.config;
  const int V = int(cfg.vocab_size);
  // The tokenizer: needed to encode --prompt; with --ids only for EOS and printing text.
  std::optional<tok::Tokenizer> tk;
  if (o.have_prompt || o.generate || o.bos || !o.tokenizer.empty()) {
    tk = train::checkpoint_tokenizer(ckpt_path, o.tokenizer, ck.tokenizer_sha256);
    if (!tk && (o.have_prompt || o.bos))
      throw UsageError(std::string(o.have_prompt ? "--prompt" : "--bos") + " needs the model's tokenizer, and " +
                       train::run_dir_of_checkpoint(ckpt_path) +
                       "/tokenizer/bellows_tokenizer.json does not exist: give --tokenizer PATH");
  }
  // shown: the ids printed (the prompt as given); ids: what the model reads (with BOS first).
  std::vector<int32_t> shown = o.ids, ids;
  if (o.have_prompt) {
    std::vector<uint32_t> enc;
    tk->encode(o.prompt, o.allow_special, enc);
    shown.assign(enc.begin(), enc.end());
  }
  for (int32_t id : shown)
    if (id < 0 || id >= V)
      throw UsageError((o.have_ids ? "--ids: id " : "--prompt: token id ") + std::to_string(id) +
                       " is outside the model's vocabulary (0.." + std::to_string(V - 1) + ")");
  if (o.bos) {
    if (!tk->bos_id()) throw UsageError("--bos: the tokenizer " + tk->path() + " has no BOS token");
    ids.push_back(int32_t(*tk->bos_id()));
  }
  ids.insert(ids.end(), shown.begin(), shown.end());
  if (ids.empty()) {
    // An empty prompt starts a document: in pretraining data a document follows an EOS.
    if (tk && tk->eos_id()) ids.push_back(int32_t(*tk->eos_id()));
    else if (tk && tk->bos_id()) ids.push_back(int32_t(*tk->bos_id()));
    else throw UsageError("--prompt is empty and the tokenizer has no EOS or BOS token to start from");
  }
  if (int64_t(ids.size()) > cfg.max_position_embeddings)
    throw UsageError(std::string(o.have_ids ? "--ids" : "--prompt") + ": " + std::to_string(ids.size()) +
                     " tokens are longer than the model's max_position_embeddings (" +
                     std::to_string(cfg.max_position_embeddings) + ")");
  const int64_t want = int64_t(ids.size()) + (o.generate ? o.max_new : 0);
  if (want > cfg.max_position_embeddings)
    log::warn("the prompt (" + std::to_string(ids.size()) + " tokens) and --max-new-tokens " + std::to_string(o.max_new) +
              " exceed max_position_embeddings (" + std::to_string(cfg.max_position_embeddings) +
              "): generation stops at the end of the context");
  const int max_len = int(std::min<int64_t>(want, cfg.max_position_embeddings));

  std::unique_ptr<io::SafeOutput> dump;  // opened first: an existing file is refused before any work
  if (!o.dump_logits.empty())
    dump = std::make_unique<io::SafeOutput>(o.dump_logits, io::SafeOutput::Kind::file, o.overwrite);

  std::string where;
  auto be = nn::make_device_backend(device_options(o), &where);
  log_model(o, ckpt_path, ck, *be, where);
  KvCacheModel model(cfg, *be, max_len, int(std::min<size_t>(ids.size(), 128)));
  model.load_params(ck.params);

  if (dump) {
    std::vector<float> logits;  // [ids, V]
    model.reset();
    model.forward(ids.data(), int(ids.size()), /*all_logits=*/true, logits);
    write_logits_json(*dump, ids, logits, V);
    log::info("--dump-logits: wrote " + std::to_string(ids.size()) + " x " + std::to_string(V) + " logits to " + o.dump_logits);
  }
  if (!o.generate) return kExitOk;

  const bool as_text = tk && !o.print_ids;
  if (!tk) log::info("no tokenizer for " + ckpt_path + ": printing ids, and generation stops only at --max-new-tokens");
  const std::optional<uint32_t> eos = tk ? tk->eos_id() : std::nullopt;
  std::optional<TextStream> text;
  if (as_text) {
    text.emplace(*tk);
    text->push(std::vector<uint32_t>(shown.begin(), shown.end()));
  }
  Sampler sampler(o.sampling, o.seed);
  const Generated g = generate(model, ids, o.max_new, eos, sampler, [&](uint32_t id) {
    if (text) text->push({id});
  });
  if (as_text) {
    std::printf("\n");
    std::fflush(stdout);
  } else {
    print_ids(shown, g.ids);
  }
  std::ostringstream line;
  line.precision(3);
  line << "prompt " << ids.size() << " tokens (" << double(ids.size()) / std::max(g.prefill_s, 1e-9) << " tok/s), generated "
       << g.ids.size() << " (" << double(g.ids.size()) / std::max(g.decode_s, 1e-9) << " tok/s), stopped at "
       << to_string(g.stop);
  log::info(line.str());
  return kExitOk;
}

int run(cli::Invocation& inv) {
  Options o = read_options(inv);
  const std::string ckpt_path = train::resolve_checkpoint(o.ckpt);
  const std::string adapter_path = o.lora.empty() ? "" : train::resolve_adapter(o.lora, "--lora");
  train::CheckpointData ck = train::load_checkpoint(ckpt_path, /*with_optimizer=*/false);
  if (!adapter_path.empty()) o.adapter_note = apply_adapter(adapter_path, ckpt_path, ck);
  if (!o.eval.empty()) return run_eval(o, ckpt_path, ck);
  return run_generate(o, ckpt_path, ck);
}

}  // namespace

cli::ToolSpec lm_generate_tool_spec() {
  cli::ToolSpec s;
  s.name = "lm-generate";
  s.summary = "sample text from a checkpoint, dump its logits, or score token shards";
  s.usage = "lm-generate --ckpt CKPT (--prompt TEXT | --ids LIST) [options]  |  lm-generate --ckpt CKPT --eval DATA";
  s.description =
      "--ckpt is a checkpoint directory (RUNDIR/checkpoints/step-N), its model.h5, or a run directory\n"
      "(its newest checkpoint). --lora ADAPTER (an adapter file, a lora-tune checkpoint directory or run\n"
      "directory) folds a LoRA adapter into the weights first (W + scaling B A); it must have been made for\n"
      "that very base (same shape and weights fingerprint), else it is refused.\n"
      "The tokenizer is --tokenizer, else the copy in RUNDIR/tokenizer/; it\n"
      "must be the one the model was trained with (SHA-256). Generation prefills the prompt into a KV\n"
      "cache and draws up to --max-new-tokens tokens, greedily with --temperature 0, else from\n"
      "softmax(logits / T) within the --top-p nucleus (seeded by --seed: the same seed gives the same\n"
      "text), stopping at EOS; the prompt and continuation go to stdout as text (as ids with\n"
      "--print-ids, or when --ids is used and no tokenizer is found). An empty prompt starts from EOS\n"
      "(what precedes a document in pretraining data). --dump-logits FILE.json writes\n"
      "{\"ids\": [...], \"logits\": [[V floats] per prompt position]} (non-finite values as null) and\n"
      "generates only when --max-new-tokens is given too. --eval DATA prints `loss X perplexity Y\n"
      "tokens N unigram_entropy U`: the mean next-token loss over the samples of DATA's valid-*.h5 shards (train-*.h5\n"
      "when there are none), computed as training does (attention and positions restart at\n"
      "document starts), and the entropy of those targets' own token frequencies: what a model\n"
      "knowing only token frequencies would score.";
  namespace po = cli::po;
  po::options_description m("Model");
  m.add_options()
      ("ckpt", po::value<std::string>()->value_name("CKPT"), "checkpoint directory, its model.h5, or a run directory")
      ("lora", po::value<std::string>()->value_name("ADAPTER"), "apply a LoRA adapter of this base: adapter.h5, its checkpoint or run directory")
      ("tokenizer", po::value<std::string>()->value_name("PATH"), "the model's tokenizer (default: RUNDIR/tokenizer/)")
      ("device", po::value<std::string>()->default_value("auto")->value_name("D"),
       "auto | cpu | cuda (auto: cuda when this build has CUDA and a GPU is usable)")
      ("matmul-precision", po::value<std::string>()->default_value("fp32")->value_name("P"),
       "CUDA GEMMs: fp32 | tf32 | bf16 (fp32 by default, so that logits match the CPU's)")
      ("backend", po::value<std::string>()->default_value("cpu")->value_name("B"), "CPU implementation: cpu | ref (the slow reference)")
      ("threads", po::value<int64_t>()->default_value(0)->value_name("N"), "CPU threads (0: all cores)");
  po::options_description g("Generation");
  g.add_options()
      ("prompt", po::value<std::string>()->value_name("TEXT"), "the text to continue")
      ("ids", po::value<std::string>()->value_name("LIST"), "instead of --prompt: comma-separated token ids")
      ("bos", po::bool_switch(), "start the prompt with the tokenizer's BOS (for data packed with tokenize-pack --bos)")
      ("allow-special", po::bool_switch(), "special token strings in --prompt become their ids")
      ("max-new-tokens", po::value<int64_t>()->default_value(64)->value_name("N"), "tokens to generate at most")
      ("temperature", po::value<double>()->default_value(0.8, "0.8")->value_name("T"), "softmax temperature (0: greedy)")
      ("top-p", po::value<double>()->default_value(0.95, "0.95")->value_name("P"), "nucleus: the smallest set of tokens with probability >= P")
      ("seed", po::value<uint64_t>()->default_value(1)->value_name("S"), "sampling seed")
      ("print-ids", po::bool_switch(), "print the prompt and continuation as comma-separated ids, not text")
      ("dump-logits", po::value<std::string>()->value_name("FILE"), "write the logits of every prompt position as JSON")
      ("overwrite", po::bool_switch(), "replace an existing --dump-logits file");
  po::options_description e("Evaluation");
  e.add_options()
      ("eval", po::value<std::string>()->value_name("DATA"), "token shards (tokenize-pack --mode pretrain) to score")
      ("eval-batch", po::value<int64_t>()->default_value(8)->value_name("B"), "samples per forward pass")
      ("eval-samples", po::value<uint64_t>()->default_value(0)->value_name("N"), "score the first N samples (0: all)")
      ("eval-seq-len", po::value<int64_t>()->value_name("T"),
       "score the first T+1 tokens of each sample (default: the training length the checkpoint records)")
      ("doc-masking", po::value<std::string>()->default_value("on")->value_name("on|off"),
       "restart attention and positions at document starts, as pretrain does by default");
  for (auto* grp : {&m, &g, &e}) s.groups.push_back(*grp);
  s.examples = {"lm-generate --ckpt runs/small --prompt 'The cluster' --max-new-tokens 100",
                "lm-generate --ckpt runs/small/checkpoints/step-00001000 --prompt 'Once' --temperature 0",
                "lm-generate --ckpt runs/small --ids 12,7,99 --dump-logits logits.json",
                "lm-generate --ckpt runs/small --eval tokens/ --eval-samples 256",
                "lm-generate --ckpt runs/small --lora runs/small-sft --prompt 'Question:' --temperature 0"};
  s.run = run;
  return s;
}

}  // namespace bellows::gen
