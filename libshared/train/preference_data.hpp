// Preference pairs for dpo-align from tokens_preference shards (tokenize-pack --mode
// preference): each pair becomes two rows of a micro-batch, chosen at row 2i and rejected at row
// 2i + 1, each the shared prompt followed by that response, with targets only on the response
// (the prompt is masked; so is the padding after it). Pairs are read whole into memory when the
// data is opened (preference sets are small next to pretraining corpora) and walked in a
// deterministic shuffled order per epoch, like TokenData's samples.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/token_data.hpp"

namespace bellows::train {

// What a row of a pair holds once fitted into T positions.
struct PairRow {
  uint64_t pair = 0;     // the pair's index in the data (shard files by name, then order)
  uint32_t targets = 0;  // response tokens the loss counts (the sum of log-probs runs over these)
  bool truncated = false;
};

class PreferenceData {
 public:
  // The tokens_preference shards under `dir` (*.h5 files of that kind), or `dir` itself when it
  // is one shard file. UsageError naming the directory when there are none (or they are another
  // kind, saying which mode makes them); RuntimeError naming the file and pair for a pair with an
  // empty side or shards that disagree on the tokenizer.
  explicit PreferenceData(const std::string& dir);
  uint64_t num_pairs() const { return pairs_; }
  uint64_t vocab_size() const { return vocab_size_; }
  const std::string& tokenizer_sha256() const { return tokenizer_sha_; }
  const std::vector<std::string>& files() const { return files_; }
  int32_t pad_id() const { return pad_id_; }
  // SHA-256 over every pair's prompt, chosen and rejected tokens, in order (what precomputed
  // reference log-probabilities are valid for).
  std::string content_sha256() const;
  // The longest prompt + response of any pair, in tokens (rows of T + 1 tokens hold it whole).
  uint64_t longest() const { return longest_; }
  // Pairs (of all) that do not fit T + 1 tokens: their prompt's start (at most down to half the
  // row) and then their responses' end are cut.
  uint64_t truncated_pairs(int T) const;

  // The pair at position k of the endless stream epoch 0, epoch 1, ... (shuffle false: k mod n).
  uint64_t pair_at(uint64_t k, uint64_t seed, bool shuffle);
  // Rows [2 * pair0, 2 * (pair0 + pairs)) of b (sized for B*T, B >= 2 * (pair0 + pairs)) with
  // the stream's pairs first..first+pairs-1; rows_out (when given) gets each row's PairRow.
  void fill(Batch& b, int T, uint64_t first, int pairs, uint64_t seed, bool shuffle, std::vector<PairRow>* rows_out = nullptr);
  // The rows of pair `index` (not a stream position), fitted into T.
  PairRow row_of(uint64_t index, int side, int T) const;

 private:
  struct Ragged {
    std::vector<uint32_t> data;
    std::vector<uint64_t> offsets;  // [pairs + 1]
    const uint32_t* at(uint64_t i) const { return data.data() + offsets[i]; }
    uint64_t len(uint64_t i) const { return offsets[i + 1] - offsets[i]; }
  };
  // How many prompt tokens (from its end) and response tokens a side keeps within T + 1.
  void fit(uint64_t i, int T, uint64_t& keep_prompt, uint64_t& keep_chosen, uint64_t& keep_rejected) const;
  std::vector<std::string> files_;
  Ragged prompt_, chosen_, rejected_;
  uint64_t pairs_ = 0, vocab_size_ = 0, longest_ = 0;
  std::string tokenizer_sha_;
  int32_t pad_id_ = 0;
  uint64_t perm_epoch_ = UINT64_MAX, perm_seed_ = 0;
  std::vector<uint64_t> perm_;
};

}  // namespace bellows::train
