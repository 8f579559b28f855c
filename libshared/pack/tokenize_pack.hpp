// tokenize-pack: tokenizers (HF tokenizer.json byte-level BPE, tiktoken rank files) for
// debugging (--encode / --decode) and packing documents into token shards (--mode pretrain).
#pragma once

#include "cli/app.hpp"

namespace bellows::pack {

cli::ToolSpec tool_spec();

}  // namespace bellows::pack
