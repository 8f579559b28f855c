#include "train/planner.hpp"
#include "train/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <typeinfo>

#include "core/error.hpp"
#include "dist/grid.hpp"

namespace bellows::train {
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------
namespace {

// /proc/meminfo's "kB" are KiB. 0 when unreadable (the plan then asks for --gpu-memory-gb).
double host_memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemTotal: %llu kB", &kib) == 1) return double(kib) * 1024.0;
  }
  return 0;
}

// Sources (NVIDIA datasheets; SXM parts, as in DGX/HGX systems):
// - H100 SXM5 ("NVIDIA H100 Tensor Core GPU" datasheet): 80 GB HBM3; BF16 tensor core 1,979
//   TFLOP/s *with sparsity*, so 989 dense; NVLink 4 at 900 GB/s total = 450 GB/s per direction.
//   DGX H100: eight ConnectX-7 400 Gb/s InfiniBand NDR ports, one per GPU = 50 GB/s per GPU.
// - H200 SXM ("NVIDIA H200 Tensor Core GPU" datasheet): 141 GB HBM3e; same compute as the H100
//   (989 TFLOP/s dense BF16) and NVLink (900 GB/s total); DGX H200: 8 x 400 Gb/s NDR.
// - A100 SXM4 80GB / 40GB ("NVIDIA A100 Tensor Core GPU" datasheet): BF16 312 TFLOP/s dense
//   (624 with sparsity); NVLink 3 at 600 GB/s total = 300 per direction. DGX A100: eight
//   ConnectX-6 200 Gb/s HDR ports = 25 GB/s per GPU.
// Memory is the datasheets' decimal GB; a card reports a little more (an H100 ~81.5 GiB ≈
// 85.5e9 B), so the plan errs on the safe side. The 4 GB reserve is an assumption: the CUDA
// context and cuBLAS workspaces (~1 GB), NCCL's buffers (a few hundred MB per communicator) and
// the caching allocator's fragmentation, which the tensor-by-tensor count does not see.
// - cpu: this host, as our CPU backend trains (fp32 everything, attention probabilities kept).
//   Memory: MemTotal; 1 TFLOP/s fp32, 20 GB/s between processes on a host (shared memory) and
//   12.5 GB/s between hosts (100 Gb/s) are nominal figures — pass --gpu-tflops with the sgemm
//   peak pretrain logs at start-up, and the links you have.
std::vector<DeviceSpec> make_device_table() {
  const double GB = 1e9, T = 1e12, reserve = 4 * GB;
  return {
      {"h100-80gb", 80 * GB, 989 * T, 450 * GB, 50 * GB, true, reserve, "NVIDIA H100 SXM5 80GB, NVLink 4, InfiniBand NDR"},
      {"h200-141gb", 141 * GB, 989 * T, 450 * GB, 50 * GB, true, reserve, "NVIDIA H200 SXM 141GB, NVLink 4, InfiniBand NDR"},
      {"a100-80gb", 80 * GB, 312 * T, 300 * GB, 25 * GB, true, reserve, "NVIDIA A100 SXM4 80GB, NVLink 3, InfiniBand HDR"},
      {"a100-40gb", 40 * GB, 312 * T, 300 * GB, 25 * GB, true, reserve, "NVIDIA A100 SXM4 40GB, NVLink 3, InfiniBand HDR"},
      {"cpu", host_memory_bytes(), 1 * T, 20 * GB, 12.5 * GB, false, 0.0, "this host's CPU backend (fp32), nominal speeds"},
  };
}

const std::vector<DeviceSpec>& device_table() {
  static const std::vector<DeviceSpec> t = make_device_table();
  return t;
}

}  // namespace

std::vector<std::string> device_names() {
  std::vector<std::string> n;
  for (const auto& d : device_table()) n.push_back(d.name);
  return n;
}

const DeviceSpec& device_spec(const std::string& name) {
  for (const auto& d : device_table())
    if (d.name == name) return d;
  std::string known;
  for (const auto& n : device_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("--gpu: unknown device '" + name + "' (known: " + known +
                   "; override any number with --gpu-memory-gb, --gpu-tflops, --intra-node-bw, --inter-node-bw)");
}

// ---------------------------------------------------------------------------------------------
// The model's pieces as one rank of a TP x PP grid holds them
// ---------------------------------------------------------------------------------------------
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Widths of the tensor-parallel dimensions on one rank. Megatron splits attention by heads,
// the MLP by F and the vocabulary (embedding and lm_head) by rows; where a count does not divide
// (a warning), the busiest rank's ceiling is planned. KV heads fewer than TP are replicated, one
// per rank, as Megatron does for grouped-query attention.
struct Shard {
  int64_t C = 0, D = 0, heads = 0, kv_heads = 0, F = 0, V = 0;
  int64_t hq() const { return heads * D; }
  int64_t hkv() const { return kv_heads * D; }
};

Shard shard_of(const nn::LlamaConfig& c, int tp) {
  return {c.hidden_size,         c.head_dim(), ceil_div(c.num_attention_heads, tp), ceil_div(c.num_key_value_heads, tp),
          ceil_div(c.intermediate_size, tp), ceil_div(c.vocab_size, tp)};
}

// The parameters of one decoder layer (norms included), whole and on one rank (norms replicated).
double layer_params(const nn::LlamaConfig& c) {
  const double C = double(c.hidden_size), F = double(c.intermediate_size), kvd = double(c.num_key_value_heads * c.head_dim());
  return 2 * C + 2 * C * C + 2 * kvd * C + 3 * C * F;
}
double layer_params_rank(const Shard& s) {
  const double C = double(s.C);
  return 2 * C + 2 * C * double(s.hq()) + 2 * C * double(s.hkv()) + 3 * C * double(s.F);
}

// LoRA targets: Linear [out, in]. Column-parallel ones (q, k, v, gate, up) split `out` over TP,
// so the adapter's A [r, in] is replicated and B [out/t, r] split; row-parallel ones (o, down)
// split `in`: A [r, in/t] split, B [out, r] replicated.
struct LoraTarget {
  std::string name;
  double in, out, in_rank, out_rank;
};

const std::vector<std::string>& all_lora_targets() {
  static const std::vector<std::string> t = {"q", "k", "v", "o", "gate", "up", "down"};
  return t;
}

std::vector<LoraTarget> lora_targets(const PlanRequest& r, const Shard& s) {
  const auto& c = r.cfg;
  const double C = double(c.hidden_size), F = double(c.intermediate_size), hq = double(c.num_attention_heads * c.head_dim()),
               hkv = double(c.num_key_value_heads * c.head_dim());
  const std::vector<LoraTarget> every = {
      {"q", C, hq, C, double(s.hq())},      {"k", C, hkv, C, double(s.hkv())}, {"v", C, hkv, C, double(s.hkv())},
      {"o", hq, C, double(s.hq()), C},      {"gate", C, F, C, double(s.F)},    {"up", C, F, C, double(s.F)},
      {"down", F, C, double(s.F), C}};
  const std::vector<std::string>& want = r.lora_targets.empty() ? all_lora_targets() : r.lora_targets;
  std::vector<LoraTarget> out;
  for (const auto& t : every)
    if (std::find(want.begin(), want.end(), t.name) != want.end()) out.push_back(t);
  return out;
}

// Adapter parameters of one layer: whole (r (in + out) per target) and on one rank.
double lora_layer_params(const PlanRequest& r, const Shard& s) {
  double n = 0;
  for (const auto& t : lora_targets(r, s)) n += double(r.lora_rank) * (t.in + t.out);
  return r.lora_rank > 0 ? n : 0;
}
double lora_layer_params_rank(const PlanRequest& r, const Shard& s) {
  double n = 0;
  for (const auto& t : lora_targets(r, s)) n += double(r.lora_rank) * (t.in_rank + t.out_rank);
  return r.lora_rank > 0 ? n : 0;
}

// Layers per stage: --pp-layers as given, or as even as possible with the first L % P stages one
// more (the trainer's rule, train/parallel.cpp). More stages than layers leaves the last ones
// empty (warned); a --pp-layers list that does not describe the model is an error.
// The trainer's rule (train/parallel.hpp), so that the plan describes the run.
std::vector<int> stage_layer_counts(const PlanRequest& r) {
  return train::stage_layer_counts(int(r.cfg.num_hidden_layers), r.pp, r.pp_layers);
}

// Everything derived from a request that the per-stage arithmetic shares.
struct Ctx {
  const PlanRequest& r;
  Shard sh;
  int P = 1, M = 1, dp = 1;
  double N = 0;          // tokens per micro-batch
  double e_act = 2;      // bytes per activation element: bf16 on GPUs, fp32 on the CPU backend
  double e_w = 2;        // bytes per weight as the forward reads it
  double e_opt = 12;     // optimizer bytes per trainable parameter: fp32 master + Adam m, v (GPU); m, v (CPU)
  bool flash = true;     // no [B,H,T,T] probabilities kept
  bool lora = false;
};

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

// Parameters one rank of a stage holds (base, frozen or not), and adapter parameters. Embedding
// on the first stage and lm_head (+ final norm) on the last, both vocab-parallel; tied
// embeddings are one tensor when pp = 1 and a copy on the last stage otherwise (Megatron keeps
// the copies equal by all-reducing their gradients between the two stages).
void stage_params(const Ctx& x, StagePlan& s) {
  const auto& c = x.r.cfg;
  const double C = double(c.hidden_size), VC = double(x.sh.V) * C;
  double base = double(s.layers) * layer_params_rank(x.sh);
  if (s.has_embedding) base += VC;
  if (s.has_head) base += C + ((c.tie_word_embeddings && x.P == 1) ? 0.0 : VC);
  const double adapters = double(s.layers) * lora_layer_params_rank(x.r, x.sh);
  s.params = base + adapters;
  s.trainable_params = x.lora ? adapters : base;
}

// Mixed precision as Megatron (bf16, distributed optimizer): bf16 weights 2 B, fp32 gradients
// 4 B (main_grad: accumulated and reduced in fp32), fp32 master weights 4 B + Adam m, v 8 B =
// 12 B, the 12 B divided by DP under ZeRO-1 (Megatron's "6 + 12/d bytes per parameter"). The CPU
// backend trains in fp32: weights 4, grads 4, Adam 8 (no master copy), ZeRO-1 sharding the 8.
// LoRA: the frozen base keeps its weights only; the adapters are trained parameters as above.
void stage_state_memory(const Ctx& x, StagePlan& s) {
  const double zero_div = x.r.zero == 1 ? double(x.dp) : 1.0;
  s.weights = x.e_w * s.params;
  s.grads = 4 * s.trainable_params;
  s.optimizer = x.e_opt * s.trainable_params / zero_div;
}

// One layer's saved activations for one micro-batch on one rank, in bytes, split the way
// recomputation treats them. The tensors are our layer's (nn/llama.cpp keeps exactly these):
//   input [N,C], ln1 [N,C] + rstd1 [N], q [N,Hq], k, v [N,Hkv], attention output [N,Hq] (o_proj's
//   input), resid_mid [N,C], ln2 [N,C] + rstd2 [N], gate, up, silu(gate)*up [N,F]
// and the attention probabilities [B,H,T,T]. This is Korthikanti et al. 2022 ("Reducing
// Activation Recomputation in Large Transformer Models", no sequence parallelism) redone for
// Llama: no dropout masks; RMSNorm; grouped-query K, V of Hkv = KV*D wide; SwiGLU keeps three
// [N,F] tensors instead of GPT's [N,4h] twice. The [N,C] tensors are replicated over TP, the
// head/F ones split: per layer e*N*(4C + (2Hq + 2Hkv + 3F)/t) — for GPT's shapes this is the
// paper's s*b*h*(10 + 24/t) less its 2sbh of dropout masks. The paper's 5as/(ht) score term is
// e*B*H*T*T/t here (softmax output only: there is no dropout). GPU attention is flash-style, as
// our GPU backend will be: it keeps only the log-sum-exp [N,H/t] in fp32 and recomputes the
// scores inside its backward, so the term is 0 there (and selective recompute changes nothing);
// our CPU backend keeps the probabilities. LoRA adds each target's A x [N,r] (B's input).
struct LayerActivations {
  double input = 0;   // what full recomputation keeps
  double rest = 0;    // everything else but the probabilities
  double scores = 0;  // [B,H/t,T,T]
};

LayerActivations layer_activations(const Ctx& x) {
  const auto& sh = x.sh;
  const double N = x.N, e = x.e_act, C = double(sh.C);
  LayerActivations a;
  a.input = e * N * C;
  a.rest = e * N * (3 * C + 2 * double(sh.hq()) + 2 * double(sh.hkv()) + 3 * double(sh.F)) + 4 * N * 2 /* rstd1, rstd2 */;
  if (x.lora) a.rest += e * N * double(x.r.lora_rank) * double(lora_targets(x.r, sh).size());
  if (x.flash)
    a.rest += 4 * N * double(sh.heads);  // log-sum-exp
  else
    a.scores = e * double(x.r.micro_batch) * double(sh.heads) * double(x.r.seq_len) * double(x.r.seq_len);
  return a;
}

// A stage's activations. Under 1F1B stage s holds min(P - s, M) micro-batches between their
// forward and backward (the first stage the most); per micro-batch it keeps each layer's
// activations as recomputation allows:
//   none: everything; selective: all but the probabilities, one layer's recomputed at a time;
//   full: each layer's input, one layer's full set rebuilt at a time (Korthikanti sec. 4).
// Once per stage, not per micro-batch in flight: the stage's output (the final hidden state on
// the last stage, the send buffer elsewhere), the backward's gradient temporaries of one layer
// (d of the residual stream, of a norm output, of q, k, v, the attention output, gate, up, h)
// and on the last stage the final norm, the fp32 logits [N, V/t] (reused for their gradient)
// and the per-token losses. For the CPU backend at tp = pp = 1 this is exactly
// LlamaModel::activation_floats * 4 (tested).
double stage_activations(const Ctx& x, const StagePlan& s) {
  const LayerActivations a = layer_activations(x);
  const double L = double(s.layers), inflight = double(s.microbatches_in_flight);
  double kept = 0;
  switch (x.r.recompute) {
    case nn::Recompute::none: kept = inflight * L * (a.input + a.rest + a.scores); break;
    case nn::Recompute::selective: kept = inflight * L * (a.input + a.rest) + (s.layers > 0 ? a.scores : 0); break;
    case nn::Recompute::full: kept = inflight * L * a.input + (s.layers > 0 ? a.rest + a.scores : 0); break;
  }
  const auto& sh = x.sh;
  const double N = x.N, e = x.e_act, C = double(sh.C);
  const double output = e * N * C;
  const double grad_temps = e * N * (2 * C + 2 * double(sh.hq()) + 2 * double(sh.hkv()) + 3 * double(sh.F));
  const double head = s.has_head ? e * N * C + 4 * N + 4 * N * double(sh.V) + 4 * N : 0;
  return kept + output + grad_temps + head;
}

// ---------------------------------------------------------------------------------------------
// FLOPs and traffic
// ---------------------------------------------------------------------------------------------

// Per micro-batch, summed over the stage's TP ranks (divide by tp for one rank), as
// LlamaConfig::train_flops_per_token counts (PaLM's MFU convention): 6 per parameter of the
// stage's layers (norms included, as that function does) and of the last stage's final norm
// and lm_head, none for the embedding lookup, plus 12 C T per layer and token for attention.
// LoRA: the frozen base skips its weight gradients, 4 per parameter instead of 6; the adapters
// cost 6 per parameter. Hardware FLOPs add recomputation: full reruns each layer's forward
// (2 per parameter + 4 C T; Megatron's "+1/3" on the layers), selective on a probabilities-
// keeping backend reruns Q K^T (2 C T). A flash kernel's own recomputation of the scores in its
// backward is not counted (it is the kernel's, not the schedule's).
struct StageFlops {
  double model = 0, hardware = 0;
};

StageFlops stage_flops(const Ctx& x, const StagePlan& s) {
  const auto& c = x.r.cfg;
  const double C = double(c.hidden_size), T = double(x.r.seq_len), L = double(s.layers);
  const double base_per_param = x.lora ? 4 : 6;
  double base = L * layer_params(c);
  if (s.has_head) base += C + double(c.vocab_size) * C;
  const double adapters = L * lora_layer_params(x.r, x.sh);
  const double per_token = base_per_param * base + 6 * adapters + 12 * L * C * T;
  double extra = 0;
  if (x.r.recompute == nn::Recompute::full) extra = 2 * L * layer_params(c) + 2 * adapters + 4 * L * C * T;
  if (x.r.recompute == nn::Recompute::selective && !x.flash) extra = 2 * L * C * T;
  return {per_token * x.N, (per_token + extra) * x.N};
}

// Ring collectives: an all-reduce moves 2 (n-1)/n of the buffer through each rank, a reduce-
// scatter or all-gather (n-1)/n.
double ring_allreduce(double bytes, int n) { return n > 1 ? 2.0 * double(n - 1) / double(n) * bytes : 0.0; }
double ring_half(double bytes, int n) { return n > 1 ? double(n - 1) / double(n) * bytes : 0.0; }

// TP (Megatron, no sequence parallelism): per layer two all-reduces of [N,C] in the forward
// (after o_proj and after down_proj) and two in the backward (the input gradients of q/k/v and
// of gate/up); full recomputation repeats the forward's two. The vocab-parallel embedding adds
// one in the forward, the lm_head one in the backward (the cross-entropy's all-reduces of [N]
// floats are left out). PP: each micro-batch's [N,C] activation goes forward and its gradient
// back; every TP rank sends the whole tensor (no scatter/gather optimisation). DP: the
// trainable parameters' fp32 gradients are all-reduced; under ZeRO-1 (Megatron's distributed
// optimizer) they are reduce-scattered in fp32 and the updated weights all-gathered in bf16
// (fp32 on the CPU backend): (d-1)/d (4 + 2) instead of 2 (d-1)/d 4 bytes per parameter.
void stage_traffic(const Ctx& x, StagePlan& s) {
  const double act = x.e_act * x.N * double(x.r.cfg.hidden_size);
  const double per_layer = x.r.recompute == nn::Recompute::full ? 6 : 4;
  const double n_allreduce = double(s.layers) * per_layer + (s.has_embedding ? 1 : 0) + (s.has_head ? 1 : 0);
  s.tp_bytes_per_microbatch = n_allreduce * ring_allreduce(act, x.r.tp);
  s.pp_bytes_per_microbatch = act * double((s.stage > 0 ? 1 : 0) + (s.stage < x.P - 1 ? 1 : 0));
  const double grads = 4 * s.trainable_params;
  s.dp_bytes_per_step = x.r.zero == 1 ? ring_half(grads, x.dp) + ring_half(x.e_w * s.trainable_params, x.dp)
                                      : ring_allreduce(grads, x.dp);
}

// Which link each kind of group uses: ranks fill a node before the next (node = rank / GPUs per
// node); a kind whose some group spans nodes is bounded by the inter-node link.
bool groups_span_nodes(const std::vector<std::vector<int>>& groups, int gpus_per_node) {
  for (const auto& g : groups)
    if (g.front() / gpus_per_node != g.back() / gpus_per_node) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

void validate(const PlanRequest& r) {
  r.cfg.validate("--model " + r.model_name);
  auto positive = [](int v, const char* flag) {
    if (v <= 0) throw UsageError(std::string(flag) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive(r.micro_batch, "--micro-batch");
  positive(r.seq_len, "--seq-len");
  positive(r.global_batch, "--global-batch");
  positive(r.nodes, "--nodes");
  positive(r.gpus_per_node, "--gpus-per-node");
  if (int64_t(r.nodes) * r.gpus_per_node > (int64_t(1) << 24))
    throw UsageError("--nodes x --gpus-per-node: more than 16M ranks is not a plan");
  if (r.zero != 0 && r.zero != 1)
    throw UsageError("--zero " + std::to_string(r.zero) + ": the planner models 0 and 1 (optimizer state sharded over DP)");
  if (r.lora_rank < 0) throw UsageError("--lora-rank must be at least 0 (0: full training)");
  for (const auto& t : r.lora_targets)
    if (std::find(all_lora_targets().begin(), all_lora_targets().end(), t) == all_lora_targets().end())
      throw UsageError("--lora-targets: '" + t + "' is not one of q, k, v, o, gate, up, down");
  if (!(r.compute_efficiency > 0 && r.compute_efficiency <= 1))
    throw UsageError("--compute-efficiency must be in (0, 1] (the fraction of peak FLOP/s reached)");
  if (!(r.device.peak_flops > 0)) throw UsageError("--gpu-tflops must be positive");
  if (!(r.device.intra_node_bytes_per_s > 0) || !(r.device.inter_node_bytes_per_s > 0))
    throw UsageError("--intra-node-bw and --inter-node-bw must be positive");
  if (r.device.memory_bytes < 0 || r.device.reserved_bytes < 0)
    throw UsageError("--gpu-memory-gb and --gpu-reserve-gb may not be negative");
}

// The TP fix: the largest TP within a node that divides the requested one, the rest moved to PP.
std::string tp_across_nodes_warning(const PlanRequest& r) {
  int tp_fit = 1;
  for (int t = 1; t <= r.tp; ++t)
    if (r.tp % t == 0 && r.gpus_per_node % t == 0) tp_fit = t;
  const int pp_fit = r.pp * (r.tp / tp_fit);
  std::ostringstream w;
  w << "TP=" << r.tp << " spans nodes of " << r.gpus_per_node << " GPUs: each tensor-parallel group crosses nodes, so"
    << " every layer's all-reduces run over the inter-node link ("
    << r.device.inter_node_bytes_per_s / 1e9 << " GB/s instead of " << r.device.intra_node_bytes_per_s / 1e9
    << " GB/s); keep TP within a node and put PP across nodes, e.g. --tp " << tp_fit << " --pp " << pp_fit;
  return w.str();
}

std::vector<std::string> layout_warnings(const PlanRequest& r, const Plan& p, bool tp_spans) {
  std::vector<std::string> w;
  const auto& c = r.cfg;
  if (tp_spans) w.push_back(tp_across_nodes_warning(r));
  if (c.num_attention_heads % r.tp != 0)
    w.push_back(std::to_string(c.num_attention_heads) + " attention heads do not divide over --tp " + std::to_string(r.tp) +
                ": ranks would hold unequal heads (the busiest is planned)");
  if (c.num_key_value_heads % r.tp != 0) {
    if (r.tp % c.num_key_value_heads == 0)
      w.push_back(std::to_string(c.num_key_value_heads) + " kv heads for --tp " + std::to_string(r.tp) +
                  ": each kv head is replicated on " + std::to_string(r.tp / c.num_key_value_heads) + " ranks (planned so)");
    else
      w.push_back(std::to_string(c.num_key_value_heads) + " kv heads do not divide over --tp " + std::to_string(r.tp));
  }
  if (c.intermediate_size % r.tp != 0)
    w.push_back("intermediate_size " + std::to_string(c.intermediate_size) + " does not divide over --tp " + std::to_string(r.tp));
  if (r.global_batch % (r.micro_batch * p.dp) != 0)
    w.push_back("--global-batch " + std::to_string(r.global_batch) + " is not a multiple of --micro-batch " +
                std::to_string(r.micro_batch) + " x dp " + std::to_string(p.dp) + ": planned with " +
                std::to_string(p.accumulation * r.micro_batch * p.dp) + " samples per step");
  if (p.accumulation < r.pp && r.pp > 1)
    w.push_back(std::to_string(p.accumulation) + " micro-batches per step for " + std::to_string(r.pp) +
                " pipeline stages: the 1F1B bubble costs (P-1)/M = " +
                std::to_string(int(100.0 * (r.pp - 1) / p.accumulation)) + "% of the compute; raise --global-batch or lower --micro-batch");
  if (r.zero == 1 && p.dp == 1) w.push_back("--zero 1 with dp 1 shards nothing");
  if (r.seq_len > c.max_position_embeddings)
    w.push_back("--seq-len " + std::to_string(r.seq_len) + " exceeds the model's max_position_embeddings (" +
                std::to_string(c.max_position_embeddings) + ")");
  if (!(p.usable_memory > 0))
    w.push_back("the device's memory is unknown or all reserved: pass --gpu-memory-gb (and --gpu-reserve-gb)");
  return w;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

namespace {

// Everything about one stage: its ranks and layers, then memory, FLOPs and traffic.
StagePlan plan_stage(const Ctx& x, const Plan& p, int s, int first_layer, int layers) {
  const PlanRequest& req = x.r;
  const int per_stage = req.tp * p.dp;
  StagePlan st;
  st.stage = s;
  st.first_rank = s * per_stage;
  st.last_rank = (s + 1) * per_stage - 1;
  st.first_node = st.first_rank / req.gpus_per_node;
  st.last_node = st.last_rank / req.gpus_per_node;
  st.first_layer = first_layer;
  st.layers = layers;
  st.has_embedding = s == 0;
  st.has_head = s == req.pp - 1;
  st.microbatches_in_flight = std::min(req.pp - s, x.M);
  stage_params(x, st);
  stage_state_memory(x, st);
  st.activations = stage_activations(x, st);
  st.total = st.weights + st.grads + st.optimizer + st.activations;
  st.fits = p.usable_memory > 0 && st.total <= p.usable_memory;
  st.flops_per_microbatch = stage_flops(x, st).hardware / req.tp;
  stage_traffic(x, st);
  return st;
}

void assign_links(Plan& p, const dist::Grid& grid) {
  const PlanRequest& req = p.request;
  auto link = [&](const std::vector<std::vector<int>>& groups) {
    LinkPlan l;
    l.inter_node = groups_span_nodes(groups, req.gpus_per_node);
    l.bytes_per_s = l.inter_node ? req.device.inter_node_bytes_per_s : req.device.intra_node_bytes_per_s;
    return l;
  };
  p.tp_allreduce = link(grid.tp_groups());
  p.pp_p2p = link(grid.pp_groups());
  p.dp_allreduce = link(grid.dp_groups());
}

// Time: a stage's micro-batch costs its compute at the assumed fraction of peak plus its TP
// and PP traffic (none of it overlapped). 1F1B runs M micro-batches through P stages in
// (M + P - 1) slots of the slowest stage's micro-batch time: M of work and P - 1 of bubble
// ((P-1)/M of the work). The DP gradient reduction follows the last backward (not overlapped);
// the optimizer step itself (memory-bound, well under the rest) is not counted.
void estimate_time(Plan& p) {
  const PlanRequest& req = p.request;
  const double M = p.accumulation, flops_per_s = req.device.peak_flops * req.compute_efficiency;
  double slot = -1, slot_c = 0, slot_tp = 0, slot_pp = 0;
  for (const auto& s : p.stages) {
    const double c = s.flops_per_microbatch / flops_per_s, t = s.tp_bytes_per_microbatch / p.tp_allreduce.bytes_per_s,
                 q = s.pp_bytes_per_microbatch / p.pp_p2p.bytes_per_s;
    if (c + t + q > slot) std::tie(slot, slot_c, slot_tp, slot_pp) = std::tuple{c + t + q, c, t, q};
    p.tp_allreduce.bytes = std::max(p.tp_allreduce.bytes, s.tp_bytes_per_microbatch * M);
    p.pp_p2p.bytes = std::max(p.pp_p2p.bytes, s.pp_bytes_per_microbatch * M);
    p.dp_allreduce.bytes = std::max(p.dp_allreduce.bytes, s.dp_bytes_per_step);
  }
  p.compute_s = slot_c * M;
  p.tp_allreduce.seconds = slot_tp * M;
  p.pp_p2p.seconds = slot_pp * M;
  p.bubble_s = slot * (req.pp - 1);
  p.dp_allreduce.seconds = p.dp_allreduce.bytes / p.dp_allreduce.bytes_per_s;
  p.step_s = p.compute_s + p.tp_allreduce.seconds + p.pp_p2p.seconds + p.bubble_s + p.dp_allreduce.seconds;
  const double tokens = M * req.micro_batch * p.dp * req.seq_len;
  p.tokens_per_s = tokens / p.step_s;
  p.mfu = p.model_flops_per_step / (p.step_s * p.world * req.device.peak_flops);
}

}  // namespace

Plan make_plan(const PlanRequest& req) {
  validate(req);
  Plan p;
  p.request = req;
  p.world = req.nodes * req.gpus_per_node;
  const dist::Grid grid = dist::Grid::make(p.world, req.tp, req.pp, req.dp);  // UsageError naming --tp/--pp/--dp
  p.dp = grid.dp();
  p.accumulation = std::max(1, req.global_batch / (req.micro_batch * p.dp));
  p.usable_memory = req.device.memory_bytes - req.device.reserved_bytes;

  Ctx x{req, shard_of(req.cfg, req.tp)};
  x.P = req.pp;
  x.M = p.accumulation;
  x.dp = p.dp;
  x.N = double(req.micro_batch) * double(req.seq_len);
  x.e_act = req.device.mixed_precision ? 2 : 4;
  x.e_w = req.device.mixed_precision ? 2 : 4;
  x.e_opt = req.device.mixed_precision ? 12 : 8;
  x.flash = req.flash_attention && req.device.mixed_precision;  // the CPU backend keeps the probabilities
  x.lora = req.lora_rank > 0;

  const std::vector<int> counts = stage_layer_counts(req);
  int first_layer = 0;
  for (int s = 0; s < req.pp; ++s) {
    p.stages.push_back(plan_stage(x, p, s, first_layer, counts[size_t(s)]));
    first_layer += counts[size_t(s)];
    const StageFlops f = stage_flops(x, p.stages.back());
    p.model_flops_per_step += f.model * x.M * p.dp;
    p.hardware_flops_per_step += f.hardware * x.M * p.dp;
  }
  const double adapters = x.lora ? double(req.cfg.num_hidden_layers) * lora_layer_params(req, x.sh) : 0;
  p.total_params = double(req.cfg.num_params()) + adapters;
  p.trainable_params = x.lora ? adapters : double(req.cfg.num_params());
  p.fits = std::all_of(p.stages.begin(), p.stages.end(), [](const StagePlan& s) { return s.fits; });
  assign_links(p, grid);
  estimate_time(p);
  p.warnings = layout_warnings(req, p, p.tp_allreduce.inter_node);
  return p;
}

std::vector<RankPlan> rank_plans(const Plan& p) {
  const dist::Grid grid = dist::Grid::make(p.world, p.request.tp, p.request.pp, p.dp);
  std::vector<RankPlan> out;
  for (int r = 0; r < p.world; ++r) {
    const dist::GridCoord c = grid.coord(r);
    const StagePlan& s = p.stages[size_t(c.pp)];
    out.push_back({r, c.tp, c.dp, c.pp, "node" + std::to_string(r / p.request.gpus_per_node), s.weights, s.grads,
                   s.optimizer, s.activations, s.total, s.fits, s.layers, s.has_embedding, s.has_head});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Text and JSON
// ---------------------------------------------------------------------------------------------
namespace {

// Three significant figures without exponents for the sizes a plan prints.
std::string num(double v) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  const double a = std::fabs(v);
  s.precision(a >= 100 || a == 0 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
  s << v;
  return s.str();
}
std::string gb(double bytes) { return num(bytes / 1e9) + " GB"; }
std::string range(int a, int b) { return a == b ? std::to_string(a) : std::to_string(a) + "-" + std::to_string(b); }
std::string pct(double f) { return num(100 * f) + "%"; }

// What a rank runs on, for the text: GPUs, or processes of the CPU backend.
const char* per(const Plan& p) { return p.request.device.mixed_precision ? "GPU" : "process"; }

std::string training_kind(const Plan& p) {
  const auto& r = p.request;
  std::string precision = r.device.mixed_precision ? "bf16 mixed precision" : "fp32";
  if (r.lora_rank > 0) {
    std::string t;
    for (const auto& n : r.lora_targets.empty() ? all_lora_targets() : r.lora_targets) t += (t.empty() ? "" : ",") + n;
    return "LoRA rank " + std::to_string(r.lora_rank) + " on " + t + " (frozen base), " + precision;
  }
  return "full training, " + precision;
}

std::string stage_line(const Plan& p, const StagePlan& s) {
  std::ostringstream o;
  o << "stage " << s.stage << ": rank" << (s.first_rank == s.last_rank ? " " : "s ") << range(s.first_rank, s.last_rank) << " on node"
    << (s.first_node == s.last_node ? " " : "s ")
    << range(s.first_node, s.last_node) << ", layers ";
  o << (s.layers > 0 ? range(s.first_layer, s.first_layer + s.layers - 1) : "none");
  if (s.has_embedding) o << " + embedding";
  if (s.has_head) o << " + head";
  o << ": weights " << gb(s.weights) << " + grads " << gb(s.grads) << " + optimizer " << gb(s.optimizer) << " + activations "
    << gb(s.activations) << " (" << s.microbatches_in_flight << " micro-batch" << (s.microbatches_in_flight == 1 ? "" : "es")
    << " in flight) = " << gb(s.total) << " per " << per(p) << " of " << gb(p.usable_memory) << " usable: " << (s.fits ? "FITS" : "OOM");
  return o.str();
}

std::string link_text(const char* what, const LinkPlan& l, bool used) {
  if (!used) return std::string(what) + " none";
  return std::string(what) + " " + gb(l.bytes) + (l.inter_node ? " inter-node" : " intra-node") + " (" + num(l.bytes_per_s / 1e9) +
         " GB/s: " + num(l.seconds) + " s)";
}

const StagePlan& largest_stage(const Plan& p) {
  return *std::max_element(p.stages.begin(), p.stages.end(), [](const StagePlan& a, const StagePlan& b) { return a.total < b.total; });
}

}  // namespace

std::string format_plan(const Plan& p) {
  const auto& r = p.request;
  const auto& c = r.cfg;
  const auto& d = r.device;
  std::ostringstream o;
  o << "model " << r.model_name << ": " << c.num_params() << " parameters (" << c.num_hidden_layers << " layers, hidden "
    << c.hidden_size << ", heads " << c.num_attention_heads << "/" << c.num_key_value_heads << " kv, vocab " << c.vocab_size
    << ")" << (r.lora_rank > 0 ? "; " + std::to_string(uint64_t(p.trainable_params)) + " trainable adapter parameters" : "")
    << "\n";
  o << "layout: " << p.world << " ranks = " << r.nodes << " node" << (r.nodes == 1 ? "" : "s") << " x " << r.gpus_per_node << " "
    << d.name << "; tp " << r.tp << " x dp " << p.dp << " x pp " << r.pp << " (rank = tp + " << r.tp << " * (dp + " << p.dp
    << " * pp)); ZeRO-" << r.zero << "; " << training_kind(p) << "\n";
  o << "batch: micro " << r.micro_batch << " x seq " << r.seq_len << ", global " << r.global_batch << " (" << p.accumulation
    << " accumulation steps per DP rank), recompute " << nn::to_string(r.recompute)
    << (d.mixed_precision ? (r.flash_attention ? ", flash attention" : ", attention probabilities kept") : "") << "\n";
  o << "device: " << d.description << ": " << gb(d.memory_bytes) << " (" << gb(d.reserved_bytes) << " reserved: "
    << gb(p.usable_memory) << " usable), " << num(d.peak_flops / 1e12) << " TFLOP/s peak" << (d.mixed_precision ? " bf16" : " fp32")
    << ", intra-node " << num(d.intra_node_bytes_per_s / 1e9) << " GB/s, inter-node " << num(d.inter_node_bytes_per_s / 1e9)
    << " GB/s per " << per(p) << " (decimal GB: 1 GB = 1e9 bytes)\n";
  if (d.mixed_precision)
    o << "note: this plans bf16 weights and activations, the target of pretrain --device cuda; this build's CUDA "
         "backend still keeps weights and activations in fp32 (issue 10), so its activations take about twice "
         "the memory planned here\n";
  for (const auto& s : p.stages) o << stage_line(p, s) << "\n";
  o << "compute: " << num(p.model_flops_per_step / 1e15) << " PFLOP per step (model), " << num(p.hardware_flops_per_step / 1e15)
    << " with recomputation; " << num(p.hardware_flops_per_step / p.world / 1e15) << " PFLOP per " << per(p) << "\n";
  o << "traffic per " << per(p) << " per step: " << link_text("TP all-reduce", p.tp_allreduce, r.tp > 1) << ", "
    << link_text("PP point-to-point", p.pp_p2p, r.pp > 1) << ", " << link_text("DP gradients", p.dp_allreduce, p.dp > 1) << "\n";
  o << "step time estimate (assumes " << pct(r.compute_efficiency) << " of peak FLOP/s, no overlap of communication): compute "
    << num(p.compute_s) << " s + TP " << num(p.tp_allreduce.seconds) << " s + PP " << num(p.pp_p2p.seconds) << " s + bubble "
    << num(p.bubble_s) << " s + DP " << num(p.dp_allreduce.seconds) << " s = " << num(p.step_s) << " s; "
    << num(p.tokens_per_s) << " tokens/s; MFU " << pct(p.mfu) << "\n";
  for (const auto& w : p.warnings) o << "warning: " << w << "\n";
  const StagePlan& big = largest_stage(p);
  if (p.fits)
    o << "verdict: FITS (the fullest GPU, stage " << big.stage << ", needs " << gb(big.total) << " of " << gb(p.usable_memory)
      << " usable)\n";
  else
    o << "verdict: OOM (stage " << big.stage << " needs " << gb(big.total) << " per " << per(p) << ", " << gb(p.usable_memory)
      << " usable)\n";
  return o.str();
}

json plan_json(const Plan& p) {
  const auto& r = p.request;
  json stages = json::array();
  for (const auto& s : p.stages)
    stages.push_back({{"stage", s.stage}, {"ranks", {s.first_rank, s.last_rank}}, {"nodes", {s.first_node, s.last_node}},
                      {"layers", {s.first_layer, s.first_layer + s.layers}}, {"embedding", s.has_embedding},
                      {"head", s.has_head}, {"params_per_rank", s.params}, {"trainable_params_per_rank", s.trainable_params},
                      {"microbatches_in_flight", s.microbatches_in_flight},
                      {"memory_bytes",
                       {{"weights", s.weights}, {"grads", s.grads}, {"optimizer", s.optimizer},
                        {"activations", s.activations}, {"total", s.total}}},
                      {"fits", s.fits}, {"flops_per_microbatch_per_rank", s.flops_per_microbatch}});
  auto link = [](const LinkPlan& l) {
    return json{{"bytes_per_step", l.bytes}, {"inter_node", l.inter_node}, {"bytes_per_s", l.bytes_per_s}, {"seconds", l.seconds}};
  };
  return {{"model", r.model_name},
          {"config", r.cfg.to_hf_json()},
          {"parameters", r.cfg.num_params()},
          {"total_parameters", p.total_params},  // + adapters under LoRA
          {"trainable_parameters", p.trainable_params},
          {"lora_rank", r.lora_rank},
          {"micro_batch", r.micro_batch},
          {"global_batch", r.global_batch},
          {"accumulation_steps", p.accumulation},
          {"seq_len", r.seq_len},
          {"recompute", nn::to_string(r.recompute)},
          {"zero", r.zero},
          {"topology",
           {{"world", p.world}, {"nodes", r.nodes}, {"gpus_per_node", r.gpus_per_node}, {"tensor_parallel", r.tp},
            {"pipeline_parallel", r.pp}, {"data_parallel", p.dp}}},
          {"device",
           {{"name", r.device.name}, {"memory_bytes", r.device.memory_bytes}, {"reserved_bytes", r.device.reserved_bytes},
            {"peak_flops", r.device.peak_flops}, {"intra_node_bytes_per_s", r.device.intra_node_bytes_per_s},
            {"inter_node_bytes_per_s", r.device.inter_node_bytes_per_s}, {"mixed_precision", r.device.mixed_precision}}},
          {"stages", stages},
          {"train_flops_per_step", p.model_flops_per_step},
          {"hardware_flops_per_step", p.hardware_flops_per_step},
          {"communication",
           {{"tp_allreduce", link(p.tp_allreduce)}, {"pp_p2p", link(p.pp_p2p)}, {"dp_allreduce", link(p.dp_allreduce)}}},
          {"time_s",
           {{"compute", p.compute_s}, {"tp", p.tp_allreduce.seconds}, {"pp", p.pp_p2p.seconds}, {"bubble", p.bubble_s},
            {"dp", p.dp_allreduce.seconds}, {"step", p.step_s}}},
          {"compute_efficiency_assumed", r.compute_efficiency},
          {"tokens_per_s", p.tokens_per_s},
          {"mfu", p.mfu},
          {"warnings", p.warnings},
          {"fits", p.fits}};
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------
namespace {

double peak_memory(const Plan& p) { return largest_stage(p).total; }

// Fitting layouts first, fastest first; then the rest, closest to fitting first.
bool better(const Plan& a, const Plan& b) {
  if (a.fits != b.fits) return a.fits;
  if (a.fits && a.step_s != b.step_s) return a.step_s < b.step_s;
  return peak_memory(a) < peak_memory(b);
}

}  // namespace

std::vector<Plan> suggest_layouts(PlanRequest base, size_t top) {
  const int world = base.nodes * base.gpus_per_node;
  const auto& c = base.cfg;
  // On a flash-attention GPU selective recomputation keeps what none keeps: skip the duplicate.
  const bool selective_differs = !(base.flash_attention && base.device.mixed_precision);
  std::vector<Plan> plans;
  for (int tp = 1; tp <= base.gpus_per_node; ++tp) {
    if (base.gpus_per_node % tp || c.num_attention_heads % tp || c.num_key_value_heads % tp) continue;
    for (int pp = 1; pp <= world / tp && pp <= c.num_hidden_layers; ++pp) {
      if ((world / tp) % pp) continue;
      const int dp = world / (tp * pp);
      if (base.global_batch % (base.micro_batch * dp)) continue;
      for (int zero : {0, 1}) {
        if (zero == 1 && dp == 1) continue;
        for (auto rc : {nn::Recompute::none, nn::Recompute::selective, nn::Recompute::full}) {
          if (rc == nn::Recompute::selective && !selective_differs) continue;
          PlanRequest r = base;
          r.tp = tp;
          r.pp = pp;
          r.pp_layers.clear();  // balanced: a given split belongs to the given --pp
          r.dp = dp;
          r.zero = zero;
          r.recompute = rc;
          plans.push_back(make_plan(r));
        }
      }
    }
  }
  std::stable_sort(plans.begin(), plans.end(), better);
  if (plans.size() > top) plans.resize(top);
  return plans;
}

std::string format_suggestions(const std::vector<Plan>& plans) {
  std::ostringstream o;
  if (plans.empty()) {
    o << "no layout: no TP x PP x DP of these GPUs has TP within a node dividing the (kv) heads and DP dividing "
         "--global-batch / --micro-batch\n";
    return o.str();
  }
  const auto& r = plans.front().request;
  o << "layouts of " << plans.front().world << " x " << r.device.name << " (" << r.nodes << " x " << r.gpus_per_node << ") for "
    << r.model_name << ", micro " << r.micro_batch << " x seq " << r.seq_len << ", global " << r.global_batch << ", "
    << training_kind(plans.front()) << "; best first (memory per GPU of " << gb(plans.front().usable_memory)
    << " usable; times are estimates at " << pct(r.compute_efficiency) << " of peak):\n";
  char line[256];
  std::snprintf(line, sizeof line, "%4s %4s %4s %4s %5s %-10s %12s %8s %10s %12s %7s\n", "#", "tp", "pp", "dp", "zero",
                "recompute", "memory/GPU", "verdict", "step (s)", "tokens/s", "MFU");
  o << line;
  int i = 0;
  for (const auto& p : plans) {
    std::snprintf(line, sizeof line, "%4d %4d %4d %4d %5d %-10s %12s %8s %10s %12s %7s\n", ++i, p.request.tp, p.request.pp, p.dp,
                  p.request.zero, nn::to_string(p.request.recompute), gb(peak_memory(p)).c_str(), p.fits ? "FITS" : "OOM",
                  num(p.step_s).c_str(), num(p.tokens_per_s).c_str(), pct(p.mfu).c_str());
    o << line;
  }
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

namespace {
const std::vector<std::string>& planner_flags() {
  static const std::vector<std::string> f = {"nodes",         "gpus-per-node", "gpu",          "gpu-memory-gb",
                                             "gpu-tflops",    "intra-node-bw", "inter-node-bw", "gpu-reserve-gb",
                                             "compute-efficiency", "lora-rank", "lora-targets", "suggest"};
  return f;
}
}  // namespace

std::string planner_flag_given(const cli::Invocation& inv) {
  for (const auto& f : planner_flags()) {
    if (!inv.has(f)) continue;
    // A bool_switch is present (false) even when not given.
    if (f == "suggest" && !inv.get<bool>(f)) continue;
    return "--" + f;
  }
  return "";
}

void add_planner_options(cli::po::options_description& d) {
  namespace po = cli::po;
  d.add_options()
      ("nodes", po::value<int64_t>()->default_value(1)->value_name("N"), "nodes of the planned job")
      ("gpus-per-node", po::value<int64_t>()->value_name("G"),
       "GPUs (ranks) per node (default: tp x pp x dp / nodes)")
      ("gpu", po::value<std::string>()->default_value("cpu")->value_name("NAME"),
       "h100-80gb | h200-141gb | a100-80gb | a100-40gb | cpu (this host, fp32 as the CPU backend trains)")
      ("gpu-memory-gb", po::value<double>()->value_name("X"), "device memory, decimal GB (overrides --gpu's)")
      ("gpu-tflops", po::value<double>()->value_name("X"), "peak dense TFLOP/s, bf16 (fp32 for cpu)")
      ("intra-node-bw", po::value<double>()->value_name("GB/s"), "per-GPU bandwidth within a node, GB/s one way")
      ("inter-node-bw", po::value<double>()->value_name("GB/s"),
       "per-GPU bandwidth between nodes, GB/s one way (400 Gb/s InfiniBand = 50)")
      ("gpu-reserve-gb", po::value<double>()->value_name("X"),
       "memory kept back for the CUDA context, NCCL, fragmentation (default 4 on GPUs, 0 on cpu)")
      ("compute-efficiency", po::value<double>()->default_value(0.5, "0.5")->value_name("F"),
       "assumed fraction of peak FLOP/s reached, for the time estimate")
      ("lora-rank", po::value<int64_t>()->default_value(0)->value_name("R"),
       "plan LoRA adapters of rank R on a frozen base (0: full training)")
      ("lora-targets", po::value<std::string>()->default_value("q,k,v,o,gate,up,down")->value_name("LIST"),
       "the adapted projections, comma-separated")
      ("suggest", po::bool_switch(), "rank the TP x PP x DP layouts of --nodes x --gpus-per-node");
}

namespace {

// An integer option whatever integer type its declaration uses (the training flags are declared
// elsewhere), or `dflt` when it is not declared or not given.
int64_t int_option(const cli::Invocation& inv, const std::string& key, int64_t dflt) {
  if (!inv.vm.count(key) || inv.vm[key].empty()) return dflt;
  const auto& v = inv.vm[key].value();
  if (v.type() == typeid(int64_t)) return boost::any_cast<int64_t>(v);
  if (v.type() == typeid(int)) return boost::any_cast<int>(v);
  if (v.type() == typeid(unsigned)) return boost::any_cast<unsigned>(v);
  if (v.type() == typeid(uint64_t)) return int64_t(boost::any_cast<uint64_t>(v));
  if (v.type() == typeid(long long)) return boost::any_cast<long long>(v);
  throw InternalError("option --" + key + " is not an integer");
}

int to_int(int64_t v, const char* flag) {
  if (v < -(int64_t(1) << 30) || v > (int64_t(1) << 30)) throw UsageError(std::string(flag) + " is out of range");
  return int(v);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

PlanRequest plan_request_from(const cli::Invocation& inv, const nn::LlamaConfig& cfg, const std::string& model_name) {
  PlanRequest r;
  r.cfg = cfg;
  r.model_name = model_name;
  r.tp = to_int(int_option(inv, "tp", 1), "--tp");
  r.pp = to_int(int_option(inv, "pp", 1), "--pp");
  r.dp = to_int(int_option(inv, "dp", 0), "--dp");
  r.zero = to_int(int_option(inv, "zero", 0), "--zero");
  r.micro_batch = to_int(int_option(inv, "micro-batch", 1), "--micro-batch");
  r.seq_len = to_int(int_option(inv, "seq-len", 2048), "--seq-len");
  r.global_batch = to_int(int_option(inv, "global-batch", r.micro_batch), "--global-batch");
  if (inv.vm.count("pp-layers"))
    for (const auto& item : split_commas(inv.get<std::string>("pp-layers"))) {
      size_t used = 0;
      int n = 0;
      try {
        n = std::stoi(item, &used);
      } catch (const std::exception&) {
      }
      if (used == 0 || used != item.size()) throw UsageError("--pp-layers: '" + item + "' is not a number (expected e.g. 3,3,2)");
      r.pp_layers.push_back(n);
    }
  if (inv.vm.count("recompute")) r.recompute = nn::parse_recompute(inv.get<std::string>("recompute"));
  r.nodes = to_int(int_option(inv, "nodes", 1), "--nodes");
  if (r.nodes < 1) throw UsageError("--nodes must be at least 1");
  if (inv.has("gpus-per-node")) {
    r.gpus_per_node = to_int(int_option(inv, "gpus-per-node", 1), "--gpus-per-node");
  } else {
    // Without --gpus-per-node the job is the grid asked for, spread evenly over the nodes.
    const int64_t world = int64_t(std::max(r.tp, 1)) * std::max(r.pp, 1) * std::max(r.dp, 1);
    if (world % r.nodes != 0)
      throw UsageError("--nodes " + std::to_string(r.nodes) + " does not divide the " + std::to_string(world) +
                       " ranks of --tp x --pp x --dp; give --gpus-per-node");
    r.gpus_per_node = int(world / r.nodes);
  }
  r.device = device_spec(inv.vm.count("gpu") ? inv.get<std::string>("gpu") : "cpu");
  auto gb_option = [&](const char* key, double& field, double scale) {
    if (!inv.vm.count(key)) return;
    const double v = inv.get<double>(key);
    if (!(v >= 0)) throw UsageError(std::string("--") + key + " may not be negative");
    field = v * scale;
  };
  gb_option("gpu-memory-gb", r.device.memory_bytes, 1e9);
  gb_option("gpu-tflops", r.device.peak_flops, 1e12);
  gb_option("intra-node-bw", r.device.intra_node_bytes_per_s, 1e9);
  gb_option("inter-node-bw", r.device.inter_node_bytes_per_s, 1e9);
  gb_option("gpu-reserve-gb", r.device.reserved_bytes, 1e9);
  if (inv.vm.count("compute-efficiency")) r.compute_efficiency = inv.get<double>("compute-efficiency");
  r.lora_rank = to_int(int_option(inv, "lora-rank", 0), "--lora-rank");
  if (inv.vm.count("lora-targets")) r.lora_targets = split_commas(inv.get<std::string>("lora-targets"));
  return r;
}

int run_dry_run(const cli::Invocation& inv, const nn::LlamaConfig& cfg, const std::string& model_name) {
  const PlanRequest req = plan_request_from(inv, cfg, model_name);
  if (inv.vm.count("suggest") && inv.get<bool>("suggest")) {
    const std::vector<Plan> plans = suggest_layouts(req);
    std::cout << format_suggestions(plans);
    if (!plans.empty()) std::cout << "best:\n" << format_plan(plans.front()) << "plan: " << plan_json(plans.front()).dump() << "\n";
    return plans.empty() ? kExitUsage : kExitOk;
  }
  const Plan p = make_plan(req);
  std::cout << format_plan(p) << "plan: " << plan_json(p).dump() << "\n";
  return kExitOk;
}

}  // namespace bellows::train
