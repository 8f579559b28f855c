#include "formats/tokenizer_files.hpp"

#include <map>
#include <set>

#include <sentencepiece_processor.h>

#include <cstring>
#include <functional>
#include <string_view>

#include "core/error.hpp"
#include "tok/regex_split.hpp"
#include "tok/tokenizer_json.hpp"

namespace bellows::formats {
using nlohmann::json;

std::string gguf_pre_of_pattern(const std::string& regex) {
  if (regex == tok::kPatternCl100k) return "llama-bpe";
  if (regex == tok::kPatternGpt2) return "gpt-2";
  if (regex == tok::kPatternO200k) return "gpt-4o";
  return "";
}

std::string pattern_of_gguf_pre(const std::string& pre) {
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return tok::kPatternCl100k;
  if (pre == "gpt-2") return tok::kPatternGpt2;
  if (pre == "gpt-4o") return tok::kPatternO200k;
  return "";
}

namespace {

// The regex a tokenizer.json's pre-tokenizer splits with: the first Split's Regex, else GPT-2's
// when a ByteLevel step splits by itself (use_regex, its default). "" when there is none.
std::string split_regex(const json& p) {
  if (!p.is_object()) return "";
  const std::string type = p.value("type", "");
  if (type == "Sequence" && p.contains("pretokenizers")) {
    for (const auto& x : p["pretokenizers"]) {
      std::string r = split_regex(x);
      if (!r.empty()) return r;
    }
  } else if (type == "Split" && p.contains("pattern") && p["pattern"].contains("Regex")) {
    return p["pattern"]["Regex"].get<std::string>();
  } else if (type == "ByteLevel" && p.value("use_regex", true)) {
    return tok::kPatternGpt2;
  }
  return "";
}

// A special-token entry of tokenizer_config.json: a string or an AddedToken object.
std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

// Reads the fields of one protobuf message (wire format), calling f(field number, varint value,
// bytes of a length-delimited field). Enough to read the few SentencePiece settings that decide
// whether llama.cpp tokenizes as SentencePiece does; false when the bytes are not a message.
bool for_each_pb_field(std::string_view m, const std::function<void(uint32_t, uint64_t, std::string_view)>& f) {
  size_t i = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && i < m.size(); shift += 7) {
      const uint8_t b = uint8_t(m[i++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  while (i < m.size()) {
    uint64_t key = 0, v = 0;
    if (!varint(key)) return false;
    const uint32_t field = uint32_t(key >> 3), wire = uint32_t(key & 7);
    if (wire == 0) {
      if (!varint(v)) return false;
      f(field, v, {});
    } else if (wire == 2) {
      if (!varint(v) || v > m.size() - i) return false;
      f(field, 0, m.substr(i, size_t(v)));
      i += size_t(v);
    } else if (wire == 1 || wire == 5) {
      const size_t n = wire == 1 ? 8 : 4;
      if (n > m.size() - i) return false;
      i += n;
    } else {
      return false;
    }
  }
  return true;
}

// A tokenizer.ggml.token_type element, whichever integer type the file stores it as.
int64_t token_type_of(const GgufValue& v) {
  const bool is_signed = v.type == GgufType::i8 || v.type == GgufType::i16 || v.type == GgufType::i32 || v.type == GgufType::i64;
  return is_signed ? v.i : int64_t(v.u);
}

// add_bos_token and chat_template of a tokenizer_config.json (may be null) into a vocabulary.
void take_config_fields(const json& tokenizer_config, GgufVocab& v) {
  if (!tokenizer_config.is_object()) return;
  if (tokenizer_config.contains("add_bos_token") && tokenizer_config["add_bos_token"].is_boolean())
    v.add_bos = tokenizer_config["add_bos_token"].get<bool>();
  if (tokenizer_config.contains("chat_template") && tokenizer_config["chat_template"].is_string())
    v.chat_template = tokenizer_config["chat_template"].get<std::string>();
}

}  // namespace

GgufVocab gguf_vocab_from_sentencepiece(const sentencepiece::SentencePieceProcessor& sp, int64_t vocab_size,
                                        const json& tokenizer_config, const std::string& what) {
  // ModelProto: trainer_spec = 2 (model_type = 3: 1 unigram, 2 BPE), normalizer_spec = 3 (name = 1,
  // precompiled_charsmap = 2, add_dummy_prefix = 3, remove_extra_whitespaces = 4).
  const std::string proto = sp.serialized_model_proto();
  uint64_t model_type = 1;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, has_charsmap = false;
  std::string norm_name;
  bool ok = for_each_pb_field(proto, [&](uint32_t field, uint64_t, std::string_view bytes) {
    if (field == 2)
      for_each_pb_field(bytes, [&](uint32_t f, uint64_t v, std::string_view) {
        if (f == 3) model_type = v;
      });
    if (field == 3)
      for_each_pb_field(bytes, [&](uint32_t f, uint64_t v, std::string_view b) {
        if (f == 1) norm_name = std::string(b);
        if (f == 2) has_charsmap = !b.empty();
        if (f == 3) add_dummy_prefix = v != 0;
        if (f == 4) remove_extra_whitespaces = v != 0;
      });
  });
  if (!ok) throw UsageError(what + ": the SentencePiece model could not be read");
  if (model_type != 2)
    throw UsageError(what + ": a SentencePiece " + std::string(model_type == 1 ? "unigram" : "word/char") +
                     " model cannot be exported to GGUF: llama.cpp's SentencePiece tokenizer merges as BPE does and "
                     "would split text differently (supported: BPE models, as Llama 2's)");
  if (has_charsmap && norm_name != "identity")
    throw UsageError(what + ": its normalization rule '" + norm_name + "' is not applied by llama.cpp (supported: identity)");
  if (remove_extra_whitespaces)
    throw UsageError(what + ": remove_extra_whitespaces is not applied by llama.cpp, which would tokenize runs of spaces "
                            "differently (train with --remove_extra_whitespaces=false, as Llama 2's model is)");
  const int n = sp.GetPieceSize();
  if (n > vocab_size)
    throw UsageError(what + ": " + std::to_string(n) + " pieces, more than the model's vocab_size " + std::to_string(vocab_size));
  GgufVocab v;
  v.model = "llama";
  v.pre = "default";
  v.add_space_prefix = add_dummy_prefix;
  for (int id = 0; id < vocab_size; ++id) {
    if (id >= n) {
      v.tokens.push_back("[PAD" + std::to_string(id) + "]");
      v.scores.push_back(0.f);
      v.types.push_back(kTokUnused);
      continue;
    }
    v.tokens.push_back(sp.IdToPiece(id));
    v.scores.push_back(sp.GetScore(id));
    v.types.push_back(sp.IsUnknown(id) ? kTokUnknown
                      : sp.IsControl(id) ? kTokControl
                      : sp.IsUnused(id) ? kTokUnused
                      : sp.IsByte(id) ? kTokByte
                                      : kTokNormal);
  }
  if (sp.bos_id() >= 0) v.bos = uint32_t(sp.bos_id());
  if (sp.eos_id() >= 0) v.eos = uint32_t(sp.eos_id());
  if (sp.unk_id() >= 0) v.unk = uint32_t(sp.unk_id());
  if (sp.pad_id() >= 0) v.pad = uint32_t(sp.pad_id());
  take_config_fields(tokenizer_config, v);
  return v;
}

GgufVocab gguf_vocab_from_tokenizer_json(const json& tj, const json& tokenizer_config, int64_t vocab_size,
                                         std::optional<uint32_t> bos, std::optional<uint32_t> eos,
                                         const std::string& what) {
  if (!tj.is_object() || !tj.contains("model") || tj["model"].value("type", "") != "BPE")
    throw UsageError(what + ": GGUF export needs a byte-level BPE tokenizer.json");
  if (tj.contains("normalizer") && !tj["normalizer"].is_null())
    throw UsageError(what + ": a tokenizer with a normalizer cannot be expressed as GGUF's gpt2 tokenizer");
  const std::string regex = split_regex(tj.value("pre_tokenizer", json()));
  GgufVocab v;
  v.pre = gguf_pre_of_pattern(regex);
  if (v.pre.empty())
    throw UsageError(what + ": its pre-tokenizer regex is none that llama.cpp knows by name (supported: cl100k / "
                            "Llama 3 -> llama-bpe, GPT-2 -> gpt-2, o200k -> gpt-4o)");
  const json& m = tj["model"];
  v.tokens.assign(size_t(vocab_size), "");
  v.types.assign(size_t(vocab_size), kTokUnused);
  std::vector<bool> set(size_t(vocab_size), false);
  auto put = [&](const std::string& content, uint64_t id, int32_t type) {
    if (id >= uint64_t(vocab_size))
      throw UsageError(what + ": token '" + content + "' has id " + std::to_string(id) + ", beyond the model's vocab_size " +
                       std::to_string(vocab_size));
    v.tokens[id] = content;
    v.types[id] = type;
    set[id] = true;
  };
  for (const auto& [content, id] : m.at("vocab").items()) put(content, id.get<uint64_t>(), kTokNormal);
  for (const auto& a : tj.value("added_tokens", json::array()))
    put(a.at("content").get<std::string>(), a.at("id").get<uint64_t>(), a.value("special", false) ? kTokControl : kTokUserDefined);
  for (size_t i = 0; i < set.size(); ++i)
    if (!set[i]) v.tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (const auto& x : m.at("merges")) {
    if (x.is_string()) v.merges.push_back(x.get<std::string>());
    else if (x.is_array() && x.size() == 2) v.merges.push_back(x[0].get<std::string>() + " " + x[1].get<std::string>());
    else throw UsageError(what + ": a merge is neither 'a b' nor [a, b]");
  }
  v.bos = bos;
  v.eos = eos;
  take_config_fields(tokenizer_config, v);
  return v;
}

void append_gguf_vocab(const GgufVocab& v, GgufMetadata& md) {
  md.emplace_back("tokenizer.ggml.model", GgufValue::make_string(v.model));
  md.emplace_back("tokenizer.ggml.pre", GgufValue::make_string(v.pre));
  md.emplace_back("tokenizer.ggml.tokens", GgufValue::make_string_array(v.tokens));
  if (!v.scores.empty()) md.emplace_back("tokenizer.ggml.scores", GgufValue::make_f32_array(v.scores));
  md.emplace_back("tokenizer.ggml.token_type", GgufValue::make_i32_array(v.types));
  if (v.model == "gpt2") md.emplace_back("tokenizer.ggml.merges", GgufValue::make_string_array(v.merges));
  if (v.bos) md.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::make_u32(*v.bos));
  if (v.eos) md.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::make_u32(*v.eos));
  if (v.pad) md.emplace_back("tokenizer.ggml.padding_token_id", GgufValue::make_u32(*v.pad));
  if (v.unk) md.emplace_back("tokenizer.ggml.unknown_token_id", GgufValue::make_u32(*v.unk));
  if (v.add_space_prefix) md.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::make_bool(*v.add_space_prefix));
  md.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::make_bool(v.add_bos));
  md.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::make_bool(false));
  if (!v.chat_template.empty()) md.emplace_back("tokenizer.chat_template", GgufValue::make_string(v.chat_template));
}

HfTokenizerFiles tokenizer_json_from_gguf(const GgufReader& r) {
  const std::string& path = r.path();
  auto need = [&](const char* key) -> const GgufValue& {
    const GgufValue* v = r.find(key);
    if (!v) throw RuntimeError(path + ": has no " + key + " (a GGUF without its tokenizer cannot be imported)");
    return *v;
  };
  const std::string model = need("tokenizer.ggml.model").as_string(path + ": tokenizer.ggml.model");
  if (model != "gpt2")
    throw RuntimeError(path + ": tokenizer.ggml.model '" + model +
                       "' is not supported for import (supported: gpt2, i.e. byte-level BPE)");
  const GgufValue* pre_v = r.find("tokenizer.ggml.pre");
  const std::string pre = pre_v ? pre_v->as_string(path + ": tokenizer.ggml.pre") : "default";
  const std::string regex = pattern_of_gguf_pre(pre);
  if (regex.empty())
    throw RuntimeError(path + ": tokenizer.ggml.pre '" + pre + "' is not supported for import (supported: llama-bpe, gpt-2, gpt-4o)");
  const GgufValue& tokens = need("tokenizer.ggml.tokens");
  const GgufValue& merges = need("tokenizer.ggml.merges");
  if (tokens.type != GgufType::array || tokens.elem_type != GgufType::string)
    throw RuntimeError(path + ": tokenizer.ggml.tokens is not an array of strings");
  if (merges.type != GgufType::array || merges.elem_type != GgufType::string)
    throw RuntimeError(path + ": tokenizer.ggml.merges is not an array of strings");
  const GgufValue* types = r.find("tokenizer.ggml.token_type");
  if (types && (types->type != GgufType::array || types->arr.size() != tokens.arr.size()))
    throw RuntimeError(path + ": tokenizer.ggml.token_type is not an array as long as tokenizer.ggml.tokens");

  json vocab = json::object(), added = json::array();
  for (size_t id = 0; id < tokens.arr.size(); ++id) {
    const std::string& s = tokens.arr[id].s;
    const int64_t type = types ? token_type_of(types->arr[id]) : int64_t(kTokNormal);
    if (type == kTokUnused) continue;
    if (type == kTokControl || type == kTokUserDefined) {
      added.push_back({{"id", id}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", type == kTokControl}});
      continue;
    }
    if (vocab.contains(s)) throw RuntimeError(path + ": token '" + s + "' appears twice in tokenizer.ggml.tokens");
    vocab[s] = id;
  }
  json merge_list = json::array();
  for (const auto& x : merges.arr) merge_list.push_back(x.s);
  HfTokenizerFiles out;
  // llama.cpp applies ignore_merges (a piece that is a token is taken whole) for Llama 3's
  // pre-tokenizer only; the tokenizer.json says the same so that both give the same ids.
  out.tokenizer_json = tok::byte_level_bpe_tokenizer_json(regex, vocab, merge_list, added,
                                                          pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3");
  auto token_by_key = [&](const char* key) -> std::string {
    const GgufValue* v = r.find(key);
    if (!v) return "";
    const uint64_t id = v->as_uint(path + ": " + key);
    if (id >= tokens.arr.size()) throw RuntimeError(path + ": " + key + " " + std::to_string(id) + " is not a token id");
    return tokens.arr[id].s;
  };
  out.bos_token = token_by_key("tokenizer.ggml.bos_token_id");
  out.eos_token = token_by_key("tokenizer.ggml.eos_token_id");
  json cfg = json::object();
  if (const GgufValue* v = r.find("tokenizer.ggml.add_bos_token"); v && v->type == GgufType::boolean) cfg["add_bos_token"] = v->b;
  if (const GgufValue* v = r.find("tokenizer.chat_template"); v && v->type == GgufType::string) cfg["chat_template"] = v->s;
  if (!out.bos_token.empty()) cfg["bos_token"] = out.bos_token;
  if (!out.eos_token.empty()) cfg["eos_token"] = out.eos_token;
  out.tokenizer_config = cfg;
  return out;
}

std::string gguf_tokenizer_model(const GgufReader& r) {
  const GgufValue* v = r.find("tokenizer.ggml.model");
  if (!v) throw RuntimeError(r.path() + ": has no tokenizer.ggml.model (a GGUF without its tokenizer cannot be imported)");
  const std::string m = v->as_string(r.path() + ": tokenizer.ggml.model");
  if (m != "gpt2" && m != "llama")
    throw RuntimeError(r.path() + ": tokenizer.ggml.model '" + m + "' is not supported for import (supported: gpt2, llama)");
  return m;
}

namespace {

// Protobuf wire format, for the few fields of a SentencePiece ModelProto written here.
void pb_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(uint8_t(v));
}
void pb_key(std::string& out, uint32_t field, uint32_t wire) { pb_varint(out, (uint64_t(field) << 3) | wire); }
void pb_int(std::string& out, uint32_t field, int64_t v) {  // int32/enum/bool: negative as 10-byte two's complement
  pb_key(out, field, 0);
  pb_varint(out, uint64_t(v));
}
void pb_bytes(std::string& out, uint32_t field, std::string_view b) {
  pb_key(out, field, 2);
  pb_varint(out, b.size());
  out.append(b);
}
void pb_float(std::string& out, uint32_t field, float f) {
  pb_key(out, field, 5);
  char b[4];
  std::memcpy(b, &f, 4);  // little-endian host, as the wire format
  out.append(b, 4);
}

}  // namespace

SentencePieceFile sentencepiece_model_from_gguf(const GgufReader& r) {
  const std::string& path = r.path();
  auto need_array = [&](const char* key, GgufType elem) -> const GgufValue& {
    const GgufValue* v = r.find(key);
    if (!v || v->type != GgufType::array || v->elem_type != elem)
      throw RuntimeError(path + ": " + key + " is missing or not an array of the expected type");
    return *v;
  };
  const GgufValue& tokens = need_array("tokenizer.ggml.tokens", GgufType::string);
  const GgufValue& scores = need_array("tokenizer.ggml.scores", GgufType::f32);
  const GgufValue* types = r.find("tokenizer.ggml.token_type");
  if (scores.arr.size() != tokens.arr.size() || (types && (types->type != GgufType::array || types->arr.size() != tokens.arr.size())))
    throw RuntimeError(path + ": tokenizer.ggml.scores / token_type are not as long as tokenizer.ggml.tokens");
  auto id_of = [&](const char* key) -> int64_t {
    const GgufValue* v = r.find(key);
    if (!v) return -1;
    const uint64_t id = v->as_uint(path + ": " + key);
    if (id >= tokens.arr.size()) throw RuntimeError(path + ": " + key + " " + std::to_string(id) + " is not a token id");
    return int64_t(id);
  };
  std::string proto, trainer, normalizer;
  bool has_bytes = false;
  for (size_t id = 0; id < tokens.arr.size(); ++id) {
    const int64_t type = types ? token_type_of(types->arr[id]) : int64_t(kTokNormal);
    if (type < kTokNormal || type > kTokByte) throw RuntimeError(path + ": token " + std::to_string(id) + " has an unknown type");
    has_bytes = has_bytes || type == kTokByte;
    std::string piece;
    pb_bytes(piece, 1, tokens.arr[id].s);
    pb_float(piece, 2, float(scores.arr[id].f));
    pb_int(piece, 3, type);  // llama.cpp's token types are SentencePiece's own numbers
    pb_bytes(proto, 1, piece);
  }
  const int64_t unk = id_of("tokenizer.ggml.unknown_token_id"), bos = id_of("tokenizer.ggml.bos_token_id"),
                eos = id_of("tokenizer.ggml.eos_token_id"), pad = id_of("tokenizer.ggml.padding_token_id");
  pb_int(trainer, 3, 2);  // model_type BPE: what llama.cpp's SentencePiece tokenizer does
  pb_int(trainer, 4, int64_t(tokens.arr.size()));
  pb_int(trainer, 35, has_bytes ? 1 : 0);  // byte_fallback
  pb_int(trainer, 40, unk);
  pb_int(trainer, 41, bos);
  pb_int(trainer, 42, eos);
  pb_int(trainer, 43, pad);
  pb_bytes(proto, 2, trainer);
  bool add_prefix = true;
  if (const GgufValue* v = r.find("tokenizer.ggml.add_space_prefix"); v && v->type == GgufType::boolean) add_prefix = v->b;
  pb_bytes(normalizer, 1, "identity");
  pb_int(normalizer, 3, add_prefix ? 1 : 0);
  pb_int(normalizer, 4, 0);  // remove_extra_whitespaces: llama.cpp keeps every space
  pb_int(normalizer, 5, 1);  // escape_whitespaces: spaces as U+2581
  pb_bytes(proto, 3, normalizer);

  sentencepiece::SentencePieceProcessor sp;
  if (auto st = sp.LoadFromSerializedProto(proto); !st.ok())
    throw RuntimeError(path + ": its SentencePiece vocabulary cannot be loaded: " + std::string(st.message()));
  SentencePieceFile f;
  f.model = std::move(proto);
  if (bos >= 0) f.bos_token = tokens.arr[size_t(bos)].s;
  if (eos >= 0) f.eos_token = tokens.arr[size_t(eos)].s;
  return f;
}

json hf_tokenizer_config(const json& run_config, const std::string& bos_token, const std::string& eos_token,
                         int64_t model_max_length) {
  json c = run_config.is_object() ? run_config : json::object();
  if (!c.contains("tokenizer_class")) c["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (!bos_token.empty() && token_content(c.value("bos_token", json())).empty()) c["bos_token"] = bos_token;
  if (!eos_token.empty() && token_content(c.value("eos_token", json())).empty()) c["eos_token"] = eos_token;
  if (!c.contains("model_max_length")) c["model_max_length"] = model_max_length;
  if (!c.contains("clean_up_tokenization_spaces")) c["clean_up_tokenization_spaces"] = false;
  return c;
}

}  // namespace bellows::formats
