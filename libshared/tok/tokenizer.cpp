#include "tok/tokenizer.hpp"

#include <charconv>

#include <algorithm>
#include <cctype>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>

#include "core/error.hpp"
#include "core/read_file.hpp"
#include "core/sha256.hpp"
#include "text/cleanup.hpp"

namespace bellows::tok {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool base64_decode(std::string_view in, std::string& out) {
  static int8_t table[256];
  static bool init = false;
  if (!init) {
    std::fill(std::begin(table), std::end(table), int8_t{-1});
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
    init = true;
  }
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    if (ch == '=') break;
    int8_t v = table[static_cast<unsigned char>(ch)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

// Lines of "base64 rank" (checks the first non-empty line only; the loader checks them all).
bool looks_like_tiktoken(const std::string& content) {
  size_t b = content.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return true;  // empty: reported as an empty tokenizer file
  size_t e = content.find('\n', b);
  std::string line = content.substr(b, e == std::string::npos ? std::string::npos : e - b);
  size_t sp = line.find(' ');
  if (sp == std::string::npos || sp == 0) return false;
  for (size_t i = 0; i < sp; ++i) {
    char c = line[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) return false;
  }
  for (size_t i = sp + 1; i < line.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[i])) && line[i] != '\r') return false;
  return sp + 1 < line.size();
}

// "<s>" or {"content": "<s>", ...} as tokenizer_config.json writes special tokens.
std::optional<std::string> special_of(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

SpecialToken parse_special_token(const std::string& s, const std::string& what) {
  const auto eq = s.rfind('=');
  if (eq != std::string::npos && eq > 0 && eq + 1 < s.size()) {
    uint32_t id = 0;
    const char* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(s.data() + eq + 1, end, id);
    if (ec == std::errc() && ptr == end) return {s.substr(0, eq), id, true};
  }
  throw UsageError(what + ": expected TOKEN=ID, got '" + s + "'");
}

Tokenizer Tokenizer::load(const std::string& path, const LoadOptions& opt) {
  Tokenizer t;
  t.path_ = path;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw UsageError("--tokenizer: '" + path + "' does not exist or is not a file");
  auto read = read_whole_file(path);
  if (!read) throw UsageError("--tokenizer: cannot open '" + path + "'");
  const std::string content = std::move(*read);
  t.sha256_ = sha256_hex(content);
  json config;  // tokenizer_config.json beside a tokenizer.json, when there is one
  std::string config_path;
  size_t first = content.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && content[first] == '{') {
    t.kind_ = "tokenizer.json";
    json j;
    try {
      j = json::parse(content);
    } catch (const json::exception& e) {
      throw UsageError(path + ": not valid JSON: " + e.what());
    }
    if (!j.contains("model") || !j["model"].is_object())
      throw UsageError(path + ": a JSON file without a \"model\" object is not a tokenizer.json");
    const json& m = j["model"];
    std::string type = m.value("type", "");
    if (type != "BPE")
      throw UsageError(path + ": model type '" + (type.empty() ? "(none)" : type) +
                       "' is not supported (supported: byte-level BPE; SentencePiece models are *.model files)");
    if (m.contains("byte_fallback") && m["byte_fallback"].is_boolean() && m["byte_fallback"].get<bool>())
      throw UsageError(path + ": BPE with byte_fallback (SentencePiece-style) is not supported; use the *.model file");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (m.contains(k) && !m[k].is_null() && m[k] != "")
        throw UsageError(path + ": BPE option '" + std::string(k) + "' is not supported");
    if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() > 0)
      throw UsageError(path + ": BPE dropout is not supported (it makes ids random)");
    t.bpe_.whole_piece_first = m.value("ignore_merges", false);

    // Normalizer: none, or NFC (Qwen2).
    std::function<void(const json&)> normalizer = [&](const json& n) {
      if (n.is_null()) return;
      std::string nt = n.value("type", "");
      if (nt == "NFC") t.nfc_ = true;
      else if (nt == "Sequence") for (const auto& x : n["normalizers"]) normalizer(x);
      else throw UsageError(path + ": normalizer '" + nt + "' is not supported (supported: NFC)");
    };
    normalizer(j.value("normalizer", json()));

    bool byte_level = false;
    std::function<void(const json&)> pre = [&](const json& p) {
      if (p.is_null()) return;
      std::string pt = p.value("type", "");
      if (pt == "Sequence") {
        for (const auto& x : p["pretokenizers"]) pre(x);
      } else if (pt == "ByteLevel") {
        byte_level = true;
        PreStep s;
        s.kind = PreStep::Kind::byte_level;
        s.add_prefix_space = p.value("add_prefix_space", false);
        if (p.value("use_regex", true)) s.regex = std::make_shared<RegexSplitter>(kPatternGpt2, path);
        t.pre_.push_back(s);
      } else if (pt == "Split") {
        if (p.value("invert", false)) throw UsageError(path + ": Split with invert=true is not supported");
        std::string behavior = p.value("behavior", "Isolated");
        if (behavior != "Isolated" && behavior != "Removed")
          throw UsageError(path + ": Split behavior '" + behavior + "' is not supported (supported: Isolated, Removed)");
        const json& pat = p["pattern"];
        std::string regex;
        if (pat.contains("Regex")) regex = pat["Regex"].get<std::string>();
        else if (pat.contains("String")) {
          // A literal: escape it for PCRE2.
          regex = "\\Q" + pat["String"].get<std::string>() + "\\E";
        } else {
          throw UsageError(path + ": Split pattern must be Regex or String");
        }
        PreStep s;
        s.kind = PreStep::Kind::split;
        s.regex = std::make_shared<RegexSplitter>(regex, path);
        s.keep_gaps = behavior == "Isolated";
        t.pre_.push_back(s);
      } else {
        throw UsageError(path + ": pre_tokenizer '" + pt + "' is not supported (supported: ByteLevel, Split, Sequence)");
      }
    };
    pre(j.value("pre_tokenizer", json()));
    if (!byte_level)
      throw UsageError(path + ": no ByteLevel pre-tokenizer: only byte-level BPE tokenizers are supported");

    std::string bytes;
    for (auto& [tok, idj] : m.at("vocab").items()) {
      if (!unicode_to_bytes(tok, bytes))
        throw UsageError(path + ": vocabulary token '" + tok + "' is not in the byte-level alphabet");
      uint32_t id = idj.get<uint32_t>();
      if (t.bpe_.id_to_bytes.size() <= id) t.bpe_.id_to_bytes.resize(id + 1);
      t.bpe_.id_to_bytes[id] = bytes;
    }
    t.bpe_.index_tokens();
    const json& merges = m.at("merges");
    std::string lb, rb;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      std::string l, r;
      const json& x = merges[rank];
      if (x.is_string()) {
        std::string s = x.get<std::string>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos) throw UsageError(path + ": merge " + std::to_string(rank) + " '" + s + "' is not 'a b'");
        l = s.substr(0, sp);
        r = s.substr(sp + 1);
      } else if (x.is_array() && x.size() == 2) {
        l = x[0].get<std::string>();
        r = x[1].get<std::string>();
      } else {
        throw UsageError(path + ": merge " + std::to_string(rank) + " is neither 'a b' nor [a, b]");
      }
      if (!unicode_to_bytes(l, lb) || !unicode_to_bytes(r, rb))
        throw UsageError(path + ": merge " + std::to_string(rank) + " has a token outside the byte-level alphabet");
      int64_t li = t.bpe_.find_bytes(lb), ri = t.bpe_.find_bytes(rb), mi = t.bpe_.find_bytes(lb + rb);
      if (li < 0 || ri < 0 || mi < 0)
        throw UsageError(path + ": merge " + std::to_string(rank) + " ('" + l + "', '" + r + "') names a token not in the vocabulary");
      // The first listing of a pair wins, as in HF.
      t.bpe_.merges.push_back({(static_cast<uint64_t>(li) << 32) | static_cast<uint64_t>(ri),
                               {static_cast<uint32_t>(rank), static_cast<uint32_t>(mi)}});
    }
    for (const auto& a : j.value("added_tokens", json::array())) {
      if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false))
        throw UsageError(path + ": added token '" + a.value("content", "") +
                         "' uses lstrip/rstrip/single_word, which is not supported");
      t.specials_.push_back({a.at("content").get<std::string>(), a.at("id").get<uint32_t>(), a.value("special", false)});
    }
    // BOS/EOS from tokenizer_config.json beside the file (resolved once the vocabulary is final).
    fs::path cfg = fs::path(path).parent_path() / "tokenizer_config.json";
    if (fs::exists(cfg, ec)) {
      config = read_json_file(cfg.string());
      config_path = cfg.string();
    }
  } else if (!looks_like_tiktoken(content)) {
    // A SentencePiece model is a binary protobuf: let the library judge it.
    t.kind_ = "sentencepiece";
    t.sp_ = std::make_shared<sentencepiece::SentencePieceProcessor>();
    auto st = t.sp_->LoadFromSerializedProto(content);
    if (!st.ok())
      throw UsageError(path + ": not a tokenizer.json, a tiktoken rank file or a SentencePiece model (" +
                       std::string(st.message()) + ")");
    t.vocab_size_ = static_cast<uint32_t>(t.sp_->GetPieceSize());
    if (t.sp_->bos_id() >= 0) t.bos_ = static_cast<uint32_t>(t.sp_->bos_id());
    if (t.sp_->eos_id() >= 0) t.eos_ = static_cast<uint32_t>(t.sp_->eos_id());
    return t;
  } else {
    t.kind_ = "tiktoken";
    std::string_view rest = content, b64;
    std::string bytes;
    uint64_t lineno = 0;
    std::vector<uint64_t> line_of;  // by rank, for messages
    while (!rest.empty()) {
      size_t eol = rest.find('\n');
      std::string_view line = rest.substr(0, eol);
      rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
      ++lineno;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      if (line.empty()) continue;
      const size_t sp = line.find(' ');
      uint32_t rank = 0;
      const char* rank_end = line.data() + line.size();
      auto [ptr, ec] = sp == std::string_view::npos
                           ? std::from_chars(rank_end, rank_end, rank)
                           : std::from_chars(line.data() + sp + 1, rank_end, rank);
      if (sp == std::string_view::npos || ec != std::errc() || ptr != rank_end || sp + 1 == line.size())
        throw UsageError(path + ":" + std::to_string(lineno) +
                         ": not a tokenizer.json and not a tiktoken rank file ('base64token rank' per line)");
      b64 = line.substr(0, sp);
      if (!base64_decode(b64, bytes) || bytes.empty())
        throw UsageError(path + ":" + std::to_string(lineno) + ": invalid base64 token");
      if (t.bpe_.id_to_bytes.size() <= rank) {
        t.bpe_.id_to_bytes.resize(rank + 1);
        line_of.resize(rank + 1);
      }
      if (!t.bpe_.id_to_bytes[rank].empty())
        throw UsageError(path + ":" + std::to_string(lineno) + ": rank " + std::to_string(rank) + " is already on line " +
                         std::to_string(line_of[rank]));
      t.bpe_.id_to_bytes[rank] = bytes;
      line_of[rank] = lineno;
    }
    if (t.bpe_.id_to_bytes.empty()) throw UsageError(path + ": empty tokenizer file");
    t.bpe_.index_tokens();
    // Every split of a token into two tokens is a merge with the token's rank as priority.
    for (size_t id = 0; id < t.bpe_.id_to_bytes.size(); ++id) {
      const std::string_view tok = t.bpe_.id_to_bytes[id];
      if (tok.empty()) continue;
      const int64_t self = t.bpe_.find_bytes(tok);
      if (self != static_cast<int64_t>(id))
        throw UsageError(path + ":" + std::to_string(line_of[id]) + ": the token of rank " + std::to_string(id) +
                         " is the same as that of rank " + std::to_string(self) + " (line " +
                         std::to_string(line_of[static_cast<size_t>(self)]) + ")");
      for (size_t k = 1; k < tok.size(); ++k) {
        int64_t l = t.bpe_.find_bytes(tok.substr(0, k));
        if (l < 0) continue;
        int64_t r = t.bpe_.find_bytes(tok.substr(k));
        if (r < 0) continue;
        t.bpe_.merges.push_back({(static_cast<uint64_t>(l) << 32) | static_cast<uint64_t>(r),
                                 {static_cast<uint32_t>(id), static_cast<uint32_t>(id)}});
      }
    }
    t.bpe_.whole_piece_first = true;
    PreStep s;
    s.kind = PreStep::Kind::split;
    s.regex = std::make_shared<RegexSplitter>(pattern_by_name(opt.pattern), "--pattern");
    t.pre_.push_back(s);
    t.specials_ = opt.extra_specials;
  }
  t.bpe_.finish(path);
  for (auto [key, slot] : {std::pair{"bos_token", &t.bos_}, std::pair{"eos_token", &t.eos_}}) {
    if (!config.is_object() || !config.contains(key)) continue;
    auto s = special_of(config[key]);
    if (!s) continue;
    auto id = t.token_id(*s);
    if (!id) throw UsageError(config_path + ": " + key + " '" + *s + "' is not a token of " + path);
    *slot = *id;
  }
  t.vocab_size_ = static_cast<uint32_t>(t.bpe_.id_to_bytes.size());
  for (const auto& s : t.specials_) {
    t.vocab_size_ = std::max(t.vocab_size_, s.id + 1);
    t.special_bytes_[s.id] = s.content;
  }
  std::sort(t.specials_.begin(), t.specials_.end(),
            [](const SpecialToken& a, const SpecialToken& b) { return a.content.size() > b.content.size(); });
  return t;
}

std::optional<uint32_t> Tokenizer::token_id(std::string_view content) const {
  if (sp_) {
    int id = sp_->PieceToId(std::string(content));
    // PieceToId answers unk for unknown pieces; only the unk piece itself may map to it.
    if (id == sp_->unk_id() && sp_->IdToPiece(id) != content) return std::nullopt;
    return static_cast<uint32_t>(id);
  }
  for (const auto& s : specials_)
    if (s.content == content) return s.id;
  int64_t id = bpe_.find_bytes(content);
  if (id >= 0) return static_cast<uint32_t>(id);
  return std::nullopt;
}

void Tokenizer::encode_plain(std::string_view text, std::vector<uint32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (nfc_) {
    normalized = text::to_nfc(text);
    text = normalized;
  }
  // Each pre-tokenizer step splits every piece of the previous step further.
  auto& pieces = pieces_;
  auto& next = next_pieces_;
  pieces.assign(1, text);
  std::deque<std::string> prefixed;  // stable storage for pieces given a leading space
  for (const auto& step : pre_) {
    if (step.kind == PreStep::Kind::byte_level && step.add_prefix_space) {
      // HF's ByteLevel(add_prefix_space) prefixes every piece that does not start with a space.
      for (auto& p : pieces)
        if (!p.empty() && p[0] != ' ') p = prefixed.emplace_back(" " + std::string(p));
    }
    if (!step.regex) continue;
    next.clear();
    for (auto p : pieces) step.regex->split(p, step.kind == PreStep::Kind::byte_level || step.keep_gaps, next);
    pieces.swap(next);
  }
  // Keys first, so that the table slots of a later piece load while this one is looked up: the
  // lookups are cache misses, and overlapping them is most of the speed here.
  const size_t n = pieces.size();
  auto& keys = piece_keys_;
  keys.resize(n);
  for (size_t i = 0; i < n; ++i)
    if (pieces[i].size() > 2) keys[i] = PieceKey::of(pieces[i]);
  const BytesTable& table = bpe_.bytes_table();
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n && pieces[i + kAhead].size() > 2) {
      if (bpe_.whole_piece_first) table.prefetch(keys[i + kAhead]);
      piece_cache_.prefetch(keys[i + kAhead]);
    }
    const std::string_view p = pieces[i];
    if (p.size() <= 2) {  // cheaper to merge than to look up
      bpe_.encode_piece(p, out);
      continue;
    }
    if (bpe_.whole_piece_first) {  // a piece that is a token needs no cache either
      int64_t id = table.find(p, keys[i]);
      if (id >= 0) {
        out.push_back(static_cast<uint32_t>(id));
        continue;
      }
    }
    size_t m = 0;
    if (const uint32_t* ids = piece_cache_.find(p, keys[i], m)) {
      out.insert(out.end(), ids, ids + m);
      continue;
    }
    const size_t before = out.size();
    bpe_.encode_piece(p, out);
    piece_cache_.put(p, keys[i], out.data() + before, out.size() - before);
  }
}

void Tokenizer::encode(std::string_view raw, bool allow_special, std::vector<uint32_t>& out) const {
  std::string valid;
  std::string_view text = raw;
  if (!text::is_valid_utf8(raw)) {  // the common case needs no copy
    text::repair_utf8(raw, valid);
    text = valid;
  }
  if (sp_) {
    // SentencePiece never parses control symbols (<s>, </s>) out of text, allowed or not.
    std::vector<int> ids;
    auto st = sp_->Encode(text, &ids);
    if (!st.ok()) throw RuntimeError(path_ + ": SentencePiece encode failed: " + std::string(st.message()));
    for (int id : ids) out.push_back(static_cast<uint32_t>(id));
    return;
  }
  if (!allow_special || specials_.empty()) return encode_plain(text, out);
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const SpecialToken* hit = nullptr;
    for (const auto& s : specials_)
      if (!s.content.empty() && text.compare(i, s.content.size(), s.content) == 0) {
        hit = &s;
        break;  // longest first
      }
    if (!hit) {
      ++i;
      continue;
    }
    encode_plain(text.substr(start, i - start), out);
    out.push_back(hit->id);
    i += hit->content.size();
    start = i;
  }
  encode_plain(text.substr(start), out);
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string out;
  if (sp_) {
    std::vector<int> v;
    for (uint32_t id : ids) {
      if (id >= vocab_size_) throw RuntimeError("token id " + std::to_string(id) + " is not in the vocabulary of " + path_);
      v.push_back(static_cast<int>(id));
    }
    auto st = sp_->Decode(v, &out);
    if (!st.ok()) throw RuntimeError(path_ + ": SentencePiece decode failed: " + std::string(st.message()));
    return out;
  }
  for (uint32_t id : ids) {
    auto sp = special_bytes_.find(id);
    if (sp != special_bytes_.end()) {
      out += sp->second;
      continue;
    }
    if (id >= bpe_.id_to_bytes.size() || bpe_.id_to_bytes[id].empty())
      throw RuntimeError("token id " + std::to_string(id) + " is not in the vocabulary of " + path_);
    out += bpe_.id_to_bytes[id];
  }
  return out;
}

}  // namespace bellows::tok
