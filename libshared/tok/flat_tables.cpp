#include "tok/flat_tables.hpp"

#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace bellows::tok {
namespace {
size_t table_size(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;  // load factor <= 1/2
  return cap;
}
}  // namespace

void PairTable::build(const std::vector<std::pair<uint64_t, std::pair<uint32_t, uint32_t>>>& entries) {
  slots_.assign(table_size(entries.size()), Slot{});
  mask_ = slots_.size() - 1;
  for (const auto& [key, value] : entries) {
    size_t i = mix(key) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    if (slots_[i].key == kEmpty) slots_[i] = {key, value};  // the first entry of a key wins
  }
}

namespace {
uint64_t load4(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// The bytes p[0, n) for n <= 8 as one word, a one-to-one function of the bytes for each n.
uint64_t pack_upto8(const char* p, size_t n) {
  if (n >= 4) return load4(p) | (load4(p + n - 4) << 32);
  if (n == 0) return 0;
  return uint64_t{static_cast<unsigned char>(p[0])} | uint64_t{static_cast<unsigned char>(p[n / 2])} << 8 |
         uint64_t{static_cast<unsigned char>(p[n - 1])} << 16;
}
}  // namespace

PieceKey PieceKey::of(std::string_view s) {
  const size_t n = s.size();
  PieceKey k;
  if (n <= BytesTable::kInline) {
    k.w0 = pack_upto8(s.data(), n < 8 ? n : 8);
    k.w1 = n > 8 ? pack_upto8(s.data() + 8, n - 8) : 0;
    uint64_t h = (k.w0 * 0x9E3779B97F4A7C15ull) ^ (k.w1 * 0xC2B2AE3D27D4EB4Full) ^ n;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    k.hash = h;
  } else {
    k.hash = XXH3_64bits(s.data(), n);
    k.w0 = k.hash;  // long tokens: the slot holds the hash, the bytes are compared in full
  }
  return k;
}

void BytesTable::build(const std::vector<std::string>& tokens) {
  tokens_ = &tokens;
  size_t n = 0;
  for (const auto& t : tokens) n += !t.empty();
  slots_.assign(table_size(n), Slot{});
  mask_ = slots_.size() - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (tokens[id].empty()) continue;
    if (find(tokens[id]) >= 0) continue;  // duplicate bytes: the first id wins
    const PieceKey k = PieceKey::of(tokens[id]);
    size_t i = k.hash & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = {k.w0, k.w1, static_cast<uint32_t>(tokens[id].size()), static_cast<int32_t>(id)};
  }
}

}  // namespace bellows::tok
