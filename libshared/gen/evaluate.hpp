// Mean next-token loss (and so perplexity) of a model over token shards, computed the way
// training computes it: nn::LlamaModel's forward on micro-batches of samples in file order, with
// attention and positions restarting at the document starts the shards store.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "train/token_data.hpp"

namespace bellows::gen {

struct EvalResult {
  double loss = 0;       // mean over `tokens`
  uint64_t tokens = 0;   // predicted tokens
  uint64_t samples = 0;
  // Entropy (nats) of the evaluated targets' own token frequencies: the loss of a model that
  // knows nothing but how often each token occurs here (told the answer's frequencies, even).
  // A loss clearly below it means the model uses context.
  double unigram_entropy = 0;
};

// params: a checkpoint's params vector (param_specs order). T: tokens per sample (<= the
// shards' seq_len; longer samples are cut to their first T+1). max_samples 0: all. The last
// micro-batch may be partly filled: its empty rows carry no targets.
EvalResult evaluate(const nn::LlamaConfig& cfg, const std::vector<float>& params, nn::Backend& be,
                    train::TokenData& data, int batch, int T, uint64_t max_samples, bool doc_masking);

}  // namespace bellows::gen
