// A model's tokenizer in each format ckpt-convert writes or reads: HF's tokenizer.json +
// tokenizer_config.json (copied from the run when it has them) and GGUF's tokenizer.ggml.* keys
// (byte-level BPE as llama.cpp's "gpt2" model: tokens by id, token types, merges, and the
// pre-tokenizer's name, which llama.cpp maps to its own copy of the regex).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace bellows::formats {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum GgufTokenType : int32_t { kTokNormal = 1, kTokUnknown = 2, kTokControl = 3, kTokUserDefined = 4, kTokUnused = 5, kTokByte = 6 };

struct GgufVocab {
  std::string model = "gpt2";  // byte-level BPE; "llama" for SentencePiece
  std::string pre;             // llama.cpp's pre-tokenizer name: llama-bpe, gpt-2, gpt-4o
  std::vector<std::string> tokens;  // by id, byte-level strings; [vocab_size] entries
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // "left right" (gpt2)
  std::vector<float> scores;        // SentencePiece piece scores (llama)
  std::optional<bool> add_space_prefix;  // llama: SentencePiece's add_dummy_prefix
  std::optional<uint32_t> bos, eos, pad, unk;
  bool add_bos = false;
  std::string chat_template;
};

// The llama.cpp pre-tokenizer name of a regex (our pattern names' regexes), or "" if llama.cpp
// has no pre-tokenizer known to split exactly so.
std::string gguf_pre_of_pattern(const std::string& regex);
// The inverse: the regex of a llama.cpp pre-tokenizer name, or "" when unsupported.
std::string pattern_of_gguf_pre(const std::string& pre);

// tokenizer.json (+ its tokenizer_config.json, may be null) -> GGUF vocabulary padded to
// vocab_size with unused "[PAD<id>]" tokens. bos/eos: the ids the run resolved (may be unset).
// UsageError naming `what` for tokenizers GGUF's gpt2 model cannot express.
GgufVocab gguf_vocab_from_tokenizer_json(const nlohmann::json& tj, const nlohmann::json& tokenizer_config,
                                         int64_t vocab_size, std::optional<uint32_t> bos, std::optional<uint32_t> eos,
                                         const std::string& what);
// A SentencePiece BPE model (Llama 2 style) -> llama.cpp's "llama" vocabulary: pieces, scores,
// token types, add_space_prefix. UsageError naming `what` for models llama.cpp would tokenize
// differently (unigram models, remove_extra_whitespaces, a normalization rule other than
// identity) or for more pieces than the model's vocab_size.
GgufVocab gguf_vocab_from_sentencepiece(const sentencepiece::SentencePieceProcessor& sp, int64_t vocab_size,
                                        const nlohmann::json& tokenizer_config, const std::string& what);
// The tokenizer.ggml.* metadata entries of a vocabulary.
void append_gguf_vocab(const GgufVocab& v, GgufMetadata& md);

// The other way: a GGUF's tokenizer.ggml.* keys -> tokenizer.json and tokenizer_config.json.
// RuntimeError naming the file for a tokenizer that is missing, malformed or not byte-level BPE
// with a known pre-tokenizer.
struct HfTokenizerFiles {
  nlohmann::json tokenizer_json, tokenizer_config;
  std::string eos_token, bos_token;  // contents, "" when the GGUF names none
};
HfTokenizerFiles tokenizer_json_from_gguf(const GgufReader& r);
// "gpt2" or "llama": which of the two a GGUF's tokenizer is (RuntimeError naming the file when
// it has none or another).
std::string gguf_tokenizer_model(const GgufReader& r);

// A GGUF's "llama" (SentencePiece) vocabulary -> a SentencePiece BPE model (serialized
// ModelProto: pieces with scores and types, byte fallback when it has byte pieces, identity
// normalisation, add_dummy_prefix from add_space_prefix, the special ids). RuntimeError naming
// the file for a vocabulary SentencePiece cannot load.
struct SentencePieceFile {
  std::string model;                 // the .model file's bytes
  std::string bos_token, eos_token;  // pieces, "" when none
};
SentencePieceFile sentencepiece_model_from_gguf(const GgufReader& r);

// tokenizer_config.json for an HF export: the run's own (may be null) with what transformers
// needs filled in where missing (tokenizer_class, bos/eos tokens, model_max_length).
nlohmann::json hf_tokenizer_config(const nlohmann::json& run_config, const std::string& bos_token,
                                   const std::string& eos_token, int64_t model_max_length);

}  // namespace bellows::formats
