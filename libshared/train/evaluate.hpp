// Mean next-token loss (and so perplexity) of a model over token shards, computed the way
// training computes it: nn::LlamaModel's forward on micro-batches of samples in file order, with
// attention and positions restarting at the document starts the shards store. pretrain's
// validation and lm-generate --eval both use it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"
#include "train/token_data.hpp"

namespace bellows::train {

struct EvalResult {
  double loss = 0;       // mean over `tokens`
  uint64_t tokens = 0;   // predicted tokens
  uint64_t samples = 0;
  // Entropy (nats) of the evaluated targets' own token frequencies: the loss of a model that
  // knows nothing but how often each token occurs here (told the answer's frequencies, even).
  // A loss clearly below it means the model uses context.
  double unigram_entropy = 0;
};

// Scores the first `max_samples` samples (0: all) with `model` as it is, at its B x T (samples
// longer than T are cut to their first T+1 tokens). `b` is the caller's host batch, sized for
// B*T. The last micro-batch may be partly filled: its empty rows carry no targets. `on_rows` is
// called with the rows scored after each micro-batch (progress, interruption).
EvalResult evaluate(nn::LlamaModel& model, TokenData& data, Batch& b, uint64_t max_samples, bool doc_masking,
                    const std::function<void(uint64_t)>& on_rows = {});

// The same for a model trained across ranks (collective over ps.world()): the micro-batches are
// dealt round-robin to the data-parallel replicas, each runs them through its pipeline, and the
// sums are combined. Every rank gets the result.
class ParallelState;
EvalResult evaluate_parallel(nn::LlamaModel& model, ParallelState& ps, TokenData& data, Batch& b, uint64_t max_samples,
                             bool doc_masking);

// The same with a model built for it from a checkpoint's params (param_specs order), micro-batch
// `batch` (no larger than the work), length T; shows progress and honours Ctrl-C.
EvalResult evaluate(const nn::LlamaConfig& cfg, const std::vector<float>& params, nn::Backend& be, TokenData& data,
                    int batch, int T, uint64_t max_samples, bool doc_masking);

}  // namespace bellows::train
