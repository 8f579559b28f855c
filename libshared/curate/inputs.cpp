#include "curate/inputs.hpp"

#include <fnmatch.h>
#include <glob.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/doc_shard.hpp"
#include "io/line_reader.hpp"
#include "text/cleanup.hpp"

namespace bellows::curate {
namespace fs = std::filesystem;

InputFormat parse_input_format(const std::string& s) {
  if (s == "auto") return InputFormat::automatic;
  if (s == "jsonl") return InputFormat::jsonl;
  if (s == "text") return InputFormat::text;
  if (s == "docs") return InputFormat::docs;
  throw UsageError("--input-format: invalid value '" + s + "' (expected auto|jsonl|text|docs)");
}

namespace {

bool has_suffix(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// The format of a file by name, or automatic when the name does not say.
InputFormat format_by_name(const std::string& p) {
  if (has_suffix(p, ".h5")) return InputFormat::docs;
  for (const char* ext : {".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst", ".ndjson"})
    if (has_suffix(p, ext)) return InputFormat::jsonl;
  return InputFormat::automatic;
}

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
  if (patterns.empty()) return true;
  for (const auto& p : patterns)
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

}  // namespace

std::vector<InputFile> enumerate_inputs(const std::vector<std::string>& specs, InputFormat fmt,
                                        const std::vector<std::string>& include) {
  std::vector<std::string> paths;
  for (const auto& spec : specs) {
    std::error_code ec;
    if (fs::is_directory(spec, ec)) {
      size_t before = paths.size();
      for (auto it = fs::recursive_directory_iterator(spec, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (!it->is_regular_file(ec)) continue;
        std::string p = it->path().string(), name = it->path().filename().string();
        if (!matches_any(name, include)) continue;
        // In a bellows output directory (it has a report.json) only the shards are documents: the
        // report, the audit trail and the JSONL export would be read as records, or twice.
        if (it->path().extension() != ".h5" && fs::exists(it->path().parent_path() / "report.json", ec)) continue;
        // In a directory, take what the format can read: text takes everything.
        InputFormat byname = format_by_name(p);
        if (fmt == InputFormat::text || (fmt == InputFormat::automatic && byname != InputFormat::automatic) ||
            (fmt != InputFormat::automatic && fmt == byname))
          paths.push_back(p);
      }
      if (paths.size() == before)
        throw UsageError("input directory '" + spec + "' contains no input files" +
                         (fmt == InputFormat::text ? "" : " (.jsonl[.gz|.zst] or .h5; use --input-format text for plain text)"));
    } else if (fs::exists(spec, ec)) {
      paths.push_back(spec);
    } else {
      glob_t g{};
      int rc = glob(spec.c_str(), 0, nullptr, &g);
      size_t before = paths.size();
      if (rc == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i)
          if (fs::is_regular_file(g.gl_pathv[i], ec)) paths.push_back(g.gl_pathv[i]);
      globfree(&g);
      if (paths.size() == before) throw UsageError("input '" + spec + "' does not exist");
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  std::vector<InputFile> out;
  for (const auto& p : paths) {
    InputFile f;
    f.path = p;
    std::error_code ec;
    f.bytes = fs::file_size(p, ec);
    f.format = fmt != InputFormat::automatic ? fmt : format_by_name(p);
    if (f.format == InputFormat::automatic)
      throw UsageError("input '" + p + "': cannot tell its format from the name; pass --input-format jsonl|text|docs");
    out.push_back(f);
  }
  if ((out.size() >> 23) != 0) throw UsageError("too many input files (more than 2^23); merge them first");
  return out;
}

std::vector<InputFile> list_inputs_on_root(dist::Communicator& comm, const std::function<std::vector<InputFile>()>& list) {
  std::vector<InputFile> files;
  std::string listing, problem;
  if (comm.rank() == 0) {
    try {
      files = list();
      nlohmann::json l = nlohmann::json::array();
      for (const auto& f : files) l.push_back({f.path, static_cast<int>(f.format), f.bytes});
      listing = l.dump();
    } catch (const UsageError& e) {
      problem = e.what();
    }
  }
  problem = comm.broadcast_string(problem, 0);
  if (!problem.empty()) {
    if (comm.rank() == 0) throw UsageError(problem);
    comm.barrier();  // rank 0 reports the problem and ends the job
    throw UsageError(problem);
  }
  listing = comm.broadcast_string(listing, 0);
  if (comm.rank() != 0)
    for (const auto& f : nlohmann::json::parse(listing))
      files.push_back({f[0].get<std::string>(), static_cast<InputFormat>(f[1].get<int>()), f[2].get<uint64_t>()});
  return files;
}

std::vector<int> assign_files(const std::vector<InputFile>& files, int ranks) {
  uint64_t total = 0;
  for (const auto& f : files) total += std::max<uint64_t>(f.bytes, 1);
  std::vector<int> owner(files.size(), 0);
  uint64_t before = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    // The rank whose share of the byte range holds this file's first byte.
    owner[i] = total ? static_cast<int>((static_cast<__uint128_t>(before) * static_cast<unsigned>(ranks)) / total) : 0;
    before += std::max<uint64_t>(files[i].bytes, 1);
  }
  return owner;
}

namespace {

class JsonlReader final : public RecordReader {
 public:
  JsonlReader(const InputFile& f, uint64_t file_index, const ReaderOptions& opt)
      : lines_(f.path, opt.max_doc_bytes), path_(f.path), file_(file_index), opt_(opt) {}

  bool next(RawRecord& r) override {
    for (;;) {
      io::LineReader::Status st = lines_.next(line_);
      if (st == io::LineReader::Status::eof) return false;
      uint64_t ln = lines_.line_number();
      r = RawRecord{};
      r.key = make_key(file_, ln);
      r.source = path_ + ":" + std::to_string(ln);
      r.id = r.source;
      r.raw_bytes = lines_.line_bytes();
      if (st == io::LineReader::Status::too_long) {
        r.bad = "line_too_long";
        return true;
      }
      if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines separate nothing
      parse(r);
      return true;
    }
  }
  uint64_t progress_bytes() const override { return lines_.file_bytes_read(); }

 private:
  void parse(RawRecord& r) {
    line_.reserve(line_.size() + simdjson::SIMDJSON_PADDING);
    simdjson::dom::element doc;
    auto err = parser_.parse(line_.data(), line_.size(), false).get(doc);
    if (err == simdjson::UTF8_ERROR) {
      // Raw invalid bytes can only sit inside strings: replace them (counted, so cleanup can
      // report or drop the document) and parse again.
      r.invalid_utf8 = text::repair_utf8(line_, repaired_);
      repaired_.reserve(repaired_.size() + simdjson::SIMDJSON_PADDING);
      err = parser_.parse(repaired_.data(), repaired_.size(), false).get(doc);
    }
    if (err != simdjson::SUCCESS) {
      r.bad = "not_json";
      return;
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj) != simdjson::SUCCESS) {
      r.bad = "not_a_json_object";
      return;
    }
    simdjson::dom::element text;
    if (obj.at_key(opt_.text_key).get(text) != simdjson::SUCCESS) {
      r.bad = "missing_text";
      return;
    }
    std::string_view sv;
    if (text.get_string().get(sv) != simdjson::SUCCESS) {
      r.bad = "text_not_a_string";
      return;
    }
    if (sv.empty()) {
      r.bad = "empty_text";
      return;
    }
    r.text.assign(sv);
    simdjson::dom::element id;
    if (obj.at_key(opt_.id_key).get(id) == simdjson::SUCCESS) {
      std::string_view ids;
      if (id.get_string().get(ids) == simdjson::SUCCESS) r.id.assign(ids);
      else if (id.is_int64() || id.is_uint64()) r.id = simdjson::to_string(id);
      // Other id types (objects, floats, null) keep the positional id.
    }
  }

  io::LineReader lines_;
  std::string path_;
  uint64_t file_;
  ReaderOptions opt_;
  std::string line_, repaired_;
  simdjson::dom::parser parser_;
};

// A whole file is one document.
class TextFileReader final : public RecordReader {
 public:
  TextFileReader(const InputFile& f, uint64_t file_index, const ReaderOptions& opt)
      : f_(f), file_(file_index), opt_(opt) {}

  bool next(RawRecord& r) override {
    if (done_) return false;
    done_ = true;
    r = RawRecord{};
    r.key = make_key(file_, 0);
    r.source = f_.path;
    r.id = f_.path;
    bool too_long = false;
    r.text = io::LineReader::read_all(f_.path, opt_.max_doc_bytes, &too_long);
    r.raw_bytes = r.text.size();
    if (too_long) r.bad = "document_too_long";
    else if (r.text.empty()) r.bad = "empty_text";
    // A NUL byte in the first block means a binary file (image, archive), not text.
    else if (r.text.find('\0', 0) < std::min<size_t>(r.text.size(), 8192)) r.bad = "binary_file";
    if (!r.bad.empty()) r.text.clear();
    consumed_ = f_.bytes;
    return true;
  }
  uint64_t progress_bytes() const override { return consumed_; }

 private:
  InputFile f_;
  uint64_t file_;
  ReaderOptions opt_;
  bool done_ = false;
  uint64_t consumed_ = 0;
};

// Documents of an earlier run's shards: curation can be re-run with other settings.
class DocShardInputReader final : public RecordReader {
 public:
  DocShardInputReader(const InputFile& f, uint64_t file_index) : reader_(f.path), f_(f), file_(file_index) {}

  bool next(RawRecord& r) override {
    if (pos_ == buf_.size()) {
      if (next_ == reader_.size()) return false;
      uint64_t n = std::min<uint64_t>(1024, reader_.size() - next_);
      buf_ = reader_.read_block(next_, n);
      base_ = next_;
      next_ += n;
      pos_ = 0;
    }
    io::Document& d = buf_[pos_];
    r = RawRecord{};
    r.key = make_key(file_, base_ + pos_);
    r.id = d.id;
    r.source = d.source.empty() ? f_.path + "#" + std::to_string(base_ + pos_) : d.source;
    r.text = std::move(d.text);
    r.lang = std::move(d.lang);
    r.lang_score = d.lang_score;
    r.raw_bytes = r.text.size();
    if (r.text.empty()) r.bad = "empty_text";
    ++pos_;
    return true;
  }
  uint64_t progress_bytes() const override { return reader_.size() ? f_.bytes * next_ / reader_.size() : f_.bytes; }

 private:
  io::DocShardReader reader_;
  InputFile f_;
  uint64_t file_;
  std::vector<io::Document> buf_;
  size_t pos_ = 0;
  uint64_t next_ = 0, base_ = 0;
};

}  // namespace

std::unique_ptr<RecordReader> open_reader(const InputFile& f, uint64_t file_index, const ReaderOptions& opt) {
  switch (f.format) {
    case InputFormat::jsonl: return std::make_unique<JsonlReader>(f, file_index, opt);
    case InputFormat::text: return std::make_unique<TextFileReader>(f, file_index, opt);
    case InputFormat::docs: return std::make_unique<DocShardInputReader>(f, file_index);
    case InputFormat::automatic: break;
  }
  throw InternalError("open_reader: unresolved input format for " + f.path);
}

}  // namespace bellows::curate
