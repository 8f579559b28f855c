#include "train/preference_data.hpp"

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "io/shard.hpp"

namespace bellows::train {
namespace fs = std::filesystem;

namespace {

void append_column(const io::ShardReader& r, const std::string& col, uint64_t pairs, std::vector<uint32_t>& data,
                   std::vector<uint64_t>& offsets) {
  const auto off = r.read_all<uint64_t>(col + "_offsets");
  const auto d = r.read_all<uint32_t>(col + "_data");
  if (off.size() != pairs + 1 || off.front() != 0 || off.back() != d.size())
    throw RuntimeError(r.path() + ": " + col + "_offsets do not match num_pairs and " + col + "_data");
  const uint64_t base = data.size();
  if (offsets.empty()) offsets.push_back(0);
  for (uint64_t i = 1; i < off.size(); ++i) {
    if (off[i] < off[i - 1]) throw RuntimeError(r.path() + ": " + col + "_offsets decrease at pair " + std::to_string(i - 1));
    offsets.push_back(base + off[i]);
  }
  data.insert(data.end(), d.begin(), d.end());
}

}  // namespace

PreferenceData::PreferenceData(const std::string& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) {
    files_.push_back(dir);
  } else if (fs::is_directory(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".h5") files_.push_back(e.path().string());
    std::sort(files_.begin(), files_.end());
  } else {
    throw UsageError("'" + dir + "' does not exist");
  }
  // A directory may hold other files (a report's shards of another kind are refused below only
  // when nothing of the right kind is there).
  std::vector<std::string> kept;
  std::string other;
  for (const auto& f : files_) {
    const io::ShardReader any = io::ShardReader::open_any(f);
    if (any.kind() == "tokens_preference")
      kept.push_back(f);
    else if (other.empty())
      other = f + " holds " + any.kind() + " shards";
  }
  if (kept.empty())
    throw UsageError("'" + dir + "' holds no tokens_preference shards" + (other.empty() ? "" : " (" + other + ")") +
                     ": tokenize-pack --mode preference writes them from {\"prompt\", \"chosen\", \"rejected\"} JSONL");
  files_ = kept;
  for (const auto& f : files_) {
    const io::ShardReader r(f, "tokens_preference");
    const uint64_t n = r.attr_uint("num_pairs"), V = r.attr_uint("vocab_size");
    const std::string sha = r.attr_string("tokenizer_sha256");
    if (f == files_.front()) {
      vocab_size_ = V;
      tokenizer_sha_ = sha;
      pad_id_ = int32_t(r.attr_int("eos_id"));
    } else if (V != vocab_size_ || sha != tokenizer_sha_) {
      throw RuntimeError(f + ": vocabulary " + std::to_string(V) + ", tokenizer " + sha.substr(0, 12) + " differ from " +
                         files_.front() + "'s (" + std::to_string(vocab_size_) + ", " + tokenizer_sha_.substr(0, 12) +
                         "): the shards of one run must agree");
    }
    const uint64_t first = pairs_;
    append_column(r, "prompt", n, prompt_.data, prompt_.offsets);
    append_column(r, "chosen", n, chosen_.data, chosen_.offsets);
    append_column(r, "rejected", n, rejected_.data, rejected_.offsets);
    pairs_ += n;
    for (uint64_t i = first; i < pairs_; ++i) {
      for (const auto* side : {&chosen_, &rejected_})
        if (side->len(i) == 0)
          throw RuntimeError(f + ": pair " + std::to_string(i - first) + " has an empty " +
                             (side == &chosen_ ? "chosen" : "rejected") + " response: a preference needs both sides");
      longest_ = std::max(longest_, prompt_.len(i) + std::max(chosen_.len(i), rejected_.len(i)));
    }
    for (const auto& v : {prompt_.data, chosen_.data, rejected_.data})
      for (uint32_t t : v)
        if (t >= vocab_size_) throw RuntimeError(f + ": token id " + std::to_string(t) + " >= its vocabulary size " + std::to_string(V));
  }
  if (pairs_ == 0) throw UsageError("'" + dir + "' has preference shards but no pairs");
}

void PreferenceData::fit(uint64_t i, int T, uint64_t& kp, uint64_t& kc, uint64_t& kr) const {
  const uint64_t room = uint64_t(T) + 1, lp = prompt_.len(i), lc = chosen_.len(i), lr = rejected_.len(i);
  const uint64_t longest = std::max(lc, lr);
  // Both sides keep the same prompt tokens (from its end: the part next to the response
  // matters most), at least half the row when the responses are long; responses then lose their
  // end.
  kp = lp + longest <= room ? lp : std::min(lp, std::max(room > longest ? room - longest : 0, room / 2));
  kc = std::min(lc, room - kp);
  kr = std::min(lr, room - kp);
}

std::string PreferenceData::content_sha256() const {
  Sha256 h;
  for (const Ragged* c : {&prompt_, &chosen_, &rejected_}) {
    const uint64_t n = c->offsets.size();
    h.update(std::string_view(reinterpret_cast<const char*>(&n), sizeof n));
    h.update(std::string_view(reinterpret_cast<const char*>(c->offsets.data()), c->offsets.size() * sizeof(uint64_t)));
    h.update(std::string_view(reinterpret_cast<const char*>(c->data.data()), c->data.size() * sizeof(uint32_t)));
  }
  return h.hex();
}

uint64_t PreferenceData::truncated_pairs(int T) const {
  uint64_t n = 0;
  for (uint64_t i = 0; i < pairs_; ++i) n += prompt_.len(i) + std::max(chosen_.len(i), rejected_.len(i)) > uint64_t(T) + 1;
  return n;
}

uint64_t PreferenceData::pair_at(uint64_t k, uint64_t seed, bool shuffle) {
  if (!shuffle) return k % pairs_;
  const uint64_t epoch = k / pairs_;
  if (epoch != perm_epoch_ || seed != perm_seed_) {
    perm_ = epoch_order(pairs_, seed, epoch);
    perm_epoch_ = epoch;
    perm_seed_ = seed;
  }
  return perm_[k % pairs_];
}

PairRow PreferenceData::row_of(uint64_t i, int side, int T) const {
  uint64_t kp, kc, kr;
  fit(i, T, kp, kc, kr);
  const uint64_t kx = side == 0 ? kc : kr, lx = side == 0 ? chosen_.len(i) : rejected_.len(i);
  PairRow r;
  r.pair = i;
  r.targets = uint32_t(kx - (kp == 0 ? 1 : 0));  // without a prompt the first response token has no context
  r.truncated = kp < prompt_.len(i) || kx < lx;
  return r;
}

void PreferenceData::fill(Batch& b, int T, uint64_t first, int pairs, uint64_t seed, bool shuffle,
                          std::vector<PairRow>* rows_out) {
  BELLOWS_CHECK(b.ids.size() >= size_t(2 * pairs) * size_t(T), "batch too small for the pairs");
  if (rows_out) rows_out->clear();
  for (int p = 0; p < pairs; ++p) {
    const uint64_t i = pair_at(first + uint64_t(p), seed, shuffle);
    uint64_t kp, kc, kr;
    fit(i, T, kp, kc, kr);
    const uint32_t* prompt = prompt_.at(i) + (prompt_.len(i) - kp);
    for (int side = 0; side < 2; ++side) {
      const uint32_t* resp = side == 0 ? chosen_.at(i) : rejected_.at(i);
      const uint64_t kx = side == 0 ? kc : kr, len = kp + kx;
      auto token = [&](uint64_t t) { return int32_t(t < kp ? prompt[t] : resp[t - kp]); };
      const size_t base = size_t(2 * p + side) * size_t(T);
      for (int t = 0; t < T; ++t) {
        const uint64_t u = uint64_t(t);
        b.ids[base + size_t(t)] = u < len ? token(u) : pad_id_;
        b.targets[base + size_t(t)] = u + 1 < len && u + 1 >= kp ? token(u + 1) : -1;
        b.pos[base + size_t(t)] = t;
        b.doc_start[base + size_t(t)] = 0;
      }
      if (rows_out) rows_out->push_back(row_of(i, side, T));
    }
  }
}

}  // namespace bellows::train
