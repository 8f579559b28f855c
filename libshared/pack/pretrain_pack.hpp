// Packing documents into pretraining samples (schemas/tokens_pretrain.json).
//
// The token stream is every document's tokens ([BOS] doc EOS) in input order (file, then record).
// Sample k is stream[k*L, k*L + L + 1): consecutive samples overlap by one token, so every token
// but the first is a target exactly once (Megatron's layout). Samples are shuffled with a
// permutation fixed by --seed and the sample count; the first --valid-fraction of the shuffled
// order forms the validation split. Positions in a sample where a document begins are stored.
//
// Under MPI each rank tokenizes its own files into a raw work stream in the output's temporary
// directory; output position i of a split is the permuted sample pi(i), which its writer reads
// from whichever rank's stream holds it (a shared filesystem, no data through MPI). So the
// concatenated shards are the same whatever the number of ranks, and memory holds the document
// start offsets only, never the corpus.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "curate/inputs.hpp"
#include "dist/comm.hpp"
#include "tok/tokenizer.hpp"

namespace bellows::pack {

struct PretrainOptions {
  uint32_t seq_len = 1024;
  bool bos = false;
  uint64_t seed = 1;
  double valid_fraction = 0.0;
  bool skip_bad = false;
  uint64_t max_samples_per_shard = 65536;
};

// Deterministic permutation of 0..n-1 (Fisher-Yates over a splitmix64 stream).
std::vector<uint64_t> permutation(uint64_t n, uint64_t seed);

// Packs `inputs` (this rank's files: owner[i] == comm.rank()) into OUTDIR (already the
// temporary output directory). Returns this rank's counters for report.json.
nlohmann::json pack_pretrain(const std::vector<curate::InputFile>& inputs, const std::vector<int>& owner,
                             const curate::ReaderOptions& reader, const tok::Tokenizer& tokenizer,
                             const PretrainOptions& opt, const std::string& outdir, const nlohmann::json& provenance_config,
                             dist::Communicator& comm);

}  // namespace bellows::pack
