// Open-addressing hash tables for the two lookups on the tokenizer's hot path: a pair of token
// ids -> (merge priority, merged id), and a piece's bytes -> token id. Flat arrays with linear
// probing keep a lookup to one or two cache lines, where node-based maps cost a pointer chase.
// Built once, read-only afterwards.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bellows::tok {

class PairTable {
 public:
  void build(const std::vector<std::pair<uint64_t, std::pair<uint32_t, uint32_t>>>& entries);
  // (priority, merged) for the pair, or nullptr.
  const std::pair<uint32_t, uint32_t>* find(uint32_t left, uint32_t right) const {
    if (mask_ == 0) return nullptr;
    uint64_t key = (uint64_t{left} << 32) | right;
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
  }
  struct Slot {
    uint64_t key = kEmpty;
    std::pair<uint32_t, uint32_t> value;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// The hash key of a byte string, computed once per piece and shared by BytesTable and
// PieceCache (and by their prefetches, which is why it is a value of its own).
struct PieceKey {
  uint64_t w0 = 0, w1 = 0;  // up to 16 bytes: the bytes themselves, packed; longer: w0 = hash
  uint64_t hash = 0;
  static PieceKey of(std::string_view s);
};

class BytesTable {
 public:
  // `tokens[id]` are the bytes of each id (empty: no token).
  void build(const std::vector<std::string>& tokens);
  // The id whose bytes are `s`, or -1.
  int64_t find(std::string_view s) const { return find(s, PieceKey::of(s)); }
  int64_t find(std::string_view s, const PieceKey& k) const {
    if (mask_ == 0) return -1;
    for (size_t i = k.hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.len == s.size() && slot.w0 == k.w0 && slot.w1 == k.w1 &&
          (s.size() <= kInline || (*tokens_)[static_cast<size_t>(slot.id)] == s))
        return slot.id;
    }
  }
  // Starts loading the slot a later find(…, k) will read: lookups are cache misses (the table is
  // megabytes), and the tokenizer knows its next pieces early enough to overlap them.
  void prefetch(const PieceKey& k) const {
    if (mask_) __builtin_prefetch(&slots_[k.hash & mask_]);
  }

  // Tokens up to kInline bytes (nearly all) are held in the slot itself, so a lookup touches one
  // cache line; longer ones keep their hash there and are compared with the token's bytes.
  static constexpr size_t kInline = 16;

 private:
  struct Slot {
    uint64_t w0 = 0, w1 = 0;
    uint32_t len = 0;
    int32_t id = -1;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  const std::vector<std::string>* tokens_ = nullptr;
};

// The ids of pieces already encoded, for pieces that are not tokens themselves: natural text
// repeats its words (Zipf), so most are found here instead of re-running the merge loop.
// Direct-mapped, one cache line per slot, a new piece overwrites whatever shared its slot: memory
// is fixed and nothing is ever cleared wholesale. Pieces too long for a slot are not cached.
class PieceCache {
 public:
  static constexpr size_t kMaxKey = 22, kMaxIds = 8;
  explicit PieceCache(unsigned slots_log2 = 18) : slots_(size_t{1} << slots_log2), mask_(slots_.size() - 1) {}
  // The cached ids of `s` (n of them), or nullptr.
  const uint32_t* find(std::string_view s, const PieceKey& k, size_t& n) const {
    const Slot& slot = slots_[k.hash & mask_];
    if (slot.n == 0 || slot.hash != k.hash || slot.len != s.size() || std::memcmp(slot.key, s.data(), s.size()) != 0)
      return nullptr;
    n = slot.n;
    return slot.ids;
  }
  void put(std::string_view s, const PieceKey& k, const uint32_t* ids, size_t n) {
    if (s.size() > kMaxKey || n == 0 || n > kMaxIds) return;
    Slot& slot = slots_[k.hash & mask_];
    slot.hash = k.hash;
    slot.len = static_cast<uint8_t>(s.size());
    slot.n = static_cast<uint8_t>(n);
    std::memcpy(slot.key, s.data(), s.size());
    std::memcpy(slot.ids, ids, n * sizeof(uint32_t));
  }
  void prefetch(const PieceKey& k) const { __builtin_prefetch(&slots_[k.hash & mask_]); }

 private:
  struct alignas(64) Slot {
    uint64_t hash = 0;
    uint8_t len = 0, n = 0;  // n == 0: empty
    char key[kMaxKey] = {};
    uint32_t ids[kMaxIds] = {};
  };
  std::vector<Slot> slots_;
  size_t mask_;
};

}  // namespace bellows::tok
