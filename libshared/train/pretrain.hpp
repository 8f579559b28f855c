// The pretrain tool: a Llama model trained on token shards with AdamW (warmup + cosine to a
// floor, clipping by global norm, gradient accumulation), logging a line and a metrics record
// per step, evaluating, and checkpointing so that a killed or preempted run resumes exactly.
#pragma once

#include "cli/app.hpp"

namespace bellows::train {

cli::ToolSpec pretrain_tool_spec();

// The learning rate at optimizer step `step` (0-based): linear warmup to `lr` over `warmup`
// steps, then cosine decay to `min_lr` at step `total`.
double lr_at(uint64_t step, uint64_t total, uint64_t warmup, double lr, double min_lr);

}  // namespace bellows::train
