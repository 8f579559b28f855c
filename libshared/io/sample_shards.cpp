#include "io/sample_shards.hpp"

#include <algorithm>
#include <functional>
#include <map>

#include "core/error.hpp"
#include "io/doc_shard.hpp"
#include "io/shard.hpp"

namespace bellows::io {
namespace {

using nlohmann::json;

// splitmix64: a tiny deterministic generator, so samples are identical on every machine.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
  float unit() { return static_cast<float>(next() >> 40) / static_cast<float>(1ull << 24); }
};

Provenance sample_provenance() {
  Provenance p;
  p.tool = "sample-shards";
  p.config = {{"purpose", "test sample"}};
  return p;
}

json dataset_entry(const std::string& dtype, std::vector<uint64_t> shape, json values) {
  return {{"dtype", dtype}, {"shape", shape}, {"values", std::move(values)}};
}

// Ragged column of values, recorded in `out` as <col>_data / <col>_offsets.
template <class T>
void ragged(ShardWriter& w, json& out, const std::string& col, const std::string& dtype,
            const std::vector<std::vector<T>>& items) {
  RaggedColumn<T> c(w, col);
  std::vector<T> flat;
  std::vector<uint64_t> offsets{0};
  for (const auto& it : items) {
    c.add(it.data(), it.size());
    flat.insert(flat.end(), it.begin(), it.end());
    offsets.push_back(flat.size());
  }
  out["datasets"][col + "_data"] = dataset_entry(dtype, {flat.size()}, flat);
  out["datasets"][col + "_offsets"] = dataset_entry("uint64", {offsets.size()}, offsets);
}

json common_tokens_attrs(ShardWriter& w, uint64_t vocab) {
  w.set_attr("vocab_size", vocab);
  w.set_attr("tokenizer_sha256", std::string(64, 'a'));
  w.set_attr("eos_id", int64_t{0});
  return {{"vocab_size", vocab}, {"tokenizer_sha256", std::string(64, 'a')}, {"eos_id", 0}};
}

json write_docs(const std::string& path, Rng& rng) {
  static const char* kWords[] = {"the", "model", "reads", "shards", "über", "naïve", "数据", "🙂", "cluster", "token"};
  DocShardWriter w(path, sample_provenance());
  json out = {{"kind", "docs"}, {"attrs", json::object()}, {"documents", json::array()}};
  const uint64_t n = 3000;  // several 1 MiB chunks of text
  for (uint64_t i = 0; i < n; ++i) {
    Document d;
    d.id = "doc-" + std::to_string(i);
    uint64_t words = 1 + rng.below(160);
    for (uint64_t k = 0; k < words; ++k) d.text += std::string(k ? " " : "") + kWords[rng.below(10)];
    d.source = "sample.jsonl:" + std::to_string(i + 1);
    d.lang = rng.below(2) ? "en" : "de";
    d.lang_score = rng.unit();
    w.add(d);
    out["documents"].push_back({{"id", d.id}, {"text", d.text}, {"source", d.source}, {"lang", d.lang}, {"lang_score", d.lang_score}});
  }
  w.close();
  out["attrs"]["num_docs"] = n;
  return out;
}

json write_tokens_pretrain(const std::string& path, Rng& rng) {
  ShardWriter w(path, "tokens_pretrain", sample_provenance());
  const uint64_t n = 300, seq = 127, vocab = 50000;
  json out = {{"kind", "tokens_pretrain"}, {"attrs", common_tokens_attrs(w, vocab)}};
  w.declare("tokens", {seq + 1});
  std::vector<uint32_t> tokens(n * (seq + 1));
  for (auto& t : tokens) t = static_cast<uint32_t>(rng.below(vocab));
  w.append("tokens", tokens);
  out["datasets"]["tokens"] = dataset_entry("uint32", {n, seq + 1}, tokens);
  std::vector<std::vector<uint32_t>> starts(n);
  for (auto& s : starts) {
    s.push_back(0);
    for (uint64_t k = 0, m = rng.below(4); k < m; ++k) s.push_back(static_cast<uint32_t>(1 + rng.below(seq)));
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
  }
  ragged(w, out, "doc_start", "uint32", starts);
  w.set_attr("num_samples", n);
  w.set_attr("seq_len", seq);
  w.set_attr("bos_id", int64_t{-1});
  out["attrs"].update({{"num_samples", n}, {"seq_len", seq}, {"bos_id", -1}});
  w.close();
  return out;
}

json write_tokens_sft(const std::string& path, Rng& rng) {
  ShardWriter w(path, "tokens_sft", sample_provenance());
  const uint64_t n = 40, seq = 63, vocab = 1000;
  json out = {{"kind", "tokens_sft"}, {"attrs", common_tokens_attrs(w, vocab)}};
  w.declare("tokens", {seq + 1});
  w.declare("loss_mask", {seq + 1});
  std::vector<uint32_t> tokens(n * (seq + 1));
  std::vector<uint8_t> mask(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<uint32_t>(rng.below(vocab));
    mask[i] = static_cast<uint8_t>(rng.below(2));
  }
  w.append("tokens", tokens);
  w.append("loss_mask", mask);
  out["datasets"]["tokens"] = dataset_entry("uint32", {n, seq + 1}, tokens);
  out["datasets"]["loss_mask"] = dataset_entry("uint8", {n, seq + 1}, mask);
  std::vector<std::vector<uint32_t>> starts(n, std::vector<uint32_t>{0, 17});
  ragged(w, out, "segment_start", "uint32", starts);
  w.set_attr("num_samples", n);
  w.set_attr("seq_len", seq);
  w.set_attr("pad_id", int64_t{1});
  out["attrs"].update({{"num_samples", n}, {"seq_len", seq}, {"pad_id", 1}});
  w.close();
  return out;
}

json write_tokens_preference(const std::string& path, Rng& rng) {
  ShardWriter w(path, "tokens_preference", sample_provenance());
  const uint64_t n = 25, vocab = 1000;
  json out = {{"kind", "tokens_preference"}, {"attrs", common_tokens_attrs(w, vocab)}};
  for (const char* col : {"prompt", "chosen", "rejected"}) {
    std::vector<std::vector<uint32_t>> items(n);
    for (auto& it : items) {
      it.resize(1 + rng.below(30));
      for (auto& t : it) t = static_cast<uint32_t>(rng.below(vocab));
    }
    ragged(w, out, col, "uint32", items);
  }
  w.set_attr("num_pairs", n);
  out["attrs"]["num_pairs"] = n;
  w.close();
  return out;
}

std::vector<float> random_tensor(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.unit() * 2.0f - 1.0f;
  return v;
}

json write_checkpoint(const std::string& path, Rng& rng) {
  ShardWriter w(path, "checkpoint", sample_provenance());
  json out = {{"kind", "checkpoint"}, {"attrs", json::object()}};
  const std::vector<std::pair<std::string, std::vector<uint64_t>>> params = {
      {"model.embed_tokens.weight", {64, 16}},
      {"model.layers.0.self_attn.q_proj.weight", {16, 16}},
      {"model.norm.weight", {16}}};
  for (const char* prefix : {"params/", "optim/exp_avg/", "optim/exp_avg_sq/"}) {
    for (const auto& [name, shape] : params) {
      size_t n = 1;
      for (auto d : shape) n *= d;
      std::vector<float> v = random_tensor(rng, n);
      w.write_tensor(prefix + name, shape, v.data());
      out["datasets"][prefix + name] = dataset_entry("float32", shape, v);
    }
  }
  json config = {{"hidden_size", 16}, {"num_hidden_layers", 1}, {"vocab_size", 64}};
  w.set_attr("step", uint64_t{7});
  w.set_attr("model_config", config.dump());
  w.set_attr("tokenizer_sha256", std::string(64, 'b'));
  out["attrs"] = {{"step", 7}, {"model_config", config.dump()}, {"tokenizer_sha256", std::string(64, 'b')}};
  w.close();
  return out;
}

json write_lora_adapter(const std::string& path, Rng& rng) {
  ShardWriter w(path, "lora_adapter", sample_provenance());
  json out = {{"kind", "lora_adapter"}, {"attrs", json::object()}};
  const uint64_t r = 4, in = 16, outf = 16;
  for (const char* layer : {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"}) {
    std::vector<float> a = random_tensor(rng, r * in), b = random_tensor(rng, outf * r);
    w.write_tensor(std::string("lora/") + layer + "/A", {r, in}, a.data());
    w.write_tensor(std::string("lora/") + layer + "/B", {outf, r}, b.data());
    out["datasets"][std::string("lora/") + layer + "/A"] = dataset_entry("float32", {r, in}, a);
    out["datasets"][std::string("lora/") + layer + "/B"] = dataset_entry("float32", {outf, r}, b);
  }
  const json config = {{"hidden_size", 16}, {"num_hidden_layers", 1}, {"vocab_size", 64}};
  w.set_attr("rank", r);
  w.set_attr("alpha", 8.0);
  w.set_attr("scaling", 2.0);
  w.set_attr("rslora", uint64_t{0});
  w.set_attr("dropout", 0.05);
  w.set_attr("targets", json({"q", "v"}).dump());
  w.set_attr("base_fingerprint", std::string(64, 'c'));
  w.set_attr("model_config", config.dump());
  w.set_attr("tokenizer_sha256", std::string(64, 'b'));
  w.set_attr("step", uint64_t{3});
  out["attrs"] = {{"rank", r},
                  {"alpha", 8.0},
                  {"scaling", 2.0},
                  {"rslora", 0},
                  {"dropout", 0.05},
                  {"targets", json({"q", "v"}).dump()},
                  {"base_fingerprint", std::string(64, 'c')},
                  {"model_config", config.dump()},
                  {"tokenizer_sha256", std::string(64, 'b')},
                  {"step", 3}};
  w.close();
  return out;
}

json write_checkpoint_part(const std::string& path, Rng& rng) {
  ShardWriter w(path, "checkpoint_part", sample_provenance());
  json out = {{"kind", "checkpoint_part"}, {"attrs", json::object()}};
  // Blocks of two tensors as a rank of a parallel run writes them: a slice of rows, and a
  // partial row plus whole rows of a flat ZeRO range.
  const std::vector<std::pair<std::string, std::vector<uint64_t>>> blocks = {
      {"params/model.embed_tokens.weight@0", {32, 16}},
      {"optim/exp_avg/model.layers.0.self_attn.q_proj.weight@0", {1, 9}},
      {"optim/exp_avg/model.layers.0.self_attn.q_proj.weight@1", {4, 16}}};
  for (const auto& [name, shape] : blocks) {
    std::vector<float> v = random_tensor(rng, shape[0] * shape[1]);
    w.write_tensor(name, shape, v.data());
    out["datasets"][name] = dataset_entry("float32", shape, v);
  }
  w.set_attr("step", uint64_t{7});
  w.set_attr("rank", uint64_t{1});
  out["attrs"] = {{"step", 7}, {"rank", 1}};
  w.close();
  return out;
}

json write_reference_logps(const std::string& path, Rng& rng) {
  ShardWriter w(path, "reference_logps", sample_provenance());
  json out = {{"kind", "reference_logps"}, {"attrs", json::object()}};
  const uint64_t n = 5;
  std::vector<double> c, r;
  std::vector<uint32_t> nc, nr;
  for (uint64_t i = 0; i < n; ++i) {
    c.push_back(-double(rng.below(4000)) / 100.0);
    r.push_back(-double(rng.below(4000)) / 100.0);
    nc.push_back(uint32_t(1 + rng.below(30)));
    nr.push_back(uint32_t(1 + rng.below(30)));
  }
  for (const char* d : {"chosen_logp", "rejected_logp", "chosen_targets", "rejected_targets"}) w.declare(d);
  w.append("chosen_logp", c);
  w.append("rejected_logp", r);
  w.append("chosen_targets", nc);
  w.append("rejected_targets", nr);
  out["datasets"]["chosen_logp"] = dataset_entry("float64", {n}, c);
  out["datasets"]["rejected_logp"] = dataset_entry("float64", {n}, r);
  out["datasets"]["chosen_targets"] = dataset_entry("uint32", {n}, nc);
  out["datasets"]["rejected_targets"] = dataset_entry("uint32", {n}, nr);
  const json attrs = {{"num_pairs", n}, {"seq_len", 64}, {"tokenizer_sha256", std::string(64, 'a')},
                      {"data_sha256", std::string(64, 'd')}, {"reference_fingerprint", std::string(64, 'e')}};
  w.set_attr("num_pairs", n);
  w.set_attr("seq_len", uint64_t{64});
  for (const char* k : {"tokenizer_sha256", "data_sha256", "reference_fingerprint"})
    w.set_attr(k, attrs[k].get<std::string>());
  out["attrs"] = attrs;
  w.close();
  return out;
}

const std::map<std::string, std::function<json(const std::string&, Rng&)>>& writers() {
  static const std::map<std::string, std::function<json(const std::string&, Rng&)>> m = {
      {"docs", write_docs},
      {"tokens_pretrain", write_tokens_pretrain},
      {"tokens_sft", write_tokens_sft},
      {"tokens_preference", write_tokens_preference},
      {"checkpoint", write_checkpoint},
      {"checkpoint_part", write_checkpoint_part},
      {"lora_adapter", write_lora_adapter},
      {"reference_logps", write_reference_logps},
  };
  return m;
}

}  // namespace

std::vector<std::string> sample_kinds() {
  std::vector<std::string> out;
  for (const auto& [k, f] : writers()) out.push_back(k);
  return out;
}

json write_sample_shard(const std::string& kind, const std::string& path, uint64_t seed) {
  auto it = writers().find(kind);
  if (it == writers().end()) throw InternalError("no sample writer for file kind '" + kind + "'");
  Rng rng{seed};
  return it->second(path, rng);
}

}  // namespace bellows::io
