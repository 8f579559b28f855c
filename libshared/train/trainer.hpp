// The training loop pretrain and lora-tune share: data (pretraining or SFT shards), the model
// cut across ranks (tensor, pipeline, data parallelism; ZeRO-1), AdamW with warmup and cosine
// decay, clipping, evaluation, metrics, checkpoints that resume under any layout, and signals.
// pretrain trains every weight from scratch or --init-from; lora-tune tunes a --base: LoRA
// adapters on the frozen base (adapter checkpoints), or every weight with --full. dpo-align
// trains a policy (its adapters or every weight) on preference pairs against a reference.
#pragma once

#include <cstdint>

#include "cli/app.hpp"

namespace bellows::train {

enum class TrainMode { pretrain, sft, dpo };

// The option groups of a training tool (the SFT mode adds the base and the LoRA settings).
void add_training_options(cli::ToolSpec& s, TrainMode mode);
// Runs the tool's job; its exit code.
int run_training(cli::Invocation& inv, TrainMode mode);

// The learning rate at optimizer step `step` (0-based): linear warmup to `lr` over `warmup`
// steps, then cosine decay to `min_lr` at step `total`.
double lr_at(uint64_t step, uint64_t total, uint64_t warmup, double lr, double min_lr);

}  // namespace bellows::train
