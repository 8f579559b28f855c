// The --dry-run planner: the worked example for a 70B on H100s (what fits, what does
// not, and why), with expected numbers recomputed here from the config by plain expressions;
// the CPU activation count against the model's own; FLOPs against LlamaConfig's; the layouts
// flagged and the search.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cli/app.hpp"
#include "core/error.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"
#include "train/planner.hpp"

using namespace bellows;
using namespace bellows::train;
using nn::Recompute;

namespace {

const nn::LlamaConfig& l70b() {
  static const nn::LlamaConfig c = nn::preset("llama3-70b", 0);
  return c;
}

// The request: micro 1 x 8192 tokens, global 512 on H100 80GB, nodes x GPUs as given.
PlanRequest h100(int nodes, int gpus_per_node, int tp, int pp, int zero = 0, Recompute rc = Recompute::full) {
  PlanRequest r;
  r.cfg = l70b();
  r.model_name = "llama3-70b";
  r.nodes = nodes;
  r.gpus_per_node = gpus_per_node;
  r.tp = tp;
  r.pp = pp;
  r.device = device_spec("h100-80gb");
  r.micro_batch = 1;
  r.seq_len = 8192;
  r.global_batch = 512;
  r.zero = zero;
  r.recompute = rc;
  return r;
}

// Parameters of one decoder layer, from the config's fields: norms, q, k, v, o, gate/up/down.
double layer_params(const nn::LlamaConfig& c) {
  const double C = double(c.hidden_size), kv = double(c.num_key_value_heads * c.head_dim());
  return 2 * C + C * C + 2 * kv * C + C * C + 3 * C * double(c.intermediate_size);
}

std::string usage_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

bool has_warning(const Plan& p, const std::string& what) {
  return std::any_of(p.warnings.begin(), p.warnings.end(), [&](const std::string& w) { return w.find(what) != std::string::npos; });
}

}  // namespace

TEST(Planner, DeviceTableAndUnknownNames) {
  const DeviceSpec& h = device_spec("h100-80gb");
  EXPECT_EQ(h.memory_bytes, 80e9);
  EXPECT_EQ(h.peak_flops, 989e12);
  EXPECT_EQ(h.intra_node_bytes_per_s, 450e9);
  EXPECT_EQ(h.inter_node_bytes_per_s, 50e9);  // 400 Gb/s NDR
  EXPECT_TRUE(h.mixed_precision);
  EXPECT_EQ(device_spec("a100-80gb").inter_node_bytes_per_s, 25e9);  // 200 Gb/s HDR
  EXPECT_EQ(device_spec("h200-141gb").memory_bytes, 141e9);
  EXPECT_FALSE(device_spec("cpu").mixed_precision);
  const std::string msg = usage_error_of([] { device_spec("h100"); });
  EXPECT_NE(msg.find("--gpu"), std::string::npos) << msg;
  EXPECT_NE(msg.find("h100-80gb"), std::string::npos) << msg;
}

// (a) Under pure data parallelism every GPU holds all 70.6e9 parameters: bf16 weights (2 B) and
// fp32 gradients (4 B) alone are 423 GB, which no DP degree and no ZeRO-1 sharding of the
// optimizer state (the 12 B) brings under 80 GB.
TEST(Planner, SeventyBNeverFitsUnderPureDataParallelism) {
  const double P = double(l70b().num_params());
  EXPECT_GT(P * 6, 80e9);
  for (int dp : {1, 8, 64, 512}) {
    for (int zero : {0, 1}) {
      const int per_node = std::min(dp, 8);
      const Plan p = make_plan(h100(dp / per_node, per_node, 1, 1, zero, Recompute::full));
      ASSERT_EQ(p.dp, dp);
      const StagePlan& s = p.stages.at(0);
      EXPECT_NEAR(s.weights + s.grads, P * 6, 1e-9 * P) << "dp " << dp;
      EXPECT_NEAR(s.optimizer, P * 12 / (zero ? dp : 1), 1e-9 * P) << "dp " << dp;
      EXPECT_FALSE(p.fits) << "dp " << dp << " zero " << zero;
    }
  }
}

// (b) TP=4: the bf16 weights of a rank are a quarter of 2 B x 70.6e9 ≈ 35 GB (norms are
// replicated, the rest split).
TEST(Planner, TensorParallelFourHoldsAbout35GBOfWeights) {
  const Plan p = make_plan(h100(1, 4, 4, 1));
  const double expected = double(l70b().num_params()) * 2 / 4;
  EXPECT_NEAR(expected, 35.3e9, 0.1e9);
  EXPECT_NEAR(p.stages.at(0).weights, expected, 0.01 * expected);
  EXPECT_GE(p.stages.at(0).weights, expected);  // the replicated norms only add
}

// (c) LoRA rank 16 on the frozen base, TP=4 on one 4-GPU node, full recomputation: the base's
// bf16 weights (35 GB), the adapters' full state and one micro-batch's activations fit in 80 GB.
TEST(Planner, LoraOnTheFrozenBaseFitsOneNode) {
  PlanRequest r = h100(1, 4, 4, 1, 0, Recompute::full);
  r.lora_rank = 16;
  const Plan p = make_plan(r);
  const auto& c = l70b();
  const double C = double(c.hidden_size), F = double(c.intermediate_size), kv = double(c.num_key_value_heads * c.head_dim());
  // r (in + out) per target and layer: q, o (C x C), k, v (C x kv), gate, up, down (C x F).
  const double adapters = 16.0 * (2 * (C + C) + 2 * (C + kv) + 3 * (C + F)) * double(c.num_hidden_layers);
  EXPECT_DOUBLE_EQ(p.trainable_params, adapters);
  EXPECT_LT(adapters, 0.005 * double(c.num_params()));
  const StagePlan& s = p.stages.at(0);
  EXPECT_NEAR(s.weights, double(c.num_params()) * 2 / 4, 0.02 * double(c.num_params()) * 2 / 4);
  EXPECT_LE(s.grads, 4 * adapters);    // only adapters have gradients
  EXPECT_GE(s.grads, 4 * adapters / 4);
  EXPECT_TRUE(p.fits) << format_plan(p);
  EXPECT_NE(format_plan(p).find("FITS"), std::string::npos);
  // Without recomputation the 80 layers' activations of 8192 tokens (~1 GB each) do not fit.
  r.recompute = Recompute::none;
  EXPECT_FALSE(make_plan(r).fits);
}

// (d) Full training on that node: 18 B per parameter of state alone is ~318 GB per GPU.
TEST(Planner, FullTrainingOnOneNodeIsOom) {
  const Plan p = make_plan(h100(1, 4, 4, 1, 1, Recompute::full));
  EXPECT_FALSE(p.fits);
  const StagePlan& s = p.stages.at(0);
  EXPECT_GE(s.weights + s.grads + s.optimizer, double(l70b().num_params()) * 18 / 4);  // dp 1: ZeRO shards nothing
  EXPECT_TRUE(has_warning(p, "--zero 1 with dp 1"));
  const std::string text = format_plan(p);
  EXPECT_NE(text.find("OOM"), std::string::npos) << text;
  EXPECT_EQ(text.find("verdict: FITS"), std::string::npos) << text;
}

// (e) Full training state fits with TP=8 inside each 8-GPU node and PP=8 across 8 nodes, full
// recomputation at 8192 tokens: per GPU 1/64 of the model's 18 B per parameter (~21 GB; dp is 1
// so ZeRO-1 cannot help) plus the first stage's 8 micro-batches in flight x 10 layer inputs.
// Selective recomputation (which on a flash-attention GPU keeps everything) does not fit at 8192
// tokens, and does at 4096.
TEST(Planner, TensorAndPipelineParallelFitsOn64Gpus) {
  const Plan p = make_plan(h100(8, 8, 8, 8, 1, Recompute::full));
  EXPECT_EQ(p.dp, 1);
  EXPECT_EQ(p.accumulation, 512);
  ASSERT_EQ(p.stages.size(), 8u);
  for (const auto& s : p.stages) EXPECT_EQ(s.layers, 10);
  EXPECT_EQ(p.stages[0].microbatches_in_flight, 8);
  EXPECT_EQ(p.stages[7].microbatches_in_flight, 1);
  // Stage 0's state: 10 layers (matrices / 8, norms whole) + the vocab-parallel embedding.
  const auto& c = l70b();
  const double C = double(c.hidden_size), norms = 2 * C;
  const double params0 = 10 * ((layer_params(c) - norms) / 8 + norms) + double(c.vocab_size) * C / 8;
  EXPECT_NEAR(p.stages[0].params, params0, 1e-9 * params0);
  EXPECT_NEAR(p.stages[0].weights + p.stages[0].grads + p.stages[0].optimizer, 18 * params0, 1e-9 * params0);
  // Its activations: at least the 8 x 10 bf16 layer inputs [8192, 8192].
  EXPECT_GE(p.stages[0].activations, 8 * 10 * 2 * 8192.0 * C);
  EXPECT_TRUE(p.fits) << format_plan(p);
  EXPECT_FALSE(has_warning(p, "spans nodes"));
  EXPECT_FALSE(p.tp_allreduce.inter_node);  // TP inside a node
  EXPECT_TRUE(p.pp_p2p.inter_node);         // PP between them

  EXPECT_FALSE(make_plan(h100(8, 8, 8, 8, 1, Recompute::selective)).fits);
  PlanRequest shorter = h100(8, 8, 8, 8, 1, Recompute::selective);
  shorter.seq_len = 4096;
  EXPECT_TRUE(make_plan(shorter).fits);
}

// Where DP remains, ZeRO-1 is what makes it fit: TP=4 x PP=4 x DP=4 on 64 GPUs holds 1/16 of the
// model per GPU, 18 B per parameter = 79 GB unsharded; 6 + 12/4 = 9 B with ZeRO-1.
TEST(Planner, ZeroOneMakesTheDataParallelLayoutFit) {
  const Plan plain = make_plan(h100(8, 8, 4, 4, 0, Recompute::full));
  const Plan zero = make_plan(h100(8, 8, 4, 4, 1, Recompute::full));
  ASSERT_EQ(plain.dp, 4);
  EXPECT_FALSE(plain.fits) << format_plan(plain);
  EXPECT_TRUE(zero.fits) << format_plan(zero);
  const StagePlan& a = plain.stages[1];  // no embedding or head: 20 layers
  const StagePlan& b = zero.stages[1];
  EXPECT_DOUBLE_EQ(a.weights + a.grads + a.optimizer, 18 * a.params);
  EXPECT_DOUBLE_EQ(b.weights + b.grads + b.optimizer, (6 + 12.0 / 4) * b.params);
}

// (f) TP=8 over two 4-GPU nodes puts each layer's all-reduces on InfiniBand: flagged, with the
// fix; TP=4 x PP=2 on the same GPUs is not, and is estimated faster.
TEST(Planner, TensorParallelAcrossNodesIsFlagged) {
  PlanRequest bad = h100(2, 4, 8, 1);
  bad.lora_rank = 16;
  const Plan p = make_plan(bad);
  EXPECT_TRUE(p.tp_allreduce.inter_node);
  EXPECT_TRUE(has_warning(p, "TP=8 spans nodes of 4 GPUs")) << format_plan(p);
  EXPECT_TRUE(has_warning(p, "--tp 4 --pp 2")) << format_plan(p);
  EXPECT_NE(format_plan(p).find("warning: TP=8"), std::string::npos);

  PlanRequest good = bad;
  good.tp = 4;
  good.pp = 2;
  const Plan q = make_plan(good);
  EXPECT_FALSE(has_warning(q, "spans nodes"));
  EXPECT_FALSE(q.tp_allreduce.inter_node);
  EXPECT_TRUE(q.pp_p2p.inter_node);
  EXPECT_LT(q.tp_allreduce.seconds, p.tp_allreduce.seconds);
}

TEST(Planner, OtherLayoutProblemsAreWarned) {
  PlanRequest r = h100(2, 8, 16, 1);  // 64 heads fine, 8 kv heads: replicated
  EXPECT_TRUE(has_warning(make_plan(r), "kv heads for --tp 16"));
  r = h100(1, 6, 6, 1);
  EXPECT_TRUE(has_warning(make_plan(r), "64 attention heads do not divide over --tp 6"));
  r = h100(1, 4, 1, 4);
  r.global_batch = 2;  // 2 micro-batches for 4 stages
  EXPECT_TRUE(has_warning(make_plan(r), "1F1B bubble"));
  r = h100(1, 8, 4, 1);
  r.global_batch = 3;  // dp 2
  EXPECT_TRUE(has_warning(make_plan(r), "--global-batch 3 is not a multiple"));
}

TEST(Planner, RequestsThatCannotBeLaidOutAreUsageErrors) {
  EXPECT_NE(usage_error_of([] { make_plan(h100(1, 4, 3, 1)); }).find("--tp 3"), std::string::npos);
  PlanRequest r = h100(1, 8, 4, 1);
  r.dp = 4;
  EXPECT_NE(usage_error_of([&] { make_plan(r); }).find("--dp 4"), std::string::npos);
  r = h100(1, 4, 4, 1);
  r.zero = 2;
  EXPECT_NE(usage_error_of([&] { make_plan(r); }).find("--zero 2"), std::string::npos);
  r = h100(1, 4, 4, 1);
  r.lora_rank = 8;
  r.lora_targets = {"q", "qkv"};
  EXPECT_NE(usage_error_of([&] { make_plan(r); }).find("'qkv'"), std::string::npos);
}

// Layers split as evenly as possible, the first L % P stages one more; embedding first, head last.
TEST(Planner, StagesSplitLayersEarliestFirst) {
  PlanRequest r = h100(1, 3, 1, 3);
  const Plan p = make_plan(r);
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(p.stages[0].layers, 27);
  EXPECT_EQ(p.stages[1].layers, 27);
  EXPECT_EQ(p.stages[2].layers, 26);
  EXPECT_EQ(p.stages[1].first_layer, 27);
  EXPECT_EQ(p.stages[2].first_layer, 54);
  EXPECT_TRUE(p.stages[0].has_embedding && !p.stages[0].has_head);
  EXPECT_TRUE(p.stages[2].has_head && !p.stages[2].has_embedding);
  EXPECT_EQ(p.stages[1].first_rank, 1);
  // 1F1B: stage s holds min(P - s, M) micro-batches.
  EXPECT_EQ(p.stages[0].microbatches_in_flight, 3);
  EXPECT_EQ(p.stages[2].microbatches_in_flight, 1);
  r.pp_layers = {30, 30, 20};  // --pp-layers: the last stage lighter, it holds the head
  const Plan given = make_plan(r);
  EXPECT_EQ(given.stages[2].layers, 20);
  EXPECT_EQ(given.stages[2].first_layer, 60);
  r.pp_layers = {40, 40};
  EXPECT_NE(usage_error_of([&] { make_plan(r); }).find("--pp-layers must list 3"), std::string::npos);
  const auto ranks = rank_plans(p);
  ASSERT_EQ(ranks.size(), 3u);
  EXPECT_EQ(ranks[2].pp, 2);
  EXPECT_EQ(ranks[2].node, "node0");
}

// Tied embeddings: one tensor with pp = 1, a copy on the last stage with pp > 1.
TEST(Planner, TiedEmbeddingsAreCopiedOnTheLastStage) {
  PlanRequest r = h100(1, 1, 1, 1);
  r.cfg = nn::preset("smollm2-135m", 0);
  ASSERT_TRUE(r.cfg.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(make_plan(r).stages[0].params, double(r.cfg.num_params()));
  r.gpus_per_node = 2;
  r.pp = 2;
  const Plan p = make_plan(r);
  const double VC = double(r.cfg.vocab_size * r.cfg.hidden_size);
  EXPECT_DOUBLE_EQ(p.stages[0].params + p.stages[1].params, double(r.cfg.num_params()) + VC);
}

// The CPU backend (fp32, probabilities kept) at tp = pp = 1 holds exactly what LlamaModel
// allocates; its state is 4 + 4 + 8 B per parameter, ZeRO-1 sharding the 8.
TEST(Planner, CpuPlanMatchesTheModelsOwnCount) {
  for (const char* name : {"tiny", "small"}) {
    for (auto rc : {Recompute::none, Recompute::selective, Recompute::full}) {
      PlanRequest r;
      r.cfg = nn::preset(name, 1000);
      r.model_name = name;
      r.device = device_spec("cpu");
      r.micro_batch = 3;
      r.seq_len = 64;
      r.global_batch = 6;
      r.recompute = rc;
      const Plan p = make_plan(r);
      const double expected = double(nn::LlamaModel::activation_floats(r.cfg, 3, 64, rc)) * 4;
      EXPECT_DOUBLE_EQ(p.stages[0].activations, expected) << name << " " << nn::to_string(rc);
      const double P = double(r.cfg.num_params());
      EXPECT_DOUBLE_EQ(p.stages[0].weights, 4 * P);
      EXPECT_DOUBLE_EQ(p.stages[0].grads, 4 * P);
      EXPECT_DOUBLE_EQ(p.stages[0].optimizer, 8 * P);
    }
  }
  PlanRequest r;
  r.cfg = nn::preset("small", 1000);
  r.device = device_spec("cpu");
  r.gpus_per_node = 4;
  r.global_batch = 4;
  r.zero = 1;
  EXPECT_DOUBLE_EQ(make_plan(r).stages[0].optimizer, 8 * double(r.cfg.num_params()) / 4);
}

// Model FLOPs summed over stages and ranks are LlamaConfig::train_flops_per_token's, whatever
// the layout; full recomputation adds a forward of the layers.
TEST(Planner, FlopsAreTheConfigsWhateverTheLayout) {
  for (const char* name : {"llama3-8b", "smollm2-135m"}) {
    const nn::LlamaConfig c = nn::preset(name, 0);
    for (auto [nodes, gpn, tp, pp] : {std::tuple{1, 1, 1, 1}, {1, 8, 2, 2}, {2, 4, 1, 4}, {3, 1, 1, 3}}) {
      PlanRequest r = h100(nodes, gpn, tp, pp, 0, Recompute::none);
      r.cfg = c;
      r.seq_len = 4096;
      r.global_batch = 48;
      const Plan p = make_plan(r);
      const double expected = c.train_flops_per_token(4096) * 48 * 4096;
      EXPECT_NEAR(p.model_flops_per_step, expected, 1e-9 * expected) << name << " tp " << tp << " pp " << pp;
      EXPECT_DOUBLE_EQ(p.hardware_flops_per_step, p.model_flops_per_step);
    }
    PlanRequest r = h100(1, 1, 1, 1, 0, Recompute::full);
    r.cfg = c;
    r.seq_len = 4096;
    r.global_batch = 1;
    const Plan p = make_plan(r);
    const double layer_forward = (2 * layer_params(c) + 4 * double(c.hidden_size) * 4096) * double(c.num_hidden_layers) * 4096;
    EXPECT_NEAR(p.hardware_flops_per_step - p.model_flops_per_step, layer_forward, 1e-9 * layer_forward);
  }
}

// Traffic per rank: TP 4 all-reduces of [N,C] per layer and micro-batch (+ embedding, + head),
// ring volume 2(t-1)/t; DP the fp32 gradients all-reduced, or under ZeRO-1 reduce-scattered in
// fp32 and the bf16 weights all-gathered.
TEST(Planner, TrafficFollowsTheRingFormulas) {
  PlanRequest r = h100(2, 8, 4, 2, 0, Recompute::none);  // dp 2
  r.cfg = nn::preset("llama3-8b", 0);
  r.seq_len = 4096;
  r.global_batch = 16;
  const Plan p = make_plan(r);
  ASSERT_EQ(p.dp, 2);
  ASSERT_EQ(p.accumulation, 8);
  const double act = 2.0 * 4096 * double(r.cfg.hidden_size);
  const StagePlan& s0 = p.stages[0];
  EXPECT_DOUBLE_EQ(s0.tp_bytes_per_microbatch, (16 * 4 + 1) * 2 * 3.0 / 4 * act);
  EXPECT_DOUBLE_EQ(s0.pp_bytes_per_microbatch, act);
  EXPECT_DOUBLE_EQ(s0.dp_bytes_per_step, 2 * 1.0 / 2 * 4 * s0.trainable_params);
  EXPECT_FALSE(p.tp_allreduce.inter_node);
  EXPECT_FALSE(p.dp_allreduce.inter_node);  // dp groups: ranks r, r+4 on one node
  EXPECT_TRUE(p.pp_p2p.inter_node);         // stages on different nodes
  r.zero = 1;
  const Plan z = make_plan(r);
  EXPECT_DOUBLE_EQ(z.stages[0].dp_bytes_per_step, 1.0 / 2 * (4 + 2) * s0.trainable_params);
  EXPECT_DOUBLE_EQ(z.stages[0].optimizer, s0.optimizer / 2);
  // Time: (M + P - 1) slots of the slowest stage's micro-batch + the DP reduction.
  EXPECT_NEAR(p.bubble_s, (p.compute_s + p.tp_allreduce.seconds + p.pp_p2p.seconds) / 8 * 1, 1e-12 * p.step_s);
  EXPECT_NEAR(p.step_s, p.compute_s + p.tp_allreduce.seconds + p.pp_p2p.seconds + p.bubble_s + p.dp_allreduce.seconds,
              1e-12 * p.step_s);
  EXPECT_GT(p.mfu, 0);
  EXPECT_LT(p.mfu, r.compute_efficiency);
}

TEST(Planner, JsonCarriesTheVerdictAndTheCounts) {
  const Plan p = make_plan(h100(8, 8, 8, 8, 1));
  const auto j = plan_json(p);
  EXPECT_EQ(j["fits"], true);
  EXPECT_EQ(j["parameters"], l70b().num_params());
  EXPECT_EQ(j["accumulation_steps"], 512);
  EXPECT_EQ(j["stages"].size(), 8u);
  EXPECT_EQ(j["topology"]["tensor_parallel"], 8);
  EXPECT_DOUBLE_EQ(j["train_flops_per_step"].get<double>(), l70b().train_flops_per_token(8192) * 512 * 8192);
  const std::string text = format_plan(p);
  EXPECT_NE(text.find("70553706496 parameters"), std::string::npos) << text;
  EXPECT_NE(text.find("accumulation steps"), std::string::npos) << text;
  EXPECT_NE(text.find("stage 7: ranks 56-63 on node 7"), std::string::npos) << text;
  EXPECT_NE(text.find("verdict: FITS"), std::string::npos) << text;
}

// --suggest on 8 nodes x 8 H100: fitting layouts first, fastest first, TP within the node.
TEST(Planner, SuggestRanksFittingLayoutsFirst) {
  const std::vector<Plan> plans = suggest_layouts(h100(8, 8, 1, 1), 50);
  ASSERT_FALSE(plans.empty());
  EXPECT_TRUE(plans.front().fits) << format_suggestions(plans);
  EXPECT_LE(plans.front().request.tp, 8);
  bool seen_oom = false;
  for (size_t i = 0; i < plans.size(); ++i) {
    EXPECT_LE(plans[i].request.tp, 8);
    if (!plans[i].fits) seen_oom = true;
    EXPECT_FALSE(seen_oom && plans[i].fits) << "a fitting layout after an OOM one at " << i;
    if (i > 0 && plans[i].fits) {
      EXPECT_LE(plans[i - 1].step_s, plans[i].step_s);
    }
  }
  const std::string table = format_suggestions(plans);
  EXPECT_NE(table.find("FITS"), std::string::npos) << table;
  EXPECT_EQ(suggest_layouts(h100(8, 8, 1, 1), 3).size(), 3u);
}

// The command line: planner flags and the training flags (declared by the tool) make a request.
TEST(Planner, RequestFromTheCommandLine) {
  cli::ToolSpec spec;
  spec.name = "pretrain";
  cli::po::options_description train("Training");
  train.add_options()("tp", cli::po::value<int64_t>()->default_value(1), "")("pp", cli::po::value<int>()->default_value(1), "")(
      "zero", cli::po::value<int64_t>()->default_value(0), "")("micro-batch", cli::po::value<int64_t>()->default_value(8), "")(
      "seq-len", cli::po::value<int64_t>()->default_value(256), "")("global-batch", cli::po::value<int64_t>(), "")(
      "recompute", cli::po::value<std::string>()->default_value("none"), "")("pp-layers", cli::po::value<std::string>(), "");
  cli::po::options_description plan("Planner");
  add_planner_options(plan);
  spec.groups.push_back(train);
  spec.groups.push_back(plan);
  std::vector<const char*> argv = {"pretrain", "--tp", "4", "--pp", "2", "--nodes", "2", "--gpus-per-node", "4",
                                   "--gpu", "h100-80gb", "--micro-batch", "1", "--seq-len", "8192", "--global-batch", "512",
                                   "--zero", "1", "--recompute", "full", "--lora-rank", "16", "--lora-targets", "q,v",
                                   "--inter-node-bw", "25", "--gpu-memory-gb", "94", "--pp-layers", "42,38"};
  const cli::Parsed parsed = cli::parse(spec, int(argv.size()), argv.data());
  const PlanRequest r = plan_request_from(parsed.inv, l70b(), "llama3-70b");
  EXPECT_EQ(r.tp, 4);
  EXPECT_EQ(r.pp, 2);
  EXPECT_EQ(r.dp, 0);
  EXPECT_EQ(r.nodes, 2);
  EXPECT_EQ(r.gpus_per_node, 4);
  EXPECT_EQ(r.zero, 1);
  EXPECT_EQ(r.micro_batch, 1);
  EXPECT_EQ(r.seq_len, 8192);
  EXPECT_EQ(r.global_batch, 512);
  EXPECT_EQ(r.recompute, Recompute::full);
  EXPECT_EQ(r.pp_layers, (std::vector<int>{42, 38}));
  EXPECT_EQ(r.lora_rank, 16);
  EXPECT_EQ(r.lora_targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(r.device.name, "h100-80gb");
  EXPECT_EQ(r.device.inter_node_bytes_per_s, 25e9);
  EXPECT_EQ(r.device.memory_bytes, 94e9);
  EXPECT_EQ(r.device.intra_node_bytes_per_s, 450e9);
  EXPECT_TRUE(make_plan(r).fits);

  // Without --gpus-per-node: the grid asked for, over the nodes.
  std::vector<const char*> argv2 = {"pretrain", "--tp", "8", "--pp", "8", "--nodes", "8", "--gpu", "h100-80gb"};
  const PlanRequest r2 = plan_request_from(cli::parse(spec, int(argv2.size()), argv2.data()).inv, l70b(), "llama3-70b");
  EXPECT_EQ(r2.gpus_per_node, 8);
  EXPECT_EQ(r2.global_batch, 8);  // defaults to --micro-batch
  EXPECT_EQ(planner_flag_given(parsed.inv), "--nodes");
  std::vector<const char*> argv5 = {"pretrain", "--tp", "2", "--suggest"};
  EXPECT_EQ(planner_flag_given(cli::parse(spec, 4, argv5.data()).inv), "--suggest");
  EXPECT_EQ(planner_flag_given(cli::parse(spec, 3, argv5.data()).inv), "");
  std::vector<const char*> argv4 = {"pretrain", "--pp", "2", "--pp-layers", "40,4O"};
  EXPECT_NE(usage_error_of([&] { plan_request_from(cli::parse(spec, 5, argv4.data()).inv, l70b(), "m"); }).find("'4O'"),
            std::string::npos);
  std::vector<const char*> argv3 = {"pretrain", "--gpu", "v100"};
  EXPECT_NE(usage_error_of([&] { plan_request_from(cli::parse(spec, 3, argv3.data()).inv, l70b(), "m"); }).find("--gpu"),
            std::string::npos);
}

// What --dry-run prints: the plan, then its JSON on a "plan: " line; --suggest adds the table.
TEST(Planner, DryRunPrintsThePlanAndItsJson) {
  cli::ToolSpec spec;
  spec.name = "pretrain";
  cli::po::options_description plan("Planner");
  add_planner_options(plan);
  spec.groups.push_back(plan);
  std::vector<const char*> argv = {"pretrain", "--nodes", "2", "--gpus-per-node", "4", "--gpu", "h100-80gb", "--lora-rank", "8"};
  const cli::Parsed one = cli::parse(spec, int(argv.size()), argv.data());
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(run_dry_run(one.inv, nn::preset("llama3-8b", 0), "llama3-8b"), kExitOk);
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("8030261248 parameters"), std::string::npos) << out;
  EXPECT_NE(out.find("\nplan: {"), std::string::npos) << out;
  EXPECT_NE(out.find("verdict: "), std::string::npos) << out;
  argv.push_back("--suggest");
  const cli::Parsed many = cli::parse(spec, int(argv.size()), argv.data());
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(run_dry_run(many.inv, nn::preset("llama3-8b", 0), "llama3-8b"), kExitOk);
  out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("layouts of 8 x h100-80gb"), std::string::npos) << out;
  EXPECT_NE(out.find("best:\n"), std::string::npos) << out;
}
