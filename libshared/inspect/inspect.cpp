#include "inspect/inspect.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/error.hpp"
#include "dist/context.hpp"
#include "io/h5.hpp"
#include "io/schema.hpp"
#include "io/shard.hpp"
#include "io/zstd_filter.hpp"
#include "log/log.hpp"
#include "log/progress.hpp"

namespace bellows::inspect {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b < 1024) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  else if (b < (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024.0);
  else if (b < (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  else std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1 << 30));
  return buf;
}

std::string dims_text(const std::vector<uint64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

DatasetInfo dataset_info(hid_t file, const std::string& name) {
  DatasetInfo info;
  info.name = name;
  h5::Handle ds = h5::check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), "dataset '" + name + "'");
  h5::Handle type = h5::check(H5Dget_type(ds.get()), "dataset '" + name + "'");
  h5::DType t;
  info.dtype = h5::dtype_of(type.get(), &t) ? h5::dtype_name(t) : "other";
  h5::Handle space = h5::check(H5Dget_space(ds.get()), "dataset '" + name + "'");
  int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  info.shape.assign(dims.begin(), dims.end());
  info.bytes = H5Tget_size(type.get());
  for (auto d : dims) info.bytes *= d;
  info.stored_bytes = H5Dget_storage_size(ds.get());
  h5::Handle dcpl = h5::check(H5Dget_create_plist(ds.get()), "dataset '" + name + "'");
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(dims.size());
    H5Pget_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    info.chunks.assign(chunk.begin(), chunk.end());
  }
  int nf = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < nf; ++i) {
    unsigned flags = 0, cd[8];
    size_t ncd = 8;
    char fname[64] = {0};
    H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &ncd, cd, sizeof fname, fname, nullptr);
    if (id == H5Z_FILTER_FLETCHER32) info.filters.push_back("fletcher32");
    else if (id == h5::kZstdFilterId) info.filters.push_back("zstd(" + std::to_string(ncd > 0 ? static_cast<int>(cd[0]) : 3) + ")");
    else info.filters.push_back("filter " + std::to_string(id));
  }
  return info;
}

}  // namespace

std::vector<std::string> expand_inputs(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(p, ec))
        if (e.is_regular_file() && e.path().extension() == ".h5") found.push_back(e.path().string());
      if (found.empty()) throw UsageError("input directory '" + p + "' contains no .h5 file");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) {
      out.push_back(p);
    } else {
      throw UsageError("input '" + p + "' does not exist");
    }
  }
  return out;
}

FileReport inspect_file(const std::string& path, bool verify) {
  FileReport r;
  r.path = path;
  try {
    io::ShardReader reader = io::ShardReader::open_any(path);
    r.kind = reader.kind();
    r.version = reader.version();
    for (const auto& a : schema::get(r.kind).attributes) {
      if (!reader.has_attr(a.name)) continue;
      if (a.type == "string") r.attrs[a.name] = reader.attr_string(a.name);
      else if (a.type == "json") r.attrs[a.name] = json::parse(reader.attr_string(a.name));
      else if (a.type == "float") r.attrs[a.name] = reader.attr_double(a.name);
      else r.attrs[a.name] = reader.attr_int(a.name);
    }
    for (const auto& name : reader.datasets()) r.datasets.push_back(dataset_info(reader.handle(), name));
    if (verify) {
      log::Progress progress("verify " + fs::path(path).filename().string(), reader.total_bytes(), "B");
      reader.verify_all_chunks([&](uint64_t n) { progress.add(n); });
      progress.finish();
      r.verified = true;
    }
    r.ok = true;
  } catch (const RuntimeError& e) {
    r.error = e.what();
    if (r.error.rfind(path, 0) != 0) r.error = path + ": " + r.error;
  }
  return r;
}

json to_json(const FileReport& r) {
  json j = {{"path", r.path}, {"ok", r.ok}};
  if (!r.ok) {
    j["error"] = r.error;
    return j;
  }
  j["schema"] = r.kind;
  j["schema_version"] = r.version;
  j["attributes"] = r.attrs;
  j["verified"] = r.verified;
  j["datasets"] = json::array();
  for (const auto& d : r.datasets)
    j["datasets"].push_back({{"name", d.name}, {"dtype", d.dtype}, {"shape", d.shape}, {"chunks", d.chunks},
                             {"filters", d.filters}, {"bytes", d.bytes}, {"stored_bytes", d.stored_bytes}});
  return j;
}

FileReport from_json(const json& j) {
  FileReport r;
  r.path = j.at("path");
  r.ok = j.at("ok");
  if (!r.ok) {
    r.error = j.at("error");
    return r;
  }
  r.kind = j.at("schema");
  r.version = j.at("schema_version");
  r.attrs = j.at("attributes");
  r.verified = j.at("verified");
  for (const auto& d : j.at("datasets")) {
    DatasetInfo info;
    info.name = d.at("name");
    info.dtype = d.at("dtype");
    info.shape = d.at("shape").get<std::vector<uint64_t>>();
    info.chunks = d.at("chunks").get<std::vector<uint64_t>>();
    info.filters = d.at("filters").get<std::vector<std::string>>();
    info.bytes = d.at("bytes");
    info.stored_bytes = d.at("stored_bytes");
    r.datasets.push_back(info);
  }
  return r;
}

std::string to_text(const FileReport& r) {
  std::ostringstream os;
  if (!r.ok) {
    os << r.error << "\n";
    return os.str();
  }
  os << r.path << ": " << r.kind << " v" << r.version;
  if (r.attrs.contains("tool")) os << ", written by " << r.attrs["tool"].get<std::string>();
  if (r.attrs.contains("bellows_version"))
    os << " (bellows " << r.attrs["bellows_version"].get<std::string>() << " " << r.attrs.value("git_hash", "") << ")";
  if (r.attrs.contains("created_utc")) os << " at " << r.attrs["created_utc"].get<std::string>();
  os << (r.verified ? ", all chunks verified" : "") << "\n";
  for (auto& [k, v] : r.attrs.items()) {
    if (k == "tool" || k == "bellows_version" || k == "git_hash" || k == "created_utc" || k == "schema" ||
        k == "schema_version")
      continue;
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    if (text.size() > 100) text = text.substr(0, 97) + "...";
    os << "  " << k << " = " << text << "\n";
  }
  uint64_t total = 0, stored = 0;
  for (const auto& d : r.datasets) {
    total += d.bytes;
    stored += d.stored_bytes;
    char line[512];
    std::string filters;
    for (const auto& f : d.filters) filters += (filters.empty() ? "" : "+") + f;
    std::snprintf(line, sizeof line, "  %-36s %-8s %-16s chunks %-12s %-22s %10s -> %s", d.name.c_str(), d.dtype.c_str(),
                  dims_text(d.shape).c_str(), dims_text(d.chunks).c_str(), filters.c_str(), human_bytes(d.bytes).c_str(),
                  human_bytes(d.stored_bytes).c_str());
    os << line << "\n";
  }
  char sum[128];
  std::snprintf(sum, sizeof sum, "  total %s stored in %s (%.2fx)", human_bytes(total).c_str(), human_bytes(stored).c_str(),
                stored ? static_cast<double>(total) / static_cast<double>(stored) : 0.0);
  os << sum << "\n";
  return os.str();
}

namespace {

int run(cli::Invocation& inv) {
  auto& ctx = dist::Context::get();
  if (inv.has("schema")) {
    std::string name = inv.get<std::string>("schema");
    if (name == "list") {
      if (ctx.rank() == 0)
        for (const auto& n : schema::names()) std::cout << n << " - " << schema::get(n).title << "\n";
      return kExitOk;
    }
    std::vector<std::string> known = schema::names();
    known.push_back("common");
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw UsageError("--schema: unknown file kind '" + name + "' (try --schema list)");
    if (ctx.rank() == 0) std::cout << schema::source(name);
    return kExitOk;
  }
  if (!inv.has("input")) throw UsageError("no input: name one or more files or directories (see --help)");
  std::vector<std::string> files = expand_inputs(inv.get<std::vector<std::string>>("input"));
  bool verify = inv.get<bool>("verify");
  bool as_json = inv.get<bool>("json");
  dist::Communicator& world = ctx.world();
  // Files are dealt round-robin; results travel back to rank 0 as JSON and print in input order.
  json mine = json::array();
  for (size_t i = static_cast<size_t>(world.rank()); i < files.size(); i += static_cast<size_t>(world.size()))
    mine.push_back(to_json(inspect_file(files[i], verify)));
  std::vector<std::string> gathered = world.gather(mine.dump(), 0);
  if (world.rank() != 0) return kExitOk;
  std::vector<FileReport> reports(files.size());
  for (size_t r = 0; r < gathered.size(); ++r) {
    json part = json::parse(gathered[r]);
    for (size_t k = 0; k < part.size(); ++k) reports[r + k * gathered.size()] = from_json(part[k]);
  }
  size_t failed = 0;
  for (const auto& rep : reports) {
    if (!rep.ok) ++failed;
    if (as_json) std::cout << to_json(rep).dump() << "\n";
    else if (rep.ok) std::cout << to_text(rep);
    if (!rep.ok) std::fprintf(stderr, "%s: %s\n", inv.tool.c_str(), rep.error.c_str());
  }
  std::cout << std::flush;
  if (verify)
    log::info(std::to_string(files.size() - failed) + " of " + std::to_string(files.size()) + " files verified" +
              (failed ? ", " + std::to_string(failed) + " failed" : ""));
  return failed ? kExitRuntime : kExitOk;
}

}  // namespace

cli::ToolSpec tool_spec() {
  cli::ToolSpec s;
  s.name = "shard-inspect";
  s.summary = "describe and verify bellows HDF5 files (shards, checkpoints, adapters)";
  s.usage = "shard-inspect [options] PATH...   |   shard-inspect --schema KIND|list";
  s.description =
      "Prints each file's kind, schema version, provenance (tool, version, options, inputs) and\n"
      "datasets (dtype, shape, chunks, filters, compression). A directory stands for the .h5 files\n"
      "in it. --verify reads every chunk back so that each Fletcher32 checksum and zstd frame is\n"
      "checked; under mpirun/srun the files are shared out across the ranks.";
  cli::po::options_description g("Options");
  g.add_options()
      ("input", cli::po::value<std::vector<std::string>>()->value_name("PATH"), "files or directories (positional)")
      ("verify", cli::po::bool_switch(), "read every chunk back and check its checksum")
      ("json", cli::po::bool_switch(), "one JSON object per file on stdout instead of text")
      ("schema", cli::po::value<std::string>()->value_name("KIND"),
       "print the schema of a file kind (JSON, as embedded in this build) and exit; 'list' lists kinds");
  s.groups.push_back(g);
  s.positional.add("input", -1);
  s.examples = {"shard-inspect run/docs/                       # summary of every shard",
                "shard-inspect --verify --json data/*.h5 | jq .  # machine-readable check",
                "mpirun -np 8 shard-inspect --verify /lustre/tokens/   # verify a shard set in parallel",
                "shard-inspect --schema tokens_pretrain          # what the datasets mean"};
  s.run = run;
  return s;
}

}  // namespace bellows::inspect
