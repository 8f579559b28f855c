// Pretraining samples from tokens_pretrain shards (tokenize-pack --mode pretrain): the shards of
// one split in a directory, checked to agree on tokenizer, vocabulary and sequence length, read
// in a deterministic shuffled order per epoch, and turned into micro-batches of input ids,
// targets, RoPE positions and per-token attention windows.
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

class TokenData {
 public:
  // The shards of `split` ("train" | "valid") under `dir` (files <split>-*.h5), or `dir` itself
  // when it is one shard file. Throws UsageError naming the directory when there are none, and
  // RuntimeError naming the file when shards disagree.
  TokenData(const std::string& dir, const std::string& split);
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

 private:
  struct Shard {
    std::unique_ptr<io::ShardReader> reader;
    uint64_t first = 0, rows = 0;               // global index of its first sample, its sample count
    std::vector<uint64_t> doc_offsets;          // [rows+1]
    std::vector<uint32_t> doc_data;
  };
  struct Block {  // a run of decoded token rows, kept while recently used
    size_t shard;
    uint64_t row0;
    std::vector<uint32_t> tokens;
  };
  const uint32_t* row_tokens(size_t shard, uint64_t row);

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
