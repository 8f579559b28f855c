#include "pack/preference_pack.hpp"

#include <simdjson.h>

#include <memory>

#include "core/error.hpp"
#include "pack/jsonl_objects.hpp"
#include "io/shard.hpp"
#include "log/progress.hpp"
#include "text/cleanup.hpp"

namespace bellows::pack {
using nlohmann::json;

namespace {

struct Pair {
  std::vector<uint32_t> prompt, chosen, rejected;
};

class PairWriter {
 public:
  PairWriter(const std::string& outdir, int rank, const tok::Tokenizer& t, const io::Provenance& prov, uint64_t per_shard)
      : outdir_(outdir), rank_(rank), t_(t), prov_(prov), per_shard_(per_shard) {}
  void add(const Pair& p) {
    if (!w_ || n_ == per_shard_) open();
    prompt_->add(p.prompt.data(), p.prompt.size());
    chosen_->add(p.chosen.data(), p.chosen.size());
    rejected_->add(p.rejected.data(), p.rejected.size());
    ++n_;
  }
  void close() {
    if (!w_) return;
    w_->set_attr("num_pairs", n_);
    w_->set_attr("vocab_size", uint64_t{t_.vocab_size()});
    w_->set_attr("tokenizer_sha256", t_.sha256());
    w_->set_attr("eos_id", int64_t{*t_.eos_id()});
    prompt_.reset();
    chosen_.reset();
    rejected_.reset();
    w_->close();
    w_.reset();
  }

 private:
  void open() {
    close();
    char name[64];
    std::snprintf(name, sizeof name, "/pref-r%05d-%05d.h5", rank_, seq_++);
    w_ = std::make_unique<io::ShardWriter>(outdir_ + name, "tokens_preference", prov_);
    prompt_ = std::make_unique<io::RaggedColumn<uint32_t>>(*w_, "prompt");
    chosen_ = std::make_unique<io::RaggedColumn<uint32_t>>(*w_, "chosen");
    rejected_ = std::make_unique<io::RaggedColumn<uint32_t>>(*w_, "rejected");
    n_ = 0;
  }
  std::string outdir_;
  int rank_, seq_ = 0;
  const tok::Tokenizer& t_;
  io::Provenance prov_;
  uint64_t per_shard_, n_ = 0;
  std::unique_ptr<io::ShardWriter> w_;
  std::unique_ptr<io::RaggedColumn<uint32_t>> prompt_, chosen_, rejected_;
};

}  // namespace

json pack_preference(const std::vector<curate::InputFile>& inputs, const std::vector<int>& owner, const tok::Tokenizer& t,
                     const PreferenceOptions& opt, const std::string& outdir, const json& config, dist::Communicator& comm) {
  if (!t.eos_id()) throw UsageError("--tokenizer " + t.path() + ": no EOS token known (give --eos-token)");
  if (opt.bos && !t.bos_id()) throw UsageError("--bos: the tokenizer has no BOS token (give --bos-token)");
  io::Provenance prov{"tokenize-pack", config, {}};
  for (const auto& f : inputs) prov.inputs.push_back(f.path);
  PairWriter out(outdir, comm.rank(), t, prov, opt.max_pairs_per_shard);
  json stats = {{"pairs", 0}, {"prompt_tokens", 0}, {"chosen_tokens", 0}, {"rejected_tokens", 0},
                {"bad_records", json::object()}};
  uint64_t my_bytes = 0;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (owner[i] == comm.rank()) my_bytes += inputs[i].bytes;
  log::Progress progress("pack pairs", my_bytes, "B");
  auto report_bad = [&](const std::string& where, const std::string& reason) {
    if (!opt.skip_bad) throw RuntimeError(where + ": " + reason + " (use --on-bad-record skip to count and skip such records)");
    stats["bad_records"][reason] = stats["bad_records"].value(reason, 0) + 1;
  };
  Pair p;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (owner[i] != comm.rank()) continue;
    if (inputs[i].format != curate::InputFormat::jsonl)
      throw UsageError("input '" + inputs[i].path + "': --mode preference reads JSONL (prompt, chosen, rejected)");
    for_each_jsonl_object(inputs[i].path, opt.max_doc_bytes, progress, [&](simdjson::dom::element doc, const std::string& where) {
      auto bad = [&](const std::string& reason) { report_bad(where, reason); };
      std::string_view prompt, chosen, rejected;
      bool ok = true;
      for (auto [key, slot] : {std::pair{"prompt", &prompt}, std::pair{"chosen", &chosen}, std::pair{"rejected", &rejected}}) {
        simdjson::dom::element v;
        if (doc[key].get(v) != simdjson::SUCCESS) {
          bad(std::string("missing_") + key);
          ok = false;
          break;
        }
        if (v.is_array())
          throw UsageError(where + ": '" + key + "' holds chat messages; rendering chat templates is not built yet "
                           "(give the text of each side as a string)");
        if (v.get_string().get(*slot) != simdjson::SUCCESS) {
          bad(std::string(key) + "_not_a_string");
          ok = false;
          break;
        }
      }
      if (!ok) return;
      if (chosen.empty() || rejected.empty()) {
        bad(chosen.empty() ? "empty_chosen" : "empty_rejected");
        return;
      }
      p.prompt.clear();
      p.chosen.clear();
      p.rejected.clear();
      if (opt.bos) p.prompt.push_back(*t.bos_id());
      t.encode(prompt, false, p.prompt);
      t.encode(chosen, false, p.chosen);
      p.chosen.push_back(*t.eos_id());
      t.encode(rejected, false, p.rejected);
      p.rejected.push_back(*t.eos_id());
      out.add(p);
      stats["pairs"] = stats["pairs"].get<uint64_t>() + 1;
      stats["prompt_tokens"] = stats["prompt_tokens"].get<uint64_t>() + p.prompt.size();
      stats["chosen_tokens"] = stats["chosen_tokens"].get<uint64_t>() + p.chosen.size();
      stats["rejected_tokens"] = stats["rejected_tokens"].get<uint64_t>() + p.rejected.size();
    }, report_bad);
  }
  progress.finish();
  out.close();
  return stats;
}

}  // namespace bellows::pack
