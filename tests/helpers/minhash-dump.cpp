// Test helper: dumps what libshared's MinHash-LSH (text/minhash.hpp, the code curate-dedup runs)
// computes for a JSONL corpus, for a foreign reference (datasketch) to recompute and compare:
//   minhash-dump FILE.jsonl [--shingle word:5] [--num-perm 128] [--seed 1] --bands B --rows R
//                [--thresholds 0.5,0.55,...] [--param-perms 128,256]
// Prints one JSON object on stdout:
//   perm_a, perm_b   the permutations as decimal strings (they exceed a double's 53 bits)
//   docs             per line of FILE: shingles, hashes (text::shingle_hash32 of each shingle),
//                    fast_hashes (text::shingle_hashes32, the path curate-dedup takes), signature
//                    (text::minhash_signature of fast_hashes)
//   lsh_params       text::optimal_lsh_params(threshold, num_perm) for every threshold (the
//                    strings as given) and every num_perm of --param-perms
//   candidate_pairs  [i, j] (i < j, line indices from 0, sorted) of documents that share a band
//                    key (text::band_keys) in the same band, with --bands B --rows R
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "text/minhash.hpp"

using namespace bellows;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "minhash-dump: %s\nusage: minhash-dump FILE.jsonl [--shingle word:5] [--num-perm 128] [--seed 1] "
               "--bands B --rows R [--thresholds T,...] [--param-perms N,...]\n",
               why.c_str());
  std::exit(2);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file, shingle = "word:5", thresholds = "0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95", param_perms;
  size_t num_perm = 128, bands = 0, rows = 0;
  uint64_t seed = 1;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) usage("missing value for " + arg);
        return argv[++i];
      };
      if (arg == "--shingle") shingle = value();
      else if (arg == "--num-perm") num_perm = std::stoul(value());
      else if (arg == "--seed") seed = std::stoull(value());
      else if (arg == "--bands") bands = std::stoul(value());
      else if (arg == "--rows") rows = std::stoul(value());
      else if (arg == "--thresholds") thresholds = value();
      else if (arg == "--param-perms") param_perms = value();
      else if (!arg.empty() && arg[0] == '-') usage("unknown option " + arg);
      else if (file.empty()) file = arg;
      else usage("more than one input file");
    }
  } catch (const std::exception&) {
    usage("invalid number");
  }
  if (file.empty()) usage("no input file");
  if (bands == 0 || rows == 0 || bands * rows > num_perm) usage("--bands and --rows needed, bands*rows <= num-perm");
  if (param_perms.empty()) param_perms = std::to_string(num_perm);

  try {
    const text::ShingleSpec spec = text::parse_shingle_spec(shingle);
    const text::Permutations perms = text::make_permutations(num_perm, seed);
    const text::LshParams lsh{bands, rows};

    nlohmann::json out;
    out["shingle"] = text::to_string(spec);
    out["num_perm"] = num_perm;
    out["seed"] = seed;
    out["bands"] = bands;
    out["rows"] = rows;
    out["perm_a"] = nlohmann::json::array();
    out["perm_b"] = nlohmann::json::array();
    for (size_t i = 0; i < num_perm; ++i) {
      out["perm_a"].push_back(std::to_string(perms.a[i]));
      out["perm_b"].push_back(std::to_string(perms.b[i]));
    }

    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot open " + file);
    out["docs"] = nlohmann::json::array();
    std::map<std::pair<size_t, uint64_t>, std::vector<size_t>> buckets;  // (band, key) -> docs
    std::vector<uint32_t> hashes, fast, sig;
    std::string buf;
    std::vector<size_t> starts;
    std::vector<uint64_t> keys;
    size_t doc = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      const std::string text = nlohmann::json::parse(line).at("text").get<std::string>();
      const std::vector<std::string> sh = text::shingles(text, spec);
      hashes.clear();
      for (const auto& s : sh) hashes.push_back(text::shingle_hash32(s));
      text::shingle_hashes32(text, spec, fast, buf, starts);
      text::minhash_signature(fast, perms, sig);
      text::band_keys(sig, lsh, keys);
      for (size_t b = 0; b < keys.size(); ++b) buckets[{b, keys[b]}].push_back(doc);
      out["docs"].push_back({{"shingles", sh}, {"hashes", hashes}, {"fast_hashes", fast}, {"signature", sig}});
      ++doc;
    }

    std::set<std::pair<size_t, size_t>> pairs;
    for (const auto& [bucket, docs] : buckets)
      for (size_t i = 0; i < docs.size(); ++i)
        for (size_t j = i + 1; j < docs.size(); ++j)
          if (docs[i] != docs[j]) pairs.emplace(std::min(docs[i], docs[j]), std::max(docs[i], docs[j]));
    out["candidate_pairs"] = nlohmann::json::array();
    for (const auto& [i, j] : pairs) out["candidate_pairs"].push_back({i, j});

    out["lsh_params"] = nlohmann::json::array();
    for (const auto& n : split_commas(param_perms))
      for (const auto& t : split_commas(thresholds)) {
        const text::LshParams p = text::optimal_lsh_params(std::stod(t), std::stoul(n));
        out["lsh_params"].push_back(
            {{"threshold", t}, {"num_perm", std::stoul(n)}, {"bands", p.bands}, {"rows", p.rows}});
      }
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minhash-dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
