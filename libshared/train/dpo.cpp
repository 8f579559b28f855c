#include "train/dpo.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "io/shard.hpp"

namespace bellows::train {
namespace fs = std::filesystem;

void DpoStats::to(double* v) const {
  const double f[kFields] = {loss, dpo_loss, sft_nll, reward_chosen, reward_rejected, correct, margin,
                             logp_chosen, logp_rejected, pairs, chosen_tokens};
  for (size_t i = 0; i < kFields; ++i) v[i] = f[i];
}

void DpoStats::from(const double* v) {
  double* f[kFields] = {&loss, &dpo_loss, &sft_nll, &reward_chosen, &reward_rejected, &correct, &margin,
                        &logp_chosen, &logp_rejected, &pairs, &chosen_tokens};
  for (size_t i = 0; i < kFields; ++i) *f[i] = v[i];
}

void DpoStats::add(const DpoStats& o) {
  double a[kFields], b[kFields];
  to(a);
  o.to(b);
  for (size_t i = 0; i < kFields; ++i) a[i] += b[i];
  from(a);
}

std::vector<double> row_logps(const std::vector<float>& losses, const int32_t* targets, int rows, int T) {
  BELLOWS_CHECK(losses.size() >= size_t(rows) * size_t(T), "fewer losses than rows");
  std::vector<double> out(size_t(rows), 0.0);
  for (int r = 0; r < rows; ++r)
    for (int t = 0; t < T; ++t) {
      const size_t n = size_t(r) * size_t(T) + size_t(t);
      if (targets[n] != -1) out[size_t(r)] -= double(losses[n]);
    }
  return out;
}

void dpo_micro_batch(const DpoSettings& s, const std::vector<double>& policy, const std::vector<double>& reference,
                     const std::vector<PairRow>& rows, const int32_t* targets, int T, double step_pairs,
                     double step_chosen_tokens, DpoStats& stats, std::vector<float>* factors) {
  const size_t n_rows = rows.size();
  BELLOWS_CHECK(n_rows % 2 == 0 && policy.size() >= n_rows && reference.size() >= n_rows, "rows of whole pairs");
  const bool mean = s.loss == DpoLoss::ipo;  // TRL's IPO compares per-token means
  if (factors) factors->assign(n_rows * size_t(T), 0.0f);
  for (size_t i = 0; i + 1 < n_rows; i += 2) {
    const double nc = std::max<uint32_t>(1, rows[i].targets), nr = std::max<uint32_t>(1, rows[i + 1].targets);
    const double pc = mean ? policy[i] / nc : policy[i], pr = mean ? policy[i + 1] / nr : policy[i + 1];
    const double rc = mean ? reference[i] / nc : reference[i], rr = mean ? reference[i + 1] / nr : reference[i + 1];
    const DpoPair p = dpo_pair(s.loss, s.beta, s.label_smoothing, pc, pr, rc, rr);
    stats.dpo_loss += p.loss;
    stats.reward_chosen += p.reward_chosen;
    stats.reward_rejected += p.reward_rejected;
    stats.correct += p.correct() ? 1 : 0;
    stats.margin += p.margin();
    stats.logp_chosen += pc;  // as the loss sees them: per-token means for ipo (TRL's logps/*)
    stats.logp_rejected += pr;
    stats.sft_nll += -policy[i];
    stats.chosen_tokens += rows[i].targets;
    stats.pairs += 1;
    if (!factors) continue;
    // d loss / d(-log p of a token) of each side: -(d loss / d logp_side) / P (/ n for means),
    // plus the SFT term's weight on chosen tokens.
    const double side[2] = {-p.dloss_dchosen / step_pairs / (mean ? nc : 1.0) +
                                (s.sft_weight > 0 ? s.sft_weight / std::max(1.0, step_chosen_tokens) : 0.0),
                            -p.dloss_drejected / step_pairs / (mean ? nr : 1.0)};
    for (size_t k = 0; k < 2; ++k)
      for (int t = 0; t < T; ++t) {
        const size_t n = (i + k) * size_t(T) + size_t(t);
        if (targets[n] != -1) (*factors)[n] = float(side[k]);
      }
  }
}

void write_reference_logps(const std::string& path, const ReferenceLogps& r, const std::vector<PairRow>& chosen_rows,
                           const std::vector<PairRow>& rejected_rows, const std::string& tool) {
  const std::string tmp = path + ".tmp";
  {
    io::Provenance prov;
    prov.tool = tool;
    io::ShardWriter w(tmp, "reference_logps", prov);
    for (const char* d : {"chosen_logp", "rejected_logp", "chosen_targets", "rejected_targets"}) w.declare(d);
    w.append("chosen_logp", r.chosen);
    w.append("rejected_logp", r.rejected);
    std::vector<uint32_t> nc, nr;
    for (const auto& x : chosen_rows) nc.push_back(x.targets);
    for (const auto& x : rejected_rows) nr.push_back(x.targets);
    w.append("chosen_targets", nc);
    w.append("rejected_targets", nr);
    w.set_attr("num_pairs", uint64_t(r.chosen.size()));
    w.set_attr("seq_len", r.seq_len);
    w.set_attr("tokenizer_sha256", r.tokenizer_sha256);
    w.set_attr("data_sha256", r.data_sha256);
    w.set_attr("reference_fingerprint", r.reference_fingerprint);
    w.close();
  }
  fs::rename(tmp, path);
}

ReferenceLogps read_reference_logps(const std::string& path) {
  const io::ShardReader rd(path, "reference_logps");
  ReferenceLogps r;
  r.chosen = rd.read_all<double>("chosen_logp");
  r.rejected = rd.read_all<double>("rejected_logp");
  r.seq_len = rd.attr_uint("seq_len");
  r.tokenizer_sha256 = rd.attr_string("tokenizer_sha256");
  r.data_sha256 = rd.attr_string("data_sha256");
  r.reference_fingerprint = rd.attr_string("reference_fingerprint");
  if (r.chosen.size() != rd.attr_uint("num_pairs") || r.rejected.size() != r.chosen.size())
    throw RuntimeError(path + ": chosen_logp/rejected_logp do not hold num_pairs values");
  return r;
}

PairLogps pair_logps(nn::LlamaModel& model, ParallelState& ps, PreferenceData& data, int T, int micro, uint64_t first,
                     uint64_t count) {
  const int dp = ps.grid().dp(), d = ps.coord().dp;
  const bool writes = ps.last_stage() && ps.coord().tp == 0;  // each value from one rank
  const uint64_t batches = (count + uint64_t(micro) - 1) / uint64_t(micro);
  std::vector<uint64_t> mine;  // this replica's micro-batches
  for (uint64_t k = uint64_t(d); k < batches; k += uint64_t(dp)) mine.push_back(k);
  const int rows = 2 * micro;
  Batch b;
  for (auto* v : {&b.ids, &b.targets, &b.pos, &b.doc_start}) v->assign(size_t(rows) * size_t(T), 0);
  std::vector<double> values(4 * count, 0.0);  // chosen, rejected, chosen targets, rejected targets
  std::vector<PairRow> row_info;
  pipeline_forward(
      model, ps, int(mine.size()),
      [&](int mb, int slot) {
        const uint64_t p0 = mine[size_t(mb)] * uint64_t(micro);
        const int n = int(std::min<uint64_t>(uint64_t(micro), count - p0));
        std::fill(b.targets.begin(), b.targets.end(), -1);  // rows past the last pair count for nothing
        data.fill(b, T, first + p0, n, 0, false, &row_info);
        model.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data(), slot);
      },
      [&](int mb, int) {
        if (!writes) return;
        const uint64_t p0 = mine[size_t(mb)] * uint64_t(micro);
        const auto lp = row_logps(model.host_losses(), b.targets.data(), int(row_info.size()), T);
        for (size_t r = 0; r + 1 < row_info.size(); r += 2) {
          const uint64_t k = p0 + r / 2;
          values[k] = lp[r];
          values[count + k] = lp[r + 1];
          values[2 * count + k] = row_info[r].targets;
          values[3 * count + k] = row_info[r + 1].targets;
        }
      });
  // Sums of exact values and zeros: every rank ends with the same numbers the writer computed.
  for (size_t at = 0; at < values.size(); at += size_t(1) << 24)
    ps.world().allreduce(values.data() + at, std::min(values.size() - at, size_t(1) << 24), dist::ReduceOp::sum);
  PairLogps out;
  out.chosen.assign(values.begin(), values.begin() + long(count));
  out.rejected.assign(values.begin() + long(count), values.begin() + long(2 * count));
  for (uint64_t k = 0; k < count; ++k) {
    PairRow c, r;
    c.pair = r.pair = data.pair_at(first + k, 0, false);
    c.targets = uint32_t(values[2 * count + k]);
    r.targets = uint32_t(values[3 * count + k]);
    out.chosen_rows.push_back(c);
    out.rejected_rows.push_back(r);
  }
  return out;
}

DpoStats dpo_stats(const DpoSettings& s, const PairLogps& policy, const std::vector<double>& ref_chosen,
                   const std::vector<double>& ref_rejected) {
  DpoStats st;
  for (size_t k = 0; k < policy.chosen.size(); ++k) {
    const std::vector<double> pol = {policy.chosen[k], policy.rejected[k]}, ref = {ref_chosen[k], ref_rejected[k]};
    const std::vector<PairRow> rows = {policy.chosen_rows[k], policy.rejected_rows[k]};
    dpo_micro_batch(s, pol, ref, rows, nullptr, 1, 1.0, 1.0, st, nullptr);
  }
  st.finish(s.sft_weight);
  return st;
}

}  // namespace bellows::train
