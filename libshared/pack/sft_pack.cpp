#include "pack/sft_pack.hpp"

#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.hpp"
#include "pack/jsonl_objects.hpp"
#include "io/raw_file.hpp"
#include "io/shard.hpp"
#include "log/progress.hpp"
#include "text/cleanup.hpp"
#include "tok/chat_template.hpp"

namespace bellows::pack {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<uint64_t> best_fit_bins(const std::vector<uint32_t>& lengths, uint32_t capacity) {
  std::vector<uint64_t> bin_of(lengths.size());
  std::set<std::pair<uint32_t, uint64_t>> open;  // (room left, bin)
  uint64_t bins = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    auto it = open.lower_bound({lengths[i], 0});
    uint64_t b;
    uint32_t room;
    if (it == open.end()) {
      b = bins++;
      room = capacity;
    } else {
      b = it->second;
      room = it->first;
      open.erase(it);
    }
    bin_of[i] = b;
    room -= lengths[i];
    if (room > 0) open.insert({room, b});
  }
  return bin_of;
}

namespace {

std::string tokens_path(const std::string& dir, int r) { return dir + "/.sft-" + std::to_string(r) + ".u32"; }
std::string mask_path(const std::string& dir, int r) { return dir + "/.sft-" + std::to_string(r) + ".mask"; }

struct Example {
  std::vector<uint32_t> ids;
  std::vector<uint8_t> mask;
  void add(const tok::Tokenizer& t, std::string_view text, bool target, bool specials = false) {
    t.encode(text, specials, ids);
    mask.resize(ids.size(), target ? 1 : 0);
  }
  void add_id(uint32_t id, bool target) {
    ids.push_back(id);
    mask.push_back(target ? 1 : 0);
  }
};

}  // namespace

json pack_sft(const std::vector<curate::InputFile>& inputs, const std::vector<int>& owner, const tok::Tokenizer& t,
              const SftOptions& opt, const std::string& outdir, const json& config, dist::Communicator& comm) {
  if (!t.eos_id()) throw UsageError("--tokenizer " + t.path() + ": no EOS token known (give --eos-token)");
  if (opt.bos && !t.bos_id()) throw UsageError("--bos: the tokenizer has no BOS token (give --bos-token)");
  // The tokenizer's own chat template, when its tokenizer_config.json has one.
  std::unique_ptr<tok::ChatTemplate> tpl;
  json tpl_vars = json::object();
  fs::path cfg = fs::path(t.path()).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(cfg, ec)) {
    std::ifstream in(cfg);
    json c = json::parse(in, nullptr, false);
    if (c.is_object() && c.contains("chat_template")) {
      const json& ct = c["chat_template"];
      std::string src;
      if (ct.is_string()) src = ct.get<std::string>();
      else if (ct.is_array())
        for (const auto& x : ct)
          if (x.value("name", "") == "default") src = x.value("template", "");
      if (src.empty()) throw UsageError(cfg.string() + ": chat_template has no default template");
      tpl = std::make_unique<tok::ChatTemplate>(src, cfg.string());
      for (const char* k : {"bos_token", "eos_token", "pad_token", "unk_token"})
        if (c.contains(k)) {
          const json& v = c[k];
          tpl_vars[k] = v.is_object() ? json(v.value("content", "")) : v;
        }
    }
  }
  const uint32_t cap = opt.seq_len + 1, eos = *t.eos_id();
  json stats = {{"examples", 0}, {"truncated", 0}, {"tokens", 0}, {"target_tokens", 0}, {"bad_records", json::object()}};
  io::RawFileWriter tok_out(tokens_path(outdir, comm.rank())), mask_out(mask_path(outdir, comm.rank()));
  std::vector<uint32_t> lengths;  // of this rank's examples, in order
  uint64_t my_bytes = 0;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (owner[i] == comm.rank()) my_bytes += inputs[i].bytes;
  log::Progress progress("pack sft", my_bytes, "B");
  auto report_bad = [&](const std::string& where, const std::string& reason) {
    if (!opt.skip_bad) throw RuntimeError(where + ": " + reason + " (use --on-bad-record skip to count and skip such records)");
    stats["bad_records"][reason] = stats["bad_records"].value(reason, 0) + 1;
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (owner[i] != comm.rank()) continue;
    if (inputs[i].format != curate::InputFormat::jsonl)
      throw UsageError("input '" + inputs[i].path + "': --mode sft reads JSONL (prompt/response or messages)");
    for_each_jsonl_object(inputs[i].path, opt.max_doc_bytes, progress, [&](simdjson::dom::element doc, const std::string& where) {
      auto bad = [&](const std::string& reason) { report_bad(where, reason); };
      Example ex;
      if (opt.bos) ex.add_id(*t.bos_id(), false);
      simdjson::dom::array messages;
      std::string_view prompt, response;
      json conv = json::array();
      bool is_messages = doc["messages"].get_array().get(messages) == simdjson::SUCCESS;
      if (is_messages) {
        bool ok = true, any_assistant = false;
        for (simdjson::dom::element m : messages) {
          std::string_view role, content;
          if (m["role"].get_string().get(role) != simdjson::SUCCESS || m["content"].get_string().get(content) != simdjson::SUCCESS) {
            bad("message_without_role_or_content");
            ok = false;
            break;
          }
          if (role != "system" && role != "user" && role != "assistant") {
            bad("unknown_role");
            ok = false;
            break;
          }
          any_assistant |= role == "assistant";
          conv.push_back({{"role", role}, {"content", content}});
        }
        if (!ok) return;
        if (!any_assistant) {
          bad("no_assistant_message");
          return;
        }
      } else if (doc["prompt"].get_string().get(prompt) == simdjson::SUCCESS &&
                 doc["response"].get_string().get(response) == simdjson::SUCCESS) {
        if (response.empty()) {
          bad("empty_response");
          return;
        }
        if (tpl) conv = {{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", response}}};
      } else {
        bad("needs_prompt_and_response_or_messages");
        return;
      }
      if (tpl) {
        // Render the conversation; an assistant turn is what rendering it adds after the
        // conversation up to it with add_generation_prompt. Special-token strings the template
        // writes become their ids.
        auto render = [&](size_t n, bool gen) {
          json ctx = tpl_vars;
          ctx["messages"] = json(std::vector<json>(conv.begin(), conv.begin() + static_cast<long>(n)));
          ctx["add_generation_prompt"] = gen;
          return tpl->render(ctx);
        };
        std::string full;
        try {
          full = render(conv.size(), false);
        } catch (const RuntimeError& e) {
          bad("chat_template_error");
          return;
        }
        size_t done = 0;
        bool consistent = true;
        for (size_t m = 0; m < conv.size() && consistent; ++m) {
          if (conv[m]["role"] != "assistant") continue;
          std::string before = render(m, true), after = render(m + 1, false);
          if (full.compare(0, before.size(), before) != 0 || full.compare(0, after.size(), after) != 0 ||
              after.size() < before.size() || before.size() < done) {
            consistent = false;
            break;
          }
          ex.add(t, std::string_view(full).substr(done, before.size() - done), false, true);
          ex.add(t, std::string_view(full).substr(before.size(), after.size() - before.size()), true, true);
          done = after.size();
        }
        if (!consistent)
          throw UsageError(cfg.string() + ": the chat template does not render conversations as prefixes of longer "
                           "ones, so assistant turns cannot be found for the loss mask");
        ex.add(t, std::string_view(full).substr(done), false, true);
      } else if (is_messages) {
        for (const auto& m : conv) {
          bool assistant = m["role"] == "assistant";
          ex.add(t, "<|" + m["role"].get<std::string>() + "|>\n", false);
          ex.add(t, m["content"].get<std::string>(), assistant);
          if (assistant) ex.add_id(eos, true);
          else ex.add(t, "\n", false);
        }
      } else {
        ex.add(t, prompt, false);
        ex.add(t, response, true);
        ex.add_id(eos, true);
      }
      if (ex.ids.size() > cap) {
        ex.ids.resize(cap);
        ex.mask.resize(cap);
        stats["truncated"] = stats["truncated"].get<uint64_t>() + 1;
      }
      uint64_t targets = 0;
      for (uint8_t m : ex.mask) targets += m;
      if (targets == 0) {
        bad("no_target_after_truncation");
        return;
      }
      tok_out.write(ex.ids.data(), ex.ids.size() * sizeof(uint32_t));
      mask_out.write(ex.mask.data(), ex.mask.size());
      lengths.push_back(static_cast<uint32_t>(ex.ids.size()));
      stats["examples"] = stats["examples"].get<uint64_t>() + 1;
      stats["tokens"] = stats["tokens"].get<uint64_t>() + ex.ids.size();
      stats["target_tokens"] = stats["target_tokens"].get<uint64_t>() + targets;
    }, report_bad);
  }
  progress.finish();
  tok_out.close();
  mask_out.close();

  // Global example table (rank, offset in its stream, length), in input order; rank 0 plans.
  std::string mine(reinterpret_cast<const char*>(lengths.data()), lengths.size() * sizeof(uint32_t));
  std::vector<std::string> all = comm.allgather(mine);
  struct Ex {
    int rank;
    uint64_t offset;
    uint32_t len;
  };
  std::vector<Ex> table;
  std::vector<uint32_t> all_len;
  for (size_t r = 0; r < all.size(); ++r) {
    const auto* p = reinterpret_cast<const uint32_t*>(all[r].data());
    uint64_t off = 0;
    for (size_t k = 0; k < all[r].size() / sizeof(uint32_t); ++k) {
      table.push_back({static_cast<int>(r), off, p[k]});
      all_len.push_back(p[k]);
      off += p[k];
    }
  }
  if (table.empty()) throw RuntimeError("no usable SFT example in the inputs");
  std::vector<uint64_t> bin_of = best_fit_bins(all_len, cap);
  uint64_t n_bins = 0;
  for (uint64_t b : bin_of) n_bins = std::max(n_bins, b + 1);
  std::vector<std::vector<uint64_t>> members(n_bins);
  for (size_t e = 0; e < bin_of.size(); ++e) members[bin_of[e]].push_back(e);

  std::vector<io::RawFileReader> tok_in, mask_in;
  for (size_t r = 0; r < all.size(); ++r) {
    tok_in.emplace_back(tokens_path(outdir, static_cast<int>(r)));
    mask_in.emplace_back(mask_path(outdir, static_cast<int>(r)));
  }
  io::Provenance prov{"tokenize-pack", config, {}};
  for (const auto& f : inputs) prov.inputs.push_back(f.path);
  uint64_t R = static_cast<uint64_t>(comm.size()), r = static_cast<uint64_t>(comm.rank());
  uint64_t lo = n_bins * r / R, hi = n_bins * (r + 1) / R;
  std::vector<uint32_t> row(cap);
  std::vector<uint8_t> mrow(cap);
  uint64_t pad = 0;
  for (uint64_t pos = lo, part = 0; pos < hi; ++part) {
    uint64_t n = std::min<uint64_t>(opt.max_samples_per_shard, hi - pos);
    char name[64];
    std::snprintf(name, sizeof name, "/sft-r%05d-%05llu.h5", comm.rank(), static_cast<unsigned long long>(part));
    io::ShardWriter w(outdir + name, "tokens_sft", prov);
    w.declare("tokens", {cap});
    w.declare("loss_mask", {cap});
    io::RaggedColumn<uint32_t> seg(w, "segment_start");
    std::vector<uint32_t> starts;
    for (uint64_t b = pos; b < pos + n; ++b) {
      std::fill(row.begin(), row.end(), eos);
      std::fill(mrow.begin(), mrow.end(), uint8_t{0});
      starts.clear();
      uint32_t at = 0;
      for (uint64_t e : members[b]) {
        const Ex& x = table[e];
        tok_in[static_cast<size_t>(x.rank)].read_at(row.data() + at, x.len * sizeof(uint32_t), x.offset * sizeof(uint32_t));
        mask_in[static_cast<size_t>(x.rank)].read_at(mrow.data() + at, x.len, x.offset);
        starts.push_back(at);
        at += x.len;
      }
      pad += cap - at;
      w.append("tokens", row);
      w.append("loss_mask", mrow);
      seg.add(starts.data(), starts.size());
    }
    w.set_attr("num_samples", n);
    w.set_attr("seq_len", uint64_t{opt.seq_len});
    w.set_attr("vocab_size", uint64_t{t.vocab_size()});
    w.set_attr("tokenizer_sha256", t.sha256());
    w.set_attr("eos_id", int64_t{eos});
    w.set_attr("pad_id", int64_t{eos});
    w.close();
    pos += n;
  }
  tok_in.clear();
  mask_in.clear();
  comm.barrier();
  fs::remove(tokens_path(outdir, comm.rank()));
  fs::remove(mask_path(outdir, comm.rank()));
  stats["padding_tokens"] = pad;
  if (comm.rank() == 0) stats["global"] = {{"samples", n_bins}, {"capacity", cap}};
  return stats;
}

}  // namespace bellows::pack
