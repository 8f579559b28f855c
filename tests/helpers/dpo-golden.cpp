// Test helper: runs dpo-align's objective on the small GQA test model exactly as the trainer's
// step does it (libshared/train/trainer.cpp, "if (dpo)"): the reference's forward over the
// step's micro-batches (pipeline_forward) -> row_logps; then per micro-batch the policy's
// forward with grad_scale 1 -> row_logps -> dpo_micro_batch -> scale_logit_grads -> backward
// (pipeline_train), on preference pairs read back through PreferenceData. It writes what
// tests/python/check_dpo_golden.py needs to recompute the loss, the rewards and every trainable
// gradient in PyTorch with TRL's DPO formulas:
//   dpo-golden OUTDIR --policy lora-base|lora-ref|full [--seed N]
// policies: lora-base  LoRA adapters (rank 4, alpha 8, every projection, B != 0) trained, the
//                      reference is the base with the adapters off (dpo-align --new-lora)
//           lora-ref   the same adapters trained, the reference is the base with a frozen
//                      reference adapter of other values (dpo-align --lora: the starting adapter)
//           full       every weight trained, perturbed from the reference, which is a frozen
//                      copy (LlamaModel(frozen = true)) of the unperturbed weights
// OUTDIR/
//   config.json          the model config, HF field names
//   pairs.json           the pairs as written to the shard (prompt, chosen, rejected token lists),
//                        pad_id, T, micro (pairs per micro-batch) and global (pairs per step)
//   pairs.h5             the tokens_preference shard PreferenceData read
//   batches.json         per micro-batch the rows PreferenceData::fill made (ids, targets, pos,
//                        doc_start, [2 micro * T] each) and each row's PairRow.targets
//   policy.json          the policy kind, and for LoRA its rank, alpha, targets and scale
//   params/NAME.npy      the base (reference) weights, HF names
//   lora/NAME.npy        LoRA: the policy's adapters (NAME as llama-golden: .../q_proj/A)
//   ref_lora/NAME.npy    lora-ref: the frozen reference adapter
//   policy_params/NAME.npy  full: the policy's weights
//   cases/CASE/result.json  settings (loss, beta, label_smoothing, sft_weight), the objective
//                        (DpoStats::finish), DpoStats' sums, and per pair the policy's and the
//                        reference's row log-probabilities and the rewards (dpo_stats)
//   cases/CASE/grads/NAME.npy  the objective's gradient for every trainable tensor (adapters as
//                        lora/, base weights as params/)
// Cases: sigmoid (label smoothing 0 and 0.1), ipo, hinge (beta 0.1, and beta 2 where some pairs
// are past the hinge's margin), each with sft_weight 0 and 0.5.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/comm.hpp"
#include "io/shard.hpp"
#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "nn/rng.hpp"
#include "train/dpo.hpp"
#include "train/parallel.hpp"
#include "train/preference_data.hpp"

using namespace bellows;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "dpo-golden: %s\nusage: dpo-golden OUTDIR --policy lora-base|lora-ref|full [--seed N]\n",
               why.c_str());
  std::exit(2);
}

// A float32 array as a .npy file (format 1.0, '<f4', C order), as llama-golden writes them.
void write_npy(const fs::path& path, const std::vector<float>& data, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  dims.erase(dims.size() - (shape.size() == 1 ? 1 : 2));
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  const uint16_t len = uint16_t(header.size());
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const char len_le[2] = {char(len & 0xff), char(len >> 8)};
  f.write(len_le, 2);
  f << header;
  f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(float)));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream f(path);
  f << j.dump(2) << '\n';  // doubles with enough digits to round-trip
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

// Every tensor of `specs` in the host buffer `all` as DIR/NAME.npy, NAME without `strip`.
void write_tensors(const fs::path& dir, const std::vector<nn::ParamSpec>& specs, const std::vector<float>& all,
                   const std::string& strip = {}) {
  for (const auto& s : specs) {
    std::vector<float> t(all.begin() + std::ptrdiff_t(s.offset), all.begin() + std::ptrdiff_t(s.offset + s.numel));
    const std::string name = s.name.compare(0, strip.size(), strip) == 0 ? s.name.substr(strip.size()) : s.name;
    const fs::path path = dir / (name + ".npy");
    fs::create_directories(path.parent_path());
    write_npy(path, t, s.shape);
  }
}

std::vector<float> download(nn::Backend& be, const float* p, size_t n) {
  std::vector<float> h(n);  // [n]
  be.download(h.data(), p, n);
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  std::string outdir, policy;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--policy") {
      if (i + 1 >= argc) usage("missing value for --policy");
      policy = argv[++i];
    } else if (arg == "--seed") {
      if (i + 1 >= argc) usage("missing value for --seed");
      char* end = nullptr;
      seed = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0') usage("--seed: not a number");
    } else if (!arg.empty() && arg[0] == '-') usage("unknown option " + arg);
    else if (outdir.empty()) outdir = arg;
    else usage("more than one OUTDIR");
  }
  if (outdir.empty()) usage("no OUTDIR");
  if (policy != "lora-base" && policy != "lora-ref" && policy != "full") usage("--policy: lora-base, lora-ref or full");
  const bool lora_policy = policy != "full";

  try {
    // llama-golden's model: GQA (6 query heads on 2 KV heads), 2 layers, head_dim 8.
    nn::LlamaConfig cfg = nn::preset("tiny", 101);
    cfg.hidden_size = 48;
    cfg.intermediate_size = 72;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 6;
    cfg.num_key_value_heads = 2;
    cfg.max_position_embeddings = 64;
    cfg.rope_theta = 10000.0;
    const int V = int(cfg.vocab_size);

    // Four pairs in two micro-batches of two (rows of T = 12): prompts and responses of other
    // lengths on each side, so that the prompt mask and the padding differ row by row; pair 2
    // has no prompt (its first response token has no context and no target), pair 3's chosen
    // side fills the row exactly (T + 1 tokens: no padding).
    const int T = 12, micro = 2, global = 4, M = global / micro, rows = 2 * micro;
    const int32_t pad_id = 7;
    const int lens[global][3] = {{3, 4, 6}, {5, 7, 2}, {0, 5, 8}, {4, 9, 3}};  // prompt, chosen, rejected
    std::vector<std::vector<uint32_t>> cols[3];                              // prompt, chosen, rejected
    nn::Rng trng(seed, "dpo-golden pairs");
    for (int p = 0; p < global; ++p)
      for (int c = 0; c < 3; ++c) {
        std::vector<uint32_t> v(size_t(lens[p][c]));
        for (auto& x : v) x = uint32_t(trng.below(uint64_t(V)));
        cols[c].push_back(v);
      }
    const fs::path out(outdir);
    fs::create_directories(out);
    const std::string shard = (out / "pairs.h5").string();
    {
      io::Provenance prov;
      prov.tool = "dpo-golden";
      io::ShardWriter w(shard, "tokens_preference", prov);
      const char* names[3] = {"prompt", "chosen", "rejected"};
      for (int c = 0; c < 3; ++c) {
        const std::string col = names[c];
        w.declare(col + "_data");
        w.declare(col + "_offsets");
        std::vector<uint32_t> data;
        std::vector<uint64_t> offsets{0};
        for (const auto& v : cols[c]) {
          data.insert(data.end(), v.begin(), v.end());
          offsets.push_back(data.size());
        }
        w.append(col + "_data", data);
        w.append(col + "_offsets", offsets);
      }
      w.set_attr("num_pairs", uint64_t(global));
      w.set_attr("vocab_size", uint64_t(V));
      w.set_attr("tokenizer_sha256", std::string(64, 'd'));
      w.set_attr("eos_id", int64_t(pad_id));
      w.close();
    }
    train::PreferenceData pref(shard);
    write_json(out / "config.json", cfg.to_hf_json());
    write_json(out / "pairs.json", {{"prompt", cols[0]}, {"chosen", cols[1]}, {"rejected", cols[2]}, {"pad_id", pad_id},
                                    {"T", T}, {"micro", micro}, {"global", global}});

    auto be = nn::make_cpu_backend(2);
    dist::SelfCommunicator world;
    train::ParallelState ps(world, {"localhost"}, train::ParallelOptions{}, cfg);

    // The policy, and what the reference runs on (the policy model itself for LoRA).
    nn::LoraConfig lora;
    lora.rank = 4;
    lora.alpha = 8;
    lora.targets = nn::parse_lora_targets("all");
    nn::LlamaModel model(cfg, *be, rows, T, nn::Recompute::none, {}, lora_policy ? &lora : nullptr);
    model.init_weights(seed);
    write_tensors(out / "params", model.params(), download(*be, model.param_data(), model.num_params()));
    std::unique_ptr<nn::LlamaModel> ref_model;  // full: the frozen copy of the starting weights
    float* ref_adapters = nullptr;              // lora-ref: [num_trainable] on the backend
    nlohmann::json pol = {{"policy", policy}};
    if (lora_policy) {
      // init_lora's A; B (0 after init_lora, where policy == reference) gets N(0, 0.05) values.
      model.init_lora(seed);
      const auto& ls = model.trainable_specs();
      std::vector<float> ad = download(*be, model.trainable_data(), model.num_trainable());  // [num_trainable]
      for (const auto& s : ls)
        if (s.name.back() == 'B') {
          nn::Rng r(seed, "dpo-golden lora B " + s.name);
          for (size_t i = s.offset; i < s.offset + s.numel; ++i) ad[i] = float(r.normal() * 0.05);
        }
      be->upload(model.trainable_data(), ad.data(), ad.size());
      write_tensors(out / "lora", ls, ad, "lora/");
      if (policy == "lora-ref") {
        // The adapter the policy started from: the same tensors moved by N(0, 0.05) (A) and
        // N(0, 0.02) (B).
        std::vector<float> ref = ad;  // [num_trainable]
        for (const auto& s : ls) {
          nn::Rng r(seed, "dpo-golden reference adapter " + s.name);
          const double sd = s.name.back() == 'A' ? 0.05 : 0.02;
          for (size_t i = s.offset; i < s.offset + s.numel; ++i) ref[i] += float(r.normal() * sd);
        }
        ref_adapters = be->alloc(ref.size());
        be->upload(ref_adapters, ref.data(), ref.size());
        write_tensors(out / "ref_lora", ls, ref, "lora/");
      }
      std::vector<std::string> names;
      for (auto t : lora.targets) names.push_back(nn::to_string(t));
      pol.update({{"rank", lora.rank}, {"alpha", lora.alpha}, {"rslora", lora.rslora}, {"dropout", lora.dropout},
                  {"targets", names}, {"scale", lora.scale()}});
    } else {
      ref_model = std::make_unique<nn::LlamaModel>(cfg, *be, rows, T, nn::Recompute::none, nn::ModelParallel{}, nullptr, true);
      if (ref_model->grad_data() != nullptr) throw std::runtime_error("the frozen reference has a gradient buffer");
      std::vector<float> w = download(*be, model.param_data(), model.num_params());  // [num_params]
      be->upload(ref_model->param_data(), w.data(), w.size());
      // The policy: every weight moved by N(0, 0.04) (norms too), a stream per tensor.
      for (const auto& s : model.params()) {
        nn::Rng r(seed, "dpo-golden policy " + s.name);
        for (size_t i = s.offset; i < s.offset + s.numel; ++i) w[i] += float(r.normal() * 0.04);
      }
      be->upload(model.param_data(), w.data(), w.size());
      write_tensors(out / "policy_params", model.params(), w);
    }
    write_json(out / "policy.json", pol);

    // As the trainer: the step's normalisers, then the reference's pass over every micro-batch,
    // then the policy's forward/backward per micro-batch.
    double chosen_tokens = 0;
    for (uint64_t k = 0; k < uint64_t(global); ++k)
      chosen_tokens += pref.row_of(pref.pair_at(k, 0, false), 0, T).targets;
    train::Batch b;
    for (auto* v : {&b.ids, &b.targets, &b.pos, &b.doc_start}) v->assign(size_t(rows) * size_t(T), 0);
    std::vector<train::PairRow> row_info;
    auto load = [&](int mb, int slot, nn::LlamaModel& m) {
      pref.fill(b, T, uint64_t(mb) * uint64_t(micro), micro, 0, false, &row_info);
      m.set_batch(b.ids.data(), b.targets.data(), b.pos.data(), b.doc_start.data(), slot);
    };
    nlohmann::json batches = nlohmann::json::array();
    for (int mb = 0; mb < M; ++mb) {
      pref.fill(b, T, uint64_t(mb) * uint64_t(micro), micro, 0, false, &row_info);
      std::vector<uint32_t> counts;
      for (const auto& r : row_info) counts.push_back(r.targets);
      batches.push_back({{"ids", b.ids}, {"targets", b.targets}, {"pos", b.pos}, {"doc_start", b.doc_start},
                         {"row_targets", counts}});
    }
    write_json(out / "batches.json", batches);

    struct Case {
      std::string name;
      train::DpoSettings s;
    };
    std::vector<Case> cases;
    for (double sft : {0.0, 0.5}) {
      const std::string suffix = sft > 0 ? "-sft0.5" : "";
      cases.push_back({"sigmoid" + suffix, {train::DpoLoss::sigmoid, 0.1, 0.0, sft}});
      cases.push_back({"sigmoid-ls0.1" + suffix, {train::DpoLoss::sigmoid, 0.1, 0.1, sft}});
      cases.push_back({"ipo" + suffix, {train::DpoLoss::ipo, 0.1, 0.0, sft}});
      cases.push_back({"hinge" + suffix, {train::DpoLoss::hinge, 0.1, 0.0, sft}});
      cases.push_back({"hinge-beta2" + suffix, {train::DpoLoss::hinge, 2.0, 0.0, sft}});
    }
    const size_t n = model.num_trainable();
    for (const Case& c : cases) {
      be->zero(model.trainable_grad(), n);  // backward() accumulates over the micro-batches
      std::vector<std::vector<double>> ref(static_cast<size_t>(M)), polp(static_cast<size_t>(M));
      std::vector<std::vector<train::PairRow>> infos(static_cast<size_t>(M));
      nn::LlamaModel& rm = lora_policy ? model : *ref_model;
      if (lora_policy) model.set_reference_adapters(true, ref_adapters);
      train::pipeline_forward(
          rm, ps, M, [&](int mb, int slot) { load(mb, slot, rm); },
          [&](int mb, int) { ref[size_t(mb)] = train::row_logps(rm.host_losses(), b.targets.data(), rows, T); });
      if (lora_policy) model.set_reference_adapters(false);
      train::DpoStats stats;
      std::vector<float> factors;
      train::pipeline_train(
          model, ps, M, 1.0f, [&](int mb, int slot) { load(mb, slot, model); },
          [&](int mb, int) {
            const auto p = train::row_logps(model.host_losses(), b.targets.data(), rows, T);
            train::DpoStats mbs;
            train::dpo_micro_batch(c.s, p, ref[size_t(mb)], row_info, b.targets.data(), T, double(global), chosen_tokens,
                                   mbs, &factors);
            stats.add(mbs);
            model.scale_logit_grads(factors.data());
            polp[size_t(mb)] = p;
            infos[size_t(mb)] = row_info;
          });
      stats.finish(c.s.sft_weight);

      // Per pair: the log-probabilities and the rewards as dpo_stats (evaluation) reports them.
      train::PairLogps all;
      std::vector<double> ref_c, ref_r;
      for (int mb = 0; mb < M; ++mb)
        for (int k = 0; k < micro; ++k) {
          const size_t r = size_t(2 * k);
          all.chosen.push_back(polp[size_t(mb)][r]);
          all.rejected.push_back(polp[size_t(mb)][r + 1]);
          all.chosen_rows.push_back(infos[size_t(mb)][r]);
          all.rejected_rows.push_back(infos[size_t(mb)][r + 1]);
          ref_c.push_back(ref[size_t(mb)][r]);
          ref_r.push_back(ref[size_t(mb)][r + 1]);
        }
      nlohmann::json pairs = nlohmann::json::array();
      for (size_t k = 0; k < all.chosen.size(); ++k) {
        train::PairLogps one;
        one.chosen = {all.chosen[k]};
        one.rejected = {all.rejected[k]};
        one.chosen_rows = {all.chosen_rows[k]};
        one.rejected_rows = {all.rejected_rows[k]};
        const train::DpoStats e = train::dpo_stats(c.s, one, {ref_c[k]}, {ref_r[k]});
        pairs.push_back({{"policy_chosen", all.chosen[k]}, {"policy_rejected", all.rejected[k]},
                         {"reference_chosen", ref_c[k]}, {"reference_rejected", ref_r[k]},
                         {"reward_chosen", e.reward_chosen}, {"reward_rejected", e.reward_rejected},
                         {"loss", e.dpo_loss}});
      }
      double sums[train::DpoStats::kFields];
      stats.to(sums);
      const fs::path dir = out / "cases" / c.name;
      fs::create_directories(dir);
      write_json(dir / "result.json",
                 {{"loss_type", train::to_string(c.s.loss)}, {"beta", c.s.beta}, {"label_smoothing", c.s.label_smoothing},
                  {"sft_weight", c.s.sft_weight}, {"loss", stats.loss},
                  {"stats", {{"loss", sums[0]}, {"dpo_loss", sums[1]}, {"sft_nll", sums[2]}, {"reward_chosen", sums[3]},
                             {"reward_rejected", sums[4]}, {"correct", sums[5]}, {"margin", sums[6]},
                             {"logp_chosen", sums[7]}, {"logp_rejected", sums[8]}, {"pairs", sums[9]},
                             {"chosen_tokens", sums[10]}}},
                  {"pairs", pairs}});
      const auto g = download(*be, model.trainable_grad(), n);
      if (lora_policy) write_tensors(dir / "grads" / "lora", model.trainable_specs(), g, "lora/");
      else write_tensors(dir / "grads" / "params", model.params(), g);
      std::printf("dpo-golden: %s %s: loss %.6f\n", policy.c_str(), c.name.c_str(), stats.loss);
    }
    std::printf("dpo-golden: %zu cases, %zu trainable parameters, written to %s\n", cases.size(), n, outdir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dpo-golden: %s\n", e.what());
    return 1;
  }
  return 0;
}
