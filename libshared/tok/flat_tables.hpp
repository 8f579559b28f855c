// Open-addressing hash tables for the two lookups on the tokenizer's hot path: a pair of token
// ids -> (merge priority, merged id), and a piece's bytes -> token id. Flat arrays with linear
// probing keep a lookup to one or two cache lines, where node-based maps cost a pointer chase.
// Built once, read-only afterwards.
#pragma once

#include <cstdint>
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

class BytesTable {
 public:
  // `tokens[id]` are the bytes of each id (empty: no token).
  void build(const std::vector<std::string>& tokens);
  // The id whose bytes are `s`, or -1.
  int64_t find(std::string_view s) const;

 private:
  struct Slot {
    uint64_t hash = 0;
    int64_t id = -1;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  const std::vector<std::string>* tokens_ = nullptr;
};

}  // namespace bellows::tok
