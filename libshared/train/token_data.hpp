// Training samples from token shards: tokens_pretrain (tokenize-pack --mode pretrain) or
// tokens_sft (--mode sft: packed examples with a loss mask). The shards of one split in a
// directory, checked to agree on kind, tokenizer, vocabulary and sequence length, read in a
// deterministic shuffled order per epoch, and turned into micro-batches of input ids, targets
// (-1 where an SFT loss mask excludes the token), RoPE positions and per-token attention windows
// (documents, or packed examples, never see each other).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "io/shard.hpp"

namespace bellows::train {

struct Batch {  // host arrays of B*T
  std::vector<int32_t> ids, targets, pos, doc_start;
};

enum class TokenKind { pretrain, sft };

// The order of samples 0..n-1 in epoch `epoch` of a run with `seed` (a Fisher-Yates shuffle from
// its own stream): every reader of training data walks epochs this way.
std::vector<uint64_t> epoch_order(uint64_t n, uint64_t seed, uint64_t epoch);

class TokenData {
 public:
  // The shards of `split` ("train" | "valid") under `dir` (files <split>-*.h5), or `dir` itself
  // when it is one shard file, of kind `kind`. Throws UsageError naming the directory when there
  // are none or they are of the other kind (saying which mode makes the right ones), and
  // RuntimeError naming the file when shards disagree. SFT shards with no target token at all
  // are refused (UsageError).
  TokenData(const std::string& dir, const std::string& split, TokenKind kind = TokenKind::pretrain);
  TokenKind kind() const { return kind_; }
  uint64_t num_samples() const { return total_; }
  uint64_t seq_len() const { return seq_len_; }
  uint64_t vocab_size() const { return vocab_size_; }
  const std::string& tokenizer_sha256() const { return tokenizer_sha_; }
  const std::vector<std::string>& files() const { return files_; }

  // The sample at position `k` of the endless stream epoch 0, epoch 1, ... where each epoch is a
  // permutation of all samples drawn from (seed, epoch).
  uint64_t sample_at(uint64_t k, uint64_t seed);
  // Fills rows [row0, row0 + rows) of `b` (sized for B*T) with samples first..first+rows-1 of
  // the stream (or, with shuffle false, samples first.. in file order). T <= seq_len: longer
  // samples are cut to their first T+1 tokens. doc_masking: attention and positions restart at
  // each document start stored in the shard; else one causal window over the row.
  void fill(Batch& b, int T, uint64_t first, int rows, uint64_t seed, bool shuffle, bool doc_masking);
  // How many targets (tokens the loss counts) samples first..first+rows-1 hold at length T: all
  // T per sample for pretraining, the loss-masked ones for SFT (the normaliser of a step's loss).
  uint64_t count_targets(int T, uint64_t first, uint64_t rows, uint64_t seed, bool shuffle);

 private:
  struct Shard {
    std::unique_ptr<io::ShardReader> reader;
    uint64_t first = 0, rows = 0;               // global index of its first sample, its sample count
    std::vector<uint64_t> doc_offsets;          // [rows+1]
    std::vector<uint32_t> doc_data;
  };
  struct Block {  // a run of decoded token rows (and their loss masks), kept while recently used
    size_t shard;
    uint64_t row0;
    std::vector<uint32_t> tokens;
    std::vector<uint8_t> mask;  // SFT only
  };
  const Block& block_of(size_t shard, uint64_t row);
  std::pair<size_t, uint64_t> locate(uint64_t k, uint64_t seed, bool shuffle);  // (shard, row)

  TokenKind kind_ = TokenKind::pretrain;
  std::vector<std::string> files_;
  std::vector<Shard> shards_;
  uint64_t total_ = 0, seq_len_ = 0, vocab_size_ = 0;
  std::string tokenizer_sha_;
  uint64_t perm_epoch_ = UINT64_MAX, perm_seed_ = 0;
  std::vector<uint64_t> perm_;
  std::list<Block> blocks_;  // most recent first
  uint64_t block_rows_ = 1;
};

}  // namespace bellows::train
