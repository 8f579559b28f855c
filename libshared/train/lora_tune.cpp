#include "train/lora_tune.hpp"

#include "train/trainer.hpp"

namespace bellows::train {

cli::ToolSpec lora_tune_tool_spec() {
  cli::ToolSpec s;
  s.name = "lora-tune";
  s.summary = "fine-tune a base model on SFT shards: LoRA adapters on the frozen base, or every weight (--full)";
  s.usage = "lora-tune --base CKPT|--base-hf DIR|--base-gguf FILE --data SFT_SHARDS -o RUNDIR [options]";
  s.description =
      "Trains on tokens_sft shards (tokenize-pack --mode sft), the loss only on response/assistant\n"
      "tokens (the shards' loss mask), packed examples never attending across their boundaries.\n"
      "With LoRA (default) the base is frozen — no gradient or optimizer memory for it — and adapters\n"
      "on --targets learn: y = x W^T + (alpha/r) dropout(x) A^T B^T, A Kaiming-uniform, B zero.\n"
      "RUNDIR/checkpoints/step-N/adapter.h5 holds the adapters, their AdamW state and the base's\n"
      "fingerprint (an adapter is never applied to another base); lm-generate --lora and\n"
      "ckpt-convert --lora (PEFT, merged HF/GGUF, GGUF LoRA) take it. --full trains every weight and\n"
      "writes model checkpoints like pretrain. --base-hf/--base-gguf import the base into RUNDIR/base/\n"
      "first. Resume (--resume auto), signals (exit 75), metrics, evaluation and TP/PP/DP as pretrain.";
  add_training_options(s, TrainMode::sft);
  s.examples = {"lora-tune --base runs/small --data sft/ --rank 16 --alpha 32 --steps 500 -o runs/small-lora",
                "lora-tune --base-hf models/SmolLM2-135M --data sft/ --targets q,v --steps 500 -o runs/smol-lora",
                "lora-tune --base runs/small --data sft/ --full --lr 1e-5 --steps 500 -o runs/small-sft",
                "mpirun -np 4 lora-tune --base runs/small --data sft/ --tp 2 --steps 500 -o runs/small-lora",
                "lora-tune --base-hf models/Llama-3-70B --tp 4 --nodes 1 --gpus-per-node 4 --gpu h100-80gb \\\n"
                "          --seq-len 8192 --micro-batch 1 --recompute full --dry-run"};
  s.run = [](cli::Invocation& inv) { return run_training(inv, TrainMode::sft); };
  return s;
}

}  // namespace bellows::train
