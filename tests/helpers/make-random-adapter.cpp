// Test helper for the LoRA conversion tests (tests/bats/convert_lora.bats): writes a lora_adapter
// file for a base checkpoint with random, non-zero A and B (a trained adapter's B is non-zero; a
// fresh one's is all zeros and would test nothing), recording the base's fingerprint as lora-tune
// does.
//   make-random-adapter --base CKPT [--rank 4] [--alpha 8] [--targets q,k,v,o,gate,up,down|all]
//                       [--rslora] [--dropout 0.05] [--seed 1] [--scale-b 0.2] -o FILE
// A ~ U(-1/sqrt(in), 1/sqrt(in)) (peft's Kaiming-uniform bound), B ~ U(-scale_b, scale_b), from a
// 64-bit Mersenne Twister seeded by --seed. Errors: a message on stderr, exit 1 (2 for a wrong
// command line).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "nn/lora.hpp"
#include "train/adapter.hpp"
#include "train/checkpoint.hpp"

using namespace bellows;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "make-random-adapter: %s\nusage: make-random-adapter --base CKPT [--rank R] [--alpha A] [--targets LIST] "
               "[--rslora] [--dropout D] [--seed S] [--scale-b X] -o FILE\n",
               why.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string base_arg, out, targets = "q,k,v,o,gate,up,down";
  nn::LoraConfig lora;
  lora.rank = 4;
  lora.alpha = 8;
  uint64_t seed = 1;
  double scale_b = 0.2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--base") base_arg = value();
      else if (a == "-o") out = value();
      else if (a == "--rank") lora.rank = std::stoi(value());
      else if (a == "--alpha") lora.alpha = std::stod(value());
      else if (a == "--targets") targets = value();
      else if (a == "--rslora") lora.rslora = true;
      else if (a == "--dropout") lora.dropout = std::stod(value());
      else if (a == "--seed") seed = std::stoull(value());
      else if (a == "--scale-b") scale_b = std::stod(value());
      else usage("unknown argument '" + a + "'");
    } catch (const std::logic_error&) {
      usage("bad value for " + a);
    }
  }
  if (base_arg.empty() || out.empty()) usage("--base and -o are required");
  try {
    lora.targets = nn::parse_lora_targets(targets);
    const train::CheckpointReader base(train::resolve_checkpoint(base_arg));
    nn::check_lora(base.config(), lora);
    train::AdapterData d;
    d.lora = lora;
    d.base_config = base.config();
    d.base_fingerprint = train::base_fingerprint(base);
    d.tokenizer_sha256 = base.tokenizer_sha256();
    std::mt19937_64 rng(seed);
    for (const auto& p : nn::lora_param_specs(d.base_config, lora)) {
      const double bound = p.name.back() == 'A' ? 1.0 / std::sqrt(double(p.shape[1])) : scale_b;
      std::uniform_real_distribution<double> u(-bound, bound);
      for (size_t k = 0; k < p.numel; ++k) d.tensors.push_back(float(u(rng)));
    }
    train::write_adapter_file(out, d, "make-random-adapter",
                              {{"base", base_arg}, {"rank", lora.rank}, {"alpha", lora.alpha}, {"targets", targets},
                               {"rslora", lora.rslora}, {"seed", seed}, {"scale_b", scale_b}});
  } catch (const UsageError& e) {
    std::fprintf(stderr, "make-random-adapter: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make-random-adapter: %s\n", e.what());
    return 1;
  }
  return 0;
}
