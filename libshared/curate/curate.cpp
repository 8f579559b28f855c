#include "curate/curate.hpp"

#define XXH_INLINE_ALL
#include <sys/resource.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/json_counters.hpp"
#include "core/signals.hpp"
#include "core/version.hpp"
#include "curate/dedup.hpp"
#include "curate/inputs.hpp"
#include "curate/quality_options.hpp"
#include "dist/context.hpp"
#include "io/doc_shard.hpp"
#include "io/line_reader.hpp"
#include "io/safe_output.hpp"
#include "io/zstd_writer.hpp"
#include "log/log.hpp"
#include "log/progress.hpp"
#include "text/cleanup.hpp"
#include "text/langid.hpp"
#include "text/minhash.hpp"
#include "text/pii.hpp"
#include "text/quality.hpp"

namespace bellows::curate {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::vector<std::string> kStages = {"cleanup", "langid", "quality", "pii", "exact", "fuzzy"};

struct Options {
  std::vector<InputFile> inputs;
  ReaderOptions reader;
  bool skip_bad = false;
  std::set<std::string> disabled;  // stages
  text::CleanupConfig cleanup;
  std::set<std::string> langs;
  double min_lang_score = 0.0;
  text::QualityConfig quality;
  text::PiiConfig pii;
  text::ShingleSpec shingle;
  size_t num_perm = 128;
  text::LshParams lsh;
  double threshold = 0.8;
  bool verify = false;
  bool one_per_cluster = false;
  uint64_t seed = 1;
  std::string output;
  bool overwrite = false, export_jsonl = false;
  uint64_t max_shard_bytes = 1ull << 30;

  bool on(const std::string& stage) const { return !disabled.count(stage); }
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

Options read_options(const cli::Invocation& inv) {
  Options o;
  if (!inv.has("input")) throw UsageError("no input: name JSONL files, text files, shard files or directories (see --help)");
  o.reader.text_key = inv.get<std::string>("text-key");
  o.reader.id_key = inv.get<std::string>("id-key");
  o.reader.max_doc_bytes = inv.get<size_t>("max-doc-bytes");
  if (o.reader.max_doc_bytes == 0) throw UsageError("--max-doc-bytes: must be positive");
  std::string bad = inv.get<std::string>("on-bad-record");
  if (bad != "error" && bad != "skip") throw UsageError("--on-bad-record: invalid value '" + bad + "' (expected error|skip)");
  o.skip_bad = bad == "skip";
  for (const auto& s : split_list(inv.get<std::string>("disable"))) {
    if (std::find(kStages.begin(), kStages.end(), s) == kStages.end())
      throw UsageError("--disable: unknown stage '" + s + "' (stages: cleanup,langid,quality,pii,exact,fuzzy)");
    o.disabled.insert(s);
  }
  std::string utf8 = inv.get<std::string>("invalid-utf8");
  if (utf8 != "repair" && utf8 != "drop") throw UsageError("--invalid-utf8: invalid value '" + utf8 + "' (expected repair|drop)");
  o.cleanup.repair_utf8 = utf8 == "repair";
  for (const auto& l : split_list(inv.get<std::string>("langs"))) o.langs.insert(l);
  o.min_lang_score = inv.get<double>("min-lang-score");
  if (o.min_lang_score < 0 || o.min_lang_score > 1) throw UsageError("--min-lang-score: must be within 0..1");
  o.quality = quality_config(inv.get<std::string>("disable-rules"),
                             inv.has("quality-param") ? inv.get<std::vector<std::string>>("quality-param")
                                                      : std::vector<std::string>{});
  if (inv.has("pii-types")) {
    o.pii.types.clear();
    for (const auto& t : split_list(inv.get<std::string>("pii-types"))) o.pii.types.insert(text::parse_pii_type(t));
  }
  o.shingle = text::parse_shingle_spec(inv.get<std::string>("shingle"));
  o.num_perm = inv.get<size_t>("num-perm");
  if (o.num_perm < 1 || o.num_perm > 4096) throw UsageError("--num-perm: must be within 1..4096");
  o.threshold = inv.get<double>("threshold");
  if (o.threshold <= 0 || o.threshold > 1) throw UsageError("--threshold: must be within (0, 1]");
  bool has_b = inv.has("bands"), has_r = inv.has("rows");
  if (has_b != has_r) throw UsageError("--bands and --rows go together (or give --threshold alone)");
  if (has_b) {
    o.lsh = {inv.get<size_t>("bands"), inv.get<size_t>("rows")};
    if (o.lsh.bands == 0 || o.lsh.rows == 0 || o.lsh.bands * o.lsh.rows > o.num_perm)
      throw UsageError("--bands * --rows must be positive and at most --num-perm (" + std::to_string(o.num_perm) + ")");
    // Verification uses the S-curve's midpoint unless a threshold was given as well.
    if (!inv.has("threshold")) o.threshold = text::lsh_threshold(o.lsh);
  }
  o.verify = inv.get<bool>("verify-jaccard");
  if (!has_b) {
    // Unverified candidates are final, so false positives and false negatives weigh the same
    // (datasketch's choice). With verification false positives only cost a Jaccard check, so
    // the S-curve is moved to catch near-duplicates: misses weigh 9 times more.
    o.lsh = o.verify ? text::optimal_lsh_params(o.threshold, o.num_perm, 0.1, 0.9)
                     : text::optimal_lsh_params(o.threshold, o.num_perm);
  }
  std::string keep = inv.get<std::string>("cluster-keep");
  if (keep != "covering" && keep != "one") throw UsageError("--cluster-keep: invalid value '" + keep + "' (expected covering|one)");
  o.one_per_cluster = keep == "one";
  o.seed = inv.get<uint64_t>("seed");
  o.output = inv.get<std::string>("output");
  o.overwrite = inv.get<bool>("overwrite");
  o.export_jsonl = inv.get<bool>("export-jsonl");
  o.max_shard_bytes = inv.get<uint64_t>("max-shard-bytes");
  if (o.max_shard_bytes == 0) throw UsageError("--max-shard-bytes: must be positive");
  return o;
}

// Counters as JSON, summed across ranks at the end.
void bump(json& j, uint64_t n = 1) { j = j.is_null() ? n : j.get<uint64_t>() + n; }


double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// One line of removed.jsonl.zst.
std::string audit_line(const std::string& id, const std::string& source, const std::string& stage, const std::string& reason,
                       const std::string* kept_id = nullptr, const std::string* detail = nullptr) {
  json j = {{"id", id}, {"source", source}, {"stage", stage}, {"reason", reason}};
  if (kept_id) j["kept_id"] = *kept_id;
  if (detail) j["detail"] = *detail;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Rank-local state of one run.
class Run {
 public:
  Run(const Options& o, dist::Context& ctx, const std::string& outdir, const cli::Invocation& inv)
      : o_(o), ctx_(ctx), dir_(outdir), inv_(inv), pii_(o.pii), perms_(text::make_permutations(o.num_perm, o.seed)) {
    table_.bands = o.on("fuzzy") ? o.lsh.bands : 0;
    // Bands use the first bands*rows permutations; the rest would be computed for nothing.
    perms_.a.resize(o.lsh.bands * o.lsh.rows);
    perms_.b.resize(o.lsh.bands * o.lsh.rows);
    stage_stats_ = json::object();
    for (const auto& s : {"input", "cleanup", "langid", "quality", "pii", "exact", "fuzzy"})
      stage_stats_[s] = {{"docs_in", 0}, {"docs_out", 0}, {"bytes_in", 0}, {"bytes_out", 0}, {"seconds", 0.0},
                         {"removed", json::object()}, {"removed_bytes", json::object()}};
  }

  void pass1(const std::vector<int>& owner) {
    std::string rank = std::to_string(ctx_.rank());
    work_path_ = dir_ + "/.work-" + rank + ".h5";
    filter_audit_path_ = dir_ + "/.filtered-" + rank + ".jsonl";
    io::Provenance prov{"curate-dedup", inv_.effective_options(), {}};
    io::DocShardWriter work(work_path_, prov);
    std::ofstream filtered(filter_audit_path_);
    uint64_t my_bytes = 0;
    for (size_t i = 0; i < o_.inputs.size(); ++i)
      if (owner[i] == ctx_.rank()) my_bytes += o_.inputs[i].bytes;
    log::Progress progress("curate", my_bytes, "B");
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < o_.inputs.size(); ++i) {
      if (owner[i] != ctx_.rank()) continue;
      const InputFile& f = o_.inputs[i];
      bump(stats_["input_files"]);
      uint64_t reported = 0;
      try {
        auto reader = open_reader(f, i, o_.reader);
        RawRecord rec;
        while (reader->next(rec)) {
          process(rec, work, filtered);
          uint64_t now = reader->progress_bytes();
          progress.add(now - reported);
          reported = now;
        }
      } catch (const RuntimeError& e) {
        if (!o_.skip_bad) throw;
        // A file that breaks off (truncated .gz/.zst, unreadable shard): what was read stays,
        // the rest is lost, and the audit trail says so.
        log::warn(std::string(e.what()) + " (skipped: --on-bad-record skip)");
        bump(stage_stats_["input"]["removed"]["unreadable_file"]);
        bump(stage_stats_["input"]["removed_bytes"]["unreadable_file"], f.bytes > reported ? f.bytes - reported : 0);
        std::string detail = e.what();
        filtered << make_key(i, (uint64_t{1} << kRecordBits) - 1) << '\t'
                 << audit_line(f.path, f.path, "input", "unreadable_file", nullptr, &detail) << '\n';
      }
      progress.add(f.bytes > reported ? f.bytes - reported : 0);
    }
    progress.finish();
    work.close();
    if (!filtered) throw RuntimeError(filter_audit_path_ + ": write failed");
    stats_["seconds_pass1"] = seconds_since(t0);
  }

  DedupResult dedup(const std::vector<int>& owner) {
    auto t0 = std::chrono::steady_clock::now();
    DedupConfig cfg;
    cfg.exact = o_.on("exact");
    cfg.fuzzy = o_.on("fuzzy");
    cfg.verify = o_.verify;
    cfg.threshold = o_.threshold;
    cfg.one_per_cluster = o_.one_per_cluster;
    std::unique_ptr<io::DocShardReader> work;
    if (cfg.verify) work = std::make_unique<io::DocShardReader>(work_path_);
    auto key_owner = [&](uint64_t key) { return owner[key_file(key)]; };
    auto shingle_set = [&](uint64_t key) {
      size_t idx = table_.index_of(key);  // work shard rows are in table order
      return text::shingle_set64(work->get(idx).text, o_.shingle);
    };
    DedupResult r = deduplicate(table_, cfg, ctx_.world(), key_owner, shingle_set);
    stats_["seconds_dedup"] = seconds_since(t0);
    return r;
  }

  // Streams the work shard into the output shards, skipping duplicates; writes this rank's
  // part of the audit trail in key order.
  void pass2(const DedupResult& d) {
    auto t0 = std::chrono::steady_clock::now();
    std::string rank = std::to_string(ctx_.rank());
    io::ZstdWriter audit(dir_ + "/.removed-" + rank + ".zst");
    std::unique_ptr<io::ZstdWriter> exported;
    if (o_.export_jsonl) exported = std::make_unique<io::ZstdWriter>(dir_ + "/.kept-" + rank + ".zst");
    std::ifstream filtered(filter_audit_path_);
    std::string fline;
    uint64_t fkey = 0;
    bool fvalid = false;
    auto next_filtered = [&] {
      fvalid = static_cast<bool>(std::getline(filtered, fline));
      if (fvalid) fkey = std::stoull(fline.substr(0, fline.find('\t')));
    };
    next_filtered();
    // Filtered and duplicate documents interleave by key; both lists are sorted.
    auto flush_filtered_before = [&](uint64_t key) {
      while (fvalid && fkey < key) {
        audit.write_line(std::string_view(fline).substr(fline.find('\t') + 1));
        next_filtered();
      }
    };

    io::DocShardReader work(work_path_);
    size_t next_removal = 0, seq = 0;
    std::unique_ptr<io::DocShardWriter> shard;
    uint64_t shard_bytes = 0;
    io::Provenance prov{"curate-dedup", inv_.effective_options(), {}};
    for (const auto& f : o_.inputs) prov.inputs.push_back(f.path);
    json& ex = stage_stats_["exact"];
    json& fz = stage_stats_["fuzzy"];
    for (uint64_t base = 0; base < work.size(); base += 1024) {
      check_interrupt();
      std::vector<io::Document> block = work.read_block(base, std::min<uint64_t>(1024, work.size() - base));
      for (size_t k = 0; k < block.size(); ++k) {
        io::Document& doc = block[k];
        uint64_t key = table_.keys[base + k];
        flush_filtered_before(key);
        // Stage counters: exact sees every document that reached dedup, fuzzy what exact kept.
        auto count_in = [&](json& st) {
          bump(st["docs_in"]);
          bump(st["bytes_in"], doc.text.size());
        };
        auto count_out = [&](json& st) {
          bump(st["docs_out"]);
          bump(st["bytes_out"], doc.text.size());
        };
        if (o_.on("exact")) count_in(ex);
        if (next_removal < d.removals.size() && d.removals[next_removal].key == key) {
          const Removal& rm = d.removals[next_removal++];
          audit.write_line(audit_line(doc.id, doc.source, rm.exact ? "exact" : "fuzzy", rm.exact ? "exact_dup" : "fuzzy_dup",
                                      &rm.kept_id));
          if (rm.exact) {
            bump(ex["removed"]["exact_dup"]);
            bump(ex["removed_bytes"]["exact_dup"], doc.text.size());
          } else {
            if (o_.on("exact")) count_out(ex);
            count_in(fz);
            bump(fz["removed"]["fuzzy_dup"]);
            bump(fz["removed_bytes"]["fuzzy_dup"], doc.text.size());
          }
          continue;
        }
        if (o_.on("exact")) count_out(ex);
        if (o_.on("fuzzy")) {
          count_in(fz);
          count_out(fz);
        }
        if (!shard || shard_bytes >= o_.max_shard_bytes) {
          if (shard) shard->close();
          char name[64];
          std::snprintf(name, sizeof name, "/docs-r%05d-%05zu.h5", ctx_.rank(), seq++);
          shard = std::make_unique<io::DocShardWriter>(dir_ + name, prov);
          shard_bytes = 0;
        }
        shard->add(doc);
        shard_bytes += doc.text.size();
        bump(stats_["docs_written"]);
        bump(stats_["bytes_written"], doc.text.size());
        if (exported) {
          json j = {{"id", doc.id}, {"text", doc.text}, {"source", doc.source}, {"lang", doc.lang},
                    {"lang_score", doc.lang_score}};
          exported->write_line(j.dump(-1, ' ', false, json::error_handler_t::replace));
        }
      }
    }
    flush_filtered_before(~uint64_t{0});
    if (shard) shard->close();
    audit.close();
    if (exported) exported->close();
    filtered.close();
    fs::remove(filter_audit_path_);
    fs::remove(work_path_);
    stats_["seconds_pass2"] = seconds_since(t0);
  }

  json stats() const {
    json s = stats_;
    s["stages"] = stage_stats_;
    s["pii"] = json::object();
    for (size_t i = 0; i < text::kNumPiiTypes; ++i)
      s["pii"][text::pii_name(static_cast<text::PiiType>(i))] = pii_counts_.n[i];
    return s;
  }

 private:
  void removed(const RawRecord& r, const std::string& stage, const std::string& reason, uint64_t bytes,
               std::ofstream& filtered) {
    bump(stage_stats_[stage]["removed"][reason]);
    bump(stage_stats_[stage]["removed_bytes"][reason], bytes);
    filtered << r.key << '\t' << audit_line(r.id, r.source, stage, reason) << '\n';
  }

  // Runs the per-document stages; returns with the document written to the work shard or
  // recorded as removed.
  void process(RawRecord& r, io::DocShardWriter& work, std::ofstream& filtered) {
    json& in = stage_stats_["input"];
    bump(in["docs_in"]);
    bump(in["bytes_in"], r.raw_bytes);
    if (!r.bad.empty()) {
      if (!o_.skip_bad)
        throw RuntimeError(r.source + ": " + r.bad + " (use --on-bad-record skip to count and skip such records)");
      removed(r, "input", r.bad, r.raw_bytes, filtered);
      return;
    }
    bump(in["docs_out"]);
    bump(in["bytes_out"], r.text.size());

    // Unknown language unless langid runs below or a document shard read as input stored one.
    io::Document doc{r.id, {}, r.source, r.lang.empty() ? "un" : r.lang, r.lang.empty() ? 0.0f : r.lang_score};
    std::string text = std::move(r.text);
    auto stage = [&](const char* name) -> json& {
      json& s = stage_stats_[name];
      bump(s["docs_in"]);
      bump(s["bytes_in"], text.size());
      return s;
    };
    auto pass = [&](json& s, std::chrono::steady_clock::time_point t0) {
      bump(s["docs_out"]);
      bump(s["bytes_out"], text.size());
      s["seconds"] = s["seconds"].get<double>() + seconds_since(t0);
    };
    auto fail = [&](json& s, std::chrono::steady_clock::time_point t0, const char* name, const std::string& reason) {
      s["seconds"] = s["seconds"].get<double>() + seconds_since(t0);
      removed(r, name, reason, text.size(), filtered);
    };

    if (o_.on("cleanup")) {
      auto t0 = std::chrono::steady_clock::now();
      json& s = stage("cleanup");
      text::CleanupResult c = text::cleanup(text, o_.cleanup);
      c.invalid_utf8 += r.invalid_utf8;  // bytes the JSONL reader had to replace to parse the line
      if (c.invalid_utf8) {
        bump(stats_["invalid_utf8_sequences"], c.invalid_utf8);
        bump(stats_["docs_with_invalid_utf8"]);
      }
      if (c.invalid_utf8 && !o_.cleanup.repair_utf8) return fail(s, t0, "cleanup", "invalid_utf8");
      text = std::move(c.text);
      if (text.empty()) return fail(s, t0, "cleanup", "empty_after_cleanup");
      pass(s, t0);
    }
    if (o_.on("langid")) {
      auto t0 = std::chrono::steady_clock::now();
      json& s = stage("langid");
      text::LangGuess g = text::detect_language(text);
      doc.lang = g.code;
      doc.lang_score = g.score;
      if (!o_.langs.empty() && !o_.langs.count(g.code)) return fail(s, t0, "langid", "lang:" + g.code);
      if (g.score < o_.min_lang_score) return fail(s, t0, "langid", "low_lang_score");
      bump(stats_["languages"][g.code]);
      pass(s, t0);
    }
    if (o_.on("quality")) {
      auto t0 = std::chrono::steady_clock::now();
      json& s = stage("quality");
      text::QualityVerdict v = text::check_quality(text, o_.quality);
      if (!v.keep) return fail(s, t0, "quality", v.rule);
      pass(s, t0);
    }
    if (o_.on("pii")) {
      auto t0 = std::chrono::steady_clock::now();
      json& s = stage("pii");
      uint64_t before = pii_counts_.total();
      text = pii_.redact(text, pii_counts_);
      if (pii_counts_.total() != before) bump(stats_["docs_with_pii"]);
      pass(s, t0);
    }
    // Hashes for the dedup stages; they run after pass 1 across all ranks.
    XXH128_hash_t h = XXH3_128bits(text.data(), text.size());
    std::vector<uint64_t>* bands = nullptr;
    if (table_.bands > 0) {
      auto t0 = std::chrono::steady_clock::now();
      text::shingle_hashes32(text, o_.shingle, hashes_, shingle_buf_, shingle_starts_);
      if (!hashes_.empty()) {
        text::minhash_signature(hashes_, perms_, sig_);
        text::band_keys(sig_, o_.lsh, band_buf_);
        bands = &band_buf_;
      }
      stats_["seconds_minhash"] = stats_.value("seconds_minhash", 0.0) + seconds_since(t0);
    }
    table_.add(r.key, {h.high64, h.low64}, doc.id, bands);
    doc.text = std::move(text);
    work.add(doc);
  }

  const Options& o_;
  dist::Context& ctx_;
  std::string dir_;
  const cli::Invocation& inv_;
  text::PiiRedactor pii_;
  text::PiiCounts pii_counts_;
  text::Permutations perms_;
  DedupTable table_;
  std::vector<uint32_t> hashes_, sig_;
  std::string shingle_buf_;
  std::vector<size_t> shingle_starts_;
  std::vector<uint64_t> band_buf_;
  std::string work_path_, filter_audit_path_;
  json stats_ = json::object();
  json stage_stats_;
};

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

std::string summary_text(const json& rep) {
  std::ostringstream os;
  const json& d = rep["documents"];
  os << "curate-dedup: " << d["in"].get<uint64_t>() << " documents in, " << d["out"].get<uint64_t>() << " out ("
     << rep["output"].get<std::string>() << ")\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-8s %12s %12s %14s  %s\n", "stage", "docs in", "docs out", "MB out", "removed (top reasons)");
  os << line;
  for (const char* s : {"input", "cleanup", "langid", "quality", "pii", "exact", "fuzzy"}) {
    const json& st = rep["stages"][s];
    if (st.value("docs_in", uint64_t{0}) == 0) continue;
    std::vector<std::pair<uint64_t, std::string>> reasons;
    for (auto& [k, v] : st["removed"].items()) reasons.emplace_back(v.get<uint64_t>(), k);
    std::sort(reasons.rbegin(), reasons.rend());
    std::string top;
    for (size_t i = 0; i < reasons.size() && i < 3; ++i)
      top += (i ? ", " : "") + reasons[i].second + " " + std::to_string(reasons[i].first);
    std::snprintf(line, sizeof line, "  %-8s %12llu %12llu %14.2f  %s\n", s,
                  static_cast<unsigned long long>(st["docs_in"].get<uint64_t>()),
                  static_cast<unsigned long long>(st["docs_out"].get<uint64_t>()),
                  static_cast<double>(st["bytes_out"].get<uint64_t>()) / 1e6, top.c_str());
    os << line;
  }
  uint64_t pii_total = 0;
  for (auto& [k, v] : rep["pii"].items()) pii_total += v.get<uint64_t>();
  os << "  PII redacted: " << pii_total;
  for (auto& [k, v] : rep["pii"].items())
    if (v.get<uint64_t>()) os << " " << k << "=" << v.get<uint64_t>();
  os << "\n  fuzzy: " << rep["fuzzy_dedup"].value("clusters", uint64_t{0}) << " clusters, largest "
     << rep["fuzzy_dedup"].value("largest_cluster", uint64_t{0}) << "; " << rep["seconds"].get<double>() << " s, "
     << rep["throughput"]["mb_per_s_per_rank"].get<double>() << " MB/s per rank\n";
  return os.str();
}

int run(cli::Invocation& inv) {
  auto t_start = std::chrono::steady_clock::now();
  auto& ctx = dist::Context::get();
  dist::Communicator& world = ctx.world();
  Options o;
  std::vector<InputFile> inputs = list_inputs_on_root(world, [&] {
    o = read_options(inv);  // validated on rank 0 first, so a bad option is reported once
    std::vector<std::string> include;
    if (inv.has("include")) include = inv.get<std::vector<std::string>>("include");
    return enumerate_inputs(inv.get<std::vector<std::string>>("input"),
                            parse_input_format(inv.get<std::string>("input-format")), include);
  });
  if (ctx.rank() != 0) o = read_options(inv);
  o.inputs = std::move(inputs);
  std::vector<int> owner = assign_files(o.inputs, world.size());
  log::info("curate-dedup: " + std::to_string(o.inputs.size()) + " input files on " + std::to_string(world.size()) +
            " rank(s); LSH " + std::to_string(o.lsh.bands) + " bands x " + std::to_string(o.lsh.rows) + " rows of " +
            std::to_string(o.num_perm) + " permutations (S-curve midpoint " + std::to_string(text::lsh_threshold(o.lsh)) +
            ")");

  io::SafeOutput out(o.output, io::SafeOutput::Kind::directory, o.overwrite, &world);
  Run run(o, ctx, out.temp_path(), inv);
  run.pass1(owner);
  DedupResult dd = run.dedup(owner);
  run.pass2(dd);

  // Report: per-rank counters summed; peak memory as the largest rank's.
  json mine = run.stats();
  sum_into(mine, json{{"dedup", dd.stats}});
  mine["peak_rss_bytes_max"] = peak_rss_bytes();
  std::vector<std::string> all = world.gather(mine.dump(), 0);
  world.barrier();
  if (ctx.rank() == 0) {
    json total = json::object();
    uint64_t peak = 0;
    double slowest = 0;
    for (const auto& s : all) {
      json j = json::parse(s);
      peak = std::max(peak, j["peak_rss_bytes_max"].get<uint64_t>());
      slowest = std::max(slowest, j.value("seconds_pass1", 0.0));
      j.erase("peak_rss_bytes_max");
      sum_into(total, j);
    }
    // Join the ranks' audit and export parts in rank order: ranks own ascending key ranges, so
    // the result is in input order whatever the number of ranks.
    std::string removed_path = out.temp_path() + "/removed.jsonl.zst", kept_path = out.temp_path() + "/kept.jsonl.zst";
    for (int r = 0; r < world.size(); ++r) {
      io::append_file(removed_path, out.temp_path() + "/.removed-" + std::to_string(r) + ".zst");
      if (o.export_jsonl) io::append_file(kept_path, out.temp_path() + "/.kept-" + std::to_string(r) + ".zst");
    }
    BuildInfo b = build_info();
    json rep;
    rep["tool"] = "curate-dedup";
    rep["bellows_version"] = b.version;
    rep["git_hash"] = b.git_hash;
    rep["finished_utc"] = log::utc_timestamp();
    rep["ranks"] = world.size();
    rep["output"] = o.output;
    rep["settings"] = inv.effective_options();
    rep["lsh"] = {{"num_perm", o.num_perm}, {"bands", o.lsh.bands}, {"rows", o.lsh.rows},
                  {"s_curve_midpoint", text::lsh_threshold(o.lsh)}, {"verify_threshold", o.threshold},
                  {"cluster_keep", o.one_per_cluster ? "one" : "covering"},
                  {"shingle", text::to_string(o.shingle)}};
    json inputs = json::array();
    uint64_t bytes_in = 0;
    for (const auto& f : o.inputs) {
      bytes_in += f.bytes;
      if (inputs.size() < 1000) inputs.push_back(f.path);
    }
    rep["inputs"] = {{"files", o.inputs.size()}, {"bytes", bytes_in}, {"paths", inputs},
                     {"paths_truncated", o.inputs.size() > 1000}};
    rep["stages"] = total["stages"];
    rep["documents"] = {{"in", total["stages"]["input"]["docs_in"]}, {"out", total.value("docs_written", uint64_t{0})},
                        {"bytes_in", total["stages"]["input"]["bytes_in"]},
                        {"bytes_out", total.value("bytes_written", uint64_t{0})}};
    rep["pii"] = total["pii"];
    rep["cleanup"] = {{"invalid_utf8_sequences", total.value("invalid_utf8_sequences", uint64_t{0})},
                      {"docs_with_invalid_utf8", total.value("docs_with_invalid_utf8", uint64_t{0})}};
    rep["languages"] = total.value("languages", json::object());
    rep["exact_dedup"] = {{"groups", total["dedup"]["exact_groups"]}, {"removed", total["dedup"]["exact_removed"]}};
    json fz = {{"candidate_pairs", total["dedup"]["candidate_pairs"]}, {"removed", total["dedup"]["fuzzy_removed"]}};
    if (o.verify) {
      fz["verified_pairs"] = total["dedup"]["verified_pairs"];
      fz["rejected_pairs"] = total["dedup"]["rejected_pairs"];
    }
    if (!dd.clusters.is_null()) fz.update(dd.clusters);
    rep["fuzzy_dedup"] = fz;
    double secs = seconds_since(t_start);
    rep["seconds"] = secs;
    rep["seconds_by_phase"] = {{"pass1_slowest_rank", slowest}, {"minhash_all_ranks", total.value("seconds_minhash", 0.0)},
                               {"dedup_all_ranks", total.value("seconds_dedup", 0.0)},
                               {"pass2_all_ranks", total.value("seconds_pass2", 0.0)}};
    rep["throughput"] = {{"docs_per_s", secs > 0 ? static_cast<double>(total["stages"]["input"]["docs_in"].get<uint64_t>()) / secs : 0.0},
                         {"mb_per_s_per_rank", secs > 0 ? static_cast<double>(bytes_in) / 1e6 / secs / world.size() : 0.0}};
    rep["peak_rss_mb_max_rank"] = static_cast<double>(peak) / (1 << 20);
    std::ofstream(out.temp_path() + "/report.json") << rep.dump(2) << "\n";
    std::cerr << summary_text(rep) << std::flush;
  }
  out.commit();
  return kExitOk;
}

}  // namespace

cli::ToolSpec tool_spec() {
  cli::ToolSpec s;
  s.name = "curate-dedup";
  s.summary = "clean, filter, redact and deduplicate a text corpus into document shards";
  s.usage = "curate-dedup [options] INPUT... -o OUTDIR";
  s.description =
      "Reads JSON Lines (.jsonl, .jsonl.gz, .jsonl.zst), document shards of an earlier run (.h5),\n"
      "or plain text files (--input-format text: each file is one document); INPUT may be files,\n"
      "directories (searched recursively) or globs. Runs, in order: cleanup, langid, quality, pii,\n"
      "exact and fuzzy dedup. Writes OUTDIR/docs-*.h5 (schema 'docs'), OUTDIR/report.json and\n"
      "OUTDIR/removed.jsonl.zst with one line per removed document (id, source, stage, reason,\n"
      "and for duplicates the id of the document kept). Under mpirun/srun the input files are\n"
      "split across ranks; the kept documents are the same for any number of ranks.";
  namespace po = cli::po;
  po::options_description in("Input");
  in.add_options()
      ("input", po::value<std::vector<std::string>>()->value_name("PATH"), "inputs (positional)")
      ("input-format", po::value<std::string>()->default_value("auto")->value_name("FMT"),
       "auto (by file name) | jsonl | text | docs")
      ("include", po::value<std::vector<std::string>>()->value_name("GLOB"),
       "in directories, take only files whose name matches (repeatable), e.g. 'copyright'")
      ("text-key", po::value<std::string>()->default_value("text")->value_name("KEY"), "JSON field holding the text")
      ("id-key", po::value<std::string>()->default_value("id")->value_name("KEY"), "JSON field holding the id (else file:line)")
      ("max-doc-bytes", po::value<size_t>()->default_value(32u << 20)->value_name("N"), "longest accepted document or line")
      ("on-bad-record", po::value<std::string>()->default_value("error")->value_name("MODE"),
       "error (stop with file:line) | skip (count it, list it in removed.jsonl.zst)");
  po::options_description st("Stages");
  st.add_options()
      ("disable", po::value<std::string>()->default_value("")->value_name("LIST"), "stages to skip: cleanup,langid,quality,pii,exact,fuzzy")
      ("invalid-utf8", po::value<std::string>()->default_value("repair")->value_name("MODE"), "repair (U+FFFD) | drop the document")
      ("langs", po::value<std::string>()->default_value("")->value_name("LIST"), "keep only these languages, e.g. en,de (default: all)")
      ("min-lang-score", po::value<double>()->default_value(0.0, "0")->value_name("S"), "drop documents whose language score is lower")
      ("disable-rules", po::value<std::string>()->default_value("")->value_name("LIST"),
       "quality rules or families to skip, e.g. c4,fineweb:list_ratio (names as in report.json)")
      ("quality-param", po::value<std::vector<std::string>>()->value_name("NAME=VALUE"),
       "set a quality threshold (repeatable); see the list in README")
      ("pii-types", po::value<std::string>()->value_name("LIST"),
       "PII to redact (default all): email,phone,ipv4,ipv6,credit_card,us_ssn,iban");
  po::options_description dd("Deduplication");
  dd.add_options()
      ("shingle", po::value<std::string>()->default_value("word:5")->value_name("SPEC"), "MinHash shingles: word:N or char:N")
      ("num-perm", po::value<size_t>()->default_value(128)->value_name("N"), "MinHash permutations")
      ("threshold", po::value<double>()->default_value(0.8, "0.8")->value_name("J"), "Jaccard threshold; picks --bands/--rows")
      ("bands", po::value<size_t>()->value_name("B"), "LSH bands (with --rows, instead of --threshold)")
      ("rows", po::value<size_t>()->value_name("R"), "LSH rows per band")
      ("verify-jaccard", po::bool_switch(),
       "check every candidate pair by exact Jaccard of its shingle sets (and pick bands/rows for recall)")
      ("cluster-keep", po::value<std::string>()->default_value("covering")->value_name("POLICY"),
       "covering: remove a document only when it is linked to a kept one | one: keep one per cluster")
      ("seed", po::value<uint64_t>()->default_value(1)->value_name("N"), "seed of the MinHash permutations");
  po::options_description ou("Output");
  ou.add_options()
      ("export-jsonl", po::bool_switch(), "also write the kept documents to OUTDIR/kept.jsonl.zst")
      ("max-shard-bytes", po::value<uint64_t>()->default_value(1ull << 30)->value_name("N"), "start a new shard after this much text");
  for (auto* g : {&in, &st, &dd, &ou}) s.groups.push_back(*g);
  s.positional.add("input", -1);
  s.writes_output = true;
  s.examples = {
      "curate-dedup data/*.jsonl.zst -o curated/",
      "curate-dedup --input-format text --include 'copyright' /usr/share/doc -o docs-curated/ --langs en",
      "curate-dedup in/ -o out/ --shingle char:24 --num-perm 260 --bands 20 --rows 13 --verify-jaccard",
      "srun --mpi=pmix curate-dedup /lustre/raw/ -o /lustre/curated/ --on-bad-record skip",
      "zstdcat curated/removed.jsonl.zst | jq -r .reason | sort | uniq -c   # why documents went"};
  s.run = run;
  return s;
}

}  // namespace bellows::curate
