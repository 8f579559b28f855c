#include "train/token_data.hpp"

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "nn/rng.hpp"

namespace bellows::train {
namespace fs = std::filesystem;

TokenData::TokenData(const std::string& dir, const std::string& split, TokenKind kind) : kind_(kind) {
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) {
    files_.push_back(dir);
  } else if (fs::is_directory(dir, ec)) {
    // tokenize-pack --mode sft names its shards sft-*.h5 (it has no validation split): they are
    // the training split of an SFT directory.
    const std::string alt = kind == TokenKind::sft && split == "train" ? "sft-" : split + "-";
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && (name.rfind(split + "-", 0) == 0 || name.rfind(alt, 0) == 0) && e.path().extension() == ".h5")
        files_.push_back(e.path().string());
    }
    std::sort(files_.begin(), files_.end());
  } else {
    throw UsageError("'" + dir + "' does not exist");
  }
  const bool sft = kind == TokenKind::sft;
  const std::string want = sft ? "tokens_sft" : "tokens_pretrain", mode = sft ? "sft" : "pretrain";
  if (files_.empty())
    throw UsageError("'" + dir + "' holds no " + split + "-*.h5 token shards (tokenize-pack --mode " + mode + " writes them)");
  for (const auto& f : files_) {
    Shard s;
    {
      const io::ShardReader any = io::ShardReader::open_any(f);
      if (any.kind() != want)
        throw UsageError(f + ": " + any.kind() + " shards, but " + (sft ? "SFT" : "pretraining") + " needs " + want +
                         " (tokenize-pack --mode " + mode + ")");
    }
    s.reader = std::make_unique<io::ShardReader>(f, want);
    const uint64_t L = s.reader->attr_uint("seq_len"), V = s.reader->attr_uint("vocab_size");
    const std::string sha = s.reader->attr_string("tokenizer_sha256");
    if (shards_.empty()) {
      seq_len_ = L;
      vocab_size_ = V;
      tokenizer_sha_ = sha;
    } else if (L != seq_len_ || V != vocab_size_ || sha != tokenizer_sha_) {
      throw RuntimeError(f + ": seq_len " + std::to_string(L) + ", vocab " + std::to_string(V) + ", tokenizer " +
                         sha.substr(0, 12) + " differ from " + files_.front() + "'s (" + std::to_string(seq_len_) + ", " +
                         std::to_string(vocab_size_) + ", " + tokenizer_sha_.substr(0, 12) + "): shards of one run must agree");
    }
    s.rows = s.reader->attr_uint("num_samples");
    s.first = total_;
    const std::string starts = sft ? "segment_start" : "doc_start";
    s.doc_offsets = s.reader->read_all<uint64_t>(starts + "_offsets");
    s.doc_data = s.reader->read_all<uint32_t>(starts + "_data");
    if (s.doc_offsets.size() != s.rows + 1 || s.doc_offsets.back() != s.doc_data.size())
      throw RuntimeError(f + ": " + starts + "_offsets do not match num_samples and " + starts + "_data");
    total_ += s.rows;
    shards_.push_back(std::move(s));
  }
  if (total_ == 0) throw UsageError("'" + dir + "' has token shards but no samples");
  block_rows_ = std::max<uint64_t>(1, (1u << 20) / ((seq_len_ + 1) * sizeof(uint32_t)));
  if (sft) {
    // A run over examples whose every token is masked would learn nothing, silently: refuse it.
    // (Reading stops at the first target, normally in the first block.)
    bool any = false;
    for (size_t si = 0; si < shards_.size() && !any; ++si)
      for (uint64_t row = 0; row < shards_[si].rows && !any; row += block_rows_) {
        const Block& blk = block_of(si, row);
        any = std::any_of(blk.mask.begin(), blk.mask.end(), [](uint8_t m) { return m != 0; });
      }
    if (!any)
      throw UsageError("'" + dir + "': the " + split + " SFT shards have no unmasked token (loss_mask is 0 everywhere): "
                       "nothing to learn; check the response/assistant fields given to tokenize-pack --mode sft");
  }
}

std::vector<uint64_t> epoch_order(uint64_t n, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> perm(n);
  for (uint64_t j = 0; j < n; ++j) perm[j] = j;
  nn::Rng rng(seed, "epoch-" + std::to_string(epoch));
  for (uint64_t j = n > 0 ? n - 1 : 0; j > 0; --j) std::swap(perm[j], perm[rng.below(j + 1)]);  // Fisher-Yates
  return perm;
}

uint64_t TokenData::sample_at(uint64_t k, uint64_t seed) {
  const uint64_t epoch = k / total_, i = k % total_;
  if (epoch != perm_epoch_ || seed != perm_seed_) {
    perm_ = epoch_order(total_, seed, epoch);
    perm_epoch_ = epoch;
    perm_seed_ = seed;
  }
  return perm_[i];
}

const TokenData::Block& TokenData::block_of(size_t shard, uint64_t row) {
  const uint64_t row0 = row / block_rows_ * block_rows_;
  for (auto it = blocks_.begin(); it != blocks_.end(); ++it)
    if (it->shard == shard && it->row0 == row0) {
      blocks_.splice(blocks_.begin(), blocks_, it);
      return blocks_.front();
    }
  const Shard& s = shards_[shard];
  const uint64_t n = std::min(block_rows_, s.rows - row0);
  Block b{shard, row0, s.reader->read_rows<uint32_t>("tokens", row0, n), {}};
  if (kind_ == TokenKind::sft) b.mask = s.reader->read_rows<uint8_t>("loss_mask", row0, n);
  blocks_.push_front(std::move(b));
  if (blocks_.size() > 16) blocks_.pop_back();
  return blocks_.front();
}

std::pair<size_t, uint64_t> TokenData::locate(uint64_t k, uint64_t seed, bool shuffle) {
  const uint64_t g = shuffle ? sample_at(k, seed) : k % total_;
  // The last shard whose first sample is <= g.
  const auto it = std::upper_bound(shards_.begin(), shards_.end(), g, [](uint64_t x, const Shard& s) { return x < s.first; });
  const size_t si = size_t(it - shards_.begin()) - 1;
  return {si, g - shards_[si].first};
}

uint64_t TokenData::count_targets(int T, uint64_t first, uint64_t rows, uint64_t seed, bool shuffle) {
  if (kind_ == TokenKind::pretrain) return rows * uint64_t(T);
  uint64_t n = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    const auto [si, row] = locate(first + r, seed, shuffle);
    const Block& blk = block_of(si, row);
    const uint8_t* m = blk.mask.data() + (row - blk.row0) * (seq_len_ + 1);
    for (int t = 1; t <= T; ++t) n += m[t] != 0;
  }
  return n;
}

void TokenData::fill(Batch& b, int T, uint64_t first, int rows, uint64_t seed, bool shuffle, bool doc_masking) {
  BELLOWS_CHECK(uint64_t(T) <= seq_len_, "T longer than the shards' samples");
  for (int r = 0; r < rows; ++r) {
    const auto [si, row] = locate(first + uint64_t(r), seed, shuffle);
    const Shard& s = shards_[si];
    const Block& blk = block_of(si, row);
    const uint32_t* tok = blk.tokens.data() + (row - blk.row0) * (seq_len_ + 1);
    // SFT: the loss counts token t + 1 (the target at position t) only where its mask is set.
    const uint8_t* mask = blk.mask.empty() ? nullptr : blk.mask.data() + (row - blk.row0) * (seq_len_ + 1);
    const size_t base = size_t(r) * size_t(T);
    // Document starts of this sample, ascending (positions 0..seq_len).
    const uint32_t* ds = s.doc_data.data() + s.doc_offsets[row];
    const size_t nds = s.doc_offsets[row + 1] - s.doc_offsets[row];
    size_t next = 0;
    int start = 0;
    for (int t = 0; t < T; ++t) {
      while (doc_masking && next < nds && int(ds[next]) <= t) start = int(ds[next++]);
      b.ids[base + size_t(t)] = int32_t(tok[t]);
      b.targets[base + size_t(t)] = !mask || mask[t + 1] ? int32_t(tok[t + 1]) : -1;
      b.doc_start[base + size_t(t)] = start;
      b.pos[base + size_t(t)] = t - start;
    }
  }
}

}  // namespace bellows::train
