// Packing supervised fine-tuning examples (schemas/tokens_sft.json).
//
// Input: JSONL with string fields prompt/response, or chat "messages" ([{role, content}], roles
// system/user/assistant). When the tokenizer's tokenizer_config.json has a chat_template, it is
// rendered (tok/chat_template.hpp; prompt/response become a user and an assistant message) and
// the loss covers what each assistant turn adds: the rendering of the conversation up to that
// turn minus the rendering before it with add_generation_prompt. Without one, bellows' default
// template is used:
//     for each message:  "<|{role}|>\n" + content, then "\n" — or EOS after an assistant turn
// (prompt/response: prompt, then response + EOS). Loss covers responses / assistant contents and
// their EOS; the rest is masked. Each part is tokenized on its own and the ids concatenated.
//
// Examples longer than seq_len+1 tokens keep their first seq_len+1 tokens (counted; an example
// left with no target is skipped and counted). Examples are packed into samples of seq_len+1 by
// best fit in input order (each goes to the open sample with the least room that still fits it,
// else a new one), padding with EOS (masked). Segment starts are stored so examples never attend
// across their boundaries. Every rank tokenizes its files into work streams; rank 0 plans the
// bins from the example lengths alone; each rank writes its share of the bins, reading the
// examples from the streams: the same shards for any number of ranks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "curate/inputs.hpp"
#include "dist/comm.hpp"
#include "tok/tokenizer.hpp"

namespace bellows::pack {

struct SftOptions {
  uint32_t seq_len = 2048;
  bool bos = false;
  bool skip_bad = false;
  size_t max_doc_bytes = 32u << 20;
  uint64_t max_samples_per_shard = 65536;
};

// Best fit in order: returns, for each example length (each <= capacity), its bin index.
std::vector<uint64_t> best_fit_bins(const std::vector<uint32_t>& lengths, uint32_t capacity);

nlohmann::json pack_sft(const std::vector<curate::InputFile>& inputs, const std::vector<int>& owner,
                        const tok::Tokenizer& tokenizer, const SftOptions& opt, const std::string& outdir,
                        const nlohmann::json& provenance_config, dist::Communicator& comm);

}  // namespace bellows::pack
