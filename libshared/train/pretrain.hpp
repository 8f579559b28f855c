// The pretrain tool: a Llama model trained from scratch (or --init-from) on pretraining token
// shards; the loop is train/trainer.hpp's.
#pragma once

#include "cli/app.hpp"
#include "train/trainer.hpp"

namespace bellows::train {

cli::ToolSpec pretrain_tool_spec();

}  // namespace bellows::train
