// Training a byte-level BPE (--train-vocab-size): pieces are counted after the same regex
// pre-tokenisation the tokenizer will use (cl100k or GPT-2 style); merges are learned greedily
// by pair frequency (ties broken by the pair's bytes, so training is deterministic); the result
// is written as an HF tokenizer.json (Split + ByteLevel, BPE, merges as pairs) that HF tokenizers
// loads and tokenize-pack then uses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tok/regex_split.hpp"

namespace bellows::tok {

struct BpeTrainOptions {
  size_t vocab_size = 32000;                             // bytes + merges + special tokens
  std::string pattern = "cl100k";                         // name or regex
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  uint64_t min_frequency = 2;                             // a pair seen fewer times is never merged
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainOptions opt);
  // Pre-tokenises `text` (valid UTF-8) and counts its pieces.
  void add_text(std::string_view text);
  // Piece counts, to merge those of several ranks: serialised and added back.
  std::string serialize_counts() const;
  void add_counts(std::string_view serialized);
  // Learns the merges; returns how many. Stops early when no pair is seen min_frequency times.
  size_t train();
  // Tokens of the trained vocabulary, special tokens included.
  size_t vocab_size() const { return tokens_.size() + opt_.special_tokens.size(); }
  // Writes tokenizer.json, and tokenizer_config.json naming the first special token as EOS.
  void write(const std::string& tokenizer_json, const std::string& tokenizer_config) const;

 private:
  BpeTrainOptions opt_;
  RegexSplitter splitter_;
  std::unordered_map<std::string, uint64_t> counts_;
  std::vector<std::pair<std::string, std::string>> merges_;  // raw bytes of left, right
  std::vector<std::string> tokens_;                           // id -> raw bytes
};

}  // namespace bellows::tok
