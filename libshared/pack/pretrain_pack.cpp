#include "pack/pretrain_pack.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "io/raw_file.hpp"
#include "io/shard.hpp"
#include "log/log.hpp"
#include "log/progress.hpp"

namespace bellows::pack {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<uint64_t> permutation(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> p(n);
  for (uint64_t i = 0; i < n; ++i) p[i] = i;
  uint64_t s = seed;
  auto next = [&] {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (uint64_t i = n; i > 1; --i) std::swap(p[i - 1], p[next() % i]);
  return p;
}

namespace {

std::string stream_path(const std::string& dir, int rank) { return dir + "/.stream-" + std::to_string(rank) + ".u32"; }

// Reads global token ranges from the ranks' streams.
class StreamReader {
 public:
  StreamReader(const std::string& dir, const std::vector<uint64_t>& offsets) : offsets_(offsets) {
    for (size_t r = 0; r + 1 < offsets.size(); ++r) files_.emplace_back(stream_path(dir, static_cast<int>(r)));
  }
  // tokens [begin, begin+n) of the global stream
  void read(uint64_t begin, uint64_t n, uint32_t* out) const {
    while (n > 0) {
      size_t r = static_cast<size_t>(std::upper_bound(offsets_.begin(), offsets_.end(), begin) - offsets_.begin()) - 1;
      uint64_t take = std::min(n, offsets_[r + 1] - begin);
      files_[r].read_at(out, take * sizeof(uint32_t), (begin - offsets_[r]) * sizeof(uint32_t));
      out += take;
      begin += take;
      n -= take;
    }
  }

 private:
  std::vector<uint64_t> offsets_;
  std::vector<io::RawFileReader> files_;
};

}  // namespace

json pack_pretrain(const std::vector<curate::InputFile>& inputs, const std::vector<int>& owner,
                   const curate::ReaderOptions& reader_opt, const tok::Tokenizer& tokenizer, const PretrainOptions& opt,
                   const std::string& outdir, const json& config, dist::Communicator& comm) {
  auto eos = tokenizer.eos_id();
  if (!eos) throw UsageError("--tokenizer " + tokenizer.path() + ": no EOS token known (give --eos-token)");
  if (opt.bos && !tokenizer.bos_id()) throw UsageError("--bos: the tokenizer has no BOS token (give --bos-token)");
  json stats = {{"documents", 0}, {"tokens", 0}, {"bad_records", json::object()}};

  // 1. Tokenize this rank's documents into its stream; remember where each document starts.
  io::RawFileWriter stream(stream_path(outdir, comm.rank()));
  std::vector<uint64_t> doc_starts;  // local stream offsets
  uint64_t local = 0, my_bytes = 0;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (owner[i] == comm.rank()) my_bytes += inputs[i].bytes;
  log::Progress progress("tokenize", my_bytes, "B");
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (owner[i] != comm.rank()) continue;
    auto reader = curate::open_reader(inputs[i], i, reader_opt);
    curate::RawRecord rec;
    uint64_t reported = 0;
    while (reader->next(rec)) {
      if (!rec.bad.empty()) {
        if (!opt.skip_bad)
          throw RuntimeError(rec.source + ": " + rec.bad + " (use --on-bad-record skip to count and skip such records)");
        stats["bad_records"][rec.bad] = stats["bad_records"].value(rec.bad, 0) + 1;
        continue;
      }
      ids.clear();
      if (opt.bos) ids.push_back(*tokenizer.bos_id());
      tokenizer.encode(rec.text, false, ids);
      ids.push_back(*eos);
      doc_starts.push_back(local);
      stream.write(ids.data(), ids.size() * sizeof(uint32_t));
      local += ids.size();
      stats["documents"] = stats["documents"].get<uint64_t>() + 1;
      uint64_t now = reader->progress_bytes();
      progress.add(now - reported);
      reported = now;
    }
  }
  progress.finish();
  stream.close();
  stats["tokens"] = local;

  // 2. Global layout: every rank's offset in the stream, all document starts.
  std::vector<std::string> counts = comm.allgather(std::to_string(local));
  std::vector<uint64_t> offsets{0};
  for (const auto& c : counts) offsets.push_back(offsets.back() + std::stoull(c));
  const uint64_t total = offsets.back(), L = opt.seq_len;
  std::string mine(reinterpret_cast<const char*>(doc_starts.data()), doc_starts.size() * sizeof(uint64_t));
  std::vector<uint64_t> starts;  // global, ascending (ranks own ascending stream ranges)
  std::vector<std::string> all_starts = comm.allgather(mine);
  for (size_t r = 0; r < all_starts.size(); ++r) {
    const auto* p = reinterpret_cast<const uint64_t*>(all_starts[r].data());
    for (size_t k = 0; k < all_starts[r].size() / sizeof(uint64_t); ++k) starts.push_back(p[k] + offsets[r]);
  }
  const uint64_t n_samples = total > L ? (total - 1) / L : 0;
  if (n_samples == 0)
    throw RuntimeError("the inputs hold " + std::to_string(total) + " tokens, fewer than one sample of --seq-len " +
                       std::to_string(L) + " + 1");
  std::vector<uint64_t> perm = permutation(n_samples, opt.seed);
  const uint64_t n_valid = static_cast<uint64_t>(static_cast<double>(n_samples) * opt.valid_fraction + 0.5);

  // 3. This rank writes its share of each split's output positions.
  StreamReader streams(outdir, offsets);
  io::Provenance prov{"tokenize-pack", config, {}};
  for (const auto& f : inputs) prov.inputs.push_back(f.path);
  std::vector<uint32_t> sample(L + 1);
  for (const char* split : {"train", "valid"}) {
    uint64_t first = std::string(split) == "valid" ? 0 : n_valid;
    uint64_t count = std::string(split) == "valid" ? n_valid : n_samples - n_valid;
    uint64_t R = static_cast<uint64_t>(comm.size()), r = static_cast<uint64_t>(comm.rank());
    uint64_t lo = count * r / R, hi = count * (r + 1) / R;
    for (uint64_t pos = lo, part = 0; pos < hi; ++part) {
      uint64_t n = std::min<uint64_t>(opt.max_samples_per_shard, hi - pos);
      char name[96];
      std::snprintf(name, sizeof name, "/%s-r%05d-%05llu.h5", split, comm.rank(), static_cast<unsigned long long>(part));
      io::ShardWriter w(outdir + name, "tokens_pretrain", prov);
      w.declare("tokens", {L + 1});
      io::RaggedColumn<uint32_t> ds(w, "doc_start");
      std::vector<uint32_t> in_sample;
      for (uint64_t k = 0; k < n; ++k) {
        uint64_t s = perm[first + pos + k], begin = s * L;
        streams.read(begin, L + 1, sample.data());
        w.append("tokens", sample);
        in_sample.clear();
        for (auto it = std::lower_bound(starts.begin(), starts.end(), begin); it != starts.end() && *it <= begin + L; ++it)
          in_sample.push_back(static_cast<uint32_t>(*it - begin));
        ds.add(in_sample.data(), in_sample.size());
      }
      w.set_attr("num_samples", n);
      w.set_attr("seq_len", uint64_t{L});
      w.set_attr("vocab_size", uint64_t{tokenizer.vocab_size()});
      w.set_attr("tokenizer_sha256", tokenizer.sha256());
      w.set_attr("eos_id", int64_t{*eos});
      w.set_attr("bos_id", opt.bos ? int64_t{*tokenizer.bos_id()} : int64_t{-1});
      w.close();
      pos += n;
    }
  }
  comm.barrier();  // every writer is done with every stream
  fs::remove(stream_path(outdir, comm.rank()));
  if (comm.rank() == 0) {
    stats["global"] = {{"tokens", total}, {"samples", n_samples}, {"train_samples", n_samples - n_valid},
                       {"valid_samples", n_valid},
                       // Tokens after the last full sample are not trained on.
                       {"tail_tokens_dropped", total - n_samples * L - 1},
                       {"waste_fraction", total ? static_cast<double>(total - n_samples * L - 1) / static_cast<double>(total) : 0.0}};
  }
  return stats;
}

}  // namespace bellows::pack
