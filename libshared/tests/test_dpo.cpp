// dpo-align's data and objective: preference pairs become chosen/rejected rows with the prompt
// masked and a shared truncation; the per-token gradient weights are the objective's derivative
// (finite differences on row log-probabilities); and through a LoRA and a full model the
// reweighed backward gives the gradient of the whole DPO objective (finite differences on the
// parameters, reference backend). Against PyTorch with TRL's formulas: tests/bats/dpo_reference.bats.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "io/shard.hpp"
#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "nn/rng.hpp"
#include "test_util.hpp"
#include "train/dpo.hpp"
#include "train/preference_data.hpp"

using namespace bellows;
using namespace bellows::train;
using bellows::testing::TempDir;
using bellows::testing::runtime_error_of;

namespace {

struct RawPair {
  std::vector<uint32_t> prompt, chosen, rejected;
};

void write_pairs(const std::string& path, const std::vector<RawPair>& pairs, const std::string& sha = "abc") {
  io::Provenance prov;
  prov.tool = "unit-test";
  io::ShardWriter w(path, "tokens_preference", prov);
  {
    io::RaggedColumn<uint32_t> p(w, "prompt"), c(w, "chosen"), r(w, "rejected");
    for (const auto& x : pairs) {
      p.add(x.prompt.data(), x.prompt.size());
      c.add(x.chosen.data(), x.chosen.size());
      r.add(x.rejected.data(), x.rejected.size());
    }
  }
  w.set_attr("num_pairs", uint64_t(pairs.size()));
  w.set_attr("vocab_size", uint64_t{50});
  w.set_attr("tokenizer_sha256", sha);
  w.set_attr("eos_id", int64_t{2});
  w.close();
}

Batch batch_for(int rows, int T) {
  Batch b;
  for (auto* v : {&b.ids, &b.targets, &b.pos, &b.doc_start}) v->assign(size_t(rows) * size_t(T), 7);
  return b;
}

}  // namespace

// Rows 2i / 2i+1: prompt then response, targets only on response tokens, padding after; the
// target count per row is what fill reports and row_of computes.
TEST(PreferenceData, RowsMaskThePromptAndPad) {
  TempDir t;
  write_pairs(t / "a.h5", {{{10, 11, 12}, {20, 21, 2}, {30, 2}}, {{13}, {22, 2}, {31, 32, 33, 2}}});
  PreferenceData d(t.path());
  ASSERT_EQ(d.num_pairs(), 2u);
  EXPECT_EQ(d.longest(), 6u);
  const int T = 6;
  Batch b = batch_for(4, T);
  std::vector<PairRow> rows;
  d.fill(b, T, 0, 2, 0, false, &rows);
  ASSERT_EQ(rows.size(), 4u);
  // pair 0, chosen: 10 11 12 20 21 2 -> inputs 10 11 12 20 21 2, targets - - 20 21 2 -
  EXPECT_EQ(std::vector<int32_t>(b.ids.begin(), b.ids.begin() + T), (std::vector<int32_t>{10, 11, 12, 20, 21, 2}));
  EXPECT_EQ(std::vector<int32_t>(b.targets.begin(), b.targets.begin() + T), (std::vector<int32_t>{-1, -1, 20, 21, 2, -1}));
  EXPECT_EQ(rows[0].targets, 3u);
  // pair 0, rejected: 10 11 12 30 2 [pad]
  EXPECT_EQ(std::vector<int32_t>(b.ids.begin() + T, b.ids.begin() + 2 * T), (std::vector<int32_t>{10, 11, 12, 30, 2, 2}));
  EXPECT_EQ(std::vector<int32_t>(b.targets.begin() + T, b.targets.begin() + 2 * T), (std::vector<int32_t>{-1, -1, 30, 2, -1, -1}));
  EXPECT_EQ(rows[1].targets, 2u);
  EXPECT_EQ(rows[3].targets, 4u);
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(rows[r].pair, r / 2);
    EXPECT_EQ(rows[r].targets, d.row_of(r / 2, int(r % 2), T).targets);
    for (int t = 0; t < T; ++t) {
      EXPECT_EQ(b.pos[r * T + size_t(t)], t);
      EXPECT_EQ(b.doc_start[r * T + size_t(t)], 0);
    }
  }
  EXPECT_EQ(d.truncated_pairs(T), 0u);
  EXPECT_EQ(d.truncated_pairs(3), 2u);
}

// Too long for T + 1: both sides keep the same prompt tokens (its end, at least half the row),
// then lose their responses' end.
TEST(PreferenceData, TruncationKeepsTheSharedPromptEnd) {
  TempDir t;
  write_pairs(t / "a.h5", {{{1, 3, 4, 5, 6, 7}, {20, 21, 22, 23, 24, 25, 2}, {30, 2}}});
  PreferenceData d(t / "a.h5");
  const int T = 7;  // room 8: prompt keeps 4 (half), chosen 4 of 7, rejected both
  Batch b = batch_for(2, T);
  std::vector<PairRow> rows;
  d.fill(b, T, 0, 1, 0, false, &rows);
  EXPECT_EQ(std::vector<int32_t>(b.ids.begin(), b.ids.begin() + T), (std::vector<int32_t>{4, 5, 6, 7, 20, 21, 22}));
  EXPECT_EQ(std::vector<int32_t>(b.targets.begin(), b.targets.begin() + T), (std::vector<int32_t>{-1, -1, -1, 20, 21, 22, 23}));
  EXPECT_EQ(std::vector<int32_t>(b.ids.begin() + T, b.ids.begin() + 2 * T), (std::vector<int32_t>{4, 5, 6, 7, 30, 2, 2}));
  EXPECT_TRUE(rows[0].truncated);
  EXPECT_TRUE(rows[1].truncated);  // its prompt lost its start
  EXPECT_EQ(rows[0].targets, 4u);
  EXPECT_EQ(rows[1].targets, 2u);
}

TEST(PreferenceData, ShuffleIsAPermutationPerEpochAndRefusals) {
  TempDir t;
  std::vector<RawPair> pairs;
  for (uint32_t i = 0; i < 9; ++i) pairs.push_back({{i + 3}, {20, 2}, {30, 2}});
  write_pairs(t / "a.h5", pairs);
  PreferenceData d(t.path());
  std::vector<int> seen(9, 0);
  for (uint64_t k = 0; k < 9; ++k) ++seen[d.pair_at(k, 5, true)];
  EXPECT_EQ(seen, std::vector<int>(9, 1));
  PreferenceData again(t.path());
  for (uint64_t k = 0; k < 27; ++k) EXPECT_EQ(d.pair_at(k, 5, true), again.pair_at(k, 5, true));
  EXPECT_EQ(d.content_sha256(), again.content_sha256());

  // An empty side, another tokenizer, and a directory without preference shards.
  TempDir e;
  write_pairs(e / "a.h5", {{{3}, {}, {30, 2}}});
  EXPECT_NE(runtime_error_of([&] { PreferenceData x(e.path()); }).find("pair 0 has an empty chosen response"), std::string::npos);
  TempDir m;
  write_pairs(m / "a.h5", {{{3}, {20, 2}, {30, 2}}});
  write_pairs(m / "b.h5", {{{3}, {20, 2}, {30, 2}}}, "other");
  EXPECT_NE(runtime_error_of([&] { PreferenceData x(m.path()); }).find("the shards of one run must agree"), std::string::npos);
  TempDir none;
  try {
    PreferenceData x(none.path());
    FAIL() << "no shards accepted";
  } catch (const UsageError& err) {
    EXPECT_NE(std::string(err.what()).find("tokenize-pack --mode preference"), std::string::npos) << err.what();
  }
}

namespace {

// The objective of rows (pairs) as a function of the policy's row log-probabilities.
double objective(const DpoSettings& s, const std::vector<double>& pol, const std::vector<double>& ref,
                 const std::vector<PairRow>& rows) {
  DpoStats st;
  std::vector<int32_t> targets(rows.size(), 0);
  double chosen = 0;
  for (size_t i = 0; i < rows.size(); i += 2) chosen += rows[i].targets;
  dpo_micro_batch(s, pol, ref, rows, targets.data(), 1, double(rows.size() / 2), chosen, st, nullptr);
  st.finish(s.sft_weight);
  return st.loss;
}

std::vector<DpoSettings> all_settings() {
  std::vector<DpoSettings> v;
  for (DpoLoss k : {DpoLoss::sigmoid, DpoLoss::ipo, DpoLoss::hinge})
    for (double sft : {0.0, 0.5}) {
      v.push_back({k, 0.3, 0.0, sft});
      if (k == DpoLoss::sigmoid) v.push_back({k, 0.3, 0.15, sft});
    }
  return v;
}

}  // namespace

// The weight of a token's d(-log p)/d logits is d objective / d(-log p of its row): finite
// differences of the objective in the row log-probabilities (one target per row position, T = 1).
TEST(DpoObjective, TokenWeightsAreTheObjectivesDerivative) {
  const std::vector<double> pol = {-10.0, -12.5, -7.0, -6.0}, ref = {-11.0, -12.0, -7.5, -5.0};
  std::vector<PairRow> rows(4);
  const uint32_t n[4] = {3, 5, 2, 4};
  for (size_t i = 0; i < 4; ++i) rows[i].targets = n[i];
  for (const DpoSettings& s : all_settings()) {
    std::vector<float> f;
    DpoStats st;
    std::vector<int32_t> targets(4, 0);
    dpo_micro_batch(s, pol, ref, rows, targets.data(), 1, 2.0, 5.0, st, &f);
    for (size_t r = 0; r < 4; ++r) {
      auto p = pol;
      const double h = 1e-5;
      p[r] += h;
      const double up = objective(s, p, ref, rows);
      p[r] -= 2 * h;
      const double down = objective(s, p, ref, rows);
      // d objective / d(-logp) = -d objective / d logp
      EXPECT_NEAR(f[r], -(up - down) / (2 * h), 1e-6) << to_string(s.loss) << " e " << s.label_smoothing << " sft "
                                                       << s.sft_weight << " row " << r;
    }
    // Rows past the prompt (target -1) carry no weight.
    targets[2] = -1;
    dpo_micro_batch(s, pol, ref, rows, targets.data(), 1, 2.0, 5.0, st, &f);
    EXPECT_EQ(f[2], 0.0f);
  }
}

namespace {

nn::LlamaConfig tiny_cfg() {
  nn::LlamaConfig c = nn::preset("tiny", 50);
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.num_hidden_layers = 2;
  return c;
}

// Pairs of several lengths (prompt masking and padding matter), as PreferenceData lays them out.
Batch pair_batch(int T, std::vector<PairRow>& rows) {
  TempDir t;
  write_pairs(t / "a.h5", {{{1, 5, 6}, {7, 8, 9, 2}, {10, 2}}, {{1, 11}, {12, 2}, {13, 14, 15, 16, 2}}});
  PreferenceData d(t.path());
  Batch b = batch_for(4, T);
  d.fill(b, T, 0, 2, 0, false, &rows);
  return b;
}

struct DpoRun {
  double loss = 0;
  std::vector<float> grads;
};

// One DPO step's objective and trainable gradient, the way the trainer runs it: the reference
// forward (the base with adapters off for LoRA; a frozen copy for a full model), then the
// policy's forward with grad_scale 1, the reweighing, and the backward.
DpoRun dpo_run(nn::Backend& be, const DpoSettings& s, bool lora, const std::vector<float>& trainable) {
  const int T = 8;
  const nn::LlamaConfig c = tiny_cfg();
  nn::LoraConfig l;
  l.rank = 2;
  l.alpha = 4;
  l.targets = nn::parse_lora_targets("q,v,down");
  std::vector<PairRow> rows;
  Batch b = pair_batch(T, rows);
  nn::LlamaModel policy(c, be, 4, T, nn::Recompute::none, {}, lora ? &l : nullptr);
  policy.init_weights(3);
  be.upload(policy.trainable_data(), trainable.data(), trainable.size());
  be.zero(policy.trainable_grad(), policy.num_trainable());
  policy.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data());
  std::vector<double> ref;
  if (lora) {
    policy.set_reference_adapters(true, nullptr);
    policy.forward(0.0f);
    ref = row_logps(policy.host_losses(), b.targets.data(), 4, T);
    policy.set_reference_adapters(false);
  } else {
    nn::LlamaModel frozen(c, be, 4, T, nn::Recompute::none, {}, nullptr, true);
    frozen.init_weights(3);
    EXPECT_EQ(frozen.grad_data(), nullptr);
    frozen.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data());
    frozen.forward(0.0f);
    ref = row_logps(frozen.host_losses(), b.targets.data(), 4, T);
  }
  policy.forward(1.0f);
  const auto pol = row_logps(policy.host_losses(), b.targets.data(), 4, T);
  DpoStats st;
  std::vector<float> f;
  dpo_micro_batch(s, pol, ref, rows, b.targets.data(), T, 2.0, double(rows[0].targets + rows[2].targets), st, &f);
  st.finish(s.sft_weight);
  policy.scale_logit_grads(f.data());
  policy.backward();
  DpoRun r;
  r.loss = st.loss;
  r.grads.resize(policy.num_trainable());
  be.download(r.grads.data(), policy.trainable_grad(), r.grads.size());
  return r;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-12);
}

}  // namespace

// Through the model: the reweighed backward is the gradient of the DPO objective, for adapters
// (reference: the base alone) and for every weight (reference: a frozen copy), every loss.
TEST(DpoObjective, ModelGradientsMatchFiniteDifferences) {
  auto ref_be = nn::make_ref_backend();
  auto cpu_be = nn::make_cpu_backend(2);
  for (bool lora : {true, false}) {
    // Trainable values away from the reference: adapters with non-zero B; a full model nudged.
    size_t n;
    std::vector<float> base;
    {
      nn::LoraConfig l;
      l.rank = 2;
      l.alpha = 4;
      l.targets = nn::parse_lora_targets("q,v,down");
      nn::LlamaModel m(tiny_cfg(), *ref_be, 4, 8, nn::Recompute::none, {}, lora ? &l : nullptr);
      m.init_weights(3);
      n = m.num_trainable();
      base.resize(n);
      ref_be->download(base.data(), m.trainable_data(), n);
    }
    nn::Rng rng(9, "nudge");
    for (auto& x : base) x = lora ? float(0.3 * rng.normal()) : x + float(0.05 * rng.normal());
    for (const DpoSettings& s : all_settings()) {
      const DpoRun r = dpo_run(*ref_be, s, lora, base);
      std::vector<float> fd, an;
      for (size_t j = 0; j < 6; ++j) {
        const size_t i = (j * 7919 + 13) % n;
        auto p = base;
        const double h = 2e-3;
        p[i] = base[i] + float(h);
        const double up = dpo_run(*ref_be, s, lora, p).loss;
        p[i] = base[i] - float(h);
        const double down = dpo_run(*ref_be, s, lora, p).loss;
        fd.push_back(float((up - down) / (2 * h)));
        an.push_back(r.grads[i]);
      }
      EXPECT_LT(rel_err(an, fd), 2e-2) << (lora ? "lora " : "full ") << to_string(s.loss) << " e " << s.label_smoothing
                                       << " sft " << s.sft_weight << ": " << ::testing::PrintToString(an) << " vs "
                                       << ::testing::PrintToString(fd);
      const DpoRun fast = dpo_run(*cpu_be, s, lora, base);
      EXPECT_NEAR(fast.loss, r.loss, 1e-5 * std::max(1.0, std::abs(r.loss)));
      EXPECT_LT(rel_err(fast.grads, r.grads), 1e-4);
    }
  }
}
