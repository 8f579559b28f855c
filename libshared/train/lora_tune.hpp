// The lora-tune tool: supervised fine-tuning of a base model on SFT shards, with LoRA adapters on
// the frozen base (the default) or every weight (--full); the loop is train/trainer.hpp's.
#pragma once

#include "cli/app.hpp"

namespace bellows::train {

cli::ToolSpec lora_tune_tool_spec();

}  // namespace bellows::train
