#include "train/evaluate.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "log/progress.hpp"
#include "train/parallel.hpp"

namespace bellows::train {

namespace {

// Samples [first, first + B) of n in file order into b (B x T); rows past the data (the last
// batch) get valid ids and windows but no targets. Counts the targets into counts[V] when given.
// Returns the rows filled from the data; adds the targets they hold (every position for
// pretraining shards, the loss-masked ones for SFT) to *targets.
int fill_eval_batch(TokenData& data, Batch& b, int B, int T, uint64_t first, uint64_t n, bool doc_masking,
                    std::vector<uint64_t>* counts, uint64_t* targets) {
  const int rows = int(std::min<uint64_t>(uint64_t(B), n - first));
  data.fill(b, T, first, rows, /*seed=*/0, /*shuffle=*/false, doc_masking);
  for (size_t i = size_t(rows) * size_t(T); i < size_t(B) * size_t(T); ++i) {
    b.ids[i] = 0;
    b.targets[i] = -1;
    b.doc_start[i] = 0;
    b.pos[i] = int32_t(i % size_t(T));
  }
  for (size_t i = 0; i < size_t(rows) * size_t(T); ++i) {
    if (b.targets[i] < 0) continue;
    ++*targets;
    if (counts && size_t(b.targets[i]) < counts->size()) ++(*counts)[size_t(b.targets[i])];
  }
  return rows;
}

void finish(EvalResult& r, double sum, const std::vector<uint64_t>& counts) {
  r.loss = r.tokens ? sum / double(r.tokens) : 0.0;
  for (uint64_t c : counts)
    if (c) {
      const double p = double(c) / double(r.tokens);
      r.unigram_entropy -= p * std::log(p);
    }
}

}  // namespace

EvalResult evaluate(nn::LlamaModel& model, TokenData& data, Batch& b, uint64_t max_samples, bool doc_masking,
                    const std::function<void(uint64_t)>& on_rows) {
  const int B = model.batch(), T = model.seq_len();
  const int64_t V = model.config().vocab_size;
  const uint64_t n = max_samples == 0 ? data.num_samples() : std::min(max_samples, data.num_samples());
  EvalResult r;
  double sum = 0;
  std::vector<uint64_t> counts(size_t(V), 0);
  for (uint64_t first = 0; first < n; first += uint64_t(B)) {
    const int rows = fill_eval_batch(data, b, B, T, first, n, doc_masking, &counts, &r.tokens);
    model.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data());
    sum += model.forward(0.0f);
    r.samples += uint64_t(rows);
    if (on_rows) on_rows(uint64_t(rows));
  }
  finish(r, sum, counts);
  return r;
}

EvalResult evaluate_parallel(nn::LlamaModel& model, ParallelState& ps, TokenData& data, Batch& b, uint64_t max_samples,
                             bool doc_masking) {
  const int B = model.batch(), T = model.seq_len();
  const int64_t V = model.config().vocab_size;
  const uint64_t n = max_samples == 0 ? data.num_samples() : std::min(max_samples, data.num_samples());
  const uint64_t batches = (n + uint64_t(B) - 1) / uint64_t(B);
  const uint64_t d = uint64_t(ps.grid().dp()), me = uint64_t(ps.coord().dp);
  const int mine = int(batches / d + (me < batches % d ? 1 : 0));  // micro-batches me, me + d, ...
  // Each logical number is contributed once: by the last stage's tp rank 0 of each replica.
  const bool reports = ps.last_stage() && ps.coord().tp == 0;
  std::vector<int64_t> counts(size_t(V), 0);
  std::vector<uint64_t> local_counts(size_t(V), 0);
  int64_t tokens = 0, samples = 0;
  const double sum = pipeline_forward(model, ps, mine, [&](int mb, int slot) {
    const uint64_t first = (me + uint64_t(mb) * d) * uint64_t(B);
    uint64_t targets = 0;
    const int rows = fill_eval_batch(data, b, B, T, first, n, doc_masking, reports ? &local_counts : nullptr, &targets);
    model.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data(), slot);
    if (reports) {
      tokens += int64_t(targets);
      samples += rows;
    }
    check_interrupt();
  });
  auto& w = ps.world();
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = int64_t(local_counts[i]);
  w.allreduce(counts.data(), counts.size(), dist::ReduceOp::sum);
  int64_t totals[2] = {tokens, samples};
  w.allreduce(totals, 2, dist::ReduceOp::sum);
  EvalResult r;
  r.tokens = uint64_t(totals[0]);
  r.samples = uint64_t(totals[1]);
  std::vector<uint64_t> all(counts.begin(), counts.end());
  finish(r, w.allreduce_value(reports ? sum : 0.0, dist::ReduceOp::sum), all);
  return r;
}

EvalResult evaluate(const nn::LlamaConfig& cfg, const std::vector<float>& params, nn::Backend& be, TokenData& data,
                    int batch, int T, uint64_t max_samples, bool doc_masking) {
  BELLOWS_CHECK(batch > 0 && T > 0, "evaluation needs a positive batch and length");
  const uint64_t n = max_samples == 0 ? data.num_samples() : std::min(max_samples, data.num_samples());
  // No bigger than the work: a batch of 8 over 3 samples would compute 5 empty rows.
  const int B = int(std::min<uint64_t>(uint64_t(batch), n));
  nn::LlamaModel model(cfg, be, B, T);
  BELLOWS_CHECK(params.size() == model.num_params(), "parameter vector of another config");
  be.upload(model.param_data(), params.data(), params.size());
  Batch b;  // host [B*T] each
  for (auto* v : {&b.ids, &b.targets, &b.pos, &b.doc_start}) v->assign(size_t(B) * size_t(T), 0);
  log::Progress progress("eval", n, "samples");
  EvalResult r = evaluate(model, data, b, n, doc_masking, [&](uint64_t rows) {
    progress.add(rows);
    check_interrupt();
  });
  progress.finish();
  return r;
}

}  // namespace bellows::train
