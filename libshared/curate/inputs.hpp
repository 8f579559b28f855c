// What curate-dedup reads: input enumeration (files, directories, globs), the deterministic
// split of files across ranks, and one record reader per input format.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dist/comm.hpp"

namespace bellows::curate {

enum class InputFormat { automatic, jsonl, text, docs };
InputFormat parse_input_format(const std::string& s);  // UsageError naming --input-format

struct InputFile {
  std::string path;
  InputFormat format = InputFormat::jsonl;  // resolved, never automatic
  uint64_t bytes = 0;
};

// Files named by `specs` (files, directories searched recursively, shell globs), sorted by path
// and de-duplicated. With --include patterns, files in directories must match one of them by
// name (fnmatch). Throws UsageError for a spec that matches nothing.
std::vector<InputFile> enumerate_inputs(const std::vector<std::string>& specs, InputFormat fmt,
                                        const std::vector<std::string>& include);

// Runs `list` on rank 0 only (one view of the filesystem; it may also validate options) and gives
// its result to every rank. A UsageError from `list` is thrown on rank 0 alone while the other
// ranks wait for the job to end, so the job reports it once.
std::vector<InputFile> list_inputs_on_root(dist::Communicator& comm, const std::function<std::vector<InputFile>()>& list);

// Rank owning each file: contiguous blocks balanced by bytes, so ranks own ascending key ranges.
std::vector<int> assign_files(const std::vector<InputFile>& files, int ranks);

// Document keys: (file index, record index) packed in 64 bits, unique and ordered as the input.
constexpr int kRecordBits = 40;
inline uint64_t make_key(uint64_t file, uint64_t record) { return (file << kRecordBits) | record; }
inline uint64_t key_file(uint64_t key) { return key >> kRecordBits; }
inline uint64_t key_record(uint64_t key) { return key & ((uint64_t{1} << kRecordBits) - 1); }

struct RawRecord {
  uint64_t key = 0;
  std::string id;      // from --id-key, else "<path>:<line>"
  std::string text;
  std::string source;  // "<path>:<line>" (or "<path>" for a whole-file document)
  std::string bad;     // non-empty: why the record is unusable (not_json, missing_text, ...)
  uint64_t raw_bytes = 0;
  uint64_t invalid_utf8 = 0;  // ill-formed UTF-8 sequences already replaced by U+FFFD while reading
  // The language a document shard of an earlier run stored ("" for other inputs): the output keeps
  // it when the langid stage is off (e.g. the merge of a curation job array).
  std::string lang;
  float lang_score = 0.0f;
};

struct ReaderOptions {
  std::string text_key = "text", id_key = "id";
  size_t max_doc_bytes = 32u << 20;
};

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // Fills `r`; false at the end of the file. Throws RuntimeError naming file (and line) for
  // problems of the whole file (truncated or corrupt compression, unreadable shard).
  virtual bool next(RawRecord& r) = 0;
  // Input bytes consumed so far (compressed size for compressed files), for progress.
  virtual uint64_t progress_bytes() const = 0;
};

std::unique_ptr<RecordReader> open_reader(const InputFile& f, uint64_t file_index, const ReaderOptions& opt);

}  // namespace bellows::curate
