// Packing preference pairs (schemas/tokens_preference.json) for DPO: JSONL records with string
// fields prompt, chosen and rejected become three ragged token arrays per pair: the prompt
// ([BOS] prompt), and each response followed by EOS. The prompt is kept apart from the responses,
// so a trainer masks it by construction. Pairs keep their input order (file, then line); each
// rank writes the pairs of its files, so the shards concatenated in rank order are the same for
// any number of ranks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "curate/inputs.hpp"
#include "dist/comm.hpp"
#include "tok/tokenizer.hpp"

namespace bellows::pack {

struct PreferenceOptions {
  bool bos = false;
  bool skip_bad = false;
  size_t max_doc_bytes = 32u << 20;
  uint64_t max_pairs_per_shard = 100000;
};

nlohmann::json pack_preference(const std::vector<curate::InputFile>& inputs, const std::vector<int>& owner,
                               const tok::Tokenizer& tokenizer, const PreferenceOptions& opt, const std::string& outdir,
                               const nlohmann::json& provenance_config, dist::Communicator& comm);

}  // namespace bellows::pack
