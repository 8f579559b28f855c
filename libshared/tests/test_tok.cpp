#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "pack/pretrain_pack.hpp"
#include "test_util.hpp"
#include "tok/bpe.hpp"
#include "tok/bpe_train.hpp"
#include "tok/chat_template.hpp"
#include "tok/regex_split.hpp"
#include "tok/tokenizer.hpp"

using namespace bellows;
using bellows::testing::TempDir;

namespace {

// A tokenizer.json with the 256 byte tokens and the given merges (each adds a token).
std::string write_tokenizer(const TempDir& t, const std::vector<std::pair<std::string, std::string>>& merges,
                            const std::string& pre = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})",
                            bool ignore_merges = false) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[tok::byte_to_unicode(static_cast<unsigned char>(b))] = b;
  nlohmann::json m = nlohmann::json::array();
  int next = 256;
  for (const auto& [l, r] : merges) {
    auto u = [](const std::string& s) {
      std::string o;
      for (unsigned char c : s) o += tok::byte_to_unicode(c);
      return o;
    };
    m.push_back(u(l) + " " + u(r));
    if (!vocab.contains(u(l + r))) vocab[u(l + r)] = next++;
  }
  nlohmann::json j = {{"version", "1.0"},
                      {"added_tokens", {{{"id", next}, {"content", "<|eot|>"}, {"special", true}}}},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", nlohmann::json::parse(pre)},
                      {"decoder", {{"type", "ByteLevel"}}},
                      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}, {"ignore_merges", ignore_merges}}}};
  std::string path = t / "tokenizer.json";
  std::ofstream(path) << j.dump();
  return path;
}

std::vector<uint32_t> enc(const tok::Tokenizer& t, std::string_view s, bool special = false) {
  std::vector<uint32_t> out;
  t.encode(s, special, out);
  return out;
}

}  // namespace

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;
  for (int i = 0; i < 1000; ++i) h.update(std::string(1000, 'a'));  // 10^6 'a', in pieces
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(ByteLevel, Gpt2Alphabet) {
  EXPECT_EQ(tok::byte_to_unicode(' '), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(tok::byte_to_unicode('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(tok::byte_to_unicode('a'), "a");
  std::string out;
  for (int b = 0; b < 256; ++b) {
    ASSERT_TRUE(tok::unicode_to_bytes(tok::byte_to_unicode(static_cast<unsigned char>(b)), out));
    ASSERT_EQ(out, std::string(1, static_cast<char>(b)));
  }
  EXPECT_FALSE(tok::unicode_to_bytes("\xE2\x96\x81", out));  // SentencePiece's '▁' is not byte-level
}

TEST(RegexSplit, Cl100kAndGpt2Pieces) {
  std::vector<std::string_view> p;
  tok::RegexSplitter cl(tok::kPatternCl100k, "test");
  cl.split("Hello world's 12345  \n\nDON'T", true, p);
  // "\s*[\r\n]+" comes before "\s+(?!\S)": the spaces go with the line breaks.
  EXPECT_EQ(p, (std::vector<std::string_view>{"Hello", " world", "'s", " ", "123", "45", "  \n\n", "DON", "'T"}));
  p.clear();
  tok::RegexSplitter g2(tok::kPatternGpt2, "test");
  g2.split("Hello world's 12345  x", true, p);
  EXPECT_EQ(p, (std::vector<std::string_view>{"Hello", " world", "'s", " 12345", " ", " x"}));
  EXPECT_THROW(tok::RegexSplitter("(unclosed", "f.json"), UsageError);
}

// The cl100k ASCII scanner must split exactly as PCRE2 does: random strings over an alphabet of
// the characters where the pattern's alternatives meet (contractions and their case variants,
// U+017F that folds to 's', letters and digits beyond ASCII, non-ASCII spaces, newlines, marks).
TEST(RegexSplit, Cl100kAsciiScannerEqualsPcre2) {
  tok::RegexSplitter fast(tok::kPatternCl100k, "test", true);
  tok::RegexSplitter pcre(tok::kPatternCl100k, "test", false);
  const std::vector<std::string> alphabet = {
      "a", "Z", "s", "S", "t", "r", "e", "v", "l", "L", "m", "d", "D", "'", "'", "0", "7", " ", " ", " ",
      "\t", "\n", "\r", "\v", "\f", "!", "(", ".", "-", "/", "\x01", "\x7f", "\xC3\xA9" /* é */,
      "\xC5\xBF" /* ſ */, "\xC2\xA0" /* NBSP */, "\xE3\x80\x80" /* ideographic space */,
      "\xE2\x80\xA8" /* line separator */, "\xC2\x85" /* NEL */, "\xD9\xA3" /* Arabic-Indic 3 */,
      "\xE4\xB8\xAD" /* 中 */, "\xF0\x9F\x99\x82" /* emoji */, "\xCC\x81" /* combining acute */,
      "\xE2\x80\x94" /* em dash */, "\xC2\xB2" /* superscript 2 */};
  uint64_t state = 42;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  std::vector<std::string_view> a, b;
  size_t compared = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    size_t len = next() % 24;
    for (size_t i = 0; i < len; ++i) text += alphabet[next() % alphabet.size()];
    a.clear();
    b.clear();
    fast.split(text, true, a);
    pcre.split(text, true, b);
    ASSERT_EQ(a, b) << "text: " << text;
    compared += a.size();
  }
  EXPECT_GT(compared, 100000u);
}

// The fast merge paths (two-byte table, short pieces on the stack, long pieces on a heap) give
// the reference's ids: a random vocabulary over a four-letter alphabet, so that long pieces go
// through hundreds of merges, in both merge rules (HF merges list, tiktoken whole piece first).
TEST(Bpe, FastPathsEqualTheReference) {
  uint64_t state = 3;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (bool whole_first : {false, true}) {
    tok::BpeModel m;
    for (int b = 0; b < 256; ++b) m.id_to_bytes.push_back(std::string(1, static_cast<char>(b)));
    std::vector<uint32_t> pool = {'a', 'b', 'c', 'd'};
    std::set<std::string> seen;
    for (uint32_t rank = 0; rank < 400; ++rank) {
      uint32_t l = pool[next() % pool.size()], r = pool[next() % pool.size()];
      std::string bytes = m.id_to_bytes[l] + m.id_to_bytes[r];
      if (bytes.size() > 12 || !seen.insert(bytes).second) continue;
      auto id = static_cast<uint32_t>(m.id_to_bytes.size());
      m.id_to_bytes.push_back(bytes);
      m.merges.push_back({(uint64_t{l} << 32) | r, {rank, id}});
      pool.push_back(id);
    }
    m.whole_piece_first = whole_first;
    m.finish("test");
    std::vector<uint32_t> fast, ref;
    for (int round = 0; round < 3000; ++round) {
      size_t len = round < 600 ? 1 + round % 3 : 1 + next() % 300;  // two-byte, short and heap paths
      std::string piece;
      for (size_t i = 0; i < len; ++i) piece += "abcd "[next() % 5];
      fast.clear();
      ref.clear();
      m.encode_piece(piece, fast);
      m.encode_piece_reference(piece, ref);
      ASSERT_EQ(fast, ref) << "piece '" << piece << "' whole_piece_first " << whole_first;
    }
  }
}

TEST(Bpe, MergesInPriorityOrderLeftmostFirst) {
  TempDir t;
  // "aaa": merge (a,a) has priority 0; leftmost pair merges first -> "aa" + "a".
  std::string path = write_tokenizer(t, {{"a", "a"}, {"b", "c"}, {"aa", "bc"}});
  tok::Tokenizer tk = tok::Tokenizer::load(path);
  EXPECT_EQ(enc(tk, "aaa"), (std::vector<uint32_t>{256, 'a'}));
  EXPECT_EQ(enc(tk, "aabc"), (std::vector<uint32_t>{258}));
  EXPECT_EQ(tk.decode(enc(tk, "aabc xyz")), "aabc xyz");
  EXPECT_EQ(tk.kind(), "tokenizer.json");
  EXPECT_EQ(tk.vocab_size(), 260u);  // 256 bytes + 3 merges + <|eot|>
}

TEST(Bpe, SpecialTokensOnlyWhenAllowed) {
  TempDir t;
  tok::Tokenizer tk = tok::Tokenizer::load(write_tokenizer(t, {{"a", "b"}}));
  uint32_t eot = *tk.token_id("<|eot|>");
  EXPECT_EQ(enc(tk, "ab<|eot|>ab", true), (std::vector<uint32_t>{256, eot, 256}));
  auto plain = enc(tk, "ab<|eot|>ab", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), eot), 0);
  EXPECT_EQ(tk.decode(plain), "ab<|eot|>ab");
}

TEST(Bpe, InvalidUtf8IsReplacedLikePython) {
  TempDir t;
  tok::Tokenizer tk = tok::Tokenizer::load(write_tokenizer(t, {}));
  EXPECT_EQ(tk.decode(enc(tk, "a\xff" "b")), "a\xEF\xBF\xBD" "b");
}

TEST(Bpe, TiktokenRankFilesMergeByRankOfTheConcatenation) {
  TempDir t;
  std::ofstream f(t / "r.tiktoken");
  auto b64 = [](const std::string& s) {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string o;
    size_t i = 0;
    for (; i + 2 < s.size(); i += 3) {
      uint32_t v = (uint32_t(uint8_t(s[i])) << 16) | (uint32_t(uint8_t(s[i + 1])) << 8) | uint8_t(s[i + 2]);
      for (int k = 3; k >= 0; --k) o += a[(v >> (6 * k)) & 63];
    }
    if (s.size() - i == 1) {
      uint32_t v = uint32_t(uint8_t(s[i])) << 16;
      o += a[(v >> 18) & 63];
      o += a[(v >> 12) & 63];
      o += "==";
    } else if (s.size() - i == 2) {
      uint32_t v = (uint32_t(uint8_t(s[i])) << 16) | (uint32_t(uint8_t(s[i + 1])) << 8);
      o += a[(v >> 18) & 63];
      o += a[(v >> 12) & 63];
      o += a[(v >> 6) & 63];
      o += '=';
    }
    return o;
  };
  for (int b = 0; b < 256; ++b) f << b64(std::string(1, static_cast<char>(b))) << " " << b << "\n";
  f << b64("ab") << " 256\n" << b64("bc") << " 257\n" << b64("abc") << " 258\n";
  f.close();
  tok::LoadOptions lo;
  lo.pattern = "gpt2";
  lo.extra_specials = {{"<|endoftext|>", 259, true}};
  tok::Tokenizer tk = tok::Tokenizer::load(t / "r.tiktoken", lo);
  EXPECT_EQ(tk.kind(), "tiktoken");
  EXPECT_EQ(enc(tk, "abc"), (std::vector<uint32_t>{258}));          // whole piece is a token
  // a b c b c: ab (256) first, then the second bc (257), then ab+c = abc (258).
  EXPECT_EQ(enc(tk, "abcbc"), (std::vector<uint32_t>{258, 257}));
  EXPECT_EQ(enc(tk, "x<|endoftext|>", true), (std::vector<uint32_t>{'x', 259}));
  EXPECT_EQ(tk.vocab_size(), 260u);
}

TEST(Tokenizer, RefusesWhatItCannotDo) {
  TempDir t;
  std::ofstream(t / "uni.json") << R"({"model": {"type": "Unigram", "vocab": []}})";
  try {
    tok::Tokenizer::load(t / "uni.json");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model type 'Unigram' is not supported"), std::string::npos) << e.what();
  }
  std::ofstream(t / "junk.txt") << "hello world\n";
  EXPECT_THROW(tok::Tokenizer::load(t / "junk.txt"), UsageError);
  EXPECT_THROW(tok::Tokenizer::load(t / "missing.json"), UsageError);
}

TEST(Pack, PermutationIsDeterministicAndComplete) {
  auto p = pack::permutation(1000, 7);
  EXPECT_EQ(p, pack::permutation(1000, 7));
  EXPECT_NE(p, pack::permutation(1000, 8));
  std::vector<uint64_t> s = p;
  std::sort(s.begin(), s.end());
  for (uint64_t i = 0; i < 1000; ++i) ASSERT_EQ(s[i], i);
}

// The most frequent pair merges first; the trained file loads and encodes with those merges.
TEST(BpeTrain, MergesFrequentPairsAndWritesALoadableTokenizer) {
  TempDir t;
  tok::BpeTrainOptions o;
  o.vocab_size = 256 + 3 + 1;  // three merges and <|endoftext|>
  o.pattern = "gpt2";
  tok::BpeTrainer tr(o);
  for (int i = 0; i < 50; ++i) tr.add_text("low lower lowest");
  EXPECT_EQ(tr.train(), 3u);
  EXPECT_EQ(tr.vocab_size(), o.vocab_size);
  tr.write(t / "tokenizer.json", t / "tokenizer_config.json");
  tok::Tokenizer tk = tok::Tokenizer::load(t / "tokenizer.json");
  EXPECT_EQ(tk.vocab_size(), o.vocab_size);
  EXPECT_EQ(*tk.eos_id(), 259u);
  // " low" is the most frequent piece family: ' '+'l', then ' l'+'o', then ' lo'+'w' (or 'l'+'o'...).
  std::vector<uint32_t> ids;
  tk.encode(" low", false, ids);
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(tk.decode(ids), " low");
  // Deterministic: the same counts give the same file.
  tok::BpeTrainer again(o);
  again.add_counts(tr.serialize_counts());
  again.train();
  again.write(t / "again.json", t / "again_config.json");
  std::ifstream a(t / "tokenizer.json"), b(t / "again.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));
}

TEST(ChatTemplate, RendersTheCommonConstructs) {
  tok::ChatTemplate t(
      "{%- set ns = namespace(n=0) -%}\n"
      "{% for m in messages %}\n"
      "  {% set ns.n = ns.n + 1 %}\n"
      "{{ loop.index }}:{{ m['role'] | upper }}={{ m.content | trim }}{% if not loop.last %}, {% endif %}\n"
      "{% endfor %}\n"
      "{{ ns.n }}{{ ' gen' if add_generation_prompt else '' }}{{ bos_token ~ (messages|length) }}\n",
      "test");
  nlohmann::json ctx = {{"messages", {{{"role", "user"}, {"content", " a "}}, {{"role", "assistant"}, {"content", "b"}}}},
                        {"add_generation_prompt", true},
                        {"bos_token", "<s>"}};
  EXPECT_EQ(t.render(ctx), "1:USER=a, 2:ASSISTANT=b2 gen<s>2");
  tok::ChatTemplate raises("{{ raise_exception('no system role') }}", "test");
  EXPECT_THROW(raises.render(ctx), RuntimeError);
  EXPECT_THROW(tok::ChatTemplate("{% macro x() %}{% endmacro %}", "test"), UsageError);
  EXPECT_THROW(tok::ChatTemplate("{{ messages | sum }}", "test").render(ctx), RuntimeError);
  EXPECT_THROW(tok::ChatTemplate("{% if x %}", "test"), UsageError);
}
