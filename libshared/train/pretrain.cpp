#include "train/pretrain.hpp"

namespace bellows::train {

cli::ToolSpec pretrain_tool_spec() {
  cli::ToolSpec s;
  s.name = "pretrain";
  s.summary = "pretrain a Llama-family model on token shards, on one process or across ranks (TP x PP x DP)";
  s.usage = "pretrain --data DIR --model PRESET|config.json --steps N -o RUNDIR [options]";
  s.description =
      "Trains from tokens_pretrain shards (tokenize-pack --mode pretrain). --model is a preset (tiny,\n"
      "small, smollm2-135m, llama3.2-1b, llama3-8b, llama3-70b; vocabulary from the data) or an HF\n"
      "config.json. Each step: --global-batch samples as --global-batch/--micro-batch accumulated\n"
      "micro-batches, clipping by global norm, AdamW (no weight decay on norms), warmup then cosine\n"
      "to --min-lr. RUNDIR gets metrics.jsonl (a record per step: loss, lr, grad norm, tokens/s,\n"
      "FLOP/s, MFU, time split), config.json, tokenizer/ (a copy of the data's tokenizer) and\n"
      "checkpoints/step-N/ (atomic; `latest` names the newest; --keep-checkpoints of them kept).\n"
      "--resume auto continues from the newest complete checkpoint, bit-identically. On SIGTERM or\n"
      "SIGUSR1 the current step finishes, a checkpoint is saved and the exit code is 75.\n"
      "Under mpirun/srun the model is cut by --tp and --pp, the rest of the ranks are data-parallel.\n"
      "--dry-run prints the memory and compute plan of a configuration and trains nothing.";
  add_training_options(s, TrainMode::pretrain);
  s.examples = {"pretrain --data tokens/ --model small --seq-len 256 --micro-batch 8 --steps 1000 -o runs/small",
                "pretrain --data tokens/ --model small --steps 1000 -o runs/small --resume auto",
                "mpirun -np 8 pretrain --data tokens/ --model small --tp 2 --pp 2 --zero 1 --steps 1000 -o runs/small8",
                "pretrain --model llama3-8b --seq-len 8192 --micro-batch 1 --dry-run"};
  s.run = [](cli::Invocation& inv) { return run_training(inv, TrainMode::pretrain); };
  return s;
}

}  // namespace bellows::train
