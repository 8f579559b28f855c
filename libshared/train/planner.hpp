// The --dry-run planner (issue 6): what a training layout would need per rank — memory for
// weights, gradients, optimizer state and activations against the device's, FLOPs, bytes on each
// kind of link — and an estimate of the step time, for a model shape and a TP x PP x DP grid on
// nodes x GPUs. Pure arithmetic: it allocates no model and touches no device, so a 70B on 512
// GPUs is planned on a laptop. `suggest_layouts` searches the grids of a cluster and ranks them.
//
// Units: memory and traffic in bytes; printed in decimal GB (1e9 bytes), as the GPU datasheets
// quote memory, so "80 GB" on an H100 is the 80e9 the planner compares against.
//
// What is modelled, and what is assumed, is stated at each formula in planner.cpp; in short:
// Megatron-style bf16 mixed precision on GPUs (fp32 everything on the CPU backend), ZeRO-1 as
// Megatron's distributed optimizer, activations after Korthikanti et al. 2022 counted tensor by
// tensor for our Llama layer, 1F1B pipeline schedule, ring collectives, no overlap of
// communication with compute.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/app.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"

namespace bellows::train {

struct DeviceSpec {
  std::string name;
  double memory_bytes = 0;            // decimal: 80 GB = 80e9
  double peak_flops = 0;              // dense bf16 tensor-core peak (fp32 for cpu)
  double intra_node_bytes_per_s = 0;  // per GPU, one direction (NVLink)
  double inter_node_bytes_per_s = 0;  // per GPU, one direction (its InfiniBand NIC)
  bool mixed_precision = true;        // bf16 weights/activations + fp32 master state; false: fp32 everything
  double reserved_bytes = 0;          // kept back from memory_bytes: CUDA context, NCCL buffers, fragmentation
  std::string description;            // e.g. "NVIDIA H100 SXM5 80GB, NVLink 4, InfiniBand NDR"
};

// The built-in table (sources in planner.cpp). "cpu" is this host: memory from /proc/meminfo's
// MemTotal, a nominal FLOP/s. Throws UsageError naming --gpu and listing the known names.
const DeviceSpec& device_spec(const std::string& name);
std::vector<std::string> device_names();

struct PlanRequest {
  nn::LlamaConfig cfg;
  std::string model_name;
  int tp = 1, pp = 1, dp = 0;  // dp 0: world / (tp * pp)
  std::vector<int> pp_layers;  // layers per stage (--pp-layers); empty: balanced, the first L % P stages one more
  int nodes = 1, gpus_per_node = 1;  // world = nodes * gpus_per_node; ranks fill a node before the next
  DeviceSpec device;
  int micro_batch = 1, seq_len = 2048, global_batch = 1;
  int zero = 0;  // 0, or 1: optimizer state (and fp32 master weights) sharded over DP
  nn::Recompute recompute = nn::Recompute::none;
  int lora_rank = 0;                      // 0: full training; r > 0: LoRA adapters on a frozen base
  std::vector<std::string> lora_targets;  // of q,k,v,o,gate,up,down; empty: all seven
  bool flash_attention = true;  // GPU attention keeps no [B,H,T,T] probabilities (our CPU backend does)
  double compute_efficiency = 0.5;  // assumed fraction of peak FLOP/s the matmuls reach (an assumption)
};

// One pipeline stage: its ranks (tp * dp of them, consecutive, all alike) and what each holds.
struct StagePlan {
  int stage = 0;
  int first_rank = 0, last_rank = 0;   // inclusive
  int first_node = 0, last_node = 0;   // inclusive
  int first_layer = 0, layers = 0;     // decoder layers [first_layer, first_layer + layers)
  bool has_embedding = false, has_head = false;
  double params = 0;            // parameters one rank holds (frozen base + adapters for LoRA)
  double trainable_params = 0;  // those with gradients and optimizer state
  int microbatches_in_flight = 0;  // activations kept at once under 1F1B
  double weights = 0, grads = 0, optimizer = 0, activations = 0, total = 0;  // bytes per rank
  bool fits = false;            // total <= device memory - reserve
  double flops_per_microbatch = 0;  // per rank, recomputation included
  double tp_bytes_per_microbatch = 0, pp_bytes_per_microbatch = 0, dp_bytes_per_step = 0;  // sent per rank
};

// What one kind of traffic costs a rank per optimizer step (the busiest stage's).
struct LinkPlan {
  double bytes = 0;         // per rank per step: ring-collective traffic or point-to-point sends
  bool inter_node = false;  // some group of this kind spans nodes, so the slower link bounds it
  double bytes_per_s = 0;   // the link's bandwidth used
  double seconds = 0;
};

struct Plan {
  PlanRequest request;
  int world = 0, dp = 0;
  int accumulation = 0;  // M: micro-batches per DP rank per step (global / (micro * dp))
  std::vector<StagePlan> stages;
  double total_params = 0, trainable_params = 0;
  double usable_memory = 0;  // device memory - reserve
  double model_flops_per_step = 0;     // the training FLOPs of the model (MFU's numerator)
  double hardware_flops_per_step = 0;  // + recomputation
  LinkPlan tp_allreduce, pp_p2p, dp_allreduce;
  double compute_s = 0, bubble_s = 0, step_s = 0;  // estimate; step = compute + comm + bubble
  double tokens_per_s = 0, mfu = 0;
  std::vector<std::string> warnings;
  bool fits = false;  // every stage fits
};

// Ranks expanded from stages: the view per rank of the issue.
struct RankPlan {
  int rank, tp, dp, pp;
  std::string node;
  double weights, grads, optimizer, activations, total;
  bool fits;
  int layers;
  bool has_embedding, has_head;
};
std::vector<RankPlan> rank_plans(const Plan& plan);

// Throws UsageError naming the flag for a request that cannot be laid out (sizes that do not
// multiply to nodes x GPUs, unknown LoRA targets, ...); layouts that can but should not be
// (a TP group across nodes, heads not divisible by TP) become warnings.
Plan make_plan(const PlanRequest& req);
std::string format_plan(const Plan& plan);  // one line per stage, summary lines, FITS/OOM verdict
nlohmann::json plan_json(const Plan& plan);

// Every layout of base's nodes x GPUs — TP dividing the GPUs per node and the (kv) heads, PP
// dividing what is left, ZeRO 0/1, recompute none/selective/full — the fitting ones first by
// estimated step time, then the others by memory; the `top` best.
std::vector<Plan> suggest_layouts(PlanRequest base, size_t top = 10);
std::string format_suggestions(const std::vector<Plan>& plans);

// Command-line wiring. The planner-only flags (--nodes, --gpus-per-node, --gpu, --gpu-memory-gb,
// --gpu-tflops, --intra-node-bw, --inter-node-bw, --gpu-reserve-gb, --compute-efficiency,
// --lora-rank, --lora-targets, --suggest); --tp/--pp/--dp/--zero/--pp-layers, --micro-batch,
// --seq-len, --global-batch and --recompute are the training tool's and are read when declared.
void add_planner_options(cli::po::options_description& d);
// The first planner-only flag given on the command line ("--gpu", ...), or "" — for the tool to
// refuse them without --dry-run rather than ignore them.
std::string planner_flag_given(const cli::Invocation& inv);
PlanRequest plan_request_from(const cli::Invocation& inv, const nn::LlamaConfig& cfg, const std::string& model_name);
// --dry-run: prints the plan (or, with --suggest, the ranked layouts) and the JSON; exit code.
int run_dry_run(const cli::Invocation& inv, const nn::LlamaConfig& cfg, const std::string& model_name);

}  // namespace bellows::train
