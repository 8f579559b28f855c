// The pieces of the LoRA conversions that must agree bit for bit with their counterparts: the
// in-memory base fingerprint (lm-generate --lora) with the one read tensor by tensor from the
// checkpoint (lora-tune, ckpt-convert), and the per-tensor merge of a streamed export
// (ckpt-convert --merge) with merge_adapter over the whole model (lm-generate --lora).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include <cstring>
#include <random>

#include "formats/lora_export.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "test_util.hpp"
#include "train/adapter.hpp"
#include "train/checkpoint.hpp"

namespace bellows {
namespace {

using nn::LlamaConfig;

LlamaConfig small_config() {
  LlamaConfig c = nn::preset("tiny", 61);
  c.tie_word_embeddings = false;
  return c;
}

std::vector<float> random_values(size_t n, uint64_t seed, float bound) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-bound, bound);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

TEST(LoraFormats, InMemoryFingerprintEqualsTheCheckpointReadersOne) {
  testing::TempDir dir;
  const LlamaConfig c = small_config();
  const auto specs = nn::param_specs(c);
  const auto params = random_values(specs.back().offset + specs.back().numel, 1, 0.1f);
  const std::string path = dir / "model.h5";
  {
    train::CheckpointFileWriter w(path, c, "tok", 0, nlohmann::json(), "test", nlohmann::json::object());
    for (const auto& p : specs) w.write("params/" + p.name, p, params.data() + p.offset);
    w.close();
  }
  const std::string from_file = train::base_fingerprint(train::CheckpointReader(path));
  EXPECT_EQ(train::base_fingerprint(c, params), from_file);
  EXPECT_EQ(from_file.size(), 64u);
  // And it sees a single changed bit.
  auto changed = params;
  uint32_t bits;
  std::memcpy(&bits, &changed[specs[3].offset], 4);
  bits ^= 1;
  std::memcpy(&changed[specs[3].offset], &bits, 4);
  EXPECT_NE(train::base_fingerprint(c, changed), from_file);
}

// merge_adapter folds every adapted projection in, and only those: W + scaling B A against the
// product computed here in plain double loops, per tensor (the streamed export merges with the
// same per-tensor function).
TEST(LoraFormats, MergeAddsScaledBTimesAToTheTargetsOnly) {
  const LlamaConfig c = small_config();
  const auto specs = nn::param_specs(c);
  const auto params = random_values(specs.back().offset + specs.back().numel, 2, 0.1f);
  for (bool rslora : {false, true}) {
    train::AdapterData a;
    a.base_config = c;
    a.lora.rank = 3;
    a.lora.alpha = 7;
    a.lora.rslora = rslora;
    a.lora.targets = nn::parse_lora_targets("q,v,down");
    const auto ls = nn::lora_param_specs(c, a.lora);
    a.tensors = random_values(ls.back().offset + ls.back().numel, 3, 0.3f);
    auto merged = params;
    train::merge_adapter(a, merged);
    const double s = rslora ? 7 / std::sqrt(3.0) : 7 / 3.0;
    std::map<std::string, std::pair<const nn::ParamSpec*, const nn::ParamSpec*>> adapted;
    for (size_t i = 0; i < ls.size(); i += 2)
      adapted[ls[i].name.substr(5, ls[i].name.size() - 7) + ".weight"] = {&ls[i], &ls[i + 1]};
    for (const auto& p : specs) {
      const auto it = adapted.find(p.name);
      for (size_t e = 0; e < p.numel; ++e) {
        double want = params[p.offset + e];
        if (it != adapted.end()) {
          const auto& [A, B] = it->second;
          const size_t in = size_t(A->shape[1]), o = e / in, j = e % in;
          double acc = 0;
          for (int k = 0; k < 3; ++k)
            acc += double(a.tensors[B->offset + o * 3 + size_t(k)]) * a.tensors[A->offset + size_t(k) * in + j];
          want += s * acc;
        }
        ASSERT_NEAR(merged[p.offset + e], want, 1e-6 * (1 + std::abs(want))) << p.name << " rslora " << rslora;
      }
    }
    EXPECT_EQ(adapted.size(), size_t(3 * c.num_hidden_layers));
  }
}

TEST(LoraFormats, PeftModuleNames) {
  EXPECT_EQ(formats::peft_module_name(nn::LoraTarget::q), "q_proj");
  EXPECT_EQ(formats::peft_module_name(nn::LoraTarget::gate), "gate_proj");
  EXPECT_EQ(formats::peft_module_name(nn::LoraTarget::down), "down_proj");
}

}  // namespace
}  // namespace bellows
