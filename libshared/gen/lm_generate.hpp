// The lm-generate tool: sample text from a checkpoint (KV cache, greedy or temperature + top-p),
// dump the logits of every prompt position as JSON, or score token shards (mean loss,
// perplexity). What people run to see that a model learned something.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/app.hpp"

namespace bellows::gen {

cli::ToolSpec lm_generate_tool_spec();

// --ids: "1,2,3" (spaces around ids allowed) -> ids. Throws UsageError naming --ids for an empty
// list or anything that is not a non-negative integer; the vocabulary is checked later.
std::vector<int32_t> parse_ids(const std::string& s);

}  // namespace bellows::gen
