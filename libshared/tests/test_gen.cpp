// Generation: the cached-attention op (fast == reference == the training attention's rows), the
// KV-cache model against nn::LlamaModel's forward on both backends, greedy and top-p sampling,
// --ids parsing, the logits JSON and the run directory of a checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.hpp"
#include "train/run_tokenizer.hpp"
#include "gen/generate.hpp"
#include "gen/kv_model.hpp"
#include "gen/lm_generate.hpp"
#include "gen/logits_json.hpp"
#include "gen/sampler.hpp"
#include "io/safe_output.hpp"
#include "nn/backend.hpp"
#include "nn/config.hpp"
#include "nn/llama.hpp"
#include "nn/rng.hpp"
#include "test_util.hpp"

using namespace bellows;
using namespace bellows::gen;

namespace {

std::vector<float> randn(size_t n, uint64_t seed) {
  nn::Rng r(seed, "gen-test");
  std::vector<float> v(n);
  for (auto& x : v) x = float(r.normal());
  return v;
}

// ||a - b|| / ||b||
double rel(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

std::vector<float> run_cached(nn::Backend& be, const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, int M, int t0, int H, int KV, int D) {
  float* dq = be.alloc(q.size());
  float* dk = be.alloc(k.size());
  float* dv = be.alloc(v.size());
  float* out = be.alloc(q.size());
  be.upload(dq, q.data(), q.size());
  be.upload(dk, k.data(), k.size());
  be.upload(dv, v.data(), v.size());
  be.attention_cached_fwd(out, dq, dk, dv, M, t0, H, KV, D);
  std::vector<float> h(q.size());
  be.download(h.data(), out, h.size());
  return h;
}

// A tiny random model: its params, and the logits LlamaModel's forward(0) gives for `ids` as one
// row (B = 1) holding one document from position 0.
struct Reference {
  nn::LlamaConfig cfg;
  std::vector<float> params;
  std::vector<float> logits;  // [T, V]
};

Reference reference(nn::Backend& be, const std::vector<int32_t>& ids) {
  Reference r;
  r.cfg = nn::preset("tiny", 97);
  const int T = int(ids.size());
  nn::LlamaModel m(r.cfg, be, 1, T);
  m.init_weights(3);
  r.params.resize(m.num_params());
  be.download(r.params.data(), m.param_data(), r.params.size());
  std::vector<int32_t> targets(size_t(T), -1), pos(size_t(T), 0), doc(size_t(T), 0);
  for (int t = 0; t < T; ++t) pos[size_t(t)] = t;
  m.set_batch(ids.data(), targets.data(), pos.data(), doc.data());
  m.forward(0.0f);
  r.logits.resize(size_t(T) * size_t(r.cfg.vocab_size));
  be.download(r.logits.data(), m.logits(), r.logits.size());
  return r;
}

std::vector<int32_t> random_ids(int T, int V, uint64_t seed) {
  nn::Rng r(seed, "ids");
  std::vector<int32_t> ids;
  for (int t = 0; t < T; ++t) ids.push_back(int32_t(r.below(uint64_t(V))));
  return ids;
}

}  // namespace

TEST(GenOps, AttentionCachedFastEqualsReferenceAndTrainingAttention) {
  const int H = 4, KV = 2, D = 8, t0 = 6, M = 3, T = t0 + M;
  auto q = randn(size_t(M) * H * D, 1), k = randn(size_t(T) * KV * D, 2), v = randn(size_t(T) * KV * D, 3);
  auto ref_be = nn::make_ref_backend();
  auto cpu_be = nn::make_cpu_backend(2);
  const auto r = run_cached(*ref_be, q, k, v, M, t0, H, KV, D);
  const auto f = run_cached(*cpu_be, q, k, v, M, t0, H, KV, D);
  EXPECT_LT(rel(f.data(), r.data(), r.size()), 1e-5);
  // The last M rows of the training attention over the whole sequence (one document), whose
  // queries are q and whose earlier queries do not matter.
  std::vector<float> qfull = randn(size_t(T) * H * D, 4);
  std::copy(q.begin(), q.end(), qfull.begin() + std::ptrdiff_t(size_t(t0) * H * D));
  std::vector<int32_t> doc(size_t(T), 0);
  nn::Backend& be = *ref_be;
  float* dq = be.alloc(qfull.size());
  float* dk = be.alloc(k.size());
  float* dv = be.alloc(v.size());
  float* out = be.alloc(qfull.size());
  float* att = be.alloc(size_t(H) * T * T);
  int32_t* ds = be.alloc_int(doc.size());
  be.upload(dq, qfull.data(), qfull.size());
  be.upload(dk, k.data(), k.size());
  be.upload(dv, v.data(), v.size());
  be.upload_int(ds, doc.data(), doc.size());
  be.attention_fwd(out, att, dq, dk, dv, ds, 1, T, H, KV, D);
  std::vector<float> full(qfull.size());
  be.download(full.data(), out, full.size());
  EXPECT_LT(rel(r.data(), full.data() + size_t(t0) * H * D, r.size()), 1e-6);
}

TEST(GenKvCache, LogitsEqualLlamaModelForwardOnBothBackends) {
  for (const char* name : {"ref", "cpu"}) {
    auto be = nn::make_backend(name, 2);
    const int T = 13, V = 97;
    const auto ids = random_ids(T, V, 9);
    const Reference ref = reference(*be, ids);
    // A chunk of 4 rows: the prefill of 6 runs as two passes (4 + 2).
    KvCacheModel kv(ref.cfg, *be, T, 4);
    kv.load_params(ref.params);
    std::vector<float> got, part;
    const int prefill = 6;
    kv.forward(ids.data(), prefill, /*all_logits=*/true, part);
    got = part;
    for (int t = prefill; t < T; ++t) {
      kv.forward(&ids[size_t(t)], 1, true, part);
      got.insert(got.end(), part.begin(), part.end());
    }
    EXPECT_EQ(kv.position(), T);
    ASSERT_EQ(got.size(), ref.logits.size());
    for (int t = 0; t < T; ++t) {
      const size_t o = size_t(t) * V;
      EXPECT_LT(rel(got.data() + o, ref.logits.data() + o, V), 1e-5) << name << " position " << t;
    }
    // The last-row-only path gives that row's logits.
    kv.reset();
    kv.forward(ids.data(), T, /*all_logits=*/false, part);
    ASSERT_EQ(part.size(), size_t(V));
    EXPECT_LT(rel(part.data(), ref.logits.data() + size_t(T - 1) * V, V), 1e-5) << name;
    // The cache refuses what it cannot hold, and ids outside the vocabulary.
    EXPECT_THROW(kv.forward(ids.data(), 1, false, part), RuntimeError);
    kv.reset();
    const int32_t bad = V;
    EXPECT_THROW(kv.forward(&bad, 1, false, part), RuntimeError);
  }
}

TEST(GenSampling, GreedyIsDeterministicAndFollowsTheArgmax) {
  auto be = nn::make_cpu_backend(2);
  const auto prompt = random_ids(5, 97, 11);
  const Reference ref = reference(*be, prompt);
  KvCacheModel kv(ref.cfg, *be, 40);
  kv.load_params(ref.params);
  Sampler a({0.0, 1.0}, 1), b({0.0, 1.0}, 2);  // the seed does not matter when greedy
  const Generated g1 = generate(kv, prompt, 20, std::nullopt, a);
  const Generated g2 = generate(kv, prompt, 20, std::nullopt, b);
  EXPECT_EQ(g1.ids.size(), 20u);
  EXPECT_EQ(g1.stop, StopReason::max_new_tokens);
  EXPECT_EQ(g1.ids, g2.ids);
  EXPECT_EQ(g1.ids[0], argmax(ref.logits.data() + size_t(4) * 97, 97));
  // Each greedy token is the argmax of the full forward over prompt + what came before.
  std::vector<int32_t> seq = prompt;
  for (size_t i = 0; i + 1 < 4; ++i) seq.push_back(int32_t(g1.ids[i]));
  const Reference longer = reference(*be, seq);
  EXPECT_EQ(g1.ids[3], argmax(longer.logits.data() + (seq.size() - 1) * 97, 97));
  // EOS stops generation and is not part of the output.
  Sampler c({0.0, 1.0}, 1);
  const uint32_t eos = g1.ids[2];
  const Generated g3 = generate(kv, prompt, 20, eos, c);
  EXPECT_EQ(g3.stop, StopReason::eos);
  EXPECT_EQ(g3.ids, std::vector<uint32_t>(g1.ids.begin(), std::find(g1.ids.begin(), g1.ids.end(), eos)));
  // A full cache ends generation.
  KvCacheModel small(ref.cfg, *be, 7);
  small.load_params(ref.params);
  Sampler d({0.0, 1.0}, 1);
  const Generated g4 = generate(small, prompt, 20, std::nullopt, d);
  EXPECT_EQ(g4.stop, StopReason::context_full);
  EXPECT_EQ(g4.ids.size(), 3u);  // positions 5 and 6 fed back, the third drawn from position 6
}

TEST(GenSampling, TopPIsReproducibleAndDrawsOnlyFromTheNucleus) {
  const int V = 50;
  std::vector<float> logits = randn(size_t(V), 21);
  for (auto& x : logits) x *= 2.0f;
  const double T = 0.7, top_p = 0.8;
  const auto nuc = nucleus(logits.data(), V, T, top_p);
  ASSERT_FALSE(nuc.empty());
  double mass = 0;
  for (size_t i = 0; i < nuc.size(); ++i) {
    if (i) {
      EXPECT_GE(nuc[i - 1].second, nuc[i].second);
    }
    mass += nuc[i].second;
  }
  EXPECT_GE(mass, top_p);
  EXPECT_LT(mass - nuc.back().second, top_p);  // the shortest such prefix
  EXPECT_LT(nuc.size(), size_t(V));
  std::set<uint32_t> allowed;
  for (const auto& [id, p] : nuc) allowed.insert(id);

  auto draws = [&](uint64_t seed) {
    Sampler s({T, top_p}, seed);
    std::vector<uint32_t> out;
    for (int i = 0; i < 2000; ++i) out.push_back(s.next(logits.data(), V));
    return out;
  };
  const auto a = draws(7), b = draws(7), c = draws(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::set<uint32_t> seen(a.begin(), a.end());
  for (uint32_t id : seen) EXPECT_TRUE(allowed.count(id)) << "token " << id << " is outside the nucleus";
  EXPECT_EQ(seen, allowed);  // 2000 draws reach every member of a small nucleus
  // top_p 1 and a tiny temperature: the argmax almost surely.
  Sampler cold({1e-3, 1.0}, 3);
  EXPECT_EQ(cold.next(logits.data(), V), argmax(logits.data(), V));

  // Whole generations: the same seed gives the same tokens.
  auto be = nn::make_cpu_backend(2);
  const auto prompt = random_ids(4, 97, 12);
  const Reference ref = reference(*be, prompt);
  KvCacheModel kv(ref.cfg, *be, 40);
  kv.load_params(ref.params);
  Sampler s1({1.0, 0.9}, 5), s2({1.0, 0.9}, 5);
  EXPECT_EQ(generate(kv, prompt, 30, std::nullopt, s1).ids, generate(kv, prompt, 30, std::nullopt, s2).ids);
}

TEST(GenCli, ParseIds) {
  EXPECT_EQ(parse_ids("1, 2,3"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_ids("0"), (std::vector<int32_t>{0}));
  for (const char* bad : {"", "1,,2", "-1", "x", "1.5", "99999999999"}) EXPECT_THROW(parse_ids(bad), UsageError) << bad;
}

TEST(GenLogitsJson, RoundTripsExactlyAndRefusesToReplace) {
  bellows::testing::TempDir d;
  const std::string path = d / "logits.json";
  const std::vector<int32_t> ids = {5, 0, 96};
  std::vector<float> logits = randn(3 * 4, 31);
  logits[1] = 1e-30f;
  logits[2] = -123456.789f;
  logits[7] = NAN;
  auto write = [&](bool overwrite, const std::vector<int32_t>& i, const std::vector<float>& l) {
    io::SafeOutput out(path, io::SafeOutput::Kind::file, overwrite);
    write_logits_json(out, i, l, 4);
  };
  write(false, ids, logits);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  const auto j = nlohmann::json::parse(ss.str());
  EXPECT_EQ(j["ids"].get<std::vector<int32_t>>(), ids);
  ASSERT_EQ(j["logits"].size(), 3u);
  for (size_t p = 0; p < 3; ++p) {
    ASSERT_EQ(j["logits"][p].size(), 4u);
    for (size_t v = 0; v < 4; ++v) {
      const float x = logits[p * 4 + v];
      if (std::isnan(x)) EXPECT_TRUE(j["logits"][p][v].is_null());
      else EXPECT_EQ(j["logits"][p][v].get<float>(), x);
    }
  }
  EXPECT_THROW(write(false, ids, logits), UsageError);
  write(true, {1}, {1.5f, 2, 3, 4});
  std::ifstream g(path);
  EXPECT_EQ(nlohmann::json::parse(g)["ids"], nlohmann::json::array({1}));
  // Nothing but the file itself is left in the directory.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path())) entries += e.exists();
  EXPECT_EQ(entries, 1u);
}

TEST(GenTokenizer, RunDirectoryOfACheckpoint) {
  bellows::testing::TempDir d;
  const std::string step = d / "run/checkpoints/step-00000003";
  std::filesystem::create_directories(step);
  std::ofstream(step + "/model.h5") << "x";
  EXPECT_EQ(train::run_dir_of_checkpoint(step), d / "run");
  EXPECT_EQ(train::run_dir_of_checkpoint(step + "/"), d / "run");
  EXPECT_EQ(train::run_dir_of_checkpoint(step + "/model.h5"), d / "run");
  // No tokenizer copy there and none given: none, and no error.
  EXPECT_FALSE(train::checkpoint_tokenizer(step, "", "abc").has_value());
  EXPECT_THROW(train::checkpoint_tokenizer(step, d / "missing.json", "abc"), UsageError);
}
