// Training one model across ranks: the groups a rank talks in (built once, from dist::Grid), the
// part of the model it holds, the 1F1B pipeline schedule, and the distributed optimizer (gradient
// reduction across data-parallel replicas, optionally ZeRO-1 sharding of the optimizer state,
// the global gradient norm, AdamW). Layers and the optimizer receive their groups from here and
// never reach for the world themselves (Megatron-Core's parallel_state, as one object).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dist/comm.hpp"
#include "dist/grid.hpp"
#include "nn/backend.hpp"
#include "nn/llama.hpp"

namespace bellows::train {

struct ParallelOptions {
  int tp = 1, pp = 1, dp = 0;  // dp 0: the world size / (tp * pp)
  int zero = 0;                // 1: AdamW moments sharded across the data-parallel group
  bool allow_cross_node_tp = false;
  std::vector<int> stage_layers;  // --pp-layers: layers per pipeline stage (empty: balanced)
};

// Layers per pipeline stage: as even as possible, the first L % P stages one more; or `given`
// (UsageError naming --pp-layers unless it has P positive entries summing to L).
std::vector<int> stage_layer_counts(int layers, int pp, const std::vector<int>& given);

// This rank's place in the TP x DP x PP grid and its groups. Construction is collective over
// `world` (every rank builds the same groups in the same order).
class ParallelState {
 public:
  ParallelState(dist::Communicator& world, const std::vector<std::string>& node_of_rank, const ParallelOptions& o,
                const nn::LlamaConfig& cfg);

  const dist::Grid& grid() const { return grid_; }
  const dist::GridCoord& coord() const { return coord_; }
  dist::Communicator& world() { return world_; }
  dist::Communicator& tp() { return *tp_; }
  dist::Communicator& dp() { return *dp_; }
  dist::Communicator& pp() { return *pp_; }
  // First and last pipeline stage of the same (tp, dp) coordinates, when embeddings are tied and
  // pp > 1 (the last stage holds a copy for the head whose gradient is shared); null otherwise.
  dist::Communicator* embedding_group() { return embed_.get(); }
  const nn::ModelShard& shard() const { return shard_; }
  const std::vector<int>& stage_layers() const { return stage_layers_; }
  int zero() const { return zero_; }
  bool first_stage() const { return coord_.pp == 0; }
  bool last_stage() const { return coord_.pp == grid_.pp() - 1; }
  // Micro-batches a stage holds at once under 1F1B with M micro-batches per step.
  int slots(int micro_batches) const;
  // What rank 0 prints at start-up: the grid with nodes, and each stage's layers.
  std::string describe() const;

  // Seconds each kind of group spent in tensor communication since the last reset.
  struct CommTimes {
    double tp = 0, pp = 0, dp = 0;
  };
  CommTimes comm_times() const;
  void reset_comm_times();

 private:
  dist::Communicator& world_;
  std::vector<std::string> nodes_;
  dist::Grid grid_;
  dist::GridCoord coord_;
  std::unique_ptr<dist::Communicator> tp_, dp_, pp_, embed_;
  nn::ModelShard shard_;
  std::vector<int> stage_layers_;
  int zero_ = 0;
};

// Forward and backward of M micro-batches through this rank's pipeline stage in the 1F1B order
// (warm-up forwards, then one forward and one backward alternating, then the remaining
// backwards), handing activations forward and gradients back point to point in the pp group.
// load(mb, slot) puts micro-batch mb's inputs into the model's slot. Returns the sum of the
// per-token losses (non-zero on the last stage only). With one stage this is plain gradient
// accumulation.
// after_forward(mb, slot), when given, runs right after each forward on every stage (the last
// stage's backward of that micro-batch follows it directly: DPO reweighs the logit gradients
// there).
using MicroBatchHook = std::function<void(int mb, int slot)>;
double pipeline_train(nn::LlamaModel& model, ParallelState& ps, int micro_batches, float grad_scale,
                      const MicroBatchHook& load, const MicroBatchHook& after_forward = {});
// Forward only (evaluation, reference log-probabilities): each micro-batch through the stages in
// turn, in slot 0. Same return value and hooks.
double pipeline_forward(nn::LlamaModel& model, ParallelState& ps, int micro_batches, const MicroBatchHook& load,
                        const MicroBatchHook& after_forward = {});

struct AdamWHyper {
  double lr, beta1, beta2, eps, weight_decay;
  uint64_t step;  // 1-based AdamW step (bias correction)
};

// The optimizer side of a step across ranks. Every rank holds its shard's parameters and
// gradients in one flat buffer (the model's); without ZeRO it also holds AdamW moments for all of
// them, with --zero 1 only for its 1/dp contiguous range of the flat buffer (Megatron's
// distributed optimizer: reduce-scatter the gradients, update the own range, all-gather the
// parameters). On the CPU the parameters are fp32 already, so there is no separate master copy
// to shard.
class DistributedOptimizer {
 public:
  DistributedOptimizer(nn::Backend& be, const std::vector<nn::ParamSpec>& specs, size_t total, ParallelState& ps);

  // After the backward of a step: adds the tied head copy's gradient to the embedding's (and
  // back), then sums gradients across data-parallel replicas (bucketed all-reduce, or
  // reduce-scatter with ZeRO: then only the owned range is meaningful).
  void reduce_gradients(float* grads);
  // The global L2 norm of the gradient, each logical element counted once.
  double grad_norm(const float* grads);
  // Scales the gradient range this rank updates.
  void scale_gradients(float* grads, float s);
  // AdamW on the owned range (no weight decay on tensors with decay == false), then, with ZeRO,
  // the all-gather that gives every replica the updated parameters.
  void step(float* params, const float* grads, const AdamWHyper& h);

  // The flat range [lo, hi) of the parameter buffer whose moments this rank holds.
  size_t owned_begin() const { return lo_; }
  size_t owned_end() const { return hi_; }
  float* exp_avg() { return m_; }     // [hi - lo] on the backend
  float* exp_avg_sq() { return v_; }  // [hi - lo]

 private:
  template <class F>
  void for_owned(F&& f) const;  // f(spec, begin, end) over each spec's intersection with [lo, hi)
  nn::Backend& be_;
  std::vector<nn::ParamSpec> specs_;
  size_t total_;
  ParallelState& ps_;
  std::vector<size_t> counts_;  // the flat buffer's chunk per data-parallel rank (ZeRO)
  size_t lo_ = 0, hi_ = 0;
  float* m_ = nullptr;
  float* v_ = nullptr;
  // Bounds every message (MPI counts are int) and is the unit of the data-parallel all-reduce.
  static constexpr size_t kBucketFloats = size_t(1) << 24;
};

}  // namespace bellows::train
