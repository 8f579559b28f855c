// The tokenizer.json that bellows writes for a byte-level BPE (a trained one, or one rebuilt
// from a GGUF vocabulary): Split(regex, isolated) + ByteLevel pre-tokenizer, ByteLevel decoder,
// BPE model. One definition, so every tokenizer.json we write is the same form, which both HF
// tokenizers and our loader read.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bellows::tok {

// vocab: {byte-level token: id}; merges: ["a b" or [a, b], ...]; added_tokens: HF's entries.
nlohmann::json byte_level_bpe_tokenizer_json(const std::string& regex, nlohmann::json vocab, nlohmann::json merges,
                                             nlohmann::json added_tokens, bool ignore_merges);

}  // namespace bellows::tok
