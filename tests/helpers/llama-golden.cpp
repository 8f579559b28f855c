// Test helper: runs our Llama model (nn::LlamaModel on the fast CPU backend) on a small config
// and one fixed batch, and writes what a PyTorch re-implementation of HF's LlamaForCausalLM
// (tests/python/check_llama_golden.py) needs to recompute and compare everything:
//   llama-golden OUTDIR [--tied] [--rope-scaling] [--seed N]
//                [--lora R [--alpha A] [--rslora] [--lora-dropout P] [--targets CSV]]
// OUTDIR/
//   config.json         the model config, HF field names (LlamaConfig::to_hf_json)
//   batch.json          B, T and the B*T arrays ids, targets (-1: no loss), pos, doc_start
//   params/NAME.npy     every initial parameter, HF name and logical shape, float32
//   logits.npy          [B*T, V] from the forward pass
//   loss.json           mean loss over the targets != -1 (and its sum and count)
//   grads/NAME.npy      the gradient of the mean loss for every parameter
//   adamw_losses.json   the mean loss before each of 10 AdamW steps on the same batch, with the
//                       optimizer's hyper-parameters
// With --lora the base is frozen and the adapters (libshared/nn/lora.hpp) are what trains:
//   params/NAME.npy     the frozen base, as above (grads/ is not written: the base has none)
//   lora.json           rank, alpha, rslora, dropout, targets, our scale, whether init_lora left
//                       every B at zero, and the dropout seed of each forward (the logits pass and
//                       step 1 share the first; step k uses dropout_seeds[k - 1])
//   lora/NAME.npy       the initial adapters, NAME as lora_param_specs names them without its
//                       "lora/" (model.layers.0.self_attn.q_proj/A.npy, [r, in]; .../B.npy,
//                       [out, r]): init_lora's A, and B given N(0, 0.05) values after init_lora
//                       (peft starts B at 0, where A's gradient would be 0 and untested)
//   lora_grads/NAME.npy the gradient of the mean loss for every adapter tensor (step 1)
//   params_after/NAME.npy  the base after the 10 AdamW steps (which update only the adapters;
//                       weight decay as ParamSpec.decay says, true for every adapter)
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "nn/rng.hpp"

using namespace bellows;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "llama-golden: %s\nusage: llama-golden OUTDIR [--tied] [--rope-scaling] [--seed N]\n"
               "                    [--lora R [--alpha A] [--rslora] [--lora-dropout P] [--targets CSV]]\n",
               why.c_str());
  std::exit(2);
}

// A float32 array as a .npy file (format 1.0, little-endian '<f4', C order), which numpy and
// torch read without help.
void write_npy(const fs::path& path, const std::vector<float>& data, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  dims.erase(dims.size() - (shape.size() == 1 ? 1 : 2));  // "(3,)" for one dimension, "(3, 4)" for more
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // The 10-byte preamble plus the header, padded with spaces and ended by '\n', fills a whole
  // number of 64-byte blocks, as numpy writes it.
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  const uint16_t len = uint16_t(header.size());
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const char len_le[2] = {char(len & 0xff), char(len >> 8)};
  f.write(len_le, 2);
  f << header;
  f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(float)));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream f(path);
  // nlohmann writes doubles with enough digits to round-trip.
  f << j.dump(2) << '\n';
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

// Every tensor of `specs` (offsets into `buf`, `n` floats on the backend) as DIR/NAME.npy, NAME
// without `strip` at its front (the adapters' "lora/"; their "/A" makes a subdirectory).
void write_tensors(const fs::path& dir, nn::Backend& be, const std::vector<nn::ParamSpec>& specs, size_t n,
                   const float* buf, const std::string& strip = {}) {
  std::vector<float> all(n);  // [n], all tensors back to back
  be.download(all.data(), buf, all.size());
  for (const auto& s : specs) {
    std::vector<float> t(all.begin() + std::ptrdiff_t(s.offset), all.begin() + std::ptrdiff_t(s.offset + s.numel));
    const std::string name = s.name.compare(0, strip.size(), strip) == 0 ? s.name.substr(strip.size()) : s.name;
    const fs::path path = dir / (name + ".npy");
    fs::create_directories(path.parent_path());
    write_npy(path, t, s.shape);
  }
}

double parse_double(const char* s, const std::string& flag) {
  char* end = nullptr;
  const double x = std::strtod(s, &end);
  if (*s == '\0' || *end != '\0') usage(flag + ": not a number");
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  std::string outdir;
  bool tied = false, rope_scaling = false;
  uint64_t seed = 1;
  nn::LoraConfig lora;
  lora.rank = 0;  // 0: no --lora
  lora.alpha = 0;  // 0: 2 * rank
  std::string target_csv = "all";
  bool lora_opts = false;  // a LoRA option was given (needs --lora)
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage("missing value for " + arg);
      return argv[++i];
    };
    if (arg == "--tied") tied = true;
    else if (arg == "--rope-scaling") rope_scaling = true;
    else if (arg == "--lora") {
      const double r = parse_double(value(), arg);
      if (r < 1 || r != std::floor(r)) usage("--lora: the rank must be a positive integer");
      lora.rank = int(r);
    } else if (arg == "--alpha") lora.alpha = parse_double(value(), arg), lora_opts = true;
    else if (arg == "--rslora") lora.rslora = true, lora_opts = true;
    else if (arg == "--lora-dropout") lora.dropout = parse_double(value(), arg), lora_opts = true;
    else if (arg == "--targets") target_csv = value(), lora_opts = true;
    else if (arg == "--seed") {
      if (i + 1 >= argc) usage("missing value for --seed");
      char* end = nullptr;
      seed = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0') usage("--seed: not a number");
    } else if (!arg.empty() && arg[0] == '-') usage("unknown option " + arg);
    else if (outdir.empty()) outdir = arg;
    else usage("more than one OUTDIR");
  }
  if (outdir.empty()) usage("no OUTDIR");
  if (lora_opts && lora.rank == 0) usage("--alpha, --rslora, --lora-dropout and --targets need --lora R");

  try {
    // Small, but with every feature the check should see: GQA (6 query heads sharing 2 KV
    // heads), several layers, head_dim 8 (hidden 48 / 6 heads) so RoPE has 4 frequencies.
    nn::LlamaConfig cfg = nn::preset("tiny", 101);
    cfg.hidden_size = 48;
    cfg.intermediate_size = 72;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 6;
    cfg.num_key_value_heads = 2;
    cfg.max_position_embeddings = 64;
    cfg.rope_theta = 10000.0;
    cfg.tie_word_embeddings = tied;
    if (rope_scaling) {
      // With an original context of 16, the wavelengths at head_dim 8 (2 pi x 1, 10, 100, 1000)
      // fall one in the smoothed band (between 16/4 and 16/1) and three above it (divided by
      // the factor): every frequency changes, by both rules.
      nn::RopeScaling s;
      s.factor = 4.0;
      s.low_freq_factor = 1.0;
      s.high_freq_factor = 4.0;
      s.original_max_position_embeddings = 16;
      cfg.rope_scaling = s;
    }

    // Two rows of 12; row 1 packs two documents (the second starts at t = 5: attention window
    // and RoPE positions restart there); the last token of row 1's first document has no target,
    // as packing leaves it.
    const int B = 2, T = 12, V = int(cfg.vocab_size);
    std::vector<int32_t> ids, targets, pos, doc_start;  // each [B*T]
    nn::Rng rng(seed, "llama-golden batch");
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t) {
        const int start = b == 1 && t >= 5 ? 5 : 0;
        ids.push_back(int32_t(rng.below(uint64_t(V))));
        const int32_t target = int32_t(rng.below(uint64_t(V)));
        targets.push_back(b == 1 && t == 4 ? -1 : target);
        pos.push_back(t - start);
        doc_start.push_back(start);
      }
    int count = 0;
    for (int32_t x : targets) count += x != -1;

    auto be = nn::make_cpu_backend(2);
    const bool with_lora = lora.rank > 0;
    if (with_lora) {
      lora.targets = nn::parse_lora_targets(target_csv);
      if (lora.alpha == 0) lora.alpha = 2.0 * lora.rank;
    }
    nn::LlamaModel m(cfg, *be, B, T, nn::Recompute::none, {}, with_lora ? &lora : nullptr);
    m.init_weights(seed);
    m.set_batch(ids.data(), targets.data(), pos.data(), doc_start.data());

    const fs::path out(outdir);
    fs::create_directories(out);
    write_json(out / "config.json", cfg.to_hf_json());
    write_json(out / "batch.json", {{"B", B}, {"T", T}, {"ids", ids}, {"targets", targets}, {"pos", pos},
                                    {"doc_start", doc_start}});
    write_tensors(out / "params", *be, m.params(), m.num_params(), m.param_data());

    // The dropout seed of each forward: full 64-bit values, so the checker's hash sees wrapping.
    std::vector<uint64_t> dropout_seeds;  // [10]
    nn::Rng seed_rng(seed, "llama-golden dropout");
    for (int k = 0; k < 10; ++k) dropout_seeds.push_back(seed_rng.next());
    if (with_lora) {
      m.init_lora(seed);
      // B is 0 after init_lora; give it values (a stream per tensor) so that A's gradient, which
      // is s (dy B)^T drop(x), is not 0 and is compared too.
      const auto& ls = m.trainable_specs();
      std::vector<float> ad(m.num_trainable());  // [num_trainable]
      be->download(ad.data(), m.trainable_data(), ad.size());
      bool b_zero = true;
      for (const auto& s : ls)
        if (s.name.back() == 'B') {
          nn::Rng r(seed, "llama-golden lora B " + s.name);
          for (size_t i = s.offset; i < s.offset + s.numel; ++i) {
            b_zero = b_zero && ad[i] == 0.0f;
            ad[i] = float(r.normal() * 0.05);
          }
        }
      be->upload(m.trainable_data(), ad.data(), ad.size());
      write_tensors(out / "lora", *be, ls, m.num_trainable(), m.trainable_data(), "lora/");
      std::vector<std::string> names;
      for (auto t : lora.targets) names.push_back(nn::to_string(t));
      write_json(out / "lora.json", {{"rank", lora.rank}, {"alpha", lora.alpha}, {"rslora", lora.rslora},
                                     {"dropout", lora.dropout}, {"targets", names}, {"scale", lora.scale()},
                                     {"init_b_all_zero", b_zero}, {"dropout_seeds", dropout_seeds}});
    }
    if (with_lora && m.grad_data() != nullptr) throw std::runtime_error("the base has a gradient buffer under LoRA");

    // Logits: forward(0) leaves them in place (a nonzero scale would overwrite them by dlogits).
    m.set_dropout_seed(dropout_seeds[0]);
    const double sum = m.forward(0.0f);
    std::vector<float> logits(size_t(B) * T * V);  // [B*T, V]
    be->download(logits.data(), m.logits(), logits.size());
    write_npy(out / "logits.npy", logits, {int64_t(B) * T, V});
    write_json(out / "loss.json", {{"loss", sum / count}, {"sum", sum}, {"count", count}});

    // AdamW as torch.optim.AdamW does it, on the same batch every step; the first step's
    // gradients (of the initial parameters) are the ones written out. The hyper-parameters go to
    // the JSON as these doubles and to the backend as floats, as torch's float32 kernels take them.
    // What trains is the base, or with LoRA the adapters only (the base has no gradient).
    const double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    const size_t n = m.num_trainable();
    float* mom = be->alloc(n);  // [num_trainable] first moment
    float* var = be->alloc(n);  // [num_trainable] second moment
    be->zero(mom, n);
    be->zero(var, n);
    std::vector<double> losses;
    for (int step = 1; step <= 10; ++step) {
      be->zero(m.trainable_grad(), n);  // backward() accumulates
      m.set_dropout_seed(dropout_seeds[size_t(step - 1)]);
      losses.push_back(m.forward(1.0f / float(count)) / count);
      m.backward();
      if (step == 1) {
        if (with_lora) write_tensors(out / "lora_grads", *be, m.trainable_specs(), n, m.trainable_grad(), "lora/");
        else write_tensors(out / "grads", *be, m.params(), n, m.grad_data());
      }
      const double bc1 = 1.0 - std::pow(b1, step), bc2 = 1.0 - std::pow(b2, step);
      for (const auto& s : m.trainable_specs())  // no weight decay on the norms
        be->adamw(m.trainable_data() + s.offset, m.trainable_grad() + s.offset, mom + s.offset, var + s.offset, s.numel,
                  float(lr), float(b1), float(b2), float(eps), s.decay ? float(wd) : 0.0f, float(bc1), float(bc2));
    }
    if (with_lora) write_tensors(out / "params_after", *be, m.params(), m.num_params(), m.param_data());
    write_json(out / "adamw_losses.json", {{"lr", lr}, {"betas", {b1, b2}}, {"eps", eps}, {"weight_decay", wd},
                                           {"losses", losses}});
    std::printf("llama-golden: %zu %s, loss %.6f over %d targets, written to %s\n", n,
                with_lora ? "adapter parameters" : "parameters", sum / count, count, outdir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama-golden: %s\n", e.what());
    return 1;
  }
  return 0;
}
