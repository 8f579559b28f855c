#include "tok/bpe.hpp"

#include <array>
#include <queue>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.hpp"

namespace bellows::tok {
namespace {

std::string utf8_of(uint32_t cp) {
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

struct ByteLevelTables {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<uint32_t, unsigned char> from_cp;
  ByteLevelTables() {
    // Printable bytes map to themselves; the rest to 256, 257, ... in byte order (GPT-2).
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? b : next++;
      to_unicode[b] = utf8_of(cp);
      from_cp[cp] = static_cast<unsigned char>(b);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables t;
  return t;
}

}  // namespace

size_t BytesHash::operator()(std::string_view s) const noexcept { return XXH3_64bits(s.data(), s.size()); }

const std::string& byte_to_unicode(unsigned char b) { return tables().to_unicode[b]; }

bool unicode_to_bytes(std::string_view token, std::string& out) {
  out.clear();
  const auto& from = tables().from_cp;
  for (size_t i = 0; i < token.size();) {
    unsigned char c = static_cast<unsigned char>(token[i]);
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < token.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(token[i + 1]) & 0x3Fu);
      len = 2;
    } else {
      return false;  // the byte-level alphabet stays below U+0800
    }
    auto it = from.find(cp);
    if (it == from.end()) return false;
    out += static_cast<char>(it->second);
    i += len;
  }
  return true;
}

void BpeModel::index_tokens() {
  bytes_table_.build(id_to_bytes);
  indexed_ = true;
}

void BpeModel::finish(const std::string& what) {
  if (!indexed_) index_tokens();
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    int64_t id = bytes_table_.find(std::string_view(&byte, 1));
    if (id < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      throw UsageError(what + ": the vocabulary has no token for byte " + hex + " (byte-level BPE needs all 256)");
    }
    byte_id[b] = static_cast<uint32_t>(id);
  }
  pair_table_.build(merges);
  // Every two-byte piece, encoded once: they are common (" a", ". ", "\n\n") and each would
  // otherwise cost a lookup in a table of megabytes.
  two_bytes_.clear();  // encode_piece below must merge, not read the table being built
  std::vector<uint32_t> table(65536, kTwoByteIds), ids;
  for (uint32_t v = 0; v < 65536; ++v) {
    const char pair[2] = {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)};
    ids.clear();
    encode_piece(std::string_view(pair, 2), ids);
    if (ids.size() == 1) table[v] = ids[0];
  }
  two_bytes_ = std::move(table);
  // The flat table holds the same information from now on: do not keep two copies.
  merges = {};
}

void BpeModel::encode_piece_reference(std::string_view piece, std::vector<uint32_t>& out) const {
  if (whole_piece_first && !piece.empty()) {
    int64_t id = bytes_table_.find(piece);
    if (id >= 0) {
      out.push_back(static_cast<uint32_t>(id));
      return;
    }
  }
  std::vector<uint32_t> ids;
  for (char c : piece) ids.push_back(byte_id[static_cast<unsigned char>(c)]);
  for (;;) {
    uint32_t best = UINT32_MAX, merged = 0;
    size_t at = ids.size();
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const auto* hit = pair_table_.find(ids[i], ids[i + 1]);
      if (hit && hit->first < best) {
        best = hit->first;
        merged = hit->second;
        at = i;
      }
    }
    if (at == ids.size()) break;
    ids[at] = merged;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

void BpeModel::encode_piece(std::string_view piece, std::vector<uint32_t>& out) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    out.push_back(byte_id[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (piece.size() == 2 && !two_bytes_.empty()) {
    const auto b0 = static_cast<unsigned char>(piece[0]), b1 = static_cast<unsigned char>(piece[1]);
    const uint32_t id = two_bytes_[(b0 << 8) | b1];
    if (id != kTwoByteIds) {
      out.push_back(id);
    } else {
      out.push_back(byte_id[b0]);
      out.push_back(byte_id[b1]);
    }
    return;
  }
  if (whole_piece_first) {
    int64_t id = bytes_table_.find(piece);
    if (id >= 0) {
      out.push_back(static_cast<uint32_t>(id));
      return;
    }
  }
  if (piece.size() <= kShortPiece) {
    // Short pieces (nearly all of them): the same merge order over small arrays, without the
    // heap and its allocations. Each adjacent pair's (priority, merged id) is looked up once and
    // kept; a merge only changes the two pairs around it, so only those are looked up again
    // (the table is megabytes: lookups are the cost, the scans for the minimum are not).
    uint32_t ids[kShortPiece];       // [m] the current parts
    uint32_t priority[kShortPiece];  // [m - 1] of the pair (i, i + 1); UINT32_MAX: no merge
    uint32_t merged[kShortPiece];    // [m - 1] the id that pair merges into
    size_t m = piece.size();
    for (size_t i = 0; i < m; ++i) ids[i] = byte_id[static_cast<unsigned char>(piece[i])];
    auto look = [&](size_t i) {
      const auto* hit = pair_table_.find(ids[i], ids[i + 1]);
      priority[i] = hit ? hit->first : UINT32_MAX;
      merged[i] = hit ? hit->second : 0;
    };
    for (size_t i = 0; i + 1 < m; ++i) look(i);
    for (;;) {
      uint32_t best = UINT32_MAX;
      size_t at = m;
      for (size_t i = 0; i + 1 < m; ++i)
        if (priority[i] < best) {  // strictly less: the leftmost of equal priorities
          best = priority[i];
          at = i;
        }
      if (at == m) break;
      ids[at] = merged[at];
      for (size_t i = at + 1; i + 1 < m; ++i) {
        ids[i] = ids[i + 1];
        priority[i] = priority[i + 1];
        merged[i] = merged[i + 1];
      }
      --m;
      if (at > 0) look(at - 1);
      if (at + 1 < m) look(at);
    }
    out.insert(out.end(), ids, ids + m);
    return;
  }
  // Parts as a linked list over the bytes; candidate merges in a min-heap of (priority,
  // position), checked against the current list when popped (stale entries are skipped).
  const size_t n = piece.size();
  std::vector<uint32_t> id(n);
  std::vector<int64_t> next(n), prev(n);
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_id[static_cast<unsigned char>(piece[i])];
    next[i] = i + 1 < n ? static_cast<int64_t>(i + 1) : -1;
    prev[i] = static_cast<int64_t>(i) - 1;
  }
  struct Cand {
    uint32_t priority;
    uint32_t pos;
    uint32_t left, right;  // the ids it was computed for
    bool operator>(const Cand& o) const { return priority != o.priority ? priority > o.priority : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int64_t i) {
    if (i < 0 || next[static_cast<size_t>(i)] < 0) return;
    uint32_t l = id[static_cast<size_t>(i)], r = id[static_cast<size_t>(next[static_cast<size_t>(i)])];
    const auto* hit = pair_table_.find(l, r);
    if (hit) heap.push({hit->first, static_cast<uint32_t>(i), l, r});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int64_t>(i));
  std::vector<uint8_t> dead(n, 0);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    size_t i = c.pos;
    if (dead[i] || next[i] < 0) continue;
    size_t j = static_cast<size_t>(next[i]);
    if (id[i] != c.left || id[j] != c.right) continue;  // stale
    id[i] = pair_table_.find(c.left, c.right)->second;
    dead[j] = 1;
    next[i] = next[j];
    if (next[j] >= 0) prev[static_cast<size_t>(next[j])] = static_cast<int64_t>(i);
    consider(prev[i]);
    consider(static_cast<int64_t>(i));
  }
  for (int64_t i = 0; i >= 0; i = next[static_cast<size_t>(i)]) out.push_back(id[static_cast<size_t>(i)]);
}

}  // namespace bellows::tok
