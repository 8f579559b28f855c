// ckpt-convert's model mapping: tensor names, llama.cpp's q/k row order, Llama 3 rope_freqs,
// GGUF metadata <-> config, the tokenizer's GGUF form, byte sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.hpp"
#include "formats/convert.hpp"
#include "formats/llama_gguf.hpp"
#include "formats/tokenizer_files.hpp"
#include "nn/llama.hpp"
#include "test_util.hpp"
#include "tok/regex_split.hpp"

namespace bf = bellows::formats;
using bellows::UsageError;

TEST(ConvertNames, EveryParameterOfAModelMapsToGgufAndBack) {
  bellows::nn::LlamaConfig c = bellows::nn::preset("tiny", 300);
  for (bool tie : {false, true}) {
    c.tie_word_embeddings = tie;
    for (const auto& p : bellows::nn::param_specs(c)) {
      const std::string g = bf::gguf_name_of_hf(p.name);
      ASSERT_FALSE(g.empty()) << p.name;
      EXPECT_EQ(bf::hf_name_of_gguf(g), p.name);
    }
  }
  EXPECT_EQ(bf::gguf_name_of_hf("model.layers.12.mlp.down_proj.weight"), "blk.12.ffn_down.weight");
  EXPECT_EQ(bf::gguf_name_of_hf("model.layers.0.self_attn.q_proj.bias"), "");
  EXPECT_EQ(bf::gguf_name_of_hf("model.layers.01.mlp.up_proj.weight"), "");  // not a layer number we write
  EXPECT_EQ(bf::hf_name_of_gguf("blk.x.attn_q.weight"), "");
  EXPECT_EQ(bf::hf_name_of_gguf("rope_freqs.weight"), "");
}

TEST(ConvertPermute, RowsFollowLlamaCppRopeOrderAndComeBack) {
  // 2 heads of d = 4 rows, 3 columns: HF row h*d/2 + j becomes row 2j + h within its head.
  const int64_t heads = 2, rows = 8, cols = 3;
  std::vector<float> hf(rows * cols);
  std::iota(hf.begin(), hf.end(), 0.f);
  std::vector<float> g(hf.size()), back(hf.size());
  bf::permute_rows_to_gguf(hf.data(), g.data(), heads, rows, cols);
  const int expected_src_row[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < cols; ++k) EXPECT_EQ(g[r * cols + k], hf[expected_src_row[r] * cols + k]) << r;
  bf::permute_rows_from_gguf(g.data(), back.data(), heads, rows, cols);
  EXPECT_EQ(back, hf);
  bellows::nn::LlamaConfig c = bellows::nn::preset("tiny", 300);
  EXPECT_EQ(bf::qk_heads(c, "model.layers.1.self_attn.q_proj.weight"), c.num_attention_heads);
  EXPECT_EQ(bf::qk_heads(c, "model.layers.1.self_attn.k_proj.weight"), c.num_key_value_heads);
  EXPECT_EQ(bf::qk_heads(c, "model.layers.1.self_attn.v_proj.weight"), 0);
}

TEST(ConvertRope, Llama3FreqsKeepShortWavelengthsScaleLongOnesAndAreRecognised) {
  bellows::nn::LlamaConfig c = bellows::nn::preset("llama3.2-1b", 0);
  const std::vector<float> f = bf::llama3_rope_freqs(c);
  ASSERT_EQ(f.size(), size_t(c.head_dim() / 2));
  EXPECT_EQ(f.front(), 1.0f);                     // highest frequency: untouched
  EXPECT_EQ(f.back(), float(c.rope_scaling->factor));  // lowest: divided by the factor
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
  auto r = bf::rope_scaling_of_freqs(c, f, nullptr);  // Llama 3.x's own parameters
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->factor, 32.0);
  EXPECT_EQ(r->original_max_position_embeddings, 8192);
  bellows::nn::LlamaConfig other = c;
  other.rope_scaling->original_max_position_embeddings = 64;  // not recognisable without our keys
  EXPECT_FALSE(bf::rope_scaling_of_freqs(c, bf::llama3_rope_freqs(other), nullptr).has_value());
}

TEST(ConvertFloat, ShortestDecimalRoundsBackToTheSameFloat) {
  EXPECT_EQ(bf::shortest_double_of_float(1e-5f), 1e-5);
  EXPECT_EQ(bf::shortest_double_of_float(500000.f), 500000.0);
  EXPECT_EQ(bf::shortest_double_of_float(1e-6f), 1e-6);
  for (float x : {0.1f, 3.14159274f, 1.17549435e-38f, 3.40282347e+38f})
    EXPECT_EQ(float(bf::shortest_double_of_float(x)), x);
}

TEST(ConvertSizes, ByteSizesWithUnits) {
  EXPECT_EQ(bf::parse_byte_size("5GB", "--shard-size"), 5'000'000'000u);
  EXPECT_EQ(bf::parse_byte_size("2GiB", "--shard-size"), 2147483648u);
  EXPECT_EQ(bf::parse_byte_size("40KB", "--shard-size"), 40'000u);
  EXPECT_EQ(bf::parse_byte_size("1.5MB", "--shard-size"), 1'500'000u);
  EXPECT_EQ(bf::parse_byte_size("123", "--shard-size"), 123u);
  for (const char* bad : {"", "GB", "5XB", "-1GB", "0", "1e30"})
    EXPECT_THROW(bf::parse_byte_size(bad, "--shard-size"), UsageError) << bad;
}

TEST(ConvertTokenizer, PreTokenizerNamesFollowTheRegex) {
  EXPECT_EQ(bf::gguf_pre_of_pattern(bellows::tok::kPatternCl100k), "llama-bpe");
  EXPECT_EQ(bf::gguf_pre_of_pattern(bellows::tok::kPatternGpt2), "gpt-2");
  EXPECT_EQ(bf::gguf_pre_of_pattern("\\w+"), "");
  for (const char* pre : {"llama-bpe", "gpt-2", "gpt-4o"})
    EXPECT_EQ(bf::gguf_pre_of_pattern(bf::pattern_of_gguf_pre(pre)), pre);
  EXPECT_EQ(bf::pattern_of_gguf_pre("qwen2"), "");
}

TEST(ConvertTokenizer, GgufVocabPadsToTheModelAndMarksSpecialTokens) {
  nlohmann::json merges = nlohmann::json::array();
  merges.push_back(nlohmann::json::array({"a", "b"}));  // the pair form
  nlohmann::json tj = {
      {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", merges}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"use_regex", true}}},
      {"added_tokens", {{{"id", 3}, {"content", "<|eot|>"}, {"special", true}}, {{"id", 4}, {"content", "<x>"}, {"special", false}}}}};
  bf::GgufVocab v = bf::gguf_vocab_from_tokenizer_json(tj, nullptr, 7, std::nullopt, 3u, "t.json");
  EXPECT_EQ(v.pre, "gpt-2");
  ASSERT_EQ(v.tokens.size(), 7u);
  EXPECT_EQ(v.tokens[2], "ab");
  EXPECT_EQ(v.types[3], bf::kTokControl);
  EXPECT_EQ(v.types[4], bf::kTokUserDefined);
  EXPECT_EQ(v.tokens[6], "[PAD6]");
  EXPECT_EQ(v.types[6], bf::kTokUnused);
  EXPECT_EQ(v.merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(v.eos, 3u);
  // A token beyond the model's vocabulary, and an unknown pre-tokenizer, are refused by name.
  EXPECT_THROW(bf::gguf_vocab_from_tokenizer_json(tj, nullptr, 4, std::nullopt, std::nullopt, "t.json"), UsageError);
  tj["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}};
  EXPECT_THROW(bf::gguf_vocab_from_tokenizer_json(tj, nullptr, 7, std::nullopt, std::nullopt, "t.json"), UsageError);
}
