// A tokenizer loaded from what people have: an HF tokenizer.json (byte-level BPE: GPT-2, Llama 3,
// Qwen2, SmolLM), a tiktoken rank file, or a SentencePiece model (Llama 2 style, through Debian's
// libsentencepiece). Ids are those of the reference implementations (tests compare with HF
// tokenizers, tiktoken and sentencepiece, document by document).
//
// Pipeline: invalid UTF-8 is replaced by U+FFFD per maximal subpart (as Python decodes it);
// added/special tokens are matched first when allowed; each remaining stretch is normalised
// (NFC where the tokenizer asks), pre-tokenised (regex splits, byte-level prefix space), and each
// piece is BPE-encoded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tok/bpe.hpp"
#include "tok/regex_split.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace bellows::tok {

struct SpecialToken {
  std::string content;
  uint32_t id = 0;
  bool special = true;  // false: an added (non-special) token, still matched whole
};

// "TOKEN=ID" (tokenize-pack's --special-token) as a special token; UsageError naming `what`
// for anything else.
SpecialToken parse_special_token(const std::string& s, const std::string& what);

struct LoadOptions {
  std::string pattern = "cl100k";              // tiktoken files: pre-tokenizer (name or regex)
  std::vector<SpecialToken> extra_specials;    // tiktoken files: special tokens and their ids
};

class Tokenizer {
 public:
  // By content: a JSON object with a "model" is a tokenizer.json, lines of "base64 rank" a
  // tiktoken file. Throws UsageError naming the file and what is wrong or unsupported.
  static Tokenizer load(const std::string& path, const LoadOptions& opt = {});

  // Appends the ids of `text` (any bytes). With allow_special, added/special token strings in
  // the text become their ids; otherwise they are plain text.
  void encode(std::string_view text, bool allow_special, std::vector<uint32_t>& out) const;
  // The bytes of the ids, concatenated. Throws RuntimeError for an id outside the vocabulary.
  std::string decode(const std::vector<uint32_t>& ids) const;

  uint32_t vocab_size() const { return vocab_size_; }  // 1 + the largest id
  std::optional<uint32_t> bos_id() const { return bos_; }
  std::optional<uint32_t> eos_id() const { return eos_; }
  // For tokenizers whose files do not name them (tiktoken files, tokenizer.json alone).
  void set_bos(uint32_t id) { bos_ = id; }
  void set_eos(uint32_t id) { eos_ = id; }
  std::optional<uint32_t> token_id(std::string_view content) const;  // special/added or vocab token
  const std::string& sha256() const { return sha256_; }  // of the tokenizer file
  const std::string& kind() const { return kind_; }      // "tokenizer.json" | "tiktoken" | "sentencepiece"
  const std::string& path() const { return path_; }
  // The SentencePiece model behind a "sentencepiece" tokenizer (nullptr for the others).
  const sentencepiece::SentencePieceProcessor* sentencepiece() const { return sp_.get(); }

 private:
  struct PreStep {
    enum class Kind { split, byte_level } kind = Kind::split;
    std::shared_ptr<RegexSplitter> regex;  // split, or byte_level with use_regex
    bool keep_gaps = true;
    bool add_prefix_space = false;
  };
  void encode_plain(std::string_view text, std::vector<uint32_t>& out) const;

  std::string path_, kind_, sha256_;
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;  // set for SentencePiece models
  BpeModel bpe_;
  bool nfc_ = false;
  std::vector<PreStep> pre_;
  std::vector<SpecialToken> specials_;  // longest first, for matching
  std::map<uint32_t, std::string> special_bytes_;
  uint32_t vocab_size_ = 0;
  std::optional<uint32_t> bos_, eos_;
  // Pieces already encoded, and scratch space reused from call to call: encode() is not
  // thread-safe (one Tokenizer per thread).
  mutable PieceCache piece_cache_;
  mutable std::vector<std::string_view> pieces_, next_pieces_;
  mutable std::vector<PieceKey> piece_keys_;
};

}  // namespace bellows::tok
