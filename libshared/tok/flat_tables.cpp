#include "tok/flat_tables.hpp"

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

void BytesTable::build(const std::vector<std::string>& tokens) {
  tokens_ = &tokens;
  size_t n = 0;
  for (const auto& t : tokens) n += !t.empty();
  slots_.assign(table_size(n), Slot{});
  mask_ = slots_.size() - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (tokens[id].empty()) continue;
    uint64_t h = XXH3_64bits(tokens[id].data(), tokens[id].size());
    size_t i = h & mask_;
    while (slots_[i].id >= 0) {
      if (slots_[i].hash == h && tokens[static_cast<size_t>(slots_[i].id)] == tokens[id]) break;  // duplicate bytes
      i = (i + 1) & mask_;
    }
    if (slots_[i].id < 0) slots_[i] = {h, static_cast<int64_t>(id)};
  }
}

int64_t BytesTable::find(std::string_view s) const {
  if (mask_ == 0) return -1;
  uint64_t h = XXH3_64bits(s.data(), s.size());
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.id < 0) return -1;
    if (slot.hash == h && (*tokens_)[static_cast<size_t>(slot.id)] == s) return slot.id;
  }
}

}  // namespace bellows::tok
