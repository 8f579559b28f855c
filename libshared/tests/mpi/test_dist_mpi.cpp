// Run as: mpirun -np 4 --oversubscribe mpi_tests. Every rank runs every test; rank 0 prints
// the report, failures on any rank are printed with their rank and fail the run.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "curate/dedup.hpp"
#include "curate/inputs.hpp"
#include "text/minhash.hpp"
#include "dist/context.hpp"
#include "dist/mpi_comm.hpp"
#include "io/doc_shard.hpp"
#include "io/safe_output.hpp"
#include "nn/llama.hpp"
#include "nn/lora.hpp"
#include "cuda/nccl_comm.hpp"
#include "nn/rng.hpp"

#include <cmath>
#include <map>

using namespace bellows;
namespace fs = std::filesystem;

namespace {

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: %s\n", dist::Context::get().rank(), r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }
};

// A directory name every rank agrees on (rank 0 makes it).
std::string shared_tmp_dir(dist::Communicator& c) {
  std::string dir;
  if (c.rank() == 0) {
    std::string tmpl = (fs::temp_directory_path() / "bellows-mpi-XXXXXX").string();
    dir = mkdtemp(tmpl.data());
  }
  return c.broadcast_string(dir, 0);
}

}  // namespace

TEST(MpiContext, PlacementIsConsistent) {
  auto& ctx = dist::Context::get();
  EXPECT_TRUE(ctx.uses_mpi());
  EXPECT_EQ(ctx.size(), 4);
  EXPECT_EQ(ctx.launch().launcher, dist::Launcher::mpirun);
  EXPECT_EQ(ctx.launch().env_rank, ctx.rank());
  const auto& p = ctx.placement();
  // One machine: every rank shares the node.
  EXPECT_EQ(p.local_size, 4);
  EXPECT_EQ(p.local_rank, p.rank);
  EXPECT_EQ(p.node_index, 0);
  EXPECT_EQ(p.num_nodes, 1);
  EXPECT_EQ(p.node, dist::short_hostname());
  std::vector<std::string> lines = ctx.gather_placement_lines();
  if (ctx.rank() == 0) {
    ASSERT_EQ(lines.size(), 4u);
    for (int r = 0; r < 4; ++r) EXPECT_EQ(lines[static_cast<size_t>(r)].rfind("rank=" + std::to_string(r) + " size=4 ", 0), 0u);
  } else {
    EXPECT_TRUE(lines.empty());
  }
}

TEST(MpiCommunicator, Collectives) {
  auto& w = dist::Context::get().world();
  int64_t v[2] = {w.rank(), 1};
  w.allreduce(v, 2, dist::ReduceOp::sum);
  EXPECT_EQ(v[0], 0 + 1 + 2 + 3);
  EXPECT_EQ(v[1], 4);
  EXPECT_EQ(w.allreduce_value(static_cast<double>(w.rank()), dist::ReduceOp::max), 3.0);
  EXPECT_EQ(w.allreduce_value(int64_t{w.rank()}, dist::ReduceOp::min), 0);
  EXPECT_EQ(w.broadcast_string(w.rank() == 2 ? "from two" : "", 2), "from two");
  std::vector<std::string> all = w.allgather(std::string(static_cast<size_t>(w.rank()), 'x'));
  ASSERT_EQ(all.size(), 4u);
  for (int r = 0; r < 4; ++r) EXPECT_EQ(all[static_cast<size_t>(r)], std::string(static_cast<size_t>(r), 'x'));
}

TEST(MpiCommunicator, SplitFormsGroups) {
  auto& w = dynamic_cast<dist::MpiCommunicator&>(dist::Context::get().world());
  auto pairs = w.split(w.rank() / 2, w.rank());  // {0,1} {2,3}
  EXPECT_EQ(pairs->size(), 2);
  EXPECT_EQ(pairs->rank(), w.rank() % 2);
  EXPECT_EQ(pairs->allreduce_value(int64_t{w.rank()}, dist::ReduceOp::sum), w.rank() < 2 ? 1 : 5);
}

// The tensor operations training uses, with uneven chunks (ZeRO shards do not divide evenly).
TEST(MpiCommunicator, TensorCollectives) {
  auto& w = dist::Context::get().world();
  const int r = w.rank();
  std::vector<float> a = {float(r), 1.0f, float(r * r)};
  w.allreduce(a.data(), a.size(), dist::ReduceOp::sum);
  EXPECT_EQ(a, (std::vector<float>{6.0f, 4.0f, 14.0f}));
  std::vector<float> m = {float(r)};
  w.allreduce(m.data(), 1, dist::ReduceOp::max);
  EXPECT_EQ(m[0], 3.0f);

  const std::vector<size_t> counts = {3, 0, 2, 1};  // rank 1 owns nothing
  std::vector<float> buf(6);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = float((r + 1) * 10 + int(i));
  w.reduce_scatter(buf.data(), counts);
  const size_t displ[] = {0, 3, 3, 5};
  for (size_t i = 0; i < counts[size_t(r)]; ++i) {
    const size_t at = displ[r] + i;
    EXPECT_EQ(buf[at], float(100 + 4 * int(at))) << "rank " << r << " element " << at;  // sum over (r+1)*10 + at
  }
  std::vector<float> g(6, -1.0f);
  for (size_t i = 0; i < counts[size_t(r)]; ++i) g[displ[r] + i] = float(r * 100 + int(i));
  w.allgather(g.data(), counts);
  EXPECT_EQ(g, (std::vector<float>{0, 1, 2, 200, 201, 300}));
}

// A ring of sendrecv (each rank hands to the next and takes from the previous), then plain
// send/recv between pairs; -1 peers are no-ops.
TEST(MpiCommunicator, PointToPoint) {
  auto& w = dist::Context::get().world();
  const int r = w.rank(), n = w.size();
  std::vector<float> mine(5, float(r)), got(5, -1.0f);
  w.sendrecv(mine.data(), mine.size(), (r + 1) % n, got.data(), got.size(), (r + n - 1) % n);
  EXPECT_EQ(got, std::vector<float>(5, float((r + n - 1) % n)));
  if (r % 2 == 0) {
    w.send(mine.data(), 5, r + 1);
    w.recv(got.data(), 5, r + 1);
    EXPECT_EQ(got, std::vector<float>(5, float(r + 1)));
  } else {
    w.recv(got.data(), 5, r - 1);
    w.send(mine.data(), 5, r - 1);
    EXPECT_EQ(got, std::vector<float>(5, float(r - 1)));
  }
  w.sendrecv(mine.data(), 5, -1, got.data(), 5, -1);
  w.send(mine.data(), 5, -1);
  EXPECT_GT(w.tensor_seconds(), 0.0);
}

// A tensor-parallel model (column/row-parallel projections, vocabulary-parallel embedding and
// cross-entropy, kv heads split) over groups of 2 and of 4 ranks: the whole model's loss, and
// each rank's gradients are its slice of the whole model's.
TEST(MpiTensorParallel, ShardsGiveTheWholeModelsLossAndGradients) {
  auto& w = dist::Context::get().world();
  for (int t : {2, 4})
    for (bool tied : {false, true}) {
      nn::LlamaConfig c = nn::preset("tiny", 101);  // 101: vocabulary slices of unequal size
      c.hidden_size = 32;
      c.intermediate_size = 48;
      c.num_attention_heads = 4;
      c.num_key_value_heads = t == 4 ? 4 : 2;
      c.num_hidden_layers = 2;
      c.tie_word_embeddings = tied;
      const int B = 2, T = 6, N = B * T;
      std::vector<int32_t> ids, targets, pos, start;
      nn::Rng rng(11, "batch");
      for (int n = 0; n < N; ++n) {
        ids.push_back(int32_t(rng.below(101)));
        targets.push_back(n == 3 ? -1 : int32_t(rng.below(101)));
        pos.push_back(n % T);
        start.push_back(0);
      }
      auto be = nn::make_cpu_backend(1);
      nn::LlamaModel whole(c, *be, B, T);
      whole.init_weights(5);
      whole.set_batch(ids.data(), targets.data(), pos.data(), start.data());
      const double want = whole.forward(1.0f / N);
      whole.backward();

      auto group = w.split(w.rank() / t, w.rank());
      nn::ModelParallel mp;
      mp.shard.tp_rank = group->rank();
      mp.shard.tp_size = t;
      mp.tp = group.get();
      auto be2 = nn::make_cpu_backend(1);
      nn::LlamaModel shard(c, *be2, B, T, nn::Recompute::selective, mp);
      shard.init_weights(5);
      be2->zero(shard.grad_data(), shard.num_params());
      shard.set_batch(ids.data(), targets.data(), pos.data(), start.data());
      const double got = shard.forward(1.0f / N);
      shard.backward();
      EXPECT_NEAR(got / want, 1.0, 1e-6) << "tp " << t << " tied " << tied;

      std::map<std::string, const nn::ParamSpec*> by_name;
      for (const auto& p : whole.params()) by_name[p.name] = &p;
      for (const auto& p : shard.params()) {
        const nn::ParamSpec& q = *by_name.at(p.name);
        double num = 0, den = 0;
        for (size_t i = 0; i < p.numel; ++i) {
          const double a = shard.grad_data()[p.offset + i], b = whole.grad_data()[q.offset + nn::logical_index(p, i)];
          num += (a - b) * (a - b);
          den += b * b;
        }
        EXPECT_LT(std::sqrt(num / std::max(den, 1e-30)), 1e-5) << p.name << " tp " << t << " tied " << tied;
      }
    }
}

// Where NCCL cannot run (no GPU, no libnccl, or built without CUDA: every CI machine), asking for
// the NCCL communicator fails on every rank with the reason, instead of hanging in its bootstrap.
// Its tensor operations run only on a GPU machine (issue 10's test-gpu).
TEST(MpiNccl, UnavailableIsAClearErrorOnEveryRank) {
  const std::string why = cuda::nccl_unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "NCCL and a GPU are usable here: covered by the GPU suite";
  auto& w = dynamic_cast<dist::MpiCommunicator&>(dist::Context::get().world());
  try {
    cuda::make_nccl_communicator(w.split(0, w.rank()));
    ADD_FAILURE() << "no error";
  } catch (const RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()), "NCCL communicator: " + why);
  }
}

// LoRA under tensor parallelism (A whole beside column-parallel bases, B whole beside row-parallel
// ones; dropout masks by logical position): the whole LoRA model's loss and adapter gradients,
// once the partial gradients of the whole factors are summed over the group (the optimizer's job).
TEST(MpiTensorParallel, LoraShardsGiveTheWholeModelsAdapterGradients) {
  auto& w = dist::Context::get().world();
  for (int t : {2, 4}) {
    nn::LlamaConfig c = nn::preset("tiny", 101);
    c.hidden_size = 32;
    c.intermediate_size = 48;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.num_hidden_layers = 2;
    nn::LoraConfig l;
    l.rank = 4;
    l.alpha = 8;
    l.dropout = 0.25;
    l.targets = nn::parse_lora_targets("all");
    const int B = 2, T = 6, N = B * T;
    std::vector<int32_t> ids, targets, pos, start;
    nn::Rng rng(12, "batch");
    for (int n = 0; n < N; ++n) {
      ids.push_back(int32_t(rng.below(101)));
      targets.push_back(int32_t(rng.below(101)));
      pos.push_back(n % T);
      start.push_back(0);
    }
    auto run = [&](nn::LlamaModel& m, nn::Backend& be) {
      m.init_weights(5);
      m.init_lora(6);
      // B = 0 after init: give it values so that every gradient path carries something.
      std::vector<float> p(m.num_trainable());
      be.download(p.data(), m.trainable_data(), p.size());
      for (const auto& s : m.trainable_specs())
        if (s.name.back() == 'B')
          for (size_t i = 0; i < s.numel; ++i) p[s.offset + i] = 0.01f * float((i * 7 + s.offset) % 13) - 0.06f;
      be.upload(m.trainable_data(), p.data(), p.size());
      be.zero(m.trainable_grad(), m.num_trainable());
      m.set_batch(ids.data(), targets.data(), pos.data(), start.data());
      m.set_dropout_seed(99);
      const double loss = m.forward(1.0f / N);
      m.backward();
      return loss;
    };
    auto be = nn::make_cpu_backend(1);
    nn::LlamaModel whole(c, *be, B, T, nn::Recompute::none, {}, &l);
    const double want = run(whole, *be);
    auto group = w.split(w.rank() / t, w.rank());
    nn::ModelParallel mp;
    mp.shard.tp_rank = group->rank();
    mp.shard.tp_size = t;
    mp.tp = group.get();
    auto be2 = nn::make_cpu_backend(1);
    nn::LlamaModel shard(c, *be2, B, T, nn::Recompute::full, mp, &l);
    // B's values above depend on the offset: set them from the whole model's by name instead.
    const double got = [&] {
      shard.init_weights(5);
      std::map<std::string, const nn::ParamSpec*> by_name;
      for (const auto& p : whole.trainable_specs()) by_name[p.name] = &p;
      std::vector<float> p(shard.num_trainable());
      for (const auto& s : shard.trainable_specs()) {
        const nn::ParamSpec& q = *by_name.at(s.name);
        for (size_t i = 0; i < s.numel; ++i) p[s.offset + i] = whole.trainable_data()[q.offset + nn::logical_index(s, i)];
      }
      be2->upload(shard.trainable_data(), p.data(), p.size());
      be2->zero(shard.trainable_grad(), shard.num_trainable());
      shard.set_batch(ids.data(), targets.data(), pos.data(), start.data());
      shard.set_dropout_seed(99);
      const double loss = shard.forward(1.0f / N);
      shard.backward();
      return loss;
    }();
    EXPECT_NEAR(got / want, 1.0, 1e-6) << "tp " << t;
    std::map<std::string, const nn::ParamSpec*> by_name;
    for (const auto& p : whole.trainable_specs()) by_name[p.name] = &p;
    for (const auto& p : shard.trainable_specs()) {
      if (p.tp_grad_partial) group->allreduce(shard.trainable_grad() + p.offset, p.numel, dist::ReduceOp::sum);
      const nn::ParamSpec& q = *by_name.at(p.name);
      double num = 0, den = 0;
      for (size_t i = 0; i < p.numel; ++i) {
        const double a = shard.trainable_grad()[p.offset + i], b = whole.trainable_grad()[q.offset + nn::logical_index(p, i)];
        num += (a - b) * (a - b);
        den += b * b;
      }
      EXPECT_GT(den, 0.0) << p.name;
      EXPECT_LT(std::sqrt(num / std::max(den, 1e-30)), 1e-5) << p.name << " tp " << t;
    }
  }
}

// Every rank writes its own shard into one output directory, which appears only when all are
// done; rank 0 then reads every shard back.
TEST(MpiSafeOutput, RanksWriteTheirShardsIntoOneOutput) {
  auto& w = dist::Context::get().world();
  std::string dir = shared_tmp_dir(w);
  std::string out_dir = dir + "/docs";
  {
    io::SafeOutput out(out_dir, io::SafeOutput::Kind::directory, false, &w);
    io::DocShardWriter shard(out.temp_path() + "/shard-" + std::to_string(w.rank()) + ".h5", io::Provenance{"mpi-test", {}, {}});
    for (int i = 0; i <= w.rank(); ++i) shard.add({"r" + std::to_string(w.rank()) + "-" + std::to_string(i), "text", "", "en", 1.0f});
    shard.close();
    EXPECT_FALSE(fs::exists(out_dir));
    out.commit();
  }
  w.barrier();
  EXPECT_TRUE(fs::is_directory(out_dir));
  if (w.rank() == 0) {
    for (int r = 0; r < 4; ++r) {
      io::DocShardReader rd(out_dir + "/shard-" + std::to_string(r) + ".h5");
      EXPECT_EQ(rd.size(), static_cast<uint64_t>(r + 1));
    }
  }
  // Every rank refuses the existing output the same way (no rank runs ahead).
  EXPECT_THROW(io::SafeOutput(out_dir, io::SafeOutput::Kind::directory, false, &w), UsageError);
  w.barrier();
  if (w.rank() == 0) fs::remove_all(dir);
}

// Distributed dedup decides exactly what one process decides: same removals, same kept
// representatives, same cluster statistics.
TEST(MpiDedup, FourRanksEqualOneRank) {
  auto& w = dist::Context::get().world();
  // 60 documents in 12 "files"; families of near-duplicates and exact copies across files.
  std::vector<std::string> texts;
  for (int i = 0; i < 60; ++i) {
    int family = i % 7;
    std::string t;
    for (int k = 0; k < 120; ++k) t += "f" + std::to_string(family) + "w" + std::to_string(k) + " ";
    if (i % 3 == 1) t += "tail" + std::to_string(i);  // near duplicate of its family
    if (family == 6) t = "unique document number " + std::to_string(i) + " with its own words";
    texts.push_back(t);
  }
  text::ShingleSpec spec{text::ShingleSpec::Kind::word, 3};
  text::LshParams lsh{16, 8};
  text::Permutations perms = text::make_permutations(128, 1);
  auto file_of = [](size_t i) { return i / 5; };
  std::vector<int> owner(12);
  for (int f = 0; f < 12; ++f) owner[static_cast<size_t>(f)] = f / 3;  // 4 ranks, contiguous files
  auto build = [&](bool only_mine) {
    curate::DedupTable t;
    t.bands = lsh.bands;
    for (size_t i = 0; i < texts.size(); ++i) {
      uint64_t key = curate::make_key(file_of(i), i % 5);
      if (only_mine && owner[curate::key_file(key)] != w.rank()) continue;
      std::vector<uint32_t> h, sig;
      for (const auto& sh : text::shingles(texts[i], spec)) h.push_back(text::shingle_hash32(sh));
      text::minhash_signature(h, perms, sig);
      std::vector<uint64_t> bands;
      text::band_keys(sig, lsh, bands);
      uint64_t x = std::hash<std::string>{}(texts[i]);
      t.add(key, {x, x ^ 0x9e3779b97f4a7c15ull}, "doc" + std::to_string(i), &bands);
    }
    return t;
  };
  auto set_of = [&](uint64_t key) {
    size_t i = curate::key_file(key) * 5 + curate::key_record(key);
    std::vector<uint64_t> s;
    for (const auto& sh : text::shingles(texts[i], spec)) s.push_back(text::shingle_hash64(sh));
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    return s;
  };
  curate::DedupConfig cfg;
  cfg.verify = true;
  cfg.threshold = 0.7;
  dist::SelfCommunicator self;
  curate::DedupResult single = curate::deduplicate(build(false), cfg, self, [](uint64_t) { return 0; }, set_of);
  curate::DedupResult dist_r = curate::deduplicate(build(true), cfg, w, [&](uint64_t k) { return owner[curate::key_file(k)]; }, set_of);
  std::string mine;
  for (const auto& r : dist_r.removals) mine += std::to_string(r.key) + ">" + std::to_string(r.kept_key) + ":" + r.kept_id + (r.exact ? "E" : "F") + ";";
  std::vector<std::string> all = w.allgather(mine);
  std::string joined;
  for (const auto& a : all) joined += a;
  std::string expected;
  for (const auto& r : single.removals) expected += std::to_string(r.key) + ">" + std::to_string(r.kept_key) + ":" + r.kept_id + (r.exact ? "E" : "F") + ";";
  EXPECT_EQ(joined, expected);
  EXPECT_GT(single.removals.size(), 20u);
  EXPECT_EQ(dist_r.clusters, single.clusters);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto& ctx = dist::Context::init(&argc, &argv);
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (ctx.rank() != 0) delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new RankFailurePrinter);
  int rc = RUN_ALL_TESTS();
  int64_t worst = ctx.world().allreduce_value(int64_t{rc}, dist::ReduceOp::max);
  if (ctx.rank() == 0 && worst != 0 && rc == 0) std::fprintf(stderr, "mpi_tests: a test failed on another rank\n");
  ctx.finalize();
  return static_cast<int>(worst);
}
