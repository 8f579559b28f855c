#include "train/dpo_align.hpp"

#include "train/trainer.hpp"

namespace bellows::train {

cli::ToolSpec dpo_align_tool_spec() {
  cli::ToolSpec s;
  s.name = "dpo-align";
  s.summary = "align a model on preference pairs (DPO, IPO, hinge) against a frozen reference, with an adapter or every weight";
  s.usage = "dpo-align --policy CKPT [--lora ADAPTER | --new-lora] --data PREF_SHARDS -o RUNDIR [options]";
  s.description =
      "Trains on tokens_preference shards (tokenize-pack --mode preference): each pair is two rows,\n"
      "the shared prompt then the chosen or the rejected response, log-probabilities summed over the\n"
      "response tokens only. The loss compares the policy with a reference (TRL's DPOTrainer):\n"
      "  sigmoid  -(1-e) log s(beta h) - e log s(-beta h),  h = (pc - pr) - (rc - rr)\n"
      "  ipo      (h - 1/(2 beta))^2 on per-token mean log-probabilities\n"
      "  hinge    max(0, 1 - beta h)\n"
      "plus --sft-weight x the chosen responses' mean NLL. Reported rewards are beta-scaled:\n"
      "beta * (log p_policy - log p_reference) of each response.\n"
      "The reference: with --new-lora the base with the adapters off; with --lora the base with the\n"
      "starting adapter frozen (kept in RUNDIR/reference/); otherwise (every weight trains) a frozen\n"
      "copy of --policy. --precompute-ref runs it once over the data instead (RUNDIR/reference/logps-*.h5).\n"
      "Checkpoints are lora-tune's (adapter.h5) or pretrain's (model.h5): lm-generate and ckpt-convert\n"
      "take them as they are. Resume (--resume auto), signals (exit 75), metrics and TP/PP/DP as pretrain.";
  add_training_options(s, TrainMode::dpo);
  s.examples = {"dpo-align --policy runs/small --lora runs/small-lora --data pref/ --beta 0.1 --steps 200 -o runs/small-dpo",
                "dpo-align --policy runs/small --new-lora --rank 8 --data pref/ --valid-data pref-valid/ --eval-every 20 -o runs/dpo",
                "dpo-align --policy runs/small-sft --data pref/ --precompute-ref --lr 1e-6 --loss ipo -o runs/small-dpo-full",
                "mpirun -np 4 dpo-align --policy runs/small --new-lora --data pref/ --tp 2 --global-batch 16 -o runs/dpo"};
  s.run = [](cli::Invocation& inv) { return run_training(inv, TrainMode::dpo); };
  return s;
}

}  // namespace bellows::train
