#include "train/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.hpp"

namespace bellows::train {

std::vector<int> stage_layer_counts(int layers, int pp, const std::vector<int>& given) {
  if (pp < 1) throw UsageError("--pp must be positive (got " + std::to_string(pp) + ")");
  if (pp > layers)
    throw UsageError("--pp " + std::to_string(pp) + " is more pipeline stages than the model has layers (" +
                     std::to_string(layers) + "): every stage needs at least one layer");
  if (given.empty()) {
    std::vector<int> out(size_t(pp), layers / pp);
    for (int s = 0; s < layers % pp; ++s) ++out[size_t(s)];
    return out;
  }
  int sum = 0;
  for (int n : given) {
    if (n < 1) throw UsageError("--pp-layers: every stage needs at least one layer");
    sum += n;
  }
  if (int(given.size()) != pp || sum != layers)
    throw UsageError("--pp-layers must list " + std::to_string(pp) + " stage sizes summing to the model's " +
                     std::to_string(layers) + " layers");
  return given;
}

ParallelState::ParallelState(dist::Communicator& world, const std::vector<std::string>& node_of_rank,
                             const ParallelOptions& o, const nn::LlamaConfig& cfg)
    : world_(world), nodes_(node_of_rank), grid_(dist::Grid::make(world.size(), o.tp, o.pp, o.dp)),
      coord_(grid_.coord(world.rank())), zero_(o.zero) {
  if (o.zero != 0 && o.zero != 1) throw UsageError("--zero must be 0 or 1 (got " + std::to_string(o.zero) + ")");
  dist::check_tp_within_nodes(grid_, nodes_, o.allow_cross_node_tp);
  nn::check_tensor_parallel(cfg, o.tp);
  stage_layers_ = stage_layer_counts(int(cfg.num_hidden_layers), o.pp, o.stage_layers);

  // Collective, in the same order on every rank. A group's color is its lowest rank.
  const int me = world.rank();
  tp_ = world.split(grid_.tp_group(me).front(), coord_.tp);
  dp_ = world.split(grid_.dp_group(me).front(), coord_.dp);
  pp_ = world.split(grid_.pp_group(me).front(), coord_.pp);
  const bool ends = coord_.pp == 0 || coord_.pp == grid_.pp() - 1;
  const bool tied_across = cfg.tie_word_embeddings && grid_.pp() > 1;
  // Ranks outside an embedding group still take part in the split, each alone.
  embed_ = world.split(tied_across && ends ? grid_.pp_group(me).front() : world.size() + me, coord_.pp);
  if (!(tied_across && ends)) embed_.reset();

  shard_.tp_rank = coord_.tp;
  shard_.tp_size = grid_.tp();
  shard_.layer_begin = 0;
  for (int s = 0; s < coord_.pp; ++s) shard_.layer_begin += stage_layers_[size_t(s)];
  shard_.layer_end = shard_.layer_begin + stage_layers_[size_t(coord_.pp)];
  shard_.has_embedding = coord_.pp == 0;
  shard_.has_head = coord_.pp == grid_.pp() - 1;
}

int ParallelState::slots(int micro_batches) const {
  return std::max(1, std::min(grid_.pp() - coord_.pp, micro_batches));
}

std::string ParallelState::describe() const {
  std::ostringstream o;
  o << grid_.describe(nodes_) << "\n  pipeline stages:";
  int l0 = 0;
  for (size_t s = 0; s < stage_layers_.size(); ++s) {
    const int l1 = l0 + stage_layers_[s];
    o << (s ? ";" : "") << " " << s << ": layers " << l0 << "-" << l1 - 1;
    if (s == 0) o << " + embedding";
    if (s + 1 == stage_layers_.size()) o << " + head";
    l0 = l1;
  }
  o << "\n  optimizer: " << (zero_ ? "ZeRO-1 (AdamW moments sharded across each dp group)" : "replicated AdamW state");
  return o.str();
}

ParallelState::CommTimes ParallelState::comm_times() const {
  CommTimes t{tp_->tensor_seconds(), pp_->tensor_seconds(), dp_->tensor_seconds()};
  if (embed_) t.pp += embed_->tensor_seconds();  // the tied-embedding exchange runs between the pipeline's ends
  return t;
}

void ParallelState::reset_comm_times() {
  for (auto* c : {tp_.get(), pp_.get(), dp_.get(), embed_.get()})
    if (c) c->reset_tensor_seconds();
}

// --- the 1F1B schedule -------------------------------------------------------------------------

double pipeline_train(nn::LlamaModel& model, ParallelState& ps, int M, float grad_scale, const MicroBatchHook& load,
                      const MicroBatchHook& after_forward) {
  dist::Communicator& pp = ps.pp();
  const int P = ps.grid().pp(), s = ps.coord().pp;
  const int prev = s > 0 ? s - 1 : -1, next = s < P - 1 ? s + 1 : -1;
  const int slots = ps.slots(M);
  const size_t H = model.hidden_floats();
  double loss = 0;
  auto forward = [&](int mb) {
    load(mb, mb % slots);
    loss += model.forward(grad_scale, mb % slots);
    if (after_forward) after_forward(mb, mb % slots);
  };
  auto input = [&](int mb) { return model.stage_input(mb % slots); };
  auto output = [&](int mb) { return model.stage_output(mb % slots); };
  // A stage runs P - s - 1 forwards ahead, so that the last stage can start its backwards at
  // once; then each forward is followed by the backward of the oldest micro-batch in flight.
  const int warmup = std::min(P - s - 1, M), steady = M - warmup;
  for (int i = 0; i < warmup; ++i) {
    pp.recv(input(i), H, prev);
    forward(i);
    pp.send(output(i), H, next);
  }
  if (steady > 0) pp.recv(input(warmup), H, prev);
  for (int i = 0; i < steady; ++i) {
    forward(warmup + i);
    pp.sendrecv(output(warmup + i), H, next, model.residual_grad(), H, next);
    model.backward(i % slots);
    if (i == steady - 1)
      pp.send(model.residual_grad(), H, prev);
    else
      pp.sendrecv(model.residual_grad(), H, prev, input(warmup + i + 1), H, prev);
  }
  for (int i = 0; i < warmup; ++i) {
    pp.recv(model.residual_grad(), H, next);
    model.backward((steady + i) % slots);
    pp.send(model.residual_grad(), H, prev);
  }
  return loss;
}

double pipeline_forward(nn::LlamaModel& model, ParallelState& ps, int M, const MicroBatchHook& load,
                        const MicroBatchHook& after_forward) {
  dist::Communicator& pp = ps.pp();
  const int P = ps.grid().pp(), s = ps.coord().pp;
  const int prev = s > 0 ? s - 1 : -1, next = s < P - 1 ? s + 1 : -1;
  const size_t H = model.hidden_floats();
  double loss = 0;
  for (int mb = 0; mb < M; ++mb) {
    pp.recv(model.stage_input(0), H, prev);
    load(mb, 0);
    loss += model.forward(0.0f, 0);
    if (after_forward) after_forward(mb, 0);
    pp.send(model.stage_output(0), H, next);
  }
  return loss;
}

// --- the distributed optimizer -----------------------------------------------------------------

DistributedOptimizer::DistributedOptimizer(nn::Backend& be, const std::vector<nn::ParamSpec>& specs, size_t total,
                                           ParallelState& ps)
    : be_(be), specs_(specs), total_(total), ps_(ps) {
  const int d = ps.grid().dp(), r = ps.coord().dp;
  if (ps.zero()) {
    for (int i = 0; i < d; ++i) counts_.push_back(total * size_t(i + 1) / size_t(d) - total * size_t(i) / size_t(d));
    lo_ = total * size_t(r) / size_t(d);
    hi_ = lo_ + counts_[size_t(r)];
  } else {
    lo_ = 0;
    hi_ = total;
  }
  m_ = be_.alloc(std::max<size_t>(1, hi_ - lo_));
  v_ = be_.alloc(std::max<size_t>(1, hi_ - lo_));
  be_.zero(m_, hi_ - lo_);
  be_.zero(v_, hi_ - lo_);
}

template <class F>
void DistributedOptimizer::for_owned(F&& f) const {
  for (const auto& p : specs_) {
    const size_t a = std::max(p.offset, lo_), b = std::min(p.offset + p.numel, hi_);
    if (a < b) f(p, a, b);
  }
}

void DistributedOptimizer::reduce_gradients(float* grads) {
  // A factor whole on every tensor-parallel rank beside a split base linear (LoRA): each rank
  // computed its share of the gradient.
  if (ps_.grid().tp() > 1)
    for (const auto& p : specs_)
      if (p.tp_grad_partial) ps_.tp().allreduce(grads + p.offset, p.numel, dist::ReduceOp::sum);
  if (dist::Communicator* e = ps_.embedding_group()) {
    for (const auto& p : specs_)
      if (p.name == "model.embed_tokens.weight") e->allreduce(grads + p.offset, p.numel, dist::ReduceOp::sum);
  }
  dist::Communicator& dp = ps_.dp();
  if (dp.size() == 1) return;
  if (ps_.zero()) {
    dp.reduce_scatter(grads, counts_);
    return;
  }
  // Last buckets first: the order in which backward finishes them (the MPI backend does not
  // overlap them with the backward: without a progress thread a non-blocking MPI collective
  // advances only inside MPI calls, so it would gain nothing here).
  for (size_t end = total_; end > 0;) {
    const size_t begin = end > kBucketFloats ? end - kBucketFloats : 0;
    dp.allreduce(grads + begin, end - begin, dist::ReduceOp::sum);
    end = begin;
  }
}

double DistributedOptimizer::grad_norm(const float* grads) {
  double local = 0;
  // Replicas of the same numbers count once: tensor-parallel copies of norms (tp rank 0), the
  // head's copy of tied embeddings (not at all), data-parallel replicas (dp rank 0, or each its
  // ZeRO range).
  const bool counts_here = ps_.zero() || ps_.coord().dp == 0;
  if (counts_here)
    for_owned([&](const nn::ParamSpec& p, size_t a, size_t b) {
      if (p.tied_copy || (p.tp_replicated && ps_.coord().tp != 0)) return;
      local += be_.sum_squares(grads + a, b - a);
    });
  return std::sqrt(ps_.world().allreduce_value(local, dist::ReduceOp::sum));
}

void DistributedOptimizer::scale_gradients(float* grads, float s) { be_.scale(grads + lo_, hi_ - lo_, s); }

void DistributedOptimizer::step(float* params, const float* grads, const AdamWHyper& h) {
  const float bc1 = float(1.0 - std::pow(h.beta1, double(h.step))), bc2 = float(1.0 - std::pow(h.beta2, double(h.step)));
  for_owned([&](const nn::ParamSpec& p, size_t a, size_t b) {
    be_.adamw(params + a, grads + a, m_ + (a - lo_), v_ + (a - lo_), b - a, float(h.lr), float(h.beta1),
              float(h.beta2), float(h.eps), p.decay ? float(h.weight_decay) : 0.0f, bc1, bc2);
  });
  if (ps_.zero() && ps_.dp().size() > 1) ps_.dp().allgather(params, counts_);
}

}  // namespace bellows::train
