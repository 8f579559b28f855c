// Byte-level BPE: token ids over raw bytes, merged pair by pair in priority order.
//
// One model serves both sources: an HF tokenizer.json (priority = index in the merges list, a
// pair merges only if listed) and a tiktoken rank file (priority = rank of the concatenation,
// any two tokens whose concatenation is a token merge). Both merge the lowest-priority adjacent
// pair first, the leftmost on ties, which is what tokenizers and tiktoken do.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tok/flat_tables.hpp"

namespace bellows::tok {

// Hash for maps of byte strings that can be searched with a string_view (no temporary string).
struct BytesHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept;
};
template <class V>
using BytesMap = std::unordered_map<std::string, V, BytesHash, std::equal_to<>>;

struct BpeModel {
  std::vector<std::string> id_to_bytes;               // by id; empty for ids without a BPE token
  // Filled by the loaders: (left << 32 | right) -> (priority, merged); where a pair is listed
  // twice the first listing counts. finish() moves them into the flat table and empties this.
  std::vector<std::pair<uint64_t, std::pair<uint32_t, uint32_t>>> merges;
  uint32_t byte_id[256] = {};                          // the token of each single byte
  // A piece that is itself a token is emitted whole before any merging (tiktoken always does
  // this; HF only with ignore_merges, as Llama 3's tokenizer.json sets).
  bool whole_piece_first = false;

  // Builds the bytes -> id table from id_to_bytes (loaders need it to resolve merges); where
  // two ids have the same bytes the lower id is found. finish() calls it if no loader did.
  void index_tokens();
  // Checks that every byte has a token (UsageError naming `what` otherwise) and builds the flat
  // lookup tables used while encoding; call once id_to_bytes and merges are complete.
  void finish(const std::string& what);
  int64_t find_bytes(std::string_view s) const { return bytes_table_.find(s); }
  const BytesTable& bytes_table() const { return bytes_table_; }
  // Pieces up to this many bytes take the allocation-free merge path.
  static constexpr size_t kShortPiece = 128;
  // Appends the ids of one pre-tokenised piece.
  void encode_piece(std::string_view piece, std::vector<uint32_t>& out) const;
  // The same by the definition, slowly (every pair looked up again after every merge): the
  // reference the fast paths are tested against.
  void encode_piece_reference(std::string_view piece, std::vector<uint32_t>& out) const;

 private:
  PairTable pair_table_;
  BytesTable bytes_table_;
  bool indexed_ = false;
  // The encoding of each two-byte piece (index b0 << 8 | b1): one id, or kTwoByteIds for the
  // two byte tokens. Filled by finish().
  static constexpr uint32_t kTwoByteIds = UINT32_MAX;
  std::vector<uint32_t> two_bytes_;
};

// GPT-2's reversible byte <-> printable code point mapping used by byte-level vocabularies.
const std::string& byte_to_unicode(unsigned char b);  // UTF-8 of the code point for byte b
// Decodes a byte-level vocabulary string into raw bytes; false if a character is not in the
// byte-level alphabet.
bool unicode_to_bytes(std::string_view token, std::string& out);

}  // namespace bellows::tok
