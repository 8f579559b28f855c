// dpo-align's objective over micro-batches of preference pairs (rows 2i chosen, 2i + 1 rejected;
// PreferenceData), on top of dpo_loss's per-pair losses:
//   step loss = (1/P) sum over the step's P pairs of the pair loss
//             + sft_weight * (sum of -log p over the chosen responses' tokens) / (their count)
// (the second term is RPO's NLL on the chosen side, a per-token mean as TRL's rpo_alpha). A
// pair's log-probabilities are sums over its response tokens (sigmoid, hinge) or their means
// (ipo, as TRL). The model's forward runs with grad_scale 1, which leaves d(-log p)/d logits per
// token; token n's row is then scaled by d loss / d(-log p of n) (factors()), and the ordinary
// backward carries the whole objective.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/llama.hpp"
#include "train/dpo_loss.hpp"
#include "train/parallel.hpp"
#include "train/preference_data.hpp"

namespace bellows::train {

struct DpoSettings {
  DpoLoss loss = DpoLoss::sigmoid;
  double beta = 0.1, label_smoothing = 0, sft_weight = 0;
};

// Sums over a step (or an evaluation) of what dpo-align reports; add() then divide by pairs.
struct DpoStats {
  // loss: the objective, set once the sums are complete (finish()); sft_nll: summed -log p over
  // the chosen tokens.
  double loss = 0, dpo_loss = 0, sft_nll = 0;
  double reward_chosen = 0, reward_rejected = 0, correct = 0, margin = 0;
  double logp_chosen = 0, logp_rejected = 0;  // policy, summed over response tokens (ipo: per-token means)
  double pairs = 0, chosen_tokens = 0;
  static constexpr size_t kFields = 11;
  void to(double* v) const;
  void from(const double* v);
  void add(const DpoStats& o);
  // The step's objective from complete sums: mean pair loss + sft_weight * mean chosen NLL.
  void finish(double sft_weight) {
    loss = dpo_loss / std::max(1.0, pairs) + (sft_weight > 0 ? sft_weight * sft_nll / std::max(1.0, chosen_tokens) : 0.0);
  }
};

// Per row of a micro-batch (rows x T tokens): the log-probability of its targets, -sum of
// the per-token losses where targets != -1.
std::vector<double> row_logps(const std::vector<float>& losses, const int32_t* targets, int rows, int T);

// One micro-batch's pairs: from the policy's and the reference's row log-probabilities (summed),
// the rows' target counts and the step's totals (pairs, chosen tokens: the normalisers), adds
// the pairs' terms to `stats` and, when factors is given, writes the per-token gradient weights
// ([rows x T]; 0 where targets == -1).
void dpo_micro_batch(const DpoSettings& s, const std::vector<double>& policy, const std::vector<double>& reference,
                     const std::vector<PairRow>& rows, const int32_t* targets, int T, double step_pairs,
                     double step_chosen_tokens, DpoStats& stats, std::vector<float>* factors);

// Reference log-probabilities computed once per run (--precompute-ref), by pair index.
struct ReferenceLogps {
  std::vector<double> chosen, rejected;  // summed over the response tokens fitted into seq_len
  uint64_t seq_len = 0;
  std::string tokenizer_sha256, data_sha256, reference_fingerprint;
};
void write_reference_logps(const std::string& path, const ReferenceLogps& r, const std::vector<PairRow>& chosen_rows,
                           const std::vector<PairRow>& rejected_rows, const std::string& tool);
// RuntimeError naming the file when unreadable; the caller compares the recorded keys.
ReferenceLogps read_reference_logps(const std::string& path);

// Forward passes (no gradients) of pairs first..first+count-1 of `data` in file order, in
// micro-batches of `micro` pairs (the model's batch is 2 * micro rows) dealt round-robin to the
// data-parallel replicas, through the pipeline. Returns every pair's row log-probabilities
// (summed over its response tokens) and rows, on every rank. Collective over the world.
// `model` runs as it is set up (the caller switches a LoRA model into its reference pass).
struct PairLogps {
  std::vector<double> chosen, rejected;
  std::vector<PairRow> chosen_rows, rejected_rows;
};
PairLogps pair_logps(nn::LlamaModel& model, ParallelState& ps, PreferenceData& data, int T, int micro, uint64_t first,
                     uint64_t count);
// The DPO terms of pairs from log-probabilities of the policy and the reference (evaluation).
DpoStats dpo_stats(const DpoSettings& s, const PairLogps& policy, const std::vector<double>& ref_chosen,
                   const std::vector<double>& ref_rejected);

}  // namespace bellows::train
