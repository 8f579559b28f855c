#include "pack/tokenize_pack.hpp"

#include <simdjson.h>

#include <charconv>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "core/error.hpp"
#include "core/json_counters.hpp"
#include "core/version.hpp"
#include "curate/inputs.hpp"
#include "dist/context.hpp"
#include "io/line_reader.hpp"
#include "io/safe_output.hpp"
#include "log/log.hpp"
#include "pack/preference_pack.hpp"
#include "pack/sft_pack.hpp"
#include "tok/bpe_train.hpp"
#include "pack/pretrain_pack.hpp"
#include "text/cleanup.hpp"
#include "tok/tokenizer.hpp"

namespace bellows::pack {
using nlohmann::json;

namespace {

tok::Tokenizer load_tokenizer(const cli::Invocation& inv) {
  if (!inv.has("tokenizer")) throw UsageError("missing required option '--tokenizer'");
  tok::LoadOptions lo;
  lo.pattern = inv.get<std::string>("pattern");
  if (inv.has("special-token")) {
    for (const auto& s : inv.get<std::vector<std::string>>("special-token"))
      lo.extra_specials.push_back(tok::parse_special_token(s, "--special-token"));
  }
  tok::Tokenizer t = tok::Tokenizer::load(inv.get<std::string>("tokenizer"), lo);
  return t;
}

std::optional<uint32_t> named_id(const tok::Tokenizer& t, const cli::Invocation& inv, const char* flag) {
  if (!inv.has(flag)) return std::nullopt;
  std::string s = inv.get<std::string>(flag);
  auto id = t.token_id(s);
  if (!id) throw UsageError(std::string("--") + flag + ": '" + s + "' is not a token of " + t.path());
  return id;
}

// One line per JSONL record: its ids.
int encode(const cli::Invocation& inv, const tok::Tokenizer& t) {
  std::string file = inv.get<std::string>("encode");
  std::string key = inv.get<std::string>("text-key");
  bool special = inv.get<bool>("allow-special");
  std::unique_ptr<io::LineReader> reader;
  std::istream* in = nullptr;
  if (file != "-") reader = std::make_unique<io::LineReader>(file, inv.get<size_t>("max-doc-bytes"));
  else in = &std::cin;
  std::string line, out;
  simdjson::dom::parser parser;
  std::vector<uint32_t> ids;
  uint64_t lineno = 0;
  for (;;) {
    if (reader) {
      auto st = reader->next(line);
      if (st == io::LineReader::Status::eof) break;
      lineno = reader->line_number();
      if (st == io::LineReader::Status::too_long)
        throw RuntimeError(file + ":" + std::to_string(lineno) + ": line longer than --max-doc-bytes");
    } else {
      if (!std::getline(*in, line)) break;
      ++lineno;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // Raw invalid UTF-8 can only sit inside strings; replacing it first is what the tokenizer
    // would do to the text anyway (U+FFFD per maximal subpart).
    if (!text::is_valid_utf8(line)) {
      std::string fixed;
      text::repair_utf8(line, fixed);
      line.swap(fixed);
    }
    line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
    simdjson::dom::element doc;
    std::string_view text;
    if (parser.parse(line.data(), line.size(), false).get(doc) != simdjson::SUCCESS)
      throw RuntimeError(file + ":" + std::to_string(lineno) + ": not JSON");
    if (doc[key].get_string().get(text) != simdjson::SUCCESS)
      throw RuntimeError(file + ":" + std::to_string(lineno) + ": no string field '" + key + "'");
    ids.clear();
    t.encode(text, special, ids);
    out.clear();
    char num[16];
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ' ';
      auto r = std::to_chars(num, num + sizeof num, ids[i]);
      out.append(num, r.ptr);
    }
    out += '\n';
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) throw RuntimeError("stdout: write failed");
  }
  std::fflush(stdout);
  return kExitOk;
}

int decode(const cli::Invocation& inv, const tok::Tokenizer& t) {
  std::string file = inv.get<std::string>("decode");
  std::ifstream fin;
  std::istream* in = &std::cin;
  if (file != "-") {
    fin.open(file);
    if (!fin) throw RuntimeError(file + ": cannot open");
    in = &fin;
  }
  std::string line;
  uint64_t lineno = 0;
  std::vector<uint32_t> ids;
  while (std::getline(*in, line)) {
    ++lineno;
    ids.clear();
    std::istringstream ls(line);
    std::string tokstr;
    while (ls >> tokstr) {
      try {
        size_t used = 0;
        unsigned long v = std::stoul(tokstr, &used);
        if (used != tokstr.size() || v > UINT32_MAX) throw std::invalid_argument("id");
        ids.push_back(static_cast<uint32_t>(v));
      } catch (const std::exception&) {
        throw RuntimeError(file + ":" + std::to_string(lineno) + ": '" + tokstr + "' is not a token id");
      }
    }
    std::string text;
    try {
      text = t.decode(ids);
    } catch (const RuntimeError& e) {
      throw RuntimeError(file + ":" + std::to_string(lineno) + ": " + e.what());
    }
    std::cout << json({{"text", text}}).dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  std::cout << std::flush;
  return kExitOk;
}

// --train-vocab-size: every rank counts the pieces of its documents, rank 0 trains on the sum
// (the same result for any number of ranks) and writes tokenizer.json into the output, which
// every rank then loads.
tok::Tokenizer train_tokenizer(const cli::Invocation& inv, const std::vector<curate::InputFile>& inputs,
                               const std::vector<int>& owner, const curate::ReaderOptions& ro, bool skip_bad,
                               const std::string& outdir, dist::Communicator& world) {
  int64_t n = inv.get<int64_t>("train-vocab-size");
  if (n < 257 || n > (1 << 24)) throw UsageError("--train-vocab-size: must be within 257..16777216");
  tok::BpeTrainOptions to;
  to.vocab_size = static_cast<size_t>(n);
  to.pattern = inv.get<std::string>("pattern");
  to.special_tokens.clear();
  std::stringstream ss(inv.get<std::string>("train-special-tokens"));
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) to.special_tokens.push_back(item);
  if (to.special_tokens.empty()) throw UsageError("--train-special-tokens: name at least the EOS token");
  tok::BpeTrainer trainer(to);
  std::string valid;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (owner[i] != world.rank()) continue;
    auto reader = curate::open_reader(inputs[i], i, ro);
    curate::RawRecord rec;
    while (reader->next(rec)) {
      if (!rec.bad.empty()) {
        if (!skip_bad) throw RuntimeError(rec.source + ": " + rec.bad + " (use --on-bad-record skip to count and skip such records)");
        continue;
      }
      text::repair_utf8(rec.text, valid);
      trainer.add_text(valid);
    }
  }
  std::vector<std::string> counts = world.gather(trainer.serialize_counts(), 0);
  std::string path = outdir + "/tokenizer.json";
  if (world.rank() == 0) {
    tok::BpeTrainer all(to);
    for (const auto& c : counts) all.add_counts(c);
    size_t merges = all.train();
    all.write(path, outdir + "/tokenizer_config.json");
    log::info("trained a byte-level BPE: " + std::to_string(merges) + " merges, vocabulary " +
              std::to_string(all.vocab_size()) +
              (all.vocab_size() < static_cast<size_t>(n) ? " (fewer than asked: no pair left seen twice)" : "") +
              ", written to the output as tokenizer.json");
  }
  world.barrier();
  return tok::Tokenizer::load(path);
}

int pack(cli::Invocation& inv, tok::Tokenizer* given) {
  auto& ctx = dist::Context::get();
  dist::Communicator& world = ctx.world();
  std::string mode = inv.get<std::string>("mode");
  if (mode != "pretrain" && mode != "preference" && mode != "sft")
    throw UsageError("--mode: invalid value '" + mode + "' (expected pretrain|sft|preference)");
  if (!inv.has("output")) throw UsageError("missing required option '--output' (-o) for --mode");
  if (!inv.has("input")) throw UsageError("no input: name document shards, JSONL files or directories (see --help)");
  PretrainOptions opt;
  int64_t seq = inv.get<int64_t>("seq-len");
  if (seq < 1 || seq > (1 << 24)) throw UsageError("--seq-len: must be within 1..16777216");
  opt.seq_len = static_cast<uint32_t>(seq);
  opt.bos = inv.get<bool>("bos");
  opt.seed = inv.get<uint64_t>("seed");
  opt.valid_fraction = inv.get<double>("valid-fraction");
  if (opt.valid_fraction < 0 || opt.valid_fraction >= 1) throw UsageError("--valid-fraction: must be within [0, 1)");
  std::string bad = inv.get<std::string>("on-bad-record");
  if (bad != "error" && bad != "skip") throw UsageError("--on-bad-record: invalid value '" + bad + "' (expected error|skip)");
  opt.skip_bad = bad == "skip";
  curate::ReaderOptions ro;
  ro.text_key = inv.get<std::string>("text-key");
  ro.max_doc_bytes = inv.get<size_t>("max-doc-bytes");

  std::vector<curate::InputFile> inputs = curate::list_inputs_on_root(world, [&] {
    return curate::enumerate_inputs(inv.get<std::vector<std::string>>("input"),
                                    curate::parse_input_format(inv.get<std::string>("input-format")), {});
  });
  std::vector<int> owner = curate::assign_files(inputs, world.size());

  auto t0 = std::chrono::steady_clock::now();
  io::SafeOutput out(inv.get<std::string>("output"), io::SafeOutput::Kind::directory, inv.get<bool>("overwrite"), &world);
  std::optional<tok::Tokenizer> trained;
  if (!given) trained = train_tokenizer(inv, inputs, owner, ro, opt.skip_bad, out.temp_path(), world);
  tok::Tokenizer& t = given ? *given : *trained;
  if (auto id = named_id(t, inv, "eos-token")) t.set_eos(*id);
  if (auto id = named_id(t, inv, "bos-token")) t.set_bos(*id);
  BuildInfo b = build_info();
  json rep = {{"tool", "tokenize-pack"},
              {"bellows_version", b.version},
              {"git_hash", b.git_hash},
              {"mode", mode},
              {"ranks", world.size()},
              {"settings", inv.effective_options()},
              {"tokenizer", {{"path", t.path()}, {"kind", t.kind()}, {"sha256", t.sha256()}, {"vocab_size", t.vocab_size()},
                             {"eos_id", t.eos_id() ? json(*t.eos_id()) : json()},
                             {"bos_id", opt.bos && t.bos_id() ? json(*t.bos_id()) : json()}}}};
  // Per-rank counters summed; "global" (rank 0's view of the whole run) taken as is.
  auto gather_sum = [&](json mine) {
    json global = mine.contains("global") ? mine["global"] : json();
    mine.erase("global");
    json total = json::object();
    for (const auto& str : world.gather(mine.dump(), 0)) sum_into(total, json::parse(str));
    if (!global.is_null()) total["global"] = global;
    return total;
  };
  std::string summary;
  if (mode == "pretrain") {
    json total = gather_sum(pack_pretrain(inputs, owner, ro, t, opt, out.temp_path(), inv.effective_options(), world));
    if (ctx.rank() == 0) {
      const json& g = total["global"];
      rep.update({{"documents", total["documents"]}, {"bad_records", total["bad_records"]}, {"seq_len", opt.seq_len},
                  {"tokens", g["tokens"]}, {"samples", g["samples"]}, {"train_samples", g["train_samples"]},
                  {"valid_samples", g["valid_samples"]}, {"tail_tokens_dropped", g["tail_tokens_dropped"]},
                  {"waste_fraction", g["waste_fraction"]}, {"truncated_documents", 0}});
      char line[256];
      std::snprintf(line, sizeof line, "%llu documents, %llu tokens -> %llu samples of %u+1 (train %llu, valid %llu), %.3f%% of tokens dropped at the tail",
                    static_cast<unsigned long long>(total["documents"].get<uint64_t>()),
                    static_cast<unsigned long long>(g["tokens"].get<uint64_t>()),
                    static_cast<unsigned long long>(g["samples"].get<uint64_t>()), opt.seq_len,
                    static_cast<unsigned long long>(g["train_samples"].get<uint64_t>()),
                    static_cast<unsigned long long>(g["valid_samples"].get<uint64_t>()),
                    100.0 * g["waste_fraction"].get<double>());
      summary = line;
    }
  } else if (mode == "sft") {
    SftOptions so;
    so.seq_len = opt.seq_len;
    so.bos = opt.bos;
    so.skip_bad = opt.skip_bad;
    so.max_doc_bytes = ro.max_doc_bytes;
    json total = gather_sum(pack_sft(inputs, owner, t, so, out.temp_path(), inv.effective_options(), world));
    if (ctx.rank() == 0) {
      uint64_t samples = total["global"]["samples"].get<uint64_t>(), cap = total["global"]["capacity"].get<uint64_t>();
      double waste = samples ? static_cast<double>(total["padding_tokens"].get<uint64_t>()) / static_cast<double>(samples * cap) : 0.0;
      rep.update({{"examples", total["examples"]}, {"truncated_examples", total["truncated"]}, {"tokens", total["tokens"]},
                  {"target_tokens", total["target_tokens"]}, {"samples", samples}, {"seq_len", opt.seq_len},
                  {"padding_tokens", total["padding_tokens"]}, {"waste_fraction", waste}, {"bad_records", total["bad_records"]}});
      char line[256];
      std::snprintf(line, sizeof line, "%llu examples (%llu truncated) -> %llu samples of %u+1, %.1f%% padding",
                    static_cast<unsigned long long>(total["examples"].get<uint64_t>()),
                    static_cast<unsigned long long>(total["truncated"].get<uint64_t>()),
                    static_cast<unsigned long long>(samples), opt.seq_len, 100.0 * waste);
      summary = line;
    }
  } else {
    PreferenceOptions po;
    po.bos = opt.bos;
    po.skip_bad = opt.skip_bad;
    po.max_doc_bytes = ro.max_doc_bytes;
    json total = gather_sum(pack_preference(inputs, owner, t, po, out.temp_path(), inv.effective_options(), world));
    if (ctx.rank() == 0) {
      if (total["pairs"].get<uint64_t>() == 0) throw RuntimeError("no preference pair in the inputs");
      rep.update(total);
      summary = std::to_string(total["pairs"].get<uint64_t>()) + " preference pairs (" +
                std::to_string(total["prompt_tokens"].get<uint64_t>()) + " prompt, " +
                std::to_string(total["chosen_tokens"].get<uint64_t>()) + " chosen, " +
                std::to_string(total["rejected_tokens"].get<uint64_t>()) + " rejected tokens)";
    }
  }
  if (ctx.rank() == 0) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep["seconds"] = secs;
    rep["finished_utc"] = log::utc_timestamp();
    std::ofstream(out.temp_path() + "/report.json") << rep.dump(2) << "\n";
    std::fprintf(stderr, "tokenize-pack: %s, %.1f s\n", summary.c_str(), secs);
  }
  out.commit();
  return kExitOk;
}

int run(cli::Invocation& inv) {
  int actions = inv.has("encode") + inv.has("decode") + inv.has("mode");
  if (actions != 1) throw UsageError("give exactly one of --encode FILE, --decode FILE, --mode pretrain (see --help)");
  if (!inv.has("mode") && (inv.has("output") || inv.get<bool>("overwrite")))
    throw UsageError("-o/--overwrite go with --mode; --encode and --decode write to stdout");
  if (inv.has("train-vocab-size")) {
    if (inv.has("tokenizer")) throw UsageError("--train-vocab-size trains a new tokenizer: leave out --tokenizer");
    if (!inv.has("mode") || inv.get<std::string>("mode") != "pretrain")
      throw UsageError("--train-vocab-size goes with --mode pretrain (it trains on the documents being packed)");
    return pack(inv, nullptr);
  }
  tok::Tokenizer t = load_tokenizer(inv);
  if (auto id = named_id(t, inv, "eos-token")) t.set_eos(*id);
  if (auto id = named_id(t, inv, "bos-token")) t.set_bos(*id);
  if (inv.has("encode")) return encode(inv, t);
  if (inv.has("decode")) return decode(inv, t);
  return pack(inv, &t);
}

}  // namespace

cli::ToolSpec tool_spec() {
  cli::ToolSpec s;
  s.name = "tokenize-pack";
  s.summary = "tokenize documents with HF / tiktoken tokenizers and pack them into token shards";
  s.usage = "tokenize-pack --tokenizer T (--encode FILE | --decode FILE | --mode pretrain INPUT... -o OUTDIR)";
  s.description =
      "--tokenizer is recognised by content: an HF tokenizer.json (byte-level BPE: GPT-2, Llama 3,\n"
      "Qwen2, SmolLM; BOS/EOS from a tokenizer_config.json beside it) or a tiktoken rank file\n"
      "(base64 token + rank per line; --pattern picks its pre-tokenizer). Ids equal those of HF\n"
      "tokenizers and tiktoken. --encode prints each JSONL record's ids on one line; --decode turns\n"
      "such lines back into JSONL. --mode pretrain packs documents (document shards, JSONL) into\n"
      "tokens_pretrain shards of --seq-len+1 tokens, shuffled by --seed, with a validation split.";
  namespace po = cli::po;
  po::options_description tk("Tokenizer");
  tk.add_options()
      ("tokenizer", po::value<std::string>()->value_name("PATH"), "tokenizer.json or tiktoken rank file")
      ("pattern", po::value<std::string>()->default_value("cl100k")->value_name("P"),
       "tiktoken files and training: pre-tokenizer cl100k | o200k | gpt2 | a regex")
      ("special-token", po::value<std::vector<std::string>>()->value_name("TOKEN=ID"),
       "tiktoken files: a special token and its id (repeatable)")
      ("allow-special", po::bool_switch(), "--encode: special/added token strings in the text become their ids")
      ("train-vocab-size", po::value<int64_t>()->value_name("N"),
       "instead of --tokenizer: train a byte-level BPE of N tokens on the inputs (pre-tokenized by --pattern), "
       "write it to OUTDIR/tokenizer.json and pack with it")
      ("train-special-tokens", po::value<std::string>()->default_value("<|endoftext|>")->value_name("LIST"),
       "special tokens of a trained tokenizer (the first is EOS)");
  po::options_description ac("Actions");
  ac.add_options()
      ("encode", po::value<std::string>()->value_name("FILE"), "JSONL in ('-' = stdin), one line of ids per record out")
      ("decode", po::value<std::string>()->value_name("FILE"), "lines of ids in ('-' = stdin), JSONL {\"text\"} out")
      ("mode", po::value<std::string>()->value_name("MODE"), "pack: pretrain | sft | preference");
  po::options_description pk("Packing");
  pk.add_options()
      ("input", po::value<std::vector<std::string>>()->value_name("PATH"), "inputs (positional): shards, JSONL, directories")
      ("input-format", po::value<std::string>()->default_value("auto")->value_name("FMT"), "auto | jsonl | text | docs")
      ("text-key", po::value<std::string>()->default_value("text")->value_name("KEY"), "JSON field holding the text")
      ("max-doc-bytes", po::value<size_t>()->default_value(32u << 20)->value_name("N"), "longest accepted document or line")
      ("seq-len", po::value<int64_t>()->default_value(1024)->value_name("L"), "sample length (each row holds L+1 tokens)")
      ("bos", po::bool_switch(), "start every document with BOS (documents always end with EOS)")
      ("eos-token", po::value<std::string>()->value_name("TOKEN"), "the EOS token, when the tokenizer does not say")
      ("bos-token", po::value<std::string>()->value_name("TOKEN"), "the BOS token, when the tokenizer does not say")
      ("seed", po::value<uint64_t>()->default_value(1)->value_name("N"), "shuffle seed")
      ("valid-fraction", po::value<double>()->default_value(0.0, "0")->value_name("F"), "share of samples for validation")
      ("on-bad-record", po::value<std::string>()->default_value("error")->value_name("MODE"), "error | skip");
  for (auto* g : {&tk, &ac, &pk}) s.groups.push_back(*g);
  s.positional.add("input", -1);
  s.writes_output = true;
  s.output_required = false;
  s.examples = {"tokenize-pack --tokenizer llama3/tokenizer.json --encode docs.jsonl > ids.txt",
                "tokenize-pack --tokenizer cl100k_base.tiktoken --pattern cl100k --encode - < docs.jsonl",
                "tokenize-pack --tokenizer tok.json --decode ids.txt",
                "tokenize-pack --tokenizer tok.json --mode pretrain curated/ -o tokens/ --seq-len 2048 --valid-fraction 0.01",
                "srun --mpi=pmix tokenize-pack --tokenizer tok.json --mode pretrain /lustre/curated/ -o /lustre/tokens/"};
  s.run = run;
  return s;
}

}  // namespace bellows::pack
