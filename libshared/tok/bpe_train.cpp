#include "tok/bpe_train.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_set>

#include "core/bytes.hpp"
#include "core/error.hpp"
#include "tok/bpe.hpp"
#include "tok/tokenizer_json.hpp"

namespace bellows::tok {
using nlohmann::json;

BpeTrainer::BpeTrainer(BpeTrainOptions opt)
    : opt_(std::move(opt)), splitter_(pattern_by_name(opt_.pattern), "--pattern") {
  if (opt_.vocab_size < 256 + opt_.special_tokens.size())
    throw UsageError("--train-vocab-size: must be at least 256 + the special tokens (" +
                     std::to_string(256 + opt_.special_tokens.size()) + ")");
}

void BpeTrainer::add_text(std::string_view text) {
  std::vector<std::string_view> pieces;
  splitter_.split(text, true, pieces);
  for (auto p : pieces) ++counts_[std::string(p)];
}

std::string BpeTrainer::serialize_counts() const {
  std::string out;
  ByteWriter w(out);
  for (const auto& [p, c] : counts_) {
    w.put_string(p);
    w.put(c);
  }
  return out;
}

void BpeTrainer::add_counts(std::string_view s) {
  ByteReader r(s);
  while (!r.done()) {
    std::string p = r.get_string();
    counts_[p] += r.get<uint64_t>();
  }
}

size_t BpeTrainer::train() {
  tokens_.clear();
  merges_.clear();
  for (int b = 0; b < 256; ++b) tokens_.push_back(std::string(1, static_cast<char>(b)));
  std::unordered_map<std::string, uint32_t> id_of;
  for (uint32_t i = 0; i < 256; ++i) id_of[tokens_[i]] = i;

  // Words in a fixed order (sorted), so training does not depend on hash-map iteration.
  std::vector<std::pair<std::string, uint64_t>> sorted(counts_.begin(), counts_.end());
  std::sort(sorted.begin(), sorted.end());
  struct Word {
    std::vector<uint32_t> sym;
    uint64_t count;
  };
  std::vector<Word> words;
  for (const auto& [p, c] : sorted) {
    Word w{{}, c};
    for (unsigned char ch : p) w.sym.push_back(ch);
    if (w.sym.size() > 1) words.push_back(std::move(w));
  }
  auto key = [](uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; };
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::unordered_set<uint32_t>> where;
  for (uint32_t wi = 0; wi < words.size(); ++wi) {
    const auto& s = words[wi].sym;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      pair_count[key(s[i], s[i + 1])] += static_cast<int64_t>(words[wi].count);
      where[key(s[i], s[i + 1])].insert(wi);
    }
  }
  // Max-heap of (count, pair); entries are checked against pair_count when popped. Among equal
  // counts the pair whose bytes sort first wins.
  struct Entry {
    int64_t count;
    uint64_t pair;
  };
  auto less = [&](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    // Compared in place: the heap compares often, copying the token strings would dominate.
    const std::string &xl = tokens_[x.pair >> 32], &yl = tokens_[y.pair >> 32];
    if (xl != yl) return xl > yl;
    return tokens_[x.pair & 0xFFFFFFFFu] > tokens_[y.pair & 0xFFFFFFFFu];
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(less)> heap(less);
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  const size_t target_tokens = opt_.vocab_size - opt_.special_tokens.size();
  while (tokens_.size() < target_tokens && !heap.empty()) {
    Entry e = heap.top();
    heap.pop();
    auto it = pair_count.find(e.pair);
    if (it == pair_count.end() || it->second != e.count) continue;  // stale
    if (e.count < static_cast<int64_t>(opt_.min_frequency)) break;
    uint32_t a = static_cast<uint32_t>(e.pair >> 32), b = static_cast<uint32_t>(e.pair & 0xFFFFFFFFu);
    std::string merged = tokens_[a] + tokens_[b];
    uint32_t id;
    auto ex = id_of.find(merged);
    if (ex != id_of.end()) {
      id = ex->second;
    } else {
      id = static_cast<uint32_t>(tokens_.size());
      tokens_.push_back(merged);
      id_of[merged] = id;
    }
    merges_.emplace_back(tokens_[a], tokens_[b]);
    // Re-count the pairs of every word that holds the pair: subtract its pairs, merge, add its
    // new pairs. `where` may keep stale members (a superset); words without the pair merge
    // nothing and net to zero.
    std::vector<uint32_t> in(where[e.pair].begin(), where[e.pair].end());
    std::sort(in.begin(), in.end());
    std::map<uint64_t, int64_t> delta;  // ordered, so heap pushes happen in a fixed order
    for (uint32_t wi : in) {
      auto& sym = words[wi].sym;
      int64_t c = static_cast<int64_t>(words[wi].count);
      for (size_t i = 0; i + 1 < sym.size(); ++i) delta[key(sym[i], sym[i + 1])] -= c;
      std::vector<uint32_t> out;
      out.reserve(sym.size());
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          out.push_back(id);
          i += 2;
        } else {
          out.push_back(sym[i++]);
        }
      }
      sym.swap(out);
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        delta[key(sym[i], sym[i + 1])] += c;
        where[key(sym[i], sym[i + 1])].insert(wi);
      }
    }
    for (const auto& [p, d] : delta) {
      if (d == 0) continue;
      int64_t& cnt = pair_count[p];
      cnt += d;
      if (cnt <= 0) {
        pair_count.erase(p);
        where.erase(p);
      } else {
        heap.push({cnt, p});
      }
    }
  }
  return merges_.size();
}

void BpeTrainer::write(const std::string& tokenizer_json, const std::string& tokenizer_config) const {
  auto unicode = [](const std::string& raw) {
    std::string s;
    for (unsigned char c : raw) s += byte_to_unicode(c);
    return s;
  };
  json vocab = json::object();
  for (size_t i = 0; i < tokens_.size(); ++i) vocab[unicode(tokens_[i])] = i;
  json merges = json::array();
  for (const auto& [l, r] : merges_) merges.push_back({unicode(l), unicode(r)});
  json added = json::array();
  for (size_t k = 0; k < opt_.special_tokens.size(); ++k)
    added.push_back({{"id", tokens_.size() + k}, {"content", opt_.special_tokens[k]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  json j = byte_level_bpe_tokenizer_json(pattern_by_name(opt_.pattern), vocab, merges, added, /*ignore_merges=*/false);
  std::ofstream(tokenizer_json) << j.dump() << "\n";
  json cfg = json::object();
  if (!opt_.special_tokens.empty()) cfg["eos_token"] = opt_.special_tokens[0];
  std::ofstream(tokenizer_config) << cfg.dump(2) << "\n";
}

}  // namespace bellows::tok
